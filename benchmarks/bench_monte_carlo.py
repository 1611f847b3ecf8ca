"""Monte Carlo of the whole base case, and the vectorised IRR, against loops.

Run:  python benchmarks/bench_monte_carlo.py [--scenarios 10000] [--loop 10000]

- 10,000 scenarios of assumptions/base.toml at 20 years monthly (240 months), every
  strategy (mining, ai_hosting, hybrid), NPV and IRR of each, from the case's
  [analysis.monte_carlo] (GBM BTC and hashrate paths, three sampled inputs, a copula):
  one call of finmodel.analysis.monte_carlo, against the same scenarios run one at a
  time through finmodel.run in a loop.
- The IRR of the 10,000 ai_hosting cash-flow series: finmodel's vectorised IRR against
  pyxirr.irr and numpy_financial.irr called series by series.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import time
import tracemalloc
from pathlib import Path

import numpy as np
import numpy_financial as npf
import pyxirr

import finmodel
from finmodel.analysis.monte_carlo import Paths, monte_carlo
from finmodel.engine.solve import irr_periodic

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenarios", type=int, default=10_000)
    ap.add_argument("--loop", type=int, default=10_000, help="single runs in the baseline")
    args = ap.parse_args()
    n = args.scenarios
    a = finmodel.with_values(finmodel.load_assumptions(ROOT / "assumptions" / "base.toml"),
                             {"case.horizon_years": 20})
    spec = a.analysis.monte_carlo
    kw = dict(distributions=spec.distributions,
              correlations={(c.a, c.b): c.rho for c in spec.correlations},
              paths=Paths(spec.btc_price_volatility, spec.hashrate_volatility,
                          spec.path_correlation), seed=spec.seed)
    monte_carlo(a, 200, executor=None, **kw)  # warm-up: imports, caches
    times = []
    for _ in range(3):
        t = time.perf_counter()
        mc = monte_carlo(a, n, **kw)
        times.append(time.perf_counter() - t)
    t_vec = min(times)
    tracemalloc.start()
    monte_carlo(a, n, **kw)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()

    # The same scenarios, one finmodel.run each.
    m = min(args.loop, n)
    lines = mc.extra["lines"]
    t = time.perf_counter()
    loop_npv = []
    for k in range(m):
        changes = {p: float(mc.inputs[p].iloc[k]) for p in mc.inputs.columns}
        r = finmodel.run(finmodel.with_values(a, changes),
                         lines={name: v[k] for name, v in lines.items()}, breakevens=False)
        loop_npv.append(r.summary.loc["npv_usd", "hybrid"])
    t_loop = (time.perf_counter() - t) * n / m
    same = np.allclose(loop_npv, mc.samples[("hybrid", "npv_usd")].to_numpy()[:m],
                       rtol=1e-9)

    # IRR: the ai_hosting cash flows of every scenario.
    r = finmodel.run(a, inputs={p: mc.inputs[p].to_numpy() for p in mc.inputs.columns},
                     lines=lines, breakevens=False)
    flows = np.broadcast_to(r.values["ai_hosting.unlevered_fcf_usd"], (n, 240)).copy()
    t = time.perf_counter()
    ours = irr_periodic(flows)
    t_irr = time.perf_counter() - t
    t = time.perf_counter()
    ref = np.array([pyxirr.irr(x, guess=0.01, silent=True) or np.nan for x in flows])
    t_pyxirr = time.perf_counter() - t
    k_npf = min(n, 1000)
    t = time.perf_counter()
    ref_npf = np.array([npf.irr(x) for x in flows[:k_npf]])
    t_npf = (time.perf_counter() - t) * n / k_npf
    both = np.isfinite(ours) & np.isfinite(ref)
    agree = np.abs(ours[both] - ref[both]).max() if both.any() else float("nan")
    npf_both = np.isfinite(ours[:k_npf]) & np.isfinite(ref_npf) & \
        (np.abs(ref_npf - ref[:k_npf]) < 1e-6)
    agree_npf = np.abs(ours[:k_npf][npf_both] - ref_npf[npf_both]).max()

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, numpy {np.__version__}")
    print(f"case: base.toml at 20 years (240 months), {len(r.model.lines)} lines, "
          f"3 strategies, NPV and IRR of each\n")
    print(f"{'what':<58}{'seconds':>10}")
    print(f"{f'{n:,} Monte Carlo scenarios, one call (best of 3)':<58}{t_vec:>10.2f}")
    loop_label = f"{n:,} single runs in a loop" + ("" if m == n else f" ({m:,} timed, scaled)")
    print(f"{loop_label:<58}{t_loop:>10.1f}")
    print(f"{'speed-up':<58}{t_loop / t_vec:>9.0f}x   (same NPVs: {same})")
    print(f"{'peak memory traced in the Monte Carlo call':<58}"
          f"{peak / 2**20:>7.0f} MiB")
    print(f"{'process peak resident memory':<58}"
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:>7.0f} MiB\n")
    print(f"{f'IRR of {n:,} series of 240 months':<58}")
    print(f"{'  finmodel irr_periodic (vectorised)':<58}{t_irr:>10.3f}")
    print(f"{'  pyxirr.irr in a loop':<58}{t_pyxirr:>10.3f}")
    print(f"{'  numpy_financial.irr in a loop' + ('' if k_npf == n else ' (1,000, scaled)'):<58}"
          f"{t_npf:>10.2f}")
    print(f"  max |difference| where both converge: pyxirr {agree:.1e}, numpy-financial "
          f"{agree_npf:.1e} ({both.sum():,} and {npf_both.sum():,} series)")


if __name__ == "__main__":
    main()
