#!/usr/bin/env bash
# run_mmap.sh BUILD_DIR SRC_DIR [GROUP...] - training from memory-mapped data and `shuffle blocks`
# (issue 20, item 4, the CPU half).
#
# Groups (ctest runs each as its own test, mmap_<group>):
#   same     a Poisson MLP trained from memory-mapped files (the .npy dtype = the precision) and
#            from the copy DINO_DATA_MAP=0 forces: the same checkpoint byte for byte and the same
#            CSV (all columns but seconds), in f64 and in f32, with `shuffle rows` (the default) and
#            `shuffle blocks 50 window 20`; f32 training on float64 files (converted, not mapped)
#            gives the same bytes as on float32 files (mapped); the mapped run says so
#            ("training data: ... memory-mapped"), the copied one does not; shuffle blocks trains
#            another order than shuffle rows (other parameters); the read-ahead forced on in every
#            epoch (DINO_READ_AHEAD=1) changes no byte
#   resume   `shuffle blocks 40 window 100`: 6 epochs in one run == 3 epochs, --save, --load, 3
#            more (every parameter byte for byte, the CSV rows of epochs 4-6); a Ctrl-C-free
#            --until 3 then --load the same
#   mpi      `shuffle blocks 16 window 24` under mpirun -np 2 and -np 3 within 1e-12 of one process
#            (every rank draws the same block order; each reads its share ahead, DINO_READ_AHEAD=1;
#            skipped without mpirun or an MPI build)
#   big      a 288 MiB data set (m [1048576, 64], q [1048576, 8], float32) trained under
#            `ulimit -d` 128 MiB (RLIMIT_DATA counts private writable memory, not read-only file
#            mappings) with `shuffle blocks 8192`: it trains (exit 0, the loss falls); the same run
#            with DINO_DATA_MAP=0 (a copy in memory) fails cleanly (exit 1, "out of memory", naming
#            DINO_DATA_MAP), and so does --precision f64 (the float32 files converted: the message
#            says to save them as float64). The files are written to a temporary folder and removed
#   errors   --set shuffle=...: blocks 0, window 0, a fraction, a name, another word: exit 1 with
#            the train section's messages; --set shuffle=rows and blocks B window W train
#   rb       float32 training of a basis section on float64 files (issue 16): the reduced path
#            reads the files in place as float64 and projects them, never converting them whole.
#            Small Poisson data: the bases (report lines, __basis tensors) are the bits of a run on
#            float32 copies of the files; the trained metrics agree with it to f32 rounding, and
#            both are printed against an f64 reference; a spec whose reduced path is refused
#            after the load (an encode without a decode, Jacobian data for rel_h1) trains on the
#            converted data: the same checkpoint and CSV as DINO_DATA_MAP=0 (converted at the
#            load, as before) and as the float32 files. Big: float64 files of 680 MiB (J [5120, 16,
#            1024]) under `ulimit -d` 256 MiB: the reduced path trains; DINO_DATA_MAP=0 and
#            DINO_REDUCED=0 (both need the float32 copy) fail cleanly with "out of memory". Under a
#            sanitizer build (no start under the limit) the big runs go without it, said so
#
# Each group prints one line per assertion (ok / FAIL) and ends with "N passed, N failed"; exit 1
# when anything failed, 77 (skipped) when python3 is missing (mpi: also mpirun or MPI).
set -u
if [ $# -lt 2 ]; then
    echo "usage: run_mmap.sh BUILD_DIR SRC_DIR [same|resume|mpi|big|errors]..." >&2
    exit 2
fi
BUILD=$(cd "$1" && pwd) || exit 2
SRC=$(cd "$2" && pwd) || exit 2
shift 2
GROUP_LIST=("$@")
[ ${#GROUP_LIST[@]} -eq 0 ] && GROUP_LIST=(same resume mpi big errors)
if ! command -v python3 >/dev/null 2>&1; then
    echo "SKIP: python3 is needed for the .npy and safetensors helpers"
    exit 77
fi

JIT="$BUILD/dino-jit"
TOOL=(python3 "$SRC/tests/cli/npytool.py")
T=$(mktemp -d "${TMPDIR:-/tmp}/dino_mmap.XXXXXX") || exit 2
[ -n "${DINO_KEEP:-}" ] || trap 'rm -rf "$T"' EXIT
export OMP_NUM_THREADS=1
export DINO_CACHE_DIR="$BUILD/cache/mmap"
unset DINO_DATA_MAP

PASS=0
FAIL=0
SKIPPED=0
ok() { PASS=$((PASS + 1)); echo "ok   $*"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL $*"; }
check() {
    local desc=$1
    shift
    if "$@"; then ok "$desc"; else bad "$desc"; fi
}
# run NAME ARGS...: dino-jit ARGS, output in $T/NAME.out/.err, status in RC
run() {
    local name=$1
    shift
    timeout 300 "$JIT" "$@" >"$T/$name.out" 2>"$T/$name.err"
    RC=$?
}
expect_rc() {
    if [ "$RC" -eq "$2" ]; then ok "$1: exit status $RC"; else
        bad "$1: exit status $RC, expected $2; stderr:"
        sed 's/^/       /' "$T/$1.err" | tail -n 15
    fi
}
stderr_has() {
    local name=$1 missing=""
    shift
    for s in "$@"; do grep -qF -- "$s" "$T/$name.err" || missing="$missing '$s'"; done
    if [ -z "$missing" ]; then ok "$name: message mentions$(printf " '%s'" "$@")"; else
        bad "$name: message lacks$missing; stderr:"
        sed 's/^/       /' "$T/$name.err" | tail -n 15
    fi
}
strip_seconds() { awk -F, -v OFS=, -v e0="${2:-0}" 'NR == 1 || $1 + 0 >= e0 { $3 = ""; print }' "$1"; }
# same_run DESC A B: checkpoints A.st and B.st byte for byte, and the CSVs A.csv, B.csv but seconds
same_run() {
    if cmp -s "$T/$2.st" "$T/$3.st" && cmp -s <(strip_seconds "$T/$2.csv") <(strip_seconds "$T/$3.csv"); then
        ok "$1: the same checkpoint byte for byte, the same CSV"
    else
        bad "$1: $2 and $3 differ"
        "${TOOL[@]}" st_compare "$T/$2.st" "$T/$3.st" 2>&1 | tail -n 3 | sed 's/^/       /'
    fi
}

# as_f32 IN OUT: a float64 .npy as float32 (the header rewritten, each value rounded)
as_f32() {
    python3 - "$1" "$2" <<'PY'
import struct, sys
raw = open(sys.argv[1], "rb").read()
hl = struct.unpack("<H", raw[8:10])[0]
head = raw[10:10 + hl].decode("latin1")
assert "'<f8'" in head, head
vals = struct.unpack("<%dd" % ((len(raw) - 10 - hl) // 8), raw[10 + hl:])
head = head.replace("'<f8'", "'<f4'").rstrip()
pad = 64 - (10 + len(head) + 1) % 64
head = head + " " * (pad % 64) + "\n"
with open(sys.argv[2], "wb") as f:
    f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(head)) + head.encode("latin1"))
    f.write(struct.pack("<%df" % len(vals), *vals))
PY
}

data() {   # the Poisson data, float64 in d/ and float32 in d32/: m[16] -> q[9], J [N, 9, 16]
    [ -f "$T/d32/J_data.npy" ] && return 0
    "$BUILD/dino-gen-poisson" --out "$T/d" --n 400 --kl 16 --sensors 3 --grid 15 -q || { bad "dino-gen-poisson failed"; return 1; }
    mkdir -p "$T/d32"
    for f in m_data q_data J_data; do as_f32 "$T/d/$f.npy" "$T/d32/$f.npy" || { bad "as_f32 $f"; return 1; }; done
}

# spec FILE PRECISION [train lines] [epochs]
spec() {
    cat >"$1" <<SPEC
model poisson_small {
    input  m[16]
    output q[9]
    q = mlp(m, 9, width = 32, depth = 2, act = gelu)
}
data {
    split train 320, test 80
}
loss {
    l2 q     weight 1.0 relative
    h1 dq/dm weight 1.0 relative
}
train {
    optimizer adam(lr = 3e-3)
    batch     32
    epochs    ${4:-4}
    seed      0
    precision $2
    eval every 2
${3:-}
}
SPEC
}

# ---------------------------------------------------------------------------- groups

group_same() {
    data || return
    local p shuf tag
    for p in f64 f32; do
        for shuf in "" "shuffle blocks 50 window 20"; do
            tag=${p}${shuf:+_blocks}
            spec "$T/$tag.dino" "$p" "    $shuf"
            local files="$T/d"
            [ "$p" = f32 ] && files="$T/d32"
            run "map_$tag" "$T/$tag.dino" --data "$files" --save "$T/map_$tag.st" --log "$T/map_$tag.csv"
            expect_rc "map_$tag" 0
            stderr_has "map_$tag" "training data:" "read in place from memory-mapped files"
            DINO_DATA_MAP=0 run "copy_$tag" "$T/$tag.dino" --data "$files" --save "$T/copy_$tag.st" --log "$T/copy_$tag.csv"
            expect_rc "copy_$tag" 0
            check "copy_$tag: no mapped data reported" bash -c "! grep -q 'memory-mapped' '$T/copy_$tag.err'"
            same_run "$p${shuf:+, $shuf}: mapped and copied" "map_$tag" "copy_$tag"
        done
    done
    # f32 training on the float64 files: converted (not mapped), the same values as the float32 files
    run conv_f32 "$T/f32.dino" --data "$T/d" --save "$T/conv_f32.st" --log "$T/conv_f32.csv"
    expect_rc conv_f32 0
    check "conv_f32: float64 files in f32 are not mapped" bash -c "! grep -q 'memory-mapped' '$T/conv_f32.err'"
    same_run "f32: float64 files converted and float32 files mapped" conv_f32 map_f32
    check "shuffle blocks trains another order than shuffle rows" bash -c "! cmp -s '$T/map_f64.st' '$T/map_f64_blocks.st'"
    # the read-ahead forced on in every epoch (the data are cached here, so it would stay off): the
    # same bytes, with shuffle rows and with shuffle blocks
    for tag in f32 f32_blocks; do
        DINO_READ_AHEAD=1 run "ahead_$tag" "$T/$tag.dino" --data "$T/d32" --save "$T/ahead_$tag.st" --log "$T/ahead_$tag.csv"
        expect_rc "ahead_$tag" 0
        same_run "$tag with DINO_READ_AHEAD=1 and without" "ahead_$tag" "map_$tag"
    done
}

group_resume() {
    data || return
    spec "$T/r.dino" f64 "    shuffle blocks 40 window 100" 6
    run r6 "$T/r.dino" --data "$T/d" --save "$T/r6.st" --log "$T/r6.csv"
    expect_rc r6 0
    run r3 "$T/r.dino" --data "$T/d" --epochs 3 --save "$T/r3.st" --log "$T/r3.csv"
    expect_rc r3 0
    run r33 "$T/r.dino" --data "$T/d" --load "$T/r3.st" --save "$T/r33.st" --log "$T/r33.csv"
    expect_rc r33 0
    check "3 + 3 epochs == 6 epochs: every parameter byte for byte" "${TOOL[@]}" st_compare "$T/r6.st" "$T/r33.st"
    check "... and the CSV rows of epochs 4-6" cmp -s <(strip_seconds "$T/r6.csv" 4 | tail -n +2) \
        <(strip_seconds "$T/r33.csv" 4 | tail -n +2)
    run ru "$T/r.dino" --data "$T/d" --until 3 --save "$T/ru.st"
    expect_rc ru 0
    run ru6 "$T/r.dino" --data "$T/d" --load "$T/ru.st" --save "$T/ru6.st"
    expect_rc ru6 0
    check "--until 3, then --load: the 6-epoch parameters byte for byte" "${TOOL[@]}" st_compare "$T/r6.st" "$T/ru6.st"
}

group_mpi() {
    local have
    have=$(sed -n 's/^DINO_HAVE_MPI:[A-Z]*=//p' "$BUILD/CMakeCache.txt")
    if [ "$have" != ON ] || ! command -v mpirun >/dev/null 2>&1; then
        echo "SKIP: mpirun or an MPI build is missing"
        SKIPPED=1
        return
    fi
    data || return
    export DINO_READ_AHEAD=1 # each rank's read-ahead of its share, in every epoch
    spec "$T/m.dino" f64 "    shuffle blocks 16 window 24" 4
    sed -i 's/batch     32/batch     13/' "$T/m.dino" # 3 divides no batch: uneven shares
    run m1 "$T/m.dino" --data "$T/d" --backend cpu --save "$T/m1.st"
    expect_rc m1 0
    local np
    for np in 2 3; do
        timeout 120 env OMPI_MCA_plm=isolated OMPI_MCA_btl_vader_single_copy_mechanism=none \
            OMPI_MCA_rmaps_base_oversubscribe=1 "ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
            mpirun --oversubscribe --allow-run-as-root -np $np "$JIT" "$T/m.dino" --data "$T/d" --backend cpu \
            --save "$T/m$np.st" >"$T/m$np.out" 2>"$T/m$np.err"
        RC=$?
        expect_rc "m$np" 0
        local out
        if out=$(python3 "$SRC/tests/mpi/st_close.py" "$T/m$np.st" "$T/m1.st" 1e-12 2>&1); then
            ok "shuffle blocks under mpirun -np $np: one process's parameters to 1e-12 ($out)"
        else
            bad "shuffle blocks under mpirun -np $np: $out"
        fi
    done
    unset DINO_READ_AHEAD
}

# big_npy OUT ROWS COLS SEED MATRIX_FROM: float32 [ROWS, COLS], 4096 random rows repeated (or,
# with MATRIX_FROM = the inputs' file, q = A m for a fixed A [COLS, 64]); written in 1 MiB pieces
big_npy() {
    python3 - "$@" <<'PY'
import array, random, struct, sys
out, rows, cols, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
base = 4096
random.seed(seed)
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

group_big() {
    local rows=1048576 limit_kb=131072
    mkdir -p "$T/big" "$T/small"
    local t0=$SECONDS
    big_npy "$T/big/m_data.npy" $rows 64 1 && big_npy "$T/big/q_data.npy" $rows 8 1 || { bad "writing the data"; return; }
    big_npy "$T/small/m_data.npy" 8192 64 1 && big_npy "$T/small/q_data.npy" 8192 8 1 || { bad "writing the data"; return; }
    local bytes
    bytes=$(($(stat -c %s "$T/big/m_data.npy") + $(stat -c %s "$T/big/q_data.npy")))
    ok "wrote $((bytes >> 20)) MiB of data in $((SECONDS - t0)) s; the memory limit is $((limit_kb >> 10)) MiB"
    cat >"$T/big.dino" <<'SPEC'
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
    shuffle   blocks 8192
}
SPEC
    # the module compiled first, without the limit (the host compiler would run under it)
    run warm "$T/big.dino" --data "$T/small" --epochs 1
    expect_rc warm 0
    local starts
    starts=$( (ulimit -d $limit_kb && "$JIT" --version >/dev/null 2>&1 && echo yes) 2>/dev/null)
    if [ "$starts" != yes ]; then
        # a sanitizer build: AddressSanitizer's shadow memory is private writable memory
        echo "SKIP: dino-jit does not start under a $((limit_kb >> 10)) MiB RLIMIT_DATA (a sanitizer build?); trained without it"
        limit_kb=unlimited
    fi
    t0=$SECONDS
    (ulimit -d $limit_kb && exec timeout 300 "$JIT" "$T/big.dino" --data "$T/big" --log "$T/big.csv") \
        >"$T/big.out" 2>"$T/big.err"
    RC=$?
    expect_rc big 0
    stderr_has big "training data: " "read in place from memory-mapped files (shuffle blocks"
    local l1 l2
    l1=$(awk -F, '$1 == 1 { print $5 }' "$T/big.csv")
    l2=$(awk -F, '$1 == 2 { print $5 }' "$T/big.csv")
    check "big: trained 2 epochs of a $rows-row file in $((SECONDS - t0)) s under a data limit of $limit_kb KiB; the loss fell ($l1 -> $l2)" \
        awk -v a="$l1" -v b="$l2" 'BEGIN { exit !(a != "" && b != "" && b + 0 < a + 0) }'
    if [ "$limit_kb" != unlimited ]; then
        (ulimit -d $limit_kb && DINO_DATA_MAP=0 exec timeout 300 "$JIT" "$T/big.dino" --data "$T/big") \
            >"$T/big_copy.out" 2>"$T/big_copy.err"
        RC=$?
        expect_rc big_copy 1
        stderr_has big_copy "m_data.npy: out of memory" "DINO_DATA_MAP=0 asks for this copy"
        # f64 training on the float32 files: converted, so copied, and the message says how to map
        (ulimit -d $limit_kb && exec timeout 300 "$JIT" "$T/big.dino" --data "$T/big" --precision f64) \
            >"$T/big_f64.out" 2>"$T/big_f64.err"
        RC=$?
        expect_rc big_f64 1
        stderr_has big_f64 "m_data.npy: out of memory" "the file is float32: saved as float64 (the training precision) it would be read in place"
    fi
    rm -rf "$T/big"
}

group_errors() {
    data || return
    spec "$T/e.dino" f64 "" 1
    local v want
    while IFS='|' read -r v want; do
        run set_err "$T/e.dino" --data "$T/d" --set "shuffle=$v"
        if [ "$RC" -eq 1 ] && grep -qF -- "$want" "$T/set_err.err"; then ok "--set shuffle='$v': exit 1, '$want'"; else
            bad "--set shuffle='$v': exit $RC; stderr:"
            sed 's/^/       /' "$T/set_err.err" | tail -n 5
        fi
    done <<'CASES'
blocks 0|shuffle blocks must be positive, not 0
blocks 64 window 0|window must be positive, not 0
blocks 2.5|shuffle blocks must be a whole number, not 2.5
blocks many|shuffle blocks must be a number, not 'many'
blocks 64 window|shuffle is 'rows', 'blocks B' or 'blocks B window W'
cols|shuffle is 'rows', 'blocks B' or 'blocks B window W' (B, W: rows), not 'cols'
blocks 4 windw 8|not 'blocks 4 windw 8'
|shuffle is 'rows'
CASES
    run set_rows "$T/e.dino" --data "$T/d" --set shuffle=rows --save "$T/set_rows.st"
    expect_rc set_rows 0
    run set_none "$T/e.dino" --data "$T/d" --save "$T/set_none.st"
    expect_rc set_none 0
    check "--set shuffle=rows is the default: the same parameters" cmp -s "$T/set_rows.st" "$T/set_none.st"
    run set_blocks "$T/e.dino" --data "$T/d" --set "shuffle=blocks 64 window 128" --save "$T/set_blocks.st"
    expect_rc set_blocks 0
    stderr_has set_blocks "(shuffle blocks"
}

# rb_npy DIR ROWS: float64 m [ROWS, 1024], q [ROWS, 16], J [ROWS, 16, 1024] (q = J m + sin m + o):
# 64 random samples repeated, written in pieces
rb_npy() {
    python3 - "$1" "$2" <<'PY'
import array, math, os, random, struct, sys
out, rows = sys.argv[1], int(sys.argv[2])
base, n_in, n_out = 64, 1024, 16
random.seed(7)
m = array.array("d", [random.gauss(0, 1) for _ in range(base * n_in)])
J = array.array("d", [random.gauss(0, 1) / 32 for _ in range(base * n_out * n_in)])
q = array.array("d", [1 + o + math.sin(m[r * n_in + o]) + sum(J[(r * n_out + o) * n_in + k] * m[r * n_in + k] for k in range(n_in))
                      for r in range(base) for o in range(n_out)])
os.makedirs(out, exist_ok=True)
for name, a, shape in (("m_data", m, (n_in,)), ("q_data", q, (n_out,)), ("J_data", J, (n_out, n_in))):
    head = "{'descr': '<f8', 'fortran_order': False, 'shape': (%s), }" % ", ".join(str(d) for d in (rows,) + shape)
    head += " " * (64 - (10 + len(head) + 1) % 64) + "\n"
    raw = a.tobytes()
    with open(os.path.join(out, name + ".npy"), "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(head)) + head.encode())
        for _ in range(rows // base):
            f.write(raw)
        f.write(raw[: (rows % base) * len(raw) // base])
PY
}

# rb_spec FILE NAME RANK_IN RANK_OUT IN OUT: a reduced-basis MLP in f32
rb_spec() {
    cat >"$1" <<SPEC
basis {
    Vm = active_subspace(dq/dm, rank = $3)
    Vq = pod(q, rank = $4)
}
model $2 {
    input  m[$5]
    output q[$6]
    q = decode(mlp(encode(m, Vm), $4, width = 16, depth = 2, act = gelu), Vq)
}
data {
    split train 0.8, test 0.2
}
loss {
    l2 q     weight 1.0 relative
    h1 dq/dm weight 1.0 relative
}
train {
    optimizer adam(lr = 3e-3)
    batch     32
    epochs    3
    seed      0
    precision f32
}
SPEC
}

# the last CSV row's column NAME of $T/TAG.csv
csv_col() { awk -F, -v c="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == c) k = i } END { print $k }' "$T/$1.csv"; }

group_rb() {
    data || return
    # the reduced path on the float64 files (kept as they are), on float32 copies (what a float32
    # load held before), and in f64 (the reference)
    rb_spec "$T/rb.dino" rb_small 6 4 16 9
    run rb64 "$T/rb.dino" --data "$T/d" --save "$T/rb64.st" --log "$T/rb64.csv"
    expect_rc rb64 0
    stderr_has rb64 "exact training in reduced coordinates"
    run rb32 "$T/rb.dino" --data "$T/d32" --save "$T/rb32.st" --log "$T/rb32.csv"
    expect_rc rb32 0
    DINO_DATA_MAP=0 run rbcopy "$T/rb.dino" --data "$T/d" --save "$T/rbcopy.st" --log "$T/rbcopy.csv"
    expect_rc rbcopy 0
    run rbref "$T/rb.dino" --data "$T/d" --precision f64 --log "$T/rbref.csv"
    expect_rc rbref 0
    check "rb f32: the bases' report on float64 files is the float32 files' (the same bits)" \
        cmp -s <(grep 'basis V' "$T/rb64.err" | sed 's/, [a-z ]* (/, (/; s/ in [0-9.]* s;//') \
        <(grep 'basis V' "$T/rb32.err" | sed 's/, [a-z ]* (/, (/; s/ in [0-9.]* s;//')
    check "rb f32: ... and the checkpoints' __basis tensors" "${TOOL[@]}" st_same "$T/rb64.st" "$T/rb32.st" __basis
    same_run "rb f32: float64 files copied at the load (DINO_DATA_MAP=0) and float32 files" rbcopy rb32
    local c v64 v32 vref
    for c in rel_l2 rel_h1; do
        v64=$(csv_col rb64 $c) v32=$(csv_col rb32 $c) vref=$(csv_col rbref $c)
        check "rb f32 test $c after 3 epochs: float64 files $v64, float32 files $v32 (relative difference < 1e-4); f64 reference $vref" \
            awk -v a="$v64" -v b="$v32" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a != "" && b != "" && d <= 1e-4 * b) }'
    done
    # the reduced path refused after the load (the data have Jacobians for rel_h1, the output is
    # no decode): the full-space graph on the converted rows, as a float32 load gives them
    cat >"$T/fb.dino" <<'SPEC'
basis {
    Vm = pod(m, rank = 6)
}
model fb {
    input  m[16]
    output q[9]
    q = mlp(encode(m, Vm), 9, width = 16, depth = 2, act = gelu)
}
data {
    split train 0.8, test 0.2
}
loss {
    l2 q relative
}
train {
    optimizer adam(lr = 3e-3)
    batch     32
    epochs    3
    seed      0
    precision f32
}
SPEC
    run fb64 "$T/fb.dino" --data "$T/d" --save "$T/fb64.st" --log "$T/fb64.csv"
    expect_rc fb64 0
    stderr_has fb64 "run in the full-space graph" "need the output to be"
    DINO_DATA_MAP=0 run fbcopy "$T/fb.dino" --data "$T/d" --save "$T/fbcopy.st" --log "$T/fbcopy.csv"
    expect_rc fbcopy 0
    run fb32 "$T/fb.dino" --data "$T/d32" --save "$T/fb32.st" --log "$T/fb32.csv"
    expect_rc fb32 0
    same_run "fallback: float64 files kept then converted, and converted at the load (DINO_DATA_MAP=0)" fb64 fbcopy
    same_run "fallback: float64 files kept then converted, and float32 files" fb64 fb32
    # the values of kept float64 files are checked against float32 as a conversion would check them
    local v want
    for v in "1e39|does not fit in float32" "nan|contains NaN" "1e-50|all zero"; do
        want=${v#*|} v=${v%%|*}
        mkdir -p "$T/dbad"
        cp "$T/d/m_data.npy" "$T/d/J_data.npy" "$T/dbad/"
        python3 - "$T/d/q_data.npy" "$T/dbad/q_data.npy" "$v" <<'PY'
import struct, sys
raw = bytearray(open(sys.argv[1], "rb").read())
hl = struct.unpack("<H", raw[8:10])[0]
at = 10 + hl + 8 * (9 * 5 + 2)  # row 5, column 2
if sys.argv[3] == "1e-50":  # row 5 all tiny: zero as float32
    for k in range(9):
        raw[10 + hl + 8 * (9 * 5 + k):10 + hl + 8 * (9 * 5 + k + 1)] = struct.pack("<d", 1e-50)
else:
    raw[at:at + 8] = struct.pack("<d", float(sys.argv[3]))
open(sys.argv[2], "wb").write(raw)
PY
        run "bad_$v" "$T/rb.dino" --data "$T/dbad"
        expect_rc "bad_$v" 1
        stderr_has "bad_$v" "$want"
    done

    # big: float64 files larger than the memory limit
    # 256 MiB: OpenBLAS takes a 128 MiB buffer at its first call (one per thread: one thread
    # here; it waits forever when it cannot, hence the timeout); the float32 copy of the files
    # (335 MiB) does not fit beside it
    local rows=5120 limit_kb=262144 t0=$SECONDS
    rb_npy "$T/rbbig" $rows && rb_npy "$T/rbsmall" 64 || { bad "writing the data"; return; }
    local bytes
    bytes=$(du -bc "$T/rbbig"/*.npy | tail -1 | cut -f1)
    ok "wrote $((bytes >> 20)) MiB of float64 data in $((SECONDS - t0)) s; the memory limit is $((limit_kb >> 10)) MiB"
    rb_spec "$T/rbbig.dino" rb_big 8 4 1024 16
    sed -e 's/active_subspace(dq\/dm, rank = 8)/pod(m, rank = 8)/' -e '/Vq = /d' \
        -e 's/q = decode(.*/q = mlp(encode(m, Vm), 16, width = 16, depth = 2)/' -e '/h1 dq/d' "$T/rbbig.dino" >"$T/fbbig.dino"
    # the modules compiled first, without the limit (the host compiler would run under it)
    run rbwarm "$T/rbbig.dino" --data "$T/rbsmall" --epochs 1
    expect_rc rbwarm 0
    run fbwarm "$T/fbbig.dino" --data "$T/rbsmall" --epochs 1
    expect_rc fbwarm 0
    stderr_has fbwarm "run in the full-space graph"
    local starts
    starts=$( (ulimit -d $limit_kb && "$JIT" --version >/dev/null 2>&1 && echo yes) 2>/dev/null)
    if [ "$starts" != yes ]; then
        echo "SKIP: dino-jit does not start under a $((limit_kb >> 10)) MiB RLIMIT_DATA (a sanitizer build?); trained without it"
        limit_kb=unlimited
    fi
    t0=$SECONDS
    (ulimit -d $limit_kb && OPENBLAS_NUM_THREADS=1 exec timeout 120 "$JIT" "$T/rbbig.dino" --data "$T/rbbig" --log "$T/rbbig.csv") \
        >"$T/rbbig.out" 2>"$T/rbbig.err"
    RC=$?
    expect_rc rbbig 0
    stderr_has rbbig "exact training in reduced coordinates"
    local h1
    h1=$(csv_col rbbig rel_h1)
    check "rbbig: f32 reduced training on $((bytes >> 20)) MiB of float64 files in $((SECONDS - t0)) s under a data limit of $limit_kb KiB (test rel_h1 $h1)" \
        awk -v a="$h1" 'BEGIN { exit !(a != "" && a + 0 > 0 && a + 0 < 1) }'
    if [ "$limit_kb" != unlimited ]; then
        (ulimit -d $limit_kb && DINO_DATA_MAP=0 OPENBLAS_NUM_THREADS=1 exec timeout 120 "$JIT" "$T/rbbig.dino" --data "$T/rbbig") \
            >"$T/rbbig_copy.out" 2>"$T/rbbig_copy.err"
        RC=$?
        expect_rc rbbig_copy 1
        stderr_has rbbig_copy "out of memory"
        (ulimit -d $limit_kb && DINO_REDUCED=0 OPENBLAS_NUM_THREADS=1 exec timeout 120 "$JIT" "$T/rbbig.dino" --data "$T/rbbig") \
            >"$T/rbbig_full.out" 2>"$T/rbbig_full.err"
        RC=$?
        expect_rc rbbig_full 1
        stderr_has rbbig_full "out of memory"
        # the reduced path refused after the load (files kept as float64): the conversion for the
        # full-space graph is what fails, and says so
        (ulimit -d $limit_kb && OPENBLAS_NUM_THREADS=1 exec timeout 120 "$JIT" "$T/fbbig.dino" --data "$T/rbbig") \
            >"$T/fbbig.out" 2>"$T/fbbig.err"
        RC=$?
        expect_rc fbbig 1
        stderr_has fbbig "out of memory converting the training set (4096 rows) to float32" \
            "the full-space graph reads the data in the training precision"
    fi
    rm -rf "$T/rbbig"
}

for g in "${GROUP_LIST[@]}"; do
    case $g in
    same | resume | mpi | big | errors | rb) "group_$g" ;;
    *)
        echo "unknown group '$g'" >&2
        exit 2
        ;;
    esac
done
echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ] || exit 1
[ "$SKIPPED" -eq 1 ] && [ "$PASS" -eq 0 ] && exit 77
exit 0
