"""JAX + diffrax baseline for bench/gpu: the network, solver, loss and schedule of
node_mnist_torch.py, with equinox layers, diffrax.diffeqsolve with the classical RK4 tableau
(diffrax has no RK4 of its own: a ButcherTableau of it here), 8 fixed steps, back-propagation
through the solver's steps (RecursiveCheckpointAdjoint, diffrax's default), optax Adam with a
per-step cosine schedule, one jit-compiled step, the data on the device, f32.

Prints one JSON line: s_per_epoch (best, training only), test_accuracy, peak_bytes, compile_s.
usage: node_mnist_jax.py MNIST_DIR EPOCHS [WIDTH]
"""
import json
import sys
import time

import numpy as np

from mnist_idx import idx


def main():
    data, epochs = sys.argv[1], int(sys.argv[2])
    width = int(sys.argv[3]) if len(sys.argv) > 3 else 64
    import diffrax
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import optax

    class RK4(diffrax.AbstractERK):
        tableau = diffrax.ButcherTableau(
            c=np.array([0.5, 0.5, 1.0]),
            b_sol=np.array([1 / 6, 1 / 3, 1 / 3, 1 / 6]),
            b_error=np.zeros(4),
            a_lower=(np.array([0.5]), np.array([0.0, 0.5]), np.array([0.0, 0.0, 1.0])),
        )
        interpolation_cls = diffrax.ThirdOrderHermitePolynomialInterpolation.from_k

        def order(self, terms):
            return 4

    def load(images, labels):
        x = idx(f"{data}/{images}").reshape(-1, 784).astype(np.float32) / 255
        return jnp.asarray(x), jnp.asarray(idx(f"{data}/{labels}").astype(np.int32))

    x, y = load("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
    xt, yt = load("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
    k = jax.random.split(jax.random.PRNGKey(0), 4)

    class Net(eqx.Module):
        enc: eqx.nn.Linear
        l1: eqx.nn.Linear
        l2: eqx.nn.Linear
        dec: eqx.nn.Linear

        def __init__(self):
            self.enc = eqx.nn.Linear(784, width, key=k[0])
            self.l1 = eqx.nn.Linear(width + 1, width, key=k[1])
            self.l2 = eqx.nn.Linear(width, width, key=k[2])
            self.dec = eqx.nn.Linear(width, 10, key=k[3])

        def __call__(self, xi):
            z0 = jnp.tanh(self.enc(xi))
            f = lambda t, z, args: self.l2(jnp.tanh(self.l1(jnp.concatenate([z, jnp.reshape(t, (1,))]))))
            sol = diffrax.diffeqsolve(diffrax.ODETerm(f), RK4(), 0.0, 1.0, 1.0 / 8, z0, max_steps=8)
            return self.dec(sol.ys[-1])

    net = Net()
    n, batch = x.shape[0], 128
    steps = (n + batch - 1) // batch
    opt = optax.adam(optax.cosine_decay_schedule(1e-3, steps * epochs))
    state = opt.init(eqx.filter(net, eqx.is_inexact_array))

    def loss_fn(net, xb, yb, mask):
        logits = jax.vmap(net)(xb)
        ce = optax.softmax_cross_entropy_with_integer_labels(logits, yb)
        return jnp.sum(ce * mask) / jnp.sum(mask)

    @eqx.filter_jit
    def step(net, state, idx_, mask):
        loss, g = eqx.filter_value_and_grad(loss_fn)(net, x[idx_], y[idx_], mask)
        upd, state = opt.update(g, state, net)
        return eqx.apply_updates(net, upd), state, loss

    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    _, _, l = step(net, state, jnp.arange(batch), jnp.ones(batch))
    l.block_until_ready()
    compile_s = time.perf_counter() - t0
    times = []
    for epoch in range(epochs):
        perm = rng.permutation(n)
        pad = steps * batch - n   # the last batch padded with masked rows: one compiled shape
        perm = np.concatenate([perm, perm[:pad]]).reshape(steps, batch)
        masks = np.ones((steps, batch), np.float32)
        masks[-1, batch - pad:] = 0
        perm, masks = jnp.asarray(perm), jnp.asarray(masks)
        t0 = time.perf_counter()
        for i in range(steps):
            net, state, l = step(net, state, perm[i], masks[i])
        l.block_until_ready()
        times.append(time.perf_counter() - t0)
        print(f"diffrax epoch {epoch + 1}: {times[-1]:.2f} s, loss {float(l):.4f}", file=sys.stderr)
    predict = eqx.filter_jit(lambda net, xb: jnp.argmax(jax.vmap(net)(xb), 1))
    acc = sum(int(jnp.sum(predict(net, xt[i:i + 1000]) == yt[i:i + 1000])) for i in range(0, xt.shape[0], 1000))
    peak = 0
    try:
        peak = jax.devices()[0].memory_stats().get("peak_bytes_in_use", 0)
    except Exception:
        pass
    print(json.dumps({"impl": "diffrax", "width": width, "epochs": epochs, "s_per_epoch": min(times),
                      "train_s": sum(times), "compile_s": compile_s, "test_accuracy": acc / xt.shape[0],
                      "peak_bytes": peak, "device": str(jax.devices()[0])}))


if __name__ == "__main__":
    main()
