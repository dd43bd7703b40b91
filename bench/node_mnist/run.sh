#!/usr/bin/env bash
# bench/node_mnist: the neural ODE classifier of ../shared/specs/node_mnist.dino on MNIST, dino's
# CPU backend against PyTorch on the CPU: the same network (784 -> 64 tanh, RK4 with 8 fixed
# steps on 64 dims, 64 -> 10), loss, optimiser (Adam 1e-3, cosine to 0 over the whole run, per
# step), batch 128 and initialisation, in the same run, one after the other. Needs Debian's
# python3-torch and libopenblas0-pthread (installed when missing).
#
# Both run with OMP_WAIT_POLICY=passive (dino-jit's default; set the variable to override it
# for both): with libgomp's default spinning, PyTorch's many tiny ops per step run 20-30x
# slower on a loaded 2-core machine.
#
# usage: bench/node_mnist/run.sh [EPOCHS=2] [THREADS=2]
#   DATA=DIR  the four MNIST IDX files (default /work/shared/data/mnist, else ../shared/data/mnist)
set -euo pipefail
cd "$(dirname "$0")/../.."
epochs=${1:-2} threads=${2:-2}
py=/usr/bin/python3
spec=/work/shared/specs/node_mnist.dino
[ -f "$spec" ] || spec=../shared/specs/node_mnist.dino
data=${DATA:-/work/shared/data/mnist}
[ -d "$data" ] || data=../shared/data/mnist
if ! $py -c "import torch, numpy" 2>/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-torch python3-numpy libopenblas0-pthread >/dev/null
fi
cmake -S . -B build-rel -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-rel -j "$threads" >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export DINO_CACHE_DIR="$work/cache" OMP_NUM_THREADS=$threads OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}

# dino: seconds per epoch from the log's cumulative `seconds` (the last epoch's also holds the
# test evaluation, which dino runs at the end), test accuracy from its last row.
./build-rel/dino-jit "$spec" --data "$data" --epochs "$epochs" --log "$work/log.csv" -q 2>"$work/dino.err" \
    || { cat "$work/dino.err"; exit 1; }
dino=$($py - "$work/log.csv" <<'PY'
import sys, csv
rows = list(csv.DictReader(open(sys.argv[1])))
t = [float(r["seconds"]) for r in rows]
per = [b - a for a, b in zip([0.0] + t, t)]
rest = per[1:] if len(per) > 1 else per
print(min(per), sum(rest) / len(rest), float(rows[-1]["accuracy"]), ",".join(f"{p:.2f}" for p in per))
PY
)

# PyTorch: training-only epoch times (no data loading, no test evaluation)
torch=$(OPENBLAS_NUM_THREADS=$threads $py bench/node_mnist/torch_node_mnist.py "$data" "$epochs" "$threads" 2>"$work/torch.err") \
    || { cat "$work/torch.err"; exit 1; }
torch_per=$(sed -n 's/^torch epoch [0-9/]*: \([0-9.]*\) s.*/\1/p' "$work/torch.err" | paste -sd, -)

$py - "$epochs" "$threads" "$OMP_WAIT_POLICY" $dino $torch "$torch_per" <<'PY'
import sys
epochs, threads, policy = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
d_best, d_mean, d_acc = map(float, sys.argv[4:7])
d_per = sys.argv[7]
t_best, t_mean, t_acc = map(float, sys.argv[8:11])
t_per = sys.argv[11]
print(f"bench/node_mnist: 784 -> 64 tanh, RK4 8 steps on 64 dims, -> 10; softmax cross-entropy, "
      f"Adam 1e-3 cosine, batch 128, {epochs} epochs, {threads} threads (OMP_WAIT_POLICY={policy}), f32")
print(f"per-epoch seconds: dino {d_per}; PyTorch {t_per}")
print(f"| implementation | s/epoch (best) | s/epoch (mean excluding the first) | test accuracy |")
print(f"|---|---|---|---|")
print(f"| dino (CPU backend) | {d_best:.2f} | {d_mean:.2f} | {100 * d_acc:.2f} % |")
print(f"| PyTorch 1.13 (eager, hand-written RK4) | {t_best:.2f} | {t_mean:.2f} | {100 * t_acc:.2f} % |")
print(f"speedup of dino over PyTorch: {t_best / d_best:.2f}x (best epochs), {t_mean / d_mean:.2f}x (means)")
PY
