#!/usr/bin/env python3
"""score.py PRED.npy TRUE_Y.npy: the mean |error| of a predicted spiral [1, 1000, 2] (or [1000, 2])
against the true states after y(0) (true_y.npy [1001, 2], rows 1 .. 1000); prints it."""
import sys

import numpy as np

p = np.load(sys.argv[1]).reshape(-1, 2)
t = np.load(sys.argv[2])[1:]
assert p.shape == t.shape, f"prediction {p.shape}, truth {t.shape}"
print(f"{np.abs(p - t).mean():.4e}")
