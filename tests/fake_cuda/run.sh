#!/usr/bin/env bash
# run.sh DINO_JIT FAKE_CUDA FAKE_NVRTC SHARED_DIR - dino-jit's CUDA backend from the command
# line, on the CPU emulation of a GPU (fake_cuda.c, fake_nvrtc.c):
#   - --backend auto chooses the CUDA backend when the driver and NVRTC load, and says so
#   - training pint_small (Parareal corrections in the CSV) and node_small for 3 epochs: every
#     CSV column but the seconds equal to the CPU backend's within 1e-9 relative (f64), and
#     --predict writes y.npy and J.npy equal to the CPU backend's within 1e-10
#   - --save / --load on the CUDA backend: 3 epochs, then 3 more from the checkpoint, give the
#     CSV rows of one 6-epoch run
#   - CUDA graphs: with batch 3 of 8 rows, each epoch's two full batches replay the captured
#     step (gradient and update; graph launches counted by the fake driver), and the partial
#     batch launches its gradient kernels one by one and replays the captured update;
#     the CSV equals the CPU's, and equals it too with DINO_CUDA_GRAPH=0 and with a driver that
#     refuses to capture (no graph launches then)
#   - checkpointing: node_small with rk4 12 steps and `checkpoint 3` trains as on the CPU and as
#     without (CSV within 1e-9), in at most half the training workspace
#   - an NVRTC that rejects --Ofast-compile (older than CUDA 12.8): compiled again without it
#   - an NVRTC that does not list the GPU's architecture: an error naming it (issue 19)
#   - the driver library loaded once per process and one primary context created (issue 19)
#   - a faulting kernel: with DINO_CUDA_DEBUG=1 named, with its stage comment and geometry
#   - a tile kernel's grid: min(batch, the driver's occupancy x the SMs)
#   - a module for another architecture refused (CUDA_ERROR_NO_BINARY_FOR_GPU); an sm_89 device
#     gets an sm_89 module; graphs are captured with no synchronous call inside (the stand-in
#     refuses those during capture, as the driver does, so the graph checks above would fail)
#   - errors, exit 1 with a message: an NVRTC compile failure (its log, where the source was
#     saved), too little GPU memory for the data (needed and free; checkpointing offered), an unknown DINO_CUDA_FUSE,
#     a DINO_CUDA_DRIVER that does not load with --backend cuda
# Exit 77 (skipped) without python3 or a C++ compiler, or without ../shared/reference.
set -u
if [ $# -ne 4 ]; then
    echo "usage: run.sh DINO_JIT FAKE_CUDA FAKE_NVRTC SHARED_DIR" >&2
    exit 2
fi
JIT=$1 FAKE=$2 NVRTC=$3 SHARED=$4
REF=$SHARED/reference
for need in python3 "${CXX:-c++}"; do
    command -v "$need" >/dev/null 2>&1 || { echo "SKIP: $need not found"; exit 77; }
done
[ -d "$REF/node_small" ] || { echo "SKIP: $REF not found"; exit 77; }
T=$(mktemp -d "${TMPDIR:-/tmp}/dino_fake_cuda.XXXXXX") || exit 2
trap 'rm -rf "$T"' EXIT
export DINO_CACHE_DIR=$T/cache OMP_NUM_THREADS=1

PASS=0 FAIL=0
ok() { PASS=$((PASS + 1)); echo "ok   $*"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL $*"; }

# gpu ARGS...: dino-jit on the emulated GPU; cpu ARGS...: on the CPU backend
gpu() { DINO_CUDA_DRIVER=$FAKE DINO_NVRTC=$NVRTC "$JIT" "$@"; }
cpu() { "$JIT" --backend cpu "$@"; }

# same_csv A B TOL: the CSVs have the same header and rows; numbers equal within TOL relative
# (the seconds column is ignored)
same_csv() {
    python3 - "$1" "$2" "$3" <<'EOF'
import csv, sys
a = list(csv.reader(open(sys.argv[1]))); b = list(csv.reader(open(sys.argv[2]))); tol = float(sys.argv[3])
if a[0] != b[0] or len(a) != len(b): sys.exit(f"headers or row counts differ: {a[0]} {len(a)} / {b[0]} {len(b)}")
worst = 0.0
for ra, rb in zip(a[1:], b[1:]):
    for name, x, y in zip(a[0], ra, rb):
        if name == "seconds" or x == y: continue
        x, y = float(x), float(y)
        worst = max(worst, abs(x - y) / max(abs(x), abs(y), 1e-300))
print(f"{len(a) - 1} rows, {len(a[0])} columns, worst relative difference {worst:.2e}")
sys.exit(0 if worst <= tol else 1)
EOF
}

# same_npy A B TOL
same_npy() {
    python3 - "$1" "$2" "$3" <<'EOF'
import ast, struct, sys
def read(p):
    raw = open(p, "rb").read(); major = raw[6]
    hl, st = (struct.unpack("<H", raw[8:10])[0], 10) if major == 1 else (struct.unpack("<I", raw[8:12])[0], 12)
    h = ast.literal_eval(raw[st:st + hl].decode("latin1")); code, size = {"<f4": ("f", 4), "<f8": ("d", 8)}[h["descr"]]
    data = raw[st + hl:]; return h["shape"], struct.unpack("<%d%s" % (len(data) // size, code), data)
sa, a = read(sys.argv[1]); sb, b = read(sys.argv[2])
if sa != sb: sys.exit(f"shapes differ: {sa} {sb}")
scale = max(max(abs(v) for v in a), 1e-300)
worst = max(abs(x - y) for x, y in zip(a, b)) / scale
print(f"shape {sa}, max |diff| / max |value| {worst:.2e}")
sys.exit(0 if worst <= float(sys.argv[3]) else 1)
EOF
}

# check DESCRIPTION COMMAND...: the command succeeds; its last line of output goes on the line
check() {
    local desc=$1 out
    shift
    if out=$("$@" 2>&1); then ok "$desc: $(printf '%s' "$out" | tail -n 1)"; else bad "$desc: $out"; fi
}

# fails DESCRIPTION PATTERN COMMAND...: the command exits 1 and says PATTERN (grep -E)
fails() {
    local desc=$1 pattern=$2 out rc
    shift 2
    out=$("$@" 2>&1)
    rc=$?
    if [ $rc -eq 1 ] && printf '%s' "$out" | grep -Eq "$pattern"; then
        ok "$desc: $(printf '%s' "$out" | grep -E "$pattern" | head -n 1 | cut -c1-150)"
    else
        bad "$desc: exit $rc, expected 1 and /$pattern/: $(printf '%s' "$out" | tail -n 3)"
    fi
}

# ---------------------------------------------------------------------------- the backend is chosen
out=$(gpu "$SHARED/specs/node_small.dino" --data "$REF/node_small" --epochs 1 2>&1)
if printf '%s' "$out" | grep -q 'CUDA: dino CPU emulation of a CUDA device'; then
    ok "--backend auto uses the (emulated) GPU: $(printf '%s' "$out" | grep -m1 'CUDA:' | cut -c1-120)"
else
    bad "--backend auto did not choose the CUDA backend: $out"
fi

# ---------------------------------------------------------------------------- training and prediction
for spec in pint_small node_small; do
    args=("$SHARED/specs/$spec.dino" --data "$REF/$spec" --epochs 3 --set eval_every=1 -q)
    gpu "${args[@]}" --backend cuda --log "$T/$spec.cuda.csv" --save "$T/$spec.cuda.st" >/dev/null 2>"$T/err" ||
        bad "$spec: training on the CUDA backend failed: $(tail -n 3 "$T/err")"
    cpu "${args[@]}" --log "$T/$spec.cpu.csv" --save "$T/$spec.cpu.st" >/dev/null 2>&1 || bad "$spec: CPU training failed"
    check "$spec: 3 epochs, CUDA CSV equals the CPU's" same_csv "$T/$spec.cuda.csv" "$T/$spec.cpu.csv" 1e-9
    x=$REF/$spec/x_data.npy
    gpu "$SHARED/specs/$spec.dino" --backend cuda --epochs 0 --load "$REF/$spec/params.safetensors" --predict "$x" \
        --out "$T/$spec.pred.cuda" -q >/dev/null 2>"$T/err" || bad "$spec: CUDA --predict failed: $(tail -n 3 "$T/err")"
    cpu "$SHARED/specs/$spec.dino" --epochs 0 --load "$REF/$spec/params.safetensors" --predict "$x" \
        --out "$T/$spec.pred.cpu" -q >/dev/null 2>&1 || bad "$spec: CPU --predict failed"
    check "$spec: CUDA --predict y.npy equals the CPU's" same_npy "$T/$spec.pred.cuda/y.npy" "$T/$spec.pred.cpu/y.npy" 1e-10
    check "$spec: CUDA --predict J.npy equals the CPU's" same_npy "$T/$spec.pred.cuda/J.npy" "$T/$spec.pred.cpu/J.npy" 1e-10
done
if head -n 1 "$T/pint_small.cuda.csv" | grep -q parareal_z_1; then
    ok "pint_small: the CUDA backend's CSV has the Parareal corrections (parareal_z_1, parareal_z_2)"
else
    bad "pint_small: no parareal columns in $(head -n 1 "$T/pint_small.cuda.csv")"
fi

# ---------------------------------------------------------------------------- resume
spec=$SHARED/specs/node_small.dino
gpu "$spec" --backend cuda --data "$REF/node_small" --epochs 6 --log "$T/full.csv" -q >/dev/null 2>&1 || bad "6-epoch CUDA run failed"
gpu "$spec" --backend cuda --data "$REF/node_small" --epochs 6 --until 3 --save "$T/half.st" --log "$T/a.csv" -q >/dev/null 2>&1 &&
    gpu "$spec" --backend cuda --data "$REF/node_small" --epochs 6 --load "$T/half.st" --log "$T/b.csv" -q >/dev/null 2>&1 ||
    bad "CUDA --until 3 / --load failed"
(head -n 1 "$T/full.csv"; tail -n 3 "$T/full.csv") >"$T/last3.csv"
check "CUDA: 3 epochs, --save, --load, 3 more: epochs 4-6 as in one 6-epoch run" same_csv "$T/b.csv" "$T/last3.csv" 0

# ---------------------------------------------------------------------------- CUDA graphs
# graph_launches FILE: the count the fake driver wrote at exit
graph_launches() { sed -n 's/.*graph_launches \([0-9]*\).*/\1/p' "$1" | tail -n 1; }
gargs=("$spec" --data "$REF/node_small" --epochs 3 --batch 3 --set eval_every=1 -q)
cpu "${gargs[@]}" --log "$T/g.cpu.csv" >/dev/null 2>&1 || bad "batch 3: CPU training failed"
for mode in graphs off refused; do
    : >"$T/stats.$mode"
    case $mode in
    graphs) env=(FAKE_CUDA_STATS="$T/stats.$mode") want=9 ;;
    off) env=(FAKE_CUDA_STATS="$T/stats.$mode" DINO_CUDA_GRAPH=0) want=0 ;;
    refused) env=(FAKE_CUDA_STATS="$T/stats.$mode" FAKE_CUDA_NO_GRAPHS=1) want=0 ;;
    esac
    env "${env[@]}" DINO_CUDA_DRIVER=$FAKE DINO_NVRTC=$NVRTC "$JIT" "${gargs[@]}" --backend cuda --log "$T/g.$mode.csv" \
        >/dev/null 2>"$T/err" || bad "batch 3 ($mode): CUDA training failed: $(tail -n 3 "$T/err")"
    check "batch 3 ($mode): 3 epochs, CUDA CSV equals the CPU's" same_csv "$T/g.$mode.csv" "$T/g.cpu.csv" 1e-9
    got=$(graph_launches "$T/stats.$mode")
    if [ "$got" = "$want" ]; then ok "batch 3 ($mode): $got graph launches (when on: 2 full steps and the partial batch's update, x 3 epochs)"
    else bad "batch 3 ($mode): '$got' graph launches, expected $want ($(cat "$T/stats.$mode"))"; fi
    # the driver library is loaded once per process and its primary context created once (issue 19)
    loads=$(grep -c '^load$' "$T/stats.$mode") contexts=$(sed -n 's/.* contexts \([0-9]*\).*/\1/p' "$T/stats.$mode")
    if [ "$loads" = 1 ] && [ "$contexts" = 1 ]; then ok "batch 3 ($mode): the driver loaded once, one context"
    else bad "batch 3 ($mode): driver loaded $loads times, $contexts contexts created, expected 1 and 1 ($(cat "$T/stats.$mode"))"; fi
done

# ---------------------------------------------------------------------------- checkpointing
# node_small with rk4 12 steps, without and with `checkpoint 3`: the CUDA backend trains the
# checkpointed spec as the CPU does, in a training workspace at most half as large
workspace() { sed -n 's/.*training workspace .*: \([0-9.]*\) KiB per sample.*/\1/p' "$1"; }
sed 's/solver rk4 steps 4/solver rk4 steps 12/' "$spec" >"$T/steps12.dino"
sed 's/solver rk4 steps 4/solver rk4 steps 12\n        checkpoint 3/' "$spec" >"$T/ckpt3.dino"
cargs=(--data "$REF/node_small" --epochs 3 --set eval_every=1)
gpu "$T/steps12.dino" "${cargs[@]}" --backend cuda --log "$T/s12.cuda.csv" >/dev/null 2>"$T/s12.err" ||
    bad "rk4 12 steps: CUDA training failed: $(tail -n 3 "$T/s12.err")"
gpu "$T/ckpt3.dino" "${cargs[@]}" --backend cuda --log "$T/c3.cuda.csv" >/dev/null 2>"$T/c3.err" ||
    bad "checkpoint 3: CUDA training failed: $(tail -n 3 "$T/c3.err")"
cpu "$T/ckpt3.dino" "${cargs[@]}" --log "$T/c3.cpu.csv" >/dev/null 2>&1 || bad "checkpoint 3: CPU training failed"
check "checkpoint 3: 3 epochs, CUDA CSV equals the CPU's" same_csv "$T/c3.cuda.csv" "$T/c3.cpu.csv" 1e-9
check "checkpoint 3: 3 epochs, CUDA CSV equals the CUDA run without" same_csv "$T/c3.cuda.csv" "$T/s12.cuda.csv" 1e-9
ws0=$(workspace "$T/s12.err") ws=$(workspace "$T/c3.err")
if awk -v a="$ws" -v b="$ws0" 'BEGIN { exit !(a != "" && b != "" && 2 * a <= b) }'; then
    ok "checkpoint 3: CUDA training workspace $ws KiB per sample, at most half of $ws0 without"
else
    bad "checkpoint 3: CUDA training workspace '$ws' KiB per sample, not at most half of '$ws0'"
fi

# ---------------------------------------------------------------------------- NVRTC versions and errors
: >"$T/options.log"
FAKE_NVRTC_REJECT_OFAST=1 FAKE_NVRTC_OPTIONS_LOG=$T/options.log DINO_CACHE_DIR=$T/cache2 \
    gpu "$spec" --backend cuda --data "$REF/node_small" --epochs 1 -q >/dev/null 2>"$T/err"
if [ $? -eq 0 ] && grep -q 'Ofast-compile=min (rejected)' "$T/options.log" && grep -qv 'Ofast' "$T/options.log"; then
    ok "an NVRTC without --Ofast-compile: rejected once, compiled again without it"
else
    bad "NVRTC option fallback: $(cat "$T/options.log") $(tail -n 2 "$T/err")"
fi
FAKE_NVRTC_ARCHS=80,89 DINO_CACHE_DIR=$T/cache4 fails "an NVRTC without the GPU's architecture: named, not read as a missing --Ofast-compile" \
    'cannot compile for sm_90: it supports sm_80 to sm_89' gpu "$spec" --backend cuda --data "$REF/node_small" --epochs 1
FAKE_NVRTC_FAIL=1 DINO_CACHE_DIR=$T/cache3 fails "an NVRTC compile failure names the log and the saved source" \
    'CUDA backend could not start: NVRTC failed to compile' gpu "$spec" --backend cuda --data "$REF/node_small" --epochs 1
out=$(FAKE_NVRTC_FAIL=1 DINO_CACHE_DIR=$T/cache3 gpu "$spec" --backend cuda --data "$REF/node_small" --epochs 1 2>&1)
saved=$(printf '%s' "$out" | sed -n 's/.*saved as \([^ ]*\.cu\).*/\1/p' | head -n 1)
if [ -n "$saved" ] && grep -q 'dino_train_k0' "$saved"; then ok "the failed source is saved at $saved"
else bad "no saved source in: $out"; fi
# a kernel that faults (FAKE_CUDA_FAIL_KERNEL): reported at the next synchronisation, under its
# label; with DINO_CUDA_DEBUG=1 by the kernel itself, its stage comment and launch geometry
: >"$T/stats.debug"
out=$(DINO_CUDA_DEBUG=1 FAKE_CUDA_STATS=$T/stats.debug FAKE_CUDA_FAIL_KERNEL=dino_train_grad_z0_weight \
    gpu "$spec" --backend cuda --data "$REF/node_small" --epochs 1 -q 2>&1)
rc=$?
if [ $rc -ne 0 ] && printf '%s' "$out" | grep -Eq 'kernel dino_train_grad_z0_weight [(]the gradient of .*[)], grid [(]1, 1, 1[)], block [(]256, 1, 1[)], 0 bytes dynamic shared memory, 8 rows: CUDA_ERROR_LAUNCH_FAILED' \
    && [ "$(graph_launches "$T/stats.debug")" = 0 ]; then
    ok "DINO_CUDA_DEBUG=1: a faulting kernel named with its stage and geometry, no graphs: $(printf '%s' "$out" | head -n 1 | cut -c1-120)"
else
    bad "DINO_CUDA_DEBUG=1: exit $rc, $(cat "$T/stats.debug"): $out"
fi
# a tile kernel's grid (node_small's dino_train_k1) from the driver's occupancy: min(batch, blocks
# per SM x SMs), read from the debug message's geometry
for occ in 1 3; do
    out=$(FAKE_CUDA_SMS=2 FAKE_CUDA_OCCUPANCY=$occ DINO_CUDA_DEBUG=1 FAKE_CUDA_FAIL_KERNEL=dino_train_k1 \
        gpu "$spec" --backend cuda --data "$REF/node_small" --epochs 1 -q 2>&1)
    want="grid ($((2 * occ)), 1, 1)"
    if printf '%s' "$out" | grep -qF "kernel dino_train_k1 (tile kernel" && printf '%s' "$out" | grep -qF "$want"; then
        ok "tile grid from the occupancy ($occ block(s) per SM, 2 SMs, batch 8): $want"
    else bad "tile grid from the occupancy ($occ per SM): expected '$want': $out"; fi
done
out=$(FAKE_CUDA_FAIL_KERNEL=dino_train_grad_z0_weight gpu "$spec" --backend cuda --data "$REF/node_small" --epochs 1 -q 2>&1)
rc=$?
if [ $rc -ne 0 ] && printf '%s' "$out" | grep -q 'CUDA_ERROR_LAUNCH_FAILED' && ! printf '%s' "$out" | grep -q 'dino_train_grad_z0_weight'; then
    ok "without DINO_CUDA_DEBUG a fault surfaces at the next synchronisation (the case debug mode is for)"
else
    bad "a faulting kernel without DINO_CUDA_DEBUG: exit $rc: $out"
fi
# the stand-in refuses what a real driver refuses: a module for another GPU (the error names it)
out=$(FAKE_NVRTC_WRONG_ARCH=sm_80 DINO_CACHE_DIR=$T/cache5 gpu "$spec" --backend cuda --data "$REF/node_small" --epochs 1 2>&1)
rc=$?
if [ $rc -ne 0 ] && printf '%s' "$out" | grep -q 'loading the compiled kernels: CUDA_ERROR_NO_BINARY_FOR_GPU'; then
    ok "a module for another architecture is refused: $(printf '%s' "$out" | grep NO_BINARY | head -n 1 | cut -c1-120)"
else bad "a module for another architecture: exit $rc: $out"; fi
# and a device of another architecture gets its own module (FAKE_CUDA_CC=89, NVRTC compiles for sm_89)
if FAKE_CUDA_CC=89 DINO_CACHE_DIR=$T/cache6 gpu "$spec" --backend cuda --data "$REF/node_small" --epochs 1 2>&1 | grep -q 'sm_89'; then
    ok "an sm_89 device: compiled for sm_89, loaded and trained"
else bad "an sm_89 device did not train"; fi
FAKE_CUDA_MEM=20000 fails "too little GPU memory: needed and free, offers checkpointing" 'out of GPU memory: the training data and workspace need [0-9.]+ KiB, [0-9.]+ KiB of 19.5 KiB are free [(].*`checkpoint N` in the ode block' \
    gpu "$spec" --backend cuda --data "$REF/node_small" --epochs 1
DINO_CUDA_FUSE=fast fails "an unknown DINO_CUDA_FUSE" 'DINO_CUDA_FUSE must be auto, none or tiles' \
    gpu "$spec" --backend cuda --data "$REF/node_small" --epochs 1
DINO_CUDA_DRIVER=$T/no-such-driver.so fails "--backend cuda without a loadable driver" 'no CUDA driver' \
    "$JIT" "$spec" --backend cuda --data "$REF/node_small" --epochs 1

echo "$PASS passed, $FAIL failed"
[ $FAIL -eq 0 ]
