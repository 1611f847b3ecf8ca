"""The portfolio plan at scale: 50 sites x 3 converting strategies x 12 start months.

Run:  python benchmarks/bench_portfolio.py [--sites 50] [--loop-sites 3] [--mc 200]

- 50 sites that override the Bitdeer-style hybrid case (sizes 50-400 MW, power
  $25-55/MWh, lease rates $90-160/kW-month, drawn from a seeded generator), each with keep
  mining plus hybrid, ai_hosting and cloud_hybrid from 12 start months (2026-07 to
  2029-04, quarterly): 37 options a site, 1,850 in all.
- Options: sites that differ only in numeric inputs share one vectorised run (each site x
  start month a scenario, up to 600 a run: here one run for all 50 sites); against one
  vectorised run per site (the 12 start months its scenarios, the way before) and the
  baseline of one finmodel.run per option, timed on --loop-sites sites and scaled to 50.
- The choice: the MILP (scipy.optimize.milp, HiGHS) with a capex budget for 2026-2029,
  a funding limit and a cash floor over 180 months, at each --limits time limit
  (value found and gap proven), with all 180 cash rows at once (the old formulation, HiGHS)
  and with the cash floor added lazily, proven by HiGHS and by OR-Tools CP-SAT (the
  default when installed); its LP relaxation (shadow prices), and the greedy ranking.
- The Monte Carlo of the plan's funding shortfall (shared BTC price and hashrate paths),
  --mc scenarios, in this process and on a thread pool.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

import finmodel
from finmodel.portfolio import parse_portfolio
from finmodel.portfolio.company import company_flows
from finmodel.portfolio.montecarlo import funding_shortfall
from finmodel.portfolio.optimise import build_problem, greedy, relaxation, solve, undominated
from finmodel.portfolio.options import MAX_SCENARIOS, evaluate_options, site_groups
from finmodel.portfolio.plan import plan_portfolio

ROOT = Path(__file__).resolve().parents[1]
STARTS = [f"{2026 + (6 + 3 * k) // 12}-{(6 + 3 * k) % 12 + 1:02d}" for k in range(12)]


def portfolio(n_sites: int, seed: int = 2026) -> dict:
    rng = np.random.default_rng(seed)
    sites = {}
    for i in range(n_sites):
        mw = float(rng.choice([50, 75, 100, 150, 200, 300, 400]))
        it = float(np.floor(mw / 1.05))
        ai = float(np.floor(mw / 1.25 * rng.uniform(0.3, 0.6)))
        sites[f"s{i:02d}"] = {
            "site": {"interconnect_mw": mw, "mining_it_mw": it},
            "power": {"contract_mw": mw, "ppa_price_usd_per_mwh": float(rng.uniform(25, 55))},
            "mining": {"hashrate_eh_s": it / 16.5},
            "hosting": {"lease_rate_usd_per_kw_month": float(rng.uniform(90, 160))},
            "strategies": {"hybrid": {"ai_it_mw": ai}, "cloud_hybrid": {"ai_it_mw": ai}},
        }
    return {
        "base_case": "bitdeer_hybrid.toml",
        "company": {"name": f"{n_sites} sites", "cash_usd": 2e9, "shares_outstanding": 5e8,
                    "share_price_usd": 14.0, "overhead_usd_per_year": 2e8,
                    "discount_rate": 0.11},
        "options": {"strategies": ["mining", "hybrid", "ai_hosting", "cloud_hybrid"],
                    "start_months": STARTS},
        "sites": sites,
        "constraints": {"capex_budget_usd_by_year": {str(y): 1.5e9 * n_sites / 50
                                                     for y in range(2026, 2030)},
                        "max_new_funding_usd": 1e9 * n_sites, "min_cash_usd": 3e8},
    }


def best(f, k: int = 3) -> tuple[float, object]:
    times, out = [], None
    for _ in range(k):
        t = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - t)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sites", type=int, default=50)
    ap.add_argument("--loop-sites", type=int, default=3)
    ap.add_argument("--mc", type=int, default=100)
    ap.add_argument("--limits", type=float, nargs="+", default=[60.0],
                    help="MILP time limits to compare (seconds)")
    ap.add_argument("--solvers", nargs="+", default=["highs", "cpsat"],
                    help="solvers of the lazy MILP to compare (highs, cpsat)")
    ap.add_argument("--skip-full", action="store_true",
                    help="leave out the MILP with all 180 cash rows (HiGHS, the old way)")
    args = ap.parse_args()
    data = portfolio(args.sites)
    t_load, lp = best(lambda: parse_portfolio(data, folder=ROOT / "assumptions"), 1)
    t_opts, options = best(lambda: evaluate_options(lp), 2)
    t_site, by_site = best(lambda: evaluate_options(lp, max_scenarios=len(STARTS)), 1)
    assert np.array_equal(by_site.npv_usd, options.npv_usd)
    assert np.array_equal(by_site.cash_usd, options.cash_usd)
    runs_batched = len(site_groups(lp))

    # Baseline: one run per option, on a few sites, scaled.
    names = list(lp.cases)[:args.loop_sites]
    t = time.perf_counter()
    loop_npv = []
    for name in names:
        a = lp.cases[name]
        for s in ["mining", "hybrid", "ai_hosting", "cloud_hybrid"]:
            for m in (STARTS if s != "mining" else [None]):
                b = a if m is None else finmodel.with_values(
                    a, {f"strategies.{s}.conversion_start_month": m})
                loop_npv.append(float(finmodel.run(b, breakevens=False).values[f"{s}.npv"][0]))
    t_loop = (time.perf_counter() - t) * len(lp.cases) / len(names)
    same = np.allclose(loop_npv, options.npv_usd[:len(loop_npv)], rtol=1e-10)

    flows = company_flows(lp.spec, lp.start_month, lp.months)
    problem = build_problem(lp.spec, options, flows)
    t_prune, keep = best(lambda: undominated(problem))
    runs = {}
    for limit in args.limits:
        for lazy, solver in ([] if args.skip_full else [(False, "highs")]) + [
                (True, s) for s in args.solvers]:
            runs[limit, lazy, solver] = best(lambda: solve(
                problem, exact_gains=False, time_limit=limit, lazy=lazy, solver=solver), 1)
    t_lp, _ = best(lambda: relaxation(problem))
    t_greedy, grd = best(lambda: greedy(problem))
    if args.mc:
        plan = plan_portfolio(lp, options=options, exact_gains=False,
                              time_limit=args.limits[0])
        t_mc, mc = best(lambda: funding_shortfall(plan, args.mc), 1)
        with ThreadPoolExecutor(2) as pool:
            t_mc2, mc2 = best(lambda: funding_shortfall(plan, args.mc, executor=pool), 1)

    sol = runs[args.limits[-1], True, args.solvers[-1]][1]
    binding = [c.name + (f" {c.year}" if c.year else "") for c in sol.constraints
               if c.binding]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, numpy {np.__version__}")
    print(f"{len(lp.cases)} sites, {len(options)} options, {lp.months} months; "
          f"{problem.n + 1} variables, {len(problem.years) + lp.months + len(lp.cases)} rows")
    rows = [
        (f"load and validate the portfolio and {len(lp.cases)} cases", t_load),
        (f"options: sites batched, {runs_batched} vectorised run(s) of <= {MAX_SCENARIOS} "
         "scenarios", t_opts),
        ("options: one vectorised run per site (12 scenarios each)", t_site),
        (f"options: one run per option (baseline, {len(names)} sites scaled)", t_loop),
        (f"dominated options left out ({int(keep.sum())} of {problem.n} kept)", t_prune),
        *[(f"MILP {'lazy cash rows' if lazy else 'all 180 cash rows'}, {r[1].solver} + LP "
           f"duals, limit {lim:g} s: {r[1].objective_usd / 1e6:,.1f}M, "
           f"{'optimal' if r[1].optimal else f'gap {r[1].mip_gap:.2%}'}", r[0])
          for (lim, lazy, solver), r in runs.items()],
        ("LP relaxation with duals alone (linprog, HiGHS)", t_lp),
        ("greedy ranking", t_greedy),
    ]
    if args.mc:
        rows += [(f"Monte Carlo of the plan's cash, {args.mc} scenarios, this process", t_mc),
                 (f"Monte Carlo of the plan's cash, {args.mc} scenarios, 2 threads", t_mc2)]
    print(f"{'what':<80}{'seconds':>9}")
    for what, s in rows:
        print(f"{what:<80}{s:>9.3f}")
    print(f"\nspeed-up of the batched options over the loop: {t_loop / t_opts:.0f}x "
          f"(same NPVs: {same}), over a run per site: {t_site / t_opts:.1f}x (identical)")
    print(f"MILP value {sol.objective_usd / 1e6:,.1f}M vs greedy {grd.objective_usd / 1e6:,.1f}M"
          f"; binding: {', '.join(binding)}")
    if args.mc:
        print(f"Monte Carlo: P(shortfall) {mc.summary()['prob_shortfall']:.3f}, identical on the "
              f"thread pool: {np.array_equal(mc.shortfall_usd, mc2.shortfall_usd)}")


if __name__ == "__main__":
    main()
