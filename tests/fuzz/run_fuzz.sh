#!/bin/sh
# run_fuzz.sh - builds the libFuzzer parser harness and fuzzes the front end for a while.
#
#   tests/fuzz/run_fuzz.sh SECONDS [LIBFUZZER_ARGS...]
#
# Runs flex and bison on grammar/ into a temporary folder, builds tests/fuzz/fuzz_parser.c with
# the front end's sources using `clang -fsanitize=fuzzer,address,undefined`, and runs it for
# SECONDS on a copy of tests/fuzz/corpus (the committed seeds are never changed). A crash, a
# leak, a sanitizer report or an input slower than 10 s fails the run (exit 1); the input is
# kept as fuzz-artifacts/crash-* (or leak-*, timeout-*) in the current folder, to be added as
# a golden or hostile test case once fixed. Exits 77 (a skip, for ctest) when clang cannot
# build libFuzzer programs. Set CC to use another clang.
set -u

if [ $# -lt 1 ]; then
    echo "usage: $0 SECONDS [LIBFUZZER_ARGS...]" >&2
    exit 2
fi
seconds=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cc=${CC:-clang}
case $cc in *clang*) ;; *) cc=clang ;; esac

tmp=$(mktemp -d "${TMPDIR:-/tmp}/dino_fuzz.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT

echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { (void)d; (void)n; return 0; }' >"$tmp/probe.c"
if ! command -v "$cc" >/dev/null 2>&1 ||
   ! "$cc" -fsanitize=fuzzer,address,undefined "$tmp/probe.c" -o "$tmp/probe" >/dev/null 2>&1; then
    echo "SKIP: $cc cannot build libFuzzer programs (-fsanitize=fuzzer); fuzzing skipped"
    exit 77
fi

flex -o "$tmp/lexer.c" --header-file="$tmp/lexer.h" "$root/grammar/lexer.l" || exit 2
bison -Wall -Werror -d -o "$tmp/parser.c" "$root/grammar/parser.y" || exit 2
front="arena source diag ast parse fold check check_model check_calls check_ode functions check_sections check_basis emit_ast frontend lower ir abi"
srcs=""
for f in $front; do srcs="$srcs $root/compiler/$f.c"; done
# shellcheck disable=SC2086  # srcs is a word list on purpose
"$cc" -std=c11 -D_POSIX_C_SOURCE=200809L -g -O1 -fno-omit-frame-pointer \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -I"$root/compiler" -I"$tmp" -w \
    "$here/fuzz_parser.c" $srcs "$tmp/lexer.c" "$tmp/parser.c" -lm -o "$tmp/fuzz_parser" || exit 2

mkdir -p "$tmp/corpus" fuzz-artifacts
cp "$here"/corpus/* "$tmp/corpus/"
echo "fuzzing the front end for $seconds s (corpus: $(ls "$tmp/corpus" | wc -l) seeds)"
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
"$tmp/fuzz_parser" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -max_len=20000 \
    -dict="$here/dino.dict" -artifact_prefix="$PWD/fuzz-artifacts/" -print_final_stats=1 \
    "$@" "$tmp/corpus" 2>"$tmp/log"
rc=$?
grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)|^stat::number_of_executed_units|^stat::peak_rss' "$tmp/log"
rmdir fuzz-artifacts 2>/dev/null
if [ "$rc" -ne 0 ]; then
    tail -n 60 "$tmp/log"
    echo "FAIL: the fuzzer found a problem (exit $rc); the input is in $PWD/fuzz-artifacts/"
    exit 1
fi
echo "fuzz: no crash, leak or hang in $seconds s"
