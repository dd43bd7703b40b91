"""PyTorch: the same network with the checkpoint's weights, value + Jacobian of one sample by
torch.func.jacrev (functorch.jacrev before PyTorch 2.0), from a NumPy array to NumPy arrays.
usage: bench_torch.py CKPT X.npy J_DINO.npy THREADS"""
import sys

import numpy as np
import torch

try:
    from torch.func import jacrev
except ImportError:   # PyTorch 1.13 (Debian bookworm's python3-torch)
    from functorch import jacrev

from common import per_call_us, report, weights

ckpt, xfile, jfile, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
torch.set_num_threads(threads)
x = np.load(xfile)[0]
J_dino = np.load(jfile)
for dtype, name in ((torch.float32, "f32"), (torch.float64, "f64")):
    layers = [(torch.tensor(W, dtype=dtype), torch.tensor(b, dtype=dtype)) for W, b in weights(ckpt)]

    def f(m):
        h = m
        for W, b in layers[:-1]:
            h = torch.nn.functional.gelu(W @ h + b)   # exact (erf) gelu, as dino's
        W, b = layers[-1]
        q = W @ h + b
        return q, q

    jf = jacrev(f, has_aux=True)

    def call():
        with torch.no_grad():
            J, y = jf(torch.from_numpy(x).to(dtype))
        return y.numpy(), J.numpy()

    y, J = call()
    err = float(np.max(np.abs(J - J_dino)) / np.max(np.abs(J_dino)))
    report("pytorch", f"value+jacobian {name}", *per_call_us(call, calls=100), torch=torch.__version__,
           threads=threads, max_rel_diff_vs_dino=err)
