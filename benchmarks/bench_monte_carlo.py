"""Monte Carlo of the whole base case, and the vectorised IRR, against loops.

Run:  python benchmarks/bench_monte_carlo.py [--scenarios 10000] [--loop 500]
      PYTHONPATH=DIR python benchmarks/bench_monte_carlo.py --quick   (finmodel from DIR)

- 10,000 scenarios of assumptions/base.toml at 20 years monthly (240 months), every
  strategy (mining, ai_hosting, hybrid), NPV and IRR of each, from the case's
  [analysis.monte_carlo] (GBM BTC and hashrate paths, three sampled inputs, a copula):
  one call of finmodel.analysis.monte_carlo with each kernel (the compiled loop on one
  thread and on its default threads, the numpy evaluator on one thread), against the same
  scenarios run one at a time through finmodel.run in a loop (the first --loop of them,
  scaled), the numpy evaluator with BLAS on its default threads, and against the floor: a
  plain numpy ``a*b+c`` writing as many elements as the numpy evaluator's lines, in
  chunk-sized arrays.
- What "auto" pays to use the compiled loop: importing numba and loading the compiled
  machine code, in a fresh process.
- The IRR of the 10,000 ai_hosting cash-flow series: finmodel's vectorised IRR against
  pyxirr.irr and numpy_financial.irr called series by series.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import resource
import subprocess
import sys
import time
import tracemalloc

import numpy as np
import numpy_financial as npf
import pyxirr

import finmodel
from common import machine, monte_carlo_case
from finmodel.analysis.monte_carlo import monte_carlo
from finmodel.engine import evaluate as evaluate_module
from finmodel.engine import solve as solve_module
from finmodel.engine.solve import irr_periodic

PINNED = evaluate_module.one_blas_thread


def floor_seconds(elements: int, shape: tuple[int, int], repeat: int = 5) -> float:
    """A plain numpy ``a*b+c`` writing ``elements`` in arrays of ``shape``, best time."""
    rng = np.random.default_rng(0)
    x, y, z = (rng.random(shape) for _ in range(3))
    k = max(1, round(elements / x.size))
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        for _ in range(k):
            x * y + z
        best = min(best, time.perf_counter() - t)
    return best


def elements_written(a, kw, chunk: int) -> int:
    """Elements of every line array the evaluator writes for one chunk."""
    from finmodel.analysis import monte_carlo as mc_module
    from finmodel.analysis.sensitivity import Scenarios
    from finmodel.engine.evaluate import evaluate

    sc = Scenarios.of(a)
    lines = mc_module.path_lines(sc, kw["paths"], kw["seed"], 0, chunk)
    names = [x.name for x in sc.model.metrics() if not x.solved
             and x.metric in ("npv_usd", "project_irr")]
    out = evaluate(sc.model, sc.timeline, sc.scalars, sc.paths, lines, only=names)
    return sum(v.size for v in out.values())


def import_seconds(repeat: int = 3) -> float:
    """Best time a fresh process takes to import numba and load the compiled kernel, less
    the same process importing finmodel alone."""
    def best(code: str) -> float:
        out = float("inf")
        for _ in range(repeat):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True)
            out = min(out, time.perf_counter() - t)
        return out

    load = ("import numpy as np; from finmodel.engine import compiled; "
            "assert compiled.available()")
    return best("import finmodel.engine.compiled; " + load) - best(
        "import finmodel.engine.compiled")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenarios", type=int, default=10_000)
    ap.add_argument("--loop", type=int, default=500, help="single runs timed for the "
                    "baseline (scaled to --scenarios)")
    ap.add_argument("--quick", action="store_true", help="only the Monte Carlo calls and "
                    "the floor, interleaved, best of 3 (to compare finmodel trees)")
    args = ap.parse_args()
    n = args.scenarios
    a, kw = monte_carlo_case()
    has_kernel = "kernel" in inspect.signature(monte_carlo).parameters  # (older trees)
    runs = {"compiled, one thread": dict(kernel="compiled", executor=None),
            "compiled, threads (default)": dict(kernel="compiled", executor="auto"),
            "numpy, one thread": dict(kernel="numpy", executor=None)}
    if not has_kernel:
        runs = {"numpy, one thread": dict(executor=None)}
    for how in runs.values():  # warm-up: imports, numba's cached machine code, caches
        monte_carlo(a, 1200, **how, **kw)
    elements = elements_written(a, kw, 600) * -(-n // 600)
    if args.quick:
        best = dict.fromkeys(runs, float("inf"))
        best_floor = float("inf")
        for _ in range(3):
            for what, how in runs.items():
                t = time.perf_counter()
                monte_carlo(a, n, **how, **kw)
                best[what] = min(best[what], time.perf_counter() - t)
            best_floor = min(best_floor, floor_seconds(elements, (600, 240), repeat=1))
        print(machine(f"finmodel from {finmodel.__file__}"))
        print(f"{n:,} scenarios, floor {best_floor:.2f} s ({elements / 1e6:,.0f} M elements)")
        for what, t in best.items():
            print(f"  {what:<30} {t:6.2f} s   {t / best_floor:5.1f}x the floor")
        return
    # Each kernel, and the numpy evaluator with BLAS on its default threads (the shipped
    # evaluator pins it to one), interleaved, best of 3.
    best = dict.fromkeys([*runs, "numpy, BLAS on its default threads"], float("inf"))
    for _ in range(3):
        for what in best:
            how = runs.get(what, runs["numpy, one thread"])
            if what.startswith("numpy, BLAS"):
                evaluate_module.one_blas_thread = contextlib.nullcontext
                solve_module.one_blas_thread = contextlib.nullcontext
            t = time.perf_counter()
            monte_carlo(a, n, **how, **kw)
            best[what] = min(best[what], time.perf_counter() - t)
            evaluate_module.one_blas_thread = solve_module.one_blas_thread = PINNED
    tracemalloc.start()
    monte_carlo(a, n, **runs[next(iter(runs))], **kw)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    t_floor = floor_seconds(elements, (600, 240))
    t_import = import_seconds()

    # The same scenarios, one finmodel.run each (the first --loop of them, scaled).
    mc = monte_carlo(a, min(args.loop, n), executor=None, keep_lines=True, **kw)
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
    mc = monte_carlo(a, n, executor=None, keep_lines=True, **kw)
    r = finmodel.run(a, inputs={p: mc.inputs[p].to_numpy() for p in mc.inputs.columns},
                     lines=mc.extra["lines"], breakevens=False)
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

    import numba

    print(machine(f"numpy {np.__version__}, numba {numba.__version__}"))
    print(f"case: base.toml at 20 years (240 months), {len(r.model.lines)} lines, "
          f"3 strategies, NPV and IRR of each\n")
    loop_label = f"{n:,} single runs in a loop" + ("" if m == n else f" ({m:,} timed, scaled)")
    print(f"{'what':<58}{'seconds':>10}{'/ floor':>9}{'loop /':>9}")
    print(f"{f'floor: numpy a*b+c writing the same {elements / 1e6:,.0f} M elements':<58}"
          f"{t_floor:>10.2f}")
    for what, t in best.items():
        print(f"{f'{n:,} scenarios, one call, {what}':<58}{t:>10.2f}{t / t_floor:>8.1f}x"
              f"{t_loop / t:>8.0f}x")
    print(f"{loop_label:<58}{t_loop:>10.1f}   (same NPVs: {same})")
    print(f"{'import numba + load the compiled loop (fresh process)':<58}{t_import:>10.2f}")
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
