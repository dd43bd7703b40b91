#!/usr/bin/env bash
# bench/gpu/dryrun.sh - the whole GPU campaign here, without a GPU, so that every path, flag and
# file name of bench/gpu/run.sh is exercised before device time is spent on it: `run.sh call1`
# and `run.sh call2` on the stand-in driver (tests/fake_cuda: the kernels run on the CPU
# emulation, NVRTC is a stand-in) at tiny sizes (a 16 x 2 DINO network on 1400 rows, 2 epochs,
# 2000 MNIST images, an 8-step Parareal), the Python baselines on the CPU, with stand-in `nvidia-smi` and
# `compute-sanitizer` scripts on PATH (the sanitizer's stand-in runs the program unchecked).
# Then: a step whose kernel faults (FAKE_CUDA_FAIL_KERNEL=dino_adam) must be rerun with
# DINO_CUDA_DEBUG=1 and the kernel named in the summary; a 45-second budget must skip steps and
# still print the summary; a sanitizer that refuses the device must be recorded, not abort.
# Each check prints ok/FAIL; the last line is "dry run: ok" or "dry run: N failed".
#
# usage: bash bench/gpu/dryrun.sh     (after bench/gpu/prepare.sh; about 5-10 minutes on 2 cores)
#   PY_JAX, PY_TORCH: pythons with jax+equinox+optax+diffrax and torch+torchdiffeq (default
#   python3 for both; e.g. PY_JAX=/tmp/jv/bin/python PY_TORCH=/usr/bin/python3 here)
#   BUILD=build-gpu: the build that prepare.sh made (the stand-in driver is built there)
set -u
cd "$(dirname "$0")/../.."
B=${BUILD:-build-gpu}
[ -x gpu-carry/bin/dino-jit ] || { echo "dryrun.sh: no gpu-carry: run bench/gpu/prepare.sh first" >&2; exit 1; }
cmake --build "$B" -j 2 --target fake_cuda fake_nvrtc >/dev/null || exit 1
export DINO_CUDA_DRIVER=$PWD/$B/tests/libfake_cuda.so DINO_NVRTC=$PWD/$B/tests/libfake_nvrtc.so OMP_NUM_THREADS=1
T=$(mktemp -d "${TMPDIR:-/tmp}/gpu-dryrun.XXXXXX")
trap 'rm -rf "$T"' EXIT
mkdir -p "$T/bin"
# nvidia-smi: a name line for --query-gpu=name,...; a memory value (MiB) for memory.used, once
# or every -lms milliseconds; a banner otherwise
cat >"$T/bin/nvidia-smi" <<'EOF'
#!/usr/bin/env bash
case "$*" in
    *memory.used*-lms*) while :; do echo 1234; sleep 0.1; done ;;
    *memory.used*) echo 1000 ;;
    *query-gpu=name*) echo "Stand-in GPU (dry run), 81559 MiB, 000.00, 1980 MHz, Default" ;;
    *) echo "nvidia-smi stand-in (bench/gpu/dryrun.sh)" ;;
esac
EOF
# compute-sanitizer: --tool T --error-exitcode N PROGRAM ARGS: runs the program, prints the
# summary line; SANITIZER_REFUSE=1 answers as on gVisor
cat >"$T/bin/compute-sanitizer" <<'EOF'
#!/usr/bin/env bash
while [ $# -gt 0 ]; do case $1 in --tool | --error-exitcode) shift 2 ;; *) break ;; esac; done
if [ "${SANITIZER_REFUSE:-0}" = 1 ]; then echo "========= Error: Device not supported"; exit 1; fi
"$@"
rc=$?
echo "========= ERROR SUMMARY: 0 errors"
exit $rc
EOF
chmod +x "$T/bin/nvidia-smi" "$T/bin/compute-sanitizer"
# a small MNIST: the first 2000 training and 500 test images, as gzipped IDX files
python3 - gpu-carry/shared/data/mnist "$T/mnist" <<'EOF' || exit 1
import gzip, os, struct, sys
src, dst = sys.argv[1:]
os.makedirs(dst)
for name, n in (("train-images-idx3-ubyte.gz", 2000), ("train-labels-idx1-ubyte.gz", 2000),
                ("t10k-images-idx3-ubyte.gz", 500), ("t10k-labels-idx1-ubyte.gz", 500)):
    raw = gzip.open(f"{src}/{name}").read()
    ndim = raw[3]
    dims = list(struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim]))
    row = 1
    for d in dims[1:]: row *= d
    dims[0] = n
    head = raw[:4] + struct.pack(f">{ndim}I", *dims)
    gzip.open(f"{dst}/{name}", "wb").write(head + raw[4 + 4 * ndim: 4 + 4 * ndim + n * row])
EOF
# DINO: a 200 -> 16 x 2 -> 25 network (400 x 8 takes minutes per run on the emulation), 1400
# rows: one full batch of 1024 and 35 of 32; every step's time limit x5 (the emulation is slow)
export PATH=$T/bin:$PATH MNIST=$T/mnist ROWS=1400 DINO_NET="16 2" DINO_EPOCHS=2 MNIST_EPOCHS="1 1 1"
export BASELINES_ON_CPU=1 LIMIT_SCALE=5
export PINT_ARGS="--steps 8 --batches 1,8 --slices 4 --iters 1,N --reps 3 --min-ms 0"
export PY_JAX=${PY_JAX:-python3} PY_TORCH=${PY_TORCH:-python3} DINO_CACHE_DIR=$T/cache
# the emulation is far slower than a GPU: the calls get a budget to match (BUDGET_S is checked
# on its own below)
budget=${DRYRUN_BUDGET_S:-3000}

fails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }
# has FILE REGEX WHAT: the summary has a line matching REGEX
has() { if grep -Eq "$2" "$1"; then ok "$3"; else bad "$3: no line matching /$2/ in $1"; fi; }
outs() {   # outs DIR: at most 8 plain files, no folders (what a device call returns)
    local n
    n=$(find "$1" -mindepth 1 | wc -l)
    if [ "$n" -le 8 ] && [ -z "$(find "$1" -mindepth 1 ! -type f)" ]; then ok "$1: $n files ($(ls "$1" | tr '\n' ' '))"
    else bad "$1: $n entries (at most 8 plain files come back)"; fi
}
num='[0-9]+\.[0-9]+'

echo "== run.sh call1 (stand-in driver, tiny sizes)"
OUT=$T/out1 BUDGET_S=$budget bash bench/gpu/run.sh call1 >"$T/call1.log" 2>&1
rc=$?
tail -n 40 "$T/call1.log"
[ $rc -eq 0 ] && ok "call1: exit 0" || bad "call1: exit $rc"
s=$T/out1/summary.md
outs "$T/out1"
has "$s" '^test_gpu: [0-9]+ passed, 0 failed' "test_gpu passed"
has "$s" 'memcheck: ERROR SUMMARY: 0 errors.* racecheck: .* synccheck: ' "the sanitizer trio ran"
for spec in node_small node_mnist dino_poisson_f32; do
    has "$s" "^\| $spec \| $num s \| $num s \| $num s \| $num s \|" "start times of $spec"
done
for b in 32 1024; do for p in f32 f64; do
    has "$s" "^\| $b \| $p \| $num \| $num \| $num \| $num \| $num" "dino, dino without graphs, JAX, PyTorch at batch $b $p"
done; done
has "$s" "^\| DINO_CUDA_STREAM=1 \| $num \| [0-9.e+-]+ \|" "the streamed run"
has "$s" "^\| --set math=fast \| $num \| [0-9.e+-]+ \|" "the math=fast run"
has "$s" 'dino-jit: .*NVRTC: ' "NVRTC reported"
grep -q 'failed\*\*' "$s" && bad "call1: a step failed: $(grep 'failed\*\*' "$s")"
grep -q 'skipped' "$T/out1/steps.txt" && bad "call1: a step was skipped for the budget"

echo "== run.sh call2"
OUT=$T/out2 BUDGET_S=$budget bash bench/gpu/run.sh call2 >"$T/call2.log" 2>&1
rc=$?
tail -n 25 "$T/call2.log"
[ $rc -eq 0 ] && ok "call2: exit 0" || bad "call2: exit $rc"
s=$T/out2/summary.md
outs "$T/out2"
for run in shared wide unshared; do
    has "$s" "^\| dino $run .* \| 1 \| $num \| $num \| $num %" "MNIST dino $run: time and accuracy"
done
has "$s" "^\| torchdiffeq \(width 64\) \| 1 \| $num \| $num \| $num %" "MNIST torchdiffeq"
has "$s" "^\| diffrax \(width 64\) \| 1 \| $num \| $num \| $num %" "MNIST diffrax"
has "$s" "^\| 8 \| 8 \| 4 \| 1 \| $num \| $num \| ${num}x \|" "Parareal at batch 8, K = 1"
has "$s" "^\| 8 \| 8 \| 4 \| 4 \(= N\) \| .* \| 0\.0e\+00 \|" "Parareal K = N equals the serial solve"
grep -q 'failed\*\*' "$s" && bad "call2: a step failed: $(grep 'failed\*\*' "$s")"

echo "== a faulting kernel: rerun with DINO_CUDA_DEBUG=1, named in the summary"
OUT=$T/out3 FAKE_CUDA_FAIL_KERNEL=dino_adam bash bench/gpu/run.sh fast >"$T/fault.log" 2>&1
s=$T/out3/summary.md
has "$s" 'fast failed\*\* \(exit [1-9]' "the failing step is reported"
has "$s" 'kernel dino_adam.*grid' "the debug rerun names the kernel and its geometry"
has "$s" '^\| --set math=fast \| - \|' "the failed run's row has no numbers"

echo "== a sanitizer that refuses the device (as on gVisor), and a budget too small for everything"
OUT=$T/out4 SANITIZER_REFUSE=1 BUDGET_S=45 bash bench/gpu/run.sh sanitize dino >"$T/budget.log" 2>&1
rc=$?
s=$T/out4/summary.md
has "$s" 'memcheck: refused the device .*skipped the rest' "a refusing sanitizer is recorded, the other tools skipped"
has "$T/out4/steps.txt" 'skipped' "steps beyond the budget are skipped"
has "$T/budget.log" '=== summary ===' "the summary is printed after all"
[ $rc -eq 0 ] && ok "exit 0 with skipped steps" || bad "exit $rc with skipped steps"

echo
[ $fails -eq 0 ] && echo "dry run: ok" || echo "dry run: $fails failed (logs: rerun with TMPDIR set and look in it)"
[ $fails -eq 0 ]
