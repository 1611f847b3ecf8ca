"""Mining model: 1,000 scenarios in one vectorised pass against 1,000 single runs in a
loop, and the workbook export (with LibreOffice's recalculation of it as a reference).

Run:  python benchmarks/bench_mining.py [--scenarios 1000]
Prints a table; the figures and the machine are written down in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

import finmodel
from finmodel.excel.libreoffice import recalculate, soffice

ROOT = Path(__file__).resolve().parents[1]


def gbm_paths(n: int, months: int, s0: float, mu: float, sigma: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    dt = 1 / 12
    steps = (mu - 0.5 * sigma ** 2) * dt + sigma * np.sqrt(dt) * rng.standard_normal((n, months))
    steps[:, 0] = 0.0
    return s0 * np.exp(np.cumsum(steps, axis=1))


def timed(fn, repeat: int = 3) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenarios", type=int, default=1000)
    args = ap.parse_args()
    n = args.scenarios
    a = finmodel.load_assumptions(ROOT / "assumptions" / "base.toml")
    months = a.case.horizon_years * 12
    paths = gbm_paths(n, months, 90_000.0, 0.10, 0.60, seed=2026)

    rows = []
    t_vec, res = timed(lambda: finmodel.run(a, lines={"network.btc_price_usd": paths},
                                            breakevens=False))
    rows.append((f"{n} price paths, one vectorised pass", t_vec, t_vec / n))
    # (what, seconds, seconds per scenario or None)
    t_vec_be, res_be = timed(lambda: finmodel.run(a, lines={"network.btc_price_usd": paths}),
                             repeat=1)
    rows.append((f"{n} price paths, one pass + {n} break-evens", t_vec_be, t_vec_be / n))

    tracemalloc.start()
    finmodel.run(a, lines={"network.btc_price_usd": paths}, breakevens=False)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()

    t0 = time.perf_counter()
    npvs = [finmodel.run(a, lines={"network.btc_price_usd": paths[k]}, breakevens=False)
            .summary.loc["npv_usd", "mining"] for k in range(n)]
    t_loop = time.perf_counter() - t0
    rows.append((f"{n} single-scenario runs in a loop", t_loop, t_loop / n))
    same = np.allclose(res.metrics("mining")["npv_usd"].to_numpy(), npvs, rtol=1e-12)

    single = finmodel.run(a)
    with tempfile.TemporaryDirectory() as d:
        t_x, _ = timed(lambda: finmodel.export_excel(single, Path(d) / "base.xlsx"))
        rows.append(("export the base workbook (XlsxWriter)", t_x, None))
        if soffice():
            t_lo, _ = timed(lambda: recalculate(Path(d) / "base.xlsx", Path(d) / "lo"),
                            repeat=1)
            rows.append(("LibreOffice: open, recalculate, save it", t_lo, None))

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, numpy {np.__version__}")
    print(f"case: assumptions/base.toml, {months} months; "
          f"{len(single.model.lines)} lines, {len(single.model.scalars)} scalars\n")
    print(f"{'what':<48}{'seconds':>10}{'per scenario':>16}")
    for what, t, per in rows:
        each = f"{per * 1e3:>13.3f} ms" if per is not None else f"{'-':>16}"
        print(f"{what:<48}{t:>10.3f}{each}")
    print(f"\nspeed-up of the vectorised pass over the loop: {t_loop / t_vec:,.0f}x "
          f"(same NPVs: {same})")
    print(f"peak memory traced in the vectorised pass: {peak / 2**20:,.1f} MiB")


if __name__ == "__main__":
    main()
