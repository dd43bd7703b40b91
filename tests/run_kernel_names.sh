#!/bin/sh
# run_kernel_names.sh DINOC SPEC - the CUDA gradient kernels are named by their parameter, and a
# name two parameters would share (h.1.weight, h_1.weight) goes to the first; the other keeps
# its launch-order name dino_train_k<i>. SPEC is tests/specs/kernel_names/clash.dino. Exit 1 on
# a failure.
set -u
T=$(mktemp -d "${TMPDIR:-/tmp}/dino_kernel_names.XXXXXX") || exit 2
trap 'rm -rf "$T"' EXIT
"$1" "$2" --target cuda -o "$T/k.cu" || { echo "FAIL dinoc $2 --target cuda"; exit 1; }
fail=0
has() {   # has NAME PARAM: the kernel NAME reduces the gradient of PARAM
    if grep -q "^/\* ---- $1: the gradient of $2 from" "$T/k.cu" && grep -q "void __launch_bounds__(256) $1(DINO_TRAIN_PARAMS)" "$T/k.cu"; then
        echo "ok   $1: $2"
    else
        echo "FAIL no kernel $1 for $2"; fail=1
    fi
}
has dino_train_grad_h_0_weight h.0.weight
has dino_train_grad_q_bias q.bias
has dino_train_grad_h_1_weight h_1.weight
has dino_train_grad_h_1_bias h_1.bias
# h.1.weight and h.1.bias come after h_1's: launch-order names
grep -q "^/\* ---- dino_train_k[0-9]*: the gradient of h.1.weight from" "$T/k.cu" || { echo "FAIL h.1.weight's kernel is not dino_train_k<i>"; fail=1; }
grep -q "^/\* ---- dino_train_k[0-9]*: the gradient of h.1.bias from" "$T/k.cu" || { echo "FAIL h.1.bias's kernel is not dino_train_k<i>"; fail=1; }
[ "$(grep -c 'dino_train_grad_h_1_weight(DINO_TRAIN_PARAMS)' "$T/k.cu")" = 1 ] || { echo "FAIL dino_train_grad_h_1_weight not defined exactly once"; fail=1; }
exit $fail
