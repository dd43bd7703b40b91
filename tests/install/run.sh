#!/usr/bin/env bash
# run.sh BUILD_DIR SRC_DIR GEN - libdino installed and used from outside the build tree.
#
# Installs the build into a temporary prefix (cmake --install --prefix), checks what is there
# (both commands, libdino.so with its SONAME, libdino.a, dino.h, lib/pkgconfig/dino.pc), builds
# examples/api/predict.c against the installed tree with pkg-config (shared) and against
# libdino.a (static), trains a small model with the installed dino-jit (on data from GEN,
# dino-gen-poisson), and checks that both programs' outputs and Jacobians equal the installed
# dino-jit --predict's, byte for byte, and that the example's J v is J's row sums.
set -u
if [ $# -ne 3 ]; then echo "usage: run.sh BUILD_DIR SRC_DIR GEN" >&2; exit 2; fi
BUILD=$(cd "$1" && pwd) || exit 2
SRC=$(cd "$2" && pwd) || exit 2
GEN=$3
CC=${CC:-cc}
if ! command -v pkg-config >/dev/null 2>&1; then echo "SKIP: pkg-config is not installed"; exit 77; fi
T=$(mktemp -d "${TMPDIR:-/tmp}/dino_install.XXXXXX") || exit 2
trap 'rm -rf "$T"' EXIT
export DINO_CACHE_DIR="$BUILD/cache/install"
PASS=0 FAIL=0
ok() { PASS=$((PASS + 1)); echo "ok   $*"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL $*"; }
check() { local d=$1; shift; if "$@"; then ok "$d"; else bad "$d"; fi; }
finish() { echo "$PASS passed, $FAIL failed"; [ "$FAIL" -eq 0 ]; exit; }

P="$T/prefix"
if cmake --install "$BUILD" --prefix "$P" >"$T/install.log" 2>&1; then ok "cmake --install into $P"
else bad "cmake --install failed:"; sed 's/^/     /' "$T/install.log"; finish; fi
LIB=$(cd "$(dirname "$(find "$P" -name dino.pc | head -n 1)")/.." && pwd)
export PKG_CONFIG_PATH="$LIB/pkgconfig"
for f in bin/dinoc bin/dino-jit include/dino.h; do check "installed $f" [ -f "$P/$f" ]; done
for f in libdino.a pkgconfig/dino.pc; do check "installed lib/$f" [ -f "$LIB/$f" ]; done
soname=$(objdump -p "$LIB"/libdino.so 2>/dev/null | awk '$1 == "SONAME" { print $2 }')
check "libdino.so has a SONAME with the major version ($soname)" test -n "$soname" -a -f "$LIB/$soname"
for f in dinoc.1 dino-jit.1; do
    m=$(find "$P" -path "*/man1/$f" | head -n 1)
    check "installed the man page $f${m:+ (${m#$P/})}" [ -n "$m" ]
    if [ -n "$m" ] && command -v man >/dev/null 2>&1; then
        check "man renders $f" sh -c "MANWIDTH=80 man -l '$m' 2>/dev/null | grep -q 'ENVIRONMENT'"
    fi
done
v=$(env -u LD_LIBRARY_PATH "$P/bin/dino-jit" --version 2>&1 | head -n 1)
check "the installed dino-jit runs on the installed libdino ($v)" [ "$v" = "dino-jit $(pkg-config --modversion dino 2>/dev/null || echo '?')" ]
check "the installed dinoc runs" sh -c "'$P/bin/dinoc' --version >/dev/null"
others=$(nm -D --defined-only "$LIB/libdino.so" 2>/dev/null | awk '$2 == "T" && $3 !~ /^dino_/ { print $3 }' | head -n 5)
check "libdino.so exports only dino_* functions${others:+ (also: $others)}" [ -z "$others" ]

cflags=$(pkg-config --cflags dino) libs=$(pkg-config --libs dino) libdir=$(pkg-config --variable=libdir dino)
check "pkg-config finds dino $(pkg-config --modversion dino) (relocated: $libs)" [ -n "$libs" ]
if $CC -std=c11 -Wall -Wextra -Werror "$SRC/examples/api/predict.c" $cflags $libs -Wl,-rpath,"$libdir" \
    -o "$T/predict_shared" 2>"$T/cc.log"; then ok "examples/api/predict.c builds with pkg-config's flags"
else bad "examples/api/predict.c does not build:"; sed 's/^/     /' "$T/cc.log"; fi
if $CC -std=c11 -Wall -Wextra -Werror "$SRC/examples/api/predict.c" $cflags "$libdir/libdino.a" \
    $(pkg-config --libs-only-other --static dino | sed 's/-ldino//') \
    $(pkg-config --libs-only-l --static dino | sed 's/-ldino//') \
    -o "$T/predict_static" 2>"$T/cc2.log"; then ok "examples/api/predict.c links statically with libdino.a"
else bad "examples/api/predict.c does not link with libdino.a:"; sed 's/^/     /' "$T/cc2.log"; fi
check "the shared build uses the installed libdino.so" sh -c "ldd '$T/predict_shared' | grep -q '$libdir'"

# A small model, trained with the installed dino-jit.
"$GEN" --out "$T/d" --n 120 --kl 8 --sensors 2 --grid 11 -q || { bad "dino-gen-poisson failed"; finish; }
cat >"$T/small.dino" <<SPEC
model small {
    input  m[8]
    output q[4]
    q = mlp(m, 4, width = 16, depth = 2, act = tanh)
}
data { split train 100, test 20 }
loss { l2 q weight 1.0 relative; h1 dq/dm weight 1.0 relative }
train { optimizer adam(lr = 3e-3); batch 20; epochs 4; seed 0 }
SPEC
"$P/bin/dino-jit" "$T/small.dino" --data "$T/d" --save "$T/small.safetensors" -q 2>"$T/train.log"
check "the installed dino-jit trains and saves (exit $?)" [ -f "$T/small.safetensors" ]
"$P/bin/dino-jit" "$T/small.dino" --epochs 0 --load "$T/small.safetensors" --predict "$T/d/m_data.npy" \
    --out "$T/jit" 2>"$T/jit.log"
check "dino-jit --predict writes q.npy and J.npy" test -f "$T/jit/q.npy" -a -f "$T/jit/J.npy"
for kind in shared static; do
    [ -x "$T/predict_$kind" ] || continue
    if "$T/predict_$kind" "$T/small.dino" "$T/small.safetensors" "$T/d/m_data.npy" "$T/$kind" >"$T/$kind.out" 2>"$T/$kind.err"
    then ok "the $kind example runs: $(head -n 1 "$T/$kind.out")"
    else bad "the $kind example failed:"; sed 's/^/     /' "$T/$kind.err"; continue; fi
    check "$kind: q.npy equals dino-jit --predict's byte for byte" cmp -s "$T/jit/q.npy" "$T/$kind/q.npy"
    check "$kind: J.npy equals dino-jit --predict's byte for byte" cmp -s "$T/jit/J.npy" "$T/$kind/J.npy"
done
# The example prints q[0] and (J v)[0] of row 0 with v = 1: J v must be J's row sums.
if command -v python3 >/dev/null 2>&1 && [ -f "$T/shared.out" ]; then
    check "the example's J v (v = 1) is the sum of J's rows for row 0" python3 - "$T/jit/J.npy" "$T/shared.out" <<'PY'
import re, struct, sys
raw = open(sys.argv[1], "rb").read()
hlen = struct.unpack("<H", raw[8:10])[0]
head = raw[10:10 + hlen].decode()
fmt = "d" if "<f8" in head else "f"
shape = [int(x) for x in re.search(r"\(([^)]*)\)", head).group(1).split(",") if x.strip()]
_, out, dim = shape
vals = struct.unpack("<%d%s" % (out * dim, fmt), raw[10 + hlen:10 + hlen + out * dim * struct.calcsize(fmt)])
jv = [float(l.split("=")[-1]) for l in open(sys.argv[2]) if "(J v)" in l]
want = [sum(vals[o * dim:(o + 1) * dim]) for o in range(out)]
ok = len(jv) == out and all(abs(a - b) <= 1e-5 * (1 + abs(b)) for a, b in zip(jv, want))
print("     J v", jv, "row sums", want)
sys.exit(0 if ok else 1)
PY
fi
finish
