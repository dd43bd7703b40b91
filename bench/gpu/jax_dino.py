"""JAX baseline for bench/gpu: DINO training the way dinox does it.

An equinox MLP 200 -> 400 x 8 (gelu, exact erf form) -> 25, the mean H1 loss
(||q - f(m)||^2 + ||J - df/dm||_F^2 per sample, batch mean), per-sample reverse-mode Jacobians
by vmap(jacrev), optax Adam (lr 1e-3), one jit-compiled step, the data resident on the device
and each batch gathered there by a shuffled index. Prints one JSON line:
{"impl": "jax", "s_per_epoch": ..., "compile_s": ..., "first_step_s": ..., "loss": ...,
 "peak_bytes": ...}

usage: jax_dino.py DATA_DIR BATCH EPOCHS f32|f64
  DINO_NET="400 8": the hidden layers' width and depth (bench/gpu/run.sh sets it)
"""
import json
import os
import sys
import time

import numpy as np


def main():
    data, batch, epochs, prec = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    import jax
    if prec == "f64":
        jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import equinox as eqx
    import optax

    dtype = jnp.float64 if prec == "f64" else jnp.float32
    t_start = time.perf_counter()
    m = jnp.asarray(np.load(f"{data}/m_data.npy"), dtype)
    q = jnp.asarray(np.load(f"{data}/q_data.npy"), dtype)
    J = jnp.asarray(np.load(f"{data}/J_data.npy"), dtype)
    n = m.shape[0]
    key = jax.random.PRNGKey(0)
    width, depth = (int(v) for v in os.environ.get("DINO_NET", "400 8").split())
    model = eqx.nn.MLP(200, 25, width, depth, activation=lambda x: jax.nn.gelu(x, approximate=False), key=key)
    model = jax.tree_util.tree_map(lambda a: a.astype(dtype) if eqx.is_inexact_array(a) else a, model)
    opt = optax.adam(1e-3)
    state = opt.init(eqx.filter(model, eqx.is_inexact_array))

    def loss_fn(model, x, y, Jy):
        out = jax.vmap(model)(x)
        Jp = jax.vmap(jax.jacrev(model))(x)
        return jnp.mean(jnp.sum((out - y) ** 2, 1)) + jnp.mean(jnp.sum((Jp - Jy) ** 2, (1, 2)))

    @eqx.filter_jit
    def step(model, state, idx):
        x, y, Jy = m[idx], q[idx], J[idx]
        loss, grads = eqx.filter_value_and_grad(loss_fn)(model, x, y, Jy)
        updates, state = opt.update(grads, state, model)
        return eqx.apply_updates(model, updates), state, loss

    rng = np.random.default_rng(0)
    steps = n // batch   # full batches only: one compiled shape, as dinox
    t0 = time.perf_counter()
    compiled_model, state, loss = step(model, state, jnp.arange(batch))
    loss.block_until_ready()
    first = time.perf_counter() - t0
    ready = time.perf_counter() - t_start   # process start (after imports) to the first step done
    model = compiled_model
    times = []
    for epoch in range(epochs):
        perm = jnp.asarray(rng.permutation(n)[: steps * batch].reshape(steps, batch))
        t0 = time.perf_counter()
        for i in range(steps):
            model, state, loss = step(model, state, perm[i])
        loss.block_until_ready()
        times.append(time.perf_counter() - t0)
        print(f"jax epoch {epoch + 1}: {times[-1]:.3f} s, loss {float(loss):.4e}", file=sys.stderr)
    peak = 0
    try:
        peak = jax.devices()[0].memory_stats().get("peak_bytes_in_use", 0)
    except Exception:
        pass
    best = min(times[1:]) if len(times) > 1 else times[0]
    print(json.dumps({"impl": "jax", "batch": batch, "prec": prec, "s_per_epoch": best, "first_step_s": first,
                      "start_to_first_step_s": ready, "loss": float(loss),
                      "steps_per_epoch": steps, "peak_bytes": peak, "device": str(jax.devices()[0])}))


if __name__ == "__main__":
    main()
