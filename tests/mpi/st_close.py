#!/usr/bin/env python3
"""st_close.py A B RTOL: the parameter tensors (names not starting with __) of two safetensors
checkpoints agree to RTOL relative (max |a-b| / max |b| per tensor); exit 1 otherwise. Prints the
worst relative difference."""
import os
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cli"))
from npytool import st_read  # noqa: E402

FMT = {"F64": "d", "F32": "f"}


def values(t):
    dtype, shape, raw = t
    return struct.unpack("<%d%s" % (len(raw) // struct.calcsize(FMT[dtype]), FMT[dtype]), raw)


def main(a_path, b_path, rtol):
    a, b = st_read(a_path), st_read(b_path)
    names = [n for n in b if not n.startswith("__")]
    if not names or sorted(n for n in a if not n.startswith("__")) != sorted(names):
        print("the checkpoints hold different tensors")
        return 1
    worst, where = 0.0, ""
    for n in names:
        if a[n][0] != b[n][0] or a[n][1] != b[n][1]:
            print(f"{n}: dtype or shape differs")
            return 1
        va, vb = values(a[n]), values(b[n])
        scale = max(abs(x) for x in vb) or 1.0
        d = max(abs(x - y) for x, y in zip(va, vb)) / scale
        if not d <= worst:
            worst, where = d, n
    same = a_path != b_path and all(values(a[n]) == values(b[n]) for n in names)
    print(f"worst relative difference {worst:.3e} ({where}){' (bit-identical)' if same else ''}")
    return 0 if worst <= rtol else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))
