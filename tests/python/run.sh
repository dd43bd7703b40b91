#!/usr/bin/env bash
# ctest's `python` test: the package's pytest suite (tests/python) on the build's libdino.
# usage: run.sh PYTHON SOURCE_DIR BUILD_DIR LIBDINO DINO_JIT DINO_GEN_POISSON
# Exit 77 (SKIP) when PYTHON lacks numpy or pytest (scripts/test.sh installs them in a virtual
# environment); pytest's "no tests ran" (exit 5) is a failure, not a pass.
set -u
py=$1 src=$2 build=$3
if ! "$py" -c "import numpy, pytest" 2>/dev/null; then
    echo "SKIP: $py has no numpy or pytest (scripts/test.sh makes a virtual environment with them)"
    exit 77
fi
export DINO_LIBRARY="$4" DINO_JIT="$5" DINO_GEN_POISSON="$6"
export DINO_CACHE_DIR="$build/cache" PYTHONPATH="$src/python${PYTHONPATH:+:$PYTHONPATH}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$py" -m pytest -v -p no:cacheprovider --basetemp "$tmp/t" "$src/tests/python"
rc=$?
if [ $rc -eq 5 ]; then
    echo "FAIL: pytest collected no tests"
    exit 1
fi
exit $rc
