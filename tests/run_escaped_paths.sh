#!/bin/sh
# run_escaped_paths.sh DINOC SPEC - strings from paths reach the generated code only escaped
# (issue 15, point 8): SPEC copied into folders whose names hold `*/`, `/*`, a quote, a
# backslash, `??/`, a newline and non-ASCII, under a file name with some of them too. The .c
# and the .cu must compile (gcc -fsyntax-only; the .cu with NVRTC through `dinoc --emit ptx`
# when NVRTC loads, else the header comment is checked by a parse), and the header comment of
# each must end where it should: its first `*/` is followed by `#define DINO_REAL`. Exit 1 on a
# failure.
set -u
dinoc=$1
spec=$2
T=$(mktemp -d "${TMPDIR:-/tmp}/dino_paths.XXXXXX") || exit 2
trap 'rm -rf "$T"' EXIT
nl='
'
dir="$T/x*/*y/q\"u/b\\s??/n${nl}l/ü ✓"
mkdir -p "$dir" || { echo "FAIL: cannot make the folder"; exit 2; }
name="sp*\"é\\${nl}x.dino"
cp "$spec" "$dir/$name" || exit 2
fail=0

# the header comment: everything up to the first */, which must be followed by #define DINO_REAL
header_ok() {
    python3 - "$1" <<'PY' 2>/dev/null || awk 'BEGIN{RS="\001"} {i = index($0, "*/"); exit !(i > 0 && substr($0, i + 2, 18) == "\n#define DINO_REAL")}' "$1"
import sys
t = open(sys.argv[1], 'rb').read()
i = t.find(b'*/')
sys.exit(0 if i > 0 and t[i + 2:].startswith(b'\n#define DINO_REAL') and t.startswith(b'/*') else 1)
PY
}

for ext in c cu; do
    out="$T/out.$ext"
    if [ $ext = c ]; then "$dinoc" "$dir/$name" --target c -o "$out"; else "$dinoc" "$dir/$name" -o "$out"; fi ||
        { echo "FAIL: dinoc (.$ext) exited with status $?"; fail=1; continue; }
    if header_ok "$out"; then echo "ok   .$ext: the header comment ends where it should"
    else echo "FAIL .$ext: the header comment is broken:"; head -3 "$out"; fail=1; fi
    # the file name's é (and for the .cu, which names the whole path, the folder x*)
    want='\\xc3\\xa9'
    [ $ext = cu ] && ! grep -q 'x\*\\/' "$out" && want=missing
    if grep -q "$want" "$out"; then echo "ok   .$ext: the path is in the header, escaped"
    else echo "FAIL .$ext: the escaped path is not in the header:"; head -2 "$out"; fail=1; fi
done
if gcc -fsyntax-only -std=c11 -Wno-unknown-pragmas -Werror=comment -Werror=trigraphs -x c "$T/out.c" 2>"$T/gcc.log"; then
    echo "ok   .c compiles (gcc -fsyntax-only)"
else
    echo "FAIL .c does not compile:"; head -20 "$T/gcc.log"; fail=1
fi
"$dinoc" "$dir/$name" --emit ptx -o "$T/out.ptx" 2>"$T/ptx.log"
case $? in
0) echo "ok   .cu compiles with NVRTC (dinoc --emit ptx)" ;;
1) echo "note NVRTC not usable here ($(head -1 "$T/ptx.log")); the .cu was checked by its header only" ;;
*) echo "FAIL .cu does not compile with NVRTC:"; head -20 "$T/ptx.log"; fail=1 ;;
esac
exit $fail
