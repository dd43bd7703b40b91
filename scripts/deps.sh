#!/usr/bin/env bash
# Installs what building and testing dino needs on a fresh Debian/Ubuntu machine, when it is
# missing: a C compiler, CMake, flex, bison, zlib, LAPACKE and OpenBLAS; OpenMPI; python3 (with venv) for the
# hostile-input and the Python package's tests; clang for the parser fuzzer. Does nothing when everything
# is already there.
set -euo pipefail

need=()
command -v cc     >/dev/null 2>&1 || need+=(gcc libc6-dev)
command -v make   >/dev/null 2>&1 || need+=(make)
command -v cmake  >/dev/null 2>&1 || need+=(cmake)
command -v flex   >/dev/null 2>&1 || need+=(flex)
command -v bison  >/dev/null 2>&1 || need+=(bison)
command -v python3 >/dev/null 2>&1 || need+=(python3)
# the Python package's tests and `pip install .` need venv (Debian splits ensurepip off)
command -v python3 >/dev/null 2>&1 && python3 -c "import ensurepip" 2>/dev/null || need+=(python3-venv)
# Python's headers for the package's C extension (dino._fast); without them it works through ctypes
command -v python3 >/dev/null 2>&1 && [ -f "$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["include"])' 2>/dev/null)/Python.h" ] ||
    need+=(python3-dev)
[ -f /usr/include/zlib.h ] || need+=(zlib1g-dev)
any_file() { for f in "$@"; do [ -e "$f" ] && return 0; done; return 1; }   # globs expanded by the caller
any_file /usr/include/lapacke.h || need+=(liblapacke-dev)
# OpenBLAS: its config header (cblas.h may come from another BLAS)
any_file /usr/include/*/openblas_config.h /usr/include/*/openblas*/openblas_config.h /usr/include/openblas/openblas_config.h || need+=(libopenblas-dev)
# OpenMPI: data-parallel training under mpirun and its tests (the build works without it)
any_file /usr/lib/*/openmpi/include/mpi.h /usr/include/*/openmpi/mpi.h /usr/include/mpi.h || need+=(libopenmpi-dev)
command -v mpirun >/dev/null 2>&1 || need+=(openmpi-bin)
if [ "${DINO_WITH_CLANG:-1}" = 1 ]; then
    command -v clang >/dev/null 2>&1 || need+=(clang)
fi
[ ${#need[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
    echo "dino: please install: ${need[*]}" >&2
    exit 1
fi
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
echo "dino: installing ${need[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
