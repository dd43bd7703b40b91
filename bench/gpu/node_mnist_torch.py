"""PyTorch + torchdiffeq baseline for bench/gpu: the neural ODE of ../shared/specs/node_mnist.dino
(784 -> 64 tanh; dz/dt = W2 tanh(W1 [z; t] + b1) + b2 on 64 dims, classical RK4 with 8 fixed
steps over [0, 1]; 64 -> 10), cross-entropy, Adam 1e-3 with a per-step cosine schedule, batch
128, f32, on the GPU, the whole training set resident there: torchdiffeq's odeint with
method="rk4" and step_size 1/8. torchdiffeq's "rk4" is the four-stage 3/8-rule variant of RK4,
not the classical tableau dino uses: the same order and the same cost per step, and what users
of torchdiffeq ask for. WIDTH (default 64) widens every layer (specs/node_mnist.dino: 256).

Prints one JSON line: s_per_epoch (best, training only), test_accuracy, peak_bytes.
usage: node_mnist_torch.py MNIST_DIR EPOCHS [WIDTH]
"""
import json
import math
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from mnist_idx import idx
from torchdiffeq import odeint


def load(data, images, labels, dev):
    x = idx(f"{data}/{images}").reshape(-1, 784).astype(np.float32) * np.float32(1 / 255)
    y = idx(f"{data}/{labels}").astype(np.int64)
    return torch.from_numpy(x).to(dev), torch.from_numpy(y).to(dev)


def param(out, fan_in):
    std = math.sqrt(1.0 / fan_in)
    w = torch.nn.init.trunc_normal_(torch.empty(out, fan_in), mean=0.0, std=std, a=-2 * std, b=2 * std)
    return torch.nn.Parameter(w), torch.nn.Parameter(torch.zeros(out))


class Field(torch.nn.Module):
    def __init__(self, w):
        super().__init__()
        self.W1, self.b1 = param(w, w + 1)
        self.W2, self.b2 = param(w, w)

    def forward(self, t, z):
        a = torch.tanh(F.linear(torch.cat([z, t.expand(z.shape[0], 1)], 1), self.W1, self.b1))
        return F.linear(a, self.W2, self.b2)


class Net(torch.nn.Module):
    def __init__(self, w):
        super().__init__()
        self.W0, self.b0 = param(w, 784)
        self.f = Field(w)
        self.W3, self.b3 = param(10, w)
        self.t = torch.nn.Parameter(torch.tensor([0.0, 1.0]), requires_grad=False)

    def forward(self, x):
        z = torch.tanh(F.linear(x, self.W0, self.b0))
        z = odeint(self.f, z, self.t, method="rk4", options=dict(step_size=1.0 / 8))[-1]
        return F.linear(z, self.W3, self.b3)


def main():
    data, epochs = sys.argv[1], int(sys.argv[2])
    width = int(sys.argv[3]) if len(sys.argv) > 3 else 64
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    x, y = load(data, "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", dev)
    xt, yt = load(data, "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", dev)
    net = Net(width).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    n, batch = x.shape[0], 128
    steps = (n + batch - 1) // batch
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps * epochs, eta_min=0.0)
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
    times = []
    for epoch in range(epochs):
        sync()
        t0 = time.perf_counter()
        perm = torch.randperm(n, device=dev)
        for i in range(0, n, batch):
            idx_ = perm[i:i + batch]
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(net(x[idx_]), y[idx_])
            loss.backward()
            opt.step()
            sched.step()
        sync()
        times.append(time.perf_counter() - t0)
        print(f"torchdiffeq epoch {epoch + 1}: {times[-1]:.2f} s, loss {loss.item():.4f}", file=sys.stderr)
    with torch.no_grad():
        acc = sum((net(xt[i:i + 1000]).argmax(1) == yt[i:i + 1000]).sum().item() for i in range(0, xt.shape[0], 1000))
    acc /= xt.shape[0]
    peak = torch.cuda.max_memory_allocated() if dev == "cuda" else 0
    print(json.dumps({"impl": "torchdiffeq", "width": width, "epochs": epochs, "s_per_epoch": min(times),
                      "train_s": sum(times), "test_accuracy": acc, "peak_bytes": peak, "device": dev}))


if __name__ == "__main__":
    main()
