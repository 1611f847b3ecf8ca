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
from typing import TYPE_CHECKING, Any

import numpy as np

from finmodel.api import timeline_of
from finmodel.engine.evaluate import Buffers, evaluate
from finmodel.engine.graph import Model
from finmodel.engine.solve import bracketed_root
from finmodel.engine.timeline import Timeline
from finmodel.errors import InputError, shown
from finmodel.inputs.bounds import check_scenarios, resolve_input
from finmodel.inputs.load import numeric_inputs
from finmodel.inputs.schema import Assumptions
from finmodel.models.strategies import build_model

if TYPE_CHECKING:
    import pandas as pd  # the DataFrames are built by the functions that return them


def metric_frame(cols: Mapping[tuple[str, str], np.ndarray]) -> pd.DataFrame:
    """Arrays by (strategy, metric) as a DataFrame with those two column levels."""
    import pandas as pd

    frame = pd.DataFrame(dict(cols))
    frame.columns = pd.MultiIndex.from_tuples(frame.columns, names=["strategy", "metric"])
    return frame


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
        if not isinstance(a, Assumptions):
            raise InputError(f"expected a case (finmodel.load_assumptions), got {shown(a)}")
        scalars, paths = numeric_inputs(a)
        return cls(a, build_model(a), timeline_of(a), scalars, paths)

    def base(self, path: str) -> float:
        """The case's value of the numeric input at ``path``."""
        self._check_path(path)
        return float(self.scalars[path.replace(".", "_")])

    def metric_names(self, metric: str, strategies: Sequence[str] | None = None
                     ) -> dict[str, str]:
        """Scalar names of ``metric`` by strategy."""
        for s in strategies or ():
            self.check_strategy(s)
        out = {s.strategy: s.name for s in self.model.metrics()
               if s.metric == metric and not s.solved
               and (strategies is None or s.strategy in strategies)}
        if not out:
            known = sorted({s.metric for s in self.model.metrics() if not s.solved})
            raise InputError(f"metric {shown(metric)} is not computed by this case's "
                             f"strategies {list(strategies or [])}; expected one of {known}")
        return out

    def check_strategy(self, strategy: Any) -> str:
        """``strategy`` if the case has it, else an InputError listing those it has."""
        if not isinstance(strategy, str) or strategy not in self.assumptions.strategies:
            raise InputError(f"strategy {shown(strategy)} is not a strategy of this case "
                             f"({', '.join(self.assumptions.strategies)})")
        return strategy

    def evaluate(self, inputs: Mapping[str, Any], metrics: Sequence[str] = ("npv_usd",),
                 lines: Mapping[str, np.ndarray] | None = None,
                 strategies: Sequence[str] | None = None, size: int | None = None,
                 buffers: Buffers | None = None, compiled: bool = False) -> pd.DataFrame:
        """Metrics for every scenario: columns (strategy, metric), one row per scenario
        (``size`` rows when given, else as many as the longest input array); the line
        arrays from ``buffers`` when given (see :func:`finmodel.engine.evaluate.evaluate`);
        by the compiled loop with ``compiled`` (:mod:`finmodel.engine.compiled`)."""
        return metric_frame(self.metric_arrays(inputs, metrics, lines, strategies, size,
                                               buffers, compiled))

    def metric_arrays(self, inputs: Mapping[str, Any], metrics: Sequence[str] = ("npv_usd",),
                      lines: Mapping[str, np.ndarray] | None = None,
                      strategies: Sequence[str] | None = None, size: int | None = None,
                      buffers: Buffers | None = None, compiled: bool = False
                      ) -> dict[tuple[str, str], np.ndarray]:
        """:meth:`evaluate`'s columns as arrays by (strategy, metric), without the
        DataFrame (a Monte Carlo's chunks build one frame at the end)."""
        scalars, paths = dict(self.scalars), dict(self.paths)
        for path, arr in check_scenarios(self.assumptions, inputs).items():
            name = path.replace(".", "_")
            (paths if name in paths else scalars)[name] = arr
        names = {(s, m): n for m in metrics
                 for s, n in self.metric_names(m, strategies).items()}
        if compiled:
            from finmodel.engine.compiled import evaluate_compiled

            out = evaluate_compiled(self.model, self.timeline, scalars, paths, lines or {},
                                    only=list(names.values()), buffers=buffers)
        else:
            out = evaluate(self.model, self.timeline, scalars, paths, lines or {},
                           only=list(names.values()), buffers=buffers)
        if size is None:
            size = max([np.size(v) for v in inputs.values()]
                       + [np.shape(v)[0] for v in (lines or {}).values()] + [1])
        return {key: np.broadcast_to(out[n], (size,)) for key, n in names.items()}

    def _check_path(self, path: str) -> None:
        resolve_input(self.assumptions, path)
        if path.replace(".", "_") not in self.scalars:
            raise InputError(f"{path}: a yearly path, not a single number; vary it with "
                             "finmodel.run(inputs=...) as (scenarios, years)")


def _mapping(what: str, value: Any) -> Mapping:
    if not isinstance(value, Mapping):
        raise InputError(f"{what}: expected a mapping, got {shown(value)}")
    return value


def _number(what: str, value: Any) -> float:
    """A finite float, or an InputError naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise InputError(f"{what}: expected a number, got {shown(value)}")
    try:
        x = float(value)
    except OverflowError:
        raise InputError(f"{what}: expected a number, got {shown(value)}") from None
    if not np.isfinite(x):
        raise InputError(f"{what}: expected a finite number, got {shown(value)}")
    return x


def scenario_inputs(sc: Scenarios, sets: Mapping[str, Mapping[str, Any]]
                    ) -> tuple[list[str], dict[str, np.ndarray]]:
    """Scenario names (the base first) and the changed inputs, one value per scenario,
    every scenario checked as a case would be."""
    _mapping("scenario sets", sets)
    names = ["base", *(str(k) for k in sets)]
    changed: dict[str, list[float]] = {}
    for i, (key, changes) in enumerate(sets.items(), start=1):
        for path, value in _mapping(f"scenario set {shown(key)}", changes).items():
            base = sc.base(path)
            changed.setdefault(path, [base] * len(names))[i] = _number(
                f"scenario set {shown(key)}: {path}", value)
    arrays = {p: np.array(v) for p, v in changed.items()}
    check_scenarios(sc.assumptions, arrays, what="scenario sets")
    return names, arrays


def scenario_sets(a: Assumptions, sets: Mapping[str, Mapping[str, Any]],
                  metrics: Sequence[str] = ("npv_usd",)) -> pd.DataFrame:
    """Named sets of changed inputs (``{"bear": {"network.btc_price_usd": 60000}}``), each
    checked as a case would be, evaluated together with the base case.

    Returns metrics x (strategy, scenario) as rows: index scenario name.

    Raises
    ------
    InputError
        An unknown or non-numeric path, a value that is not a number, or a set that breaks
        a bound or a cross-field rule of the case (named with the set's scenario index).
    """
    import pandas as pd

    sc = Scenarios.of(a)
    names, changed = scenario_inputs(sc, sets)
    frame = sc.evaluate(changed, metrics)
    if not changed:
        frame = pd.concat([frame] * len(names), ignore_index=True)
    frame.index = pd.Index(names, name="scenario")
    return frame


def tornado_inputs(sc: Scenarios, ranges: Mapping[str, Any]
                   ) -> tuple[dict[str, tuple[float, float]], dict[str, np.ndarray]]:
    """Each input's (low, high) and the 2K + 1 scenarios of a tornado (input i low in row
    2i, high in row 2i + 1, the base last), checked as a case would be."""
    _mapping("tornado ranges", ranges)
    if not ranges:
        raise InputError("tornado ranges: give at least one input")
    bounds: dict[str, tuple[float, float]] = {}
    for path, spec in ranges.items():
        base = sc.base(path)
        what = f"tornado {path}"
        if isinstance(spec, (list, tuple, np.ndarray)):
            if len(spec) != 2:
                raise InputError(f"{what}: expected [low, high] (two values), got "
                                 f"{shown(spec)}")
            lo, hi = (_number(what, x) for x in spec)
        else:
            frac = _number(what, spec)
            if frac < 0:
                raise InputError(f"{what}: a relative range must be positive, got {frac!r}")
            lo, hi = base * (1 - frac), base * (1 + frac)
        if lo > hi:
            raise InputError(f"{what}: low {lo!r} is above high {hi!r}")
        bounds[path] = (lo, hi)
    k = len(bounds)
    inputs = {p: np.full(2 * k + 1, sc.base(p)) for p in bounds}
    for i, (p, (lo, hi)) in enumerate(bounds.items()):
        inputs[p][2 * i], inputs[p][2 * i + 1] = lo, hi
    check_scenarios(sc.assumptions, inputs, what="tornado")
    return bounds, inputs


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

    Raises
    ------
    InputError
        An unknown path, a range that is not a fraction >= 0 or two numbers low <= high, a
        value breaking a bound or cross-field rule, an unknown metric or strategy.
    """
    import pandas as pd

    sc = Scenarios.of(a)
    sc.metric_names(metric, [strategy])
    bounds, inputs = tornado_inputs(sc, ranges)
    values = sc.evaluate(inputs, [metric], strategies=[strategy])[(strategy, metric)].to_numpy()
    rows = [{"input": p, "base_value": sc.base(p), "low_value": lo, "high_value": hi,
             "metric_low": values[2 * i], "metric_high": values[2 * i + 1]}
            for i, (p, (lo, hi)) in enumerate(bounds.items())]
    out = pd.DataFrame(rows)
    out["swing"] = (out["metric_high"] - out["metric_low"]).abs()
    out = out.sort_values("swing", ascending=False, kind="stable").reset_index(drop=True)
    out.attrs.update(metric=metric, strategy=strategy, base=float(values[-1]))
    return out


def grid_axis(sc: Scenarios, axis: Any, what: str = "grid") -> tuple[str, np.ndarray]:
    """A grid axis ``(path, values)``: a numeric input and a non-empty list of numbers,
    each checked against the field's bounds and the case's rules."""
    if not isinstance(axis, (tuple, list)) or len(axis) != 2:
        raise InputError(f"{what}: an axis is (field path, values), got {shown(axis)}")
    path, values = axis
    sc.base(path)
    if isinstance(values, (str, bytes, Mapping)) or np.ndim(values) != 1 or len(values) == 0:
        raise InputError(f"{what} {path}: expected a non-empty list of values, got "
                         f"{shown(values)}")
    arr = np.array([_number(f"{what} {path}", v) for v in values])
    check_scenarios(sc.assumptions, {path: arr}, what=what)
    return path, arr


def grid_inputs(sc: Scenarios, x: Any, y: Any) -> dict[str, np.ndarray]:
    """The scenarios of a grid: every pair of the two axes' values, checked."""
    (px, vx), (py, vy) = grid_axis(sc, x), grid_axis(sc, y)
    if px == py:
        raise InputError(f"grid: the two inputs must differ (got {px!r} twice)")
    if vx.size * vy.size > MAX_GRID:
        raise InputError(f"grid: {vx.size} x {vy.size} values is more than {MAX_GRID:,} "
                         "pairs")
    xx, yy = np.meshgrid(vx, vy)
    inputs = {px: xx.ravel(), py: yy.ravel()}
    check_scenarios(sc.assumptions, inputs, what="grid")
    return inputs


#: Most pairs a grid evaluates at once (a 1,000 x 1,000 grid).
MAX_GRID = 1_000_000


def grid(a: Assumptions, x: tuple[str, Sequence[float]], y: tuple[str, Sequence[float]], *,
         metric: str = "npv_usd", strategy: str = "mining") -> pd.DataFrame:
    """A metric over every pair of two inputs' values, in one evaluation: rows are ``y``'s
    values, columns ``x``'s.

    Raises
    ------
    InputError
        An axis that is not (path, non-empty values), the same input twice, a value breaking
        a bound or cross-field rule, an unknown metric or strategy.
    """
    import pandas as pd

    sc = Scenarios.of(a)
    sc.metric_names(metric, [strategy])
    inputs = grid_inputs(sc, x, y)
    (px, vx), (py, vy) = x, y
    shape = (len(vy), len(vx))
    values = sc.evaluate(inputs, [metric], strategies=[strategy])[(strategy, metric)].to_numpy()
    out = pd.DataFrame(values.reshape(shape), index=pd.Index(list(vy), name=py),
                       columns=pd.Index(list(vx), name=px))
    out.attrs.update(metric=metric, strategy=strategy)
    return out


def solve_input(a: Assumptions, path: str, *, metric: str, strategy: str, target: float = 0.0,
                bracket: tuple[float, float], inputs: Mapping[str, Any] | None = None
                ) -> pd.DataFrame:
    """The value of the input at ``path`` at which ``strategy``'s ``metric`` equals
    ``target``, for each scenario of ``inputs`` (others at base) at once.

    Returns a frame with the solution (NaN where none in ``bracket``) and the reason.

    Raises
    ------
    InputError
        An unknown path, metric or strategy; a target that is not a finite number; a
        bracket that is not two numbers low < high within the field's bounds; bad
        ``inputs`` (as :func:`finmodel.run`).
    """
    import pandas as pd

    sc = Scenarios.of(a)
    sc.base(path)
    sc.metric_names(metric, [strategy])
    target = _number("solve_input target", target)
    inputs = dict(check_scenarios(a, inputs or {}, what="solve_input inputs"))
    size = max([np.size(v) for v in inputs.values()] + [1])
    if path in inputs:
        raise InputError(f"solve_input: {path} is what is solved for; do not also vary it")
    if not isinstance(bracket, (tuple, list)) or len(bracket) != 2:
        raise InputError(f"solve_input: bracket must be (low, high), got {shown(bracket)}")
    lo, hi = (_number("solve_input bracket", v) for v in bracket)
    if lo >= hi:
        raise InputError(f"solve_input: the bracket's low {lo!r} must be below its high {hi!r}")
    check_scenarios(a, {path: np.array([lo, hi])}, what="solve_input bracket")

    def f(x: np.ndarray) -> np.ndarray:
        frame = sc.evaluate({**inputs, path: x}, [metric], strategies=[strategy])
        return frame[(strategy, metric)].to_numpy() - target

    roots, why = bracketed_root(f, np.full(size, lo), np.full(size, hi))
    return pd.DataFrame({path: roots, "reason": why})
