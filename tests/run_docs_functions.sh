#!/bin/sh
# run_docs_functions.sh - docs/language.md's function table is the checker's function table.
#
#   tests/run_docs_functions.sh LIST_FUNCTIONS DOCS/language.md
#
# LIST_FUNCTIONS (tests/list_functions.c) prints compiler/functions.c's table as markdown; the
# docs' table (from its `| call | meaning | parameters |` header to the first line that is not a
# table row) must be the same text. On a mismatch it prints the diff (- docs, + table); when
# LIST_FUNCTIONS finds the table inconsistent (a default missing from the usage) it exits 2.
set -u
if [ $# -ne 2 ]; then
    echo "usage: $0 LIST_FUNCTIONS DOC.md" >&2
    exit 2
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/dino_docs.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
"$1" >"$tmp/table.md" || exit 2
awk '/^\| call \| meaning \| parameters \|$/ { on = 1 } on && !/^\|/ { exit } on { print }' "$2" >"$tmp/docs.md"
if [ ! -s "$tmp/docs.md" ]; then
    echo "FAIL: no '| call | meaning | parameters |' table in $2"
    exit 1
fi
if ! diff -u "$tmp/docs.md" "$tmp/table.md"; then
    echo "FAIL: $2's function table differs from compiler/functions.c's (- docs, + table);"
    echo "      paste the output of list_functions into the docs"
    exit 1
fi
echo "ok: $2's function table ($(($(wc -l <"$tmp/table.md") - 2)) rows) is compiler/functions.c's"
