#!/bin/sh
# bench/spiral/run.sh - dino against torchdiffeq's ode_demo.py on the same spiral, same machine,
# same run: whole-trajectory mean |error| from y(0) over [0, 25] (1000 states) and training time,
# wall and CPU (dino: the whole dino-jit process, code already compiled and cached; torchdiffeq:
# its training loop). On a loaded machine compare the CPU seconds.
#
#   bench/spiral/run.sh BUILD_DIR [OUT_DIR] [THREADS]
#
# dino: examples/spiral/node_spiral.dino (the shared planned spec: rk4 10 steps per window of 10
# states, adam 2e-3 cosine, batch 20, 600 epochs, f32), then node_spiral_long.dino with the
# checkpoint predicts the whole trajectory. torchdiffeq: torchdiffeq_demo.py (the demo's network,
# RMSprop 1e-3, 2000 iterations of 20 windows, dopri5 rtol 1e-7 atol 1e-9, f32). Both on THREADS
# CPU threads (default 1: OMP_NUM_THREADS for dino, torch.set_num_threads for torch). Needs
# python3 with numpy (make_data.py) and a python with torch and torchdiffeq (PYTHON_TORCH,
# default /usr/bin/python3: Debian's python3-torch, `pip install torchdiffeq`); without them
# the torchdiffeq half is skipped and says so.
set -eu
BUILD=$(cd "$1" && pwd)
OUT=${2:-$(mktemp -d "${TMPDIR:-/tmp}/dino_spiral.XXXXXX")}
THREADS=${3:-1}
PYT=${PYTHON_TORCH:-/usr/bin/python3}
HERE=$(cd "$(dirname "$0")" && pwd)
EX="$HERE/../../examples/spiral"
mkdir -p "$OUT"
python3 "$EX/make_data.py" "$OUT"
cp "$EX/node_spiral.dino" "$EX/node_spiral_long.dino" "$OUT/"
cd "$OUT"
OMP_NUM_THREADS=$THREADS "$BUILD/dino-jit" node_spiral_long.dino --data . --epochs 0 -q 2>/dev/null || true  # compile once (cached)
OMP_NUM_THREADS=$THREADS "$BUILD/dino-jit" node_spiral.dino --data . --epochs 1 -q 2>/dev/null || true       # compile once (cached)
# dino_run EPOCHS: train (the spec's settings, EPOCHS epochs), predict the whole trajectory, score
dino_run() {
    /usr/bin/time -f "%U %S" -o cpu.txt env OMP_NUM_THREADS=$THREADS "$BUILD/dino-jit" node_spiral.dino --data . \
        --epochs "$1" --save spiral.safetensors --log train.csv 2>train.err
    dino_s=$(sed -n 's/^dino-jit: trained in \([0-9.]*\) s.*/\1/p' train.err)
    dino_cpu=$(awk '{ printf "%.1f", $1 + $2 }' cpu.txt)
    OMP_NUM_THREADS=$THREADS "$BUILD/dino-jit" node_spiral_long.dino --data . --epochs 0 --load spiral.safetensors \
        --predict true_y0.npy --out pred 2>predict.err
    dino_err=$(python3 "$HERE/score.py" pred/y.npy true_y.npy)
    echo "dino        epochs=$1 steps=$(($1 * 45)) train_seconds=$dino_s process_cpu_seconds=$dino_cpu mean_abs_error=$dino_err threads=$THREADS"
}
dino_run 600     # the spec as written
dino_run 100     # a sixth of it
if "$PYT" -c "import torch, torchdiffeq" 2>/dev/null; then
    "$PYT" "$HERE/torchdiffeq_demo.py" . --threads "$THREADS"
else
    echo "torchdiffeq: skipped ($PYT cannot import torch and torchdiffeq)"
fi
