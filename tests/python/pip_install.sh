#!/usr/bin/env bash
# ctest's `python_pip_install` test: `pip install .` from the repository into a fresh virtual
# environment (build dependencies and numpy from PyPI), then the installed package, found
# without DINO_LIBRARY, checks a spec, reports an error with its location and predicts, through
# its C extension (dino._fast, installed with it) and through ctypes.
# usage: pip_install.sh PYTHON SOURCE_DIR. Exit 77 (SKIP) when PYTHON can't make a venv.
set -eu
py=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if ! "$py" -m venv "$tmp/venv" >/dev/null 2>&1; then
    echo "SKIP: $py -m venv failed (Debian: apt-get install python3-venv)"
    exit 77
fi
"$tmp/venv/bin/pip" install -q --disable-pip-version-check "$src"
cd "$tmp"   # not the source tree: the installed package is the one imported
unset DINO_LIBRARY PYTHONPATH
export DINO_CACHE_DIR="$tmp/cache"
"$tmp/venv/bin/python" - "$src" <<'PY'
import sys, numpy as np, dino
src = sys.argv[1]
assert "site-packages" in dino.__file__, dino.__file__
# the C extension was built and installed with the package (else import warned and fell back)
assert dino.extension and "site-packages" in dino.extension, dino.extension
info = dino.check(f"{src}/specs/poisson.dino")
assert (info.in_dim, info.out_dim) == (64, 16)
open("bad.dino", "w").write("model m {\n    input x[4]\n    output y[2]\n    y = dense(zz, 2)\n}\n")
try:
    dino.check("bad.dino")
    raise SystemExit("no SpecError")
except dino.SpecError as e:
    assert (e.file, e.line, e.column) == ("bad.dino", 4, 15), (e.file, e.line, e.column)
m = dino.load(f"{src}/specs/poisson.dino", backend="cpu")
y, J = m.value_and_jacobian(np.zeros(64))
assert y.shape == (16,) and J.shape == (16, 64) and np.all(np.isfinite(J))
m._fast = None   # the ctypes path gives the same bits
y2, J2 = m.value_and_jacobian(np.zeros(64))
assert np.array_equal(y, y2) and np.array_equal(J, J2)
print("installed", dino.__file__, "libdino", dino.library_version(), m.backend_name, "extension", dino.extension)
PY
