#!/bin/sh
# run_golden.sh - golden tests for dinoc's diagnostics and dumps.
#
#   tests/run_golden.sh DINOC DIR          run every DIR/*.dino, diff against DIR/*.expected
#   DINO_REGEN=1 tests/run_golden.sh ...   rewrite the .expected files instead (review the diff!)
#
# Each case X.dino runs as `DINOC X.dino --check` from inside DIR (so paths print as
# `X.dino:3:5: error: ...`), or with the arguments named on a first-line comment such as
# `# args: --emit params`. X.expected holds stdout and stderr together, then `exit: N`.
# On a mismatch it prints the case name and a unified diff; it exits 1 if any case failed.
set -u

if [ $# -ne 2 ]; then
    echo "usage: $0 DINOC DIR" >&2
    exit 2
fi
dinoc=$1
dir=$2
case $dinoc in /*) ;; *) dinoc=$(pwd)/$dinoc ;; esac
if [ ! -x "$dinoc" ]; then
    echo "run_golden: '$dinoc' is not an executable" >&2
    exit 2
fi
cd "$dir" || exit 2

tmp=$(mktemp -d "${TMPDIR:-/tmp}/dino_golden.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT

# The output of one case, in the .expected format.
run_case() {
    args=$(sed -n '1s/^# *args: *//p' "$1")
    [ -n "$args" ] || args=--check
    # shellcheck disable=SC2086  # args is a word list on purpose
    timeout 10 "$dinoc" "$1" $args 2>&1
    echo "exit: $?"
}

pass=0
fail=0
for spec in *.dino; do
    [ -e "$spec" ] || continue
    name=${spec%.dino}
    run_case "$spec" >"$tmp/$name.out"
    if [ "${DINO_REGEN:-0}" = 1 ]; then
        if ! cmp -s "$tmp/$name.out" "$name.expected" 2>/dev/null; then
            cp "$tmp/$name.out" "$name.expected"
            echo "rewrote $name.expected"
        fi
        pass=$((pass + 1))
    elif [ ! -f "$name.expected" ]; then
        echo "FAIL $name: no $name.expected (run with DINO_REGEN=1 to create it)"
        fail=$((fail + 1))
    elif cmp -s "$tmp/$name.out" "$name.expected"; then
        pass=$((pass + 1))
    else
        echo "FAIL $name"
        diff -u "$name.expected" "$tmp/$name.out" | sed "s|$tmp/||"
        fail=$((fail + 1))
    fi
done
for exp in *.expected; do
    [ -e "$exp" ] || continue
    [ -e "${exp%.expected}.dino" ] || echo "warning: $exp has no ${exp%.expected}.dino"
done

echo "golden: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
