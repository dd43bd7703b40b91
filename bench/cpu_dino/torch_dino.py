"""PyTorch baseline for bench/cpu_dino: the same network, loss, optimiser and batches as dino.

An MLP 200 -> 400 x 8 (gelu) -> 25 trained with the H1 loss (mean ||q - f(m)||^2 plus mean
||J - df/dm||_F^2), per-sample Jacobians with functorch's vmap(jacrev), Adam, batch 32.
Prints seconds per epoch (best of the timed epochs).

usage: torch_dino.py DATA_DIR EPOCHS THREADS
"""
import sys
import time

import numpy as np
import torch

try:
    from torch.func import jacrev, vmap, functional_call
except ImportError:  # PyTorch < 2.0 (Debian bookworm ships 1.13): functorch
    from functorch import jacrev, vmap
    from torch.nn.utils.stateless import functional_call


def main():
    data, epochs, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    m = torch.from_numpy(np.load(f"{data}/m_data.npy")).float()
    q = torch.from_numpy(np.load(f"{data}/q_data.npy")).float()
    J = torch.from_numpy(np.load(f"{data}/J_data.npy")).float()
    layers, width = [], 200
    for _ in range(8):
        layers += [torch.nn.Linear(width, 400), torch.nn.GELU()]
        width = 400
    layers.append(torch.nn.Linear(width, 25))
    net = torch.nn.Sequential(*layers)
    params = dict(net.named_parameters())
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)

    def f(p, x):
        return functional_call(net, p, (x,))

    jac = vmap(jacrev(f, argnums=1), in_dims=(None, 0))
    n, batch = m.shape[0], 32
    times = []
    for epoch in range(epochs):
        perm = torch.randperm(n)
        t0 = time.perf_counter()
        for i in range(0, n, batch):
            idx = perm[i:i + batch]
            x, y, Jy = m[idx], q[idx], J[idx]
            opt.zero_grad()
            out = f(params, x)
            Jp = jac(params, x)
            loss = ((out - y) ** 2).sum(1).mean() + ((Jp - Jy) ** 2).sum((1, 2)).mean()
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - t0)
        print(f"torch epoch {epoch + 1}: {times[-1]:.3f} s, loss {loss.item():.4e}", file=sys.stderr)
    print(f"{min(times[1:] if len(times) > 1 else times):.4f}")


if __name__ == "__main__":
    main()
