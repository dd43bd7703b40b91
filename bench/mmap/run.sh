#!/usr/bin/env bash
# bench/mmap: training from a memory-mapped data set against the copy in memory, with the page
# cache warm and cold, shuffle rows against shuffle blocks (issue 20, item 4).
#
# Data: m [ROWS, 64] and q [ROWS, 8] float32 (288 bytes a row), 4096 random rows repeated, q = A m.
# 1. dino-jit end to end (q = dense(m, 8), L2, adam, batch 1024, f32, 2 epochs, 1 thread): the run's
#    wall time (load, compile from the cache, 2 epochs, test metrics) and each epoch's seconds, for
#    the copy (DINO_DATA_MAP=0), mapped + shuffle rows, mapped + shuffle blocks 8192; warm, then
#    cold (the page cache dropped before the run: `echo 1 > /proc/sys/vm/drop_caches`, root only;
#    the load then reads the file from disk, and its check leaves it cached for the epochs).
# 2. bench_mmap_gather (bench/mmap/gather.c): the data side of an epoch alone (order, read-ahead,
#    gather), its first epoch with the file's pages dropped from the page cache after the load
#    (cold: read from disk during the epoch), then warm.
#
# usage: bench/mmap/run.sh [BUILD=build] [ROWS=1048576]
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build} rows=${2:-1048576}
work=$(mktemp -d "${TMPDIR:-/tmp}/dino_bench_mmap.XXXXXX")
trap 'rm -rf "$work"' EXIT
export DINO_CACHE_DIR="$work/cache" OMP_NUM_THREADS=1
cmake --build "$build" --target bench_mmap_gather dino-jit >/dev/null
gen() {   # gen OUT ROWS COLS
    python3 - "$@" <<'PY'
import array, random, struct, sys
out, rows, cols = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
base = 4096
random.seed(1)
xs = array.array("f", [random.gauss(0, 1) for _ in range(base * 64)])
if cols == 64:
    block = xs
else:
    a = [[random.gauss(0, 1) / 8 for _ in range(64)] for _ in range(cols)]
    block = array.array("f", [sum(a[o][i] * xs[r * 64 + i] for i in range(64)) for r in range(base) for o in range(cols)])
head = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }" % (rows, cols)
head += " " * (64 - (10 + len(head) + 1) % 64) + "\n"
raw = block.tobytes()
with open(out, "wb") as f:
    f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(head)) + head.encode())
    for _ in range(rows // base):
        f.write(raw)
    f.write(raw[: (rows % base) * cols * 4])
PY
}
mkdir -p "$work/d"
gen "$work/d/m_data.npy" "$rows" 64
gen "$work/d/q_data.npy" "$rows" 8
sync
cat >"$work/b.dino" <<'SPEC'
model big {
    input  m[64]
    output q[8]
    q = dense(m, 8)
}
data {
    split train 0.9, test 0.1
}
loss {
    l2 q
}
train {
    optimizer adam(lr = 1e-2)
    batch     1024
    epochs    2
    seed      0
}
SPEC
"$build/dino-jit" "$work/b.dino" --data "$work/d" --epochs 0 -q >/dev/null 2>&1 || true # compile once
drop() { sync && echo 1 >/proc/sys/vm/drop_caches 2>/dev/null; }
can_drop=yes
drop || can_drop="no (not root, or /proc/sys read-only)"
echo "bench/mmap: $rows rows, $(($(stat -c %s "$work/d/m_data.npy") + $(stat -c %s "$work/d/q_data.npy"))) bytes;" \
    "$(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); can drop the page cache: $can_drop"
echo
echo "| data | shuffle | cache | run wall s | epoch 1 s | epoch 2 s |"
echo "|---|---|---|---|---|---|"
for cache in warm cold; do
    [ "$cache" = cold ] && [ "$can_drop" != yes ] && continue
    for cfg in "copy rows" "mapped rows" "mapped blocks"; do
        set -- $cfg
        [ "$cache" = cold ] && drop
        extra=()
        [ "$2" = blocks ] && extra=(--set "shuffle=blocks 8192")
        t0=$(date +%s.%N)
        if [ "$1" = copy ]; then
            DINO_DATA_MAP=0 "$build/dino-jit" "$work/b.dino" --data "$work/d" --log "$work/l.csv" -q "${extra[@]}" >/dev/null 2>&1
        else
            "$build/dino-jit" "$work/b.dino" --data "$work/d" --log "$work/l.csv" -q "${extra[@]}" >/dev/null 2>&1
        fi
        t1=$(date +%s.%N)
        e=$(awk -F, 'NR > 1 { printf "%s%.3f", sep, $3 - prev; prev = $3; sep = " | " }' "$work/l.csv")
        echo "| $1 | $2 | $cache | $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') | $e |"
    done
done
if [ "$can_drop" = yes ]; then
    drop
    echo
    echo "the disk: $(dd if="$work/d/m_data.npy" of=/dev/null bs=1M 2>&1 | tail -n 1) (dd, cold)"
fi
echo
echo "bench_mmap_gather (the data side of an epoch alone; batch 1024):"
for cfg in "rows ahead" "rows noahead" "blocks 8192 8192 ahead" "blocks 8192 8192 noahead"; do
    "$build/tests/runtime/bench_mmap_gather" "$work/d" 1024 2 $cfg cold
done
DINO_DATA_MAP=0 "$build/tests/runtime/bench_mmap_gather" "$work/d" 1024 2 rows ahead warm
