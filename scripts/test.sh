#!/usr/bin/env bash
# The test command (README, .ci/run): installs what is missing, builds, runs every test with
# ctest, then builds again with AddressSanitizer and UndefinedBehaviorSanitizer and runs the
# tests once more. Exits non-zero if anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh

jobs=$(nproc 2>/dev/null || echo 2)
# The Python package's tests (tests/python) run in a virtual environment with numpy and pytest
# from PyPI, made once in build/python-venv.
venv=build/python-venv
if ! "$venv/bin/python" -c "import numpy, pytest" 2>/dev/null; then
    echo "== python: a virtual environment with numpy and pytest =="
    mkdir -p build
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check numpy pytest
fi
echo "== build (release) =="
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDINO_PYTHON="$PWD/$venv/bin/python" >/dev/null
cmake --build build -j "$jobs"
echo "== tests (release) =="
(cd build && ctest --output-on-failure -j "$jobs")

echo "== build (address + undefined behaviour sanitizers) =="
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DDINO_SANITIZE=ON >/dev/null
cmake --build build-asan -j "$jobs"
echo "== tests (sanitizers) =="
(cd build-asan && ctest --output-on-failure -j "$jobs")
