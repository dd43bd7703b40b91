#!/bin/sh
# run_hostile.sh - dinoc against inputs meant to break a front end.
#
#   tests/run_hostile.sh DINOC
#
# The inputs (empty, garbage, 10 MB, 10,000-deep nesting, NUL bytes, ...) are generated into a
# temporary folder at run time by one python3 program, deterministically (fixed seed). For each
# case dinoc runs with --check under `timeout $DINO_HOSTILE_LIMIT` (seconds, default 10; the
# sanitizer build sets 60: the 10 MB spec takes 1 s in a release build, about 8 s under ASan,
# more on a loaded machine); the exit status must be exactly the one
# expected (1 for a bad spec, 0 for a valid one; never a signal, a sanitizer report or a hang),
# and a rejected spec must say `error:` on stderr. Prints one line per case, then
# "hostile: N passed, N failed"; exits 1 if any failed.
set -u

if [ $# -ne 1 ]; then
    echo "usage: $0 DINOC" >&2
    exit 2
fi
dinoc=$1
case $dinoc in /*) ;; *) dinoc=$(pwd)/$dinoc ;; esac
if [ ! -x "$dinoc" ]; then
    echo "run_hostile: '$dinoc' is not an executable" >&2
    exit 2
fi
command -v python3 >/dev/null || { echo "run_hostile: needs python3" >&2; exit 2; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/dino_hostile.XXXXXX") || exit 2
trap 'chmod -R u+rwx "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
cd "$tmp" || exit 2

# --------------------------------------------------------------------------- the inputs
python3 - <<'EOF' || { echo "run_hostile: could not generate the inputs" >&2; exit 2; }
import os, random
random.seed(12345)
MODEL = b"model m {\n    input  x[4]\n    output y[4]\n    y = x\n}\n"
HEAD = b"model m {\n input x[4]\n output y[4]\n"

def w(name, data):
    with open(name, "wb") as f:
        f.write(data)

# empty and trivial
w("empty.dino", b"")
w("comments.dino", b"# only a comment\n\n   # another one\n")
w("blank.dino", b"\n\n\n;;;\n")
w("valid.dino", MODEL)
w("no_newline.dino", MODEL[:-1])
w("crlf.dino", MODEL.replace(b"\n", b"\r\n"))
w("crlf_err.dino", MODEL.replace(b"y = x", b"y = tahn(x)").replace(b"\n", b"\r\n"))
w("bom.dino", b"\xef\xbb\xbf" + MODEL)
w("bom_late.dino", b"\xef\xbb\xbf" + MODEL + b"\xef\xbb\xbf\n")
# garbage
w("garbage.dino", bytes(random.getrandbits(8) for _ in range(100000)))
w("printable.dino", bytes(random.choice(b"model{}[]()=+-*/,;#\"\\ \n\tabcxyz0123456789.e") for _ in range(200000)))
w("nonutf8.dino", HEAD + b" y = x \xff\xfe\xc3\x28 + \x80\n \xe2\x82 = x\n}\n")
w("nul.dino", b"model m {\n input x[4]\x00\n output y[4]\n y = x\n}\n\x00")
w("nulstr.dino", MODEL + b"data { x = npy(\"a\x00b.npy\") }\n")
w("elf.dino", b"\x7fELF\x02\x01\x01" + bytes(range(256)) * 40)
# unterminated things at the end of the file
w("unterminated_string.dino", MODEL + b"data {\n    x = npy(\"x_data.npy")
w("comment_eof.dino", MODEL + b"# a comment at the very end, no newline")
w("open_paren_eof.dino", HEAD + b" y = tanh(x")
w("open_brace_eof.dino", HEAD + b" y = x")
w("backslash_eof.dino", MODEL + b"\\")
# size
note = b"   # a comment to make the file 10 MB"
lines = [HEAD + b" h0 = x"] + [b" h%d = h%d + x%s" % (i, i - 1, note) for i in range(1, 250000)] + [b" y = h249999\n}\n"]
w("big_statements.dino", b"\n".join(lines))
w("big_line.dino", b"# " + b"x" * 10000000 + b"\n" + MODEL)
w("big_name.dino", HEAD + b" y = x + " + b"a" * 1000000 + b"\n}\n")
w("big_errors.dino", b"model m {\n" + b"    h = ) dense\n" * 100000 + b"}\n")
w("big_unknown.dino", HEAD + b"".join(b" h%d = x + nothing%d\n" % (i, i) for i in range(100000)) + b" y = x\n}\n")
w("too_big.dino", b"#" * (70 << 20))
# nesting
w("parens.dino", HEAD + b" y = " + b"(" * 10000 + b"x" + b")" * 10000 + b"\n}\n")
w("parens_ok.dino", HEAD + b" y = " + b"(" * 150 + b"x" + b")" * 150 + b"\n}\n")
w("negs.dino", HEAD + b" y = " + b"-" * 10000 + b"x\n}\n")
w("negs_spaced.dino", HEAD + b" y = " + b"- " * 10000 + b"x\n}\n")
w("calls.dino", HEAD + b" y = " + b"tanh(" * 10000 + b"x" + b")" * 10000 + b"\n}\n")
w("lists.dino", MODEL + b"train { schedule step(at = " + b"[" * 10000 + b"0.5" + b"]" * 10000 + b") }\n")
w("braces.dino", b"model m {\n" * 10000)
w("chain.dino", HEAD + b" y = x" + b" + x" * 1000000 + b"\n}\n")
w("chain_ok.dino", HEAD + b" y = x" + b" + x" * 150 + b"\n}\n")
w("concat.dino", b"model m {\n input x[1]\n output y[1]\n h = concat(x" + b", x" * 100000 + b")\n y = dense(h, 1)\n}\n")
w("kwargs.dino", HEAD + b" y = dense(x, 4" + b", bias = true" * 200000 + b")\n}\n")
w("kwargs_unknown.dino", HEAD + b" y = dense(x, 4" + b", bais = true" * 200000 + b")\n}\n")
ts = b", ".join(b"%g" % (i / 100000) for i in range(100001))
w("partition.dino", HEAD + b" ode y = x, t in [0, 1] {\n  dy/dt = tanh(y)\n  solver euler steps 100000\n"
  b"  pint parareal {\n   partition [" + ts + b"]\n   iterations 2\n   coarse euler steps 1\n   fine euler steps 1\n  }\n }\n}\n")
w("widths.dino", HEAD + b" y = mlp(x, 4, widths = [" + b"4, " * 100000 + b"4])\n}\n")
ts = b", ".join(b"%d" % i for i in range(200001))
w("partition_big.dino", HEAD + b" ode y = x, t in [0, 200000] {\n  dy/dt = tanh(y)\n  solver euler steps 200000\n"
  b"  pint parareal {\n   partition [" + ts + b"]\n   iterations 2\n   coarse euler steps 1\n   fine euler steps 1\n  }\n }\n}\n")
w("sections.dino", MODEL + b"train { batch 1 }\n" * 100000)
# numbers
w("num_inf.dino", b"model m {\n input x[1e999]\n output y[4]\n y = dense(x, 4)\n}\n")
w("num_size.dino", b"model m {\n input x[99999999999999999999]\n output y[4]\n y = dense(x, 4)\n}\n")
w("num_overflow.dino", HEAD + b" y = x * (1e308 * 1e308)\n}\n")
w("num_tiny.dino", HEAD + b" y = x * 1e-400\n}\n")
w("num_train.dino", MODEL + b"train {\n epochs 1e300\n seed 99999999999999999999\n batch -1e300\n}\n")
w("num_digits.dino", b"model m {\n input x[" + b"0" * 1000000 + b"4]\n output y[4]\n y = x\n}\n")
w("num_ast.dino", HEAD + b" y = x * 1e300 + x * -1e300 + x * 99999999999999999999\n}\n")
w("num_dims.dino", b"model m {\n input x[16777216]\n output y[16777216]\n y = tanh(x) + x\n}\n")
w("num_layer.dino", b"model m {\n input x[16777216]\n output y[4]\n h = dense(x, 100000)\n y = dense(h, 4)\n}\n")
w("num_params.dino", b"model m {\n input x[16777216]\n output y[16777216]\n h0 = x\n"
  + b"".join(b" h%d = dense(h%d, 16777216)\n" % (i, i - 1) for i in range(1, 101)) + b" y = h100\n}\n")
os.mkdir("adir.dino")
w("unreadable.dino", MODEL)
EOF

# --------------------------------------------------------------------------- the checks
pass=0
fail=0

# check NAME WANT FILE [ARGS...]: runs `dinoc FILE --check ARGS` and judges the result.
check() {
    name=$1 want=$2 file=$3
    shift 3
    start=$(date +%s%N)
    timeout "${DINO_HOSTILE_LIMIT:-10}" "$dinoc" "$file" --check "$@" >"$name.out" 2>"$name.err"
    got=$?
    ms=$((($(date +%s%N) - start) / 1000000))
    why=""
    if [ "$got" -eq 124 ]; then why="hung (killed after ${DINO_HOSTILE_LIMIT:-10} s)"
    elif [ "$got" -ge 128 ]; then why="killed by signal $((got - 128))"
    elif grep -q 'runtime error\|AddressSanitizer\|LeakSanitizer' "$name.err"; then why="sanitizer report"
    elif [ "$got" -ne "$want" ]; then why="exit status $got, expected $want"
    elif [ "$want" -ne 0 ] && ! grep -q 'error:' "$name.err"; then why="no 'error:' on stderr"
    elif [ "$want" -eq 0 ] && [ -s "$name.err" ]; then why="stderr not empty"
    fi
    if [ -z "$why" ]; then
        pass=$((pass + 1))
        printf 'ok    %-28s exit %d %6d ms\n' "$name" "$got" "$ms"
    else
        fail=$((fail + 1))
        printf 'FAIL  %-28s %s\n' "$name" "$why"
        head -c 2000 "$name.err" | sed 's/^/      | /'
    fi
}

check empty                   1 empty.dino
check only_comments           1 comments.dino
check only_separators         1 blank.dino
check valid_spec              0 valid.dino
check no_trailing_newline     0 no_newline.dino
check crlf_line_ends          0 crlf.dino
check crlf_with_error         1 crlf_err.dino
check utf8_bom                0 bom.dino
check utf8_bom_not_first      1 bom_late.dino

check random_bytes_100k       1 garbage.dino
check random_tokens_200k      1 printable.dino
check non_utf8                1 nonutf8.dino
check nul_bytes               1 nul.dino
check nul_in_string           1 nulstr.dino
check binary_header           1 elf.dino

check unterminated_string_eof 1 unterminated_string.dino
check comment_at_eof          0 comment_eof.dino
check open_paren_at_eof       1 open_paren_eof.dino
check open_brace_at_eof       1 open_brace_eof.dino
check backslash_at_eof        1 backslash_eof.dino

check statements_250k_10MB    0 big_statements.dino
check one_10MB_comment_line   0 big_line.dino
check name_1MB_long           1 big_name.dino
check syntax_errors_100k      1 big_errors.dino
check unknown_names_100k      1 big_unknown.dino
check file_over_64MB          1 too_big.dino

check parens_10000_deep       1 parens.dino
check parens_150_deep         0 parens_ok.dino
check minus_10000_deep        1 negs.dino
check minus_spaced_10000_deep 1 negs_spaced.dino
check calls_10000_deep        1 calls.dino
check lists_10000_deep        1 lists.dino
check braces_10000_open       1 braces.dino
check sum_1000000_terms       1 chain.dino
check sum_150_terms           0 chain_ok.dino
check concat_100001_args      0 concat.dino
check keyword_args_200000     1 kwargs.dino
check unknown_kwargs_200000   1 kwargs_unknown.dino
check partition_100000_slices 0 partition.dino
check mlp_100001_widths       1 widths.dino
check partition_200000_slices 1 partition_big.dino
check sections_100000         1 sections.dino

check number_1e999            1 num_inf.dino
check size_1e20               1 num_size.dino
check constant_overflow       1 num_overflow.dino
check number_1e-400           0 num_tiny.dino
check train_numbers_huge      1 num_train.dino
check number_1MB_of_digits    0 num_digits.dino
check huge_numbers_emit_ast   0 num_ast.dino --emit ast
check dims_at_limit           0 num_dims.dino
check layer_1.6e12_weights    1 num_layer.dino
check params_past_limit       1 num_params.dino

check missing_file            1 "$tmp/does_not_exist.dino"
check directory               1 adir.dino
if [ "$(id -u)" -ne 0 ]; then
    chmod 000 unreadable.dino
    check unreadable_file     1 unreadable.dino
else
    echo "skip  unreadable_file                (running as root, which can read any file)"
fi
check dev_null                1 /dev/null
check dev_zero                1 /dev/zero
check unknown_flag            1 valid.dino --no-such-flag

echo "hostile: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
