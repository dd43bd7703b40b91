#!/usr/bin/env bash
# bench/checkpoint: what `checkpoint N` costs and saves. One neural ODE regressor (Poisson data
# from dino-gen-poisson: m[16] -> tanh dense 16 -> ODE on 16 dims with a WIDTH-wide tanh layer,
# rk4 STEPS steps -> q[9], l2 + h1 loss, forward-mode Jacobian) trained without checkpointing
# and with N = 2, about sqrt(STEPS), and STEPS / 4: the training workspace per sample and the
# seconds per epoch (the fastest epoch after the first), each against the run without (ratios),
# and the last epoch's training loss, which must be the same in every row (on the GPU to rounding:
# its weight gradients are summed segment by segment).
#
# usage: bench/checkpoint/run.sh [BUILD=build-rel] [STEPS=48] [WIDTH=64] [BATCH=64] [EPOCHS=4]
#   BACKEND=cuda (default cpu): the same on the GPU (bench/gpu/run.sh ckpt runs it there, with
#   BUILD=gpu-carry/bin); the workspace is then the CUDA backend's
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build-rel} steps=${2:-48} width=${3:-64} batch=${4:-64} epochs=${5:-4} backend=${BACKEND:-cpu}
[ -x "$build/dino-jit" ] || { echo "no $build/dino-jit: build first (cmake -B $build -DCMAKE_BUILD_TYPE=Release)" >&2; exit 1; }
T=$(mktemp -d "${TMPDIR:-/tmp}/dino_ckpt_bench.XXXXXX")
trap 'rm -rf "$T"' EXIT
"$build/dino-gen-poisson" --out "$T/d" --n 4000 --kl 16 --sensors 3 --grid 15 -q
sq=1
while [ $(((sq + 1) * (sq + 1))) -le "$steps" ]; do sq=$((sq + 1)); done
spec() {   # spec FILE [checkpoint line]
    cat >"$1" <<SPEC
model node_ckpt_bench {
    input  m[16]
    output q[9]
    z0 = tanh(dense(m, 16))
    ode z = z0, t in [0, 1] {
        a     = tanh(dense(concat(z, t), $width))
        dz/dt = dense(a, 16)
        solver rk4 steps $steps
        $2
    }
    q = dense(z, 9)
}
data { split train 3200, test 800 }
loss {
    l2 q     weight 1.0 relative
    h1 dq/dm weight 1.0 relative
}
train { batch $batch; epochs $epochs; seed 0; eval every $epochs }
SPEC
}
echo "## bench/checkpoint: rk4 $steps steps, width $width, batch $batch, $epochs epochs, backend $backend, $(nproc) cores, $(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo
echo "| checkpoint | workspace KiB/sample | workspace vs none | s/epoch | time vs none | last train loss |"
echo "|---|---|---|---|---|---|"
base_ws="" base_t=""
for n in none 2 "$sq" $((steps / 4)); do
    if [ "$n" = none ]; then spec "$T/s.dino" ""; else spec "$T/s.dino" "checkpoint $n"; fi
    DINO_CACHE_DIR=$T/cache "$build/dino-jit" "$T/s.dino" --data "$T/d" --backend "$backend" --jacobian forward \
        --log "$T/log.csv" >"$T/out" 2>"$T/err" || { cat "$T/err" >&2; exit 1; }
    ws=$(sed -n 's/.*training workspace .*: \([0-9.]*\) KiB per sample.*/\1/p' "$T/err")
    read -r t loss < <(python3 - "$T/log.csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
t = [float(r["seconds"]) for r in rows]
d = [b - a for a, b in zip([0] + t, t)]
print(f"{min(d[1:] or d):.3f} {rows[-1]['train_loss']}")
PY
)
    [ -z "$base_ws" ] && base_ws=$ws base_t=$t
    awk -v n="$n" -v ws="$ws" -v bws="$base_ws" -v t="$t" -v bt="$base_t" -v loss="$loss" \
        'BEGIN { printf "| %s | %.1f | %.2fx | %.3f | %.2fx | %s |\n", n, ws, ws / bws, t, t / bt, loss }'
done
