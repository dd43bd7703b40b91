#!/bin/sh
# run_cuda_golden.sh DINOC SPEC GOLDEN - the CUDA golden; the same as
# `run_codegen_golden.sh DINOC cuda SPEC GOLDEN` (see there; DINO_REGEN=1 rewrites GOLDEN).
if [ $# -ne 3 ]; then
    echo "usage: $0 DINOC SPEC GOLDEN" >&2
    exit 2
fi
exec sh "$(dirname "$0")/run_codegen_golden.sh" "$1" cuda "$2" "$3"
