"""What the three latency benchmarks share: the checkpoint's weights as NumPy arrays (a
safetensors reader in a few lines, so that the baselines need neither dino nor safetensors),
the network of specs/poisson.dino, and the timing loop."""
import json
import struct
import sys
import time

import numpy as np

DTYPES = {"F32": np.float32, "F64": np.float64}
LAYERS = 4   # q = mlp(m, 16, width = 128, depth = 3, act = gelu): 3 hidden gelu layers, 1 linear


def read_safetensors(path):
    """{name: array} of a safetensors file (the parameters; dino's '__' training state skipped)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        blob = f.read()
    out = {}
    for name, t in header.items():
        if name.startswith("__"):
            continue
        a, b = t["data_offsets"]
        out[name] = np.frombuffer(blob[a:b], dtype=DTYPES[t["dtype"]]).reshape(t["shape"])
    return out


def weights(path):
    """[(W [out, in], b [out])] for the 4 layers of q = mlp(m, ...), as dino stores them."""
    p = read_safetensors(path)
    return [(p[f"q.{i}.weight"], p[f"q.{i}.bias"]) for i in range(LAYERS)]


def per_call_us(fn, calls=400, repeats=15):
    """Wall-clock time of one call, median and minimum over `repeats` means of `calls` calls, and
    the process's CPU time per call (all its threads) over all of them, in microseconds. On a
    machine shared with other jobs the CPU time is the steadier measure: it does not count the
    time the process waits for a core."""
    for _ in range(50):
        fn()
    times = []
    cpu = time.process_time()
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - t) / calls * 1e6)
    cpu = (time.process_time() - cpu) / (calls * repeats) * 1e6
    return float(np.median(times)), float(np.min(times)), cpu


def report(name, what, median, best, cpu, **extra):
    print(json.dumps({"impl": name, "what": what, "median_us": round(median, 2), "min_us": round(best, 2),
                      "cpu_us": round(cpu, 2), "python": sys.version.split()[0], **extra}), flush=True)
