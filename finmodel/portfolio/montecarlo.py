"""Probability that the chosen plan runs short of cash.

The BTC price and network hashrate follow the analysis layer's geometric-Brownian paths
(:func:`finmodel.analysis.monte_carlo.lognormal_factors`); one set of shocks is drawn per
scenario and shared by every site, so a bad BTC year is bad everywhere at once. Each site's
chosen option is re-run on those paths; the company's cash then rolls forward with the plan's
new money fixed at what the plan raised. The work splits into (site, scenario chunk) jobs on
any ``concurrent.futures`` executor (a dask.distributed client's ``get_executor()``
included); the result does not depend on the split.

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
from finmodel.portfolio.options import option_rows, site_inputs

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


def _site_chunk(job: tuple) -> tuple[np.ndarray, np.ndarray]:
    """(npv (k,), cash (k, months)) of one site's option on a chunk of paths (a top-level
    function, so process pools can pickle it; the case travels as JSON)."""
    case_json, strategy, start, scope, lines, drawn = job
    a = Assumptions.model_validate_json(case_json)
    k = next(iter(lines.values())).shape[0]
    inputs = {**(site_inputs(a, [strategy], [start] * k) if start else {}), **drawn}
    result = run(a, inputs=inputs, lines=lines, breakevens=False)
    npv, cash, _ = option_rows(result, strategy, scope, k)
    return np.array(npv), np.array(cash)


def funding_shortfall(plan, n: int, *, seed: int | None = None,
                      executor: Executor | None = None, chunk: int = CHUNK) -> Shortfall:
    """Monte Carlo of the plan's cash: ``n`` scenarios of shared BTC price and hashrate
    paths (settings from the portfolio's ``[monte_carlo]`` section)."""
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
    draws = site_draws(lp, n, seed)
    bounds = list(range(0, n, chunk)) + [n]
    jobs, owners = [], []
    for site, strategy, start in zip(chosen.site, chosen.strategy, chosen.start_month):
        a = lp.cases[site]
        base = run(a, breakevens=False).values
        for i, j in zip(bounds[:-1], bounds[1:]):
            lines = {PRICE_LINE: base[PRICE_LINE] * f_price[i:j],
                     HASHRATE_LINE: base[HASHRATE_LINE] * f_hash[i:j]}
            drawn = {p: v[i:j] for p, v in draws.get(site, {}).items()}
            jobs.append((a.model_dump_json(), strategy, start, lp.spec.constraints.capex_scope,
                         lines, drawn))
            owners.append((i, j))
    results = list(executor.map(_site_chunk, jobs)) if executor is not None else \
        [_site_chunk(job) for job in jobs]
    cash = np.zeros((n, months))
    npv = np.zeros(n)
    for (i, j), (v, c) in zip(owners, results):
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
