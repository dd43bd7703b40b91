#!/usr/bin/env bash
# bench/pint: Parareal (`pint parareal`, eval parareal) against the serial RK4 solve of the same
# neural ODE classifier (x[8] -> tanh dense DIM -> ODE on DIM dims with a 64-wide tanh layer ->
# 4 logits), forward solve (predict) and one training step (cross-entropy, gradient), for small
# batches and long horizons, on the CPU backend. See bench_pint.c for what is measured.
#
# usage: bench/pint/run.sh [THREADS=2] [bench_pint options...]
#   e.g. bench/pint/run.sh 2 --steps 64,128,256 --batches 1,8,64 --slices 8,16 --iters 1,2,4,N
#   PINT_REV=REV  the commit whose compiler and runtime are measured (default HEAD)
#
# The compiler and runtime libraries are built from a clean `git archive` of that commit in
# build-pint/ (not from the working tree, which may hold someone's unfinished edits); the bench
# program itself comes from the working tree. First every spec is generated and compiled
# (THREADS compiler processes at once, so the compile times printed are under that load), then
# everything is timed from the cache. Compiled modules are kept in build-pint/cache
# ($DINO_CACHE_DIR overrides it): the largest unrolled specs take minutes to compile the first
# time; delete the folder to time the compiles again.
set -euo pipefail
cd "$(dirname "$0")/../.."
threads=${1:-2}
shift || true
rev=$(git rev-parse --short "${PINT_REV:-HEAD}")
root=$PWD/build-pint
src=$root/src-$rev
if [ ! -f "$src/.built" ]; then
    rm -rf "$src" "$root/build-$rev"
    mkdir -p "$src"
    git archive "$rev" | tar -x -C "$src"
    cmake -S "$src" -B "$root/build-$rev" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$root/build-$rev" -j 2 --target dino_front dino_runtime >/dev/null
    touch "$src/.built"
fi
lib=$root/build-$rev
cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -I"$src/compiler" -I"$src/runtime" -I"$lib" \
    bench/pint/bench_pint.c "$lib/runtime/libdino_runtime.a" "$lib/libdino_front.a" \
    -lz -lm -ldl -lpthread -o "$lib/bench_pint"
export DINO_CACHE_DIR=${DINO_CACHE_DIR:-$root/cache} OMP_NUM_THREADS=$threads
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
specs=$(mktemp -d)
trap 'rm -rf "$specs"' EXIT

echo "compiling (or finding in $DINO_CACHE_DIR) every spec, $threads at a time:"
pids=()
for ((i = 0; i < threads; i++)); do
    "$lib/bench_pint" --dir "$specs" "$@" --compile-only --shard "$i/$threads" 2>"$specs/compile$i.log" &
    pids+=($!)
done
status=0
for p in "${pids[@]}"; do wait "$p" || status=1; done
cat "$specs"/compile*.log
[ $status -eq 0 ] || exit 1

echo
echo "bench/pint: compiler and runtime at commit $rev; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
     "$(nproc) cores; OMP_NUM_THREADS=$OMP_NUM_THREADS OMP_WAIT_POLICY=$OMP_WAIT_POLICY;" \
     "load average $(cut -d' ' -f1-3 /proc/loadavg) before the timing"
echo "options: $*"
start=$(date +%s)
"$lib/bench_pint" --dir "$specs" "$@"
echo "timing took $(($(date +%s) - start)) s; load average after it: $(cut -d' ' -f1-3 /proc/loadavg)"
