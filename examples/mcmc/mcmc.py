#!/usr/bin/env python3
"""mcmc.py - the Bayesian inverse problem of examples/poisson, sampled with a DINO surrogate.

Unknown: the 64 Karhunen-Loeve coefficients m of the log-diffusivity u(x) (prior N(0, I)).
Data: the state at the 16 sensors for a true m drawn from the prior, plus Gaussian noise.
Posterior: pi(m | d) ~ exp(-|q(m) - d|^2 / (2 sigma^2) - |m|^2 / 2).

The sampler is preconditioned MALA (Langevin): the preconditioner is the covariance of the
Laplace approximation at the MAP point (Gauss-Newton Hessian J^T J / sigma^2 + I, from the
Jacobian), and every step needs the forward map and its Jacobian (the gradient J^T r). The same
code runs twice: with the trained DINO surrogate (dino.load(...).value_and_jacobian) and with
the true PDE solver (dino-gen-poisson's, through examples/mcmc/pde.c), and the script reports
for both: cost per step, acceptance, effective sample size (ESS) and ESS per second, the error
of the posterior mean against the truth, and how well the two posteriors agree. It writes
posterior.png: the true field u, the posterior means (surrogate, PDE), the surrogate's std.

usage: python3 examples/mcmc/mcmc.py [--build build] [--work build/mcmc] [--steps 20000]
       [--pde-steps 3000] [--epochs 300] [--noise 0.01] [--seed 7]
Needs numpy and the dino package (pip install . or PYTHONPATH=python with DINO_LIBRARY).
"""
import argparse
import ctypes
import os
import struct
import subprocess
import sys
import time
import zlib

import numpy as np

import dino

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GRID, KL, SENSORS, REACTION = 31, 64, 4, 1.0   # dino-gen-poisson's defaults (the training data's)


# ---------------------------------------------------------------------------- forward models

class PDE:
    """The true forward map: dino-gen-poisson's Newton solver and adjoint Jacobian (pde.c)."""

    def __init__(self, path):
        lib = ctypes.CDLL(path)
        P, D = ctypes.c_void_p, ctypes.c_double
        lib.pde_new.restype, lib.pde_new.argtypes = P, [ctypes.c_int, ctypes.c_int, ctypes.c_int, D]
        lib.pde_solve.restype, lib.pde_solve.argtypes = ctypes.c_int, [P, P, P, P]
        lib.pde_field.restype, lib.pde_field.argtypes = None, [P, P, P]
        lib.pde_free.argtypes = [P]
        self.lib, self.h = lib, lib.pde_new(GRID, KL, SENSORS, REACTION)
        if not self.h:
            raise RuntimeError("pde_new failed")

    def value_and_jacobian(self, m):
        m = np.ascontiguousarray(m, dtype=np.float64)
        q, J = np.empty(SENSORS ** 2), np.empty((SENSORS ** 2, KL))
        if self.lib.pde_solve(self.h, m.ctypes.data, q.ctypes.data, J.ctypes.data):
            raise RuntimeError("Newton did not converge")
        return q, J

    def __call__(self, m):
        m = np.ascontiguousarray(m, dtype=np.float64)
        q = np.empty(SENSORS ** 2)
        if self.lib.pde_solve(self.h, m.ctypes.data, q.ctypes.data, None):
            raise RuntimeError("Newton did not converge")
        return q

    def field(self, m):
        """u(m) at the (G+2) x (G+2) nodes, [J, I] (x1 along the columns)."""
        m = np.ascontiguousarray(m, dtype=np.float64)
        u = np.empty((GRID + 2) ** 2)
        self.lib.pde_field(self.h, m.ctypes.data, u.ctypes.data)
        return u.reshape(GRID + 2, GRID + 2)


# ---------------------------------------------------------------------------- the posterior

class Posterior:
    """-log pi(m | d) = |q(m) - d|^2 / (2 sigma^2) + |m|^2 / 2, and its gradient."""

    def __init__(self, forward, d, sigma):
        self.f, self.d, self.s2 = forward, d, sigma ** 2

    def energy_and_gradient(self, m):
        q, J = self.f.value_and_jacobian(m)
        r = q - self.d
        return 0.5 * (r @ r) / self.s2 + 0.5 * (m @ m), J.T @ r / self.s2 + m, J

    def map_point(self, iters=50):
        """The MAP point by Gauss-Newton with backtracking, and the Gauss-Newton Hessian there."""
        m = np.zeros(KL)
        U, g, J = self.energy_and_gradient(m)
        for _ in range(iters):
            H = J.T @ J / self.s2 + np.eye(KL)
            step = -np.linalg.solve(H, g)
            t = 1.0
            while True:
                U1, g1, J1 = self.energy_and_gradient(m + t * step)
                if U1 <= U + 1e-4 * t * (g @ step) or t < 1e-6:
                    break
                t /= 2
            m, U, g, J = m + t * step, U1, g1, J1
            if np.linalg.norm(t * step) < 1e-9 * (1 + np.linalg.norm(m)):
                break
        return m, J.T @ J / self.s2 + np.eye(KL)


def mala(post, m0, H, steps, burn, rng, target=0.574):
    """Preconditioned MALA with covariance C = H^-1 (the Laplace approximation's): proposal
    m' = m - (tau/2) C grad U(m) + sqrt(tau) L xi, L L^T = C; tau adapted during burn-in towards
    the acceptance `target`, then fixed. Returns the samples after burn-in, the acceptance rate
    after burn-in, the final tau and the seconds spent after burn-in."""
    C = np.linalg.inv(H)
    C = (C + C.T) / 2
    L = np.linalg.cholesky(C)
    m = m0.copy()
    U, g, _ = post.energy_and_gradient(m)
    tau, accepted, out = 1.0, 0, np.empty((steps, KL))
    t0 = None
    for i in range(burn + steps):
        if i == burn:
            t0, accepted = time.perf_counter(), 0
        mean = m - 0.5 * tau * (C @ g)
        prop = mean + np.sqrt(tau) * (L @ rng.standard_normal(KL))
        U1, g1, _ = post.energy_and_gradient(prop)
        back = prop - 0.5 * tau * (C @ g1)
        fwd_r, back_r = prop - mean, m - back   # |v|^2_{C^-1} = v^T H v
        log_a = -U1 + U - (back_r @ H @ back_r) / (2 * tau) + (fwd_r @ H @ fwd_r) / (2 * tau)
        acc = np.log(rng.uniform()) < log_a
        if acc:
            m, U, g = prop, U1, g1
            accepted += 1
        if i < burn:   # Robbins-Monro on log tau
            tau *= np.exp((min(1.0, np.exp(min(log_a, 0))) - target) / np.sqrt(i + 1))
        else:
            out[i - burn] = m
    return out, accepted / steps, tau, time.perf_counter() - t0


def ess(x):
    """Effective sample size of a chain (Geyer's initial positive sequence on the FFT
    autocorrelation)."""
    n = len(x)
    x = x - x.mean()
    f = np.fft.rfft(x, 2 * n)
    acf = np.fft.irfft(f * np.conj(f))[:n]
    if acf[0] <= 0:
        return float(n)
    acf /= acf[0]
    tau = -1.0
    for k in range(0, n - 1, 2):
        pair = acf[k] + acf[k + 1]
        if pair <= 0:
            break
        tau += 2 * pair
    return n / max(tau, 1e-12)


# ---------------------------------------------------------------------------- the picture

def write_png(path, rgb):
    """An 8-bit RGB PNG of rgb [H, W, 3] (uint8), with zlib alone."""
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[i].tobytes() for i in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def colour(a, lo, hi, diverging=True):
    """Blue-white-red (diverging) or white-to-black (sequential) colours of a in [lo, hi]."""
    t = np.clip((a - lo) / (hi - lo), 0, 1)
    if diverging:
        r = np.where(t < 0.5, 2 * t, 1.0)
        b = np.where(t < 0.5, 1.0, 2 * (1 - t))
        g = np.minimum(r, b)
    else:
        r = g = b = 1 - t
    return (np.stack([r, g, b], -1) * 255).astype(np.uint8)


def picture(path, fields, std, scale=8, gap=8):
    """Panels side by side, x2 upwards: the fields on one colour scale, then std on its own."""
    lim = max(np.abs(f).max() for f in fields)
    panels = [colour(f, -lim, lim) for f in fields] + [colour(std, 0, std.max(), diverging=False)]
    panels = [np.kron(p[::-1], np.ones((scale, scale, 1), np.uint8)) for p in panels]
    h = panels[0].shape[0]
    white = np.full((h, gap, 3), 255, np.uint8)
    row = np.concatenate(sum(([p, white] for p in panels), [])[:-1], axis=1)
    write_png(path, np.pad(row, ((gap, gap), (gap, gap), (0, 0)), constant_values=255))


# ---------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"), help="the CMake build folder")
    ap.add_argument("--work", default=None, help="data, checkpoint and results (default BUILD/mcmc)")
    ap.add_argument("--steps", type=int, default=20000, help="surrogate chain length after burn-in")
    ap.add_argument("--pde-steps", type=int, default=3000, help="PDE chain length after burn-in")
    ap.add_argument("--epochs", type=int, default=300, help="training epochs of the surrogate")
    ap.add_argument("--noise", type=float, default=0.01, help="noise std as a fraction of max |q|")
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    work = a.work or os.path.join(a.build, "mcmc")
    os.makedirs(work, exist_ok=True)
    spec = os.path.join(ROOT, "specs", "poisson.dino")
    data, ckpt = os.path.join(work, "data"), os.path.join(work, f"poisson_{a.epochs}.safetensors")

    if not os.path.exists(os.path.join(data, "J_data.npy")):
        print("generating 2000 PDE solves with dino-gen-poisson ...", flush=True)
        subprocess.run([os.path.join(a.build, "dino-gen-poisson"), "--out", data, "-q"], check=True)
    if not os.path.exists(ckpt):
        print(f"training specs/poisson.dino for {a.epochs} epochs ...", flush=True)
        t = time.perf_counter()
        h = dino.train(spec, data=data, epochs=a.epochs, save=ckpt)
        e = h[-1]
        print(f"  {time.perf_counter() - t:.1f} s, test rel_l2 {e['rel_l2']:.2e}, rel_h1 {e['rel_h1']:.2e}")
        h.model.close()

    surrogate = dino.load(spec, ckpt, precision="f64")   # f64: MALA's acceptance ratio in f64
    pde = PDE(os.path.join(a.build, "examples", "libdino-poisson-pde.so"))
    rng = np.random.default_rng(a.seed)
    m_true = rng.standard_normal(KL)
    q_true = pde(m_true)
    sigma = a.noise * np.abs(q_true).max()
    d = q_true + sigma * rng.standard_normal(q_true.shape)
    print(f"truth: a prior draw (seed {a.seed}); {SENSORS ** 2} observations, noise sigma = {sigma:.4f} "
          f"({a.noise:g} of max |q|)")
    print(f"surrogate: {surrogate}")

    results = {}
    for name, forward, steps in (("DINO surrogate", surrogate, a.steps), ("PDE solver", pde, a.pde_steps)):
        post = Posterior(forward, d, sigma)
        t = time.perf_counter()
        m_map, H = post.map_point()
        t_map = time.perf_counter() - t
        burn = max(steps // 10, 500)
        chain, acc, tau, secs = mala(post, m_map, H, steps, burn, np.random.default_rng(a.seed + 1))
        e = np.array([ess(chain[:, k]) for k in range(KL)])
        results[name] = dict(chain=chain, map=m_map, acc=acc, ess=e, secs=secs, steps=steps, t_map=t_map)
        print(f"\n{name}: MAP (Gauss-Newton) in {t_map * 1e3:.1f} ms; {steps} MALA steps after {burn} of burn-in, tau {tau:.3f}")
        print(f"  cost per step     {secs / steps * 1e3:.3f} ms")
        print(f"  acceptance        {acc:.3f}")
        print(f"  ESS (64 coeffs)   min {e.min():.0f}, median {np.median(e):.0f}")
        print(f"  min ESS / second  {e.min() / secs:.1f}")

    s, p = results["DINO surrogate"], results["PDE solver"]
    ms, mp = s["chain"].mean(0), p["chain"].mean(0)
    vs, vp = s["chain"].var(0), p["chain"].var(0)
    u_true = pde.field(m_true)
    u_s, u_p = pde.field(ms), pde.field(mp)
    # the posterior std of u: u is linear in m, so map the samples
    us = np.array([pde.field(x) for x in s["chain"][:: max(1, len(s["chain"]) // 2000)]])
    rel = lambda u: np.linalg.norm(u - u_true) / np.linalg.norm(u_true)
    z = np.abs(ms - mp) / np.sqrt(vp)
    print("\nposterior mean against the truth (relative L2 error of the field u; the prior mean 0 has 1.0):")
    print(f"  DINO surrogate    {rel(u_s):.3f}")
    print(f"  PDE solver        {rel(u_p):.3f}")
    row = lambda v: " ".join(f"{x:+.2f}" for x in v[:8])
    print(f"  KL coefficients 0-7: truth      {row(m_true)}")
    print(f"                       DINO mean  {row(ms)}")
    print(f"                       PDE mean   {row(mp)}")
    print("agreement of the two posteriors:")
    print(f"  |mean_DINO - mean_PDE| / std_PDE   median {np.median(z):.3f}, max {z.max():.3f}")
    print(f"  var_DINO / var_PDE                 median {np.median(vs / vp):.3f}, "
          f"range {np.min(vs / vp):.3f} .. {np.max(vs / vp):.3f}")
    print(f"  field means: |u_DINO - u_PDE| / |u_PDE|  {np.linalg.norm(u_s - u_p) / np.linalg.norm(u_p):.3f}")
    speed = (s["ess"].min() / s["secs"]) / (p["ess"].min() / p["secs"])
    print(f"surrogate speed-up: {p['secs'] / p['steps'] / (s['secs'] / s['steps']):.0f}x per step, "
          f"{speed:.0f}x in min ESS per second")
    png = os.path.join(work, "posterior.png")
    picture(png, [u_true, u_s, u_p], us.std(0))
    print(f"wrote {png}: u true | posterior mean (DINO) | posterior mean (PDE) | posterior std (DINO)")
    surrogate.close()


if __name__ == "__main__":
    sys.exit(main())
