#!/usr/bin/env bash
# The main job (README quick start): installs what is missing, builds dino, generates DINO
# training data from a real PDE (examples/poisson: a nonlinear diffusion-reaction equation
# with a Karhunen-Loeve log-coefficient, Jacobians from adjoint solves), and trains the
# surrogate of specs/poisson.dino on it, on the GPU when there is one, else on the CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
DINO_WITH_CLANG=0 bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc 2>/dev/null || echo 2)" >/dev/null
[ -f data/poisson/J_data.npy ] || ./build/dino-gen-poisson --out data/poisson --n 2000
./build/dino-jit specs/poisson.dino --data data/poisson --save data/poisson/model.safetensors \
    --log data/poisson/train.csv "$@"
./build/dino-jit specs/poisson.dino --load data/poisson/model.safetensors --epochs 0 \
    --predict data/poisson/m_data.npy --out data/poisson/predicted -q
