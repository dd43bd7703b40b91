#!/bin/sh
# examples/spiral/run.sh - the spiral end to end: data, training on windows of 10 states, the whole
# trajectory from y(0) over [0, 25] with the trained weights, and its mean |error|.
#
#   examples/spiral/run.sh BUILD_DIR [OUT_DIR]
set -eu
BUILD=$(cd "$1" && pwd)
OUT=${2:-spiral_out}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT"
python3 "$HERE/make_data.py" "$OUT"
cp "$HERE/node_spiral.dino" "$HERE/node_spiral_long.dino" "$OUT/"
cd "$OUT"
"$BUILD/dino-jit" node_spiral.dino --data . --save spiral.safetensors --log train.csv
"$BUILD/dino-jit" node_spiral_long.dino --data . --epochs 0 --load spiral.safetensors --predict true_y0.npy --out pred
python3 - <<'PY'
import numpy as np
p, t = np.load("pred/y.npy")[0], np.load("true_y.npy")[1:]
print(f"whole trajectory from y(0) over [0, 25], 1000 states: mean |error| {np.abs(p - t).mean():.4e}, "
      f"max |error| {np.abs(p - t).max():.4e}")
PY
