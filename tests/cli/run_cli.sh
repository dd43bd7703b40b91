#!/usr/bin/env bash
# run_cli.sh BUILD_DIR SRC_DIR [GROUP...] - end-to-end tests of the dino-jit command line.
#
# Groups (all of them when none is named; ctest runs each as its own test, cli_<group>):
#   train    training reduces the test error: from the --log CSV, the last evaluation's
#            rel_l2 < 0.03 and rel_h1 < 0.15 (measured 0.011-0.016 and 0.096-0.108 over
#            seeds 0-3 and data seeds 1-3), both below the first evaluation's (epoch 10), and
#            the training loss fell at least 20-fold (measured ~250-fold)
#   resume   6 epochs in one run == 3 epochs, --save, --load, 3 more: every parameter tensor
#            byte for byte, and the CSV rows of epochs 4-6 (all columns but seconds)
#   predict  --epochs 0 --load --predict --out writes q.npy [N, 9] and J.npy [N, 9, 16]; in
#            f64, J at one row agrees with central differences of q (h = 1e-5, rel. 1e-6)
#   nan      a diverging run (sgd lr 1e30; and a step schedule that multiplies the lr by
#            1e32 halfway) exits 1 naming the epoch and step, and --save keeps the last good
#            parameters: finite, and equal to a run stopped just before the bad epoch
#   errors   user errors exit 1 (not 2, not a signal) with a message that names the problem;
#            --set values by the checker's rules (decay on adam suggests adamw, momentum is sgd's)
#   layout   training on the Jacobian stored [N, in, out] with layout = in_out gives the same
#            CSV (losses and metrics) as the original [N, out, in] file with the default layout
#   pint     a spec with a Parareal block reports each iteration's correction: the epoch
#            line says "parareal z: ...", the CSV has parareal_z_1 and parareal_z_2, both
#            positive in every epoch and the second smaller than the first; a dopri5 block
#            reports its accepted steps (CSV dopri5_z_steps), warns when max_steps ran out
#            before t1, and more max_steps than the generator unrolls is an error of the checker
#   checkpoint  an ODE spec trained with `checkpoint N` (rk4 12 steps; N = 3 and 5, the last
#            segment shorter) gives the same parameters, byte for byte, and the same CSV (all
#            columns but seconds) as without, in both Jacobian modes, with a training workspace
#            at most half as large; its predictions are byte-identical; a checkpoint line the
#            solver can't use is an error naming the line
#   basis    a spec with a basis section (active_subspace of dq/dm, centred pod of q): the report
#            names each basis with its eigenvalues and floors; it trains in reduced coordinates,
#            with the same CSV as the full-space graph (DINO_REDUCED=0) and resumes byte for byte
#            from a checkpoint (bases used as saved); the checkpoint holds
#            __basis.<name>.decoder/encoder/shift/eigenvalues; changing the test rows leaves them
#            byte-identical, changing a training row does not; a checkpoint stripped of them
#            (as PyTorch would write it) with --epochs 0 --predict gets them computed again and
#            predicts the same bytes; --predict without data for the bases is an error
#   cache    8 dino-jit processes started at once on one spec with an empty module cache all
#            succeed, 5 rounds; a truncated module, one with flipped bytes and another spec's in
#            its place are each rebuilt with a note, exit 0, the same predictions; an edit of a
#            comment, lr, epochs or a data file name hits the cache; another CPU does not
#   select   model selection with ../shared/specs/planned/dino_select.dino (valid split, early_stop
#            patience 10, keep best) on 2000 generated rows: early stopping fires 10 evaluations
#            after the best epoch; the CSV has valid_loss, valid_rel_l2, valid_rel_h1, train_l2
#            and train_h1, and the best epoch has the lowest valid_loss; the checkpoint records
#            best_epoch; --eval of it prints the test metrics that training reported for the best
#            epoch (and the CSV row of that epoch has), training nothing; a --load of it resumes
#            at the best epoch and stops at the same epoch again; `valid x = ...` files holding
#            the valid split's rows give the same CSV as the split; `save every 4` writes the
#            checkpoint after epochs 4, 8 and the last, not at the evaluations; --set patience,
#            save_every and keep_best; early stopping without a validation set and --eval without
#            --load are errors; a classifier (labels from the data) reports accuracy and the
#            cross-entropy on the validation rows, in the CSV (valid_accuracy, train_cross_entropy)
#            and from --eval
#   paths overwrite signal unreached zerorows help cachecmd
#            safe runs (issue 15): tests/cli/groups_safe.sh says what each checks
#
# Each group prints one line per assertion (ok / FAIL) and ends with "N passed, N failed";
# the exit status is 1 when anything failed, 77 (skipped) when python3 is missing.
#
# Each group uses its own module cache, BUILD_DIR/cache/cli_<group>: dino-jit processes that
# compile the same module into one cache folder at the same moment can load an empty module
# (the bug group_cache shows), and ctest -j runs the groups at the same time. The specs are
# written to a fixed folder, BUILD_DIR/tests/cli_specs/<group>, because the generated C names
# the spec's path (so a new temporary path each run would compile anew and grow the cache);
# everything else goes to a temporary folder that is removed at the end.
set -u

# the groups of issue 15 (safe runs) live in groups_safe.sh
SAFE_GROUPS="paths overwrite signal unreached zerorows help cachecmd"
SAFE_GROUPS_BAR=${SAFE_GROUPS// /|}
if [ $# -lt 2 ]; then
    echo "usage: run_cli.sh BUILD_DIR SRC_DIR [train|resume|predict|nan|errors|layout|pint|checkpoint|cache|select|basis|trajectory|$SAFE_GROUPS_BAR]..." >&2
    exit 2
fi
BUILD=$(cd "$1" && pwd) || exit 2
SRC=$(cd "$2" && pwd) || exit 2
shift 2
GROUP_LIST=("$@")
[ ${#GROUP_LIST[@]} -eq 0 ] && GROUP_LIST=(train resume predict nan errors layout pint checkpoint cache select basis trajectory $SAFE_GROUPS)

if ! command -v python3 >/dev/null 2>&1; then
    echo "SKIP: python3 is needed for the .npy and safetensors helpers"
    exit 77
fi

JIT="$BUILD/dino-jit"
GEN="$BUILD/dino-gen-poisson"
TOOL=(python3 "$SRC/tests/cli/npytool.py")
T=$(mktemp -d "${TMPDIR:-/tmp}/dino_cli.XXXXXX") || exit 2
trap 'rm -rf "$T"' EXIT

PASS=0
FAIL=0
ok() { PASS=$((PASS + 1)); echo "ok   $*"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL $*"; }

# check DESCRIPTION COMMAND...: passes when the command succeeds
check() {
    local desc=$1
    shift
    if "$@"; then ok "$desc"; else bad "$desc"; fi
}

# tool_check DESCRIPTION ARGS...: npytool.py ARGS succeeds; its report goes on the line
tool_check() {
    local desc=$1 out rc
    shift
    out=$("${TOOL[@]}" "$@" 2>&1)
    rc=$?
    if [ $rc -eq 0 ]; then
        ok "$desc: $(printf '%s' "$out" | tail -n 1)"
    else
        bad "$desc:"
        printf '%s\n' "$out" | sed 's/^/       /'
    fi
}

# run NAME ARGS...: dino-jit ARGS with stdout/stderr in $T/NAME.out/.err; exit status in RC
run() {
    local name=$1
    shift
    "$JIT" "$@" >"$T/$name.out" 2>"$T/$name.err"
    RC=$?
}

# expect_rc NAME WANT: the last run's exit status; shows its stderr when wrong
expect_rc() {
    if [ "$RC" -eq "$2" ]; then
        ok "$1: exit status $RC"
    else
        bad "$1: exit status $RC, expected $2; stderr:"
        sed 's/^/       /' "$T/$1.err" | tail -n 15
    fi
}

# stderr_has NAME TEXT...: the last run's stderr contains every TEXT (fixed strings)
stderr_has() {
    local name=$1 missing=""
    shift
    for s in "$@"; do grep -qF -- "$s" "$T/$name.err" || missing="$missing '$s'"; done
    if [ -z "$missing" ]; then
        ok "$name: message mentions$(printf " '%s'" "$@")"
    else
        bad "$name: message lacks$missing; stderr:"
        sed 's/^/       /' "$T/$name.err" | tail -n 15
    fi
}

# csv VALUE FILE EPOCH COLUMN: one field of the --log CSV (empty when absent)
csv() {
    awk -F, -v e="$2" -v c="$3" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == c) col = i; next }
                                 $1 == e && col { print $col }' "$1"
}

# lt A B: A < B as numbers (both must be present)
lt() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 < b + 0) }'; }

# The CSV without the seconds column, for comparisons between runs.
strip_seconds() { awk -F, -v OFS=, -v e0="${2:-0}" 'NR == 1 || $1 + 0 >= e0 { $3 = ""; print }' "$1"; }

data() {   # the Poisson data, once per invocation: m[16] -> q[9], J [N, 9, 16]
    [ -f "$T/d/J_data.npy" ] && return 0
    "$GEN" --out "$T/d" --n 400 --kl 16 --sensors 3 --grid 15 -q || { bad "dino-gen-poisson failed"; return 1; }
}

# spec FILE [optimizer line] [epochs] [extra train lines] [data lines]
spec() {
    cat >"$1" <<EOF
model poisson_small {
    input  m[16]
    output q[9]
    q = mlp(m, 9, width = 64, depth = 2, act = gelu)
}
data {
${5:-}
    split train 320, test 80
}
loss {
    l2 q     weight 1.0 relative
    h1 dq/dm weight 1.0 relative
}
train {
    optimizer ${2:-adam(lr = 3e-3)}
${4:-}
    batch     32
    epochs    ${3:-30}
    seed      0
    eval every 10
}
EOF
}

# ---------------------------------------------------------------------------- groups

# The CSV header: epoch,step,seconds,lr,train_loss,<metric columns> with rel_l2 and rel_h1 among them.
header_ok() { [[ "$1" == epoch,step,seconds,lr,train_loss,* && ",$1," == *,rel_l2,* && ",$1," == *,rel_h1,* ]]; }

group_train() {
    data || return
    spec "$SP/train.dino"
    run train "$SP/train.dino" --data "$T/d" --log "$T/train.csv" -q
    expect_rc train 0
    local header rows l2a h1a l2z h1z la lz
    header=$(head -n 1 "$T/train.csv")
    check "CSV header '$header' is epoch,step,seconds,lr,train_loss,<metrics> with rel_l2, rel_h1" \
        header_ok "$header"
    rows=$(tail -n +2 "$T/train.csv" | wc -l)
    check "CSV has one row per epoch ($rows of 30)" [ "$rows" -eq 30 ]
    l2a=$(csv "$T/train.csv" 10 rel_l2) h1a=$(csv "$T/train.csv" 10 rel_h1)
    l2z=$(csv "$T/train.csv" 30 rel_l2) h1z=$(csv "$T/train.csv" 30 rel_h1)
    la=$(csv "$T/train.csv" 1 train_loss) lz=$(csv "$T/train.csv" 30 train_loss)
    echo "     epoch 10: rel_l2 $l2a, rel_h1 $h1a; epoch 30: rel_l2 $l2z, rel_h1 $h1z; train_loss $la -> $lz"
    check "final rel_l2 $l2z < 0.03" lt "$l2z" 0.03
    check "final rel_h1 $h1z < 0.15" lt "$h1z" 0.15
    check "rel_l2 dropped from the first evaluation ($l2a -> $l2z)" lt "$l2z" "$l2a"
    check "rel_h1 dropped from the first evaluation ($h1a -> $h1z)" lt "$h1z" "$h1a"
    check "train_loss fell at least 20-fold ($la -> $lz)" lt "$(awk -v a="$lz" 'BEGIN { print a * 20 }')" "$la"
}

group_resume() {
    data || return
    spec "$SP/r.dino"
    run resume_a "$SP/r.dino" --data "$T/d" --epochs 6 --save "$T/a.safetensors" --log "$T/a.csv" -q
    expect_rc resume_a 0
    run resume_b "$SP/r.dino" --data "$T/d" --epochs 3 --save "$T/b.safetensors" --log "$T/b.csv" -q
    expect_rc resume_b 0
    run resume_b2 "$SP/r.dino" --data "$T/d" --load "$T/b.safetensors" --epochs 6 --save "$T/b2.safetensors" \
        --log "$T/b2.csv" -q
    expect_rc resume_b2 0
    tool_check "parameters after 6 epochs == after 3 + --load + 3, byte for byte" \
        st_compare "$T/a.safetensors" "$T/b2.safetensors"
    strip_seconds "$T/a.csv" 4 >"$T/a46.csv"
    strip_seconds "$T/b2.csv" 4 >"$T/b46.csv"
    if [ "$(wc -l <"$T/a46.csv")" -eq 4 ] && cmp -s "$T/a46.csv" "$T/b46.csv"; then
        ok "CSV epochs 4-6 identical (train_loss $(csv "$T/a.csv" 4 train_loss) $(csv "$T/a.csv" 5 train_loss) $(csv "$T/a.csv" 6 train_loss))"
    else
        bad "CSV epochs 4-6 differ (seconds column blanked):"
        diff "$T/a46.csv" "$T/b46.csv" | sed 's/^/       /'
    fi
}

group_predict() {
    data || return
    spec "$SP/p.dino"
    run predict_train "$SP/p.dino" --data "$T/d" --epochs 6 --save "$T/p.safetensors" -q
    expect_rc predict_train 0
    run predict "$SP/p.dino" --epochs 0 --load "$T/p.safetensors" --predict "$T/d/m_data.npy" --out "$T/pred"
    expect_rc predict 0
    local s
    s=$("${TOOL[@]}" shape "$T/pred/q.npy" 2>&1)
    check "pred/q.npy is [N, 9] float32: $s" [ "$s" = "<f4 400,9" ]
    s=$("${TOOL[@]}" shape "$T/pred/J.npy" 2>&1)
    check "pred/J.npy is [N, 9, 16] float32: $s" [ "$s" = "<f4 400,9,16" ]
    # J against central differences of q at row 7, in f64 (the checkpoint is f32; --precision
    # f64 computes with its values in double)
    "${TOOL[@]}" fd_rows "$T/d/m_data.npy" "$T/fd_in.npy" 7 1e-5
    run predict_fd "$SP/p.dino" --epochs 0 --load "$T/p.safetensors" --precision f64 --predict "$T/fd_in.npy" \
        --out "$T/pred64"
    expect_rc predict_fd 0
    s=$("${TOOL[@]}" shape "$T/pred64/J.npy" 2>&1)
    check "f64 prediction on 33 rows gives J [33, 9, 16] float64: $s" [ "$s" = "<f8 33,9,16" ]
    tool_check "predicted J matches finite differences of predicted q" \
        fd_check "$T/pred64/q.npy" "$T/pred64/J.npy" 1e-5 1e-6
}

group_basis() {
    data || return
    mkdir -p "$SP"
    cat >"$SP/rb.dino" <<'EOF2'
basis {
    Vm = active_subspace(dq/dm, rank = 6)
    Vq = pod(q, rank = 4)
}
model rb {
    input  m[16]
    output q[9]
    q = decode(mlp(encode(m, Vm), 4, width = 16, depth = 2), Vq)
}
data { split train 300, test 100 }
loss {
    l2 q     weight 1.0 relative
    h1 dq/dm weight 1.0 relative
}
train {
    optimizer adam(lr = 1e-3)
    batch 32
    epochs 2
}
EOF2
    run basis_train "$SP/rb.dino" --data "$T/d" --save "$T/rb1.safetensors"
    expect_rc basis_train 0
    stderr_has basis_train "basis Vm: active_subspace(dq/dm) rank 6 of 16" "basis Vq: pod(q) rank 4 of 9" \
        "% of the trace" "floor rel_h1" "floor rel_l2" "exact training in reduced coordinates" \
        "Jacobians [9 x 16] -> [6 x 6]"
    tool_check "the checkpoint holds the bases" st_same "$T/rb1.safetensors" "$T/rb1.safetensors" __basis.
    mkdir -p "$T/d2" "$T/d3"
    local f
    for f in m_data q_data J_data; do "${TOOL[@]}" rows_shift "$T/d/$f.npy" "$T/d2/$f.npy" 300; done
    run basis_test_rows "$SP/rb.dino" --data "$T/d2" --save "$T/rb2.safetensors" -q
    expect_rc basis_test_rows 0
    tool_check "other test rows: the bases are byte-identical" st_same "$T/rb1.safetensors" "$T/rb2.safetensors" __basis.
    cp "$T/d/m_data.npy" "$T/d/J_data.npy" "$T/d3/"
    "${TOOL[@]}" rows_shift "$T/d/q_data.npy" "$T/d3/q_data.npy" 299
    run basis_train_rows "$SP/rb.dino" --data "$T/d3" --save "$T/rb3.safetensors" -q
    if "${TOOL[@]}" st_same "$T/rb1.safetensors" "$T/rb3.safetensors" __basis.Vq >/dev/null 2>&1; then
        bad "a changed training row changes the output basis"
    else
        ok "a changed training row changes the output basis"
    fi
    DINO_REDUCED=0 run basis_full "$SP/rb.dino" --data "$T/d" --precision f64 --log "$T/rb0.csv"
    expect_rc basis_full 0
    check "--log FILE.csv writes the basis report to FILE.csv.bases" grep -q "^basis Vq: pod(q) rank 4 of 9" "$T/rb0.csv.bases"
    stderr_has basis_full "frozen encode/decode layers run in the full-space graph"
    run basis_reduced "$SP/rb.dino" --data "$T/d" --precision f64 --log "$T/rb1.csv" -q
    check "reduced and full-space paths in f64: the same CSV (losses and metrics to 9 digits)" \
        cmp -s <(strip_seconds "$T/rb0.csv") <(strip_seconds "$T/rb1.csv")
    run basis_s4 "$SP/rb.dino" --data "$T/d" --epochs 4 --save "$T/s4.safetensors" -q
    run basis_s2 "$SP/rb.dino" --data "$T/d" --epochs 4 --until 2 --save "$T/s2.safetensors" -q
    run basis_s2b "$SP/rb.dino" --data "$T/d" --epochs 4 --load "$T/s2.safetensors" --save "$T/s2b.safetensors"
    stderr_has basis_s2b "exact training in reduced coordinates"
    tool_check "reduced path: 4 epochs == 2 + --load + 2, byte for byte" st_compare "$T/s4.safetensors" "$T/s2b.safetensors"
    run basis_pred "$SP/rb.dino" --data "$T/d" --epochs 0 --load "$T/rb1.safetensors" --predict "$T/d/m_data.npy" \
        --out "$T/pb1" -q
    expect_rc basis_pred 0
    "${TOOL[@]}" st_strip "$T/rb1.safetensors" "$T/bare.safetensors" __
    run basis_bare "$SP/rb.dino" --data "$T/d" --epochs 0 --load "$T/bare.safetensors" --predict "$T/d/m_data.npy" \
        --out "$T/pb2"
    expect_rc basis_bare 0
    stderr_has basis_bare "basis Vm: active_subspace(dq/dm)"
    check "bases computed again: the same predictions, byte for byte" cmp -s "$T/pb1/q.npy" "$T/pb2/q.npy"
    check "... and the same Jacobians" cmp -s "$T/pb1/J.npy" "$T/pb2/J.npy"
    run basis_nodata "$SP/rb.dino" --epochs 0 --load "$T/bare.safetensors" --predict "$T/d/m_data.npy" --out "$T/pb3"
    expect_rc basis_nodata 1
    stderr_has basis_nodata "bases need the training data"
    # --predict --reduced: h and dh/dz; lifted with the checkpoint's bases they are the full prediction
    "${TOOL[@]}" take "$T/d/m_data.npy" "$T/m20.npy" 0:20
    run basis_red "$SP/rb.dino" --data "$T/d" --epochs 0 --load "$T/rb1.safetensors" --precision f64 \
        --predict "$T/m20.npy" --out "$T/pr" --reduced
    expect_rc basis_red 0
    stderr_has basis_red "q_reduced.npy" "J_reduced.npy"
    local s
    s=$("${TOOL[@]}" shape "$T/pr/q_reduced.npy" 2>&1)
    check "pr/q_reduced.npy is h [20, 4] float64: $s" [ "$s" = "<f8 20,4" ]
    s=$("${TOOL[@]}" shape "$T/pr/J_reduced.npy" 2>&1)
    check "pr/J_reduced.npy is dh/dz [20, 4, 6] float64: $s" [ "$s" = "<f8 20,4,6" ]
    run basis_full64 "$SP/rb.dino" --data "$T/d" --epochs 0 --load "$T/rb1.safetensors" --precision f64 \
        --predict "$T/m20.npy" --out "$T/pf" -q
    tool_check "D h + shift and D G E^T equal the full-space --predict" lift "$T/rb1.safetensors" Vm Vq \
        "$T/pr/q_reduced.npy" "$T/pr/J_reduced.npy" "$T/pf/q.npy" "$T/pf/J.npy" 1e-12
    spec "$SP/plain.dino" "adam(lr = 1e-3)"
    run red_plain "$SP/plain.dino" --data "$T/d" --epochs 1 --predict "$T/m20.npy" --out "$T/pp" --reduced
    expect_rc red_plain 1
    stderr_has red_plain "has no reduced path" "no basis section"
    check "a model without the path: refused before training (no epoch line)" \
        bash -c "! grep -q '^epoch' '$T/red_plain.err' '$T/red_plain.out'"
    run red_nopredict "$SP/rb.dino" --data "$T/d" --reduced
    expect_rc red_nopredict 1
    stderr_has red_nopredict "--reduced goes with --predict"
    # a validation set: model selection in reduced coordinates, the same CSV and checkpoint as the
    # full-space graph (f64)
    sed -e 's/split train 300, test 100/split train 250, valid 50, test 100/' \
        -e 's/    epochs 2/    epochs 4\n    keep best\n    early_stop patience 2/' "$SP/rb.dino" >"$SP/rbv.dino"
    run basis_valid "$SP/rbv.dino" --data "$T/d" --precision f64 --log "$T/rbv1.csv" --save "$T/rbv1.safetensors"
    expect_rc basis_valid 0
    stderr_has basis_valid "projected once at load (the validation rows too)" "valid: loss"
    DINO_REDUCED=0 run basis_valid0 "$SP/rbv.dino" --data "$T/d" --precision f64 --log "$T/rbv0.csv" \
        --save "$T/rbv0.safetensors"
    stderr_has basis_valid0 "frozen encode/decode layers run in the full-space graph"
    check "with a validation set, reduced and full-space paths in f64: the same CSV (valid columns too)" \
        cmp -s <(strip_seconds "$T/rbv0.csv") <(strip_seconds "$T/rbv1.csv")
    check "... the CSV has the validation columns" grep -q valid_loss "$T/rbv1.csv"
    run basis_valid_p1 "$SP/rbv.dino" --data "$T/d" --epochs 0 --load "$T/rbv1.safetensors" --precision f64 \
        --predict "$T/m20.npy" --out "$T/pv1" -q
    run basis_valid_p0 "$SP/rbv.dino" --data "$T/d" --epochs 0 --load "$T/rbv0.safetensors" --precision f64 \
        --predict "$T/m20.npy" --out "$T/pv0" -q
    tool_check "... and the keep-best checkpoints predict the same (to 1e-12)" lift_same "$T/pv1/q.npy" \
        "$T/pv0/q.npy" 1e-12
}

group_nan() {
    data || return
    local e
    # 1. diverges in the first epoch: the checkpoint holds the initial parameters
    spec "$SP/nan.dino" "sgd(lr = 1e30)"
    run nan "$SP/nan.dino" --data "$T/d" --save "$T/nan.safetensors"
    expect_rc nan 1
    check "stderr names the epoch and step: $(grep -m1 -o 'epoch [0-9]*, step [0-9]*' "$T/nan.err")" \
        grep -qE 'epoch [0-9]+, step [0-9]+' "$T/nan.err"
    check "checkpoint written" [ -s "$T/nan.safetensors" ]
    tool_check "checkpoint holds only finite values" st_finite "$T/nan.safetensors"
    e=$(grep -m1 -oE 'epoch [0-9]+, step' "$T/nan.err" | grep -oE '[0-9]+')
    run nan_ref "$SP/nan.dino" --data "$T/d" --epochs "$((${e:-1} - 1))" --save "$T/nan_ref.safetensors" -q
    tool_check "checkpoint == parameters after epoch $((${e:-1} - 1)) (the last good ones)" \
        st_compare "$T/nan.safetensors" "$T/nan_ref.safetensors"
    # 2. diverges later: lr 1e-3, multiplied by 1e32 halfway through 4 epochs
    spec "$SP/late.dino" "sgd(lr = 1e-3)" 4 "    schedule  step(at = [0.5], factor = 1e32)"
    spec "$SP/early.dino" "sgd(lr = 1e-3)" 4
    run late "$SP/late.dino" --data "$T/d" --save "$T/late.safetensors" --log "$T/late.csv"
    expect_rc late 1
    e=$(grep -m1 -oE 'epoch [0-9]+, step' "$T/late.err" | grep -oE '[0-9]+')
    check "the late divergence is reported in epoch 3 (got '${e:-none}'): $(grep -m1 error "$T/late.err")" [ "${e:-0}" = 3 ]
    run late_ref "$SP/early.dino" --data "$T/d" --epochs 2 --save "$T/late_ref.safetensors" -q
    tool_check "checkpoint holds only finite values" st_finite "$T/late.safetensors"
    tool_check "checkpoint == parameters after epoch 2 (of a run without the jump)" \
        st_compare "$T/late.safetensors" "$T/late_ref.safetensors"
}

group_errors() {
    data || return
    spec "$SP/e.dino"
    local S="$SP/e.dino"
    run flag "$S" --data "$T/d" --bogus
    expect_rc flag 1; stderr_has flag "unknown option" "--bogus"
    run epochs "$S" --data "$T/d" --epochs -1
    expect_rc epochs 1; stderr_has epochs "epochs" "-1"
    run set "$S" --data "$T/d" --set nosuch=1
    expect_rc set 1; stderr_has set "unknown setting" "nosuch"
    # --set (and --lr, --epochs, ...) go through the checker's rules, with its messages
    run set_decay "$S" --data "$T/d" --set decay=0.1
    expect_rc set_decay 1; stderr_has set_decay "adam has no setting 'decay'" "adamw(decay = ...)"
    run set_momentum "$S" --data "$T/d" --set momentum=0.9
    expect_rc set_momentum 1; stderr_has set_momentum "adam has no setting 'momentum'" "sgd(momentum = ...)"
    run set_lr "$S" --data "$T/d" --lr 0
    expect_rc set_lr 1; stderr_has set_lr "lr must be greater than 0, not 0"
    run set_beta1 "$S" --data "$T/d" --set beta1=1
    expect_rc set_beta1 1; stderr_has set_beta1 "beta1 must be at least 0 and less than 1, not 1"
    run set_math "$S" --data "$T/d" --set math=quick
    expect_rc set_math 1; stderr_has set_math "math is precise or fast, not 'quick'"
    run set_batch "$S" --data "$T/d" --set batch=2.5
    expect_rc set_batch 1; stderr_has set_batch "batch must be a whole number, not 2.5"
    spec "$SP/adamw.dino" "adamw(lr = 3e-3)"
    run set_adamw "$SP/adamw.dino" --data "$T/d" --set decay=-1
    expect_rc set_adamw 1; stderr_has set_adamw "decay must be at least 0, not -1"
    run cuda "$S" --data "$T/d" --backend cuda
    expect_rc cuda 1; stderr_has cuda "CUDA" "--backend cpu"
    run noout "$S" --data "$T/d" --predict "$T/d/m_data.npy"
    expect_rc noout 1; stderr_has noout "--predict" "--out"
    run nodata "$S" --data "$T/nosuchdir"
    expect_rc nodata 1; stderr_has nodata "$T/nosuchdir"
    # q_data.npy [400, 8] where the output has dimension 9
    mkdir -p "$T/bad"
    cp "$T/d/m_data.npy" "$T/d/J_data.npy" "$T/bad/"
    "${TOOL[@]}" zeros "$T/bad/q_data.npy" 400,8
    run shape "$S" --data "$T/bad"
    expect_rc shape 1; stderr_has shape "q_data.npy" "[N, 9]" "[400, 8]"
    # a checkpoint of a wider network
    run ck "$S" --epochs 0 --save "$T/w64.safetensors" -q
    sed 's/width = 64/width = 32/' "$S" >"$SP/w32.dino"
    run load "$SP/w32.dino" --data "$T/d" --load "$T/w64.safetensors"
    expect_rc load 1; stderr_has load "w64.safetensors" "q.0.weight" "[64, 16]" "[32, 16]"
    run nospec "$T/nosuch.dino" --data "$T/d"
    expect_rc nospec 1; stderr_has nospec "nosuch.dino"
    mkdir -p "$T/emptycache"
    CC=/nonexistent/cc DINO_CACHE_DIR="$T/emptycache" run nocc "$S" --data "$T/d"
    expect_rc nocc 1; stderr_has nocc "no C compiler" "/nonexistent/cc" "install"
    run cols "$S" --epochs 0 --load "$T/w64.safetensors" --predict "$T/d/q_data.npy" --out "$T/pcols"
    expect_rc cols 1; stderr_has cols "q_data.npy" "[N, 16]" "[400, 9]"
    check "no output folder after the failed --predict" [ ! -e "$T/pcols/q.npy" ]
}

group_layout() {
    data || return
    mkdir -p "$T/dl"
    cp "$T/d/m_data.npy" "$T/d/q_data.npy" "$T/dl/"
    "${TOOL[@]}" transpose12 "$T/d/J_data.npy" "$T/dl/J_T.npy"
    local s
    s=$("${TOOL[@]}" shape "$T/dl/J_T.npy")
    check "transposed Jacobian file is [N, in, out]: $s" [ "$s" = "<f8 400,16,9" ]
    spec "$SP/out_in.dino"
    spec "$SP/in_out.dino" "" "" "" '    m     = npy("m_data.npy")
    q     = npy("q_data.npy")
    dq/dm = npy("J_T.npy", layout = in_out)'
    run layout_ref "$SP/out_in.dino" --data "$T/d" --epochs 5 --set eval_every=1 --log "$T/out_in.csv" -q
    expect_rc layout_ref 0
    run layout "$SP/in_out.dino" --data "$T/dl" --epochs 5 --set eval_every=1 --log "$T/in_out.csv" -q
    expect_rc layout 0
    strip_seconds "$T/out_in.csv" >"$T/a.csv"
    strip_seconds "$T/in_out.csv" >"$T/b.csv"
    if [ "$(wc -l <"$T/a.csv")" -eq 6 ] && cmp -s "$T/a.csv" "$T/b.csv"; then
        ok "layout = in_out on the transposed file gives the same CSV (losses, rel_l2, rel_h1 of 5 epochs)"
    else
        bad "layout = in_out CSV differs from the default layout's (seconds blanked):"
        diff "$T/a.csv" "$T/b.csv" | sed 's/^/       /'
    fi
    # and without layout = in_out the transposed file is rejected by shape
    sed 's/, layout = in_out//' "$SP/in_out.dino" >"$SP/no_layout.dino"
    run no_layout "$SP/no_layout.dino" --data "$T/dl" --epochs 1
    expect_rc no_layout 1; stderr_has no_layout "J_T.npy" "[400, 16, 9]"
}

# Concurrent first compiles of one module: each process writes its source, log and shared
# object under per-process names (runtime/cpu_jit.c) and only the final rename into
# CACHE/cpu-HASH.so is shared. Before that fix the source had one shared name and a process
# could truncate it while another's C compiler read it, which left an empty module in the
# cache (1-4 of 8 processes failed in about half of the rounds), so 5 rounds of 8.
group_cache() {
    printf '%s\n' "model tiny {" "    input  m[16]" "    output q[9]" "    q = dense(tanh(dense(m, 8)), 9)" "}" \
        >"$T/tiny.dino"
    local round i failed
    for round in 1 2 3 4 5; do
        rm -rf "${T:?}/cache$round"
        mkdir -p "$T/cache$round"
        for i in 1 2 3 4 5 6 7 8; do
            DINO_CFLAGS=-O0 DINO_CACHE_DIR="$T/cache$round" "$JIT" "$T/tiny.dino" --epochs 0 -q >/dev/null 2>"$T/c$round.$i.err" &
        done
        failed=0
        for i in 1 2 3 4 5 6 7 8; do wait -n || failed=$((failed + 1)); done
        if [ $failed -eq 0 ]; then
            ok "round $round: 8 concurrent first compiles into one empty cache all succeeded"
        else
            bad "round $round: $failed of 8 concurrent first compiles failed: $(cat "$T"/c$round.*.err | grep -m1 error)"
        fi
        DINO_CFLAGS=-O0 DINO_CACHE_DIR="$T/cache$round" run cache_after$round "$T/tiny.dino" --epochs 0 -q
        expect_rc cache_after$round 0
    done
    cache_damage
}

# A damaged module in the cache (issue 15.3: a truncated .so gave SIGBUS, flipped bytes SIGILL,
# another spec's module SIGSEGV) is rebuilt once with a note, and the predictions are those of
# the sound module. An edit of a comment, lr, epochs or a data file name keeps the cache entry
# (issue 15.7); a compiler that resolves the flags to another CPU gets its own (a fake CC that
# answers -### for a CPU named in $DINO_TEST_CPU).
clean_hit() { [ "$RC" -eq 0 ] && ! grep -q note "$1"; }

cache_damage() {
    data || return
    local C="$T/cache_damage" so other name
    mkdir -p "$C"
    export DINO_CFLAGS=-O0
    DINO_CACHE_DIR="$C" run dmg_ref "$T/tiny.dino" --epochs 0 --predict "$T/d/m_data.npy" --out "$T/dmg_ref"
    expect_rc dmg_ref 0
    stderr_has dmg_ref "code compiled"
    so=$(ls "$C"/cpu-*.so)
    check "one module in the cache" [ "$(ls "$C" | wc -l)" -eq 1 ]
    sed 's/dense(m, 8)/dense(m, 7)/' "$T/tiny.dino" >"$T/tiny_other.dino"
    DINO_CACHE_DIR="$C" run dmg_other "$T/tiny_other.dino" --epochs 0 -q
    other=$(ls -t "$C"/cpu-*.so | head -n 1)
    check "another spec, another module" [ "$other" != "$so" ]
    for name in truncated flipped swapped; do
        case $name in
        truncated) head -c 3000 "$so" >"$T/x.so" ;;
        flipped) python3 -c 'import sys
b = bytearray(open(sys.argv[1], "rb").read())
for i in range(4096, len(b) - 100, 61): b[i] ^= 0xA5
open(sys.argv[2], "wb").write(b)' "$so" "$T/x.so" ;;
        swapped) cp "$other" "$T/x.so" ;;
        esac
        mv "$T/x.so" "$so"
        DINO_CACHE_DIR="$C" run dmg_$name "$T/tiny.dino" --epochs 0 --predict "$T/d/m_data.npy" --out "$T/dmg_$name"
        expect_rc dmg_$name 0
        stderr_has dmg_$name "dino-jit: note: the cached module $so was damaged" "rebuilt it" "code compiled"
        check "$name module: after the rebuild the predictions are the sound module's" \
            cmp -s "$T/dmg_ref/q.npy" "$T/dmg_$name/q.npy"
        DINO_CACHE_DIR="$C" run dmg_${name}_again "$T/tiny.dino" --epochs 0 -q
        check "$name module: the rebuilt module is then used from the cache, without a note" \
            clean_hit "$T/dmg_${name}_again.err"
    done
    # edits that leave the generated code alone hit the cache
    { echo "# a comment"; sed 's/^}$/}\ntrain {\n    optimizer adam(lr = 0.0042)\n    epochs 3\n}/' "$T/tiny.dino"; } \
        >"$T/tiny_edit.dino"
    DINO_CACHE_DIR="$C" run dmg_edit "$T/tiny_edit.dino" --epochs 0
    expect_rc dmg_edit 0
    stderr_has dmg_edit "code from the cache"
    check "a comment, lr and epochs edit adds no module" [ "$(ls "$C" | wc -l)" -eq 2 ]
    spec "$SP/c1.dino" "" "" "" "$(printf '    m = npy("m_data.npy")\n    q = npy("q_data.npy")\n    dq/dm = npy("J_data.npy")')"
    { echo "# edited"; sed 's/npy("m_data.npy")/npy("m_copy.npy")/; s/lr = 3e-3/lr = 1e-3/; s/epochs    30/epochs 5/' \
        "$SP/c1.dino"; } >"$T/c2.dino"
    cp "$T/d/m_data.npy" "$T/d/m_copy.npy"
    DINO_CACHE_DIR="$C" run dmg_c1 "$SP/c1.dino" --data "$T/d" --epochs 0
    expect_rc dmg_c1 0
    DINO_CACHE_DIR="$C" run dmg_c2 "$T/c2.dino" --data "$T/d" --epochs 0
    expect_rc dmg_c2 0
    stderr_has dmg_c2 "code from the cache"
    # the CPU that -march=native means is part of the key
    printf '%s\n' '#!/bin/sh' 'case " $* " in *" -### "*) echo "cc1 -march=$DINO_TEST_CPU"; exit 0 ;; esac' \
        'exec cc "$@"' >"$T/fakecc"
    chmod +x "$T/fakecc"
    CC="$T/fakecc" DINO_TEST_CPU=one DINO_CACHE_DIR="$C" run cpu_one "$T/tiny.dino" --epochs 0
    CC="$T/fakecc" DINO_TEST_CPU=one DINO_CACHE_DIR="$C" run cpu_one_again "$T/tiny.dino" --epochs 0
    stderr_has cpu_one_again "code from the cache"
    CC="$T/fakecc" DINO_TEST_CPU=two DINO_CACHE_DIR="$C" run cpu_two "$T/tiny.dino" --epochs 0
    expect_rc cpu_two 0
    stderr_has cpu_two "code compiled"
    unset DINO_CFLAGS
}

group_pint() {
    data || return
    cat >"$SP/pint.dino" <<EOF
model pint_cli {
    input  m[16]
    output q[9]
    z0 = tanh(dense(m, 8))
    ode z = z0, t in [0, 1] {
        a     = tanh(dense(concat(z, t), 16))
        dz/dt = dense(a, 8)
        solver rk4 steps 8
        pint parareal { slices 4; iterations 2; coarse euler steps 1; fine rk4 steps 2 }
    }
    q = dense(z, 9)
}
data { split train 320, test 80 }
loss {
    l2 q     weight 1.0 relative
    h1 dq/dm weight 1.0 relative
}
train { batch 32; epochs 4; seed 0; eval every 2 }
EOF
    run pint "$SP/pint.dino" --data "$T/d" --log "$T/pint.csv"
    expect_rc pint 0
    stderr_has pint "parareal z: "
    local header e c1 c2
    header=$(head -n 1 "$T/pint.csv")
    check "CSV header '$header' ends with parareal_z_1,parareal_z_2" [ "${header%,parareal_z_1,parareal_z_2}" != "$header" ]
    for e in 1 2 3 4; do
        c1=$(csv "$T/pint.csv" $e parareal_z_1) c2=$(csv "$T/pint.csv" $e parareal_z_2)
        check "epoch $e: corrections 0 < $c2 < $c1" lt 0 "$c2"
        check "epoch $e: the second iteration's correction $c2 is below the first's $c1" lt "$c2" "$c1"
    done

    # dopri5: accepted steps per epoch in the CSV; too few attempts is a warning naming the fix;
    # more attempts than the code generator unrolls is an error
    sed -e 's/        solver rk4 steps 8/        solver dopri5 rtol 1e-5 atol 1e-7 max_steps 30/' -e '/pint parareal/d' \
        "$SP/pint.dino" >"$SP/dopri5.dino"
    run dopri5 "$SP/dopri5.dino" --data "$T/d" --log "$T/dopri5.csv" --epochs 2
    expect_rc dopri5 0
    local steps unfinished
    steps=$(csv "$T/dopri5.csv" 2 dopri5_z_steps) unfinished=$(csv "$T/dopri5.csv" 2 dopri5_z_unfinished)
    check "dopri5: $steps accepted steps on average (> 1), unfinished fraction $unfinished (0)" \
        [ -n "$steps" ] && lt 1 "$steps" && [ "$unfinished" = 0 ]
    sed 's/max_steps 30/max_steps 2/' "$SP/dopri5.dino" >"$SP/dopri5_short.dino"
    run dopri5_short "$SP/dopri5_short.dino" --data "$T/d" --epochs 1
    expect_rc dopri5_short 0
    stderr_has dopri5_short "warning" "did not reach t = 1 within max_steps 2" "raise max_steps"
    sed 's/ max_steps 30//' "$SP/dopri5.dino" >"$SP/dopri5_default.dino"
    run dopri5_default "$SP/dopri5_default.dino" --data "$T/d" --epochs 1
    expect_rc dopri5_default 1
    # the checker refuses it (dinoc --check too), at the solver name, with the caret line
    stderr_has dopri5_default "dopri5_default.dino:8:16: error" "max_steps must be at most 256" "(the default)" "^~~~~~"
}

# workspace NAME: the KiB per sample in the last run's "training workspace" line
workspace() { sed -n 's/.*training workspace .*: \([0-9.]*\) KiB per sample.*/\1/p' "$T/$1.err"; }

group_checkpoint() {
    data || return
    cat >"$SP/plain.dino" <<EOF
model node_ckpt {
    input  m[16]
    output q[9]
    z0 = tanh(dense(m, 8))
    ode z = z0, t in [0, 1] {
        a     = tanh(dense(concat(z, t), 16))
        dz/dt = dense(a, 8)
        solver rk4 steps 12
    }
    q = dense(z, 9)
}
data { split train 320, test 80 }
loss {
    l2 q     weight 1.0 relative
    h1 dq/dm weight 1.0 relative
}
train { batch 32; epochs 3; seed 0; eval every 1 }
EOF
    local mode n ws0 ws
    for n in 3 5; do
        sed "s/        solver rk4 steps 12/&\n        checkpoint $n/" "$SP/plain.dino" >"$SP/ckpt$n.dino"
    done
    for mode in forward reverse; do
        run plain_$mode "$SP/plain.dino" --data "$T/d" --jacobian $mode --save "$T/plain_$mode.st" --log "$T/plain_$mode.csv"
        expect_rc plain_$mode 0
        ws0=$(workspace plain_$mode)
        for n in 3 5; do
            run ckpt${n}_$mode "$SP/ckpt$n.dino" --data "$T/d" --jacobian $mode --save "$T/ckpt${n}_$mode.st" \
                --log "$T/ckpt${n}_$mode.csv"
            expect_rc ckpt${n}_$mode 0
            tool_check "$mode Jacobian, checkpoint $n: parameters byte for byte as without" \
                st_compare "$T/plain_$mode.st" "$T/ckpt${n}_$mode.st"
            if cmp -s <(strip_seconds "$T/plain_$mode.csv") <(strip_seconds "$T/ckpt${n}_$mode.csv"); then
                ok "$mode Jacobian, checkpoint $n: CSV identical but for seconds"
            else
                bad "$mode Jacobian, checkpoint $n: the CSVs differ"
                diff <(strip_seconds "$T/plain_$mode.csv") <(strip_seconds "$T/ckpt${n}_$mode.csv") | sed 's/^/       /'
            fi
            ws=$(workspace ckpt${n}_$mode)
            check "$mode Jacobian, checkpoint $n: workspace $ws KiB per sample, at most half of $ws0" \
                awk -v a="$ws" -v b="$ws0" 'BEGIN { exit !(a != "" && b != "" && 2 * a <= b) }'
        done
    done
    run pred_plain "$SP/plain.dino" --epochs 0 --load "$T/plain_forward.st" --predict "$T/d/m_data.npy" --out "$T/pp"
    expect_rc pred_plain 0
    run pred_ckpt "$SP/ckpt3.dino" --epochs 0 --load "$T/plain_forward.st" --predict "$T/d/m_data.npy" --out "$T/pc"
    expect_rc pred_ckpt 0
    check "--predict with checkpoint 3: q.npy and J.npy byte for byte as without" \
        cmp -s "$T/pp/q.npy" "$T/pc/q.npy" && check "(J.npy)" cmp -s "$T/pp/J.npy" "$T/pc/J.npy"

    # checkpoint lines the solver can't use
    sed "s/        solver rk4 steps 12/&\n        checkpoint 12/" "$SP/plain.dino" >"$SP/all.dino"
    run ckpt_all "$SP/all.dino" --data "$T/d" --epochs 1
    expect_rc ckpt_all 1
    stderr_has ckpt_all "all.dino:9:9: error" "checkpoint 12 keeps nothing out of 12 steps" "N must be below the number of steps"
    sed "s/        solver rk4 steps 12/        solver dopri5 max_steps 20\n        checkpoint 2/" "$SP/plain.dino" >"$SP/dp.dino"
    run ckpt_dopri5 "$SP/dp.dino" --data "$T/d" --epochs 1
    expect_rc ckpt_dopri5 1
    stderr_has ckpt_dopri5 "dp.dino:9:9: error" "checkpoint is for the fixed-step solvers"

    # a workspace the machine can't give (80 GB: a million-wide ODE layer) is an error that
    # offers checkpointing; only where the kernel refuses allocations beyond memory (overcommit
    # mode 0 or 2; in mode 1 the allocation would succeed and training would be killed)
    sed 's/dense(concat(z, t), 16)/dense(concat(z, t), 1000000)/; s/batch 32/batch 320/' "$SP/plain.dino" >"$SP/huge.dino"
    if [ "$(cat /proc/sys/vm/overcommit_memory 2>/dev/null)" = 1 ]; then
        echo "SKIP (visibly, not counted) the out-of-memory check: vm.overcommit_memory is 1"
    else
        ASAN_OPTIONS=allocator_may_return_null=1 run ckpt_oom "$SP/huge.dino" --data "$T/d" --backend cpu --epochs 1
        expect_rc ckpt_oom 1
        stderr_has ckpt_oom "out of memory: the training workspace needs" "KiB per sample x batch 320" \
            "\`checkpoint N\` in the ode block"
    fi
}

# Trajectory outputs (save every): data [N, T, dim] and J [N, T, dim, in] read (and their wrong
# shapes refused, naming T), a model trained on them, --predict writing [N, T, dim] and
# [N, T, dim, in] with J against finite differences, layout = in_out per saved time.
traj_spec() {   # traj_spec FILE [jacobian line]
    cat >"$1" <<EOF2
model traj {
    input  y0[2]
    output y[2]
    ode z = y0, t in [0, 1] {
        dz/dt = dense(tanh(dense(z, 16)), 2)
        solver rk4 steps 8
        save every 0.25
    }
    y = z
}
data {
    ${2:-}
    split train 160, test 40
}
loss {
    l2 y      weight 1.0 relative
    h1 dy/dy0 weight 0.5 relative
}
train {
    optimizer adam(lr = 1e-2)
    schedule  cosine(end = 0)
    batch     16
    epochs    120
    seed      0
    eval every 20
}
EOF2
}

group_trajectory() {
    local D="$T/traj" s
    mkdir -p "$D" "$T/tb" "$T/tj"
    "${TOOL[@]}" trajectory "$D" 200 0.25,0.5,0.75,1 || { bad "npytool trajectory failed"; return; }
    traj_spec "$SP/t.dino"
    run traj_train "$SP/t.dino" --data "$D" --save "$T/t.safetensors" --log "$T/t.csv"
    expect_rc traj_train 0
    stderr_has traj_train "model traj: 2 -> [4, 2]"
    local l0 l1
    l0=$(csv "$T/t.csv" 20 rel_l2) l1=$(csv "$T/t.csv" 120 rel_l2)
    check "trajectory training: rel_l2 over whole trajectories falls ($l0 at epoch 20, $l1 at 120) below 0.05" \
        eval 'lt "$l1" "$l0" && lt "$l1" 0.05'
    run traj_predict "$SP/t.dino" --data "$D" --epochs 0 --load "$T/t.safetensors" --predict "$D/y0_data.npy" --out "$T/tp"
    expect_rc traj_predict 0
    s=$("${TOOL[@]}" shape "$T/tp/y.npy" 2>&1)
    check "predicted y is [N, T, dim] = [200, 4, 2]: $s" [ "$s" = "<f4 200,4,2" ]
    s=$("${TOOL[@]}" shape "$T/tp/J.npy" 2>&1)
    check "predicted J is [N, T, dim(y), dim(y0)] = [200, 4, 2, 2]: $s" [ "$s" = "<f4 200,4,2,2" ]
    "${TOOL[@]}" fd_rows "$D/y0_data.npy" "$T/tfd.npy" 7 1e-5
    run traj_fd "$SP/t.dino" --data "$D" --epochs 0 --load "$T/t.safetensors" --precision f64 --predict "$T/tfd.npy" --out "$T/tp64"
    expect_rc traj_fd 0
    tool_check "trajectory J matches finite differences of the predicted trajectory" \
        fd_check "$T/tp64/y.npy" "$T/tp64/J.npy" 1e-5 1e-6
    # layout = in_out: J stored [N, T, in, out] trains exactly as the out_in file does
    traj_spec "$SP/tio.dino" 'dy/dy0 = npy("J_io.npy", layout = in_out)'
    run traj_io "$SP/tio.dino" --data "$D" --epochs 20 --log "$T/tio.csv" -q
    expect_rc traj_io 0
    run traj_oi "$SP/t.dino" --data "$D" --epochs 20 --log "$T/toi.csv" -q
    check "layout = in_out per saved time: the same losses as the out_in file" \
        cmp -s <(strip_seconds "$T/tio.csv") <(strip_seconds "$T/toi.csv")
    # wrong shapes: the message names the expected T
    cp "$D/y0_data.npy" "$D/J_data.npy" "$T/tb/" && cp "$D/y_flat.npy" "$T/tb/y_data.npy"
    run traj_bad_y "$SP/t.dino" --data "$T/tb" --epochs 1
    expect_rc traj_bad_y 1
    stderr_has traj_bad_y "y_data.npy: expected shape [N, 4, 2]" "4 saved times" "found [200, 8]"
    cp "$D/y0_data.npy" "$D/y_data.npy" "$T/tj/" && "${TOOL[@]}" zeros "$T/tj/J_data.npy" 200,2,2
    run traj_bad_J "$SP/t.dino" --data "$T/tj" --epochs 1
    expect_rc traj_bad_J 1
    stderr_has traj_bad_J "J_data.npy: expected shape [N, 4, 2, 2]" "found [200, 2, 2]"
    run traj_bad_io "$SP/tio.dino" --data "$T/tj" --epochs 1
    expect_rc traj_bad_io 1
    stderr_has traj_bad_io "J_io.npy"
}

# stderr_value NAME SED_SCRIPT: a value picked out of the last run's stderr
stderr_value() { sed -n "$2" "$T/$1.err" | tail -n 1; }

group_select() {
    local sel="$SRC/../shared/specs/planned/dino_select.dino"
    if [ ! -f "$sel" ]; then
        echo "SKIP (visibly, not counted): $sel does not exist"
        return
    fi
    "$GEN" --out "$T/s" --n 2000 --grid 15 -q || { bad "dino-gen-poisson failed"; return; }
    # lr 0.02 with an evaluation every epoch: the validation loss stops improving early on
    local fast=(--data "$T/s" --epochs 80 --lr 0.02 --set eval_every=1)
    run sel "$sel" "${fast[@]}" --save "$T/best.st" --log "$T/sel.csv"
    expect_rc sel 0
    local stopped best
    stopped=$(stderr_value sel 's/^dino-jit: early stop after epoch \([0-9]*\): .*/\1/p')
    best=$(stderr_value sel 's/^dino-jit: early stop after epoch [0-9]*: no lower validation loss since epoch \([0-9]*\) .*/\1/p')
    check "early stop fired (after epoch '$stopped', best epoch '$best'), 10 evaluations after the best" \
        test -n "$stopped" -a -n "$best" -a "$((stopped - best))" -eq 10
    stderr_has sel "1400 training rows, 200 validation rows, 400 test rows" "valid: loss" "(best)" \
        "dino-jit: kept the best epoch, $best"
    local header
    header=$(head -n 1 "$T/sel.csv")
    check "CSV header '$header' has valid_loss, valid_rel_l2, valid_rel_h1, train_l2, train_h1" \
        eval '[[ "$header" == epoch,step,seconds,lr,train_loss,rel_l2,rel_h1,valid_loss,valid_rel_l2,valid_rel_h1,train_l2,train_h1 ]]'
    check "CSV has one row per epoch up to the early stop ($(tail -n +2 "$T/sel.csv" | wc -l) of $stopped)" \
        test "$(tail -n +2 "$T/sel.csv" | wc -l)" -eq "${stopped:-0}"
    local argmin
    argmin=$(awk -F, 'NR > 1 && $8 != "" && (min == "" || $8 + 0 < min + 0) { min = $8; e = $1 } END { print e }' "$T/sel.csv")
    check "the best epoch ($best) has the lowest valid_loss in the CSV (epoch $argmin)" test "$argmin" = "$best"
    check "train_l2 + train_h1 = train_loss (weights 1) at epoch $best" awk -v a="$(csv "$T/sel.csv" "$best" train_l2)" \
        -v b="$(csv "$T/sel.csv" "$best" train_h1)" -v l="$(csv "$T/sel.csv" "$best" train_loss)" \
        'BEGIN { d = a + b - l; exit !(l > 0 && d * d <= 1e-12 * l * l) }'
    local meta
    meta=$("${TOOL[@]}" st_meta "$T/best.st" best_epoch)
    check "the checkpoint records best_epoch $meta (the best epoch $best)" test "$meta" = "$best"

    # --eval: the checkpoint's test metrics, as training reported them for the best epoch
    run eval "$sel" --data "$T/s" --load "$T/best.st" --eval
    expect_rc eval 0
    local want_l2 want_h1 got
    want_l2=$(awk -v x="$(csv "$T/sel.csv" "$best" rel_l2)" 'BEGIN { printf "%.4e", x }')
    want_h1=$(awk -v x="$(csv "$T/sel.csv" "$best" rel_h1)" 'BEGIN { printf "%.4e", x }')
    got=$(grep '^test ' "$T/eval.out")
    check "--eval prints epoch $best, the best on validation" grep -q "best.st: epoch $best, the best on validation" "$T/eval.out"
    check "--eval's test line '$got' has the CSV's rel_l2 $want_l2 and rel_h1 $want_h1 of epoch $best" \
        eval '[[ "$got" == "test   400 rows  loss "*"  rel_l2 $want_l2  rel_h1 $want_h1" ]]'
    check "--eval's test line is the one training printed for the kept epoch" \
        grep -qF "test: ${got#test   400 rows  }" "$T/sel.err"
    check "--eval trained nothing (no epoch line)" eval '! grep -q "^epoch " "$T/eval.err"'
    stderr_has eval "(after epoch $best, the best on validation"

    # a --load of the keep-best checkpoint resumes at the best epoch: the same run from there
    run resume "$sel" "${fast[@]}" --load "$T/best.st" --save "$T/best2.st"
    expect_rc resume 0
    stderr_has resume "early stop after epoch $stopped: no lower validation loss since epoch $best"
    tool_check "the resumed run keeps the same best parameters" st_compare "$T/best.st" "$T/best2.st"

    # valid files with the valid split's rows: the same training, the same CSV
    mkdir -p "$T/f"
    local f
    for f in m q J; do
        "${TOOL[@]}" take "$T/s/${f}_data.npy" "$T/f/${f}_data.npy" 0:1400,1600:2000
        "${TOOL[@]}" take "$T/s/${f}_data.npy" "$T/f/v${f}.npy" 1400:1600
    done
    sed 's/split train 1400, valid 200, test 400/split train 1400, test 400\n    valid m = npy("vm.npy")\n    valid q = npy("vq.npy")\n    valid dq\/dm = npy("vJ.npy")/' \
        "$sel" >"$SP/files.dino"
    run split3 "$sel" --data "$T/s" --epochs 3 --set eval_every=1 --log "$T/split3.csv" -q
    run files3 "$SP/files.dino" --data "$T/f" --epochs 3 --set eval_every=1 --log "$T/files3.csv" -q
    expect_rc files3 0
    if [ "$(wc -l <"$T/split3.csv")" -eq 4 ] && cmp -s <(strip_seconds "$T/split3.csv") <(strip_seconds "$T/files3.csv"); then
        ok "valid files holding the split's valid rows give the same CSV as the split (3 epochs)"
    else
        bad "valid files and the valid split give different CSVs (seconds blanked):"
        diff <(strip_seconds "$T/split3.csv") <(strip_seconds "$T/files3.csv") | sed 's/^/       /'
    fi

    # save every 4: after epochs 4, 8 and the last (10), not at the evaluations (every 3)
    sed 's/    keep best/    save every 4/; s/    early_stop patience 10//; s/    eval every 5/    eval every 3/' "$sel" >"$SP/every.dino"
    run every "$SP/every.dino" --data "$T/s" --epochs 10 --save "$T/every.st"
    expect_rc every 0
    local saved
    saved=$(sed -n 's/^dino-jit: saved .* after epoch \([0-9]*\)$/\1/p' "$T/every.err" | tr '\n' ' ')
    check "save every 4 wrote the checkpoint after epochs 4 8 10 (wrote after: $saved)" test "$saved" = "4 8 10 "
    run eval_every "$SP/every.dino" --data "$T/s" --load "$T/every.st" --eval
    check "its checkpoint is epoch 10's ($(head -n 1 "$T/eval_every.out"))" grep -qE "every.st: epoch 10( |,|$)" "$T/eval_every.out"

    # a classifier: accuracy and the cross-entropy, on the validation rows too
    "${TOOL[@]}" argmax "$T/s/q_data.npy" "$T/s/y_labels.npy" 4
    cat >"$SP/cls.dino" <<EOF
model cls {
    input  m[64]
    output y[4]
    y = mlp(m, 4, width = 32, depth = 1, act = tanh)
}
data {
    y = npy("y_labels.npy")
    split train 0.7, valid 0.1, test 0.2
}
loss { cross_entropy y }
train {
    optimizer adam(lr = 1e-2)
    epochs 6
    early_stop patience 2
    keep best
}
EOF
    run cls "$SP/cls.dino" --data "$T/s" --save "$T/cls.st" --log "$T/cls.csv"
    expect_rc cls 0
    stderr_has cls "valid: loss" "accuracy" "dino-jit: kept the best epoch"
    header=$(head -n 1 "$T/cls.csv")
    check "classifier CSV header '$header'" \
        eval '[[ "$header" == epoch,step,seconds,lr,train_loss,accuracy,valid_loss,valid_accuracy,train_cross_entropy ]]'
    check "train_cross_entropy = train_loss (weight 1) at epoch 1" \
        test "$(csv "$T/cls.csv" 1 train_cross_entropy)" = "$(csv "$T/cls.csv" 1 train_loss)"
    run cls_eval "$SP/cls.dino" --data "$T/s" --load "$T/cls.st" --eval
    expect_rc cls_eval 0
    check "--eval of the classifier: '$(grep '^test' "$T/cls_eval.out")'" grep -qE "^test   400 rows  loss [0-9.e+-]+  accuracy [0-9.]+ %$" "$T/cls_eval.out"

    # --set: patience, save_every, keep_best; model selection without a validation set is an error
    run set_patience "$SP/every.dino" --data "$T/s" --epochs 20 --lr 0.05 --set eval_every=1 --set patience=1 \
        --set save_every=0 --save "$T/p.st"
    expect_rc set_patience 0
    stderr_has set_patience "early stop after epoch"
    check "save_every=0: no periodic saves" eval '! grep -q "dino-jit: saved" "$T/set_patience.err"'
    run set_conflict "$SP/every.dino" --data "$T/s" --set keep_best=1
    expect_rc set_conflict 1
    stderr_has set_conflict "keep_best=1 with save every 4" "--set save_every=0"
    data || return
    spec "$SP/novalid.dino"
    run set_novalid "$SP/novalid.dino" --data "$T/d" --epochs 2 --set patience=3
    expect_rc set_novalid 1
    stderr_has set_novalid "early_stop needs a validation set, and the data has none"

    run eval_save "$sel" --data "$T/s" --load "$T/best.st" --eval --save "$T/x.st"
    expect_rc eval_save 1
    stderr_has eval_save "--eval trains nothing, so --save has nothing new to write"
    sed 's/split train 1400, valid 200, test 400/split train 2000, test 0/; s/    early_stop patience 10//; s/    keep best//' \
        "$sel" >"$SP/notest.dino"
    run eval_notest "$SP/notest.dino" --data "$T/s" --load "$T/every.st" --eval
    expect_rc eval_notest 1
    stderr_has eval_notest "the data has no test (or validation) rows to evaluate on"
    run eval_noload "$sel" --data "$T/s" --eval
    expect_rc eval_noload 1
    stderr_has eval_noload "--eval reports the metrics of a checkpoint: name it with --load CKPT"
}

. "$SRC/tests/cli/groups_safe.sh"

for g in "${GROUP_LIST[@]}"; do
    case $g in
    train | resume | predict | nan | errors | layout | pint | checkpoint | cache | select | basis | trajectory) ;;
    *) [[ " $SAFE_GROUPS " == *" $g "* ]] || { echo "run_cli.sh: unknown group '$g'" >&2; exit 2; } ;;
    esac
    export DINO_CACHE_DIR="$BUILD/cache/cli_$g"
    SP="$BUILD/tests/cli_specs/$g"
    mkdir -p "$DINO_CACHE_DIR" "$SP"
    echo "== $g"
    start=$(date +%s.%N)
    "group_$g"
    echo "   ($g: $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s)"
done
echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
