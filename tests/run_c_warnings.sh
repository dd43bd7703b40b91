#!/bin/sh
# run_c_warnings.sh DINOC DIR... - the generated C of every spec in the folders, f32, f64 and f32 with --math fast,
# compiles clean with -std=c11 -Wall -Wextra -Werror under gcc and clang (each one found), with
# -fopenmp (as dino-jit compiles it, at -O2, with -march=native where the compiler takes it: the
# prelude's AVX-512 code) and without (-fsyntax-only). A spec that dinoc
# refuses to generate is listed, not counted. Exit 1 on a warning or error; 77 with no compiler.
set -u
dinoc=$1
shift
T=$(mktemp -d "${TMPDIR:-/tmp}/dino_cwarn.XXXXXX") || exit 2
trap 'rm -rf "$T"' EXIT
ccs=""
for cc in gcc clang; do command -v $cc >/dev/null 2>&1 && ccs="$ccs $cc"; done
[ -n "$ccs" ] || { echo "SKIP: neither gcc nor clang found"; exit 77; }
for cc in gcc clang; do case " $ccs " in *" $cc "*) ;; *) echo "note: no $cc here" ;; esac; done
fail=0 n=0
for dir in "$@"; do
    for spec in "$dir"/*.dino; do
        [ -f "$spec" ] || continue
        for p in f32 f64 f32fast; do
            out="$T/$(basename "$spec" .dino).$p.c"
            if [ $p = f32fast ]; then pflags="--precision f32 --math fast"; else pflags="--precision $p"; fi
            if ! "$dinoc" "$spec" --target c $pflags -o "$out" 2>"$T/dinoc.log"; then
                echo "note $(basename "$spec") $p: dinoc does not generate it ($(head -1 "$T/dinoc.log"))"
                continue
            fi
            for cc in $ccs; do
                for omp in -fopenmp ""; do
                    native=""
                    echo 'int x;' >"$T/n.c"
                    $cc -march=native -c "$T/n.c" -o "$T/n.o" 2>/dev/null && native="-march=native"
                    if [ -n "$omp" ]; then flags="-O2 -c -fopenmp $native -o $T/out.o"; else flags="-fsyntax-only"; fi
                    if $cc -std=c11 -Wall -Wextra -Werror $flags "$out" >"$T/cc.log" 2>&1; then
                        n=$((n + 1))
                    else
                        echo "FAIL $(basename "$spec") $p: $cc $omp:"; head -20 "$T/cc.log"; fail=1
                    fi
                done
            done
        done
    done
done
echo "$n compiles clean (-Wall -Wextra -Werror)"
[ "$n" -gt 0 ] || fail=1
exit $fail
