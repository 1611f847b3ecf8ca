"""The expression vocabulary every model line is written in.

An expression is a small tree of nodes. The numpy evaluator (``evaluate.py``) and the
Excel renderer (``finmodel.excel.formulas``) both walk the same tree, so a line is
defined exactly once. The vocabulary is kept deliberately small: arithmetic,
comparisons, ``minimum``/``maximum``/``where``, ``floor``, ``lag``, ``cumulative``,
timeline rows, yearly input paths and whole-row reductions (``total``, ``npv``, ``irr``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from collections.abc import Sequence
from typing import TYPE_CHECKING, Union

if TYPE_CHECKING:  # pragma: no cover
    from finmodel.engine.graph import Line, Scalar

Number = Union[int, float]


class Operand:
    """Arithmetic, comparison and logic operators that build expression nodes. Shared by
    expressions and by lines and scalars, so model code reads like the formula it is."""

    __slots__ = ()

    def __add__(self, other: ExprLike) -> Expr:
        return BinOp("+", wrap(self), wrap(other))

    def __radd__(self, other: ExprLike) -> Expr:
        return BinOp("+", wrap(other), wrap(self))

    def __sub__(self, other: ExprLike) -> Expr:
        return BinOp("-", wrap(self), wrap(other))

    def __rsub__(self, other: ExprLike) -> Expr:
        return BinOp("-", wrap(other), wrap(self))

    def __mul__(self, other: ExprLike) -> Expr:
        return BinOp("*", wrap(self), wrap(other))

    def __rmul__(self, other: ExprLike) -> Expr:
        return BinOp("*", wrap(other), wrap(self))

    def __truediv__(self, other: ExprLike) -> Expr:
        return BinOp("/", wrap(self), wrap(other))

    def __rtruediv__(self, other: ExprLike) -> Expr:
        return BinOp("/", wrap(other), wrap(self))

    def __pow__(self, other: ExprLike) -> Expr:
        return BinOp("^", wrap(self), wrap(other))

    def __rpow__(self, other: ExprLike) -> Expr:
        return BinOp("^", wrap(other), wrap(self))

    def __neg__(self) -> Expr:
        return Neg(wrap(self))

    def __lt__(self, other: ExprLike) -> Expr:
        return Compare("<", wrap(self), wrap(other))

    def __le__(self, other: ExprLike) -> Expr:
        return Compare("<=", wrap(self), wrap(other))

    def __gt__(self, other: ExprLike) -> Expr:
        return Compare(">", wrap(self), wrap(other))

    def __ge__(self, other: ExprLike) -> Expr:
        return Compare(">=", wrap(self), wrap(other))

    def __and__(self, other: ExprLike) -> Expr:
        return Func("and", (wrap(self), wrap(other)))

    def __or__(self, other: ExprLike) -> Expr:
        return Func("or", (wrap(self), wrap(other)))

    # Equality stays identity-based so nodes stay hashable; use ``eq``/``ne`` instead.


class Expr(Operand):
    """Base of every expression node."""

    __slots__ = ()


ExprLike = Union[Operand, Number]


@dataclass(frozen=True, eq=False, slots=True)
class Const(Expr):
    """A literal number."""

    value: float


@dataclass(frozen=True, eq=False, slots=True)
class DateConst(Expr):
    """A literal date, held as a spreadsheet serial number (days since 1899-12-30)."""

    date: dt.date


@dataclass(frozen=True, eq=False, slots=True)
class Input(Expr):
    """A scalar input, referenced by its workbook defined name."""

    name: str


@dataclass(frozen=True, eq=False, slots=True)
class PathInput(Expr):
    """A yearly input path (a row of values) looked up by a 1-based index expression."""

    name: str
    index: Expr


@dataclass(frozen=True, eq=False, slots=True)
class Ref(Expr):
    """Another line (same period) or a scalar."""

    target: Line | Scalar


@dataclass(frozen=True, eq=False, slots=True)
class Lag(Expr):
    """A line's value ``k`` periods earlier; ``initial`` fills the first ``k`` periods."""

    target: Line
    k: int
    initial: Expr


@dataclass(frozen=True, eq=False, slots=True)
class Shift(Expr):
    """A line's value ``k`` periods earlier where ``k`` is an expression (an input);
    ``initial`` before the first period. Unlike :class:`Lag` it may not be recursive.
    With ``ahead``, the value ``k`` periods *later*, ``initial`` after the last period."""

    target: Line
    k: Expr
    initial: Expr
    ahead: bool = False


@dataclass(frozen=True, eq=False, slots=True)
class Cumulative(Expr):
    """Running sum of a line from the first period to this one."""

    target: Line


@dataclass(frozen=True, eq=False, slots=True)
class BinOp(Expr):
    op: str
    a: Expr
    b: Expr


@dataclass(frozen=True, eq=False, slots=True)
class Neg(Expr):
    """Unary minus."""

    a: Expr


@dataclass(frozen=True, eq=False, slots=True)
class Compare(Expr):
    op: str
    a: Expr
    b: Expr


@dataclass(frozen=True, eq=False, slots=True)
class Func(Expr):
    """``min``, ``max``, ``if``, ``floor``, ``and``, ``or``, ``months_between`` (element-wise),
    ``na``."""

    name: str
    args: tuple[Expr, ...]


@dataclass(frozen=True, eq=False, slots=True)
class Chosen(Expr):
    """1 where the choice input ``name`` holds ``value``, else 0. numpy sees the choice as
    its ``code`` (the value's position among the allowed ones); Excel compares the text
    (``name="value"``), so the choice stays a readable, live word on the Inputs sheet."""

    name: str
    value: str
    code: float


TIME_ROWS = ("start", "end", "days", "index", "year", "model_year")


@dataclass(frozen=True, eq=False, slots=True)
class TimeRow(Expr):
    """A row of the shared timeline: ``start``/``end`` dates, ``days``, ``index`` (0-based
    period number), calendar ``year``, ``model_year`` (1-based)."""

    kind: str


@dataclass(frozen=True, eq=False, slots=True)
class Reduce(Expr):
    """A whole-row reduction giving one value per scenario: ``total``, ``row_min``,
    ``row_max``, ``npv``, ``irr``."""

    kind: str
    target: Line
    arg: Expr | None = None


def wrap(value: ExprLike) -> Expr:
    """Turn a Python number (or a line) into an expression node."""
    from finmodel.engine.graph import Line, Scalar

    if isinstance(value, Expr):
        return value
    if isinstance(value, (Line, Scalar)):
        return Ref(value)
    if isinstance(value, bool):
        return Const(float(value))
    if isinstance(value, (int, float)):
        return Const(float(value))
    raise TypeError(f"cannot use {value!r} ({type(value).__name__}) in a model expression")


# --- the functions model code calls ---------------------------------------------------


def sum_of(terms: Sequence[ExprLike]) -> Expr:
    """``terms[0] + terms[1] + ...`` (0 for no terms): the sum of several lines."""
    out = wrap(terms[0]) if terms else Const(0.0)
    for term in terms[1:]:
        out = out + term
    return out


def minimum(a: ExprLike, b: ExprLike) -> Expr:
    """Element-wise minimum (Excel ``MIN``)."""
    return Func("min", (wrap(a), wrap(b)))


def maximum(a: ExprLike, b: ExprLike) -> Expr:
    """Element-wise maximum (Excel ``MAX``)."""
    return Func("max", (wrap(a), wrap(b)))


def where(cond: ExprLike, if_true: ExprLike, if_false: ExprLike) -> Expr:
    """``if_true`` where ``cond`` holds, else ``if_false`` (Excel ``IF``)."""
    return Func("if", (wrap(cond), wrap(if_true), wrap(if_false)))


def floor(a: ExprLike) -> Expr:
    """Round down to an integer (Excel ``INT``)."""
    return Func("floor", (wrap(a),))


def months_between(start: ExprLike, end: ExprLike) -> Expr:
    """Whole calendar months from the month of ``start`` to the month of ``end`` (dates)."""
    return Func("months_between", (wrap(start), wrap(end)))


def or_not_available(a: ExprLike) -> Expr:
    """``a``, or a missing value where it cannot be computed (a solver such as IRR that
    does not converge): NaN stays NaN in numpy, Excel's error becomes ``NA()``."""
    return Func("or_na", (wrap(a),))


def not_available() -> Expr:
    """A missing value: NaN in numpy, ``NA()`` in Excel (for a metric that does not exist,
    such as the payback of a project that never pays back)."""
    return Func("na", ())


def eq(a: ExprLike, b: ExprLike) -> Expr:
    """Equality comparison (Excel ``=``)."""
    return Compare("=", wrap(a), wrap(b))


def ne(a: ExprLike, b: ExprLike) -> Expr:
    """Inequality comparison (Excel ``<>``)."""
    return Compare("<>", wrap(a), wrap(b))


def lag(line: Line, k: int = 1, initial: ExprLike = 0.0) -> Expr:
    """The value of ``line`` ``k`` periods earlier; ``initial`` before the first period."""
    if k < 1:
        raise ValueError("lag needs k >= 1")
    return Lag(line, k, wrap(initial))


def shifted(line: Line, k: ExprLike, initial: ExprLike = 0.0) -> Expr:
    """The value of ``line`` ``k`` periods earlier, ``k`` any non-negative expression that
    does not vary by period (a life in years x 12, say); ``initial`` before the start.
    Excel: ``IF(t - k >= 0, INDEX(row, t - k + 1), initial)``."""
    return Shift(line, wrap(k), wrap(initial))


def lead(line: Line, k: ExprLike, after: ExprLike = 0.0) -> Expr:
    """The value of ``line`` ``k`` periods later (``k`` a non-negative expression that does
    not vary by period); ``after`` past the last period. A decision that looks forward
    along the model's own expected path (a refresh that must pay back over its life) uses
    it. Excel: ``IF(t + k <= last, INDEX(row, t + k + 1), after)``."""
    return Shift(line, wrap(k), wrap(after), True)


def cumulative(line: Line) -> Expr:
    """Running sum of ``line`` up to and including this period."""
    return Cumulative(line)


def total(line: Line) -> Expr:
    """Sum of a line over every period (Excel ``SUM`` of the row)."""
    return Reduce("total", line)


def row_min(line: Line) -> Expr:
    """Smallest value of a line over the periods (Excel ``MIN`` of the row)."""
    return Reduce("row_min", line)


def row_max(line: Line) -> Expr:
    """Largest value of a line over the periods (Excel ``MAX`` of the row)."""
    return Reduce("row_max", line)


def npv(monthly_rate: ExprLike, line: Line) -> Expr:
    """Present value at the model start of a line's end-of-period flows.

    Excel convention: the first period's flow is discounted by one full period,
    ``sum(cf[t] / (1 + r) ** (t + 1))`` — identical to Excel's ``NPV(r, row)`` and to
    ``numpy_financial.npv(r, [0, *row])``.
    """
    return Reduce("npv", line, wrap(monthly_rate))


def irr(line: Line, guess: ExprLike = 0.01) -> Expr:
    """Periodic internal rate of return of a line (Excel ``IRR(row, guess)``)."""
    return Reduce("irr", line, wrap(guess))


def time(kind: str) -> Expr:
    """A timeline row (see :class:`TimeRow`)."""
    if kind not in TIME_ROWS:
        raise ValueError(f"unknown timeline row {kind!r}; expected one of {TIME_ROWS}")
    return TimeRow(kind)


def date(value: dt.date) -> Expr:
    """A literal date."""
    return DateConst(value)


def on_or_after(when: ExprLike) -> Expr:
    """1 in periods that start on or after ``when`` (a date or date-valued expression)."""
    return where(TimeRow("start") >= wrap(when), 1.0, 0.0)


def children(expr: Expr) -> tuple[Expr, ...]:
    """Direct sub-expressions of a node (not following line references)."""
    if isinstance(expr, (BinOp, Compare)):
        return (expr.a, expr.b)
    if isinstance(expr, Neg):
        return (expr.a,)
    if isinstance(expr, Func):
        return expr.args
    if isinstance(expr, PathInput):
        return (expr.index,)
    if isinstance(expr, Lag):
        return (expr.initial,)
    if isinstance(expr, Shift):
        return (expr.k, expr.initial)
    if isinstance(expr, Reduce):
        return (expr.arg,) if expr.arg is not None else ()
    return ()
