#!/usr/bin/env bash
# bench/cpu_dino: the CPU backend against PyTorch on the CPU, same network, data, loss,
# optimiser and batch size, in the same run. Needs Debian's python3-torch and
# libopenblas0-pthread (installed when missing).
#
# usage: bench/cpu_dino/run.sh [ROWS=512] [EPOCHS=4] [THREADS=2]
set -euo pipefail
cd "$(dirname "$0")/../.."
rows=${1:-512} epochs=${2:-4} threads=${3:-2}
py=/usr/bin/python3
if ! $py -c "import torch, numpy" 2>/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-torch python3-numpy libopenblas0-pthread >/dev/null
fi
cmake -S . -B build-rel -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-rel -j "$threads" >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
$py - "$work" "$rows" <<'PY'
import sys, numpy as np
d, n = sys.argv[1], int(sys.argv[2])
r = np.random.default_rng(0)
np.save(f"{d}/m_data.npy", r.standard_normal((n, 200)).astype(np.float32))
np.save(f"{d}/q_data.npy", r.standard_normal((n, 25)).astype(np.float32))
np.save(f"{d}/J_data.npy", (0.1 * r.standard_normal((n, 25, 200))).astype(np.float32))
PY
export DINO_CACHE_DIR="$work/cache" OMP_NUM_THREADS=$threads
cc -O3 -march=native -fopenmp -Icompiler bench/cpu_dino/gemm_peak.c -o "$work/gemm_peak" -lm
peak=$("$work/gemm_peak")
sed "s/ROWS/$rows/" bench/cpu_dino/bench.dino >"$work/bench.dino"
./build-rel/dino-jit "$work/bench.dino" --data "$work" --epochs "$epochs" --log "$work/log.csv" -q 2>"$work/dino.err" \
    || { cat "$work/dino.err"; exit 1; }
dino=$($py - "$work/log.csv" <<'PY'
import sys, csv
rows = list(csv.DictReader(open(sys.argv[1])))
t = [float(r["seconds"]) for r in rows]
per = [b - a for a, b in zip([0.0] + t, t)]
print(min(per[1:] if len(per) > 1 else per))
PY
)
torch=$(OPENBLAS_NUM_THREADS=$threads $py bench/cpu_dino/torch_dino.py "$work" "$epochs" "$threads" 2>"$work/torch.err") \
    || { cat "$work/torch.err"; exit 1; }
$py - "$rows" "$threads" "$dino" "$torch" "$peak" <<'PY'
import sys
rows, threads = int(sys.argv[1]), int(sys.argv[2])
dino, torch, peak = map(float, sys.argv[3:])
flop = 188.1e6 * rows            # per epoch: forward, 25-row reverse Jacobian, backward through it
print(f"bench/cpu_dino: 200 -> 400 x 8 -> 25, H1 loss, Adam, batch 32, {rows} rows, {threads} threads, f32")
print(f"| implementation | s/epoch | GFLOP/s | fraction of GEMM limit ({peak:.0f} GFLOP/s) |")
print(f"|---|---|---|---|")
print(f"| dino (CPU backend) | {dino:.3f} | {flop / dino / 1e9:.1f} | {flop / dino / 1e9 / peak:.2f} |")
print(f"| PyTorch (vmap(jacrev)) | {torch:.3f} | {flop / torch / 1e9:.1f} | {flop / torch / 1e9 / peak:.2f} |")
print(f"speedup of dino over PyTorch: {torch / dino:.2f}x")
PY
