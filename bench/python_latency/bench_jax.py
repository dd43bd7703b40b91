"""JAX: the same network with the checkpoint's weights, value + Jacobian of one sample by
jax.jit(jax.jacrev(...)), from a NumPy array to NumPy arrays.
usage: bench_jax.py CKPT X.npy J_DINO.npy"""
import sys

import numpy as np

import jax
import jax.numpy as jnp

from common import per_call_us, report, weights

ckpt, xfile, jfile = sys.argv[1], sys.argv[2], sys.argv[3]
x = np.load(xfile)[0]
J_dino = np.load(jfile)
for name, dt in (("f32", jnp.float32), ("f64", jnp.float64)):
    if name == "f64":
        jax.config.update("jax_enable_x64", True)
    layers = [(jnp.asarray(W, dtype=dt), jnp.asarray(b, dtype=dt)) for W, b in weights(ckpt)]

    def f(m, layers=layers):
        h = m
        for W, b in layers[:-1]:
            h = jax.nn.gelu(W @ h + b, approximate=False)   # exact (erf) gelu, as dino's
        W, b = layers[-1]
        q = W @ h + b
        return q, q

    jf = jax.jit(jax.jacrev(f, has_aux=True))
    xin = x.astype(np.float32 if name == "f32" else np.float64)

    def call():
        J, y = jf(xin)
        return np.asarray(y), np.asarray(J)   # waits for the result

    y, J = call()
    err = float(np.max(np.abs(J - J_dino)) / np.max(np.abs(J_dino)))
    report("jax", f"value+jacobian {name}", *per_call_us(call), jax=jax.__version__, max_rel_diff_vs_dino=err)
