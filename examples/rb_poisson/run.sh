#!/usr/bin/env bash
# examples/rb_poisson/run.sh - a reduced-basis DINO (RB-DINO) on a 1024-dimensional parameter.
#
#   bash examples/rb_poisson/run.sh [EPOCHS] [DATA_DIR]     (defaults 20, data/rb_poisson)
#
# 1. generates the data: dino-gen-poisson --n 2000 --kl 1024 --sensors 8 (m [1024], q [64],
#    J [2000, 64, 1024]: 1 GB in f64; about a minute on 2 cores);
# 2. trains specs/rb_poisson.dino: a 48-dimensional active subspace of the Jacobians for the input,
#    a 24-dimensional POD of the outputs for the output, an MLP between them; the log reports each
#    basis (eigenvalues, trace captured, floors) and trains in reduced coordinates;
# 3. trains its full-space twin (the same MLP from m [1024] straight to q [64], same loss and
#    schedule) for comparison, and predicts with the RB model's checkpoint (full-space q and J,
#    then, with --reduced, its reduced coordinates: h [N, 24] and dh/dz [N, 24, 48]).
set -euo pipefail
EPOCHS=${1:-20}
DATA=${2:-data/rb_poisson}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$ROOT/build}
OUT=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/dino_rb_example.XXXXXX")}

[ -f "$DATA/J_data.npy" ] || "$BUILD/dino-gen-poisson" --out "$DATA" --n 2000 --kl 1024 --sensors 8

echo "== RB-DINO: specs/rb_poisson.dino"
"$BUILD/dino-jit" "$ROOT/specs/rb_poisson.dino" --data "$DATA" --epochs "$EPOCHS" --save "$OUT/rb.safetensors"

cat >"$OUT/full.dino" <<EOT
model full_poisson {
    input  m[1024]
    output q[64]
    q = mlp(m, 64, width = 128, depth = 3, act = gelu)
}
loss {
    l2 q     weight 1.0 relative
    h1 dq/dm weight 1.0 relative
}
train {
    optimizer adam(lr = 2e-3)
    schedule  cosine(end = 0.01)
    batch     32
    epochs    $EPOCHS
}
EOT
echo "== the full-space twin"
"$BUILD/dino-jit" "$OUT/full.dino" --data "$DATA"

echo "== prediction with the RB-DINO's checkpoint (its bases are in it): full-space q and J"
"$BUILD/dino-jit" "$ROOT/specs/rb_poisson.dino" --epochs 0 --load "$OUT/rb.safetensors" \
    --predict "$DATA/m_data.npy" --out "$OUT/pred"
echo "== the same in reduced coordinates: h (q = D h + shift) and dh/dz"
"$BUILD/dino-jit" "$ROOT/specs/rb_poisson.dino" --epochs 0 --load "$OUT/rb.safetensors" \
    --predict "$DATA/m_data.npy" --out "$OUT/pred" --reduced
echo "outputs in $OUT"
