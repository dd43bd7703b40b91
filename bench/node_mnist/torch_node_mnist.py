"""PyTorch baseline for bench/node_mnist: the network of ../shared/specs/node_mnist.dino.

    z0 = tanh(W0 x + b0)                         784 -> 64
    dz/dt = f(z, t) = W2 tanh(W1 [z; t] + b1) + b2    64 (+1) -> 64 -> 64
    classical RK4, 8 fixed steps of h = 1/8 over [0, 1], t at the stage times
    y = W3 z(1) + b3                             64 -> 10
softmax cross-entropy (mean over the batch), Adam(lr=1e-3) with the learning rate
lr (1 + cos(pi step / total_steps)) / 2 set before every step (torch's CosineAnnealingLR with
T_max = total_steps, eta_min = 0, stepped per batch), batch 128 (the last batch of an epoch is
partial: 469 steps per epoch), shuffled every epoch, f32. Initialisation as dino's: weights from
a normal with std sqrt(1/fan_in) truncated at 2 std, biases 0.

W1 is one 64 x 65 parameter as in dino (concat(z, t)); the product with [z; t] is computed as
z W1[:, :64]^T + (b1 + t W1[:, 64]), which is the same function and gradient without building
the concatenated tensor at every stage (a faster baseline than torch.cat).

Prints per-epoch times on stderr and, on stdout, one line:
    BEST_SECONDS_PER_EPOCH MEAN_SECONDS_PER_EPOCH_EXCLUDING_THE_FIRST TEST_ACCURACY
Epoch times cover training only (shuffling, batching, forward, backward, optimiser), not data
loading or the test evaluation.

usage: torch_node_mnist.py DATA_DIR EPOCHS THREADS
"""
import gzip
import math
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F


def idx(path):
    """Reads a (gzipped) IDX file: magic 0 0 dtype ndim, then ndim big-endian u32 sizes."""
    with gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb") as fh:
        raw = fh.read()
    if raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    ndim = raw[3]
    shape = tuple(int(v) for v in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load(data, images, labels):
    x = idx(f"{data}/{images}").reshape(-1, 784).astype(np.float32) * np.float32(1 / 255)
    y = idx(f"{data}/{labels}").astype(np.int64)
    return torch.from_numpy(x), torch.from_numpy(y)


def param(out, fan_in):
    """Weights from a normal with std sqrt(1/fan_in) truncated at 2 std; biases 0."""
    std = math.sqrt(1.0 / fan_in)
    w = torch.nn.init.trunc_normal_(torch.empty(out, fan_in), mean=0.0, std=std, a=-2 * std, b=2 * std)
    return torch.nn.Parameter(w), torch.nn.Parameter(torch.zeros(out))


class NodeMnist(torch.nn.Module):
    def __init__(self, steps=8):
        super().__init__()
        self.steps = steps
        self.W0, self.b0 = param(64, 784)      # encoder
        self.W1, self.b1 = param(64, 65)       # dense(concat(z, t), 64)
        self.W2, self.b2 = param(64, 64)       # dense(a, 64)
        self.W3, self.b3 = param(10, 64)       # decoder

    def f(self, z, t):
        a = torch.tanh(F.linear(z, self.W1[:, :64], self.b1 + t * self.W1[:, 64]))
        return F.linear(a, self.W2, self.b2)

    def forward(self, x):
        z = torch.tanh(F.linear(x, self.W0, self.b0))
        h = 1.0 / self.steps
        for n in range(self.steps):
            t = n * h
            k1 = self.f(z, t)
            k2 = self.f(z + (h / 2) * k1, t + h / 2)
            k3 = self.f(z + (h / 2) * k2, t + h / 2)
            k4 = self.f(z + h * k3, t + h)
            z = z + (h / 6) * (k1 + 2 * k2 + 2 * k3 + k4)
        return F.linear(z, self.W3, self.b3)


def main():
    data, epochs, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    x, y = load(data, "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
    xt, yt = load(data, "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
    net = NodeMnist()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    n, batch = x.shape[0], 128
    steps_per_epoch = (n + batch - 1) // batch
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps_per_epoch * epochs, eta_min=0.0)
    times = []
    for epoch in range(epochs):
        t0 = time.perf_counter()
        perm = torch.randperm(n)
        total = 0.0
        for i in range(0, n, batch):
            b = perm[i:i + batch]
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(net(x[b]), y[b])
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * b.numel()
        times.append(time.perf_counter() - t0)
        print(f"torch epoch {epoch + 1}/{epochs}: {times[-1]:.3f} s, loss {total / n:.4e}, "
              f"lr {opt.param_groups[0]['lr']:.3g}", file=sys.stderr)
    with torch.no_grad():
        acc = sum((net(xt[i:i + 1000]).argmax(1) == yt[i:i + 1000]).sum().item()
                  for i in range(0, xt.shape[0], 1000)) / xt.shape[0]
    print(f"torch test accuracy {100 * acc:.2f} %", file=sys.stderr)
    rest = times[1:] if len(times) > 1 else times
    print(f"{min(times):.4f} {sum(rest) / len(rest):.4f} {acc:.6f}")


if __name__ == "__main__":
    main()
