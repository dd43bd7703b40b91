#!/usr/bin/env bash
# Per-call latency from Python of one sample's value + Jacobian of specs/poisson.dino: dino's
# Python package against PyTorch (torch.func.jacrev) and JAX (jax.jit(jax.jacrev)) on the same
# network with the weights of the same dino checkpoint. One JSON line per measurement.
#
# usage: bench/python_latency/run.sh [THREADS]          (default 1 thread for every framework)
# env:   BUILD (default build), TORCH_PYTHON (default /usr/bin/python3: Debian's python3-torch),
#        JAX_PYTHON (default build/jax-venv/bin/python: `python3 -m venv build/jax-venv &&
#        build/jax-venv/bin/pip install jax`), DINO_PYTHON (default python3; the build's C
#        extension must be for its version), ROUNDS (default 3: every framework once per round,
#        in turn, so that a change of the machine's load touches all). A framework whose
#        Python is missing is skipped. libdino alone, without Python: predict_loop.c, built
#        and run here too. Ends with a table of the ratios (summary.py) and the load averages.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
threads=${1:-1}
build=$(cd "${BUILD:-$root/build}" && pwd)
torch_py=${TORCH_PYTHON:-/usr/bin/python3}
jax_py=${JAX_PYTHON:-$root/build/jax-venv/bin/python}
work=$build/bench_python_latency
mkdir -p "$work"
export DINO_LIBRARY=$build/libdino.so DINO_CACHE_DIR=$build/cache PYTHONPATH=$root/python:$here
export OMP_NUM_THREADS=$threads
export XLA_FLAGS="--xla_cpu_multi_thread_eigen=$([ "$threads" = 1 ] && echo false || echo true) intra_op_parallelism_threads=$threads"

spec=$root/specs/poisson.dino
ckpt=$work/poisson.safetensors
if [ ! -f "$ckpt" ]; then   # the trained surrogate of scripts/example.sh (60 epochs)
    [ -f "$work/data/J_data.npy" ] || "$build/dino-gen-poisson" --out "$work/data" -q
    "$build/dino-jit" "$spec" --data "$work/data" --save "$ckpt" -q
fi
x=$work/data/m_data.npy
dino_py=${DINO_PYTHON:-python3}
rounds=${ROUNDS:-3}
cc -O2 -I"$root/include" "$here/predict_loop.c" -L"$build" -ldino -Wl,-rpath,"$build" -o "$work/predict_loop"
out=$work/results.jsonl
load0=$(cut -d' ' -f1-3 /proc/loadavg)
echo "# $(date -u '+%F %T') commit $(git -C "$root" rev-parse --short HEAD) $(lscpu | sed -n 's/^Model name: *//p'), $(nproc --all) cores, load $load0, threads $threads, $rounds rounds" | tee "$out"
for r in $(seq "$rounds"); do
    echo "# round $r, load $(cut -d' ' -f1-3 /proc/loadavg)"
    for p in f32 f64; do "$work/predict_loop" "$spec" "$ckpt" $p; done
    "$dino_py" "$here/bench_dino.py" "$spec" "$ckpt" "$x" "$work/J_dino.npy"
    if "$torch_py" -c "import torch" 2>/dev/null; then
        "$torch_py" "$here/bench_torch.py" "$ckpt" "$x" "$work/J_dino.npy" "$threads"
    else
        echo "# SKIP PyTorch: $torch_py has no torch (apt-get install python3-torch)"
    fi
    if "$jax_py" -c "import jax" 2>/dev/null; then
        "$jax_py" "$here/bench_jax.py" "$ckpt" "$x" "$work/J_dino.npy"
    else
        echo "# SKIP JAX: $jax_py has no jax"
    fi
done | tee -a "$out"
echo "# load average (1, 5, 15 min): $load0 at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end"
echo
python3 "$here/summary.py" <"$out"
