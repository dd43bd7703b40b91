#!/bin/sh
# run_codegen_golden.sh - what dinoc generates for one spec, against a checked-in copy.
#
#   tests/run_codegen_golden.sh DINOC KIND SPEC GOLDEN        diff dinoc's output with GOLDEN
#   DINO_REGEN=1 tests/run_codegen_golden.sh ...              rewrite GOLDEN instead (review the diff!)
#
# KIND: ir (`dinoc SPEC --emit ir`, the programs after autodiff), c (`--target c`, the CPU
# backend's source) or cuda (`--target cuda`). dinoc runs from the spec's folder with the bare
# file name, so the output does not depend on where the tree is. Exit 77 (skipped) when the
# spec is missing.
set -u
if [ $# -ne 4 ]; then
    echo "usage: $0 DINOC ir|c|cuda SPEC GOLDEN" >&2
    exit 2
fi
dinoc=$1
kind=$2
spec=$3
golden=$4
case $dinoc in /*) ;; *) dinoc=$(pwd)/$dinoc ;; esac
case $golden in /*) ;; *) golden=$(pwd)/$golden ;; esac
if [ ! -f "$spec" ]; then
    echo "SKIP: $spec not found"
    exit 77
fi
tmp=$(mktemp "${TMPDIR:-/tmp}/dino_golden_gen.XXXXXX") || exit 2
trap 'rm -f "$tmp"' EXIT
base=$(basename "$spec")
case $kind in
    ir) (cd "$(dirname "$spec")" && "$dinoc" "$base" --emit ir >"$tmp") ;;
    c | cuda) (cd "$(dirname "$spec")" && "$dinoc" "$base" --target "$kind" -o "$tmp") ;;
    *)
        echo "run_codegen_golden: unknown kind '$kind' (ir, c or cuda)" >&2
        exit 2
        ;;
esac
rc=$?
if [ $rc -ne 0 ]; then
    echo "FAIL: dinoc exited with status $rc"
    exit 1
fi
if [ "${DINO_REGEN:-0}" = 1 ]; then
    if cmp -s "$tmp" "$golden"; then
        echo "unchanged: $golden"
    else
        cat "$tmp" >"$golden" && echo "rewrote $golden"
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
echo "FAIL: dinoc's output ($kind) differs from $golden:"
diff -u "$golden" "$tmp" | head -200
exit 1
