"""The convertible lattice against QuantLib's BinomialCRRConvertibleEngine on the same
bond (Bitdeer's Nov 2025 terms [V1], 6 years, soft call from year 3), by tree size.

Run:  python benchmarks/bench_lattice.py
"""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from finmodel.financing.convertible import value_convertible  # noqa: E402
from tests.quantlib_oracle import build, quantlib_price  # noqa: E402

SPOT, VOL, RATE, SPREAD = 13.94, 0.70, 0.04, 0.06


def best_of(fn, repeat: int = 5) -> tuple[float, float]:
    best, out = float("inf"), 0.0
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main() -> None:
    bond, terms = build(0.04, 6, 0.275, SPOT, 3, 1.3, None)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}")
    print(f"{'steps':>6}{'finmodel s':>12}{'QuantLib s':>12}{'finmodel':>12}{'QuantLib':>12}"
          f"{'diff':>10}")
    for steps in (500, 1000, 2000, 5000):
        t_f, p_f = best_of(lambda s=steps: value_convertible(
            terms, spot=SPOT, volatility=VOL, risk_free_rate=RATE, credit_spread=SPREAD,
            steps=s).price)
        t_q, p_q = best_of(lambda s=steps: quantlib_price(
            bond, spot=SPOT, vol=VOL, rate=RATE, spread=SPREAD, steps=s))
        print(f"{steps:>6}{t_f:>12.4f}{t_q:>12.4f}{p_f:>12.4f}{p_q:>12.4f}"
              f"{(p_f / p_q - 1) * 100:>9.4f}%")


if __name__ == "__main__":
    main()
