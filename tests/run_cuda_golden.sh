#!/bin/sh
# run_cuda_golden.sh - the CUDA source dinoc writes for one spec, against a checked-in copy.
#
#   tests/run_cuda_golden.sh DINOC SPEC GOLDEN          diff `dinoc SPEC` with GOLDEN
#   DINO_REGEN=1 tests/run_cuda_golden.sh ...           rewrite GOLDEN instead (review the diff!)
#
# dinoc runs from the spec's folder with the bare file name, so the header comment does not
# depend on where the tree is. Exit 77 (skipped) when the spec is missing.
set -u
if [ $# -ne 3 ]; then
    echo "usage: $0 DINOC SPEC GOLDEN" >&2
    exit 2
fi
dinoc=$1
spec=$2
golden=$3
case $dinoc in /*) ;; *) dinoc=$(pwd)/$dinoc ;; esac
case $golden in /*) ;; *) golden=$(pwd)/$golden ;; esac
if [ ! -f "$spec" ]; then
    echo "SKIP: $spec not found"
    exit 77
fi
tmp=$(mktemp "${TMPDIR:-/tmp}/dino_golden_cu.XXXXXX") || exit 2
trap 'rm -f "$tmp"' EXIT
(cd "$(dirname "$spec")" && "$dinoc" "$(basename "$spec")" --target cuda -o "$tmp") || {
    echo "FAIL: dinoc exited with status $?"
    exit 1
}
if [ "${DINO_REGEN:-0}" = 1 ]; then
    if cmp -s "$tmp" "$golden"; then
        echo "unchanged: $golden"
    else
        cp "$tmp" "$golden" && echo "rewrote $golden"
    fi
    exit 0
fi
if [ ! -f "$golden" ]; then
    echo "FAIL: no $golden (run with DINO_REGEN=1 to create it)"
    exit 1
fi
if cmp -s "$tmp" "$golden"; then
    echo "ok: $(basename "$golden") matches"
    exit 0
fi
echo "FAIL: dinoc's output differs from $golden:"
diff -u "$golden" "$tmp" | head -200
exit 1
