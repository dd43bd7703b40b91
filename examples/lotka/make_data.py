#!/usr/bin/env python3
"""make_data.py - noisy observations of Lotka-Volterra predator-prey trajectories, for lotka.dino.

    dx/dt = 1.5 x - x y,   dy/dt = x y - 3 y

M trajectories from initial states drawn uniformly in [0.5, 2.5]^2, solved in f64 (RK4, 100
substeps per observation interval), observed every 0.1 on [0, 10] with 5 % multiplicative
Gaussian noise. The training samples are windows: an observed state and the next 10 observations
(a horizon of 1). Writes into OUT:
  z0_data.npy      [N, 2]        window starts (noisy observations)
  y_data.npy       [N, 10, 2]    the next 10 noisy observations
  test_z0.npy      [K, 2]        exact initial states of K held-out trajectories
  test_traj.npy    [K, 100, 2]   their exact states at t = 0.1 .. 10 (lotka_long.dino's output data)

usage: make_data.py [OUT] [M] [SEED]
"""
import os
import sys

import numpy as np

ALPHA, BETA, GAMMA, DELTA = 1.5, 1.0, 3.0, 1.0
DT, STEPS, SUB, NOISE, WINDOW, HELD_OUT = 0.1, 100, 100, 0.05, 10, 16


def f(z):
    x, y = z[:, 0], z[:, 1]
    return np.stack([ALPHA * x - BETA * x * y, DELTA * x * y - GAMMA * y], axis=1)


def solve(z0):
    z, h, states = z0.copy(), DT / SUB, [z0.copy()]
    for _ in range(STEPS):
        for _ in range(SUB):
            k1 = f(z)
            k2 = f(z + h / 2 * k1)
            k3 = f(z + h / 2 * k2)
            k4 = f(z + h * k3)
            z = z + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        states.append(z.copy())
    return np.stack(states, axis=1)                                  # [m, STEPS + 1, 2]


def main(argv):
    out = argv[1] if len(argv) > 1 else "."
    m = int(argv[2]) if len(argv) > 2 else 32
    rng = np.random.default_rng(int(argv[3]) if len(argv) > 3 else 0)
    os.makedirs(out, exist_ok=True)
    clean = solve(rng.uniform(0.5, 2.5, size=(m, 2)))
    noisy = clean * (1 + NOISE * rng.standard_normal(clean.shape))
    starts = range(STEPS + 1 - WINDOW)
    z0 = np.concatenate([noisy[:, s] for s in starts])
    y = np.concatenate([noisy[:, s + 1:s + 1 + WINDOW] for s in starts])
    order = rng.permutation(len(z0))                                # windows of all trajectories mixed
    test = solve(rng.uniform(0.5, 2.5, size=(HELD_OUT, 2)))
    np.save(os.path.join(out, "z0_data.npy"), z0[order])
    np.save(os.path.join(out, "y_data.npy"), y[order])
    np.save(os.path.join(out, "test_z0.npy"), test[:, 0])
    np.save(os.path.join(out, "test_traj.npy"), test[:, 1:])
    print(f"make_data.py: {m} Lotka-Volterra trajectories observed every {DT} on [0, 10] with {NOISE:.0%} noise: "
          f"{len(z0)} windows of {WINDOW}; {HELD_OUT} exact held-out trajectories; in {out}")


if __name__ == "__main__":
    main(sys.argv)
