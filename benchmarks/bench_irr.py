"""Vectorised IRR against a pyxirr loop, at 10,000 x 240 and 100,000 x 180.

Run:  python benchmarks/bench_irr.py [--repeat 5] [--before DIR]

The series are investment-shaped and seeded (2026): an outlay at month 0, lognormal
monthly inflows around 1/90 of it with a per-series drift, and in a third of the series a
second outlay (a refresh) at month 60, so some series have several sign changes. Each
solver is timed interleaved with the others, best of ``--repeat``; the roots are compared
where both converge. ``--before DIR`` (a checkout of an older finmodel) adds its solver.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import time
from pathlib import Path

import numpy as np
import pyxirr

from common import machine
from finmodel.engine.solve import irr_periodic


def series(n: int, months: int, seed: int = 2026) -> np.ndarray:
    rng = np.random.default_rng(seed)
    drift = rng.normal(0.0, 0.004, (n, 1))
    c = np.exp(rng.normal(0.0, 0.3, (n, months)) + drift * np.arange(months)) / 90.0
    c[:, 0] = -1.0
    refresh = rng.random(n) < 1 / 3
    c[refresh, 60] -= 0.5
    return c * 1e8


def pyxirr_loop(c: np.ndarray, guess: float) -> np.ndarray:
    out = np.empty(len(c))
    for k, row in enumerate(c):
        r = pyxirr.irr(row, guess=guess)
        out[k] = np.nan if r is None else r
    return out


def load_before(src: Path):
    spec = importlib.util.spec_from_file_location("before_solve",
                                                  src / "finmodel" / "engine" / "solve.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.irr_periodic


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--before", type=Path, help="source folder of an older finmodel")
    args = ap.parse_args()
    print(machine(f"numpy {np.__version__}", f"pyxirr {getattr(pyxirr, '__version__', '?')}"))
    guess = 0.01
    solvers = {"pyxirr loop": lambda c: pyxirr_loop(c, guess),
               "finmodel": lambda c: irr_periodic(c, guess=guess)}
    if args.before:
        before = load_before(args.before)
        solvers["finmodel before"] = lambda c: before(c, guess=guess)
    print(f"{'series':>16} " + " ".join(f"{k:>16}" for k in solvers)
          + f" {'pyxirr/finmodel':>16} {'max |diff|':>11} {'both found':>11}")
    for n, months in ((10_000, 240), (100_000, 180)):
        c = series(n, months)
        best = {k: float("inf") for k in solvers}
        roots = {}
        for _ in range(args.repeat):
            for k, fn in solvers.items():
                t = time.perf_counter()
                roots[k] = fn(c)
                best[k] = min(best[k], time.perf_counter() - t)
        a, b = roots["finmodel"], roots["pyxirr loop"]
        both = np.isfinite(a) & np.isfinite(b)
        diff = np.abs(a[both] - b[both]).max()
        print(f"{f'{n:,} x {months}':>16} " + " ".join(f"{best[k]:>16.3f}" for k in solvers)
              + f" {best['pyxirr loop'] / best['finmodel']:>15.2f}x {diff:>11.1e}"
              + f" {both.sum():>6}/{n}")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
