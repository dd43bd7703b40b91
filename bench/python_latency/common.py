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
    """Median and minimum over repeats of the mean time of one call in `calls`, in microseconds."""
    for _ in range(50):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - t) / calls * 1e6)
    return float(np.median(times)), float(np.min(times))


def report(name, what, median, best, **extra):
    print(json.dumps({"impl": name, "what": what, "median_us": round(median, 2), "min_us": round(best, 2),
                      "python": sys.version.split()[0], **extra}), flush=True)
