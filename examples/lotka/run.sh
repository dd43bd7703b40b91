#!/bin/sh
# examples/lotka/run.sh - Lotka-Volterra from noisy observations: data, training on windows, the
# learned coefficients, and held-out whole trajectories over [0, 10] predicted from their start.
#
#   examples/lotka/run.sh BUILD_DIR [OUT_DIR]
set -eu
BUILD=$(cd "$1" && pwd)
OUT=${2:-lotka_out}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT"
python3 "$HERE/make_data.py" "$OUT"
cp "$HERE/lotka.dino" "$HERE/lotka_long.dino" "$OUT/"
cd "$OUT"
"$BUILD/dino-jit" lotka.dino --data . --save lotka.safetensors
"$BUILD/dino-jit" lotka_long.dino --data . --epochs 0 --load lotka.safetensors --predict test_z0.npy --out pred
python3 - <<'PY'
import json, struct
import numpy as np
p, c = np.load("pred/y.npy"), np.load("test_traj.npy")
rel = np.sqrt(((p - c) ** 2).sum((1, 2)) / (c ** 2).sum((1, 2)))
print(f"held-out trajectories over [0, 10] from their exact start: relative l2 error mean {rel.mean():.4f}, max {rel.max():.4f}")
b = open("lotka.safetensors", "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
get = lambda k: np.frombuffer(b[8 + n + h[k]["data_offsets"][0]:8 + n + h[k]["data_offsets"][1]],
                              dtype="<f4" if h[k]["dtype"] == "F32" else "<f8")
print("learned dz/dt = z * (W z + b): W =", [round(float(v), 3) for v in get("z.f.weight")], " b =", [round(float(v), 3) for v in get("z.f.bias")])
print("true:                            W = [0, -1, 1, 0]  b = [1.5, -3]")
PY
