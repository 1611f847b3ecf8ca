"""Every (site, strategy, start month) option, evaluated with the single-site model.

All options of one site are one vectorised run: each candidate start month is a scenario
(the conversion start month is an input like any other), and every strategy of the case is
evaluated in the same pass. Sites whose cases differ only in numeric inputs (the usual
portfolio: one base case, each site overriding its power, size and prices) share one run
too: each site's values of those inputs are scenario inputs, site by site, start month by
start month (:func:`site_groups`). The engine's cost is mostly per evaluation (building and
walking the model), not per scenario, so 50 such sites cost little more than one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from finmodel.api import Result, run
from finmodel.conventions import to_serial
from finmodel.errors import InputError
from finmodel.inputs.bounds import resolve_input
from finmodel.inputs.load import input_fields
from finmodel.inputs.schema import Assumptions, month_date
from finmodel.portfolio.load import LoadedPortfolio

MINING = "mining"
#: Most scenarios (sites x start months) in one evaluation: each line of the model is a
#: (scenarios, months) array, so this bounds the memory of one run (0.36 GB more at 600
#: scenarios and 180 months, measured) while sharing the per-evaluation cost among many
#: sites (50 sites x 12 months: 0.44 s in one run, 7.4 s in one run a site; see
#: benchmarks/README.md).
MAX_SCENARIOS = 600


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


def _numeric_diff(a: Assumptions, fields_a: dict, b: Assumptions) -> dict[str, object] | None:
    """The inputs at which case ``b`` differs from case ``a``, by field path, if they differ
    only in inputs the engine takes per scenario (numbers, dates, yearly paths); else None
    (another structure: a strategy more or less, a choice, a flag, a text or the timeline).
    """
    fields_b = {f.path: f for f in input_fields(b)}
    if fields_b.keys() != fields_a.keys():
        return None
    da, db = a.model_dump(), b.model_dump()
    diff = {}
    for path, fb in fields_b.items():
        fa = fields_a[path]
        if fa.value == fb.value:
            continue
        numeric = (fb.choices is None and isinstance(fb.value, (int, float, list))) \
            or isinstance(fb.value, dt.date)
        # a flag reaches input_fields as 0.0/1.0: its own field's value tells it apart
        if not numeric or isinstance(_dumped(da, path), bool):
            return None
        if isinstance(fb.value, list) and ("_path_" not in path
                                           or len(fb.value) != len(fa.value)):
            return None  # a list that is not a yearly path (or one of another length)
        try:
            resolve_input(a, path)  # refuses text, choices and what shapes the timeline
        except InputError:
            return None
        diff[path] = fb.value
    # What input_fields does not list (sections present or not, sources, analysis
    # settings) must match too, apart from notes on where values came from.
    for path in diff:
        *parents, leaf = path.split(".")
        node_a, node_b = da, db
        for part in parents:
            node_a, node_b = node_a[part], node_b[part]
        node_a[leaf] = node_b[leaf]
    da.pop("input_sources", None)
    db.pop("input_sources", None)
    return diff if da == db else None


def _dumped(data: dict, path: str):
    for part in path.split("."):
        data = data[part]
    return data


def _scenario_value(v) -> float | list[float]:
    return to_serial(v) if isinstance(v, dt.date) else v


def case_groups(cases: Mapping[str, Assumptions], max_sites: int
                ) -> list[tuple[Assumptions, dict[str, Any], list[str], list[dict]]]:
    """Cases that can share one vectorised run: (reference case, its inputs by field path,
    names, each case's inputs that differ from the reference). A case joins the first group
    whose reference it differs from only in numeric inputs (:func:`_numeric_diff`) while
    the group has fewer than ``max_sites`` cases."""
    groups: list[tuple[Assumptions, dict, list[str], list[dict]]] = []
    for name, a in cases.items():
        for ref, fields, names, diffs in groups:
            if len(names) >= max(max_sites, 1):
                continue
            diff = _numeric_diff(ref, fields, a)
            if diff is not None:
                names.append(name)
                diffs.append(diff)
                break
        else:
            groups.append((a, {f.path: f for f in input_fields(a)}, [name], [{}]))
    return [(ref, {p: f.value for p, f in fields.items()}, names, diffs)
            for ref, fields, names, diffs in groups]


def per_site(values: dict[str, Any], diffs: list[dict], path: str) -> list:
    """Each case's scenario value at ``path`` (its own, else the reference's)."""
    return [_scenario_value(d.get(path, values[path])) for d in diffs]


def site_groups(lp: LoadedPortfolio, max_scenarios: int = MAX_SCENARIOS
                ) -> list[tuple[Assumptions, list[str], dict[str, np.ndarray]]]:
    """Sites that can share one vectorised run: (reference case, site names, scenario
    inputs). The scenarios run site by site and, within a site, start month by start
    month; the inputs are every numeric input on which a site's case differs from the
    reference (each site's own value, repeated over its start months) and the converting
    strategies' start months. Sites join a group when their case differs from its
    reference only in numeric inputs and they have the same options; a group holds at most
    ``max_scenarios`` scenarios.
    """
    key = {name: (tuple(o.strategies), tuple(o.start_months))
           for name, o in ((n, lp.spec.options_of(n)) for n in lp.cases)}
    out = []
    for k in dict.fromkeys(key.values()):
        strategies, months = k
        same = {name: a for name, a in lp.cases.items() if key[name] == k}
        for ref, values, names, diffs in case_groups(same, max_scenarios // len(months)):
            paths = list(dict.fromkeys(p for d in diffs for p in d))
            inputs: dict[str, np.ndarray] = {}
            for path in paths:
                inputs[path] = np.repeat(np.array(per_site(values, diffs, path), dtype=float),
                                         len(months), axis=0)
            for path, serials in site_inputs(ref, list(strategies), list(months)).items():
                inputs[path] = np.tile(serials, len(names))
            out.append((ref, names, inputs))
    return out


def evaluate_options(lp: LoadedPortfolio, *, lines: Mapping[str, np.ndarray] | None = None,
                     max_scenarios: int = MAX_SCENARIOS) -> Options:
    """Every site's options: one vectorised run per group of sites that differ only in
    numeric inputs (:func:`site_groups`), each (site, start month) a scenario.

    Parameters
    ----------
    lines
        Lines given instead of computed, shared by all sites (shape (1, months)), e.g. a
        BTC price path.
    max_scenarios
        Most scenarios in one run (1 evaluates each site on its own, as before).
    """
    scope = lp.spec.constraints.capex_scope
    rows: dict[str, tuple] = {}
    periods = None
    for ref, names, inputs in site_groups(lp, max(max_scenarios, 1)):
        result = run(ref, inputs=inputs, lines=lines, breakevens=False)
        periods = result.timeline.periods
        k = len(lp.spec.options_of(names[0]).start_months)
        per_strategy = {s: option_rows(result, s, scope, k * len(names))
                        for s in ref.strategies}
        for j, name in enumerate(names):
            rows[name] = {s: tuple(x[j * k:(j + 1) * k] for x in got)
                          for s, got in per_strategy.items()}
    cols: dict[str, list] = {k: [] for k in ("site", "strategy", "start", "npv", "vs", "cash",
                                             "capex", "allowed")}
    for name, a in lp.cases.items():
        opts = lp.spec.options_of(name)
        months = list(opts.start_months)
        ref = float(rows[name][MINING][0][0])
        listed = [MINING] + [s for s in opts.strategies if s != MINING]
        for s in listed:
            converting = a.strategies[s].kind != MINING
            n = len(months) if converting else 1
            npv, cash, capex = rows[name][s]
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
