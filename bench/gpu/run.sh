#!/usr/bin/env bash
# bench/gpu/run.sh - the GPU campaign on a lent machine, in two calls (bench/gpu/prepare.sh builds
# gpu-carry/ here first, and its top comment is the device session's checklist):
#
#   run(command="bash bench/gpu/run.sh call1", carry=["gpu-carry"], timeout_s=600)   # ~6 min
#   run(command="bash bench/gpu/run.sh call2", carry=["gpu-carry"], timeout_s=420)   # ~3-4 min
#
# call1 = env tests sanitize start dino stream fast; call2 = env pint mnist. Steps:
#   env       (every call, first) the GPU (nvidia-smi), the kernel, glibc against what gpu-carry
#             needs, the carried libraries unpacked and every binary's libraries resolved, NVRTC
#             (searched for when the loader does not find it: DINO_NVRTC), the C compiler of the
#             CPU backend, compute-sanitizer, python with torch/jax/diffrax/torchdiffeq
#   tests     test_gpu: reference values of dino_small, node_small, pint_small on the CUDA
#             backend; CUDA against CPU on larger models; loss curves; graphs and streaming
#   sanitize  compute-sanitizer memcheck, racecheck, synccheck on node_small (1 epoch, no graphs);
#             a device the sanitizer refuses ("Device not supported", seen on gVisor) is recorded
#   start     cold start (empty cache: NVRTC) and cached start, "ready in" and the whole process,
#             for node_small (f64), node_mnist and dino_poisson (f32); targets 2 s and 100 ms
#   dino      the network of dino_poisson.dino (200 -> 400 x 8 -> 25 gelu, H1 loss, Adam),
#             ROWS random rows (80 % train), batch 32 and 1024, f32 and f64: dino (with and
#             without CUDA graphs) against JAX (jax_dino.py, as dinox) and PyTorch (torch_dino.py),
#             seconds per epoch (best after the first), start to first step, peak GPU memory;
#             targets: dino >= 10x JAX at batch 32, >= 3x at batch 1024
#   stream    the batch-1024 f32 training with DINO_CUDA_STREAM=1 (batches from pinned host memory)
#   fast      the batch-1024 f32 training with --set math=fast
#   mnist     the MNIST neural ODE: dino on ../shared/specs/node_mnist.dino (and with
#             DINO_CUDA_SHARE=0) and on specs/node_mnist.dino (wide), against torchdiffeq and
#             diffrax (node_mnist_torch.py, node_mnist_jax.py, width 64); target >= 98 % test
#             accuracy in <= 10 s of training and <= 1 GB
#   pint      pint_gpu: Parareal against the serial solve, S = 256 RK4 steps, batch 1, 8, 64,
#             N = 8, 16 slices, K = 1, 2; target at batch 8: >= 3x with error <= 1e-4
#   ckpt      (not in a call) bench/checkpoint on the GPU: workspace and s/epoch with checkpointing
#
# Every step runs under `timeout` within the call's budget (BUDGET_S: call1 480 s, call2 300 s,
# otherwise 540 s): a step that no longer fits is skipped and says so, and the summary is always
# printed last. A step that fails (not a timeout) is run again with DINO_CUDA_DEBUG=1, which
# names the faulting kernel, its stage and its launch geometry; the summary shows that error.
# $OUT gets three files (a device call returns at most 8): summary.md (the tables, also printed
# at the end), logs.txt (every step's output, the CSVs) and steps.txt (exit status and seconds of
# every step).
#
# usage (from the repository root): bash bench/gpu/run.sh [call1|call2|all|STEP...]
#   ROWS=25000 DINO_EPOCHS=3 DINO_NET="400 8" (width, depth) MNIST_EPOCHS="10 15 2" (dino shared,
#   dino wide, each baseline), LIMIT_SCALE=1 (multiplies every step's time limit, not the budget)
#   MNIST=gpu-carry/shared/data/mnist PINT_ARGS="--steps 256 --batches 1,8,64 --slices 8,16 --iters 1,2"
#   PYTHON: /opt/torch/.venv/bin/python3 where it exists (the device image), else python3; PY_JAX,
#   PY_TORCH: for the JAX and the PyTorch baselines (default $PYTHON)
#   BASELINES_ON_CPU=1: run the baselines even when their framework sees no GPU (dry runs)
#   bench/gpu/dryrun.sh runs all of it here on the stand-in driver at tiny sizes.
set -u
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
C=gpu-carry
BIN=$C/bin
S=$C/shared
W=$(mktemp -d "${TMPDIR:-/tmp}/gpu-run.XXXXXX")
# the device image's python (with torch, jax, diffrax, torchdiffeq) is /opt/torch/.venv's
[ -x /opt/torch/.venv/bin/python3 ] && PYTHON=${PYTHON:-/opt/torch/.venv/bin/python3}
PYTHON=${PYTHON:-python3}
PY_JAX=${PY_JAX:-$PYTHON} PY_TORCH=${PY_TORCH:-$PYTHON}
ROWS=${ROWS:-25000} DINO_EPOCHS=${DINO_EPOCHS:-3}
export DINO_NET=${DINO_NET:-400 8}   # the DINO network's width and depth (the Python baselines read it too)
read -r NET_W NET_D <<<"$DINO_NET"
LIMIT_SCALE=${LIMIT_SCALE:-1}
read -r ME_SHARED ME_WIDE ME_BASE <<<"${MNIST_EPOCHS:-10 15 2}"
MNIST=${MNIST:-$S/data/mnist}
PINT_ARGS=${PINT_ARGS:---steps 256 --batches 1,8,64 --slices 8,16 --iters 1,2}
export DINO_CACHE_DIR=${DINO_CACHE_DIR:-/tmp/dino-cache} PYTHONUNBUFFERED=1 PYTHONPATH=bench/gpu${PYTHONPATH:+:$PYTHONPATH}

steps=" "
budget_default=540
for a in "${@:-call1}"; do
    case $a in
        call1) steps+="tests sanitize start dino stream fast " budget_default=480 ;;
        call2) steps+="pint mnist " budget_default=300 ;;
        all) steps+="tests sanitize start dino stream fast pint mnist " ;;
        env | tests | sanitize | start | dino | stream | fast | mnist | pint | ckpt) steps+="$a " ;;
        *) echo "run.sh: unknown step '$a' (call1, call2, all, env, tests, sanitize, start, dino, stream, fast, mnist, pint, ckpt)" >&2
           exit 2 ;;
    esac
done
[ $# -gt 1 ] && budget_default=540
BUDGET_S=${BUDGET_S:-$budget_default}
T0=$(date +%s)
DEADLINE=$((T0 + BUDGET_S))
want() { case "$steps" in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

summary=$OUT/summary.md logs=$OUT/logs.txt steplog=$OUT/steps.txt
: >"$summary"
: >"$logs"
: >"$steplog"
note() { printf '%s\n' "$*" >>"$summary"; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
# keep LOGFILE TITLE: the log (at most its first 150 and last 350 lines) into logs.txt
keep() {
    local n
    n=$(wc -l <"$1" 2>/dev/null || echo 0)
    { echo "===== $2"
      if [ "$n" -gt 500 ]; then head -n 150 "$1"; echo "[... $((n - 500)) lines left out ...]"; tail -n 350 "$1"
      else cat "$1" 2>/dev/null; fi
    } >>"$logs"
}

# GPU memory in use (MiB) sampled every 100 ms while a step runs: its peak minus the idle value
SMI=$(command -v nvidia-smi || true)
MEM0=0 MEMPID= MEMFILE= LAST_MEM=-
mem_start() {
    LAST_MEM=-
    [ -n "$SMI" ] || return 0
    MEMFILE=$W/mem.$1
    "$SMI" --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 >"$MEMFILE" 2>/dev/null &
    MEMPID=$!
}
mem_stop() {
    [ -n "$MEMPID" ] || return 0
    kill "$MEMPID" 2>/dev/null
    wait "$MEMPID" 2>/dev/null
    MEMPID=
    local peak
    peak=$(grep -E '^[0-9]+$' "$MEMFILE" | sort -n | tail -n 1)
    [ -n "$peak" ] && LAST_MEM="$((peak - MEM0)) MiB"
}

# timed [--debug] [--mem] LIMIT NAME COMMAND...: runs COMMAND (output to $W/NAME.log) under
# `timeout`, within what is left of the budget; 125: skipped (no time left). With --debug a
# failure (not a timeout) is run again with DINO_CUDA_DEBUG=1 into $W/NAME_debug.log, and its
# error lines go to the summary. With --mem the GPU memory's peak is in $LAST_MEM.
timed() {
    local debug=0 mem=0
    while :; do
        case $1 in --debug) debug=1 ;; --mem) mem=1 ;; *) break ;; esac
        shift
    done
    local limit=$(($1 * LIMIT_SCALE)) name=$2
    shift 2
    LAST_MEM=-
    local left=$((DEADLINE - $(date +%s) - 15))
    if [ $left -lt 20 ]; then
        echo "[$name: skipped, ${left} s of the budget left]" | tee -a "$steplog"
        echo "skipped: the call's budget (BUDGET_S=$BUDGET_S) is spent" >"$W/$name.log"
        return 125
    fi
    [ "$limit" -gt "$left" ] && limit=$left
    local t0 rc
    t0=$(now)
    [ $mem -eq 1 ] && mem_start "$name"
    timeout -k 10 "$limit" "$@" >"$W/$name.log" 2>&1
    rc=$?
    [ $mem -eq 1 ] && mem_stop
    local took
    took=$(secs "$t0")
    echo "[$name: exit $rc, $took s (limit $limit s)]" | tee -a "$steplog"
    keep "$W/$name.log" "$name: exit $rc, $took s, limit $limit s: $*"
    if [ $rc -ne 0 ] && [ $rc -ne 124 ] && [ $rc -ne 137 ] && [ $debug -eq 1 ] && [ -z "${DINO_CUDA_DEBUG:-}" ]; then
        left=$((DEADLINE - $(date +%s) - 15))
        if [ $left -ge 20 ]; then
            [ "$limit" -gt "$left" ] && limit=$left
            t0=$(now)
            DINO_CUDA_DEBUG=1 timeout -k 10 "$limit" "$@" >"$W/${name}_debug.log" 2>&1
            local rd=$?
            echo "[${name}_debug: exit $rd, $(secs "$t0") s]" | tee -a "$steplog"
            keep "$W/${name}_debug.log" "${name}_debug (DINO_CUDA_DEBUG=1): exit $rd: $*"
            note "- **$name failed** (exit $rc); with DINO_CUDA_DEBUG=1 (exit $rd):"
            grep -E -i 'error|fail|kernel|abort|fault' "$W/${name}_debug.log" | head -n 6 | cut -c1-400 | sed 's/^/    /' >>"$summary"
        else
            note "- **$name failed** (exit $rc); no time left for a DINO_CUDA_DEBUG=1 rerun"
        fi
    fi
    return $rc
}
# json LOG KEY [FORMAT]: KEY of the last JSON line ({"impl": ...}) of a baseline's log, or "-"
json() {
    grep '^{"impl"' "$1" 2>/dev/null | tail -n 1 | "$PYTHON" -c "
import json, sys
try: print('${3:-}' % json.loads(sys.stdin.read())['$2'] if '${3:-}' else json.loads(sys.stdin.read())['$2'])
except Exception: print('-')" 2>/dev/null || echo "-"
}
# epoch_s CSV: the fastest epoch after the first (every epoch when there is one) from a --log CSV
epoch_s() {
    "$PYTHON" -c "
import csv, sys
t = [float(r['seconds']) for r in csv.DictReader(open(sys.argv[1]))]
d = [b - a for a, b in zip([0] + t, t)]
print('%.3f' % min(d[1:] or d))" "$1" 2>/dev/null || echo "-"
}
# csv_last CSV COLUMN [FORMAT]: that column of the last row
csv_last() {
    "$PYTHON" -c "
import csv, sys
r = list(csv.DictReader(open(sys.argv[1])))[-1]
print(sys.argv[3] % float(r[sys.argv[2]]) if len(sys.argv) > 3 else r[sys.argv[2]])" "$@" 2>/dev/null || echo "-"
}
# evals CSV: every evaluated epoch's accuracy with the training seconds so far
evals() {
    "$PYTHON" -c "
import csv, sys
r = [x for x in csv.DictReader(open(sys.argv[1])) if x.get('accuracy')]
print(', '.join('%.2f %% @%s (%.1f s)' % (100 * float(x['accuracy']), x['epoch'], float(x['seconds'])) for x in r) or '-')" "$1" 2>/dev/null || echo "-"
}
ready_s() { grep -o 'ready in [0-9.]* s' "$1" 2>/dev/null | head -n 1 | grep -o '[0-9.]*' || echo "-"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2fx", a / b; else print "-" }'; }
finish() {
    [ -n "$MEMPID" ] && kill "$MEMPID" 2>/dev/null
    for f in "$W"/*.csv; do [ -f "$f" ] && keep "$f" "file $(basename "$f")"; done
    note ""
    local odd
    odd=$(grep -v -e 'exit 0,' -e '^\[env' "$steplog" | tr '\n' ' ')
    note "steps: $(grep -c 'exit' "$steplog") ran; not exit 0 or skipped: ${odd:-none}"
    note "call: $(secs "$T0") s of the ${BUDGET_S} s budget; \$OUT: $(ls "$OUT" | tr '\n' ' ')"
    echo
    echo "=================================== summary ==================================="
    cat "$summary"
    rm -rf "$W"
}
trap 'finish; exit 1' TERM INT

# ---------------------------------------------------------------------------- env (every call)
[ -d "$BIN" ] || { echo "run.sh: no $BIN: run bench/gpu/prepare.sh first and carry gpu-carry" >&2; exit 1; }
note "# bench/gpu/run.sh$steps($(date -u +%Y-%m-%dT%H:%MZ))"
note "gpu-carry: $(tr '\n' ' ' <"$C/BUILD_INFO" 2>/dev/null)"
if [ -n "$SMI" ]; then
    note "device: $("$SMI" --query-gpu=name,memory.total,driver_version,clocks.max.sm,compute_mode --format=csv,noheader 2>&1 | head -n 1)"
    MEM0=$("$SMI" --query-gpu=memory.used --format=csv,noheader,nounits 2>/dev/null | head -n 1 | grep -E '^[0-9]+$' || echo 0)
    "$SMI" >"$W/nvidia-smi.log" 2>&1
    keep "$W/nvidia-smi.log" "nvidia-smi"
else
    note "device: nvidia-smi not found"
fi
note "host: kernel $(uname -r) ($(uname -r | grep -q '^4\.4\.0' && echo 'gVisor' || echo 'not gVisor')), $(nproc) cores, $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")"
have=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{ print $2 }')
need=$(sed -n 's/^glibc_needed=//p' "$C/BUILD_INFO" 2>/dev/null)
if [ -n "$need" ] && [ -n "$have" ] && [ "$(printf '%s\n%s\n' "$need" "$have" | sort -V | head -n 1)" != "$need" ]; then
    note "- **glibc $have here, gpu-carry needs $need**: its binaries will not start; build gpu-carry on a system with glibc <= $have"
    echo "run.sh: glibc $have is older than the $need that gpu-carry needs" >&2
fi
# the carried libraries, beside the binaries that look for them there first (DT_RPATH $ORIGIN)
[ -f "$C/lib.tar.gz" ] && [ ! -f "$BIN/.libs-unpacked" ] && tar xzf "$C/lib.tar.gz" -C "$BIN" && touch "$BIN/.libs-unpacked"
for f in "$BIN"/*; do [ -x "$f" ] && ldd "$f" 2>&1 | grep -E 'not found|version .* not found' | sed "s|^|$(basename "$f"): |"; done >"$W/ldd.log"
if [ -s "$W/ldd.log" ]; then
    note "- **libraries missing**: $(head -n 5 "$W/ldd.log" | tr '\n' ';' | tr -s ' \t' ' ')"
    keep "$W/ldd.log" "ldd: missing libraries"
fi
version=$("$BIN/dino-jit" --version 2>&1)
if printf '%s' "$version" | grep -q '^NVRTC: none'; then   # not on the loader's path: search
    for f in /usr/local/cuda/lib64/libnvrtc.so* /usr/local/cuda/targets/x86_64-linux/lib/libnvrtc.so* \
        /usr/local/cuda-*/lib64/libnvrtc.so* /usr/local/cuda*/lib/libnvrtc.so* \
        $("$PYTHON" -c 'import site; print("\n".join(site.getsitepackages()))' 2>/dev/null | xargs -I{} sh -c 'ls {}/nvidia/*/lib/libnvrtc.so* {}/nvidia/cu*/lib/libnvrtc.so* 2>/dev/null'); do
        case $f in *builtins* | *alt*) continue ;; esac
        [ -f "$f" ] && DINO_NVRTC=$f "$BIN/dino-jit" --version 2>&1 | grep -qF "NVRTC: " &&
            DINO_NVRTC=$f "$BIN/dino-jit" --version 2>&1 | grep -q "^NVRTC: [0-9.]* ($f)" && { export DINO_NVRTC=$f; break; }
    done
    version=$("$BIN/dino-jit" --version 2>&1)
    note "NVRTC was not on the loader's path: DINO_NVRTC=${DINO_NVRTC:-none found}"
fi
if printf '%s' "$version" | grep -q '^CUDA driver: none' && [ -z "${DINO_CUDA_DRIVER:-}" ]; then   # likewise
    for f in /usr/local/nvidia/lib64/libcuda.so.1 /usr/local/nvidia/lib/libcuda.so.1 /usr/lib/x86_64-linux-gnu/libcuda.so.1 \
        /usr/lib64/libcuda.so.1 /usr/local/cuda/compat/libcuda.so.1; do
        [ -f "$f" ] && DINO_CUDA_DRIVER=$f "$BIN/dino-jit" --version 2>&1 | grep -q "^CUDA driver: [0-9.]* ($f)" &&
            { export DINO_CUDA_DRIVER=$f; break; }
    done
    version=$("$BIN/dino-jit" --version 2>&1)
    note "the CUDA driver was not on the loader's path: DINO_CUDA_DRIVER=${DINO_CUDA_DRIVER:-none found}"
fi
note "dino-jit: $(printf '%s' "$version" | tail -n +2 | tr '\n' ';')"
CC_OK=1
printf 'int f(int x) { return x + 1; }\n' >"$W/cc_check.c"
if ! ${CC:-cc} -O2 -fopenmp -shared -fPIC "$W/cc_check.c" -o "$W/cc_check.so" >"$W/cc.log" 2>&1; then
    CC_OK=0
    note "- **no working C compiler** (${CC:-cc} -fopenmp): test_gpu's CPU comparisons will fail: $(head -n 2 "$W/cc.log" | tr '\n' ' ')"
fi
note "cc: $(${CC:-cc} --version 2>/dev/null | head -n 1)"
SAN=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer /usr/local/cuda*/bin/compute-sanitizer \
    /usr/local/cuda*/compute-sanitizer/compute-sanitizer 2>/dev/null | head -n 1)
note "compute-sanitizer: ${SAN:-not found}"
# pycheck PYTHON MODULE...: the interpreter, each module's version or MISSING, torch's GPU
pycheck() {
    local py=$1
    shift
    timeout 120 "$py" - "$@" <<'EOF' 2>&1
import importlib, sys
print("python", sys.version.split()[0], sys.executable)
for m in sys.argv[1:]:
    try: print(m, getattr(importlib.import_module(m), "__version__", "?"))
    except Exception as e: print(m, "MISSING", type(e).__name__, e)
if "torch" in sys.argv[1:]:
    try:
        import torch; print("torch_gpu", torch.cuda.is_available())
    except Exception: print("torch_gpu False")
EOF
}
{
    pycheck "$PYTHON" numpy
    pycheck "$PY_TORCH" torch torchdiffeq
    pycheck "$PY_JAX" jax equinox optax diffrax
} >"$W/python.log"
keep "$W/python.log" "python"
note "python: $(grep -v '^torch_gpu' "$W/python.log" | sed 's/ MISSING.*/ MISSING/' | tr '\n' ';' | cut -c1-400)"
grep -q MISSING "$W/python.log" && note "- **python packages missing**: $(grep MISSING "$W/python.log" | cut -d' ' -f1 | tr '\n' ' ')"
# the baselines on a GPU only (on a CPU they would spend the budget), unless BASELINES_ON_CPU=1
TORCH_OK=1 JAX_OK=1
if [ "${BASELINES_ON_CPU:-0}" != 1 ]; then
    grep -q '^torch_gpu True' "$W/python.log" || { TORCH_OK=0; note "- PyTorch sees no GPU: its baselines are skipped"; }
    # JAX falls back to the CPU silently when its CUDA plugin fails: ask it (a few seconds)
    jdev=$(timeout 60 "$PY_JAX" -c 'import jax; print(jax.devices()[0].platform)' 2>"$W/jax_devices.log" | tail -n 1)
    keep "$W/jax_devices.log" "jax.devices()"
    [ "$jdev" = gpu ] || { JAX_OK=0; note "- JAX's device is '${jdev:-none}', not gpu: its baselines are skipped"; }
fi
echo "[env: $(secs "$T0") s]" | tee -a "$steplog"

# ---------------------------------------------------------------------------- tests
if want tests; then
    note ""
    timed --debug 180 test_gpu "$BIN/test_gpu" "$S" tests/specs
    note "test_gpu: $(tail -n 1 "$W/test_gpu.log")"
    grep -E '^(FAIL|SKIP)' "$W/test_gpu.log" | head -n 12 | cut -c1-300 | sed 's/^/    /' >>"$summary"
fi

# ---------------------------------------------------------------------------- sanitize
if want sanitize; then
    note ""
    if [ -z "$SAN" ]; then
        note "compute-sanitizer: not found; nothing checked"
    else
        row="compute-sanitizer on node_small (1 epoch, DINO_CUDA_GRAPH=0):"
        for t in memcheck racecheck synccheck; do
            timed --debug 90 "sanitize_$t" env DINO_CUDA_GRAPH=0 "$SAN" --tool "$t" --error-exitcode 3 \
                "$BIN/dino-jit" "$S/specs/node_small.dino" --backend cuda --data "$S/reference/node_small" --epochs 1 -q
            rc=$?
            log=$W/sanitize_$t.log
            if grep -q -i 'device not supported\|not supported on this' "$log"; then
                row+=" $t: refused the device ($(grep -m 1 -i 'not supported' "$log" | cut -c1-100));"
                note "$row skipped the rest"
                row=
                break
            fi
            if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then   # a hang would repeat: keep the budget
                note "$row $t: timed out; skipped the rest"
                row=
                break
            fi
            case $rc in
                0) row+=" $t: $(grep -o 'ERROR SUMMARY: [0-9]* errors\?' "$log" | tail -n 1 || echo 'clean')," ;;
                3) row+=" **$t: $(grep -o 'ERROR SUMMARY: [0-9]* errors\?' "$log" | tail -n 1)**,"
                   grep -E '^========= +(Invalid|Race|Barrier|Uninitialized|Error|Program hit|.*at 0x.* in )' "$log" |
                       head -n 4 | cut -c1-300 | sed "s/^/    $t: /" >>"$W/san_errors" ;;
                *) row+=" $t: exit $rc," ;;
            esac
        done
        [ -n "$row" ] && note "$row"
        [ -f "$W/san_errors" ] && cat "$W/san_errors" >>"$summary"
    fi
fi

# the DINO data: dino_poisson's shapes, random (start, dino, stream, fast)
D=$W/dino-data
if want start || want dino || want stream || want fast; then
    timeout 120 "$PYTHON" - "$D" "$ROWS" <<'EOF' || note "- **could not write the DINO data**"
import os, sys, numpy as np
d = sys.argv[1]; os.makedirs(d, exist_ok=True); r = np.random.default_rng(0); n = int(sys.argv[2])
np.save(f"{d}/m_data.npy", r.standard_normal((n, 200), dtype=np.float32))
np.save(f"{d}/q_data.npy", r.standard_normal((n, 25), dtype=np.float32))
np.save(f"{d}/J_data.npy", np.float32(0.1) * r.standard_normal((n, 25, 200), dtype=np.float32))
EOF
fi
# dino_spec B P [EXTRA]: dino_poisson.dino at batch B, precision P, DINO_EPOCHS epochs, split 80/20
dino_spec() {
    local f=$W/dino_b$1_$2.dino
    sed -e "s/epochs    1500/epochs    $DINO_EPOCHS/" -e "s/batch     32/batch     $1/" \
        -e "s/width = 400, depth = 8/width = $NET_W, depth = $NET_D/" \
        -e "s/seed      0/seed      0\n    precision $2/" -e 's/split train 20000, test 5000/split train 0.8, test 0.2/' \
        "$S/specs/dino_poisson.dino" >"$f"
    echo "$f"
}

# ---------------------------------------------------------------------------- start
if want start; then
    note ""
    note "## Start (--epochs 0: no data read): an empty cache (NVRTC compiles) against the cached CUBIN; targets 2 s and 100 ms"
    note "| spec | cold: ready in | cold: whole process | cached: ready in | cached: whole process |"
    note "|---|---|---|---|---|"
    for cfg in "node_small $S/specs/node_small.dino $S/reference/node_small" \
        "node_mnist $S/specs/node_mnist.dino $MNIST" \
        "dino_poisson_f32 $(dino_spec 32 f32) $D"; do
        set -- $cfg
        cache=$W/cache-$1
        rm -rf "$cache"
        cells=""
        for run in cold cached; do
            t0=$(now)
            DINO_CACHE_DIR=$cache timed --debug 120 "start_$1_$run" "$BIN/dino-jit" "$2" --backend cuda --epochs 0 --data "$3"
            cells+=" $(ready_s "$W/start_$1_$run.log") s | $(secs "$t0") s |"
        done
        note "| $1 |$cells"
    done
    grep -h 'from the cache\|compiled' "$W"/start_*_cached.log 2>/dev/null | head -n 3 | sed 's/^/    /' >>"$summary"
fi

# ---------------------------------------------------------------------------- dino
if want dino; then
    note ""
    note "## DINO: 200 -> $NET_W x $NET_D -> 25 gelu, H1 loss, Adam, $((ROWS * 4 / 5)) training rows, $DINO_EPOCHS epochs (best after the first); JAX at its default matmul precision"
    note "| batch | prec | dino s/epoch | no graphs | JAX s/epoch | PyTorch s/epoch | dino vs JAX (target) | dino vs PyTorch | dino ready | JAX start to 1st step | dino GPU mem | JAX peak | PyTorch peak |"
    note "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    for cfg in "32 f32" "1024 f32" "32 f64" "1024 f64"; do
        set -- $cfg
        b=$1 p=$2 tag=dino_b$1_$2
        spec=$(dino_spec "$b" "$p")
        timed --debug --mem 120 "$tag" "$BIN/dino-jit" "$spec" --data "$D" --backend cuda --log "$W/$tag.csv" --set eval_every=100
        dino=$(epoch_s "$W/$tag.csv") dmem=$LAST_MEM
        timed --debug 120 "${tag}_nograph" env DINO_CUDA_GRAPH=0 "$BIN/dino-jit" "$spec" --data "$D" --backend cuda \
            --log "$W/${tag}_nograph.csv" --set eval_every=100
        nograph=$(epoch_s "$W/${tag}_nograph.csv")
        jx=- th=-
        if [ $JAX_OK = 1 ]; then
            timed 180 "jax_$tag" "$PY_JAX" bench/gpu/jax_dino.py "$D" "$b" "$DINO_EPOCHS" "$p"
            jx=$(json "$W/jax_$tag.log" s_per_epoch %.3f)
        fi
        if [ $TORCH_OK = 1 ]; then
            timed 180 "torch_$tag" "$PY_TORCH" bench/gpu/torch_dino.py "$D" "$b" "$DINO_EPOCHS" "$p"
            th=$(json "$W/torch_$tag.log" s_per_epoch %.3f)
        fi
        target=$([ "$b" = 32 ] && echo 10x || echo 3x)
        note "| $b | $p | $dino | $nograph | $jx | $th | $(ratio "$jx" "$dino") ($target) | $(ratio "$th" "$dino") |" \
            "$(ready_s "$W/$tag.log") s | $(json "$W/jax_$tag.log" start_to_first_step_s %.1f) s | $dmem |" \
            "$(json "$W/jax_$tag.log" peak_bytes %d | awk '{ if ($1 + 0 > 0) printf "%.0f MiB", $1 / 1048576; else print "-" }') |" \
            "$(json "$W/torch_$tag.log" peak_bytes %d | awk '{ if ($1 + 0 > 0) printf "%.0f MiB", $1 / 1048576; else print "-" }') |"
    done
fi

# ---------------------------------------------------------------------------- stream, fast
if want stream || want fast; then
    note ""
    note "## Batch 1024, f32: streamed batches and fast math against the resident, precise run"
    note "| run | s/epoch | last train loss | GPU mem |"
    note "|---|---|---|---|"
    spec=$(dino_spec 1024 f32)
    base=$W/dino_b1024_f32.csv
    if [ ! -f "$base" ]; then   # the dino step did not run: the resident run here
        timed --debug --mem 120 dino_b1024_f32 "$BIN/dino-jit" "$spec" --data "$D" --backend cuda --log "$base" --set eval_every=100
    fi
    note "| resident, precise | $(epoch_s "$base") | $(csv_last "$base" train_loss %.6e) | - |"
    if want stream; then
        timed --debug --mem 120 stream env DINO_CUDA_STREAM=1 "$BIN/dino-jit" "$spec" --data "$D" --backend cuda \
            --log "$W/stream.csv" --set eval_every=100
        note "| DINO_CUDA_STREAM=1 | $(epoch_s "$W/stream.csv") | $(csv_last "$W/stream.csv" train_loss %.6e) | $LAST_MEM |"
        grep -i 'stream' "$W/stream.log" | head -n 2 | cut -c1-200 | sed 's/^/    /' >>"$summary"
    fi
    if want fast; then
        timed --debug --mem 120 fast "$BIN/dino-jit" "$spec" --data "$D" --backend cuda --log "$W/fast.csv" \
            --set eval_every=100 --set math=fast
        note "| --set math=fast | $(epoch_s "$W/fast.csv") | $(csv_last "$W/fast.csv" train_loss %.6e) | $LAST_MEM |"
    fi
fi

# ---------------------------------------------------------------------------- pint (before mnist: the
# runs of call2 that matter most come first)
if want pint; then
    note ""
    note "## Parareal against the serial solve (pint_gpu $PINT_ARGS); target at batch 8: >= 3x, error <= 1e-4"
    timed --debug 240 pint "$BIN/pint_gpu" $PINT_ARGS
    grep '^|' "$W/pint.log" >>"$summary" || note "pint_gpu printed no table: $(tail -n 2 "$W/pint.log" | tr '\n' ' ')"
    grep 'opened in' "$W/pint.log" | awk '{ printf "%s %s s; ", $1, $4 }' | sed 's/^/    open (compile) times: /' >>"$summary"
    note ""
fi

# ---------------------------------------------------------------------------- mnist
if want mnist; then
    note ""
    note "## Neural ODE on MNIST (RK4, batch 128, Adam cosine); target >= 98 % in <= 10 s of training, <= 1 GB"
    note "| run | epochs | training s | s/epoch | test accuracy | GPU memory | accuracy @epoch (training s) |"
    note "|---|---|---|---|---|---|---|"
    mnist_dino() {   # mnist_dino NAME SPEC EPOCHS SHARE
        # unshared: every stage written out (DINO_CUDA_SHARE=0), to see what sharing costs at run time
        timed --debug --mem 200 "mnist_$1" env DINO_CUDA_SHARE="$4" "$BIN/dino-jit" "$2" --data "$MNIST" --backend cuda \
            --epochs "$3" --log "$W/mnist_$1.csv"
        f=$W/mnist_$1.csv
        acc=$(csv_last "$f" accuracy | awk '{ if ($1 != "-") printf "%.2f %%", 100 * $1; else print "-" }')
        note "| dino $1 ($(basename "$2")) | $3 | $(csv_last "$f" seconds %.2f) | $(epoch_s "$f") | $acc | $LAST_MEM | $(evals "$f") |"
    }
    mnist_dino shared "$S/specs/node_mnist.dino" "$ME_SHARED" 1
    mnist_dino wide specs/node_mnist.dino "$ME_WIDE" 1
    for impl in torch jax; do
        py=$([ $impl = torch ] && echo "$PY_TORCH" || echo "$PY_JAX")
        ok=$([ $impl = torch ] && echo $TORCH_OK || echo $JAX_OK)
        [ "$ok" = 1 ] || { note "| $impl | skipped (no GPU) | | | | | |"; continue; }
        timed 200 "mnist_$impl" "$py" bench/gpu/node_mnist_$impl.py "$MNIST" "$ME_BASE"
        l=$W/mnist_$impl.log
        note "| $(json "$l" impl) (width 64) | $ME_BASE | $(json "$l" train_s %.2f) | $(json "$l" s_per_epoch %.3f) |" \
            "$(json "$l" test_accuracy %.4f | awk '{ if ($1 != "-") printf "%.2f %%", 100 * $1; else print "-" }') |" \
            "$(json "$l" peak_bytes %d | awk '{ if ($1 + 0 > 0) printf "%.0f MiB (allocator peak)", $1 / 1048576; else print "-" }') | |"
    done
    mnist_dino unshared "$S/specs/node_mnist.dino" "$ME_SHARED" 0   # the least needed: last
fi

# ---------------------------------------------------------------------------- ckpt
if want ckpt; then
    note ""
    BACKEND=cuda timed 300 ckpt bash bench/checkpoint/run.sh "$BIN" ${CKPT_ARGS:-}
    cat "$W/ckpt.log" >>"$summary"
fi

finish
