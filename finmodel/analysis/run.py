"""Run the analyses a case asks for (its ``[analysis]`` section) in one call."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from finmodel.analysis.monte_carlo import MonteCarlo, Paths, monte_carlo, prepare_draws
from finmodel.analysis.sensitivity import (
    Scenarios,
    grid,
    grid_axis,
    scenario_inputs,
    scenario_sets,
    tornado,
)
from finmodel.analysis.sensitivity import grid_inputs as grid_scenarios
from finmodel.analysis.sensitivity import tornado_inputs as tornado_scenarios
from finmodel.errors import InputError, shown
from finmodel.inputs.schema import AnalysisSection, Assumptions

if TYPE_CHECKING:
    import pandas as pd  # the DataFrames are built by the functions that return them

#: Inputs a tornado shows when the case lists none (those the case has), at +/- 20 %.
DEFAULT_TORNADO = ("network.btc_price_usd", "network.hashrate_growth_rate",
                   "power.ppa_price_usd_per_mwh", "mining.efficiency_j_per_th",
                   "hosting.lease_rate_usd_per_kw_month", "hosting.opex_usd_per_mw_year",
                   "conversion.electrical_usd_per_mw", "conversion.cooling_usd_per_mw",
                   "cloud.price_usd_per_gpu_hour")
GRID_STEPS = (0.6, 0.8, 1.0, 1.2, 1.4)


@dataclass
class Analysis:
    """Results of `finmodel sensitivity`: any of them may be absent."""

    strategy: str
    metric: str
    scenarios: pd.DataFrame | None = None
    tornado: pd.DataFrame | None = None
    grid: pd.DataFrame | None = None
    monte_carlo: MonteCarlo | None = None


def default_strategy(a: Assumptions) -> str:
    return next((s for s, spec in a.strategies.items() if spec.kind != "mining"), "mining")


def check_analysis(a: Assumptions) -> None:
    """Check the case's ``[analysis]`` section against the case, as the analyses will use
    it: the strategy and metric exist, every path is a numeric input, every scenario set,
    tornado range (the default one too), grid axis (and the pair, when there are two) and
    distribution tail respects the fields' bounds and the cross-field rules, the
    correlations are a valid matrix.

    Raises
    ------
    InputError
        The first problem, naming the ``analysis`` field and the value.
    """
    spec = a.analysis
    sc = Scenarios.of(a)
    strategy = _strategy(a, spec)
    with _within("analysis.metric"):
        sc.metric_names(spec.metric, [strategy])
    with _within("analysis.scenarios"):
        if spec.scenarios:
            scenario_inputs(sc, spec.scenarios)
    with _within("analysis.tornado"):
        tornado_scenarios(sc, tornado_ranges(sc, spec))
    with _within("analysis.grid"):
        for path, values in spec.grid.items():
            grid_axis(sc, (path, values), what="axis")
        if len(spec.grid) == 2:
            grid_scenarios(sc, *spec.grid.items())
    with _within("analysis.monte_carlo"):
        prepare_draws(sc, spec.monte_carlo.distributions, correlation_map(spec))


@contextmanager
def _within(where: str) -> Iterator[None]:
    """Name the ``[analysis]`` part an InputError comes from."""
    try:
        yield
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None


def _strategy(a: Assumptions, spec: AnalysisSection) -> str:
    strategy = spec.strategy or default_strategy(a)
    if strategy not in a.strategies:
        raise InputError(f"analysis.strategy: {shown(strategy)} is not a strategy of this case "
                         f"({', '.join(a.strategies)})")
    return strategy


def tornado_ranges(sc: Scenarios, spec: AnalysisSection) -> dict:
    """The case's tornado ranges, or the default inputs the case has at +/- 20 %."""
    ranges = dict(spec.tornado) or {p: 0.2 for p in DEFAULT_TORNADO
                                    if p.replace(".", "_") in sc.scalars}
    return {k: tuple(v) if isinstance(v, list) else v for k, v in ranges.items()}


def correlation_map(spec: AnalysisSection) -> dict[tuple[str, str], float]:
    """``[[analysis.monte_carlo.correlations]]`` as (a, b) -> rho, each pair once."""
    out: dict[tuple[str, str], float] = {}
    for c in spec.monte_carlo.correlations:
        if (c.a, c.b) in out or (c.b, c.a) in out:
            raise InputError(f"correlations: ({c.a}, {c.b}) is given twice")
        out[(c.a, c.b)] = c.rho
    return out


def run_analysis(a: Assumptions, *, tornado_inputs: bool = False,
                 grid_inputs: Sequence[str] | None = None, monte_carlo_n: int | None = None,
                 seed: int | None = None, progress: Callable[[int, int], None] | None = None
                 ) -> Analysis:
    """The analyses asked for, configured by the case's ``[analysis]`` section.

    ``monte_carlo_n`` of 0 runs the case's ``[analysis.monte_carlo] scenarios``.

    Raises
    ------
    InputError
        The ``[analysis]`` section does not fit the case (:func:`check_analysis`), the grid
        is not two field paths, or the seed or scenario count is out of range.
    """
    check_analysis(a)
    spec = a.analysis
    strategy = _strategy(a, spec)
    out = Analysis(strategy, spec.metric)
    if spec.scenarios:
        out.scenarios = scenario_sets(a, spec.scenarios, metrics=(spec.metric,))
    sc = Scenarios.of(a)
    if tornado_inputs:
        out.tornado = tornado(a, tornado_ranges(sc, spec), metric=spec.metric,
                              strategy=strategy)
    if grid_inputs is not None:
        if len(grid_inputs) != 2:
            raise InputError(f"--grid: give two field paths separated by a comma, got "
                             f"{shown(','.join(grid_inputs))}")
        axes = []
        for path in grid_inputs:
            values = spec.grid.get(path)
            if values is None:
                values = [sc.base(path) * k for k in GRID_STEPS]
            axes.append((path, values))
        out.grid = grid(a, axes[0], axes[1], metric=spec.metric, strategy=strategy)
    if monte_carlo_n is not None:
        mc = spec.monte_carlo
        metrics = tuple(dict.fromkeys((spec.metric, "npv_usd", "project_irr")))
        out.monte_carlo = monte_carlo(
            a, monte_carlo_n or mc.scenarios, distributions=mc.distributions,
            correlations=correlation_map(spec),
            paths=Paths(mc.btc_price_volatility, mc.hashrate_volatility, mc.path_correlation),
            seed=mc.seed if seed is None else seed, metrics=metrics, progress=progress)
    return out


def analysis_json(an: Analysis) -> dict:
    """A JSON-ready summary of an analysis."""
    out: dict = {"strategy": an.strategy, "metric": an.metric}
    if an.scenarios is not None:
        out["scenarios"] = {name: {f"{s}.{m}": _num(v) for (s, m), v in row.items()}
                            for name, row in an.scenarios.iterrows()}
    if an.tornado is not None:
        out["tornado"] = [{k: (_num(v) if not isinstance(v, str) else v)
                           for k, v in row.items()} for _, row in an.tornado.iterrows()]
    if an.grid is not None:
        out["grid"] = {"rows": an.grid.index.name, "columns": an.grid.columns.name,
                       "row_values": [float(x) for x in an.grid.index],
                       "column_values": [float(x) for x in an.grid.columns],
                       "values": [[_num(v) for v in r] for r in an.grid.to_numpy()]}
    if an.monte_carlo is not None:
        s = an.monte_carlo.summary(an.metric)
        out["monte_carlo"] = {"scenarios": int(len(an.monte_carlo.samples)),
                              "seed": an.monte_carlo.seed,
                              "kernel": an.monte_carlo.extra.get("kernel", "numpy"),
                              "summary": {c: {k: _num(v) for k, v in s[c].items()}
                                          for c in s.columns}}
    return out


def _num(v) -> float | None:
    v = float(v)
    return v if np.isfinite(v) else None
