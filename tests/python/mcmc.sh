#!/usr/bin/env bash
# ctest's `example_mcmc`: examples/mcmc/mcmc.py runs to the end in a short version (a 5-epoch
# surrogate, short chains) and prints its report and writes its picture.
# usage: mcmc.sh PYTHON SOURCE_DIR BUILD_DIR LIBDINO. Exit 77 (SKIP) without numpy.
set -u
py=$1 src=$2 build=$3
if ! "$py" -c "import numpy" 2>/dev/null; then
    echo "SKIP: $py has no numpy"
    exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export DINO_LIBRARY=$4 DINO_CACHE_DIR=$build/cache PYTHONPATH="$src/python" OMP_NUM_THREADS=1
"$py" "$src/examples/mcmc/mcmc.py" --build "$build" --work "$tmp" --epochs 5 --steps 400 --pde-steps 60 \
    > "$tmp/out.txt" 2>&1
rc=$?
cat "$tmp/out.txt"
[ $rc -eq 0 ] || exit 1
for want in "DINO surrogate: MAP" "PDE solver: MAP" "acceptance" "min ESS / second" "var_DINO / var_PDE" \
            "surrogate speed-up"; do
    grep -q "$want" "$tmp/out.txt" || { echo "FAIL: no '$want' in the output"; exit 1; }
done
# the acceptance rates are those of a working MALA chain
awk '/acceptance/ { if ($2 < 0.2 || $2 > 0.95) bad = 1 } END { exit bad }' "$tmp/out.txt" ||
    { echo "FAIL: an acceptance rate outside [0.2, 0.95]"; exit 1; }
head -c 8 "$tmp/posterior.png" | od -c | grep -q "P   N   G" || { echo "FAIL: no posterior.png"; exit 1; }
echo "example_mcmc: ok"
