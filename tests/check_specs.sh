#!/bin/sh
# check_specs.sh - `dinoc --check` on every spec in the given folders.
#
#   tests/check_specs.sh DINOC DIR|SPEC.dino...
#
# A folder that does not exist is reported with a visible SKIP line. Exits 1 if any spec
# fails, else 77 (ctest's skip) if the first folder (../shared/specs, the normative examples)
# is missing, else 0.
set -u
if [ $# -lt 2 ]; then
    echo "usage: $0 DINOC DIR..." >&2
    exit 2
fi
dinoc=$1
shift
first_missing=0
n=0
bad=0
for dir in "$@"; do
    if [ -f "$dir" ]; then   # a single spec file (a planned spec whose feature works)
        specs=$dir
    elif [ ! -d "$dir" ]; then
        echo "SKIP: $dir does not exist; its specs are not checked"
        [ "$dir" = "$1" ] && first_missing=1
        continue
    else
        specs="$dir"/*.dino
    fi
    for spec in $specs; do
        [ -e "$spec" ] || continue
        n=$((n + 1))
        if timeout 10 "$dinoc" "$spec" --check; then
            echo "ok    $spec"
        else
            echo "FAIL  $spec"
            bad=$((bad + 1))
        fi
    done
done
echo "specs: $((n - bad)) passed, $bad failed"
[ "$bad" -eq 0 ] || exit 1
[ "$first_missing" -eq 0 ] || exit 77
exit 0
