#!/usr/bin/env bash
# run_mpi.sh BUILD_DIR SRC_DIR HAVE_MPI [GROUP...] - data-parallel training under mpirun (issue 20).
#
# Groups (ctest runs each as its own test, mpi_<group>):
#   same     a Poisson MLP (f64, adam, 65 training rows, batch 16: the last batch has 1 row, so
#            some ranks get none) trained 4 epochs by 1 process, by `mpirun -np 2` and by
#            `mpirun -np 3` (3 divides no batch): every parameter within 1e-12 relative of the
#            one-process run, the CSV's train_loss and test metrics within 1e-10; the epoch lines
#            are printed once (rank 0 alone); the log has one header and 4 rows
#   resume   2 epochs under -np 2 (--until 2 --save), then --load under -np 3 up to 4 epochs:
#            within 1e-12 of the one-process 4 epochs (a checkpoint resumes on another count)
#   errors   dopri5 under -np 2: exit 1 naming the spec's line and dopri5, nothing trained;
#            Parareal with a tol: the same (without the tol it trains); MPICH's variables
#            for 2 processes with this OpenMPI build: refused (MPI sees 1); sgd lr 1e30 under -np 3
#            stops at the step one process stops at, with its message and its last good parameters
#   basis    tests/specs/rb_exact.dino (bases from the data, exact reduced training) under -np 3:
#            within 1e-12 of one process
#   nompi    (a build without MPI) under OpenMPI's variables for 2 processes: exit 1, "built without
#            MPI", nothing saved; for 1 process it trains
#   nccl     the CUDA backend (the stand-in driver, tests/fake_cuda) under -np 2 with a libnccl
#            that cannot be loaded (batch 13: 5 full batches): exit 1, the message says NCCL is needed
#            and why (no rank hangs); batch 16 (a last batch of 1 row): refused, a rank would have no rows;
#            with the stand-in libnccl (fake_nccl.c, over MPI) at batch 12 under -np 2 and 3: the
#            all-reduce captured in each step's CUDA graph (the note says so, the stand-in counts one
#            captured call per rank run at every full step), parameters within 1e-12 of one
#            process; an NCCL 2.8.3 (no capture): the sum outside the graphs, the same parameters;
#            streamed batches (DINO_CUDA_STREAM=1) with NCCL in the graph: the same parameters
#   stop     SIGTERM sent to rank 1 alone during a -np 2 training: both ranks stop (collective
#            stop), exit 3, and the checkpoint rank 0 wrote loads and resumes
#
# Every run: OMP_NUM_THREADS=1, --oversubscribe (CI has 2 cores), --allow-run-as-root (CI runs
# as root), a 120 s limit. Exit 77 (skipped) when mpirun is missing, when dino was built without
# MPI, or python3 is missing.
set -u
BUILD=$(cd "$1" && pwd) || exit 2
SRC=$(cd "$2" && pwd) || exit 2
HAVE_MPI=$3
shift 3
GROUPS_LIST=("$@")
[ ${#GROUPS_LIST[@]} -eq 0 ] && GROUPS_LIST=(same resume errors stop nccl basis)

if [ "${GROUPS_LIST[*]}" = nompi ]; then   # the one group for a build without MPI
    [ "$HAVE_MPI" = ON ] && { echo "SKIP: this build has MPI (group nompi checks a build without it)"; exit 77; }
else
    if [ "$HAVE_MPI" != ON ]; then echo "SKIP: dino was built without MPI (install libopenmpi-dev: scripts/deps.sh)"; exit 77; fi
    if ! command -v mpirun >/dev/null 2>&1; then echo "SKIP: mpirun is missing (install openmpi-bin: scripts/deps.sh)"; exit 77; fi
fi
if ! command -v python3 >/dev/null 2>&1; then echo "SKIP: python3 is needed to compare checkpoints"; exit 77; fi

JIT="$BUILD/dino-jit"
T=$(mktemp -d "${TMPDIR:-/tmp}/dino_mpi.XXXXXX") || exit 2
[ -n "${DINO_KEEP:-}" ] || trap 'rm -rf "$T"' EXIT
export OMP_NUM_THREADS=1
export DINO_CACHE_DIR="$BUILD/cache/mpi"
# OpenMPI as root in a container: no ssh agent, no shared memory checks that fail there
export OMPI_MCA_plm=isolated OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_rmaps_base_oversubscribe=1
# Under mpirun, LeakSanitizer (the sanitizer build of scripts/test.sh) is off: OpenMPI's plugins
# leak at MPI_Finalize and are unloaded, so their stacks name no module a suppression could match
# (measured on a 5-line MPI program: ~120 KB in 3300 allocations). One-process runs keep it.
MPIRUN=(timeout 120 env "ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" mpirun --oversubscribe --allow-run-as-root)

PASS=0
FAIL=0
ok() { PASS=$((PASS + 1)); echo "ok   $*"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL $*"; }

# run NAME NP ARGS...: dino-jit ARGS under mpirun -np NP (NP 0: no mpirun); RC its status
run() {
    local name=$1 np=$2
    shift 2
    if [ "$np" = 0 ]; then
        timeout 120 "$JIT" "$@" >"$T/$name.out" 2>"$T/$name.err"
    else
        "${MPIRUN[@]}" -np "$np" "$JIT" "$@" >"$T/$name.out" 2>"$T/$name.err"
    fi
    RC=$?
}
expect_rc() {
    if [ "$RC" -eq "$2" ]; then ok "$1: exit status $RC"; else
        bad "$1: exit status $RC, expected $2; stderr:"
        sed 's/^/       /' "$T/$1.err" | tail -n 15
    fi
}
stderr_has() {
    local name=$1 missing=""
    shift
    for s in "$@"; do grep -qF -- "$s" "$T/$name.err" || missing="$missing '$s'"; done
    if [ -z "$missing" ]; then ok "$name: message mentions$(printf " '%s'" "$@")"; else
        bad "$name: message lacks$missing; stderr:"
        sed 's/^/       /' "$T/$name.err" | tail -n 15
    fi
}
close() {   # close DESC A B RTOL
    local out
    if out=$(python3 "$SRC/tests/mpi/st_close.py" "$2" "$3" "$4" 2>&1); then ok "$1: $out"; else bad "$1: $out"; fi
}
# csv_close DESC A B RTOL: every numeric column but seconds (3) agrees to RTOL relative
csv_close() {
    if python3 - "$2" "$3" "$4" <<'PY'
import sys
a = [l.rstrip("\n").split(",") for l in open(sys.argv[1])]
b = [l.rstrip("\n").split(",") for l in open(sys.argv[2])]
tol = float(sys.argv[3])
if len(a) != len(b) or a[0] != b[0]:
    sys.exit(1)
for ra, rb in zip(a[1:], b[1:]):
    for i, (x, y) in enumerate(zip(ra, rb)):
        if i == 2 or x == y:
            continue
        if abs(float(x) - float(y)) > tol * max(abs(float(y)), 1e-300):
            print(ra[0], a[0][i], x, y)
            sys.exit(1)
PY
    then ok "$1"; else bad "$1"; fi
}

data() {
    [ -f "$T/d/J_data.npy" ] && return 0
    "$BUILD/dino-gen-poisson" --out "$T/d" --n 100 --kl 8 --sensors 2 --grid 9 -q || { bad "dino-gen-poisson failed"; return 1; }
    cat >"$T/p.dino" <<SPEC
model poisson_mpi {
    input  m[8]
    output q[4]
    q = mlp(m, 4, width = 16, depth = 2, act = tanh)
}
data {
    split train 65, test 35
}
loss {
    l2 q     weight 1.0 relative
    h1 dq/dm weight 0.5 relative
}
train {
    optimizer adam(lr = 3e-3)
    batch     16
    epochs    4
    seed      3
    precision f64
    eval every 2
}
SPEC
}

group_same() {
    data || return
    run one 0 "$T/p.dino" --data "$T/d" --save "$T/one.st" --log "$T/one.csv"
    expect_rc one 0
    for np in 2 3; do
        run np$np "$np" "$T/p.dino" --data "$T/d" --save "$T/np$np.st" --log "$T/np$np.csv"
        expect_rc np$np 0
        stderr_has np$np "dino-jit: $np processes (OpenMPI): each batch's rows split across them"
        close "-np $np: parameters after 4 epochs equal one process's to 1e-12" "$T/np$np.st" "$T/one.st" 1e-12
        csv_close "-np $np: the CSV (loss, metrics) equals one process's to 1e-10" "$T/np$np.csv" "$T/one.csv" 1e-10
        local lines
        lines=$(grep -c "^epoch 4/4" "$T/np$np.err")
        if [ "$lines" = 1 ]; then ok "-np $np: the last epoch's line printed once (rank 0)"; else bad "-np $np: 'epoch 4/4' printed $lines times"; fi
        lines=$(wc -l <"$T/np$np.csv")
        if [ "$lines" = 5 ]; then ok "-np $np: the log has a header and 4 rows"; else bad "-np $np: the log has $lines lines"; fi
    done
}

group_resume() {
    data || return
    [ -f "$T/one.st" ] || { run one 0 "$T/p.dino" --data "$T/d" --save "$T/one.st"; expect_rc one 0; }
    run half 2 "$T/p.dino" --data "$T/d" --until 2 --save "$T/half.st"
    expect_rc half 0
    run rest 3 "$T/p.dino" --data "$T/d" --load "$T/half.st" --save "$T/rest.st"
    expect_rc rest 0
    close "2 epochs on 2 ranks, resumed on 3 ranks: equal to one process's 4 epochs to 1e-12" "$T/rest.st" "$T/one.st" 1e-12
}

group_errors() {
    data || return
    cat >"$T/dopri5.dino" <<SPEC
model dopri5_mpi {
    input  m[8]
    output q[4]
    z0 = tanh(dense(m, 4))
    ode z = z0, t in [0, 1] {
        dz/dt = dense(tanh(dense(z, 6)), 4)
        solver dopri5 rtol 1e-4 atol 1e-6 steps 2 max_steps 8
    }
    q = dense(z, 4)
}
data {
    split train 65, test 35
}
loss {
    l2 q weight 1.0
}
train {
    optimizer adam(lr = 1e-3)
    batch 16
    epochs 2
}
SPEC
    run dopri5 2 "$T/dopri5.dino" --data "$T/d" --save "$T/dopri5.st"
    expect_rc dopri5 1
    stderr_has dopri5 "dopri5.dino:7:" "dopri5 chooses its steps per batch" "2 processes"
    if [ ! -e "$T/dopri5.st" ]; then ok "dopri5: nothing saved"; else bad "dopri5: a checkpoint was written"; fi
    # a launcher of another MPI (MPICH's variables) for this OpenMPI build: each process would be
    # a singleton; refused
    PMI_SIZE=2 PMI_RANK=0 run mismatch 0 "$T/p.dino" --data "$T/d" --epochs 1 --save "$T/mismatch.st"
    expect_rc mismatch 1
    stderr_has mismatch "MPICH started 2 processes but MPI sees 1"
    # a diverging run: every rank sees the same summed NaN loss and stops at the same step; rank 0
    # saves the last good parameters; the message equals one process's
    sed -e 's/adam(lr = 3e-3)/sgd(lr = 1e30)/' "$T/p.dino" >"$T/nan.dino"
    run nan_one 0 "$T/nan.dino" --data "$T/d" --save "$T/nan_one.st"
    run nan 3 "$T/nan.dino" --data "$T/d" --save "$T/nan.st"
    expect_rc nan 1
    local want
    want=$(grep -o "the loss is not finite.*stopping" "$T/nan_one.err")
    if [ -n "$want" ]; then stderr_has nan "$want"; else bad "nan: one process did not stop on a NaN"; fi
    close "nan: the last good parameters rank 0 saved equal one process's" "$T/nan.st" "$T/nan_one.st" 1e-12
    run dopri5_one 0 "$T/dopri5.dino" --data "$T/d" --epochs 1
    expect_rc dopri5_one 0
    sed -e 's/solver dopri5.*/solver rk4 steps 4\n        pint parareal {\n            slices 2\n            iterations 2\n            coarse euler steps 1\n            fine rk4 steps 2\n            tol 1e-3\n        }/' \
        "$T/dopri5.dino" >"$T/pint.dino"
    run pint 3 "$T/pint.dino" --data "$T/d"
    expect_rc pint 1
    stderr_has pint "pint.dino:8:" "Parareal with a tol decides its iterations per batch" "3 processes"
    sed -e 's/^ *tol 1e-3$//' "$T/pint.dino" >"$T/pint_fixed.dino"
    run pint_fixed 2 "$T/pint_fixed.dino" --data "$T/d" --epochs 1
    expect_rc pint_fixed 0
}

group_basis() {   # a basis spec (tests/specs/rb_exact.dino): bases computed on every rank, then the
                  # exact reduced-coordinate training (api/reduced.c) data-parallel
    "$BUILD/dino-gen-poisson" --out "$T/rb" --n 100 --kl 12 --sensors 2 --grid 9 -q || { bad "dino-gen-poisson failed"; return; }
    sed -e 's/output q\[5\]/output q[4]/' -e 's/^loss {/data {\n    split train 65, test 35\n}\nloss {/' \
        "$SRC/tests/specs/rb_exact.dino" >"$T/rb.dino"
    run rb_one 0 "$T/rb.dino" --data "$T/rb" --save "$T/rb_one.st"
    expect_rc rb_one 0
    run rb_np3 3 "$T/rb.dino" --data "$T/rb" --save "$T/rb_np3.st"
    expect_rc rb_np3 0
    stderr_has rb_np3 "reduced bases: exact training in reduced coordinates"
    close "basis: -np 3 in reduced coordinates equals one process to 1e-12" "$T/rb_np3.st" "$T/rb_one.st" 1e-12
}

group_nompi() {   # a build without MPI, under a launcher's variables: refused, not K copies of one training
    data || return
    OMPI_COMM_WORLD_SIZE=2 OMPI_COMM_WORLD_RANK=0 run nompi 0 "$T/p.dino" --data "$T/d" --save "$T/nompi.st"
    expect_rc nompi 1
    stderr_has nompi "OpenMPI started 2 processes, and this dino-jit was built without MPI"
    if [ ! -e "$T/nompi.st" ]; then ok "nompi: nothing saved"; else bad "nompi: a checkpoint was written"; fi
    OMPI_COMM_WORLD_SIZE=1 OMPI_COMM_WORLD_RANK=0 run nompi_one 0 "$T/p.dino" --data "$T/d" --epochs 1
    expect_rc nompi_one 0
}

group_stop() {
    data || return
    # many epochs, so that the signal arrives during training
    "${MPIRUN[@]}" -np 2 "$JIT" "$T/p.dino" --data "$T/d" --epochs 100000 --save "$T/stop.st" \
        >"$T/stop.out" 2>"$T/stop.err" &
    local pid=$! r1="" i
    for i in $(seq 1 200); do
        grep -q "^epoch 2/" "$T/stop.err" 2>/dev/null && break
        sleep 0.1
    done
    # rank 1: the dino-jit process whose environment says OMPI_COMM_WORLD_RANK=1
    # (from /proc, not pgrep: procps may be missing in CI)
    for d in /proc/[0-9]*; do
        tr '\0' ' ' 2>/dev/null <"$d/cmdline" | grep -qF -- "$T/p.dino" || continue
        if tr '\0' '\n' 2>/dev/null <"$d/environ" | grep -qx "OMPI_COMM_WORLD_RANK=1"; then r1=${d#/proc/}; break; fi
    done
    if [ -z "$r1" ]; then bad "stop: rank 1's process not found"; kill "$pid" 2>/dev/null; wait "$pid"; return; fi
    kill -TERM "$r1"
    wait "$pid"
    RC=$?
    expect_rc stop 3
    stderr_has stop "training stopped on request" "resume with the same command"
    run stop_resume 0 "$T/p.dino" --data "$T/d" --load "$T/stop.st" --epochs 1 --save "$T/stop2.st"
    expect_rc stop_resume 0
}

group_nccl() {
    data || return
    local fake="$BUILD/tests/libfake_cuda.so" nvrtc="$BUILD/tests/libfake_nvrtc.so"
    if [ ! -f "$fake" ] || [ ! -f "$nvrtc" ]; then bad "nccl: the stand-in CUDA driver is not built"; return; fi
    # the CUDA backend on the stand-in driver under 2 ranks: its gradient is on the device, so
    # NCCL is needed; a libnccl that cannot be loaded is reported by every rank, none left waiting
    DINO_CUDA_DRIVER=$fake DINO_NVRTC=$nvrtc DINO_NCCL_LIB=/nonexistent/libnccl.so.2 \
        run nccl 2 "$T/p.dino" --data "$T/d" --backend cuda --epochs 1 --batch 13
    expect_rc nccl 1
    stderr_has nccl "training on the GPU across 2 processes needs NCCL" "NCCL (/nonexistent/libnccl.so.2) could not be loaded"
    # batch 16 of 65 rows leaves 1 row in the last batch: a rank without rows has no device
    # gradient to zero, refused before any step
    DINO_CUDA_DRIVER=$fake DINO_NVRTC=$nvrtc run nccl_rows 2 "$T/p.dino" --data "$T/d" --backend cuda --epochs 1
    expect_rc nccl_rows 1
    stderr_has nccl_rows "needs at least 2 rows in every batch" "leaves 1 in the last"
    # NCCL inside the captured CUDA graph, with the stand-in libnccl over MPI (fake_nccl.c): batch
    # 12 of 65 rows (5 full batches and one of 5 rows) on 1 process and on 2 and 3 (uneven shares)
    local nccl="$BUILD/tests/libfake_nccl.so"
    if [ ! -f "$nccl" ]; then bad "nccl: the stand-in NCCL is not built"; return; fi
    local cuda=(env DINO_CUDA_DRIVER="$fake" DINO_NVRTC="$nvrtc" DINO_NCCL_LIB="$nccl")
    local args=("$T/p.dino" --data "$T/d" --backend cuda --batch 12)
    "${cuda[@]}" timeout 120 "$JIT" "${args[@]}" --save "$T/cuda1.st" >"$T/cuda1.out" 2>"$T/cuda1.err"
    RC=$?
    expect_rc cuda1 0
    for np in 2 3; do
        : >"$T/nccl$np.stats"
        "${cuda[@]}" FAKE_NCCL_STATS="$T/nccl$np.stats" "${MPIRUN[@]}" -np $np "$JIT" "${args[@]}" --save "$T/nccl$np.st" \
            >"$T/nccl$np.out" 2>"$T/nccl$np.err"
        RC=$?
        expect_rc nccl$np 0
        stderr_has nccl$np "the gradient's all-reduce (NCCL 2.23.4) runs inside each full batch's captured CUDA graph"
        close "NCCL in the graph, $np ranks: parameters as 1 process" "$T/nccl$np.st" "$T/cuda1.st" 1e-12
        # per rank: the sum captured once per batch buffer, run at every step (4 epochs x 6 steps);
        # enqueued outside a graph only for the last, partial batch of each epoch
        if [ "$(grep -c "calls 5 runs 24 captured 1" "$T/nccl$np.stats")" = $np ]; then
            ok "nccl$np: on every rank 1 captured all-reduce replayed in 20 steps, 4 partial batches outside"
        else bad "nccl$np: stand-in NCCL counts: $(cat "$T/nccl$np.stats")"; fi
    done
    # an NCCL older than 2.9 (no capture): the sum between the gradient and the update, every call run once
    : >"$T/old.stats"
    "${cuda[@]}" FAKE_NCCL_VERSION=20803 FAKE_NCCL_STATS="$T/old.stats" "${MPIRUN[@]}" -np 2 "$JIT" "${args[@]}" \
        --save "$T/old.st" >"$T/old.out" 2>"$T/old.err"
    RC=$?
    expect_rc old 0
    stderr_has old "the gradient's all-reduce (NCCL 2.8.3) runs between the gradient and the update, outside the CUDA graphs (NCCL older than 2.9 cannot be captured)"
    close "NCCL 2.8.3, 2 ranks: parameters as 1 process" "$T/old.st" "$T/cuda1.st" 1e-12
    if [ "$(grep -c "calls 24 runs 24 captured 0" "$T/old.stats")" = 2 ]; then ok "old: 24 all-reduces a rank, none captured"
    else bad "old: stand-in NCCL counts: $(cat "$T/old.stats")"; fi
    # streamed batches (issue 20) with NCCL in the graph, 2 ranks
    "${cuda[@]}" DINO_CUDA_STREAM=1 "${MPIRUN[@]}" -np 2 "$JIT" "${args[@]}" --save "$T/nstream.st" \
        >"$T/nstream.out" 2>"$T/nstream.err"
    RC=$?
    expect_rc nstream 0
    stderr_has nstream "streaming the training data from host memory" "runs inside each full batch's captured CUDA graph"
    close "streamed batches and NCCL in the graph, 2 ranks: parameters as 1 process" "$T/nstream.st" "$T/cuda1.st" 1e-12
}

for g in "${GROUPS_LIST[@]}"; do
    echo "== $g"
    "group_$g"
done
echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
