"""The MNIST IDX reader of the bench/gpu baselines (node_mnist_torch.py, node_mnist_jax.py)."""
import gzip

import numpy as np


def idx(path):
    """A (gzipped) IDX file as an array: magic 0 0 dtype ndim, then ndim big-endian u32 sizes."""
    with gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb") as fh:
        raw = fh.read()
    ndim = raw[3]
    shape = tuple(int(v) for v in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)
