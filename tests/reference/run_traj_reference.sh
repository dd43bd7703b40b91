#!/bin/sh
# run_traj_reference.sh TEST_REFERENCE SRC_DIR OUT_DIR: the trajectory spec traj_small against
# its PyTorch twin (traj_reference.py, f64 autograd), made here when a python with torch and
# numpy is found ($DINO_PYTHON_TORCH, /usr/bin/python3 or python3); else SKIP (exit 77).
set -u
ref=$1 src=$2 out=$3
for py in ${DINO_PYTHON_TORCH:-} /usr/bin/python3 python3; do
    if "$py" -c "import torch, numpy" 2>/dev/null; then
        "$py" "$src/tests/reference/traj_reference.py" "$src/tests/reference/specs/traj_small.dino" "$out" || exit 1
        exec "$ref" "$out" traj_small
    fi
done
echo "SKIP: no python with torch and numpy (set DINO_PYTHON_TORCH), the reference can't be made"
exit 77
