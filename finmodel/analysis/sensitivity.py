"""Sensitivity analysis on the vectorised evaluator: every analysis is one evaluation over
an array of scenarios, never a Python loop over runs.

- :func:`scenario_sets` — named sets of changed inputs, run together.
- :func:`tornado` — each input at its low and its high value, all 2K variants at once.
- :func:`grid` — two inputs over ranges, every pair at once.
- :func:`solve_input` — the value of any input that gives a target value of any metric,
  for every scenario at once (bracketed, Illinois).

Inputs are addressed by field path (``"network.btc_price_usd"``) and checked against the
schema's bounds; fields that shape the timeline (the start month, the horizon) or are not
numbers cannot vary within one evaluation and are refused by name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from finmodel.api import timeline_of
from finmodel.engine.evaluate import evaluate
from finmodel.engine.graph import Model
from finmodel.engine.solve import bracketed_root
from finmodel.engine.timeline import Timeline
from finmodel.errors import InputError
from finmodel.inputs.bounds import check_scenario_array
from finmodel.inputs.load import numeric_inputs, with_values
from finmodel.inputs.schema import Assumptions
from finmodel.models.strategies import build_model

#: Inputs that shape the timeline itself: one evaluation cannot vary them.
STRUCTURAL = frozenset({"case.horizon_years", "case.start_month"})


@dataclass
class Scenarios:
    """A case ready to be evaluated for many scenarios at once."""

    assumptions: Assumptions
    model: Model
    timeline: Timeline
    scalars: dict[str, Any]
    paths: dict[str, Any]

    @classmethod
    def of(cls, a: Assumptions) -> Scenarios:
        scalars, paths = numeric_inputs(a)
        return cls(a, build_model(a), timeline_of(a), scalars, paths)

    def base(self, path: str) -> float:
        """The case's value of the numeric input at ``path``."""
        self._check_path(path)
        return float(self.scalars[path.replace(".", "_")])

    def metric_names(self, metric: str, strategies: Sequence[str] | None = None
                     ) -> dict[str, str]:
        """Scalar names of ``metric`` by strategy."""
        out = {s.strategy: s.name for s in self.model.metrics()
               if s.metric == metric and not s.solved
               and (strategies is None or s.strategy in strategies)}
        if not out:
            known = sorted({s.metric for s in self.model.metrics() if not s.solved})
            raise InputError(f"metric {metric!r} is not computed by this case's strategies "
                             f"{list(strategies or [])}; expected one of {known}")
        return out

    def evaluate(self, inputs: Mapping[str, Any], metrics: Sequence[str] = ("npv_usd",),
                 lines: Mapping[str, np.ndarray] | None = None,
                 strategies: Sequence[str] | None = None, size: int | None = None
                 ) -> pd.DataFrame:
        """Metrics for every scenario: columns (strategy, metric), one row per scenario
        (``size`` rows when given, else as many as the longest input array)."""
        scalars = dict(self.scalars)
        for path, values in inputs.items():
            self._check_path(path)
            scalars[path.replace(".", "_")] = check_scenario_array(self.assumptions, path,
                                                                   values)
        names = {(s, m): n for m in metrics
                 for s, n in self.metric_names(m, strategies).items()}
        out = evaluate(self.model, self.timeline, scalars, self.paths, lines or {},
                       only=list(names.values()))
        if size is None:
            size = max([np.size(v) for v in inputs.values()]
                       + [np.shape(v)[0] for v in (lines or {}).values()] + [1])
        cols = {key: np.broadcast_to(out[n], (size,)) for key, n in names.items()}
        frame = pd.DataFrame(cols)
        frame.columns = pd.MultiIndex.from_tuples(frame.columns, names=["strategy", "metric"])
        return frame

    def _check_path(self, path: str) -> None:
        if path in STRUCTURAL:
            raise InputError(f"{path}: shapes the timeline and cannot vary between scenarios "
                             "of one evaluation; run the case again with a changed value")
        if path.replace(".", "_") not in self.scalars:
            raise InputError(f"{path}: no such numeric input in this case (a field path "
                             "such as 'network.btc_price_usd')")


def scenario_sets(a: Assumptions, sets: Mapping[str, Mapping[str, Any]],
                  metrics: Sequence[str] = ("npv_usd",)) -> pd.DataFrame:
    """Named sets of changed inputs (``{"bear": {"network.btc_price_usd": 60000}}``), each
    validated as a whole case, evaluated together with the base case.

    Returns metrics x (strategy, scenario) as rows: index scenario name."""
    sc = Scenarios.of(a)
    names = ["base", *sets]
    changed: dict[str, list[float]] = {}
    for i, changes in enumerate(sets.values(), start=1):
        with_values(a, dict(changes))  # each set must be a valid case on its own
        for path, value in changes.items():
            changed.setdefault(path, [sc.base(path)] * len(names))[i] = float(value)
    frame = sc.evaluate({p: np.array(v) for p, v in changed.items()}, metrics)
    if not changed:
        frame = pd.concat([frame] * len(names), ignore_index=True)
    frame.index = pd.Index(names, name="scenario")
    return frame


def tornado(a: Assumptions, ranges: Mapping[str, Any], *, metric: str = "npv_usd",
            strategy: str = "mining") -> pd.DataFrame:
    """Each input at its low and high value, the others at base, in one evaluation.

    Parameters
    ----------
    ranges
        Field path -> ``(low, high)`` absolute values, or a fraction ``p`` for
        ``base x (1 - p)`` and ``base x (1 + p)``.

    Returns
    -------
    pandas.DataFrame
        One row per input, sorted by swing (largest first): base, low and high input values,
        the metric at low and at high, and the swing ``|high - low|``.
    """
    sc = Scenarios.of(a)
    lows, highs = {}, {}
    for path, spec in ranges.items():
        base = sc.base(path)
        if isinstance(spec, (int, float)):
            if spec < 0:
                raise InputError(f"tornado {path}: a relative range must be positive, got "
                                 f"{spec!r}")
            lo, hi = base * (1 - spec), base * (1 + spec)
        else:
            lo, hi = (float(x) for x in spec)
        if lo > hi:
            raise InputError(f"tornado {path}: low {lo!r} is above high {hi!r}")
        lows[path], highs[path] = lo, hi
    paths = list(ranges)
    k = len(paths)
    inputs = {p: np.full(2 * k + 1, sc.base(p)) for p in paths}
    for i, p in enumerate(paths):
        inputs[p][2 * i], inputs[p][2 * i + 1] = lows[p], highs[p]
    values = sc.evaluate(inputs, [metric], strategies=[strategy])[(strategy, metric)].to_numpy()
    rows = [{"input": p, "base_value": sc.base(p), "low_value": lows[p], "high_value": highs[p],
             "metric_low": values[2 * i], "metric_high": values[2 * i + 1]}
            for i, p in enumerate(paths)]
    out = pd.DataFrame(rows)
    out["swing"] = (out["metric_high"] - out["metric_low"]).abs()
    out = out.sort_values("swing", ascending=False, kind="stable").reset_index(drop=True)
    out.attrs.update(metric=metric, strategy=strategy, base=float(values[-1]))
    return out


def grid(a: Assumptions, x: tuple[str, Sequence[float]], y: tuple[str, Sequence[float]], *,
         metric: str = "npv_usd", strategy: str = "mining") -> pd.DataFrame:
    """A metric over every pair of two inputs' values, in one evaluation: rows are ``y``'s
    values, columns ``x``'s."""
    sc = Scenarios.of(a)
    (px, vx), (py, vy) = x, y
    if px == py:
        raise InputError(f"grid: the two inputs must differ (got {px!r} twice)")
    xx, yy = np.meshgrid(np.asarray(vx, dtype=float), np.asarray(vy, dtype=float))
    values = sc.evaluate({px: xx.ravel(), py: yy.ravel()}, [metric],
                         strategies=[strategy])[(strategy, metric)].to_numpy()
    out = pd.DataFrame(values.reshape(xx.shape), index=pd.Index(vy, name=py),
                       columns=pd.Index(vx, name=px))
    out.attrs.update(metric=metric, strategy=strategy)
    return out


def solve_input(a: Assumptions, path: str, *, metric: str, strategy: str, target: float = 0.0,
                bracket: tuple[float, float], inputs: Mapping[str, Any] | None = None
                ) -> pd.DataFrame:
    """The value of the input at ``path`` at which ``strategy``'s ``metric`` equals
    ``target``, for each scenario of ``inputs`` (others at base) at once.

    Returns a frame with the solution (NaN where none in ``bracket``) and the reason.
    """
    sc = Scenarios.of(a)
    inputs = dict(inputs or {})
    size = max([np.size(v) for v in inputs.values()] + [1])
    if path in inputs:
        raise InputError(f"solve_input: {path} is what is solved for; do not also vary it")

    def f(x: np.ndarray) -> np.ndarray:
        frame = sc.evaluate({**inputs, path: x}, [metric], strategies=[strategy])
        return frame[(strategy, metric)].to_numpy() - target

    lo, hi = (float(v) for v in bracket)
    if lo >= hi:
        raise InputError(f"solve_input: the bracket's low {lo!r} must be below its high {hi!r}")
    roots, why = bracketed_root(f, np.full(size, lo), np.full(size, hi))
    return pd.DataFrame({path: roots, "reason": why})
