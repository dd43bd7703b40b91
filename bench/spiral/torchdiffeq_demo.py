#!/usr/bin/env python3
"""torchdiffeq_demo.py - torchdiffeq's examples/ode_demo.py training, on the data of
examples/spiral/make_data.py, timed, and scored as dino is: the whole trajectory from y(0).

What is the demo's: the network (Linear(2, 50), Tanh, Linear(50, 2) on y^3, weights N(0, 0.1^2),
zero biases), RMSprop(lr = 1e-3), 2000 iterations of 20 windows of batch_time = 10 states (the
start and the next 9), the mean |error| loss, odeint with dopri5 (rtol 1e-7, atol 1e-9), f32.
What differs: the data are make_data.py's (1001 states 0.025 apart on [0, 25], as dino trains on)
instead of the demo's own dopri5 solve on linspace(0, 25, 1000); the demo's evaluation every 20
iterations and its plots are left out of the timed loop (one evaluation at the end).

usage: torchdiffeq_demo.py DATA_DIR [--niters N] [--seed S] [--threads T]
Prints one line: key=value pairs (train_seconds, mean_abs_error, iterations, ...).
"""
import argparse
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim
from torchdiffeq import odeint


class ODEFunc(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 50), nn.Tanh(), nn.Linear(50, 2))
        for m in self.net.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, mean=0, std=0.1)
                nn.init.constant_(m.bias, val=0)

    def forward(self, t, y):
        return self.net(y ** 3)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--niters", type=int, default=2000)
    ap.add_argument("--batch_time", type=int, default=10)
    ap.add_argument("--batch_size", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    np.random.seed(a.seed)
    if a.threads:
        torch.set_num_threads(a.threads)
    true_y = torch.tensor(np.load(os.path.join(a.data, "true_y.npy")), dtype=torch.float32).unsqueeze(1)  # (1001, 1, 2)
    t = torch.tensor(np.load(os.path.join(a.data, "true_t.npy")), dtype=torch.float32)
    size = true_y.shape[0]

    def get_batch():
        s = torch.from_numpy(np.random.choice(np.arange(size - a.batch_time, dtype=np.int64), a.batch_size, replace=False))
        return true_y[s], t[:a.batch_time], torch.stack([true_y[s + i] for i in range(a.batch_time)], dim=0)

    func = ODEFunc()
    opt = optim.RMSprop(func.parameters(), lr=1e-3)
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    for itr in range(1, a.niters + 1):
        opt.zero_grad()
        by0, bt, by = get_batch()
        pred = odeint(func, by0, bt)
        loss = torch.mean(torch.abs(pred - by))
        loss.backward()
        opt.step()
    train_s, cpu_s = time.perf_counter() - t0, time.process_time() - cpu0
    with torch.no_grad():
        pred = odeint(func, true_y[0], t)       # (1001, 1, 2) from y(0)
    err = torch.abs(pred[1:] - true_y[1:]).mean().item()   # the 1000 states after y(0), as dino's
    np.save(os.path.join(a.data, "torchdiffeq_pred.npy"), pred[1:, 0].numpy())
    print(f"torchdiffeq iterations={a.niters} train_seconds={train_s:.1f} train_cpu_seconds={cpu_s:.1f} "
          f"mean_abs_error={err:.4e} final_batch_loss={loss.item():.4e} threads={torch.get_num_threads()} "
          f"torch={torch.__version__}")


if __name__ == "__main__":
    main()
