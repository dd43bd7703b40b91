# groups_safe.sh - run_cli.sh's groups for issue 15: nothing a careless or interrupted user does
# loses work. Sourced by run_cli.sh (its helpers: run, expect_rc, stderr_has, check, spec,
# data, csv, strip_seconds, tool_check; $T, $SP, $JIT, $BUILD, $SRC).
#
#   paths      --save and --log in missing folders are made; a checkpoint path that can't be
#              written (a file where a folder should be, /proc) is refused before any epoch,
#              with the path and the reason (before: all epochs trained, then "cannot create")
#   overwrite  outputs that would replace an input of the run are refused, exit 1, by file
#              identity (links and ./ spellings too): dinoc -o the spec or a data file,
#              dino-jit --save the spec, --log a data file, --out over the --predict input and
#              over a data file,
#              --save and --log the same file; --save equal to --load is allowed and resumes;
#              an output named J gets its Jacobian in dJ_dm.npy, its values in J.npy
#   signal     SIGINT in the middle of training: exit 3, the checkpoint written, and --load of
#              it trained to the end gives the parameters of an uninterrupted run byte for byte
#              (and its CSV rows), on the CPU and (stand-in driver) the CUDA backend; SIGTERM
#              without --save says how to get a checkpoint
#   unreached  --predict through a dopri5 solve that stops at max_steps short of t1 warns with
#              the number of rows (exit 0); with --strict it is an error (exit 1, nothing written);
#              the same on the CUDA backend (stand-in driver and NVRTC)
#   zerorows   all-zero target rows under a relative l2 (and Jacobian rows under a relative h1)
#              are a data error naming the file, the rows and how many
#   help       --version (both commands): version, commit, CUDA driver (the stand-in driver's
#              12.4), NVRTC; --help of both names every environment variable the sources read
#              with getenv (grepped here, so the list cannot drift) and every flag its parser
#              knows; so do the man pages
#   cachecmd   dino-jit --cache info counts the entries and bytes, --cache clear removes them
#              (and only them); a damaged CUBIN in the CUDA cache (stand-in driver and NVRTC)
#              is rebuilt with a note

group_paths() {
    data || return
    spec "$SP/p.dino" "" 3
    run mkdir_save "$SP/p.dino" --data "$T/d" --save "$T/new/deeper/ck.safetensors" -q
    expect_rc mkdir_save 0
    check "--save made the missing folders and wrote the checkpoint" [ -s "$T/new/deeper/ck.safetensors" ]
    run mkdir_log "$SP/p.dino" --data "$T/d" --log "$T/logs/a/run.csv" -q
    expect_rc mkdir_log 0
    check "--log made the missing folders and wrote 4 lines" [ "$(wc -l <"$T/logs/a/run.csv" 2>/dev/null)" = 4 ]
    touch "$T/plainfile"
    run save_under_file "$SP/p.dino" --data "$T/d" --epochs 300 --save "$T/plainfile/ck.safetensors"
    expect_rc save_under_file 1
    stderr_has save_under_file "cannot write the checkpoint '$T/plainfile/ck.safetensors'" "not a folder" "nothing was trained"
    check "refused before the first epoch (no epoch line)" sh -c "! grep -q '^epoch' '$T/save_under_file.err'"
    run save_proc "$SP/p.dino" --data "$T/d" --epochs 300 --save /proc/dino_ck.safetensors
    expect_rc save_proc 1
    stderr_has save_proc "cannot write the checkpoint '/proc/dino_ck.safetensors'" "cannot create a file in '/proc'"
    check "refused before the first epoch (no epoch line)" sh -c "! grep -q '^epoch' '$T/save_proc.err'"
    run log_proc "$SP/p.dino" --data "$T/d" --epochs 300 --log /proc/dino_log.csv
    expect_rc log_proc 1
    stderr_has log_proc "cannot write the log '/proc/dino_log.csv'"
    mkdir -p "$T/folder.safetensors"
    run save_folder "$SP/p.dino" --data "$T/d" --epochs 1 --save "$T/folder.safetensors"
    expect_rc save_folder 1
    stderr_has save_folder "it is a folder"
    if [ "$(id -u)" = 0 ]; then
        echo "SKIP (visibly, not counted) the read-only folder check: running as root, chmod does not stop writes"
    else
        mkdir -p "$T/ro" && chmod 555 "$T/ro"
        run save_ro "$SP/p.dino" --data "$T/d" --epochs 300 --save "$T/ro/ck.safetensors"
        expect_rc save_ro 1
        stderr_has save_ro "cannot create a file in '$T/ro'" "Permission denied"
        chmod 755 "$T/ro"
    fi
    # --epochs 0 --save: the checkpoint alone, folders made too
    run save_only "$SP/p.dino" --epochs 0 --save "$T/only/ck.safetensors" -q
    expect_rc save_only 0
    check "--epochs 0 --save made the folder" [ -s "$T/only/ck.safetensors" ]
}

group_overwrite() {
    data || return
    local S="$SP/o.dino" DINOC="$BUILD/dinoc"
    spec "$S" "" 2
    cp "$S" "$T/o_copy.dino"
    ln -sf "$T/o_copy.dino" "$T/o_link.dino"
    "$DINOC" "$T/o_copy.dino" -o "$T/o_copy.dino" >"$T/dinoc_self.out" 2>"$T/dinoc_self.err"
    RC=$?
    expect_rc dinoc_self 1
    stderr_has dinoc_self "is the spec" "refusing to overwrite"
    check "dinoc -o the spec left the spec as it was" cmp -s "$S" "$T/o_copy.dino"
    (cd "$T" && "$DINOC" o_link.dino -o ./o_copy.dino >"$T/dinoc_link.out" 2>"$T/dinoc_link.err")
    RC=$?
    expect_rc dinoc_link 1
    stderr_has dinoc_link "is the spec"
    check "dinoc -o through a link and ./ left the spec as it was" cmp -s "$S" "$T/o_copy.dino"
    spec "$SP/odir.dino" "" 2 "" '    dir "'"$T/d"'"'
    cp "$T/d/q_data.npy" "$T/q_keep.npy"
    "$DINOC" "$SP/odir.dino" -o "$T/d/q_data.npy" >"$T/dinoc_data.out" 2>"$T/dinoc_data.err"
    RC=$?
    expect_rc dinoc_data 1
    stderr_has dinoc_data "is the data file" "q_data.npy"
    check "dinoc -o a data file left it as it was" cmp -s "$T/d/q_data.npy" "$T/q_keep.npy"
    # an output that is not a regular file (/dev/null, a FIFO) is written in place, never renamed
    # over: as root, `dinoc -o /dev/null` once replaced the device with a file
    mkfifo "$T/o_fifo"
    cat "$T/o_fifo" >"$T/o_fifo.read" &
    local reader=$!
    "$DINOC" "$S" -o "$T/o_fifo" >"$T/dinoc_fifo.out" 2>"$T/dinoc_fifo.err"
    RC=$?
    wait $reader
    expect_rc dinoc_fifo 0
    check "dinoc -o a FIFO left it a FIFO" test -p "$T/o_fifo"
    check "... and wrote the source through it" grep -q "Generated by dinoc" "$T/o_fifo.read"
    "$DINOC" "$S" -o "$T" >"$T/dinoc_dir.out" 2>"$T/dinoc_dir.err"
    RC=$?
    expect_rc dinoc_dir 1
    stderr_has dinoc_dir "is a folder, not a file"

    cp "$S" "$T/o_keep.dino"
    run save_spec "$S" --data "$T/d" --save "$S"
    expect_rc save_spec 1
    stderr_has save_spec "--save '$S' would overwrite the spec"
    check "the spec is unchanged" cmp -s "$S" "$T/o_keep.dino"
    cp "$T/d/m_data.npy" "$T/m_keep.npy"
    run log_data "$S" --data "$T/d" --log "$T/d/../d/m_data.npy"
    expect_rc log_data 1
    stderr_has log_data "--log" "would overwrite a data file of the spec" "m_data.npy"
    check "the data file is unchanged" cmp -s "$T/d/m_data.npy" "$T/m_keep.npy"
    ln -sf "$T/d/J_data.npy" "$T/jlink.npy"
    run save_link "$S" --data "$T/d" --save "$T/jlink.npy"
    expect_rc save_link 1
    stderr_has save_link "would overwrite a data file of the spec"
    run save_log "$S" --data "$T/d" --save "$T/same.out" --log "$T/./same.out"
    expect_rc save_log 1
    stderr_has save_log "--save and --log name the same file"
    # --out DIR whose <output>.npy is the --predict input
    mkdir -p "$T/pin"
    cp "$T/d/m_data.npy" "$T/pin/q.npy"
    run train_o "$S" --data "$T/d" --save "$T/o.safetensors" -q
    run out_input "$S" --epochs 0 --load "$T/o.safetensors" --predict "$T/pin/q.npy" --out "$T/pin"
    expect_rc out_input 1
    stderr_has out_input "--out '$T/pin/q.npy' would overwrite the --predict input"
    check "the --predict input is unchanged" cmp -s "$T/pin/q.npy" "$T/d/m_data.npy"
    # --out DIR whose <output>.npy is a data file of the spec (data in DIR, the output file q.npy)
    mkdir -p "$T/dq"
    cp "$T/d/m_data.npy" "$T/d/J_data.npy" "$T/dq/" && cp "$T/d/q_data.npy" "$T/dq/q.npy"
    spec "$SP/oq.dino" "" 2 "" "$(printf '    m = npy("m_data.npy")\n    q = npy("q.npy")\n    dq/dm = npy("J_data.npy")')"
    run out_data "$SP/oq.dino" --data "$T/dq" --epochs 0 --load "$T/o.safetensors" --predict "$T/d/m_data.npy" --out "$T/dq"
    expect_rc out_data 1
    stderr_has out_data "--out '$T/dq/q.npy' would overwrite a data file of the spec"
    check "the data file is unchanged" cmp -s "$T/dq/q.npy" "$T/d/q_data.npy"
    # --save equal to --load: allowed, and the run continues from it
    cp "$T/o.safetensors" "$T/o_resume.safetensors"
    run save_is_load "$S" --data "$T/d" --load "$T/o_resume.safetensors" --epochs 4 --save "$T/o_resume.safetensors" -q
    expect_rc save_is_load 0
    run o4 "$S" --data "$T/d" --epochs 4 --save "$T/o4.safetensors" -q
    tool_check "--save equal to --load: resumed to epoch 4 in place, as an uninterrupted run" \
        st_compare "$T/o_resume.safetensors" "$T/o4.safetensors"
    # an output named J: its values in J.npy, the Jacobian in dJ_dm.npy
    sed 's/output q\[9\]/output J[9]/; s/    q = mlp/    J = mlp/; s/l2 q /l2 J /; s#h1 dq/dm#h1 dJ/dm#' "$S" >"$SP/oj.dino"
    run oj_save "$SP/oj.dino" --epochs 0 --save "$T/oj.safetensors" -q
    run oj "$SP/oj.dino" --epochs 0 --load "$T/oj.safetensors" --predict "$T/d/m_data.npy" --out "$T/oj"
    expect_rc oj 0
    stderr_has oj "J.npy, dJ_dm.npy"
    local s1 s2
    s1=$("${TOOL[@]}" shape "$T/oj/J.npy" 2>&1) s2=$("${TOOL[@]}" shape "$T/oj/dJ_dm.npy" 2>&1)
    check "output J: J.npy holds the values [400, 9] ($s1), dJ_dm.npy the Jacobian [400, 9, 16] ($s2)" \
        [ "$s1" = "<f4 400,9" ] && [ "$s2" = "<f4 400,9,16" ]
}

# waits (up to 30 s) until FILE has at least N lines
wait_lines() {
    local i
    for i in $(seq 1 600); do
        [ "$(wc -l 2>/dev/null <"$1" || echo 0)" -ge "$2" ] && return 0
        sleep 0.05
    done
    return 1
}

group_signal() {
    data || return
    # a wider network and batch 4 (80 steps an epoch), so that a signal lands inside an epoch
    spec "$SP/sig.dino" "" 16
    sed -i 's/width = 64, depth = 2/width = 128, depth = 3/; s/eval every 10/eval every 5/; s/batch     32/batch 4/' "$SP/sig.dino"
    run sig_ref "$SP/sig.dino" --data "$T/d" --save "$T/ref.safetensors" --log "$T/ref.csv" -q
    expect_rc sig_ref 0
    local pid k try
    # a stop at an epoch's end is the easy case; try again (3 times at most) until one lands inside
    for try in 1 2 3; do
        rm -f "$T/int.safetensors" "$T/int.csv"
        "$JIT" "$SP/sig.dino" --data "$T/d" --save "$T/int.safetensors" --log "$T/int.csv" >"$T/sigint.out" 2>"$T/sigint.err" &
        pid=$!
        wait_lines "$T/int.csv" 3   # the header and 2 epochs
        kill -INT $pid
        wait $pid
        RC=$?
        grep -q "stopped on request in epoch" "$T/sigint.err" && break
    done
    expect_rc sigint 3
    stderr_has sigint "training stopped on request in epoch" "rewound to the end of epoch" "saved to $T/int.safetensors" \
        "--load $T/int.safetensors"
    k=$(grep -o 'end of epoch [0-9]*' "$T/sigint.err" | grep -o '[0-9]*$')
    check "stopped inside epoch $((${k:-0} + 1)) of 16 (try $try), saved as of the end of epoch ${k:-?}" \
        [ -n "$k" ] && [ "$k" -ge 2 ] && [ "$k" -lt 16 ]
    check "checkpoint written" [ -s "$T/int.safetensors" ]
    run sig_resume "$SP/sig.dino" --data "$T/d" --load "$T/int.safetensors" --save "$T/int.safetensors" --log "$T/int.csv" -q
    expect_rc sig_resume 0
    tool_check "interrupted in epoch $((${k:-0} + 1)), resumed with --load: the parameters of the uninterrupted run" \
        st_compare "$T/ref.safetensors" "$T/int.safetensors"
    if cmp -s <(strip_seconds "$T/ref.csv") <(strip_seconds "$T/int.csv"); then
        ok "the CSV of the interrupted and resumed run equals the uninterrupted one (seconds blanked)"
    else
        bad "the CSVs differ:"
        diff <(strip_seconds "$T/ref.csv") <(strip_seconds "$T/int.csv") | head -n 10 | sed 's/^/       /'
    fi
    signal_cuda
    # SIGTERM, no --save: says how to get a checkpoint next time
    "$JIT" "$SP/sig.dino" --data "$T/d" --log "$T/term.csv" >"$T/sigterm.out" 2>"$T/sigterm.err" &
    pid=$!
    wait_lines "$T/term.csv" 2
    kill -TERM $pid
    wait $pid
    RC=$?
    expect_rc sigterm 3
    stderr_has sigterm "training stopped on request" "nothing saved" "--save CKPT" "--load CKPT"
}

# The same on the CUDA backend (stand-in driver and NVRTC): the rewind pushes the epoch's start
# back to the device.
signal_cuda() {
    local FAKE="$BUILD/tests/libfake_cuda.so" NV="$BUILD/tests/libfake_nvrtc.so" pid
    if [ ! -f "$FAKE" ] || [ ! -f "$NV" ]; then
        echo "SKIP (visibly, not counted) the CUDA backend's check: the stand-in CUDA libraries are not built"
        return
    fi
    cat >"$SP/cu.dino" <<EOT
model cu {
    input  m[16]
    output q[9]
    q = mlp(m, 9, width = 32, depth = 2, act = tanh)
}
data { split train 320, test 80 }
loss { l2 q weight 1.0 relative; h1 dq/dm weight 1.0 relative }
train { optimizer adam(lr = 3e-3); batch 4; epochs 6; seed 0; eval every 2 }
EOT
    local G=(env DINO_CUDA_DRIVER="$FAKE" DINO_NVRTC="$NV" OMP_NUM_THREADS=1 "$JIT")
    "${G[@]}" "$SP/cu.dino" --data "$T/d" --backend cuda --save "$T/cref.st" --log "$T/cref.csv" >"$T/cu_ref.out" 2>"$T/cu_ref.err"
    RC=$?
    expect_rc cu_ref 0
    "${G[@]}" "$SP/cu.dino" --data "$T/d" --backend cuda --save "$T/cint.st" --log "$T/cint.csv" >"$T/cu_int.out" 2>"$T/cu_int.err" &
    pid=$!
    wait_lines "$T/cint.csv" 3
    kill -INT $pid
    wait $pid
    RC=$?
    expect_rc cu_int 3
    stderr_has cu_int "training stopped on request" "saved to $T/cint.st"
    "${G[@]}" "$SP/cu.dino" --data "$T/d" --backend cuda --save "$T/cint.st" --log "$T/cint.csv" --load "$T/cint.st" -q \
        >"$T/cu_resume.out" 2>"$T/cu_resume.err"
    RC=$?
    expect_rc cu_resume 0
    tool_check "CUDA backend: interrupted ($(grep -o 'in epoch [0-9]*\|after epoch [0-9]*' "$T/cu_int.err")), resumed: the uninterrupted run's parameters" \
        st_compare "$T/cref.st" "$T/cint.st"
    check "CUDA backend: and its CSV (seconds blanked)" cmp -s <(strip_seconds "$T/cref.csv") <(strip_seconds "$T/cint.csv")
}

group_unreached() {
    data || return
    cat >"$SP/dp.dino" <<EOT
model dp {
    input  m[16]
    output q[9]
    z0 = tanh(dense(m, 8))
    ode z = z0, t in [0, 1] {
        a     = tanh(dense(concat(z, t), 16))
        dz/dt = dense(a, 8)
        solver dopri5 rtol 1e-5 atol 1e-7 max_steps 2
    }
    q = dense(z, 9)
}
data { split train 320, test 80 }
loss { l2 q weight 1.0 relative }
train { batch 32; epochs 1; seed 0 }
EOT
    sed 's/max_steps 2/max_steps 30/' "$SP/dp.dino" >"$SP/dp30.dino"
    run dp_short "$SP/dp.dino" --epochs 0 --predict "$T/d/m_data.npy" --out "$T/dp_short"
    expect_rc dp_short 0
    stderr_has dp_short "warning:" "dp.dino:8: dopri5 did not reach t = 1 within max_steps 2 for 400 of the 400 rows" "raise max_steps"
    check "the outputs are still written (a warning)" [ -s "$T/dp_short/q.npy" ]
    run dp_strict "$SP/dp.dino" --epochs 0 --predict "$T/d/m_data.npy" --out "$T/dp_strict" --strict
    expect_rc dp_strict 1
    stderr_has dp_strict "error:" "did not reach t = 1" "for 400 of the 400 rows" "--strict"
    check "--strict writes nothing" [ ! -e "$T/dp_strict/q.npy" ]
    run dp_ok "$SP/dp30.dino" --epochs 0 --predict "$T/d/m_data.npy" --out "$T/dp_ok" --strict
    expect_rc dp_ok 0
    check "max_steps 30: no warning" sh -c "! grep -q 'did not reach' '$T/dp_ok.err'"
    # the CUDA backend reads the same gates (its prediction terms) on the stand-in driver
    local FAKE="$BUILD/tests/libfake_cuda.so" NV="$BUILD/tests/libfake_nvrtc.so"
    if [ ! -f "$FAKE" ] || [ ! -f "$NV" ]; then
        echo "SKIP (visibly, not counted) the CUDA backend's check: the stand-in CUDA libraries are not built"
        return
    fi
    DINO_CUDA_DRIVER=$FAKE DINO_NVRTC=$NV OMP_NUM_THREADS=1 run dp_cuda "$SP/dp.dino" --backend cuda --epochs 0 \
        --predict "$T/d/m_data.npy" --out "$T/dp_cuda" --strict
    expect_rc dp_cuda 1
    stderr_has dp_cuda "CUDA" "dp.dino:8: dopri5 did not reach t = 1 within max_steps 2 for 400 of the 400 rows" "--strict"
    DINO_CUDA_DRIVER=$FAKE DINO_NVRTC=$NV OMP_NUM_THREADS=1 run dp_cuda_ok "$SP/dp30.dino" --backend cuda --epochs 0 \
        --predict "$T/d/m_data.npy" --out "$T/dp_cuda_ok" --strict
    expect_rc dp_cuda_ok 0
}

group_zerorows() {
    data || return
    local r
    mkdir -p "$T/z"
    cp "$T/d/m_data.npy" "$T/d/J_data.npy" "$T/z/"
    python3 - "$SRC/tests/cli" "$T/d/q_data.npy" "$T/z/q_data.npy" <<'EOT'
import sys
sys.path.insert(0, sys.argv[1])
import npytool
dt, shape, v = npytool.npy_read(sys.argv[2])
for r in (3, 17, 40, 41, 42, 43, 44):   # 7 rows, all in the training split (rows 0-319)
    v[r * 9:(r + 1) * 9] = [0.0] * 9
npytool.npy_write(sys.argv[3], dt, shape, v)
EOT
    spec "$SP/z.dino" "" 2
    run zero_l2 "$SP/z.dino" --data "$T/z"
    expect_rc zero_l2 1
    stderr_has zero_l2 "$T/z/q_data.npy: 7 training rows are all zero (rows 3, 17, 40, 41, 42, ...)" "l2 term is relative" \
        "drop \`relative\`"
    check "reported at load: no epoch ran" sh -c "! grep -q '^epoch\\|not finite' '$T/zero_l2.err'"
    # without relative the same data trains
    sed 's/weight 1.0 relative/weight 1.0/' "$SP/z.dino" >"$SP/z_abs.dino"
    run zero_abs "$SP/z_abs.dino" --data "$T/z" -q
    expect_rc zero_abs 0
    # one all-zero Jacobian row under a relative h1
    cp "$T/d/q_data.npy" "$T/z/q_data.npy"
    python3 - "$SRC/tests/cli" "$T/d/J_data.npy" "$T/z/J_data.npy" <<'EOT'
import sys
sys.path.insert(0, sys.argv[1])
import npytool
dt, shape, v = npytool.npy_read(sys.argv[2])
n = shape[1] * shape[2]
v[5 * n:6 * n] = [0.0] * n
npytool.npy_write(sys.argv[3], dt, shape, v)
EOT
    run zero_h1 "$SP/z.dino" --data "$T/z"
    expect_rc zero_h1 1
    stderr_has zero_h1 "$T/z/J_data.npy: 1 training row is all zero (row 5)" "h1 term is relative"
}

group_help() {
    local DINOC="$BUILD/dinoc" v missing var flag
    for cmd in dinoc dino-jit; do
        v=$("$BUILD/$cmd" --version 2>&1)
        check "$cmd --version: version, commit, CUDA driver, NVRTC ($(printf '%s' "$v" | tr '\n' '|'))" \
            sh -c "printf '%s\n' \"\$1\" | grep -q '^$cmd [0-9]*\.[0-9]*\.[0-9]*\$' &&
                   printf '%s\n' \"\$1\" | grep -qE '^commit ([0-9a-f]{7,}(-dirty)?|unknown)\$' &&
                   printf '%s\n' \"\$1\" | grep -qE '^CUDA driver: ([0-9]+\.[0-9]+ \(|none found \()' &&
                   printf '%s\n' \"\$1\" | grep -qE '^NVRTC: ([0-9]+\.[0-9]+ \(|none found \()'" _ "$v"
    done
    if git -C "$SRC" rev-parse HEAD >/dev/null 2>&1; then
        # the build's commit (baked in when it was built) is HEAD or, for a build older than the
        # last commit, one of its ancestors
        local built
        built=$("$JIT" --version | sed -n 's/^commit \([0-9a-f]*\).*/\1/p')
        check "the commit ${built:-?} is the source tree's HEAD ($(git -C "$SRC" rev-parse --short=12 HEAD)) or an ancestor" \
            sh -c "[ -n '$built' ] && git -C '$SRC' merge-base --is-ancestor '$built' HEAD"
    fi
    if [ -f "$BUILD/tests/libfake_cuda.so" ]; then
        v=$(DINO_CUDA_DRIVER="$BUILD/tests/libfake_cuda.so" "$JIT" --version | grep '^CUDA driver')
        check "the stand-in driver's version is found: $v" [ "$v" = "CUDA driver: 12.4 ($BUILD/tests/libfake_cuda.so)" ]
    fi
    v=$(DINO_CUDA_DRIVER=/nonexistent/libcuda.so "$JIT" --version | grep '^CUDA driver')
    check "no driver: $v" [ "$v" = "CUDA driver: none found (/nonexistent/libcuda.so not found)" ]
    v=$(DINO_NVRTC=/nonexistent/libnvrtc.so CUDA_HOME=/nonexistent CUDA_PATH=/nonexistent LD_LIBRARY_PATH=/nonexistent \
        "$JIT" --version | grep '^NVRTC')
    echo "     (with DINO_NVRTC unloadable: $v)"
    # every variable the sources read is explained by dino-jit --help; those the compiler and
    # NVRTC read by dinoc --help too
    "$JIT" --help >"$T/jit_help.txt" 2>&1
    "$DINOC" --help >"$T/dinoc_help.txt" 2>&1
    local vars dvars
    vars=$(grep -ohE 'getenv\("[A-Z_0-9]+"\)' "$SRC"/compiler/*.c "$SRC"/runtime/*.c "$SRC"/api/*.c "$SRC"/cmd/*.c | sort -u |
        sed 's/getenv("\(.*\)")/\1/')
    dvars=$(grep -ohE 'getenv\("[A-Z_0-9]+"\)' "$SRC"/compiler/*.c "$SRC"/runtime/nvrtc.c "$SRC"/cmd/dinoc.c | sort -u |
        sed 's/getenv("\(.*\)")/\1/')
    check "the sources read at least 10 variables ($(echo $vars))" [ "$(echo "$vars" | wc -w)" -ge 10 ]
    missing=""
    for var in $vars; do grep -qw -- "$var" "$T/jit_help.txt" || missing="$missing $var"; done
    check "dino-jit --help explains every variable the sources read${missing:+ (missing:$missing)}" [ -z "$missing" ]
    missing=""
    for var in $vars; do grep -qw -- "$var" "$T/dinoc_help.txt" || missing="$missing $var"; done
    check "dinoc --help explains every variable too (those of dino-jit briefly)${missing:+ (missing:$missing)}" [ -z "$missing" ]
    # every flag each parser knows is in its --help
    missing=""
    for flag in $(grep -oE '"--[a-z]+"' "$SRC/cmd/dino_jit.c" | tr -d '"' | sort -u); do
        grep -q -- "$flag" "$T/jit_help.txt" || missing="$missing $flag"
    done
    check "dino-jit --help names every flag of cmd/dino_jit.c${missing:+ (missing:$missing)}" [ -z "$missing" ]
    missing=""
    for flag in $(grep -oE '"--?[a-z]+"' "$SRC/cmd/dinoc.c" | tr -d '"' | sort -u); do
        grep -q -- "$flag" "$T/dinoc_help.txt" || missing="$missing $flag"
    done
    check "dinoc --help names every flag of cmd/dinoc.c${missing:+ (missing:$missing)}" [ -z "$missing" ]
    # dinoc --math (issue 19): fast puts the fast f32 activations in the C and CUDA code, precise
    # and the default leave it as it was; a bad value is refused
    local P="$SRC/specs/poisson.dino"
    "$DINOC" "$P" --target c >"$T/m_default.c" 2>&1 && "$DINOC" "$P" --target c --math precise >"$T/m_precise.c" 2>&1 &&
        "$DINOC" "$P" --target c --math fast >"$T/m_fast.c" 2>&1 && "$DINOC" "$P" --math fast >"$T/m_fast.cu" 2>&1
    check "dinoc --math precise: the default code" cmp -s "$T/m_default.c" "$T/m_precise.c"
    check "dinoc --math fast: the C and CUDA code use the fast activations" \
        sh -c "grep -q 'DINO_FAST_ACTIVATION_ROWS(DINO_ACT_FUNCTIONS, _)' '$T/m_fast.c' &&
               grep -q '__expf' '$T/m_fast.cu' && ! grep -q 'fast_exp' '$T/m_default.c'"
    "$DINOC" "$P" --math quick >"$T/m_bad.out" 2>&1
    local bad_rc=$?
    check "dinoc --math quick: exit 1 with the reason" \
        sh -c "[ $bad_rc -eq 1 ] && grep -q \"math must be precise or fast, not 'quick'\" '$T/m_bad.out'"
    # and the man pages, which cmake --install installs (tests/install/run.sh checks that)
    for cmd in dinoc dino-jit; do
        missing=""
        for var in $vars; do
            [ "$cmd" = dinoc ] && ! echo "$dvars" | grep -qw "$var" && continue
            grep -qw -- "$var" "$SRC/docs/man/$cmd.1" || missing="$missing $var"
        done
        check "docs/man/$cmd.1 names the variables${missing:+ (missing:$missing)}" [ -z "$missing" ]
    done
}

group_cachecmd() {
    local C="$T/cc_cache" out
    mkdir -p "$C"
    printf '%s\n' "model tiny {" "    input  m[16]" "    output q[9]" "    q = dense(tanh(dense(m, 8)), 9)" "}" >"$T/tiny.dino"
    sed 's/dense(m, 8)/dense(m, 7)/' "$T/tiny.dino" >"$T/tiny7.dino"
    echo "not an entry" >"$C/notes.txt"
    DINO_CFLAGS=-O0 DINO_CACHE_DIR="$C" run cc1 "$T/tiny.dino" --epochs 0 -q
    DINO_CFLAGS=-O0 DINO_CACHE_DIR="$C" run cc2 "$T/tiny7.dino" --epochs 0 -q
    out=$(DINO_CACHE_DIR="$C" "$JIT" --cache info 2>&1)
    check "--cache info: '$out' names the folder and 2 entries" sh -c "printf '%s' '$out' | grep -q '^$C: 2 entries, '"
    out=$(DINO_CACHE_DIR="$C" DINO_CACHE_MAX_MB=7 "$JIT" --cache info 2>&1)
    check "--cache info gives the cap ($out)" sh -c "printf '%s' '$out' | grep -q 'limit 7.0 MiB'"
    out=$(DINO_CACHE_DIR="$C" "$JIT" --cache clear 2>&1)
    check "--cache clear: '$out'" sh -c "printf '%s' '$out' | grep -q '^removed 2 entries'"
    check "the entries are gone, the other file stays" [ "$(ls "$C")" = notes.txt ]
    out=$(DINO_CACHE_DIR="$C" "$JIT" --cache info 2>&1)
    check "--cache info after clear: '$out'" sh -c "printf '%s' '$out' | grep -q ': 0 entries, 0.0 MiB'"
    run cache_bad --cache purge
    expect_rc cache_bad 1
    stderr_has cache_bad "--cache must be info or clear"
    run cache_spec "$T/tiny.dino" --cache info
    expect_rc cache_spec 1
    # the CUDA cache: a damaged CUBIN is rebuilt with a note (stand-in driver and NVRTC)
    local FAKE="$BUILD/tests/libfake_cuda.so" NV="$BUILD/tests/libfake_nvrtc.so" cubin
    if [ ! -f "$FAKE" ] || [ ! -f "$NV" ]; then
        echo "SKIP (visibly, not counted) the CUBIN note: the stand-in CUDA libraries are not built"
        return
    fi
    mkdir -p "$T/cu_cache"
    DINO_CUDA_DRIVER=$FAKE DINO_NVRTC=$NV DINO_CACHE_DIR="$T/cu_cache" run cu1 "$T/tiny.dino" --backend cuda --epochs 0
    expect_rc cu1 0
    cubin=$(ls "$T"/cu_cache/cuda-*.cubin 2>/dev/null | head -n 1)
    check "a CUBIN in the cache ($cubin)" [ -n "$cubin" ]
    [ -n "$cubin" ] && head -c 100 "$cubin" >"$T/x.cubin" && mv "$T/x.cubin" "$cubin"
    DINO_CUDA_DRIVER=$FAKE DINO_NVRTC=$NV DINO_CACHE_DIR="$T/cu_cache" run cu2 "$T/tiny.dino" --backend cuda --epochs 0
    expect_rc cu2 0
    stderr_has cu2 "dino-jit: note: the cache entry $cubin was damaged" "rebuilding it"
}
