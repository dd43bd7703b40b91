#!/bin/sh
# check_gate.sh - the checker is the one gate: every spec that `dinoc --check` accepts must also
# generate code for both targets (`--target c` and the default CUDA).
#
#   tests/check_gate.sh DINOC DIR|SPEC.dino...
#
# Runs on every DIR/*.dino (tests/parse's ok_* and err_* cases, specs/, ../shared/specs). A
# spec the checker rejects is fine (its message is golden_diagnostics' business); an accepted
# spec whose code generation fails is a failure, with the generator's message. A folder that
# does not exist is reported with a visible SKIP line. Exits 1 on any failure, else 0.
set -u
if [ $# -lt 2 ]; then
    echo "usage: $0 DINOC DIR..." >&2
    exit 2
fi
dinoc=$1
shift
case $dinoc in /*) ;; *) dinoc=$(pwd)/$dinoc ;; esac
tmp=$(mktemp -d "${TMPDIR:-/tmp}/dino_gate.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
accepted=0
rejected=0
bad=0
for dir in "$@"; do
    if [ -f "$dir" ]; then   # a single spec file (a planned spec whose feature works)
        specs=$dir
    elif [ ! -d "$dir" ]; then
        echo "SKIP: $dir does not exist; its specs are not checked"
        continue
    else
        specs="$dir"/*.dino
    fi
    for spec in $specs; do
        [ -e "$spec" ] || continue
        # from the spec's folder, as golden_diagnostics runs them (project() paths are relative)
        specdir=$(dirname "$spec")
        base=$(basename "$spec")
        if ! (cd "$specdir" && timeout 10 "$dinoc" "$base" --check) >/dev/null 2>&1; then
            rejected=$((rejected + 1))
            continue
        fi
        accepted=$((accepted + 1))
        for target in c cuda; do
            if (cd "$specdir" && timeout 60 "$dinoc" "$base" --target $target -o "$tmp/out") >"$tmp/log" 2>&1; then
                :
            else
                echo "FAIL  $spec: --check accepts it, --target $target refuses it (exit $?):"
                sed 's/^/      /' "$tmp/log"
                bad=$((bad + 1))
            fi
        done
    done
done
echo "gate: $accepted specs accepted by --check (each generated for c and cuda), $rejected rejected, $bad failures"
[ "$bad" -eq 0 ] || exit 1
exit 0
