"""The Python entry points: :func:`run` a case and read its :class:`Result`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from finmodel.analysis.timing import TimingFrames, tables_of, timing_summary, timing_table
from finmodel.engine.evaluate import evaluate
from finmodel.engine.graph import Line, Model
from finmodel.engine.solve import NOT_CROSSED, bracketed_root, irr_reasons
from finmodel.engine.timeline import Timeline
from finmodel.errors import InputError, ModelError, shown
from finmodel.inputs.load import numeric_inputs
from finmodel.inputs.schema import Assumptions
from finmodel.inputs.bounds import check_bounds, check_scenarios, resolve_input
from finmodel.models.capex import CATEGORIES
from finmodel.valuation import PAYBACK_CHECK_REASONS, irr_reasons_for, metric_rank
from finmodel.models.strategies import BREAKEVEN_BTC_PRICE, INPUT_BREAKEVENS, build_model

if TYPE_CHECKING:
    import pandas as pd

PRICE_LINE = "network.btc_price_usd"
#: The IRRs a run reports, with the flows each is taken on: (check name, metric, line).
IRR_SERIES = (("project", "project_irr", "{}.unlevered_fcf_usd"),
              ("equity", "equity_irr", "{}.equity_cf_usd"),
              ("incremental", "incremental_irr", "{}.incremental_fcf_usd"))


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
    timing: Mapping[str, pd.DataFrame] = field(default_factory=dict)
    convertible: dict[str, float] | None = None

    @property
    def strategies(self) -> list[str]:
        return list(dict.fromkeys(s.strategy for s in self.model.metrics()))

    def line(self, name: str) -> pd.DataFrame:
        """One line for every scenario: rows are scenarios, columns are months."""
        import pandas as pd  # the DataFrame views only: a run needs no pandas

        v = self.values[name]
        return pd.DataFrame(np.broadcast_to(v, (self.n_scenarios, v.shape[1])),
                            columns=self.timeline.periods)

    def lines_frame(self, scenario: int = 0) -> pd.DataFrame:
        """Every line of one scenario: rows are lines, columns are months."""
        import pandas as pd  # the DataFrame views only: a run needs no pandas

        rows = {ln.name: self._row(ln, scenario) for ln in self.model.lines}
        return pd.DataFrame.from_dict(rows, orient="index", columns=self.timeline.periods)

    @cached_property
    def lines(self) -> pd.DataFrame:
        """Every line of the first scenario (rows: lines; columns: months)."""
        return self.lines_frame(0)

    def annual_rows(self, scenario: int = 0) -> dict[str, np.ndarray]:
        """Every line rolled up by calendar year (``timeline.years``): flows summed, prices
        averaged, balances at year end; lines without a roll-up are left out."""
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
        return out

    def annual_frame(self, scenario: int = 0) -> pd.DataFrame:
        """:meth:`annual_rows` as a DataFrame (rows: lines; columns: years)."""
        import pandas as pd

        return pd.DataFrame.from_dict(self.annual_rows(scenario), orient="index",
                                      columns=self.timeline.years)

    @cached_property
    def annual(self) -> pd.DataFrame:
        return self.annual_frame(0)

    def metrics(self, strategy: str) -> pd.DataFrame:
        """A strategy's headline metrics for every scenario (rows: scenarios)."""
        import pandas as pd  # the DataFrame views only: a run needs no pandas

        cols = {s.metric: np.broadcast_to(self.values[s.name], (self.n_scenarios,))
                for s in self.model.metrics() if s.strategy == strategy}
        return pd.DataFrame(cols)

    def summary_values(self, scenario: int = 0) -> dict[str, dict[str, float]]:
        """Strategy -> metric -> value for one scenario (NaN where the value does not
        exist), strategies in the model's order; :meth:`summary_frame` without pandas."""
        data: dict[str, dict[str, float]] = {}
        for s in self.model.metrics():
            v = self.values[s.name]
            data.setdefault(s.strategy, {})[s.metric] = float(v[min(scenario, v.size - 1)])
        return data

    def summary_frame(self, scenario: int = 0) -> pd.DataFrame:
        """Metrics x strategies for one scenario (NaN where a strategy has no such metric
        or its value does not exist)."""
        import pandas as pd

        data = self.summary_values(scenario)
        keys = sorted({k for d in data.values() for k in d}, key=metric_rank)
        return pd.DataFrame(data).reindex(keys)

    @cached_property
    def summary(self) -> pd.DataFrame:
        """Metrics x strategies of the first scenario."""
        return self.summary_frame(0)

    def summary_json(self, scenario: int = 0) -> dict[str, Any]:
        """``{"strategies": {name: {metric: value}}, "case": {...}, "notes": {...}}``;
        a metric that does not exist (payback never reached) is null."""
        strategies: dict[str, dict[str, float | None]] = {}
        for s in sorted(self.model.metrics(), key=lambda x: metric_rank(x.metric)):
            v = float(self.values[s.name][min(scenario, self.values[s.name].size - 1)])
            strategies.setdefault(s.strategy, {})[s.metric] = v if np.isfinite(v) else None
        strategies = {k: strategies[k] for k in self.strategies}
        notes = {k: str(v[min(scenario, v.size - 1)]) for k, v in self.reasons.items()
                 if v[min(scenario, v.size - 1)]}
        # Every IRR and payback carries its note: why it is not available (null when it is
        # shown).
        for s, metrics in strategies.items():
            for key in [k for _, k, _ in IRR_SERIES] + ["payback_years"]:
                if key in metrics:
                    metrics[f"{key}_note"] = notes.get(f"{s}.{key}")
        src = getattr(self.assumptions, "_source", None)
        halving = float(self.values["network.next_halving_date"][0])
        timing = {s: timing_summary(t, halving) for s, t in tables_of(self.timing).items()}
        out = {
            "strategies": strategies,
            "timing": timing,
            "case": {
                "name": self.assumptions.case.name,
                "file": src.name if src else None,
                "sha256": src.sha256 if src else None,
                "start_month": self.assumptions.case.start_month,
                "horizon_years": self.assumptions.case.horizon_years,
            },
            "notes": notes,
            "checks": _checks_json(self.check_rows(scenario)),
        }
        if self.convertible is not None:
            out["convertible"] = dict(self.convertible)
            out["convertible"]["all_in_cost_rate"] = _finite(
                self.values["convertible.all_in_cost"][0])
            out["convertible"]["dilution"] = self.dilution_table().to_dict(orient="records")
        return out

    def check_rows(self, scenario: int = 0) -> dict[str, dict[str, Any]]:
        """Check id -> label, value, tolerance and ok for one scenario (the rows of
        :meth:`checks_frame`, without pandas)."""
        def pick(cid: str, part: str) -> float:
            v = self.values[f"checks.{cid}.{part}"]
            return float(v[min(scenario, v.size - 1)])

        rows = {}
        for node in self.model.scalars:
            if node.sheet == "Checks" and node.name.endswith(".value"):
                cid = node.name[len("checks."):-len(".value")]
                rows[cid] = {"label": node.label, "value": pick(cid, "value"),
                             "tolerance": pick(cid, "tolerance"),
                             "ok": pick(cid, "ok") == 1.0}
        return rows

    def checks_frame(self, scenario: int = 0) -> pd.DataFrame:
        """The model's checks for one scenario (rows: check ids): label, value, tolerance
        and ok (the Checks sheet of the workbook, from the same expressions)."""
        import pandas as pd

        return pd.DataFrame.from_dict(self.check_rows(scenario), orient="index",
                                      columns=["label", "value", "tolerance", "ok"])

    @cached_property
    def checks(self) -> pd.DataFrame:
        """The checks of the first scenario (see :meth:`checks_frame`)."""
        return self.checks_frame(0)

    def dilution_table(self) -> pd.DataFrame:
        """Shares delivered, capped-call offset and net dilution across share prices."""
        import pandas as pd

        from finmodel.financing.notes import DILUTION_MULTIPLES

        rows = []
        for i, mult in enumerate(DILUTION_MULTIPLES, start=1):
            p = f"convertible.dilution_{i}."
            rows.append({
                "price_multiple": mult,
                "share_price_usd": float(self.values[p + "share_price_usd"][0]),
                "gross_shares": float(self.values[p + "gross_shares"][0]),
                "capped_call_shares": float(self.values[p + "capped_call_shares"][0]),
                "net_dilution_share": float(self.values[p + "net_share"][0]),
            })
        return pd.DataFrame(rows)

    def _row(self, ln: Line, scenario: int) -> np.ndarray:
        v = self.values[ln.name]
        return v[min(scenario, v.shape[0] - 1)]


def _checks_json(rows: dict[str, dict[str, Any]]) -> dict[str, Any]:
    items = {cid: {"label": r["label"], "value": _finite(r["value"]),
                   "tolerance": r["tolerance"], "ok": bool(r["ok"])}
             for cid, r in rows.items()}
    return {"all_pass": all(r["ok"] for r in rows.values()),
            "failed": [cid for cid, r in rows.items() if not r["ok"]], "items": items}


def _finite(v: float) -> float | None:
    return float(v) if np.isfinite(v) else None


def timeline_of(a: Assumptions) -> Timeline:
    return Timeline(a.case.start_date, a.case.horizon_years * 12)


def run(
    assumptions: Assumptions,
    *,
    inputs: Mapping[str, Any] | None = None,
    lines: Mapping[str, Any] | None = None,
    breakevens: bool = True,
    rules: bool = True,
) -> Result:
    """Run a case, optionally over many scenarios at once.

    Parameters
    ----------
    assumptions
        A validated case (see :func:`finmodel.load_assumptions`).
    inputs
        Scenario values by field path (``{"network.btc_price_usd": prices}``): a 1-D array
        per input, one value per scenario (a yearly path: scenarios x years), all of one
        length; each value is checked against the field's bounds and type and every
        scenario against the case's cross-field rules.
    lines
        Lines given instead of computed (``{"network.btc_price_usd": paths}``), shape
        (scenarios, months) or (months,), finite — for example BTC price paths from a
        simulation.
    breakevens
        Solve the break-evens and, for a single scenario, the value of converting by start
        month (a few more vectorised evaluations).
    rules
        Check every scenario against the case's cross-field rules (the default). False
        checks ``inputs`` only against each field's bounds — to test the model's checks on
        states a case file refuses; such results are not valid cases.

    Returns
    -------
    Result

    Raises
    ------
    InputError
        ``assumptions`` is not a case, an input or line is unknown, a value breaks a bound
        or a rule, or arrays disagree in length; the message names the argument and value.
    """
    if not isinstance(breakevens, bool):
        raise InputError(f"run: breakevens must be True or False, got {shown(breakevens)}")
    result, solve = start_run(assumptions, inputs=inputs, lines=lines, rules=rules)
    if breakevens:
        complete_run(result, solve())
    return result


#: What a run's break-evens and timing add to its Result (see :func:`start_run`): solved
#: values and their reasons by name, timing tables by strategy.
Solved = dict


def start_run(
    assumptions: Assumptions,
    *,
    inputs: Mapping[str, Any] | None = None,
    lines: Mapping[str, Any] | None = None,
    rules: bool = True,
) -> tuple[Result, Callable[[], Solved]]:
    """:func:`run` without the break-evens and the value of converting by start month, and
    the function that solves them: ``complete_run(result, solve())`` makes ``result``
    what :func:`run` returns, the same numbers in the same order.

    They are most of a run after the model's own evaluation (0.25 s of the base case's
    0.33 s). ``solve`` reads the run's inputs and values and changes nothing, so it can
    run in another process (``finmodel run -o`` solves them in a forked one while it
    writes the workbook's sheets that do not show them). Until then the solved values
    are NaN and ``result.timing`` is empty. Arguments and errors as for :func:`run`.
    """
    if not isinstance(assumptions, Assumptions):
        raise InputError(f"run: assumptions must be a case (finmodel.load_assumptions), got "
                         f"{shown(assumptions)}")
    model = build_model(assumptions)
    tl = timeline_of(assumptions)
    scalars, paths = numeric_inputs(assumptions)
    checked = check_scenarios(assumptions, inputs or {}, what="run inputs",
                              rules=rules is not False)
    for path, arr in checked.items():
        name = path.replace(".", "_")
        (paths if name in paths else scalars)[name] = arr
    overrides = check_lines(assumptions, model, tl, lines or {})
    sizes = {v.shape[0] for v in (*checked.values(), *overrides.values())} - {1}
    if len(sizes) > 1:
        raise InputError(f"run: inputs and lines disagree in the number of scenarios "
                         f"({sorted(sizes)})")
    n = sizes.pop() if sizes else 1
    values = evaluate(model, tl, scalars, paths, overrides)
    reasons: dict[str, np.ndarray] = {}
    for strategy in dict.fromkeys(x.strategy for x in model.metrics()):
        for kind, key, line in IRR_SERIES:
            if f"{strategy}.{key}" not in values:
                continue
            flows = values[line.format(strategy)]
            irr = np.broadcast_to(values[f"{strategy}.{key}"], (flows.shape[0],))
            code = np.broadcast_to(values[f"{strategy}.{kind}.irr_check"], irr.shape)
            why = irr_reasons(flows, (1.0 + irr) ** (1 / 12) - 1)
            checked = np.array([irr_reasons_for(kind).get(int(c), "") for c in code],
                               dtype=object)
            reasons[f"{strategy}.{key}"] = np.where(code > 0, checked,
                                                    np.where(np.isnan(irr), why, ""))
    for strategy in dict.fromkeys(x.strategy for x in model.metrics()):
        if f"{strategy}.payback_check" in values:
            code = np.broadcast_to(values[f"{strategy}.payback_check"], (n,))
            reasons[f"{strategy}.payback_years"] = np.array(
                [PAYBACK_CHECK_REASONS.get(int(c), "") for c in code], dtype=object)

    def solve() -> Solved:
        # On copies: the result's own dictionaries change only in complete_run.
        solved_values, solved_reasons = dict(values), dict(reasons)
        _solve_breakevens(model, tl, scalars, paths, overrides, solved_values,
                          solved_reasons, n)
        timing = {}
        if n == 1:
            for name, spec in assumptions.strategies.items():
                if spec.kind != "mining":
                    timing[name] = timing_table(model, tl, scalars, paths, overrides,
                                                     name)
        return {"values": {k: v for k, v in solved_values.items() if v is not values.get(k)},
                "reasons": {k: v for k, v in solved_reasons.items()
                            if v is not reasons.get(k)},
                "timing": timing}

    note = None
    if assumptions.financing is not None and assumptions.financing.convertible is not None:
        from finmodel.financing.notes import lattice_value

        note = lattice_value(assumptions)
    return Result(assumptions, model, tl, values, n, reasons, TimingFrames({}), note), solve


def complete_run(result: Result, solved: Solved) -> None:
    """Put what ``solve`` of :func:`start_run` found into ``result`` (in place, each name
    where :func:`run` puts it)."""
    result.values.update(solved["values"])
    result.reasons.update(solved["reasons"])
    result.timing = TimingFrames(solved["timing"])


def check_lines(a: Assumptions, model: Model, tl: Timeline, lines: Mapping[str, Any]
                ) -> dict[str, np.ndarray]:
    """Lines given instead of computed, checked: known names, numbers, finite, (scenarios,
    months) or (months,), and within the bounds of the input of the same name (a BTC price
    line is positive as ``network.btc_price_usd`` is)."""
    if not isinstance(lines, Mapping):
        raise InputError(f"run: lines must be a mapping of line name -> values, got "
                         f"{shown(lines)}")
    out = {}
    for name, v in lines.items():
        if not isinstance(name, str) or not isinstance(model.nodes.get(name), Line):
            raise InputError(f"run lines: {shown(name)} is not a line of this model (a name "
                             "such as 'network.btc_price_usd')")
        try:
            arr = np.asarray(v, dtype=float)
        except (TypeError, ValueError):
            raise InputError(f"run lines: {name}: expected numbers, got {shown(v)}") from None
        if arr.ndim == 1:
            arr = arr[None, :]
        if arr.ndim != 2 or arr.shape[1] != tl.months or arr.shape[0] == 0:
            raise InputError(f"run lines: {name}: expected shape (scenarios, {tl.months}) or "
                             f"({tl.months},), got {np.shape(v)}")
        if not np.all(np.isfinite(arr)):
            raise InputError(f"run lines: {name}: values must be finite")
        try:
            ref = resolve_input(a, name)
        except InputError:
            ref = None
        if ref is not None:
            check_bounds(name, ref.info, arr, what="line value")
        out[name] = arr
    return out


#: Where each break-even's root is looked for, as multiples of its first upper bracket (the
#: case's own value): 0, quarter steps up to 1, 2 and 4 for every break-even and scenario in
#: one vectorised evaluation; then, only where the target has not changed sign, doubling on
#: up to 2^30 (the widening of a plain bracket search, done at once). The root is refined in
#: the first interval where the target changes sign.
GRID = np.array([0.0, 0.25, 0.5, 0.75, 1.0, 2.0, 4.0])
FAR = 2.0 ** np.arange(3, 31)
#: Rows x lines one evaluation may hold (x months x 8 bytes: about 150 MB at 15 years).
ROW_BUDGET = 100_000


@dataclass
class _Target:
    """One solved metric for every scenario: the inputs it varies and the gap whose root
    it is."""

    node: str
    kind: str
    names: list[str]  # the NPVs the gap needs: names[0] alone, or names[0] - names[1]
    price: bool  # varies the BTC price path (by a factor) rather than inputs
    inputs: list[str]  # inputs set to x (or to their value times x: ``scaled``)
    scaled: bool
    hi: float  # the first upper bracket (the grid's 1)


class _Solver:
    """All break-evens of a run, solved together: each evaluation of the model takes rows
    (break-even, scenario, trial value) as scenarios, so every break-even advances by one
    step in one vectorised evaluation (in chunks of rows that bound memory)."""

    def __init__(self, model, tl, scalars, paths, overrides, values, n):
        self.model, self.tl, self.n = model, tl, n
        self.scalars, self.paths, self.overrides = scalars, paths, overrides
        self.price = np.broadcast_to(values[PRICE_LINE], (n, tl.months))
        self._size: dict[str, int] = {}

    def size(self, name: str) -> int:
        """How many lines and scalars evaluating ``name`` takes (memory per row)."""
        if name not in self._size:
            self._size[name] = sum(len(g) for g in self.model.plan([name]))
        return self._size[name]

    def gaps(self, targets: list[_Target], tgt: np.ndarray, scen: np.ndarray,
             x: np.ndarray) -> np.ndarray:
        """The gap of target ``tgt[r]`` in scenario ``scen[r]`` at ``x[r]``, every row."""
        out = np.empty(len(x))
        for rows in self._chunks(targets, tgt):
            out[rows] = self._gaps(targets, tgt[rows], scen[rows], x[rows])
        return out

    def _chunks(self, targets, tgt):
        """Runs of consecutive rows whose rows x lines stay within :data:`ROW_BUDGET`."""
        start, names = 0, set()
        for r in range(len(tgt)):
            more = names | set(targets[tgt[r]].names)
            if r > start and (r + 1 - start) * sum(self.size(m) for m in more) > ROW_BUDGET:
                yield slice(start, r)
                start, more = r, set(targets[tgt[r]].names)
            names = more
        if start < len(tgt):
            yield slice(start, len(tgt))

    def _gaps(self, targets, tgt, scen, x) -> np.ndarray:
        n, rows = self.n, len(x)

        def per_row(v, axis0):  # a value per scenario (or one for all) -> one per row
            v = np.asarray(v, dtype=float)
            return v[scen] if n > 1 and v.ndim > 0 and v.shape[0] == n and axis0 else v

        scalars = {k: per_row(v, np.ndim(v) == 1) for k, v in self.scalars.items()}
        paths = {k: per_row(v, np.ndim(v) == 2) for k, v in self.paths.items()}
        overrides = {k: per_row(v, np.ndim(v) == 2) for k, v in self.overrides.items()}
        used = [targets[i] for i in dict.fromkeys(tgt.tolist())]
        if any(t.price for t in used):
            scale = np.ones(rows)
            for i, t in enumerate(targets):
                if t.price:
                    scale[tgt == i] = x[tgt == i]
            overrides[PRICE_LINE] = self.price[scen] * scale[:, None]
        for i, t in enumerate(targets):
            mine = tgt == i
            if not mine.any():
                continue
            for name in t.inputs:
                base = np.broadcast_to(np.asarray(scalars[name], dtype=float), (rows,))
                scalars[name] = np.where(mine, base * x if t.scaled else x, base)
        names = list(dict.fromkeys(m for t in used for m in t.names))
        out = evaluate(self.model, self.tl, scalars, paths, overrides, only=names)
        got = {m: np.broadcast_to(out[m], (rows,)) for m in names}
        gap = np.empty(rows)
        for i, t in enumerate(targets):
            mine = tgt == i
            if mine.any():
                a = got[t.names[0]][mine]
                gap[mine] = a if len(t.names) == 1 else a - got[t.names[1]][mine]
        return gap


def _solve_breakevens(model, tl, scalars, paths, overrides, values, reasons, n) -> None:
    """Every solved metric (break-even) of a run: the target evaluated on :data:`GRID`
    for all break-evens and scenarios at once, then Illinois steps from the first interval
    where it changes sign, all break-evens and scenarios stepping together."""
    sv = _Solver(model, tl, scalars, paths, overrides, values, n)
    targets = []
    for node in [x for x in model.scalars if x.solved]:
        strategy, kind = node.name.split(".", 1)
        targets.append(_breakeven(node.name, kind, f"{strategy}.npv", "mining.npv", scalars))
    if not targets:
        return
    k = len(targets)
    his = np.array([t.hi for t in targets])
    # One row per (break-even, scenario), break-even-major so a chunk touches few strategies.
    tgt1, scen1 = np.repeat(np.arange(k), n), np.tile(np.arange(n), k)
    npv_zero = np.array([t.kind == BREAKEVEN_BTC_PRICE for t in targets])[tgt1]

    def scan(rows, mults):
        """The gap of pairs ``rows`` at ``mults`` times the first bracket: (x, f)."""
        m = len(mults)
        x = np.repeat(his[tgt1[rows]], m) * np.tile(mults, len(rows))
        f = sv.gaps(targets, np.repeat(tgt1[rows], m), np.repeat(scen1[rows], m), x)
        return x.reshape(-1, m), f.reshape(-1, m)

    def first_change(x, f, f0, x_prev, f_prev):
        """Whether each row changes sign from ``f0`` along its points, and the bracket
        (a, b, f(a), f(b)) of the first change (after ``x_prev``, ``f_prev``)."""
        change = (np.sign(f) != np.sign(f0)[:, None]) | ~np.isfinite(f)
        at = change.argmax(axis=1)
        rows = np.arange(len(at))
        a = np.where(at > 0, x[rows, np.maximum(at - 1, 0)], x_prev)
        fa = np.where(at > 0, f[rows, np.maximum(at - 1, 0)], f_prev)
        return change.any(axis=1), a, x[rows, at], fa, f[rows, at]

    everyone = np.arange(k * n)
    x1, f1 = scan(everyone, GRID)
    f0 = f1[:, 0]
    found, a, b, fa, fb = first_change(x1[:, 1:], f1[:, 1:], f0, x1[:, 0], f0)
    # A strategy whose NPV is not negative at a zero BTC price has no break-even BTC price
    # whatever the search finds (the reason says so): those rows are not searched on.
    skip = npv_zero & (f0 >= 0)
    far = everyone[~found & ~skip & (f0 != 0)]
    if far.size:
        x2, f2 = scan(far, FAR)
        found2, a2, b2, fa2, fb2 = first_change(x2, f2, f0[far], x1[far, -1], f1[far, -1])
        found[far], a[far], b[far], fa[far], fb[far] = found2, a2, b2, fa2, fb2
    none = (~found & (f0 != 0)) | skip
    memo = {"x": None, "f": None}

    def gap(xv):  # rows whose trial value has not moved (solved ones) are not re-evaluated
        fx = np.full(len(xv), np.nan)
        same = np.zeros(len(xv), bool) if memo["x"] is None else memo["x"] == xv
        if same.any():
            fx[same] = memo["f"][same]
        todo = ~same & ~none
        if todo.any():
            fx[todo] = sv.gaps(targets, tgt1[todo], scen1[todo], xv[todo])
        memo["x"], memo["f"] = xv.copy(), fx
        return fx

    root, why = bracketed_root(gap, np.where(none, 0.0, a), np.where(none, 0.0, b),
                               fa=np.where(none, 1.0, fa), fb=np.where(none, 1.0, fb))
    why = np.where(none, NOT_CROSSED, why).reshape(k, n)
    root = root.reshape(k, n)
    f0 = f0.reshape(k, n)
    start_price = sv.price[:, 0]
    endogenous = "network.hashrate_eh_s" in model.stepped
    for i, t in enumerate(targets):
        w = why[i]
        if t.kind == BREAKEVEN_BTC_PRICE:
            w = np.where(f0[i] >= 0, ZERO_PRICE + (ENDOGENOUS if endogenous else ""), w)
        w = np.where(w == NOT_CROSSED, NO_ROOT.get(t.kind, NOT_CROSSED), w)
        if t.price:
            value = root[i] * start_price
        elif t.scaled:
            value = root[i] * _capex_per_mw(scalars, n)
        else:
            value = root[i]
        values[t.node] = np.where(w == "", value, np.nan)
        reasons[t.node] = w


#: Why a strategy has no break-even BTC price when its NPV is not negative at zero: an
#: owned fleet spends no capex, and what the site earns without mining covers its costs —
#: power sold back, the fleet sold at its value on the ASIC price curve (quoted in USD/TH,
#: not tied to the BTC price) once it stops for good.
ZERO_PRICE = ("NPV is not negative even at a zero BTC price: with no capex to earn back, what "
              "the site earns without mining (power sold back; the fleet sold at its ASIC-"
              "curve value, which does not follow the BTC price) covers its costs")
#: ... and with an endogenous hashrate the margin survives any positive price.
ENDOGENOUS = ("; at any positive price the endogenous network hashrate falls until hashprice"
              " is back near the reference cash cost, so the margin survives")
#: What it means, for each break-even, that no value in [0, 2^30 x the case's] solves it.
NO_ROOT = {
    "btc_price_mining_matches": "mining's NPV stays on the same side of this strategy's at "
                                "every BTC price",
    "breakeven_capex": "converting does not match mining even with no conversion capex",
    "breakeven_lease_rate": "no lease rate makes converting match mining",
    "breakeven_gpu_hour_price": "no GPU-hour price makes converting match mining",
    BREAKEVEN_BTC_PRICE: "no BTC price makes the NPV zero",
}


def _capex_per_mw(scalars, n: int) -> np.ndarray:
    """Conversion capex per MW of the case, contingency included (per scenario)."""
    cats = [f"conversion_{c}_usd_per_mw" for c in CATEGORIES]
    per_mw = sum(np.asarray(scalars[c], dtype=float) for c in cats) * (
        1 + np.asarray(scalars["conversion_contingency_share"], dtype=float))
    return np.broadcast_to(per_mw, (n,))


def _breakeven(node: str, kind: str, npv_s: str, npv_m: str, scalars) -> _Target:
    """What one kind of solved metric varies, and the gap whose root it is."""
    if kind == BREAKEVEN_BTC_PRICE:  # the strategy's NPV is zero
        return _Target(node, kind, [npv_s], True, [], False, 1.0)
    if kind == "btc_price_mining_matches":  # mining's NPV equals the strategy's
        return _Target(node, kind, [npv_m, npv_s], True, [], False, 1.0)
    if kind in INPUT_BREAKEVENS:  # one input makes the strategy match mining
        name = INPUT_BREAKEVENS[kind]
        return _Target(node, kind, [npv_s, npv_m], False, [name], False,
                       float(np.max(scalars[name])))
    if kind == "breakeven_capex":  # all conversion cost categories scaled together
        cats = [f"conversion_{c}_usd_per_mw" for c in CATEGORIES]
        return _Target(node, kind, [npv_s, npv_m], False, cats, True, 1.0)
    raise ModelError(f"no solver for the solved metric {kind!r}")
