"""Every (site, strategy, start month) option, evaluated with the single-site model.

All options of one site are one vectorised run: each candidate start month is a scenario
(the conversion start month is an input like any other), and every strategy of the case is
evaluated in the same pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from finmodel.api import Result, run
from finmodel.conventions import to_serial
from finmodel.inputs.schema import Assumptions, month_date
from finmodel.portfolio.load import LoadedPortfolio

MINING = "mining"


@dataclass
class Options:
    """Options of every site, one row each (all arrays share the first axis)."""

    site: np.ndarray  # site name
    strategy: np.ndarray  # strategy name of the site's case
    start_month: np.ndarray  # 'YYYY-MM', '' for keep mining
    npv_usd: np.ndarray
    value_of_converting_usd: np.ndarray  # npv minus the site's keep-mining npv
    cash_usd: np.ndarray  # (options, months): unlevered free cash flow without terminal value
    capex_usd: np.ndarray  # (options, months): capex counted against the budget (positive)
    periods: pd.PeriodIndex
    allowed: np.ndarray  # may be chosen (keep mining is always evaluated, for "before")

    def __len__(self) -> int:
        return len(self.site)

    @property
    def sites(self) -> list[str]:
        return list(dict.fromkeys(self.site.tolist()))

    @property
    def years(self) -> np.ndarray:
        return np.unique(self.periods.year)

    def capex_by_year(self) -> pd.DataFrame:
        """Options x calendar years: capex counted against the budget (positive)."""
        yrs = np.asarray(self.periods.year)
        return pd.DataFrame({y: self.capex_usd[:, yrs == y].sum(axis=1) for y in self.years})

    def funding_need(self) -> np.ndarray:
        """(options, months): cash an option has consumed so far and not yet returned."""
        return np.maximum(0.0, -np.cumsum(self.cash_usd, axis=1))

    def label(self, i: int) -> str:
        s, m = self.strategy[i], self.start_month[i]
        return f"{s} from {m}" if m else "keep mining"

    def frame(self) -> pd.DataFrame:
        """One row per option: site, strategy, start month, NPV, value of converting,
        peak funding need."""
        return pd.DataFrame({"site": self.site, "strategy": self.strategy,
                             "start_month": self.start_month, "npv_usd": self.npv_usd,
                             "value_of_converting_usd": self.value_of_converting_usd,
                             "peak_funding_usd": self.funding_need().max(axis=1)})

    def take(self, idx) -> Options:
        idx = np.asarray(idx)
        return Options(self.site[idx], self.strategy[idx], self.start_month[idx],
                       self.npv_usd[idx], self.value_of_converting_usd[idx],
                       self.cash_usd[idx], self.capex_usd[idx], self.periods,
                       self.allowed[idx])


def site_inputs(a: Assumptions, strategies: list[str], start_months: list[str]
                ) -> dict[str, np.ndarray]:
    """Scenario inputs that put every converting strategy's start at each start month."""
    serials = np.array([to_serial(month_date(m)) for m in start_months])
    return {f"strategies.{s}.conversion_start_month": serials for s in strategies
            if a.strategies[s].kind != MINING}


def option_rows(result: Result, strategy: str, capex_scope: str, n: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(npv (n,), cash (n, months), capex (n, months)) of one strategy of a site run."""
    v = result.values
    months = result.timeline.months
    npv = np.broadcast_to(v[f"{strategy}.npv"], (n,))
    cash = np.broadcast_to(v[f"{strategy}.unlevered_fcf_usd"]
                           - v[f"{strategy}.terminal_value_usd"], (n, months))
    if capex_scope == "all":
        capex = -v[f"{strategy}.capex_total_usd"]
    else:
        names = [f"{strategy}.cf.conversion_capex_usd",
                 f"{strategy}.cf.conversion_sustaining_capex_usd"]
        capex = -sum((v[x] for x in names if x in v), np.zeros((1, months)))
    return npv, cash, np.broadcast_to(capex, (n, months))


def evaluate_options(lp: LoadedPortfolio, *, lines: Mapping[str, np.ndarray] | None = None
                     ) -> Options:
    """Every site's options, one vectorised run per site.

    Parameters
    ----------
    lines
        Lines given instead of computed, shared by all sites (shape (1, months)), e.g. a
        BTC price path.
    """
    scope = lp.spec.constraints.capex_scope
    cols: dict[str, list] = {k: [] for k in ("site", "strategy", "start", "npv", "vs", "cash",
                                             "capex", "allowed")}
    periods = None
    for name, a in lp.cases.items():
        opts = lp.spec.options_of(name)
        months = list(opts.start_months)
        result = run(a, inputs=site_inputs(a, opts.strategies, months), lines=lines,
                     breakevens=False)
        periods = result.timeline.periods
        ref = float(np.ravel(result.values[f"{MINING}.npv"])[0])
        listed = [MINING] + [s for s in opts.strategies if s != MINING]
        for s in listed:
            converting = a.strategies[s].kind != MINING
            n = len(months) if converting else 1
            npv, cash, capex = option_rows(result, s, scope, len(months))
            cols["site"] += [name] * n
            cols["strategy"] += [s] * n
            cols["start"] += months if converting else [""]
            cols["npv"].append(npv[:n])
            cols["vs"].append(npv[:n] - ref)
            cols["cash"].append(cash[:n])
            cols["capex"].append(capex[:n])
            cols["allowed"] += [s in opts.strategies] * n
    return Options(np.array(cols["site"], dtype=object), np.array(cols["strategy"], dtype=object),
                   np.array(cols["start"], dtype=object), np.concatenate(cols["npv"]),
                   np.concatenate(cols["vs"]), np.vstack(cols["cash"]),
                   np.vstack(cols["capex"]), periods, np.array(cols["allowed"]))
