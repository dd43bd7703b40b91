#!/usr/bin/env python3
"""traj_reference.py - an independent PyTorch (float64, autograd) twin of specs/traj_small.dino,
a trajectory model (save at [0, 0.5, 0.75, 1]), written by hand from docs/language.md; its values
are what test_reference compares the generated code with.

Writes OUT/reference/traj_small/ in ../shared/reference's layout (README.md there): x_data.npy
[10, 3], y_data.npy [10, T, 2], J_data.npy [10, T, 2, 3], params.safetensors, expected/y.npy
[10, T, 2], expected/J.npy [10, T, 2, 3], expected/loss.npy (the spec's loss on the first 8
rows), expected/grads.safetensors, expected/after_sgd.safetensors (one full-batch SGD step,
lr 0.01), expected/after_adam3.safetensors (three full-batch Adam steps, lr 0.01), and copies
the spec to OUT/specs/.

usage: traj_reference.py SPEC OUT
"""
import json
import os
import shutil
import struct
import sys

import numpy as np
import torch

torch.set_default_dtype(torch.float64)
SAVES = [0.0, 0.5, 0.75, 1.0]
STEPS, T0, T1 = 4, 0.0, 1.0
SHAPES = [("z0.weight", (4, 3)), ("z0.bias", (4,)), ("z.a.weight", (6, 5)), ("z.a.bias", (6,)),
          ("z.f.weight", (4, 6)), ("z.f.bias", (4,)), ("y.0.weight", (2, 4)), ("y.0.bias", (2,)),
          ("y.1.weight", (2, 3)), ("y.1.bias", (2,))]


def dense(P, name, v):
    return v @ P[name + ".weight"].T + P[name + ".bias"]


def model(P, x):
    """x [3] -> the trajectory [T, 2]."""
    z = torch.tanh(dense(P, "z0", x))

    def f(z, t):
        a = torch.tanh(dense(P, "z.a", torch.cat([z, t.reshape(1)])))
        return dense(P, "z.f", a)

    h = (T1 - T0) / STEPS
    saved = [z] if SAVES[0] == T0 else []
    for k in range(STEPS):
        t = torch.tensor(T0 + (T1 - T0) * k / STEPS)
        k1 = f(z, t)
        k2 = f(z + h / 2 * k1, t + h / 2)
        k3 = f(z + h / 2 * k2, t + h / 2)
        k4 = f(z + h * k3, t + h)
        z = z + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        tk = T0 + (T1 - T0) * (k + 1) / STEPS
        if any(abs(tk - s) < 1e-12 for s in SAVES):
            saved.append(z)
    Z = torch.stack(saved)                                     # [T, 4]
    return dense(P, "y.0", Z) + dense(P, "y.1", x)            # the input's term at every time


def jac(P, x, create_graph):
    return torch.autograd.functional.jacobian(lambda v: model(P, v), x, create_graph=create_graph)  # [T, 2, 3]


def loss_fn(P, X, Y, J):
    l2 = h1 = 0
    for i in range(X.shape[0]):
        e = model(P, X[i]) - Y[i]
        l2 = l2 + (e ** 2).sum() / (Y[i] ** 2).sum()             # relative: over the whole trajectory
        h1 = h1 + ((jac(P, X[i], True) - J[i]) ** 2).sum()
    n = X.shape[0]
    return 1.0 * l2 / n + 0.5 * h1 / n


def st_write(path, tensors):
    header, blobs, off = {}, [], 0
    for name, t in tensors:
        b = t.detach().numpy().astype("<f8").tobytes()
        header[name] = {"dtype": "F64", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as fp:
        fp.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def main(argv):
    spec, out = argv[1], argv[2]
    d = os.path.join(out, "reference", "traj_small")
    os.makedirs(os.path.join(d, "expected"), exist_ok=True)
    os.makedirs(os.path.join(out, "specs"), exist_ok=True)
    shutil.copy(spec, os.path.join(out, "specs", "traj_small.dino"))
    rng = np.random.default_rng(17)
    T = len(SAVES)
    X = torch.tensor(rng.normal(size=(10, 3)))
    Y = torch.tensor(rng.normal(size=(10, T, 2)))
    J = torch.tensor(rng.normal(size=(10, T, 2, 3)))
    P = {name: torch.tensor(rng.normal(scale=0.7, size=shape), requires_grad=True) for name, shape in SHAPES}
    np.save(os.path.join(d, "x_data.npy"), X.numpy())
    np.save(os.path.join(d, "y_data.npy"), Y.numpy())
    np.save(os.path.join(d, "J_data.npy"), J.numpy())
    st_write(os.path.join(d, "params.safetensors"), [(n, P[n]) for n, _ in SHAPES])
    with torch.no_grad():
        np.save(os.path.join(d, "expected", "y.npy"), torch.stack([model(P, X[i]) for i in range(10)]).numpy())
    np.save(os.path.join(d, "expected", "J.npy"), torch.stack([jac(P, X[i], False) for i in range(10)]).numpy())
    loss = loss_fn(P, X[:8], Y[:8], J[:8])
    grads = torch.autograd.grad(loss, [P[n] for n, _ in SHAPES])
    np.save(os.path.join(d, "expected", "loss.npy"), np.array([loss.item()]))
    st_write(os.path.join(d, "expected", "grads.safetensors"), [(n, g) for (n, _), g in zip(SHAPES, grads)])
    st_write(os.path.join(d, "expected", "after_sgd.safetensors"),
             [(n, P[n] - 0.01 * g) for (n, _), g in zip(SHAPES, grads)])
    Q = {n: P[n].detach().clone().requires_grad_(True) for n, _ in SHAPES}
    opt = torch.optim.Adam([Q[n] for n, _ in SHAPES], lr=0.01, betas=(0.9, 0.999), eps=1e-8)
    for _ in range(3):
        opt.zero_grad()
        loss_fn(Q, X[:8], Y[:8], J[:8]).backward()
        opt.step()
    st_write(os.path.join(d, "expected", "after_adam3.safetensors"), [(n, Q[n]) for n, _ in SHAPES])
    print(f"traj_reference.py: {d} (loss {loss.item():.6g}, torch {torch.__version__})")


if __name__ == "__main__":
    main(sys.argv)
