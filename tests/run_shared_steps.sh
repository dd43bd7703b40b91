#!/bin/sh
# run_shared_steps.sh DINOC - the code of equal ODE steps is written once (compiler/share.c):
# for the same neural ODE with 12 and with 48 rk4 steps (l2 + h1 loss), the generated C and
# CUDA grow less than 3x when the steps quadruple (measured 1.9x and 2.2x: the tables of offsets
# and the calls grow with the steps, the code does not; written out step by step both grew about
# 4x, to 2.0 MiB of C for 48 steps), the C has shared part functions and the CUDA loops over
# repeated stages. With `checkpoint 2` the 48-step CUDA stays under 2.5x the plain one's (measured
# 1.7x; before the segments' stages and kernels were shared, 5.6x and 125 s in NVRTC), with
# loops in loops (a segment's recomputation repeats its steps). The same solve with a
# 1024-wide layer gets tile kernels under --fuse auto (under 100 kernels; a kernel per layer
# would be 4831 of them, minutes in NVRTC). Exit 1 on a failure.
set -u
dinoc=$1
T=$(mktemp -d "${TMPDIR:-/tmp}/dino_shared_steps.XXXXXX") || exit 2
trap 'rm -rf "$T"' EXIT
fail=0
for steps in 12 48 48c 48w; do
    ck="" width=64
    case $steps in 48c) ck="checkpoint 2" ;; 48w) width=1024 ;; esac
    cat >"$T/s$steps.dino" <<SPEC
model node_steps {
    input  m[16]
    output q[9]
    z0 = tanh(dense(m, 16))
    ode z = z0, t in [0, 1] {
        a     = tanh(dense(concat(z, t), $width))
        dz/dt = dense(a, 16)
        solver rk4 steps ${steps%[cw]}
        $ck
    }
    q = dense(z, 9)
}
loss {
    l2 q     weight 1.0
    h1 dq/dm weight 1.0
}
SPEC
    [ "$steps" = 48w ] || "$dinoc" "$T/s$steps.dino" --target c -o "$T/s$steps.c" ||
        { echo "FAIL dinoc --target c ($steps steps)"; exit 1; }
    "$dinoc" "$T/s$steps.dino" -o "$T/s$steps.cu" || { echo "FAIL dinoc ($steps steps)"; exit 1; }
done
for ext in c cu; do
    a=$(wc -c <"$T/s12.$ext") b=$(wc -c <"$T/s48.$ext")
    if [ "$b" -lt $((3 * a)) ]; then echo "ok   .$ext: $a bytes for 12 steps, $b for 48"
    else echo "FAIL .$ext: $a bytes for 12 steps, $b for 48 (3x or more)"; fail=1; fi
done
n=$(grep -c 'parts of train do this' "$T/s48.c")
if [ "$n" -ge 2 ]; then echo "ok   the C has $n shared part functions in train"; else echo "FAIL the C shares no train parts"; fail=1; fi
n=$(grep -c 'times the same' "$T/s48.cu")
if [ "$n" -ge 2 ]; then echo "ok   the CUDA has $n loops over repeated stages"; else echo "FAIL the CUDA has no loops over steps"; fail=1; fi
a=$(wc -c <"$T/s48.cu") b=$(wc -c <"$T/s48c.cu")
if [ "$b" -lt $((5 * a / 2)) ]; then echo "ok   .cu with checkpoint 2: $b bytes, $a without"
else echo "FAIL .cu with checkpoint 2: $b bytes, 2.5x or more of $a without"; fail=1; fi
if grep -q 'for (int k1 = 0' "$T/s48c.cu"; then echo "ok   the checkpointed CUDA has loops in loops"
else echo "FAIL the checkpointed CUDA has no loops in loops"; fail=1; fi
n=$(grep -c '^extern "C" __global__' "$T/s48w.cu")
if [ "$n" -lt 100 ]; then echo "ok   48 steps with a 1024-wide layer: $n kernels (tile kernels)"
else echo "FAIL 48 steps with a 1024-wide layer: $n kernels"; fail=1; fi
exit $fail
