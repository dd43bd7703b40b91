#!/usr/bin/env bash
# bench/gpu/prepare.sh - builds here what bench/gpu/run.sh runs on a lent GPU machine, into the
# git-ignored folder gpu-carry/ (under the 64 MiB a device call may carry):
#   gpu-carry/bin/      dino-jit, dinoc (with libdino.so.MAJOR), dino-gen-poisson, test_gpu (Release build)
#   gpu-carry/shared/   ../shared's specs, reference values and MNIST files (the device gets
#                       the repository only, not ../shared beside it)
# Then, with the device tool, in two calls that each fit in the 10-minute limit of one call:
#   run(command="bash bench/gpu/run.sh tests dino", carry=["gpu-carry"], timeout_s=600)
#   run(command="bash bench/gpu/run.sh mnist pint", carry=["gpu-carry"], timeout_s=600)
# and, if device time is left, run(command="bash bench/gpu/run.sh ckpt", ...) (about 1-2 minutes)
# and copy the tables they print, and the files under $OUT, into bench/RESULTS.md. The script was
# smoke-run here on the emulated device (tests/fake_cuda) with ROWS=300 DINO_EPOCHS=2: the GPU
# tests pass there (30 checks); the JAX baseline runs on the CPU; PyTorch needs torch >= 2.
#
# Issue 19 (GPU readiness), what the CPU side now guarantees and what only a GPU can show:
#   - every spec's kernels fit the launch limits by ptxas's own report (cuda_nvrtc_specs: no
#     spills, static + dynamic shared memory <= 48 KiB, registers within __launch_bounds__(256)),
#     so a start-up failure on the device is something else: rerun the failing command with
#     DINO_CUDA_DEBUG=1 (synchronises after every launch, no graphs) and the error names the
#     kernel, its stage comment and its grid/block/shared memory/rows;
#   - the driver is loaded once per process and the context kept; tile-kernel grids come from
#     cuOccupancyMaxActiveBlocksPerMultiprocessor (print nothing: compare epoch times with
#     DINO_CUDA_FUSE=none if tile kernels look slow);
#   - first call on the device, before run.sh: test_gpu alone, then a short compute-sanitizer pass
#     on a small spec, e.g. (the toolkit's compute-sanitizer, on PATH under /usr/local/cuda/bin):
#       gpu-carry/bin/test_gpu gpu-carry/shared tests/specs
#       for t in memcheck racecheck synccheck; do DINO_CUDA_GRAPH=0 compute-sanitizer --tool $t \
#         --error-exitcode 3 gpu-carry/bin/dino-jit gpu-carry/shared/specs/node_small.dino \
#         --backend cuda --data gpu-carry/shared/reference/node_small --epochs 1 -q; done
set -euo pipefail
cd "$(dirname "$0")/../.."
shared=${SHARED:-../shared}
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-gpu -j "$(nproc)" --target dino-jit dinoc dino-gen-poisson test_gpu >/dev/null
rm -rf gpu-carry
mkdir -p gpu-carry/bin gpu-carry/shared/data
cp build-gpu/dino-jit build-gpu/dinoc build-gpu/dino-gen-poisson build-gpu/tests/test_gpu gpu-carry/bin/
cp -L "$(readlink -f build-gpu/libdino.so)" gpu-carry/bin/"$(objdump -p build-gpu/libdino.so | awk '$1 == "SONAME" { print $2 }')"   # the commands' libdino, found by $ORIGIN
cp -r "$shared/specs" "$shared/reference" gpu-carry/shared/
[ -d "$shared/data/mnist" ] && cp -r "$shared/data/mnist" gpu-carry/shared/data/
grep -qx '/gpu-carry/' .git/info/exclude 2>/dev/null || echo '/gpu-carry/' >>.git/info/exclude
echo "gpu-carry: $(du -sh gpu-carry | cut -f1) (at most 64 MiB travels); commit $(git rev-parse --short HEAD)$(git diff --quiet || echo ' + uncommitted changes')"
