#!/usr/bin/env bash
# bench/mpi: data-parallel training on this machine, ranks x threads, and the cost of the
# gradient's all-reduce (docs/scaling.md uses both).
#
# Work: the network of bench/cpu_dino (200 -> 400 x 8 -> 25, gelu, H1 loss, Adam, batch 32,
# 1,213,225 parameters: 4.85 MB of f32 gradient per step) on ROWS rows of dino-gen-poisson data
# (m[200] -> q[25]). Each configuration trains EPOCHS epochs; the table gives the fastest epoch
# after the first (from rank 0's --log). Then MPI_Allreduce of 1 K to 4 M reals on 2 ranks.
#
# usage: bench/mpi/run.sh [BUILD=build] [ROWS=256] [EPOCHS=3]
# Needs OpenMPI (scripts/deps.sh) and a dino built with it.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build} rows=${2:-256} epochs=${3:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export DINO_CACHE_DIR="$work/cache" OMPI_MCA_plm=isolated OMPI_MCA_rmaps_base_oversubscribe=1
MPIRUN=(mpirun --oversubscribe --allow-run-as-root --bind-to none)
"$build/dino-gen-poisson" --out "$work/d" --n "$rows" --kl 200 --sensors 5 --grid 15 -q
sed "s/ROWS/$rows/; s/epochs 4/epochs $epochs/" bench/cpu_dino/bench.dino >"$work/bench.dino"
best_epoch() {   # the fastest epoch after the first, from a --log CSV
    awk -F, 'NR > 1 { d = $3 - prev; prev = $3; if (NR > 2 && (best == "" || d < best)) best = d } END { printf "%.3f", best }' "$1"
}
echo "bench/mpi: 200 -> 400 x 8 -> 25, H1 loss, Adam, batch 32, $rows rows, f32; $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| ranks | threads per rank | s/epoch | speedup over 1 x 1 |"
echo "|---|---|---|---|"
base=""
for cfg in "1 1" "1 2" "2 1" "2 2"; do
    set -- $cfg
    if [ "$1" = 1 ]; then
        OMP_NUM_THREADS=$2 "$build/dino-jit" "$work/bench.dino" --data "$work/d" --log "$work/l.csv" -q 2>"$work/err" || { cat "$work/err"; exit 1; }
    else
        "${MPIRUN[@]}" -np "$1" -x OMP_NUM_THREADS="$2" "$build/dino-jit" "$work/bench.dino" --data "$work/d" --log "$work/l.csv" -q \
            2>"$work/err" || { cat "$work/err"; exit 1; }
    fi
    s=$(best_epoch "$work/l.csv")
    [ -z "$base" ] && base=$s
    echo "| $1 | $2 | $s | $(awk -v a="$base" -v b="$s" 'BEGIN { printf "%.2f", a / b }') |"
done
mpicc -O2 bench/mpi/allreduce.c -o "$work/allreduce"
echo
echo "MPI_Allreduce (in place, sum) on 2 ranks, median and best of 30:"
echo "| reals | bytes | median us | best us | GB/s (bytes / median) |"
echo "|---|---|---|---|---|"
for n in 1024 65536 1213225 4194304; do
    "${MPIRUN[@]}" -np 2 "$work/allreduce" "$n" f32 30 | awk '{ printf "| %d | %d | %.1f | %.1f | %.2f |\n", $1, $2, $3, $4, $2 / $3 / 1e3 }'
done
