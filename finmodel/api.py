"""The Python entry points: :func:`run` a case and read its :class:`Result`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from finmodel.engine.evaluate import evaluate
from finmodel.engine.graph import Line, Model
from finmodel.engine.solve import bracketed_root, irr_reasons
from finmodel.engine.timeline import Timeline
from finmodel.errors import InputError
from finmodel.inputs.load import numeric_inputs
from finmodel.inputs.schema import Assumptions
from finmodel.inputs.bounds import check_scenario_array
from finmodel.models.strategies import BREAKEVEN_BTC_PRICE, build_model

PRICE_LINE = "network.btc_price_usd"


@dataclass
class Result:
    """Every line and metric of a run, for one scenario or many.

    ``values`` maps a line name to an array (scenarios or 1, periods) and a scalar name to
    an array (scenarios or 1,). The DataFrame views show one scenario (the first unless
    told otherwise).
    """

    assumptions: Assumptions
    model: Model
    timeline: Timeline
    values: dict[str, np.ndarray]
    n_scenarios: int
    reasons: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def strategies(self) -> list[str]:
        return list(dict.fromkeys(s.strategy for s in self.model.metrics()))

    def line(self, name: str) -> pd.DataFrame:
        """One line for every scenario: rows are scenarios, columns are months."""
        v = self.values[name]
        return pd.DataFrame(np.broadcast_to(v, (self.n_scenarios, v.shape[1])),
                            columns=self.timeline.periods)

    def lines_frame(self, scenario: int = 0) -> pd.DataFrame:
        """Every line of one scenario: rows are lines, columns are months."""
        rows = {ln.name: self._row(ln, scenario) for ln in self.model.lines}
        return pd.DataFrame.from_dict(rows, orient="index", columns=self.timeline.periods)

    @cached_property
    def lines(self) -> pd.DataFrame:
        """Every line of the first scenario (rows: lines; columns: months)."""
        return self.lines_frame(0)

    def annual_frame(self, scenario: int = 0) -> pd.DataFrame:
        """Every line rolled up by calendar year: flows summed, prices averaged, balances
        at year end."""
        tl = self.timeline
        starts = tl.year_starts
        ends = np.r_[starts[1:], tl.months]
        out = {}
        for ln in self.model.lines:
            if ln.agg == "none":
                continue
            row = self._row(ln, scenario)
            if ln.agg == "sum":
                out[ln.name] = np.add.reduceat(row, starts)
            elif ln.agg == "mean":
                out[ln.name] = np.add.reduceat(row, starts) / (ends - starts)
            else:
                out[ln.name] = row[ends - 1]
        return pd.DataFrame.from_dict(out, orient="index", columns=tl.years)

    @cached_property
    def annual(self) -> pd.DataFrame:
        return self.annual_frame(0)

    def metrics(self, strategy: str) -> pd.DataFrame:
        """A strategy's headline metrics for every scenario (rows: scenarios)."""
        cols = {s.metric: np.broadcast_to(self.values[s.name], (self.n_scenarios,))
                for s in self.model.metrics() if s.strategy == strategy}
        return pd.DataFrame(cols)

    def summary_frame(self, scenario: int = 0) -> pd.DataFrame:
        """Metrics x strategies for one scenario."""
        data: dict[str, dict[str, float]] = {}
        for s in self.model.metrics():
            v = self.values[s.name]
            data.setdefault(s.strategy, {})[s.metric] = float(v[min(scenario, v.size - 1)])
        return pd.DataFrame(data)

    @cached_property
    def summary(self) -> pd.DataFrame:
        """Metrics x strategies of the first scenario."""
        return self.summary_frame(0)

    def summary_json(self, scenario: int = 0) -> dict[str, Any]:
        """``{"strategies": {name: {metric: value}}, "case": {...}, "notes": {...}}``;
        a metric that does not exist (payback never reached) is null."""
        frame = self.summary_frame(scenario)
        strategies = {
            s: {k: (None if not np.isfinite(v) else float(v)) for k, v in frame[s].items()}
            for s in frame.columns
        }
        notes = {k: str(v[min(scenario, v.size - 1)]) for k, v in self.reasons.items()
                 if v[min(scenario, v.size - 1)]}
        src = getattr(self.assumptions, "_source", None)
        return {
            "strategies": strategies,
            "case": {
                "name": self.assumptions.case.name,
                "file": src.name if src else None,
                "sha256": src.sha256 if src else None,
                "start_month": self.assumptions.case.start_month,
                "horizon_years": self.assumptions.case.horizon_years,
            },
            "notes": notes,
        }

    def _row(self, ln: Line, scenario: int) -> np.ndarray:
        v = self.values[ln.name]
        return v[min(scenario, v.shape[0] - 1)]


def timeline_of(a: Assumptions) -> Timeline:
    return Timeline(a.case.start_date, a.case.horizon_years * 12)


def run(
    assumptions: Assumptions,
    *,
    inputs: Mapping[str, Any] | None = None,
    lines: Mapping[str, Any] | None = None,
    breakevens: bool = True,
) -> Result:
    """Run a case, optionally over many scenarios at once.

    Parameters
    ----------
    assumptions
        A validated case (see :func:`finmodel.load_assumptions`).
    inputs
        Scenario values by field path (``{"network.btc_price_usd": prices}``): a 1-D array
        per input, one value per scenario, checked against the field's bounds.
    lines
        Lines given instead of computed (``{"network.btc_price_usd": paths}``), shape
        (scenarios, months) — for example BTC price paths from a simulation.
    breakevens
        Solve the break-even BTC price (a few more model evaluations).

    Returns
    -------
    Result
    """
    model = build_model(assumptions)
    tl = timeline_of(assumptions)
    scalars, paths = numeric_inputs(assumptions)
    for path, arr in (inputs or {}).items():
        name = path.replace(".", "_")
        if name in paths:
            paths[name] = check_scenario_array(assumptions, path, arr, rows=True)
        elif name in scalars:
            scalars[name] = check_scenario_array(assumptions, path, arr)
        else:
            raise InputError(f"{path}: no such numeric input in this case")
    overrides = {k: np.asarray(v, dtype=float) for k, v in (lines or {}).items()}
    values = evaluate(model, tl, scalars, paths, overrides)
    n = max([v.shape[0] for v in values.values() if v.ndim == 2] + [1])
    reasons: dict[str, np.ndarray] = {}
    for strategy in dict.fromkeys(x.strategy for x in model.metrics()):
        flows = values[f"{strategy}.unlevered_fcf_usd"]
        monthly = (1.0 + np.broadcast_to(values[f"{strategy}.project_irr"], (flows.shape[0],))
                   ) ** (1 / 12) - 1
        reasons[f"{strategy}.project_irr"] = irr_reasons(flows, monthly)
    if breakevens:
        _solve_breakevens(model, tl, scalars, paths, overrides, values, reasons, n)
    return Result(assumptions, model, tl, values, n, reasons)


def _solve_breakevens(model, tl, scalars, paths, overrides, values, reasons, n) -> None:
    for strategy in dict.fromkeys(s.strategy for s in model.metrics()):
        name = f"{strategy}.{BREAKEVEN_BTC_PRICE}"
        values[name], reasons[name] = _breakeven_btc_price(
            model, tl, scalars, paths, overrides, values, n, f"{strategy}.npv")


def _breakeven_btc_price(model, tl, scalars, paths, overrides, values, n, npv_name):
    """Start-level BTC price at which ``npv_name`` is zero, scaling the whole price path
    (every scenario at once). Returns (prices, reasons)."""
    base = np.broadcast_to(values[PRICE_LINE], (n, tl.months))

    def npv_at(scale: np.ndarray) -> np.ndarray:
        trial = dict(overrides)
        trial[PRICE_LINE] = base * scale[:, None]
        npv = evaluate(model, tl, scalars, paths, trial, only=[npv_name])[npv_name]
        return np.broadcast_to(npv, (n,))

    lo, hi = np.zeros(n), np.ones(n)
    f_hi = npv_at(hi)
    for _ in range(30):  # widen the bracket until NPV turns positive (up to 2^30 x)
        grow = f_hi < 0
        if not grow.any():
            break
        hi = np.where(grow, hi * 2, hi)
        f_hi = np.where(grow, npv_at(hi), f_hi)
    scale, why = bracketed_root(npv_at, lo, hi)
    why = np.where(npv_at(lo) >= 0, "NPV is not negative even at a zero BTC price", why)
    return np.where(why == "", scale * base[:, 0], np.nan), why
