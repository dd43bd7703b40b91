#!/usr/bin/env python3
"""make_data.py - the spiral of torchdiffeq's examples/ode_demo.py as trajectory data for dino.

The true system dy/dt = (y^3) A, A = [[-0.1, 2.0], [-2.0, -0.1]] (y a row vector, y^3 element-wise),
from y(0) = (2, 0), solved in f64 with classical RK4 at 100 substeps per saved interval (dt =
2.5e-4; the substep count is checked: halving it changes the states by less than 1e-10), saved at
the 1001 times t_k = 0.025 k, k = 0 .. 1000, on [0, 25]. (torchdiffeq's demo uses
linspace(0, 25, 1000), 0.025025 apart; the spec's `save every 0.025` needs the grid 0.025 apart.)

Writes into OUT (default: the current folder):
  true_t.npy   [1001]        the times
  true_y.npy   [1001, 2]     the true trajectory
  true_y0.npy  [1, 2]        y(0), the input of the long-span prediction
  true_traj.npy [1, 1000, 2] the 1000 states after y(0): node_spiral_long.dino's output data
  y0_data.npy  [N, 2]        window starts y(t_s), s = 0 .. 990 (N = 991)
  y_data.npy   [N, 10, 2]    the next 10 states y(t_s + 0.025 k), k = 1 .. 10

usage: make_data.py [OUT]
"""
import os
import sys

import numpy as np

A = np.array([[-0.1, 2.0], [-2.0, -0.1]])
DT, N_TIMES, WINDOW = 0.025, 1001, 10


def f(y):
    return (y ** 3) @ A


def solve(substeps):
    y = np.array([2.0, 0.0])
    out = [y.copy()]
    h = DT / substeps
    for _ in range(N_TIMES - 1):
        for _ in range(substeps):
            k1 = f(y)
            k2 = f(y + h / 2 * k1)
            k3 = f(y + h / 2 * k2)
            k4 = f(y + h * k3)
            y = y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        out.append(y.copy())
    return np.array(out)


def main(argv):
    out = argv[1] if len(argv) > 1 else "."
    os.makedirs(out, exist_ok=True)
    y = solve(100)
    check = solve(50)
    diff = np.abs(y - check).max()
    if diff > 1e-10:
        raise SystemExit(f"make_data.py: the fine solve is not converged ({diff:.2e} between 50 and 100 substeps)")
    t = DT * np.arange(N_TIMES)
    n = N_TIMES - WINDOW
    y0 = y[:n]
    win = np.stack([y[s + 1:s + 1 + WINDOW] for s in range(n)])
    np.save(os.path.join(out, "true_t.npy"), t)
    np.save(os.path.join(out, "true_y.npy"), y)
    np.save(os.path.join(out, "true_y0.npy"), y[:1])
    np.save(os.path.join(out, "true_traj.npy"), y[None, 1:])
    np.save(os.path.join(out, "y0_data.npy"), y0)
    np.save(os.path.join(out, "y_data.npy"), win)
    print(f"make_data.py: {N_TIMES} states on [0, 25] (substeps 50 vs 100 differ by {diff:.1e}); "
          f"{n} windows of {WINDOW} in {out}")


if __name__ == "__main__":
    main(sys.argv)
