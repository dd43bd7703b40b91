"""dino: one sample of specs/poisson.dino, value + Jacobian through the Python package.
usage: bench_dino.py SPEC CKPT X.npy OUT_J.npy"""
import sys

import numpy as np

import dino
from common import per_call_us, report

spec, ckpt, xfile, jfile = sys.argv[1:5]
x = np.load(xfile)[0]
for precision in ("f32", "f64"):
    model = dino.load(spec, ckpt, backend="cpu", precision=precision)
    y, J = model.value_and_jacobian(x)
    if precision == "f32":
        np.save(jfile, J)
    report("dino", f"value+jacobian {precision}", *per_call_us(lambda: model.value_and_jacobian(x)),
           backend=model.backend_name)
    report("dino", f"value {precision}", *per_call_us(lambda: model(x)))
    x32 = x.astype(np.float32)
    report("dino", f"value+jacobian {precision}, f32 input", *per_call_us(lambda: model.value_and_jacobian(x32)))
    model.close()
