"""PyTorch baseline for bench/gpu: the network, loss, optimiser and batches of jax_dino.py with
torch.func (vmap(jacrev) per-sample Jacobians), Adam, the data on the device and each batch
gathered there by a shuffled index. Prints one JSON line like jax_dino.py.

usage: torch_dino.py DATA_DIR BATCH EPOCHS f32|f64 [cuda|cpu]
  DINO_NET="400 8": the hidden layers' width and depth (bench/gpu/run.sh sets it)
"""
import json
import os
import sys
import time

import numpy as np
import torch
try:
    from torch.func import functional_call, jacrev, vmap
except ImportError:  # PyTorch < 2.0 (Debian bookworm's 1.13, for trying the script on a CPU)
    from functorch import jacrev, vmap
    from torch.nn.utils.stateless import functional_call


def main():
    data, batch, epochs, prec = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    dev = sys.argv[5] if len(sys.argv) > 5 else ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.float64 if prec == "f64" else torch.float32
    t_start = time.perf_counter()
    torch.manual_seed(0)
    m = torch.from_numpy(np.load(f"{data}/m_data.npy")).to(dev, dtype)
    q = torch.from_numpy(np.load(f"{data}/q_data.npy")).to(dev, dtype)
    J = torch.from_numpy(np.load(f"{data}/J_data.npy")).to(dev, dtype)
    hidden, depth = (int(v) for v in os.environ.get("DINO_NET", "400 8").split())
    layers, width = [], 200
    for _ in range(depth):
        layers += [torch.nn.Linear(width, hidden), torch.nn.GELU()]
        width = hidden
    layers.append(torch.nn.Linear(width, 25))
    net = torch.nn.Sequential(*layers).to(dev, dtype)
    params = dict(net.named_parameters())
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)

    def f(p, x):
        return functional_call(net, p, (x,))

    jac = vmap(jacrev(f, argnums=1), in_dims=(None, 0))
    n = m.shape[0]
    steps = n // batch

    def step(idx):
        x, y, Jy = m[idx], q[idx], J[idx]
        opt.zero_grad(set_to_none=True)
        out = f(params, x)
        Jp = jac(params, x)
        loss = ((out - y) ** 2).sum(1).mean() + ((Jp - Jy) ** 2).sum((1, 2)).mean()
        loss.backward()
        opt.step()
        return loss

    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
    t0 = time.perf_counter()
    loss = step(torch.arange(batch, device=dev))
    sync()
    first = time.perf_counter() - t0
    ready = time.perf_counter() - t_start   # process start (after imports) to the first step done
    times = []
    g = torch.Generator(device="cpu").manual_seed(0)
    for epoch in range(epochs):
        perm = torch.randperm(n, generator=g)[: steps * batch].to(dev).view(steps, batch)
        t0 = time.perf_counter()
        for i in range(steps):
            loss = step(perm[i])
        sync()
        times.append(time.perf_counter() - t0)
        print(f"torch epoch {epoch + 1}: {times[-1]:.3f} s, loss {loss.item():.4e}", file=sys.stderr)
    peak = torch.cuda.max_memory_allocated() if dev == "cuda" else 0
    best = min(times[1:]) if len(times) > 1 else times[0]
    print(json.dumps({"impl": "torch", "batch": batch, "prec": prec, "s_per_epoch": best, "first_step_s": first,
                      "start_to_first_step_s": ready, "loss": loss.item(),
                      "steps_per_epoch": steps, "peak_bytes": peak, "device": dev}))


if __name__ == "__main__":
    main()
