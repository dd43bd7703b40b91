#!/usr/bin/env bash
# pint_gpu.sh PINT_GPU - bench/gpu/pint_gpu (Parareal against the serial solve, the GPU campaign's
# pint step) on the stand-in driver ($DINO_CUDA_DRIVER, $DINO_NVRTC set by ctest): 8 steps,
# 4 slices, K = 1 and K = N = 4, batches 1 and 3. Checks: exit 0, a table row for every
# configuration, the K = N error at rounding (< 1e-5 in f32: the Parareal model loaded the serial
# model's parameters), the K = 1 error finite and below 1 (an approximation of the same solve),
# and a bad option refused with exit 2. Exit 77 (skipped) without a C++ compiler (the emulation).
set -u
PINT=$1
command -v "${CXX:-c++}" >/dev/null 2>&1 || { echo "SKIP: ${CXX:-c++} not found"; exit 77; }
T=$(mktemp -d "${TMPDIR:-/tmp}/dino_pint_gpu.XXXXXX") || exit 2
trap 'rm -rf "$T"' EXIT
fail=0
out=$("$PINT" --steps 8 --slices 4 --iters 1,N --batches 1,3 --reps 3 --min-ms 0 --dir "$T" 2>"$T/err")
rc=$?
echo "$out"
cat "$T/err"
[ $rc -eq 0 ] || { echo "FAIL: exit $rc"; fail=1; }
rows=$(printf '%s\n' "$out" | grep -c '^| 8 | [13] | 4 | ')
[ "$rows" = 4 ] || { echo "FAIL: expected 4 table rows, found $rows"; fail=1; }
# the error column (the last) of the K = N rows, then of the K = 1 rows
printf '%s\n' "$out" | awk -F'|' '$5 ~ /= N/ { e = $9 + 0; if (!(e < 1e-5)) { print "FAIL: K = N error " e; bad = 1 } }
    $5 ~ /^ 1 $/ { e = $9 + 0; if (!(e < 1)) { print "FAIL: K = 1 error " e; bad = 1 } } END { exit bad }' || fail=1
ls "$T"/pint_gpu_params_* >/dev/null 2>&1 && { echo "FAIL: the parameter file was left behind"; fail=1; }
"$PINT" --slices 0 >/dev/null 2>&1
[ $? -eq 2 ] || { echo "FAIL: --slices 0 not refused with exit 2"; fail=1; }
[ $fail -eq 0 ] && echo "pint_gpu: ok"
exit $fail
