#!/usr/bin/env python3
"""npytool.py - the small file helpers of the CLI tests, with the standard library only
(numpy may not be installed). .npy files: v1-3 headers, little-endian <f4/<f8, C order.
safetensors: 8-byte little-endian header length, JSON header, raw data.

  npytool.py shape FILE                  prints "DTYPE D0,D1,..." (e.g. "<f4 400,9,16")
  npytool.py zeros OUT D0,D1,...         writes a <f8 array of zeros with that shape
  npytool.py transpose12 IN OUT          [N, A, B] -> [N, B, A], same dtype
  npytool.py fd_rows IN OUT ROW H        [1 + 2K, K] <f8: row ROW of IN, then +-H along each column
  npytool.py fd_check Q J H TOL          J[0] of a prediction on fd_rows input against central
                                         differences of Q; exit 1 when the worst relative error > TOL
  npytool.py trajectory DIR N T1,T2,..  a linear spiral's y0 [N, 2], y [N, T, 2], J [N, T, 2, 2] (and
                                         J_io.npy transposed, y_flat.npy [N, 2T]) in DIR
  npytool.py st_compare A B              parameter tensors (names not starting with __) byte for
                                         byte; exit 1 on any difference; also reports __ tensors
  npytool.py st_finite FILE              exit 1 unless every float tensor holds only finite values
  npytool.py take IN OUT A:B[,C:D...]    rows A..B-1 (then C..D-1, ...) of IN, same dtype
  npytool.py st_meta FILE KEY            prints the __metadata__ value KEY; exit 1 when absent
  npytool.py argmax IN OUT K             <i8 labels [N]: the column of the largest of row r's first K values
  npytool.py st_same A B PREFIX          the tensors whose names start with PREFIX: the same names in
                                         both, byte for byte (at least one); exit 1 otherwise
  npytool.py st_strip IN OUT PREFIX      IN without the tensors whose names start with PREFIX and
                                         without metadata (as a checkpoint written by PyTorch)
  npytool.py rows_shift IN OUT FROM      rows FROM.. of a float .npy plus 1 (the others unchanged)
  npytool.py lift_same A B TOL           two float arrays of one shape agree to TOL relative to B's largest value
  npytool.py lift CKPT VM VQ H G Q J TOL  --predict --reduced's h [n, r2] and G [n, r2, r1] lifted with
                                         the checkpoint's bases (D of VQ, its shift, E of VM): D h + shift
                                         against Q, D G E^T against J; exit 1 when a relative error > TOL
"""
import ast
import json
import math
import struct
import sys

FMT = {"<f4": ("f", 4), "<f8": ("d", 8), "<i4": ("i", 4), "<i8": ("q", 8), "|u1": ("B", 1)}


def npy_read(path):
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:6] != b"\x93NUMPY":
        raise SystemExit(f"{path}: not a .npy file")
    major = raw[6]
    if major == 1:
        hlen, start = struct.unpack("<H", raw[8:10])[0], 10
    else:
        hlen, start = struct.unpack("<I", raw[8:12])[0], 12
    header = ast.literal_eval(raw[start:start + hlen].decode("latin1"))
    if header["fortran_order"]:
        raise SystemExit(f"{path}: Fortran order is not supported here")
    dtype, shape = header["descr"], tuple(header["shape"])
    code, size = FMT[dtype]
    n = 1
    for d in shape:
        n *= d
    off = start + hlen
    values = list(struct.unpack(f"<{n}{code}", raw[off:off + n * size]))
    return dtype, shape, values


def npy_write(path, dtype, shape, values):
    code, _ = FMT[dtype]
    dims = ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "")
    header = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (dtype, dims)
    header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1"))
        f.write(struct.pack(f"<{len(values)}{code}", *values))


def st_read(path):
    with open(path, "rb") as f:
        raw = f.read()
    (hlen,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + hlen])
    base = 8 + hlen
    tensors = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        tensors[name] = (t["dtype"], t["shape"], raw[base + a:base + b])
    return tensors


def main(argv):
    if len(argv) < 2:
        raise SystemExit(__doc__)
    cmd, args = argv[1], argv[2:]
    if cmd == "shape":
        dtype, shape, _ = npy_read(args[0])
        print(dtype, ",".join(str(d) for d in shape))
    elif cmd == "zeros":
        shape = tuple(int(d) for d in args[1].split(","))
        n = 1
        for d in shape:
            n *= d
        npy_write(args[0], "<f8", shape, [0.0] * n)
    elif cmd == "transpose12":
        dtype, (n, a, b), v = npy_read(args[0])
        out = [v[(i * a + r) * b + c] for i in range(n) for c in range(b) for r in range(a)]
        npy_write(args[1], dtype, (n, b, a), out)
    elif cmd == "fd_rows":
        _, (n, k), v = npy_read(args[0])
        row, h = int(args[2]), float(args[3])
        base = v[row * k:(row + 1) * k]
        rows = [list(base)]
        for j in range(k):
            for s in (1, -1):
                r = list(base)
                r[j] += s * h
                rows.append(r)
        npy_write(args[1], "<f8", (len(rows), k), [x for r in rows for x in r])
    elif cmd == "fd_check":   # q [n, ...], J [n, ..., k]: a trajectory's [n, T, d] and [n, T, d, k] too
        _, qshape, q = npy_read(args[0])
        _, jshape, jac = npy_read(args[1])
        nq, out = qshape[0], math.prod(qshape[1:])
        nj, out2, k = jshape[0], math.prod(jshape[1:-1]), jshape[-1]
        h, tol = float(args[2]), float(args[3])
        assert nq == 1 + 2 * k and nj == nq and out2 == out, "unexpected shapes"
        scale = max(abs(x) for x in jac[:out * k])
        worst = 0.0
        for o in range(out):
            for j in range(k):
                fd = (q[(1 + 2 * j) * out + o] - q[(2 + 2 * j) * out + o]) / (2 * h)
                an = jac[o * k + j]
                worst = max(worst, abs(fd - an) / max(abs(an), 1e-2 * scale))
        print(f"worst relative error of J against central differences: {worst:.3e} (tolerance {tol:g})")
        return 0 if worst <= tol else 1
    elif cmd == "trajectory":
        # the spiral dy/dt = A y, A = [[a, b], [-b, a]]: y(t) = e^(a t) R(b t) y0 exactly, and
        # dy(t)/dy0 = e^(a t) R(b t); y0 on a grid of the square [-1, 1]^2
        out, n, times = args[0], int(args[1]), [float(t) for t in args[2].split(",")]
        a, b = -0.3, 2.0
        y0 = [(-1 + 2 * ((i * 7) % n) / (n - 1), -1 + 2 * ((i * 13 + 5) % n) / (n - 1)) for i in range(n)]
        ys, js = [], []
        for (u, v) in y0:
            for t in times:
                e, c, s_ = math.exp(a * t), math.cos(b * t), math.sin(b * t)
                M = [[e * c, e * s_], [-e * s_, e * c]]
                ys += [M[0][0] * u + M[0][1] * v, M[1][0] * u + M[1][1] * v]
                js += [M[0][0], M[0][1], M[1][0], M[1][1]]
        T = len(times)
        npy_write(out + "/y0_data.npy", "<f8", (n, 2), [x for p in y0 for x in p])
        npy_write(out + "/y_data.npy", "<f8", (n, T, 2), ys)
        npy_write(out + "/J_data.npy", "<f8", (n, T, 2, 2), js)
        npy_write(out + "/J_io.npy", "<f8", (n, T, 2, 2),
                  [js[(i * T + t) * 4 + c * 2 + r] for i in range(n) for t in range(T) for r in range(2) for c in range(2)])
        npy_write(out + "/y_flat.npy", "<f8", (n, 2 * T), ys)
    elif cmd == "st_compare":
        a, b = st_read(args[0]), st_read(args[1])
        bad = 0
        params = [n for n in a if not n.startswith("__")]
        if sorted(params) != sorted(n for n in b if not n.startswith("__")):
            print("different parameter names:", sorted(params), sorted(n for n in b if not n.startswith("__")))
            return 1
        for name in params:
            if a[name] != b[name]:
                ta, tb = a[name], b[name]
                code, size = {"F32": ("f", 4), "F64": ("d", 8)}.get(ta[0], ("B", 1))
                va = struct.unpack(f"<{len(ta[2]) // size}{code}", ta[2])
                vb = struct.unpack(f"<{len(tb[2]) // size}{code}", tb[2]) if len(tb[2]) == len(ta[2]) else ()
                diff = max((abs(x - y) for x, y in zip(va, vb)), default=float("nan"))
                print(f"  {name}: differs (max |diff| {diff:.3e})")
                bad += 1
        state = [n for n in a if n.startswith("__")]
        same_state = [n for n in state if n in b and a[n] == b[n]]
        print(f"{len(params) - bad} of {len(params)} parameter tensors identical; "
              f"{len(same_state)} of {len(state)} __ state tensors identical"
              + ("" if len(same_state) == len(state) else
                 " (differ: " + ", ".join(n for n in state if n not in same_state) + ")"))
        return 1 if bad else 0
    elif cmd == "take":
        dtype, shape, v = npy_read(args[0])
        row = 1
        for d in shape[1:]:
            row *= d
        out, n = [], 0
        for r in args[2].split(","):
            a, b = (int(x) for x in r.split(":"))
            out += v[a * row:b * row]
            n += b - a
        npy_write(args[1], dtype, (n,) + tuple(shape[1:]), out)
    elif cmd == "argmax":
        _, shape, v = npy_read(args[0])
        row, k = shape[1], int(args[2])
        out = []
        for r in range(shape[0]):
            vals = v[r * row:r * row + k]
            out.append(max(range(k), key=lambda j: vals[j]))
        npy_write(args[1], "<i8", (shape[0],), out)
    elif cmd == "st_meta":
        with open(args[0], "rb") as f:
            raw = f.read()
        (hlen,) = struct.unpack("<Q", raw[:8])
        meta = json.loads(raw[8:8 + hlen]).get("__metadata__", {})
        if args[1] not in meta:
            return 1
        print(meta[args[1]])
    elif cmd == "st_finite":
        t = st_read(args[0])
        bad, count = [], 0
        for name, (dtype, shape, data) in t.items():
            if dtype not in ("F32", "F64"):
                continue
            code, size = ("f", 4) if dtype == "F32" else ("d", 8)
            vals = struct.unpack(f"<{len(data) // size}{code}", data)
            count += len(vals)
            if not all(math.isfinite(x) for x in vals):
                bad.append(name)
        print(f"{len(t)} tensors, {count} float values, non-finite in: {', '.join(bad) or 'none'}")
        return 1 if bad or count == 0 else 0
    elif cmd == "st_same":
        a, b = st_read(args[0]), st_read(args[1])
        na = sorted(n for n in a if n.startswith(args[2]))
        nb = sorted(n for n in b if n.startswith(args[2]))
        differ = [n for n in na if n not in b or a[n] != b[n]]
        print(f"{len(na)} tensors {args[2]}*: " + (", ".join(na) if not differ else "differ: " + ", ".join(differ)))
        return 0 if na and na == nb and not differ else 1
    elif cmd == "st_strip":
        t = st_read(args[0])
        header, blob = {}, b""
        for name, (dtype, shape, data) in t.items():
            if name.startswith(args[2]):
                continue
            header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(blob), len(blob) + len(data)]}
            blob += data
        hs = json.dumps(header).encode()
        hs += b" " * ((8 - len(hs) % 8) % 8)
        with open(args[1], "wb") as f:
            f.write(struct.pack("<Q", len(hs)) + hs + blob)
    elif cmd == "rows_shift":
        dtype, shape, values = npy_read(args[0])
        per = len(values) // shape[0]
        start = int(args[2]) * per
        npy_write(args[1], dtype, shape, values[:start] + [v + 1 for v in values[start:]])
    elif cmd == "lift_same":
        _, sa, a = npy_read(args[0])
        _, sb, b = npy_read(args[1])
        if sa != sb:
            print(f"shapes differ: {sa} and {sb}")
            return 1
        e = max(abs(x - y) for x, y in zip(a, b)) / max(max(abs(y) for y in b), 1e-300)
        print(f"{len(a)} values: largest difference {e:.2e} of the largest value")
        return 0 if e <= float(args[2]) else 1
    elif cmd == "lift":
        t = st_read(args[0])

        def tensor(name):
            dtype, shape, data = t[name]
            code, size = {"F32": ("f", 4), "F64": ("d", 8)}[dtype]
            return shape, struct.unpack(f"<{len(data) // size}{code}", data)

        (dim_q, r2), D = tensor(f"__basis.{args[2]}.decoder")
        _, sh = tensor(f"__basis.{args[2]}.shift")
        (dim_m, r1), E = tensor(f"__basis.{args[1]}.encoder")
        _, hs, h = npy_read(args[3])
        _, gs, G = npy_read(args[4])
        _, _, q = npy_read(args[5])
        _, _, J = npy_read(args[6])
        n = hs[0]
        if tuple(hs) != (n, r2) or tuple(gs) != (n, r2, r1):
            print(f"h {hs} and G {gs} are not [n, {r2}] and [n, {r2}, {r1}]")
            return 1
        yq = [sh[o] + sum(D[o * r2 + k] * h[i * r2 + k] for k in range(r2)) for i in range(n) for o in range(dim_q)]
        GE = [[sum(G[(i * r2 + k) * r1 + j] * E[c * r1 + j] for j in range(r1)) for c in range(dim_m)]
              for i in range(n) for k in range(r2)]
        JJ = [sum(D[o * r2 + k] * GE[i * r2 + k][c] for k in range(r2))
              for i in range(n) for o in range(dim_q) for c in range(dim_m)]
        ey = max(abs(a - b) for a, b in zip(yq, q[:len(yq)])) / max(abs(b) for b in q[:len(yq)])
        eJ = max(abs(a - b) for a, b in zip(JJ, J[:len(JJ)])) / max(abs(b) for b in J[:len(JJ)])
        print(f"{n} rows: D h + shift vs q {ey:.2e}, D G E^T vs J {eJ:.2e} (relative to the largest value)")
        return 0 if ey <= float(args[7]) and eJ <= float(args[7]) else 1
    else:
        raise SystemExit(__doc__)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
