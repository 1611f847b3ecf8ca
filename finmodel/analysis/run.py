"""Run the analyses a case asks for (its ``[analysis]`` section) in one call."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from finmodel.analysis.monte_carlo import MonteCarlo, Paths, monte_carlo
from finmodel.analysis.sensitivity import Scenarios, grid, scenario_sets, tornado
from finmodel.errors import InputError
from finmodel.inputs.schema import Assumptions

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


def run_analysis(a: Assumptions, *, tornado_inputs: bool = False,
                 grid_inputs: Sequence[str] | None = None, monte_carlo_n: int | None = None,
                 seed: int | None = None, progress: Callable[[int, int], None] | None = None
                 ) -> Analysis:
    """The analyses asked for, configured by the case's ``[analysis]`` section."""
    spec = a.analysis
    strategy = spec.strategy or default_strategy(a)
    if strategy not in a.strategies:
        raise InputError(f"analysis.strategy: {strategy!r} is not a strategy of this case "
                         f"({', '.join(a.strategies)})")
    out = Analysis(strategy, spec.metric)
    if spec.scenarios:
        out.scenarios = scenario_sets(a, spec.scenarios, metrics=(spec.metric,))
    sc = Scenarios.of(a)
    if tornado_inputs:
        ranges = dict(spec.tornado) or {p: 0.2 for p in DEFAULT_TORNADO
                                        if p.replace(".", "_") in sc.scalars}
        out.tornado = tornado(a, {k: tuple(v) if isinstance(v, list) else v
                                  for k, v in ranges.items()},
                              metric=spec.metric, strategy=strategy)
    if grid_inputs is not None:
        if len(grid_inputs) != 2:
            raise InputError(f"--grid: give two field paths separated by a comma, got "
                             f"{','.join(grid_inputs)!r}")
        axes = []
        for path in grid_inputs:
            values = spec.grid.get(path)
            if values is None:
                values = [sc.base(path) * k for k in GRID_STEPS]
            axes.append((path, values))
        out.grid = grid(a, axes[0], axes[1], metric=spec.metric, strategy=strategy)
    if monte_carlo_n is not None:
        mc = spec.monte_carlo
        out.monte_carlo = monte_carlo(
            a, monte_carlo_n, distributions=mc.distributions,
            correlations={(c.a, c.b): c.rho for c in mc.correlations},
            paths=Paths(mc.btc_price_volatility, mc.hashrate_volatility, mc.path_correlation),
            seed=mc.seed if seed is None else seed, progress=progress)
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
                              "summary": {c: {k: _num(v) for k, v in s[c].items()}
                                          for c in s.columns}}
    return out


def _num(v) -> float | None:
    v = float(v)
    return v if np.isfinite(v) else None
