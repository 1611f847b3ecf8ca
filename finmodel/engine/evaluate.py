"""The numpy evaluator: every line as an array of shape (scenarios, periods).

A line that does not depend on any scenario input stays of shape (1, periods) and is
broadcast on use, so 10,000 scenarios of a model cost memory only where they differ.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

import numpy as np

from finmodel.conventions import to_serial
from finmodel.engine.expr import (
    BinOp,
    Chosen,
    Compare,
    Const,
    Cumulative,
    DateConst,
    Expr,
    Func,
    Input,
    Lag,
    Neg,
    PathInput,
    Reduce,
    Ref,
    Shift,
    TimeRow,
    children,
)
from finmodel.engine.graph import Line, Model, Node, Scalar, _lag_targets
from finmodel.engine.solve import irr_periodic, one_blas_thread
from finmodel.engine.timeline import Timeline
from finmodel.errors import ModelError

ArrayLike = float | np.ndarray


def evaluate(
    model: Model,
    timeline: Timeline,
    inputs: Mapping[str, ArrayLike],
    paths: Mapping[str, np.ndarray] | None = None,
    overrides: Mapping[str, np.ndarray] | None = None,
    solved: Mapping[str, np.ndarray] | None = None,
    only: list[str] | None = None,
    buffers: Buffers | None = None,
) -> dict[str, np.ndarray]:
    """Evaluate every line and scalar of ``model``.

    Parameters
    ----------
    inputs
        Scalar inputs by defined name: a number, or a 1-D array with one value per
        scenario.
    paths
        Yearly input paths by defined name: 1-D (one path) or 2-D (scenarios, years).
    overrides
        Lines whose values are given instead of computed (for example 1,000 BTC price
        paths): 1-D (periods) or 2-D (scenarios, periods).
    solved
        Values of scalars solved outside the evaluator (break-evens), per scenario.
    only
        Evaluate just these nodes and what they depend on (a solver needing one metric).
    buffers
        Arrays of (scenarios, periods) are taken from these :class:`Buffers` instead of
        being allocated, and given back when the evaluation ends, so that repeated
        evaluations of one size (a Monte Carlo's chunks) reuse the same memory. The result
        then holds only the nodes of ``only`` (every node without it), copied where they
        sat in a buffer.

    Returns
    -------
    dict
        Line name -> array (scenarios or 1, periods); scalar name -> array (scenarios or 1,).
    """
    ev = _Evaluator(model, timeline, inputs, paths or {}, overrides or {}, solved or {},
                    buffers)
    with one_blas_thread():
        out = ev.run(model.plan(only))
    if buffers is not None:
        out = ev.give_back(out, only)
    return out


class Buffers:
    """Float arrays of one shape lent to evaluations and given back after each.

    A chunk of 600 scenarios x 240 months makes arrays of 1.15 MB, above glibc's mmap
    threshold: each new one is mapped and faulted in page by page (zeroed by the kernel),
    and freeing a chunk's lines hands the memory back to the system, so the next chunk
    faults it in again. Measured on a 10,000-scenario Monte Carlo: 430,000 page faults,
    a third of its CPU time in the kernel (benchmarks/README.md, bench_monte_carlo.py).
    Lent arrays hold no values between evaluations: every use overwrites them whole.
    Safe to share between threads (each array is lent to one evaluation at a time).
    """

    def __init__(self) -> None:
        self._shape: tuple[int, int] | None = None
        self._free: list[np.ndarray] = []
        self._lock = threading.Lock()

    def take(self, shape: tuple[int, int]) -> np.ndarray:
        """An array of ``shape`` (contents undefined)."""
        with self._lock:
            if shape != self._shape:  # a new chunk size (the last, smaller chunk)
                self._shape, self._free = shape, []
            if self._free:
                return self._free.pop()
        return np.empty(shape)

    def clear(self) -> None:
        """Let every array not lent go (to the garbage collector)."""
        with self._lock:
            self._shape, self._free = None, []

    def give(self, a: np.ndarray) -> None:
        """Take ``a`` back; the caller no longer reads or writes it."""
        with self._lock:
            if a.shape == self._shape:
                self._free.append(a)




class _Evaluator:
    def __init__(self, model, timeline, inputs, paths, overrides, solved, buffers=None
                 ) -> None:
        self.model = model
        self.tl = timeline
        self.n = timeline.months
        self.inputs = {k: _as_column(k, v) for k, v in inputs.items()}
        self.paths = {k: _as_rows(k, v) for k, v in paths.items()}
        self.overrides = {k: _as_rows(k, v) for k, v in overrides.items()}
        self.solved = {k: _as_column(k, v) for k, v in solved.items()}
        for name in self.overrides:
            node = model.nodes.get(name)
            if not isinstance(node, Line):
                raise ModelError(f"cannot override {name!r}: no such line in the model")
            if self.overrides[name].shape[1] != self.n:
                raise ModelError(
                    f"override for line {name!r} has {self.overrides[name].shape[1]} "
                    f"periods; the timeline has {self.n}"
                )
        sizes = {a.shape[0] for a in (*self.inputs.values(), *self.paths.values(),
                                      *self.overrides.values(), *self.solved.values())}
        sizes.discard(1)
        if len(sizes) > 1:
            raise ModelError(f"scenario arrays disagree in length: {sorted(sizes)}")
        self.s = sizes.pop() if sizes else 1
        self.values: dict[str, np.ndarray] = {}
        self._cum: dict[str, np.ndarray] = {}
        # While one line is evaluated: its sub-expressions that occur more than once
        # (``_shared``) and their values (``_memo``), so each is computed once.
        self._memo: dict[int, np.ndarray] | None = None
        self._shared: frozenset[int] = frozenset()
        # Inside the branch of an IF whose condition is one value per scenario: the
        # scenarios that take the branch (an IRR is solved for those only).
        self._rows: np.ndarray | None = None
        # Arrays of the full (scenarios, periods) shape taken from ``buffers``, by id (the
        # array is held here, so its id cannot be reused while it is lent).
        self.buffers = buffers if self.s > 1 else None
        self._lent: dict[int, np.ndarray] = {}

    def _new(self, shape: tuple[int, ...]) -> np.ndarray:
        """An uninitialised float array of ``shape``, from the buffers if it is full-size."""
        if self.buffers is None or shape != (self.s, self.n):
            return np.empty(shape)
        a = self.buffers.take(shape)
        self._lent[id(a)] = a
        return a

    def _done(self, a: np.ndarray) -> None:
        """``a``, a fresh array (made for one expression alone), is read no more: back to
        the buffers if it came from them."""
        if self._lent.get(id(a)) is a:
            del self._lent[id(a)]
            self.buffers.give(a)

    def give_back(self, out: dict[str, np.ndarray], only: list[str] | None
                  ) -> dict[str, np.ndarray]:
        """The nodes of ``only`` (all without it), copied out of the buffers, and every
        lent array given back."""
        keep = {}
        for name in (out if only is None else only):
            v = out[name]
            owner = v if v.base is None else v.base
            keep[name] = v.copy() if self._lent.get(id(owner)) is owner else v
        for a in self._lent.values():
            self.buffers.give(a)
        self._lent.clear()
        self.values.clear()
        self._cum.clear()
        return keep

    def run(self, groups: list[list[Node]]) -> dict[str, np.ndarray]:
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            stepped = self.model.stepped
            for group in groups:
                if len(group) == 1 and group[0].name not in stepped:
                    self._evaluate_node(group[0])
                else:
                    self._evaluate_recursive(group)
        out: dict[str, np.ndarray] = {}
        for name, v in self.values.items():
            out[name] = v[:, 0] if isinstance(self.model.nodes[name], Scalar) else v
        return out

    def _evaluate_node(self, node: Node) -> None:
        if isinstance(node, Scalar):
            if node.solved or node.expr is None:
                v = self.solved.get(node.name, np.full((1, 1), np.nan))
            else:
                v = self._eval_line(node.expr)
                if v.shape[1] != 1:
                    raise ModelError(f"scalar {node.name!r} depends on a per-period value")
            v = np.asarray(v, dtype=float)
            # (a constant's array is shared and read-only: the scalar gets its own)
            self.values[node.name] = v if v.flags.writeable else v.copy()
            return
        if node.name in self.overrides:
            v = self.overrides[node.name]
        else:
            v = self._eval_line(node.expr)
        if v.shape[1] != self.n or v.dtype != float:
            v = np.array(np.broadcast_to(v, (v.shape[0], self.n)), dtype=float)
        # Lines are never written after evaluation, so a line that is another line (a Ref)
        # may share its array.
        self._check_finite(node, v)
        self.values[node.name] = v

    def _evaluate_recursive(self, group: list[Node]) -> None:
        # Only the part of each expression that reads the group's own lines must be stepped
        # month by month: every other sub-expression is evaluated once over all periods
        # (vectorised) and sliced per step. The same elementwise operations on the same
        # values, so the same numbers, at a fraction of the per-step Python work.
        members = {id(node) for node in group}
        given_lines = [node for node in group if node.name in self.overrides]
        if given_lines:
            # A line given (a Monte Carlo's price or hashrate path) breaks the recursion
            # through it: when no remaining line lags another remaining one, they are
            # evaluated over all periods, the given first, then the others in the group's
            # order (same-period references first): the operations of stepping, at once.
            rest = [node for node in group if node.name not in self.overrides]
            inner = {id(node) for node in rest}
            if not any(id(target) in inner for node in rest for target in _lag_targets(node)):
                for node in given_lines + rest:
                    self._evaluate_node(node)
                return
        steps = []
        for node in group:  # every period is written below
            self.values[node.name] = self._new((self.s, self.n))
        for node in group:
            if node.name in self.overrides:
                given = self.overrides[node.name]
                steps.append((self.values[node.name], lambda t, g=given: g[:, t:t + 1]))
            else:
                steps.append((self.values[node.name],
                              self._stepper(self._hoist(node.expr, members))))
        for t in range(self.n):
            for out, step in steps:
                out[:, t:t + 1] = step(t)
        for node in group:
            self._check_finite(node, self.values[node.name])

    def _hoist(self, e: Expr, members: set[int]) -> Expr:
        """``e`` with every sub-expression that does not read a line of the recursive group
        (ids ``members``) replaced by its value over all periods (a :class:`_Done`)."""
        if not _reads(e, members):
            return e if isinstance(e, (Const, _Done)) else _Done(self.eval(e, None))
        if isinstance(e, BinOp):
            return BinOp(e.op, self._hoist(e.a, members), self._hoist(e.b, members))
        if isinstance(e, Compare):
            return Compare(e.op, self._hoist(e.a, members), self._hoist(e.b, members))
        if isinstance(e, Neg):
            return Neg(self._hoist(e.a, members))
        if isinstance(e, Func):
            return Func(e.name, tuple(self._hoist(a, members) for a in e.args))
        if isinstance(e, Lag):
            return Lag(e.target, e.k, self._hoist(e.initial, members))
        return e

    def _stepper(self, e: Expr):
        """``e`` (hoisted) as a function of the period giving its column: the dispatch on
        node types done once per group instead of once per node and month. The operations
        are those of :meth:`_eval` (booleans made floats before arithmetic), so the values
        are the same."""
        if isinstance(e, _Done):
            v = e.value
            return (lambda t: v) if v.shape[1] == 1 else (lambda t: v[:, t:t + 1])
        if isinstance(e, Const):
            v = np.array([[e.value]])
            return lambda t: v
        if isinstance(e, BinOp) and e.op in _BINARY:
            fa, fb, ufunc = self._stepper(e.a), self._stepper(e.b), _BINARY[e.op]
            return lambda t: ufunc(_float(fa(t)), _float(fb(t)))
        if isinstance(e, Func) and e.name in ("min", "max"):
            fa, fb = (self._stepper(x) for x in e.args)
            ufunc = np.minimum if e.name == "min" else np.maximum
            return lambda t: ufunc(_float(fa(t)), _float(fb(t)))
        if isinstance(e, Compare):
            fa, fb, cmp = self._stepper(e.a), self._stepper(e.b), _COMPARE[e.op]
            return lambda t: cmp(fa(t), fb(t))
        if isinstance(e, Neg):
            fa = self._stepper(e.a)
            return lambda t: np.negative(_float(fa(t)))
        if isinstance(e, Func) and e.name == "if":
            fc, fa, fb = (self._stepper(x) for x in e.args)
            return lambda t: np.where(_truth(fc(t)), fa(t), fb(t))
        if isinstance(e, Lag):
            arr, k, init = self.values[e.target.name], e.k, self._stepper(e.initial)
            return lambda t: arr[:, t - k:t - k + 1] if t >= k else init(t)
        if isinstance(e, Ref) and isinstance(e.target, Line) and e.target.name in self.values:
            arr = self.values[e.target.name]
            return lambda t: arr[:, t:t + 1]
        return lambda t: self.eval(e, t)  # anything rarer: the general evaluator

    @staticmethod
    def _check_finite(node: Node, v: np.ndarray) -> None:
        if np.isfinite(np.add.reduce(v, axis=None)):  # one pass; NaN or inf spoils the sum
            return
        if not np.all(np.isfinite(v)):
            bad = np.argwhere(~np.isfinite(v))[0]
            raise ModelError(
                f"line {node.name!r} is not finite (scenario {bad[0]}, period {bad[1]}): "
                "check the inputs it depends on for zeros or extreme values"
            )

    # --- expressions -------------------------------------------------------------------

    def _eval_line(self, e: Expr) -> np.ndarray:
        """Value of a line's (or scalar's) whole expression for all periods, each
        sub-expression that occurs more than once in it computed once (lines written out
        like a spreadsheet's repeat one term in several IF branches: the ASIC sale price
        ladder repeats ``efficiency / (1 - improvement)^(month / 12)`` ten times)."""
        shared = _shared_subtrees(e)
        if not shared:
            return self._eval(e, None)[0]
        memo: dict[int, np.ndarray] = {}
        self._memo, self._shared = memo, shared
        try:
            v = self._eval(e, None)[0]
        finally:
            self._memo, self._shared = None, frozenset()
        for x in memo.values():  # read by this line only
            if x is not v and x is not v.base:
                self._done(x)
        return v

    def eval(self, e: Expr, t: int | None) -> np.ndarray:
        """Value of ``e`` for all periods (t is None) or for period t only (a column)."""
        return self._eval(e, t)[0]

    def _eval(self, e: Expr, t: int | None) -> tuple[np.ndarray, bool]:
        """``(value, fresh)``: ``fresh`` when the array was made for this expression alone,
        so an operation on it may write its result into it instead of a new array.
        Comparisons give booleans (IF takes them as they are); arithmetic on one makes a
        float, and a line is always stored as floats. A shared sub-expression's value is
        remembered for the rest of the line and never fresh (it is read again)."""
        kind = type(e)
        if kind is Ref:  # the commonest nodes first, without the isinstance chain
            v = self.values.get(e.target.name)
            if v is None:
                v = self._value(e.target)
            return (v if t is None or isinstance(e.target, Scalar) else v[:, t:t + 1]), False
        if kind is Const:
            v = _CONSTANTS.get(e.value)
            if v is None:
                v = np.array([[e.value]])
                v.flags.writeable = False  # shared by every use: never written
                if len(_CONSTANTS) < 10_000:
                    _CONSTANTS[e.value] = v
            return v, False
        if self._memo is not None and id(e) in self._shared:
            v = self._memo.get(id(e))
            if v is None:
                v = self._memo[id(e)] = self._compute(e, t)[0]
            return v, False
        return self._compute(e, t)

    def _compute(self, e: Expr, t: int | None) -> tuple[np.ndarray, bool]:
        if isinstance(e, BinOp):
            (a, fa), (b, fb) = self._eval(e.a, t), self._eval(e.b, t)
            ufunc = _BINARY.get(e.op)
            if ufunc is None:
                raise ModelError(f"unknown operator {e.op!r}")
            return self._apply(ufunc, a, fa, b, fb), True
        if isinstance(e, Neg):
            a, fa = self._eval(e.a, t)
            a, fa = self._float(a, fa)
            return np.negative(a, out=a if fa and a.dtype == float else self._new(a.shape)), True
        if isinstance(e, Compare):
            (a, fa), (b, fb) = self._eval(e.a, t), self._eval(e.b, t)
            v = _COMPARE[e.op](a, b)
            for x, fresh in ((a, fa), (b, fb)):
                if fresh:
                    self._done(x)
            return v, True
        if isinstance(e, Func) and e.name in ("min", "max"):
            (a, fa), (b, fb) = (self._eval(x, t) for x in e.args)
            return self._apply(np.minimum if e.name == "min" else np.maximum,
                               a, fa, b, fb), True
        if isinstance(e, Func) and e.name == "if":
            c = self.eval(e.args[0], t)
            c = c if c.dtype == bool else c != 0
            if c.shape[1] == 1 and t is None and _solves_irr(e):
                a, b = self._branch(e.args[1], c[:, 0]), self._branch(e.args[2], ~c[:, 0])
                fa = fb = False
            else:
                (a, fa), (b, fb) = self._eval(e.args[1], t), self._eval(e.args[2], t)
            return self._where(c, a, fa, b, fb), True
        if t is None and isinstance(e, (Lag, Shift)):
            return (self._lag(e, t) if isinstance(e, Lag) else self._shift(e, t)), True
        return self._plain(e, t), False

    def _apply(self, ufunc, a: np.ndarray, a_fresh: bool, b: np.ndarray, b_fresh: bool
               ) -> np.ndarray:
        """``ufunc(a, b)``, written into a fresh float operand of the result's shape if any
        (one array less to allocate and fill per operation), else into a new array; a
        fresh operand not written into is done with."""
        a, a_fresh = self._float(a, a_fresh)
        b, b_fresh = self._float(b, b_fresh)
        if a.shape == b.shape:
            shape = a.shape
        elif a.ndim == b.ndim == 2:  # the evaluator's arrays: cheaper than broadcast_shapes
            shape = (max(a.shape[0], b.shape[0]), max(a.shape[1], b.shape[1]))
        else:
            shape = np.broadcast_shapes(a.shape, b.shape)
        if a_fresh and a.shape == shape and a.dtype == float:
            out = a
        elif b_fresh and b.shape == shape and b.dtype == float:
            out = b
        else:
            out = self._new(shape)
        v = ufunc(a, b, out=out)
        for x, fresh in ((a, a_fresh), (b, b_fresh)):
            if fresh and x is not out:
                self._done(x)
        return v

    def _float(self, a: np.ndarray, fresh: bool) -> tuple[np.ndarray, bool]:
        """``a`` with a comparison's booleans as floats 1 and 0, and whether fresh."""
        if a.dtype != bool:
            return a, fresh
        out = self._new(a.shape)
        np.copyto(out, a)
        return out, True

    def _where(self, c: np.ndarray, a: np.ndarray, fa: bool, b: np.ndarray, fb: bool
               ) -> np.ndarray:
        """``np.where(c, a, b)``; a full-size float result is written into a fresh operand
        or a lent array (the same values, selected)."""
        shape = np.broadcast_shapes(c.shape, a.shape, b.shape)
        if (self.buffers is None or shape != (self.s, self.n)
                or np.result_type(a, b) != float):
            v = np.where(c, a, b)
        elif fa and a.shape == shape and a.dtype == float:
            np.copyto(a, b, where=~c)
            v, a = a, None
        elif fb and b.shape == shape and b.dtype == float:
            np.copyto(b, a, where=c)
            v, b = b, None
        else:
            v = self._new(shape)
            np.copyto(v, b)
            np.copyto(v, a, where=c)
        for x, fresh in ((a, fa), (b, fb)):
            if fresh and x is not None:
                self._done(x)
        return v

    def _plain(self, e: Expr, t: int | None) -> np.ndarray:
        if isinstance(e, _Done):
            v = e.value
            return v if t is None or v.shape[1] == 1 else v[:, t:t + 1]
        cols = slice(None) if t is None else slice(t, t + 1)
        if isinstance(e, Const):
            return np.array([[e.value]])
        if isinstance(e, Ref):
            v = self._value(e.target)
            return v if isinstance(e.target, Scalar) else v[:, cols]
        if isinstance(e, Input):
            try:
                return self.inputs[e.name]
            except KeyError:
                raise ModelError(f"input {e.name!r} has no value") from None
        if isinstance(e, Chosen):
            try:
                return (self.inputs[e.name] == e.code).astype(float)
            except KeyError:
                raise ModelError(f"input {e.name!r} has no value") from None
        if isinstance(e, Func):
            args = [self.eval(a, t) for a in e.args]
            if e.name == "floor":
                return np.floor(_float(args[0]))
            if e.name == "and":
                return _truth(args[0]) & _truth(args[1])
            if e.name == "months_between":
                return _month_number(_float(args[1])) - _month_number(_float(args[0]))
            if e.name == "na":
                return np.array([[np.nan]])
            if e.name == "or_na":
                return args[0]
            if e.name == "or":
                return _truth(args[0]) | _truth(args[1])
            raise ModelError(f"unknown function {e.name!r}")
        if isinstance(e, TimeRow):
            return self.tl.rows[e.kind][None, cols]
        if isinstance(e, Lag):
            return self._lag(e, t)
        if isinstance(e, Shift):
            return self._shift(e, t)
        if isinstance(e, Cumulative):
            cum = self._cum.get(e.target.name)
            if cum is None:
                v = self._value(e.target)
                cum = self._cum[e.target.name] = np.cumsum(v, axis=1, out=self._new(v.shape))
            return cum[:, cols]
        if isinstance(e, PathInput):
            return self._path(e, t)
        if isinstance(e, Reduce):
            return self._reduce(e)
        if isinstance(e, DateConst):
            return np.array([[to_serial(e.date)]])
        raise ModelError(f"cannot evaluate expression node {type(e).__name__}")

    def _branch(self, e: Expr, rows: np.ndarray) -> np.ndarray:
        """Value of an IF branch taken by ``rows`` (one flag per scenario, or one for all):
        an IRR inside it is solved for those scenarios only, NaN for the others, whose
        values the IF discards. (The solver gives each series the same root whatever
        other series it is solved with, so the kept values are the same bits.)"""
        outer, memo = self._rows, self._memo
        if outer is not None and outer.shape == rows.shape:
            rows = rows & outer
        # Nothing computed for some rows only may be remembered for the rest of the line.
        self._rows, self._memo = rows, None
        try:
            return self.eval(e, None)
        finally:
            self._rows, self._memo = outer, memo

    def _value(self, node: Node) -> np.ndarray:
        try:
            return self.values[node.name]
        except KeyError:
            raise ModelError(f"{node.name!r} used before it was evaluated") from None

    def _lag(self, e: Lag, t: int | None) -> np.ndarray:
        arr = self._value(e.target)
        if t is not None:
            return arr[:, t - e.k:t - e.k + 1] if t >= e.k else self.eval(e.initial, t)
        k = min(e.k, self.n)
        init = self.eval(e.initial, None)
        init = np.broadcast_to(init, (init.shape[0], self.n))[:, :k]
        rows = max(arr.shape[0], init.shape[0])
        out = self._new((rows, self.n))
        out[:, :k] = init
        out[:, k:] = arr[:, :self.n - k]
        return out

    def _shift(self, e: Shift, t: int | None) -> np.ndarray:
        arr = self._value(e.target)
        k = self.eval(e.k, None)
        if k.shape[1] != 1:
            raise ModelError(f"the shift of {e.target.name!r} must not vary by period")
        if t is None and k.shape[0] == 1 and np.isfinite(k[0, 0]):
            # One shift for every scenario: copies of column ranges, the values below.
            d = int(np.rint(k[0, 0])) * (1 if e.ahead else -1)  # source = column + d
            init = self.eval(e.initial, None)
            rows = max(arr.shape[0], init.shape[0])
            out = self._new((rows, self.n))
            lo, hi = min(max(0, -d), self.n), max(min(self.n, self.n - d), 0)
            init = np.broadcast_to(init, (init.shape[0], self.n))
            if lo < hi:
                out[:, lo:hi] = arr[:, lo + d:hi + d]
            else:
                lo = hi = self.n
            out[:, :lo] = init[:, :lo]
            out[:, hi:] = init[:, hi:]
            return out
        cols = np.arange(self.n)[None, :] if t is None else np.array([[t]])
        step = np.rint(k).astype(int)
        src = cols + step if e.ahead else cols - step  # (S or 1, periods)
        init = self.eval(e.initial, t)
        rows = max(arr.shape[0], src.shape[0], init.shape[0])
        arr = np.broadcast_to(arr, (rows, self.n))
        src = np.broadcast_to(src, (rows, src.shape[1]))
        got = np.take_along_axis(arr, np.clip(src, 0, self.n - 1), axis=1)
        inside = (src >= 0) & (src <= self.n - 1)
        return np.where(inside, got, np.broadcast_to(init, got.shape))

    def _path(self, e: PathInput, t: int | None) -> np.ndarray:
        try:
            values = self.paths[e.name]
        except KeyError:
            raise ModelError(f"input path {e.name!r} has no value") from None
        idx = self.eval(e.index, t)
        if idx.shape[0] != 1:
            raise ModelError(f"the index into path {e.name!r} must not vary by scenario")
        pos = idx[0].astype(int) - 1
        if pos.min() < 0 or pos.max() >= values.shape[1]:
            raise ModelError(
                f"input path {e.name!r} has {values.shape[1]} values; position "
                f"{int(pos.max()) + 1} was asked for"
            )
        # C order, as every other line: numpy sums a row pairwise only when it is
        # contiguous (an F-ordered gather was summed left to right: other last bits)
        return np.ascontiguousarray(values[:, pos])

    def _reduce(self, e: Reduce) -> np.ndarray:
        arr = self._value(e.target)
        if e.kind == "total":
            return arr.sum(axis=1, keepdims=True)
        if e.kind == "row_min":
            return arr.min(axis=1, keepdims=True)
        if e.kind == "row_max":
            return arr.max(axis=1, keepdims=True)
        if e.kind == "npv":
            rate = self.eval(e.arg, None)
            periods = np.arange(1, self.n + 1)[None, :]
            return (arr / (1.0 + rate) ** periods).sum(axis=1, keepdims=True)
        if e.kind == "irr":
            guess = float(self.eval(e.arg, None).ravel()[0])
            rows = self._rows
            if rows is None or rows.all() or (rows.shape[0] != arr.shape[0] and
                                               rows.shape[0] != 1):
                return irr_periodic(arr, guess=guess)[:, None]
            out = np.full((max(arr.shape[0], rows.shape[0]), 1), np.nan)
            if rows.shape[0] == 1:  # one flag for every scenario, and it is False
                return out
            if rows.any():
                out[rows, 0] = irr_periodic(arr[rows], guess=guess)
            return out
        raise ModelError(f"unknown reduction {e.kind!r}")


#: Per expression (by id, with the expression kept so the id cannot be reused): the ids
#: of its compound sub-expressions that occur more than once in it.
_SHARED: dict[int, tuple[Expr, frozenset[int]]] = {}
#: Constants as (1, 1) arrays, read-only, by value.
_CONSTANTS: dict[float, np.ndarray] = {}
#: Per IF expression: whether one of its branches solves an IRR.
_IRR_IN: dict[int, tuple[Expr, bool]] = {}


def _shared_subtrees(e: Expr) -> frozenset[int]:
    hit = _SHARED.get(id(e))
    if hit is not None and hit[0] is e:
        return hit[1]
    seen: set[int] = set()
    shared: set[int] = set()
    stack = [e]
    while stack:
        x = stack.pop()
        if not isinstance(x, (BinOp, Func, Compare, Neg)):
            continue
        if id(x) in seen:
            shared.add(id(x))  # its children are counted once: their values come with it
            continue
        seen.add(id(x))
        stack.extend(children(x))
    if len(_SHARED) > 100_000:  # models come and go (solvers, tests): keep it bounded
        _SHARED.clear()
    out = frozenset(shared)
    _SHARED[id(e)] = (e, out)
    return out


def _solves_irr(e: Func) -> bool:
    hit = _IRR_IN.get(id(e))
    if hit is not None and hit[0] is e:
        return hit[1]
    stack, found = list(e.args[1:]), False
    while stack and not found:
        x = stack.pop()
        found = isinstance(x, Reduce) and x.kind == "irr"
        stack.extend(children(x))
    if len(_IRR_IN) > 100_000:
        _IRR_IN.clear()
    _IRR_IN[id(e)] = (e, found)
    return found


class _Done(Expr):
    """A sub-expression already evaluated over all periods (see ``_Evaluator._hoist``)."""

    __slots__ = ("value",)

    def __init__(self, value: np.ndarray) -> None:
        self.value = value


def _reads(e: Expr, members: set[int]) -> bool:
    """Whether ``e`` reads (same period, lagged, shifted, summed) a node in ``members``."""
    target = getattr(e, "target", None)
    if target is not None and id(target) in members:
        return True
    return any(_reads(c, members) for c in children(e))


_BINARY = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide, "^": np.power}
_COMPARE = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal,
            "=": np.equal, "<>": np.not_equal}


def _float(a: np.ndarray) -> np.ndarray:
    return a.astype(float) if a.dtype == bool else a


def _truth(a: np.ndarray) -> np.ndarray:
    return a if a.dtype == bool else a != 0


def _month_number(serial: np.ndarray) -> np.ndarray:
    """Months since January 1970 of spreadsheet date serials."""
    days = np.floor(serial).astype("int64") - 25569  # serial 25569 is 1970-01-01
    return days.astype("datetime64[D]").astype("datetime64[M]").astype("int64").astype(float)


def _as_column(name: str, v: ArrayLike) -> np.ndarray:
    a = np.asarray(v, dtype=float)
    if a.ndim == 0:
        return a.reshape(1, 1)
    if a.ndim == 1:
        return a.reshape(-1, 1)
    raise ModelError(f"input {name!r} must be a number or a 1-D array of scenarios")


def _as_rows(name: str, v: ArrayLike) -> np.ndarray:
    a = np.ascontiguousarray(v, dtype=float)  # (see _path: sums depend on the layout)
    if a.ndim == 1:
        return a.reshape(1, -1)
    if a.ndim == 2:
        return a
    raise ModelError(f"{name!r} must be a 1-D row or a 2-D (scenarios, values) array")
