"""Probability that the chosen plan runs short of cash.

The BTC price and network hashrate follow the analysis layer's geometric-Brownian paths
(:func:`finmodel.analysis.monte_carlo.lognormal_factors`); one set of shocks is drawn per
scenario and shared by every site, so a bad BTC year is bad everywhere at once. Each site's
chosen option is re-run on those paths; the company's cash then rolls forward with the plan's
new money fixed at what the plan raised. The work splits into (sites, scenario chunk) jobs
on any ``concurrent.futures`` executor (a dask.distributed client's ``get_executor()``
included): sites whose cases differ only in numeric inputs share a job, one vectorised run
of their scenarios (at most :data:`~finmodel.portfolio.options.MAX_SCENARIOS`, each site's
values repeated over its chunk), as the options do; the result does not depend on the
split.

Site-level inputs (``[monte_carlo.distributions.SITE]``: power price, lease rate, capex
per MW...) are drawn per scenario, independently for every (site, input), each from its
own generator seeded by ``(seed, site's position in the file, input's position)``: the
draws are made up front, so they do not depend on the chunking, and adding a
distribution to one site leaves every other site's draws unchanged.
"""

from __future__ import annotations

import math
from concurrent.futures import Executor
from dataclasses import dataclass, field

import numpy as np

from finmodel.analysis.monte_carlo import HASHRATE_LINE, TAIL, distribution, lognormal_factors
from finmodel.api import PRICE_LINE, run
from finmodel.inputs.schema import Assumptions
from finmodel.conventions import to_serial
from finmodel.inputs.schema import month_date
from finmodel.portfolio.options import MAX_SCENARIOS, case_groups, option_rows, per_site

#: Scenarios per site evaluation (a run keeps every line of its scenarios in memory).
CHUNK = 100


@dataclass
class Shortfall:
    """Per scenario: the largest amount by which cash fell below the minimum (0 if never),
    and the plan's total site NPV."""

    shortfall_usd: np.ndarray
    sites_npv_usd: np.ndarray
    seed: int
    site_draws: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)

    def summary(self) -> dict[str, float]:
        short = self.shortfall_usd > 0
        return {"scenarios": int(self.shortfall_usd.size), "seed": self.seed,
                "prob_shortfall": float(short.mean()),
                "mean_shortfall_when_short_usd": float(self.shortfall_usd[short].mean())
                if short.any() else 0.0,
                "p95_shortfall_usd": float(np.percentile(self.shortfall_usd, 95)),
                "sites_npv_mean_usd": float(self.sites_npv_usd.mean()),
                "sites_npv_p5_usd": float(np.percentile(self.sites_npv_usd, 5))}


def _sites_chunk(job: tuple) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per site of the job, (npv (k,), cash (k, months)) of its chosen option on a chunk of
    k paths: one run of the sites' scenarios, site by site (a top-level function, so
    process pools can pickle it; the case travels as JSON)."""
    case_json, strategies, scope, lines, inputs, k = job
    a = Assumptions.model_validate_json(case_json)
    result = run(a, inputs=inputs, lines=lines, breakevens=False)
    out = []
    for q, strategy in enumerate(strategies):
        npv, cash, _ = option_rows(result, strategy, scope, k * len(strategies))
        out.append((np.array(npv[q * k:(q + 1) * k]), np.array(cash[q * k:(q + 1) * k])))
    return out


def funding_shortfall(plan, n: int, *, seed: int | None = None,
                      executor: Executor | None = None, chunk: int = CHUNK,
                      max_scenarios: int = MAX_SCENARIOS) -> Shortfall:
    """Monte Carlo of the plan's cash: ``n`` scenarios of shared BTC price and hashrate
    paths (settings from the portfolio's ``[monte_carlo]`` section).

    ``chunk`` scenarios of a site go into one run, with as many sites that differ only in
    numeric inputs as keep the run within ``max_scenarios`` (1 runs each site alone)."""
    lp = plan.portfolio
    mc = lp.spec.monte_carlo
    seed = mc.seed if seed is None else seed
    months = lp.months
    rng = np.random.default_rng(seed)
    z1 = rng.standard_normal((n, months))
    z2 = mc.path_correlation * z1 + math.sqrt(1 - mc.path_correlation ** 2) * \
        rng.standard_normal((n, months))
    f_price = lognormal_factors(z1, mc.btc_price_volatility)
    f_hash = lognormal_factors(z2, mc.hashrate_volatility)
    chosen = plan.chosen
    pick = {site: (strategy, start) for site, strategy, start in
            zip(chosen.site, chosen.strategy, chosen.start_month)}
    draws = site_draws(lp, n, seed)
    scope = lp.spec.constraints.capex_scope
    bounds = list(range(0, n, chunk)) + [n]
    groups = case_groups({site: lp.cases[site] for site in pick},
                         max_scenarios // max(min(chunk, n), 1))
    jobs, owners = [], []
    # (a drawn input or a start month set in one case of a group is set in all: the cases
    # of a group have the same inputs, _numeric_diff)
    for ref, values, names, diffs in groups:
        paths = list(dict.fromkeys(p for d in diffs for p in d))
        fixed = {p: np.array(per_site(values, diffs, p), dtype=float) for p in paths}
        base = run(ref, inputs=fixed, breakevens=False).values
        rows = {line: np.broadcast_to(base[line], (len(names), months))
                for line in (PRICE_LINE, HASHRATE_LINE)}
        starts = {}  # each chosen converting strategy's start month, per site
        for q, name in enumerate(names):
            strategy, start = pick[name]
            if start:
                starts.setdefault(f"strategies.{strategy}.conversion_start_month", {})[q] = \
                    to_serial(month_date(start))
        varied = list(dict.fromkeys([*paths, *starts,
                                     *(p for name in names for p in draws.get(name, {}))]))
        for i, j in zip(bounds[:-1], bounds[1:]):
            k = j - i
            lines = {PRICE_LINE: np.vstack([rows[PRICE_LINE][q] * f_price[i:j]
                                            for q in range(len(names))]),
                     HASHRATE_LINE: np.vstack([rows[HASHRATE_LINE][q] * f_hash[i:j]
                                               for q in range(len(names))])}
            inputs = {}
            for p in varied:
                own = per_site(values, diffs, p)
                blocks = []
                for q, name in enumerate(names):
                    if p in draws.get(name, {}):
                        blocks.append(draws[name][p][i:j])
                    elif q in starts.get(p, {}):
                        blocks.append(np.full(k, starts[p][q]))
                    else:
                        blocks.append(np.repeat(np.array([own[q]], dtype=float), k, axis=0))
                inputs[p] = np.concatenate(blocks)
            jobs.append((ref.model_dump_json(), [pick[name][0] for name in names], scope,
                         lines, inputs, k))
            owners.append((i, names))
    results = list(executor.map(_sites_chunk, jobs)) if executor is not None else \
        [_sites_chunk(job) for job in jobs]
    got = {(name, i): vc for (i, names), res in zip(owners, results)
           for name, vc in zip(names, res)}
    cash = np.zeros((n, months))
    npv = np.zeros(n)
    for site in chosen.site:  # site by site, as one run per site would add them
        for i, j in zip(bounds[:-1], bounds[1:]):
            v, c = got[site, i]
            cash[i:j] += c
            npv[i:j] += v
    flows = plan.flows
    balance = lp.spec.company.cash_usd + np.cumsum(
        cash + flows.fixed_usd + flows.new_per_usd * plan.solution.funding_usd, axis=1)
    short = np.maximum(0.0, (lp.spec.constraints.min_cash_usd - balance).max(axis=1))
    return Shortfall(short, npv, seed, draws)


def site_draws(lp, n: int, seed: int) -> dict[str, dict[str, np.ndarray]]:
    """``n`` draws of every site-level input: site -> field path -> values."""
    out: dict[str, dict[str, np.ndarray]] = {}
    order = list(lp.spec.sites)
    for site, dists in lp.spec.monte_carlo.distributions.items():
        out[site] = {}
        for q, (path, spec) in enumerate(dists.items()):
            rng = np.random.default_rng([seed, 1 + order.index(site), q])
            u = np.clip(rng.random(n), TAIL, 1 - TAIL)  # the tails the loader checked
            out[site][path] = distribution(path, spec).ppf(u)
    return out
