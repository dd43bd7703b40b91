#!/usr/bin/env bash
# bench/gpu/prepare.sh - builds here (no GPU needed) what bench/gpu/run.sh runs on a lent GPU
# machine, into the git-ignored folder gpu-carry/, and checks that it will load there.
#
# DEVICE SESSION CHECKLIST (15 minutes of device time, one H100, each call <= 10 minutes; the
# device gets the checkout the session was STARTED in, so run this there, on the commit to
# measure, with ../shared beside it; first ask the device tool's `status` (free): with
# can_start_another false this task has no GPU, and nothing below applies):
#   1. here:   bash bench/gpu/prepare.sh            (about 3 minutes on 2 cores; last line: sizes)
#              optional, 5-10 minutes: bash bench/gpu/dryrun.sh (the whole campaign on the
#              stand-in driver, tiny sizes; it must end with "dry run: ok")
#   2. device: run(command="bash bench/gpu/run.sh call1", carry=["gpu-carry"], timeout_s=600)
#              (about 6 minutes, never more than its 8-minute budget: the GPU tests, the
#              compute-sanitizer trio, cold/cached start, DINO vs JAX vs PyTorch at batch 32 and
#              1024 in f32 and f64, one streamed and one math=fast run)
#   3. device, AT ONCE (the machine stays warm 30 s; a fresh one costs 1-2 minutes):
#              run(command="bash bench/gpu/run.sh call2", carry=["gpu-carry"], timeout_s=420)
#              (about 3-4 minutes, budget 5: Parareal against the serial solve at batch 1, 8,
#              64, then the MNIST neural ODE against torchdiffeq and diffrax), then give_back().
#              If call 1's reply says less than 7 minutes of device time are left (the reply's
#              lease.budget_left_s), shrink call 2 to fit: command="BUDGET_S=<left - 120>
#              bash bench/gpu/run.sh call2" (its steps run in order, pint first, and the
#              ones that no longer fit are skipped, with the summary printed all the same)
#   4. here:   copy the two summaries (the end of each reply; also $OUT/summary.md, with every
#              log in $OUT/logs.txt) into bench/RESULTS.md with the device, the date and the
#              commit (gpu-carry/BUILD_INFO), and act on what failed (each failure was rerun with
#              DINO_CUDA_DEBUG=1: the kernel that faulted is named in the summary)
#   A step that does not fit in its call's budget is skipped and says so; run it alone later,
#   e.g. run(command="bash bench/gpu/run.sh mnist", ...). `bash bench/gpu/run.sh ckpt` (1-2
#   minutes) is the checkpointing measurement, if time is left.
#
# What gpu-carry/ holds (under the 64 MiB a call may carry, with the repository):
#   bin/           dino-jit, dinoc (and libdino.so.MAJOR), dino-gen-poisson, test_gpu, pint_gpu:
#                  a Release build without MPI, linked with DT_RPATH $ORIGIN so that every
#                  library is looked up beside them first
#   lib.tar.gz     the shared libraries they need beyond glibc, zlib and libgcc_s (which any
#                  Linux with Python has): OpenBLAS, LAPACK(E), gfortran, quadmath, as resolved
#                  here; run.sh unpacks them into bin/ on the device (gzip: 50 MB -> 16 MB)
#   shared/        ../shared's specs, reference values and MNIST files (only the repository
#                  travels, not ../shared beside it)
#   BUILD_INFO     commit, build date, the newest glibc symbol version any carried file needs
#                  (run.sh compares it with the device's glibc first: the device image is
#                  Ubuntu 24.04, glibc 2.39; this machine's Debian 12 has 2.36)
# The check at the end runs every carried binary in a bare root (unshare + chroot) that holds
# only the loader, glibc, zlib and libgcc_s, to prove that nothing else is needed; it is skipped
# (saying so) where unshare is not allowed.
#
# Issue 19 (GPU readiness), what the CPU side guarantees and what only a GPU can show:
#   - every spec's kernels fit the launch limits by ptxas's own report (cuda_nvrtc_specs), so a
#     start-up failure on the device is something else: run.sh reruns a failing step with
#     DINO_CUDA_DEBUG=1 (synchronises after every launch, no graphs), whose error names the
#     kernel, its stage comment and its grid/block/shared memory/rows;
#   - the driver is loaded once per process and the context kept; tile-kernel grids come from
#     cuOccupancyMaxActiveBlocksPerMultiprocessor;
#   - compute-sanitizer refused the device on gVisor machines ("Device not supported"): run.sh
#     records that and goes on.
set -euo pipefail
cd "$(dirname "$0")/../.."
shared=${SHARED:-../shared}
B=${BUILD:-build-gpu}
[ -d "$shared/specs" ] && [ -d "$shared/reference" ] ||
    { echo "prepare.sh: no $shared/specs or $shared/reference (set SHARED=the shared folder)" >&2; exit 1; }
# -DDINO_MPI=OFF: no libmpi and its dozen libraries to carry (one process on one GPU)
cmake -S . -B "$B" -DCMAKE_BUILD_TYPE=Release -DDINO_MPI=OFF '-DCMAKE_BUILD_RPATH=$ORIGIN' \
    -DCMAKE_EXE_LINKER_FLAGS=-Wl,--disable-new-dtags -DCMAKE_SHARED_LINKER_FLAGS=-Wl,--disable-new-dtags >/dev/null
cmake --build "$B" -j "$(nproc)" --target dino-jit dinoc dino-gen-poisson test_gpu pint_gpu >/dev/null
rm -rf gpu-carry
mkdir -p gpu-carry/bin gpu-carry/shared/data
cp "$B/dino-jit" "$B/dinoc" "$B/dino-gen-poisson" "$B/tests/test_gpu" "$B/tests/pint_gpu" gpu-carry/bin/
cp -L "$B/libdino.so" gpu-carry/bin/"$(objdump -p "$B/libdino.so" | awk '$1 == "SONAME" { print $2 }')"
cp -r "$shared/specs" "$shared/reference" gpu-carry/shared/
if [ -d "$shared/data/mnist" ]; then cp -r "$shared/data/mnist" gpu-carry/shared/data/
else echo "prepare.sh: warning: no $shared/data/mnist: run.sh's mnist step will fail" >&2; fi

# The libraries to carry: what the loader resolves here, but glibc's, zlib and libgcc_s.
base='^(linux-vdso|ld-linux-x86-64|libc|libm|libdl|libpthread|librt|libresolv|libz|libgcc_s)\.so'
libs=$(mktemp -d)
trap 'rm -rf "$libs"' EXIT
missing=$(for f in gpu-carry/bin/*; do ldd "$f"; done | grep 'not found' || true)
[ -z "$missing" ] || { echo "prepare.sh: libraries not found here: $missing" >&2; exit 1; }
for f in gpu-carry/bin/*; do ldd "$f"; done | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }' | sort -u |
    while read -r name path; do
        [[ $name =~ $base ]] || [ -e "gpu-carry/bin/$name" ] || cp -L "$path" "$libs/$name"
    done
tar czf gpu-carry/lib.tar.gz -C "$libs" .

# The newest glibc symbol version that any carried file needs
need=$( (for f in gpu-carry/bin/* "$libs"/*; do objdump -T "$f"; done) | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' |
    sort -V | tail -n 1)
commit=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!gpu-carry' 2>/dev/null || echo '+uncommitted')
{
    echo "commit=$commit"
    echo "built=$(date -u +%Y-%m-%dT%H:%MZ) on $(. /etc/os-release && echo "$PRETTY_NAME"), glibc $(getconf GNU_LIBC_VERSION | cut -d' ' -f2)"
    echo "glibc_needed=$need"
    echo "carried_libraries=$(ls "$libs" | tr '\n' ' ')"
} >gpu-carry/BUILD_INFO

# The check: every binary in a root that holds only the loader, glibc, zlib and libgcc_s.
if unshare -rm true 2>/dev/null && command -v chroot >/dev/null; then
    root=$(mktemp -d)
    trap 'rm -rf "$libs" "$root"' EXIT
    mkdir -p "$root/lib64" "$root/lib/x86_64-linux-gnu" "$root/carry" "$root/tmp" "$root/proc"
    for n in ld-linux-x86-64.so.2 libc.so.6 libm.so.6 libdl.so.2 libpthread.so.0 librt.so.1 libz.so.1 libgcc_s.so.1; do
        cp -L "/lib/x86_64-linux-gnu/$n" "$root/lib/x86_64-linux-gnu/"
    done
    cp -L /lib64/ld-linux-x86-64.so.2 "$root/lib64/"
    cp -r gpu-carry/bin "$root/carry/"
    tar xzf gpu-carry/lib.tar.gz -C "$root/carry/bin"
    bad=0
    check() {   # check WANT_RC COMMAND...: runs in the bare root, expects that exit status
        local want=$1
        shift
        local out rc
        # /proc as on any machine: the loader finds $ORIGIN through /proc/self/exe
        out=$(cd / && env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin unshare -rm sh -c \
            'mount --rbind /proc "$0/proc" && exec chroot "$0" "$@"' "$root" "$@" 2>&1) && rc=0 || rc=$?
        if [ "$rc" != "$want" ] || printf '%s' "$out" | grep -q 'error while loading shared libraries'; then
            echo "prepare.sh: FAILED in a bare root: $* (exit $rc, expected $want): $(printf '%s' "$out" | head -n 3)" >&2
            bad=1
        fi
    }
    check 0 /carry/bin/dino-jit --version
    check 0 /carry/bin/dinoc --version
    check 77 /carry/bin/test_gpu /tmp /tmp    # "SKIP: no usable GPU": it loaded
    check 2 /carry/bin/pint_gpu --help        # a bad option: it loaded
    check 0 /carry/bin/dino-gen-poisson --out /tmp/p --n 4 --kl 2 --sensors 2 --grid 5 -q
    [ $bad -eq 0 ] || exit 1
    echo "bare-root check: every carried binary loads with only the loader, glibc, zlib and libgcc_s"
else
    echo "bare-root check skipped: unshare or chroot is not allowed here"
fi
grep -qx '/gpu-carry/' .gitignore 2>/dev/null ||
    echo "prepare.sh: warning: /gpu-carry/ is not in .gitignore: it would travel as an ordinary file" >&2
tree=$(git ls-files -z -co --exclude-standard | du -cb --files0-from=- 2>/dev/null | tail -n 1 | cut -f1)
carry=$(du -sb gpu-carry | cut -f1)
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
echo "gpu-carry: $(mib "$carry") ($(ls "$libs" | wc -l) libraries packed, glibc >= $need needed); with the working tree" \
    "($(mib "$tree")) $(mib $((carry + tree))) travel (at most 64 MiB); commit $commit"
[ $((carry + tree)) -lt $((62 * 1048576)) ] || { echo "prepare.sh: too large to travel" >&2; exit 1; }
