#!/usr/bin/env sh
# A short neural-ODE run on real MNIST when ../shared/data/mnist exists (else a visible skip):
# 6 epochs on 12,000 images must reach at least 90 % (measured: 91.9 %) accuracy on 3,000 held-out images.
# usage: run.sh DINO_JIT SRC_DIR MNIST_DIR
jit=$1 src=$2 mnist=$3
if [ ! -f "$mnist/train-images-idx3-ubyte.gz" ]; then
    echo "SKIP: no MNIST files in $mnist"
    exit 77
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
"$jit" "$src/tests/mnist/node_mnist_subset.dino" --data "$mnist" --log "$log" -q || exit 1
acc=$(tail -n 1 "$log" | awk -F, '{print $6}')
echo "test accuracy after 6 epochs on 12,000 images: $acc (required: 0.90)"
if awk -v a="$acc" 'BEGIN { exit !(a >= 0.90) }'; then
    echo "1 passed, 0 failed"
else
    echo "0 passed, 1 failed"
    exit 1
fi
