"""The ratio table of bench/python_latency/run.sh from its JSON lines (stdin): per precision,
dino's value + Jacobian against JAX's and PyTorch's, by the best and by the median per-call time
over all rounds (best: the smallest mean of a batch of calls; median: the median over rounds of
each round's median), and libdino's own time (predict_loop) for the Python layer's share."""
import json
import statistics
import sys

rows = [json.loads(line) for line in sys.stdin if line.startswith("{")]


def pick(impl, what):
    r = [x for x in rows if x["impl"] == impl and x["what"] == what]
    if not r:
        return None
    return min(x["min_us"] for x in r), statistics.median(x.get("median_us", x["min_us"]) for x in r), len(r)


def fmt(v):
    return f"{v[0]:8.1f} {v[1]:8.1f}" if v else f"{'-':>8} {'-':>8}"


print("| precision | call | best us | median us | rounds |")
print("|---|---|---|---|---|")
for p in ("f32", "f64"):
    for impl, what in (("dino", f"value+jacobian {p}"), ("dino", f"value+jacobian {p}, f32 input"),
                       ("dino", f"value+jacobian {p}, ctypes path"), ("dino", f"value {p}"),
                       ("libdino", f"value+jacobian {p}"),
                       ("libdino", f"value+jacobian {p}, f32 input (dino_predict_f32)"),
                       ("jax", f"value+jacobian {p}"), ("pytorch", f"value+jacobian {p}")):
        v = pick(impl, what)
        if v:
            label = what.replace(f"value+jacobian {p}", "y, J").replace(f"value {p}", "y alone")
            print(f"| {p} | {impl}: {label} | {v[0]:.1f} | {v[1]:.1f} | {v[2]} |")
print()
print("| precision | JAX / dino, best | JAX / dino, median | PyTorch / dino, best | PyTorch / dino, median |"
      " target |")
print("|---|---|---|---|---|---|")
for p in ("f32", "f64"):
    d = pick("dino", f"value+jacobian {p}")
    cells = []
    for other in ("jax", "pytorch"):
        o = pick(other, f"value+jacobian {p}")
        cells += [f"{o[0] / d[0]:.1f}x", f"{o[1] / d[1]:.1f}x"] if o and d else ["-", "-"]
    print(f"| {p} | " + " | ".join(cells) + " | 5x |")
print()
for p in ("f32", "f64"):
    d, c = pick("dino", f"value+jacobian {p}"), pick("libdino", f"value+jacobian {p}")
    if d and c:
        print(f"{p}: the Python package adds {d[0] - c[0]:.1f} us (best) to libdino's own {c[0]:.1f} us")
