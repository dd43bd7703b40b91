"""dino: one sample of specs/poisson.dino, value + Jacobian through the Python package (its C
extension dino._fast when it is there), and the same call through the ctypes path.
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
           backend=model.backend_name, extension=dino.extension is not None)
    report("dino", f"value {precision}", *per_call_us(lambda: model(x)))
    x32 = x.astype(np.float32)
    report("dino", f"value+jacobian {precision}, f32 input", *per_call_us(lambda: model.value_and_jacobian(x32)))
    if model._fast is not None:   # the ctypes path, for the breakdown of the Python layer's time
        fast, model._fast = model._fast, None
        report("dino", f"value+jacobian {precision}, ctypes path", *per_call_us(lambda: model.value_and_jacobian(x)))
        model._fast = fast
    model.close()
