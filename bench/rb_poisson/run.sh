#!/usr/bin/env bash
# bench/rb_poisson/run.sh - a reduced-basis DINO against its full-space twin, side by side.
#
#   bash bench/rb_poisson/run.sh [EPOCHS] [N] [DATA_DIR]       (defaults 10, 2000, /tmp/dino_rb_poisson)
#   RUNS="full rb_48_24" bash bench/rb_poisson/run.sh ...     (only those rows; BUILD=DIR: another build)
#
# Data: dino-gen-poisson --n N --kl 1024 --sensors 8 (m [1024] -> q [64], J [N, 64, 1024] f64);
# generated once into DATA_DIR. Split 80 / 20 (the data block's default).
# Models, all with `l2 q relative` + `h1 dq/dm relative`, adam(lr = 2e-3), cosine(end = 0.01),
# batch 32, EPOCHS epochs, seed 0, f32, CPU backend:
#   full   q = mlp(m, 64, width = 128, depth = 3, act = gelu)             (the full-space twin)
#   rb R/S Vm = active_subspace(dq/dm, rank = R), Vq = pod(q, rank = S);
#          q = decode(mlp(encode(m, Vm), S, width = 128, depth = 3, act = gelu), Vq)
# for (R, S) = (16, 8), (48, 24), (96, 48); each RB model twice: in reduced coordinates (the
# default: data projected once at load) and, marked "/graph", with DINO_REDUCED=0 (the frozen
# encode/decode layers in the full-space graph).
# Prints per model: seconds per epoch (mean of the epochs after the first), the training
# workspace dino reports, the process's peak RSS (GNU time), its peak anonymous memory (RssAnon
# of /proc/PID/status sampled every 0.05 s: anon_MiB over the whole run, train_anon_MiB from the
# end of epoch 1 on, i.e. while training runs; the reduced models map the float64 files in f32
# too, so both scale with the ranks; GNU time's RSS counts the mapped file's pages, page cache),
# the time to compute the bases, and the test
# rel_l2 and rel_h1 (full space) after the last epoch, from the --log CSV.
# BUILD=DIR runs the dino-jit of another build (e.g. a copy of an older one, to compare).
# RUNS="full rb_48_24 ..." runs only those models; JIT_ARGS="--precision f64" passes options on.
set -euo pipefail
EPOCHS=${1:-10}
N=${2:-2000}
DATA=${3:-/tmp/dino_rb_poisson}
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=${BUILD:-$HERE/../../build}
JIT=$BUILD/dino-jit
GEN=${GEN:-$BUILD/dino-gen-poisson}
OUT=$(mktemp -d "${TMPDIR:-/tmp}/dino_rb_bench.XXXXXX")
trap 'rm -rf "$OUT"' EXIT
export DINO_CACHE_DIR=${DINO_CACHE_DIR:-$OUT/cache}

if [ ! -f "$DATA/J_data.npy" ]; then
    echo "generating $DATA (N $N, kl 1024, sensors 8) ..." >&2
    "$GEN" --out "$DATA" --n "$N" --kl 1024 --sensors 8 -q
fi

tail_spec() {
    cat <<EOT
loss {
    l2 q     weight 1.0 relative
    h1 dq/dm weight 1.0 relative
}
train {
    optimizer adam(lr = 2e-3)
    schedule  cosine(end = 0.01)
    batch     32
    epochs    $EPOCHS
    seed      0
}
EOT
}

{
    echo "model full {"
    echo "    input  m[1024]"
    echo "    output q[64]"
    echo "    q = mlp(m, 64, width = 128, depth = 3, act = gelu)"
    echo "}"
    tail_spec
} >"$OUT/full.dino"
for rs in 16/8 48/24 96/48; do
    R=${rs%/*} S=${rs#*/}
    {
        echo "basis {"
        echo "    Vm = active_subspace(dq/dm, rank = $R)"
        echo "    Vq = pod(q, rank = $S)"
        echo "}"
        echo "model rb_${R}_${S} {"
        echo "    input  m[1024]"
        echo "    output q[64]"
        echo "    q = decode(mlp(encode(m, Vm), $S, width = 128, depth = 3, act = gelu), Vq)"
        echo "}"
        tail_spec
    } >"$OUT/rb_${R}_${S}.dino"
done

# Runs the command under GNU time (into $OUT/$tag.err) and samples the RssAnon of its process:
# sets peak_anon and train_anon (KiB; train_anon once the CSV log $1 has its first epoch).
sample_anon() {
    local csv=$1
    shift
    "$@" &
    local tp=$! pid="" a
    peak_anon=0 train_anon=0
    while kill -0 "$tp" 2>/dev/null; do
        [ -z "$pid" ] && pid=$(pgrep -P "$tp" | head -1)
        a=""
        [ -n "$pid" ] && a=$(awk '/^RssAnon/ { print $2 }' "/proc/$pid/status" 2>/dev/null)
        if [ -n "$a" ]; then
            [ "$a" -gt "$peak_anon" ] && peak_anon=$a
            if [ -f "$csv" ] && [ "$(grep -c '^[0-9]' "$csv")" -ge 1 ] && [ "$a" -gt "$train_anon" ]; then
                train_anon=$a
            fi
        fi
        sleep 0.05
    done
    wait "$tp"
}

set +e +o pipefail   # a metric that a model lacks is an empty field, not an exit
printf '%-16s %8s %10s %10s %10s %10s %10s %10s %12s %12s\n' model params s/epoch work_MiB rss_MiB anon_MiB \
    train_anon bases_s rel_l2 rel_h1
for run in ${RUNS:-full rb_16_8 rb_16_8/graph rb_48_24 rb_48_24/graph rb_96_48 rb_96_48/graph}; do
    name=${run%/graph}
    reduced=1
    [ "$run" != "$name" ] && reduced=0
    tag=${run//\//_}
    sample_anon "$OUT/$tag.csv" env DINO_REDUCED=$reduced /usr/bin/time -v "$JIT" "$OUT/$name.dino" --data "$DATA" \
        --backend cpu --log "$OUT/$tag.csv" ${JIT_ARGS:-} >"$OUT/$tag.out" 2>"$OUT/$tag.err" ||
        { echo "$run failed:"; tail -5 "$OUT/$tag.err"; continue; }
    name=$tag
    params=$(grep -o '[0-9]* parameters' "$OUT/$name.err" | head -1 | cut -d' ' -f1)
    work=$(grep -o 'training workspace [0-9.]* MiB' "$OUT/$name.err" | grep -o '[0-9.]*' | head -1)
    rss=$(awk '/Maximum resident set size/ { printf "%.0f", $NF / 1024 }' "$OUT/$name.err")
    bases=$(grep -o 'in [0-9.]* s;' "$OUT/$name.err" | grep -o '[0-9.]*' | awk '{ s += $1 } END { printf "%.2f", s + 0 }')
    spe=$(awk -F, 'NR > 2 { if (prev != "") { s += $3 - prev; n++ } } NR > 1 { prev = $3 } END { if (n) printf "%.3f", s / n }' "$OUT/$name.csv")
    last=$(tail -1 "$OUT/$name.csv")
    hdr=$(head -1 "$OUT/$name.csv")
    l2=$(awk -F, -v h="$hdr" 'BEGIN { n = split(h, c, ",") } { for (i = 1; i <= n; i++) if (c[i] == "rel_l2") print $i }' <<<"$last")
    h1=$(awk -F, -v h="$hdr" 'BEGIN { n = split(h, c, ",") } { for (i = 1; i <= n; i++) if (c[i] == "rel_h1") print $i }' <<<"$last")
    printf '%-16s %8s %10s %10s %10s %10s %10s %10s %12s %12s\n' "$run" "$params" "$spe" "$work" "$rss" \
        $((peak_anon / 1024)) $((train_anon / 1024)) "$bases" "$l2" "$h1"
    [ "$reduced" = 1 ] && grep 'basis V' "$OUT/$name.err" | sed 's/^dino-jit: /    /' | cut -c1-220
done
