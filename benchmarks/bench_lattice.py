"""The convertible lattice against QuantLib's BinomialCRRConvertibleEngine on the same
bond (Bitdeer's Nov 2025 terms [V1], 6 years, soft call from year 3), by tree size.

Run:  python benchmarks/bench_lattice.py [--repeat 7] [--before DIR]

finmodel's lattice (compiled by numba, and the numpy rollback) and QuantLib's, interleaved,
best of ``--repeat``, after one warm-up call each; ``--before DIR`` (a checkout of an older
finmodel) adds its lattice and the relative difference of prices. Then the one-time cost
of the compiled kernel in a fresh process: importing numba and the first call (machine code
loaded from numba's cache, or compiled when there is none).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from finmodel.financing.convertible import value_convertible  # noqa: E402
from tests.quantlib_oracle import build, quantlib_price  # noqa: E402

SPOT, VOL, RATE, SPREAD = 13.94, 0.70, 0.04, 0.06


def load_before(src: Path):
    spec = importlib.util.spec_from_file_location(
        "before_convertible", src / "finmodel" / "financing" / "convertible.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look themselves up there
    spec.loader.exec_module(mod)
    return mod.value_convertible


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--before", type=Path, help="source folder of an older finmodel")
    args = ap.parse_args()
    bond, terms = build(0.04, 6, 0.275, SPOT, 3, 1.3, None)
    kw = dict(spot=SPOT, volatility=VOL, risk_free_rate=RATE, credit_spread=SPREAD)
    pricers = {"finmodel": lambda s: value_convertible(terms, steps=s, kernel="compiled",
                                                       **kw).price,
               "numpy": lambda s: value_convertible(terms, steps=s, kernel="numpy", **kw).price,
               "QuantLib": lambda s: quantlib_price(bond, spot=SPOT, vol=VOL, rate=RATE,
                                                    spread=SPREAD, steps=s)}
    if args.before:
        old = load_before(args.before)
        pricers["before"] = lambda s: old(terms, steps=s, **kw).price
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, load average {os.getloadavg()[0]:.2f}")
    print(f"{'steps':>6}" + "".join(f"{k + ' s':>14}" for k in pricers)
          + f"{'finmodel/QL':>12}{'finmodel':>12}{'QuantLib':>12}{'diff':>10}"
          + (f"{'vs before':>11}" if args.before else ""))
    for fn in pricers.values():
        fn(50)  # warm-up: numba's import and machine code are paid once per process
    for steps in (500, 1000, 2000, 5000):
        best = {k: float("inf") for k in pricers}
        price = {}
        for _ in range(args.repeat):  # interleaved, best of N
            for k, fn in pricers.items():
                t = time.perf_counter()
                price[k] = fn(steps)
                best[k] = min(best[k], time.perf_counter() - t)
        p_f, p_q = price["finmodel"], price["QuantLib"]
        line = (f"{steps:>6}" + "".join(f"{best[k]:>14.4f}" for k in pricers)
                + f"{best['finmodel'] / best['QuantLib']:>11.2f}x{p_f:>12.4f}{p_q:>12.4f}"
                  f"{(p_f / p_q - 1) * 100:>9.4f}%")
        assert price["numpy"] == p_f  # the same bits either way
        if args.before:
            line += f"{abs(p_f / price['before'] - 1):>11.1e}"
        print(line)
    code = ("import time; t = time.perf_counter(); import numba; t1 = time.perf_counter(); "
            "from finmodel.financing.convertible import _compiled_blended as c; c(); "
            "from benchmarks.bench_lattice import first_call; t2 = time.perf_counter(); "
            "first_call(); t3 = time.perf_counter(); "
            "print(f'{t1 - t:.3f} {t3 - t2:.3f}')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1], check=True).stdout.split()
    print(f"one-time cost of the compiled kernel in a fresh process: import numba "
          f"{float(out[0]):.2f} s, first 1,000-step lattice {float(out[1]):.2f} s")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


def first_call() -> None:
    """One compiled 1,000-step lattice (for the fresh-process timing above)."""
    _, terms = build(0.04, 6, 0.275, SPOT, 3, 1.3, None)
    value_convertible(terms, steps=1000, kernel="compiled", spot=SPOT, volatility=VOL,
                      risk_free_rate=RATE, credit_spread=SPREAD)


if __name__ == "__main__":
    main()
