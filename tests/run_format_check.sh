#!/bin/sh
# run_format_check.sh SRC_DIR - the tree is in dino's one style (.clang-format): every C source
# and header that git tracks, except what is copied byte for byte into generated code
# (compiler/prelude_c.h, compiler/prelude_cuda.h) and the goldens, is unchanged by clang-format.
# Exit 77 (skipped) without clang-format or git; 1 with the files that differ.
cd "$1" || exit 2
command -v clang-format >/dev/null 2>&1 || { echo "SKIP: no clang-format"; exit 77; }
command -v git >/dev/null 2>&1 && git rev-parse --git-dir >/dev/null 2>&1 || { echo "SKIP: not a git checkout"; exit 77; }
bad=0
for f in $(git ls-files '*.c' '*.h' '*.hpp' | grep -v -e '^compiler/prelude_c\.h$' -e '^compiler/prelude_cuda\.h$' -e '^tests/golden/'); do
    [ -f "$f" ] || continue
    if ! clang-format --dry-run -Werror "$f" >/dev/null 2>&1; then
        echo "FAIL $f is not formatted (clang-format -i $f)"
        bad=1
    fi
done
[ $bad = 0 ] && echo "ok   every C source is in the style of .clang-format"
exit $bad
