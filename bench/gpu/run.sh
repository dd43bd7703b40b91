#!/usr/bin/env bash
# bench/gpu/run.sh - the GPU campaign in one call on a lent machine (see prepare.sh, which builds
# gpu-carry/ here first). Every step has its own time limit, so one that hangs costs only its
# share; everything is logged under $OUT and a summary table is printed last.
#
#   1. the GPU tests: test_gpu (reference values of dino_small, node_small, pint_small on the
#      CUDA backend; CUDA against CPU on a larger model; a loss curve)
#   2. DINO (the network of dino_poisson.dino, 20,000 random training rows, H1 loss, Adam):
#      dino against JAX (jax_dino.py, the way dinox does it) and PyTorch (torch_dino.py),
#      batch 32 and 1024, f32 and f64: seconds per epoch (dino also with DINO_CUDA_GRAPH=0, every
#      kernel launched from the host), start to first step, peak memory
#   3. the neural ODE on MNIST: dino-jit on ../shared/specs/node_mnist.dino (10 epochs, and again
#      with DINO_CUDA_SHARE=0) and on specs/node_mnist.dino (15 epochs), against torchdiffeq and
#      diffrax (2 epochs each)
#   4. Parareal: serial against pint (node_mnist_pint.dino and a long-horizon spec), predict
#   5. ckpt (not among the defaults): bench/checkpoint on the GPU, the training workspace and
#      seconds per epoch of a neural ODE (rk4 48 steps) without checkpointing and with N = 2, 6, 12
#
# usage (on the device machine, from the repository root): bash bench/gpu/run.sh [STEPS]
#   STEPS: a subset of "tests dino mnist pint ckpt" (default: all but ckpt)
#   ROWS=25000 (DINO rows: 80 % train), DINO_EPOCHS=3, MNIST_EPOCHS="10 15 2" (dino shared,
#   dino wide, each baseline), CKPT_ARGS="48 64 64 4" (bench/checkpoint's STEPS WIDTH BATCH
#   EPOCHS): smaller values make a smoke run of this script, e.g. here on the
#   emulated device (tests/fake_cuda): DINO_CUDA_DRIVER=... DINO_NVRTC=... ROWS=500 ...
set -u
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
C=gpu-carry
BIN=$C/bin
S=$C/shared
steps=${*:-tests dino mnist pint}
ROWS=${ROWS:-25000} DINO_EPOCHS=${DINO_EPOCHS:-3}
read -r ME_SHARED ME_WIDE ME_BASE <<<"${MNIST_EPOCHS:-10 15 2}"
export DINO_CACHE_DIR=/tmp/dino-cache PYTHONUNBUFFERED=1
summary=$OUT/summary.md
: >"$summary"
note() { echo "$*" | tee -a "$summary"; }
want() { case " $steps " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
# timed LIMIT NAME COMMAND...: runs it with a time limit, output to $OUT/NAME.log
timed() {
    local limit=$1 name=$2
    shift 2
    local t0=$(date +%s.%N)
    timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
    local rc=$?
    echo "[$name: exit $rc, $(echo "$(date +%s.%N) - $t0" | bc) s]" | tee -a "$OUT/steps.log"
    return $rc
}

note "# bench/gpu/run.sh, $(date -u +%Y-%m-%dT%H:%MZ)"
note "device: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | head -n 1)"
note "nvcc: $(nvcc --version 2>/dev/null | tail -n 1); python: $(python3 -c 'import sys, torch, jax; print(sys.version.split()[0], "torch", torch.__version__, "jax", jax.__version__)' 2>&1 | tail -n 1)"

# ---------------------------------------------------------------------------- 1. tests
if want tests; then
    timed 300 test_gpu "$BIN/test_gpu" "$S"
    note "test_gpu: $(tail -n 1 "$OUT/test_gpu.log")"
    grep -E 'FAIL|SKIP' "$OUT/test_gpu.log" | head -n 20 | tee -a "$summary"
fi

# ---------------------------------------------------------------------------- 2. DINO
if want dino; then
    D=/tmp/dino-data
    python3 - "$D" "$ROWS" <<'EOF'
import os, sys, numpy as np
d = sys.argv[1]; os.makedirs(d, exist_ok=True); r = np.random.default_rng(0); n = int(sys.argv[2])
np.save(f"{d}/m_data.npy", r.standard_normal((n, 200)).astype(np.float32))
np.save(f"{d}/q_data.npy", r.standard_normal((n, 25)).astype(np.float32))
np.save(f"{d}/J_data.npy", (0.1 * r.standard_normal((n, 25, 200))).astype(np.float32))
EOF
    note ""
    note "## DINO: 200 -> 400 x 8 -> 25 gelu, H1 loss, Adam 1e-3, $((ROWS * 4 / 5)) training rows, $DINO_EPOCHS epochs (the best after the first)"
    note "| batch | precision | dino s/epoch | dino without graphs | JAX s/epoch | PyTorch s/epoch | dino vs JAX | dino start to first step | JAX start to first step | dino peak | JAX peak |"
    note "|---|---|---|---|---|---|---|---|---|---|---|"
    for cfg in "32 f32" "1024 f32" "32 f64" "1024 f64"; do
        set -- $cfg
        b=$1 p=$2 tag=dino_b$1_$2
        sed -e "s/epochs    1500/epochs    $DINO_EPOCHS/" -e "s/batch     32/batch     $b/" \
            -e "s/seed      0/seed      0\n    precision $p/" -e 's/split train 20000, test 5000/split train 0.8, test 0.2/' \
            "$S/specs/dino_poisson.dino" >"/tmp/$tag.dino"
        t0=$(date +%s.%N)
        timed 240 "$tag" "$BIN/dino-jit" "/tmp/$tag.dino" --data "$D" --backend cuda --log "$OUT/$tag.csv" --set eval_every=100
        dino=$(python3 -c "import csv,sys; t=[float(r['seconds']) for r in csv.DictReader(open('$OUT/$tag.csv'))]; d=[b-a for a,b in zip([0]+t,t)]; print('%.3f' % min(d[1:] or d))" 2>/dev/null || echo "-")
        DINO_CUDA_GRAPH=0 timed 240 "${tag}_nograph" "$BIN/dino-jit" "/tmp/$tag.dino" --data "$D" --backend cuda \
            --log "$OUT/${tag}_nograph.csv" --set eval_every=100
        nograph=$(python3 -c "import csv,sys; t=[float(r['seconds']) for r in csv.DictReader(open('$OUT/${tag}_nograph.csv'))]; d=[b-a for a,b in zip([0]+t,t)]; print('%.3f' % min(d[1:] or d))" 2>/dev/null || echo "-")
        ready=$(grep -o 'ready in [0-9.]* s' "$OUT/$tag.log" | head -n 1 | grep -o '[0-9.]*' || echo "-")
        timed 300 "jax_$tag" python3 bench/gpu/jax_dino.py "$D" "$b" "$DINO_EPOCHS" "$p"
        timed 300 "torch_$tag" python3 bench/gpu/torch_dino.py "$D" "$b" "$DINO_EPOCHS" "$p"
        jx=$(tail -n 1 "$OUT/jax_$tag.log")
        th=$(tail -n 1 "$OUT/torch_$tag.log")
        python3 - "$b" "$p" "$dino" "$ready" "$jx" "$th" "$nograph" <<'EOF' | tee -a "$summary"
import json, sys
b, p, dino, ready = sys.argv[1:5]
nograph = sys.argv[7]
def get(s, k, f="%.3f"):
    try: return f % json.loads(s)[k]
    except Exception: return "-"
jx, th = sys.argv[5], sys.argv[6]
ratio = "-"
try: ratio = "%.2fx" % (json.loads(jx)["s_per_epoch"] / float(dino))
except Exception: pass
gib = lambda s: get(s, "peak_bytes", "%d")
print(f"| {b} | {p} | {dino} | {nograph} | {get(jx, 's_per_epoch')} | {get(th, 's_per_epoch')} | {ratio} | {ready} s | "
      f"{get(jx, 'start_to_first_step_s', '%.1f')} s | see log | {gib(jx)} B |")
EOF
    done
fi

# ---------------------------------------------------------------------------- 3. MNIST
if want mnist; then
    M=$S/data/mnist
    note ""
    note "## Neural ODE on MNIST (RK4, batch 128, Adam cosine)"
    note "| run | epochs | training s | s/epoch | test accuracy | peak memory |"
    note "|---|---|---|---|---|---|"
    for cfg in "shared $S/specs/node_mnist.dino $ME_SHARED" "wide specs/node_mnist.dino $ME_WIDE" \
        "unshared $S/specs/node_mnist.dino $ME_SHARED"; do
        set -- $cfg
        # unshared: every stage written out (DINO_CUDA_SHARE=0), to see what sharing costs at run time
        DINO_CUDA_SHARE=$([ "$1" = unshared ] && echo 0 || echo 1) \
            timed 300 "mnist_$1" "$BIN/dino-jit" "$2" --data "$M" --backend cuda --epochs "$3" --log "$OUT/mnist_$1.csv"
        python3 - "$OUT/mnist_$1.csv" "dino $1 ($2)" "$3" <<'EOF' | tee -a "$summary"
import csv, sys
try:
    rows = list(csv.DictReader(open(sys.argv[1]))); t = [float(r["seconds"]) for r in rows]
    d = [b - a for a, b in zip([0] + t, t)]
    print(f"| {sys.argv[2]} | {sys.argv[3]} | {t[-1]:.2f} | {min(d):.3f} | {float(rows[-1]['accuracy']) * 100:.2f} % | see log |")
except Exception as e:
    print(f"| {sys.argv[2]} | {sys.argv[3]} | failed: {e} | | | |")
EOF
    done
    for impl in torch jax; do
        timed 400 "mnist_$impl" python3 bench/gpu/node_mnist_$impl.py "$M" "$ME_BASE"
        python3 - "$(tail -n 1 "$OUT/mnist_$impl.log")" <<'EOF' | tee -a "$summary"
import json, sys
try:
    r = json.loads(sys.argv[1])
    print(f"| {r['impl']} (shared network) | {r['epochs']} | {r['train_s']:.2f} | {r['s_per_epoch']:.3f} | {r['test_accuracy'] * 100:.2f} % | {r['peak_bytes'] / 2**20:.0f} MiB |")
except Exception as e:
    print(f"| baseline | | failed: {sys.argv[1][:80]} | | | |")
EOF
    done
fi

# ---------------------------------------------------------------------------- 4. Parareal
if want pint; then
    note ""
    note "## Parareal against the serial solve, prediction of 10,000 MNIST test images (seconds of --predict)"
    python3 - "$S/data/mnist" <<'EOF'
import gzip, sys, numpy as np
raw = gzip.open(f"{sys.argv[1]}/t10k-images-idx3-ubyte.gz").read()
np.save("/tmp/mnist_x.npy", (np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 784) / 255).astype(np.float32))
EOF
    for spec in node_mnist node_mnist_pint; do
        timed 200 "pint_$spec" "$BIN/dino-jit" "$S/specs/$spec.dino" --data "$S/data/mnist" --backend cuda --epochs 1 \
            --predict /tmp/mnist_x.npy --out "/tmp/pred_$spec"
        note "$spec: $(grep -E 'predict|wrote' "$OUT/pint_$spec.log" | tail -n 1)"
    done
fi

# ---------------------------------------------------------------------------- 5. checkpointing
if want ckpt; then
    note ""
    BACKEND=cuda timed 300 ckpt bash bench/checkpoint/run.sh "$BIN" ${CKPT_ARGS:-}
    tee -a "$summary" <"$OUT/ckpt.log"
fi

note ""
note "logs: $(ls "$OUT" | tr '\n' ' ')"
cat "$OUT/steps.log"
