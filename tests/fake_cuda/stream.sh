#!/usr/bin/env bash
# stream.sh DINO_JIT FAKE_CUDA FAKE_NVRTC SHARED_DIR - the CUDA backend streaming its training
# data from host memory (issue 20) when they do not fit in GPU memory, on the stand-in driver
# (fake_cuda.c) given a small device memory (FAKE_CUDA_MEM):
#   - a regression spec with Jacobians on 1000 generated rows, batch 16 (62 full batches and a
#     partial one an epoch), trained in a device memory too small for the data: the note says it
#     streams, and the f64 parameters (--save) and the CSV equal the resident run's exactly; also
#     with every kernel deferred to the last moment (FAKE_CUDA_DEFER=1), so a missing event wait
#     gives other numbers or a stream order error from the stand-in
#   - a device where the evaluation's prediction chunk does not fit either: smaller chunks, the
#     same numbers (the rows of this model's predictions do not depend on each other)
#   - cuMemGetInfo saying the data fit and cuMemAlloc running out (FAKE_CUDA_MEM_REPORTED): falls
#     back to streaming, same parameters
#   - DINO_CUDA_STREAM=1 on node_small, batch 3: the CUDA graphs (one per batch buffer) launched as
#     often as resident, the same parameters; the same with graphs off and deferred kernels
#   - a classifier (labels streamed), DINO_CUDA_STREAM=1: the same parameters as resident
#   - errors, exit 1 with a message: a memory too small for the model's own buffers, too small
#     even for two batches and the workspace, DINO_CUDA_STREAM=0 with data that do not fit, an
#     unknown DINO_CUDA_STREAM
# Exit 77 (skipped) without python3 or a C++ compiler, or without ../shared/reference.
set -u
if [ $# -ne 4 ]; then
    echo "usage: stream.sh DINO_JIT FAKE_CUDA FAKE_NVRTC SHARED_DIR" >&2
    exit 2
fi
JIT=$1 FAKE=$2 NVRTC=$3 SHARED=$4
REF=$SHARED/reference
for need in python3 "${CXX:-c++}"; do
    command -v "$need" >/dev/null 2>&1 || { echo "SKIP: $need not found"; exit 77; }
done
[ -d "$REF/node_small" ] || { echo "SKIP: $REF not found"; exit 77; }
T=$(mktemp -d "${TMPDIR:-/tmp}/dino_fake_stream.XXXXXX") || exit 2
trap 'rm -rf "$T"' EXIT
export DINO_CACHE_DIR=$T/cache OMP_NUM_THREADS=1

PASS=0 FAIL=0
ok() { PASS=$((PASS + 1)); echo "ok   $*"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL $*"; }
gpu() { DINO_CUDA_DRIVER=$FAKE DINO_NVRTC=$NVRTC "$JIT" "$@"; }

# the CSV without the seconds column
strip_csv() { python3 -c 'import csv,sys
r=list(csv.reader(open(sys.argv[1]))); k=[i for i,n in enumerate(r[0]) if n!="seconds"]
print("\n".join(",".join(row[i] for i in k) for row in r))' "$1"; }

# same RUN_A RUN_B DESCRIPTION: the two runs' --save files are byte for byte the same (f64
# parameters and optimiser state) and so are their CSVs but the seconds
same() {
    if cmp -s "$T/$1.st" "$T/$2.st" && [ "$(strip_csv "$T/$1.csv")" = "$(strip_csv "$T/$2.csv")" ] &&
        [ -s "$T/$1.st" ]; then
        ok "$3: parameters and CSV identical to the resident run"
    else
        bad "$3: parameters or CSV differ ($(cmp "$T/$1.st" "$T/$2.st" 2>&1 | head -n 1))"
    fi
}

# run NAME ENV... -- ARGS...: dino-jit on the stand-in with ENV, --save and --log under NAME;
# its stderr in $T/NAME.err
run() {
    local name=$1 env=()
    shift
    while [ "$1" != "--" ]; do env+=("$1"); shift; done
    shift
    env "${env[@]}" DINO_CUDA_DRIVER=$FAKE DINO_NVRTC=$NVRTC "$JIT" "$@" --backend cuda --save "$T/$name.st" \
        --log "$T/$name.csv" >"$T/$name.out" 2>"$T/$name.err" || bad "$name: training failed: $(tail -n 3 "$T/$name.err")"
}

# says NAME PATTERN DESCRIPTION: the run's notes match PATTERN
says() {
    if grep -Eq "$2" "$T/$1.err"; then ok "$3: $(grep -Eo "$2" "$T/$1.err" | head -n 1 | cut -c1-160)"
    else bad "$3: no /$2/ in: $(cat "$T/$1.err")"; fi
}

# fails DESCRIPTION PATTERN ENV... -- ARGS...: exit 1 and PATTERN said
fails() {
    local desc=$1 pattern=$2 env=() out rc
    shift 2
    while [ "$1" != "--" ]; do env+=("$1"); shift; done
    shift
    out=$(env "${env[@]}" DINO_CUDA_DRIVER=$FAKE DINO_NVRTC=$NVRTC "$JIT" "$@" --backend cuda 2>&1)
    rc=$?
    if [ $rc -eq 1 ] && printf '%s' "$out" | grep -Eq "$pattern"; then
        ok "$desc: $(printf '%s' "$out" | grep -Eo "$pattern" | head -n 1 | cut -c1-160)"
    else
        bad "$desc: exit $rc, expected 1 and /$pattern/: $(printf '%s' "$out" | tail -n 3)"
    fi
}

graph_launches() { sed -n 's/.*graph_launches \([0-9]*\).*/\1/p' "$1" | tail -n 1; }

# ---------------------------------------------------------------------------- generated data
mkdir -p "$T/data"
python3 - "$T/data" 1020 <<'EOF'
import math, random, struct, sys
def npy(path, shape, vals, descr):
    hdr = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (descr, "".join("%d, " % s for s in shape))
    hdr += " " * ((64 - (10 + len(hdr) + 1) % 64) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode("latin1"))
        f.write(struct.pack("<%d%s" % (len(vals), {"<f8": "d", "<i4": "i"}[descr]), *vals))
out, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(1)
x = [rng.uniform(-1, 1) for _ in range(n * 4)]
y, J, lab = [], [], []
for r in range(n):
    a, b, c, d = x[4 * r:4 * r + 4]
    y += [math.sin(a) + b * c, math.cos(d) * a]
    J += [math.cos(a), c, b, 0.0, math.cos(d), 0.0, 0.0, -a * math.sin(d)]
    lab.append(int(a + b > 0) + 2 * int(c > d))
npy(out + "/x_data.npy", (n, 4), x, "<f8")
npy(out + "/y_data.npy", (n, 2), y, "<f8")
npy(out + "/J_data.npy", (n, 2, 4), J, "<f8")
npy(out + "/c_data.npy", (n,), lab, "<i4")
EOF
cat >"$T/mlp.dino" <<'EOF'
model mlp_stream {
    input  x[4]
    output y[2]
    h = tanh(dense(x, 16))
    y = dense(h, 2)
}
data {
    split train 1000, test 20
}
loss {
    l2 y     weight 1.0
    h1 dy/dx weight 0.5
}
train {
    optimizer adam(lr = 0.01)
    batch     16
    epochs    2
    seed      0
    precision f64
}
EOF
cat >"$T/cls.dino" <<'EOF'
model cls_stream {
    input  x[4]
    output c[4]
    h = tanh(dense(x, 8))
    c = dense(h, 4)
}
data {
    split train 200, test 20
}
loss {
    cross_entropy c
}
train {
    optimizer adam(lr = 0.01)
    batch     16
    epochs    2
    seed      0
    precision f64
}
EOF

# ---------------------------------------------------------------------------- data too big for the device
# 1000 rows x (4 + 2 + 8) f64 = 109 KiB of data; 120000 bytes of device memory hold the model,
# two batches and the workspace but not the data as well
margs=("$T/mlp.dino" --data "$T/data" --set eval_every=1)
run resident -- "${margs[@]}"
says resident 'training data in GPU memory' "resident run (1 GiB device)"
run small FAKE_CUDA_MEM=120000 -- "${margs[@]}"
says small 'streaming the training data from host memory [(][0-9.]+ KiB; they do not fit' "120000-byte device"
same resident small "120000-byte device, streamed"
run deferred FAKE_CUDA_MEM=120000 FAKE_CUDA_DEFER=1 -- "${margs[@]}"
same resident deferred "120000-byte device, streamed, kernels deferred (FAKE_CUDA_DEFER=1)"
# 45000 bytes: the test rows' predictions (20 rows, with Jacobians) no longer fit beside the
# streamed batches in one chunk: evaluated in smaller chunks, the same numbers
run tight FAKE_CUDA_MEM=45000 -- "${margs[@]}"
says tight 'streaming the training data from host memory' "45000-byte device"
same resident tight "45000-byte device, streamed, evaluated in smaller chunks"
run lied FAKE_CUDA_MEM=120000 FAKE_CUDA_MEM_REPORTED=1073741824 -- "${margs[@]}"
says lied 'streaming the training data from host memory [(][^)]*allocating them ran out of GPU memory' \
    "cuMemGetInfo says 1 GiB, cuMemAlloc runs out at 120000 bytes: falls back"
same resident lied "the fallback"

# ---------------------------------------------------------------------------- graphs, partial batches, labels
nargs=("$SHARED/specs/node_small.dino" --data "$REF/node_small" --epochs 3 --batch 3 --set eval_every=1)
: >"$T/stats.resident"
: >"$T/stats.forced"
run nres FAKE_CUDA_STATS="$T/stats.resident" -- "${nargs[@]}"
run nforced FAKE_CUDA_STATS="$T/stats.forced" DINO_CUDA_STREAM=1 -- "${nargs[@]}"
says nforced 'streaming the training data from host memory [(][^;]*; DINO_CUDA_STREAM=1' "DINO_CUDA_STREAM=1"
same nres nforced "node_small, batch 3 of 8 rows, DINO_CUDA_STREAM=1"
g0=$(graph_launches "$T/stats.resident") g1=$(graph_launches "$T/stats.forced")
if [ -n "$g1" ] && [ "$g1" = "$g0" ] && [ "$g1" -gt 0 ]; then
    ok "streaming replays the CUDA graphs as resident does: $g1 graph launches"
else bad "graph launches: resident '$g0', streaming '$g1'"; fi
run nnograph DINO_CUDA_STREAM=1 DINO_CUDA_GRAPH=0 FAKE_CUDA_DEFER=1 -- "${nargs[@]}"
same nres nnograph "node_small, DINO_CUDA_STREAM=1, DINO_CUDA_GRAPH=0, FAKE_CUDA_DEFER=1"
cargs=("$T/cls.dino" --data "$T/data" --set eval_every=1)
run cres -- "${cargs[@]}"
run cforced DINO_CUDA_STREAM=1 FAKE_CUDA_DEFER=1 -- "${cargs[@]}"
same cres cforced "classifier (labels), DINO_CUDA_STREAM=1, FAKE_CUDA_DEFER=1"

# ---------------------------------------------------------------------------- errors
fails "a device too small for the model's own buffers" 'could not start: out of GPU memory allocating the parameters: needs [0-9.]+ (B|KiB) more, [0-9.]+ B of 500 B free' \
    FAKE_CUDA_MEM=500 -- "${margs[@]}"
fails "a device too small for two batches and the workspace" \
    'out of GPU memory: the training data and workspace need [0-9.]+ KiB, [0-9.]+ KiB of 39.1 KiB are free [(]streaming the batches from host memory would need [0-9.]+ KiB for two batches and the workspace; a smaller --batch' \
    FAKE_CUDA_MEM=40000 -- "${margs[@]}"
fails "DINO_CUDA_STREAM=0 and data that do not fit" 'DINO_CUDA_STREAM=0 forbids streaming' \
    FAKE_CUDA_MEM=120000 DINO_CUDA_STREAM=0 -- "${margs[@]}"
fails "an unknown DINO_CUDA_STREAM" 'DINO_CUDA_STREAM must be 0 [(]never stream the training data[)], 1 [(]always[)] or unset' \
    DINO_CUDA_STREAM=yes -- "${nargs[@]}"

echo "$PASS passed, $FAIL failed"
[ $FAIL -eq 0 ]
