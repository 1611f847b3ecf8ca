"""Render expression trees as Excel formulas, cell by cell.

The renderer knows where every line and scalar sits (a :class:`Layout`) and nothing of
what they mean. Only classic, non-volatile functions are used (IF, MIN, MAX, INT, AND,
OR, SUM, NPV, IRR, INDEX, EDATE, YEAR, NA), which LibreOffice 7.4 and every Excel share.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from xlsxwriter.utility import xl_col_to_name, xl_rowcol_to_cell

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
)
from finmodel.engine.graph import Line, Node, Scalar, walk
from finmodel.errors import ExportError
from finmodel.excel.fastxml import RowFormulas

# Operator precedence in Excel formulas (higher binds tighter).
_PREC = {"=": 1, "<>": 1, "<": 1, "<=": 1, ">": 1, ">=": 1, "+": 2, "-": 2, "*": 3, "/": 3,
         "^": 5}
_FUNC = {"min": "MIN", "max": "MAX", "if": "IF", "floor": "INT", "and": "AND", "or": "OR"}

TIMELINE_SHEET = "Timeline"


#: Numbers a formula may hold (the FAST standard's 0, 1 and 12); any other is a named
#: constant on the Constants sheet.
PLAIN_NUMBERS = frozenset({0.0, 1.0, 12.0})


@dataclass
class Layout:
    """Where things are: each line's sheet and row, each scalar's cell, the period columns.

    ``links`` maps (sheet, key) to the row of a link row on that sheet, where key is
    ("line", name), ("time", kind) or ("scalar", name): a period formula reads another
    sheet only through such a row. ``constants`` maps a number to its defined name.
    """

    first_col: int
    n_periods: int
    line_rows: dict[str, tuple[str, int]] = field(default_factory=dict)
    scalar_cells: dict[str, tuple[str, int, int]] = field(default_factory=dict)
    time_rows: dict[str, int] = field(default_factory=dict)
    links: dict[tuple[str, tuple[str, str]], int] = field(default_factory=dict)
    constants: dict[float, str] = field(default_factory=dict)

    def col(self, t: int) -> int:
        return self.first_col + t


def children(e: Expr) -> tuple[Expr, ...]:
    """The sub-expressions of ``e``."""
    get = _CHILDREN.get(type(e))
    if get is None:
        get = _CHILDREN[type(e)] = _children_of(type(e))
    return get(e)


def _children_of(cls: type) -> Callable[[Expr], tuple[Expr, ...]]:
    """How :func:`children` reads a node of class ``cls`` (the first class it is a
    subclass of, in this order)."""
    if issubclass(cls, (BinOp, Compare)):
        return lambda e: (e.a, e.b)
    if issubclass(cls, Neg):
        return lambda e: (e.a,)
    if issubclass(cls, Func):
        return lambda e: e.args
    if issubclass(cls, Lag):
        return lambda e: (e.initial,)
    if issubclass(cls, Shift):
        return lambda e: (e.k, e.initial)
    if issubclass(cls, PathInput):
        return lambda e: (e.index,)
    if issubclass(cls, Reduce):
        return lambda e: (e.arg,) if e.arg is not None else ()
    return lambda e: ()


#: The reader of :func:`children` by node class, made on first sight (a chain of seven
#: isinstance tests per node was ~0.02 s of the base export: 67,000 calls).
_CHILDREN: dict[type, Callable[[Expr], tuple[Expr, ...]]] = {}


def walk_expr(e: Expr):
    """``e`` and every node under it (its own expressions, not the lines it reads)."""
    stack = [e]
    while stack:
        x = stack.pop()
        yield x
        stack.extend(children(x))


def fold(e: Expr) -> Expr:
    """``e`` with dead arithmetic removed: operations on two numbers computed, ``x + 0``,
    ``x - 0``, ``x * 1`` and ``x / 1`` reduced to ``x`` (float64, as numpy computes them),
    so no formula carries a term such as ``+0.0096*(0-0)``."""
    if isinstance(e, BinOp):
        a, b = fold(e.a), fold(e.b)
        if isinstance(a, Const) and isinstance(b, Const) and e.op in "+-*":
            import numpy as np

            x, y = np.float64(a.value), np.float64(b.value)
            return Const(float(x + y if e.op == "+" else x - y if e.op == "-" else x * y))
        if e.op == "+" and isinstance(a, Const) and a.value == 0:
            return b
        if e.op in "+-" and isinstance(b, Const) and b.value == 0:
            return a
        if e.op in "*/" and isinstance(b, Const) and b.value == 1:
            return a
        if e.op == "*" and isinstance(a, Const) and a.value == 1:
            return b
        return e if (a is e.a and b is e.b) else BinOp(e.op, a, b)
    if isinstance(e, Neg):
        a = fold(e.a)
        if isinstance(a, Const):
            return Const(-a.value)
        return e if a is e.a else Neg(a)
    if isinstance(e, Compare):
        a, b = fold(e.a), fold(e.b)
        return e if (a is e.a and b is e.b) else Compare(e.op, a, b)
    if isinstance(e, Func):
        args = tuple(fold(x) for x in e.args)
        return e if all(x is y for x, y in zip(args, e.args)) else Func(e.name, args)
    if isinstance(e, Lag):
        i = fold(e.initial)
        return e if i is e.initial else Lag(e.target, e.k, i)
    if isinstance(e, Shift):
        k, i = fold(e.k), fold(e.initial)
        return e if (k is e.k and i is e.initial) else Shift(e.target, k, i)
    if isinstance(e, PathInput):
        i = fold(e.index)
        return e if i is e.index else PathInput(e.name, i)
    return e


def sheet_ref(sheet: str, here: str) -> str:
    """The prefix for a reference to ``sheet`` from a cell on ``here``."""
    if sheet == here:
        return ""
    return "'" + sheet.replace("'", "''") + "'!"


def number(value: float) -> str:
    """A number literal as Excel writes it."""
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


class FormulaWriter:
    """Turns expressions into formula text for a given cell."""

    def __init__(self, layout: Layout, lines: Iterable[Line] = ()) -> None:
        self.lay = layout
        self._folded: dict[int, Expr] = {}
        # Lines that are a running sum of another line, by the line they sum: a running
        # sum is written as "previous cell + this month" (linear in the horizon), and any
        # other formula that needs the same sum refers to it.
        self._running = {ln.expr.target.name: ln for ln in lines
                         if isinstance(ln.expr, Cumulative)}
        # While rendering a template (see line_cells): the period it is rendered for.
        self._template: int | None = None
        self._columns = [xl_col_to_name(layout.col(t)) for t in range(layout.n_periods)]

    def folded(self, node: Node) -> Expr:
        """The node's expression with dead arithmetic removed (computed once)."""
        e = self._folded.get(id(node))
        if e is None:
            e = self._folded[id(node)] = fold(node.expr)
        return e

    def line_cell(self, t: int, line: Line) -> str:
        """The formula (with leading '=') of ``line`` in period ``t``."""
        sheet, _ = self.lay.line_rows[line.name]
        self._self = line
        e = self.folded(line)
        if isinstance(e, Cumulative) and self._running.get(e.target.name) is line:
            this = self.ref(e.target, t, sheet)
            if "first" in self.lay.time_rows:
                # One formula for every month: in the first the flag leaves the cell to
                # the left (the name column) unread.
                flag = self._r(TimeRow("first"), t, sheet, 0)
                return f"=IF({flag}=1,0,{self._prev(line, t, sheet)})+{this}"
            return f"={self.ref(line, t - 1, sheet)}+{this}" if t > 0 else f"={this}"
        return "=" + self._r(e, t, sheet, 0)

    def line_cells(self, line: Line) -> list[str]:
        """The formulas of ``line`` in every period, as :meth:`line_cell` gives them (a
        :class:`~finmodel.excel.fastxml.RowFormulas` when rendered from a template).

        Past its longest lag a line's formula differs from period to period only in its
        relative columns, so it is rendered once with the columns left open and filled in
        for each period: the export renders ~250 lines instead of ~45,000 cells.
        """
        n = self.lay.n_periods
        k = max((e.k for e in walk(line.expr) if isinstance(e, Lag)), default=0)
        if isinstance(line.expr, Cumulative):
            k = max(k, 1)  # a running sum refers to its own previous cell
        out = [self.line_cell(t, line) for t in range(min(k, n))]
        if k >= n:
            return out
        self._template = k
        try:
            parts = self.line_cell(k, line).split("\x00")
        finally:
            self._template = None
        texts, offsets = parts[0::2], [int(x) for x in parts[1::2]]
        cols, tail = self._columns, texts[1:]
        # Every formula's text but the open columns' letters (always followed by a row
        # number), for write_formula_row to scan instead of the whole row.
        text = "\n".join(out + texts)
        if not offsets:  # the same formula in every period
            out.extend([texts[0]] * (n - k))
            return RowFormulas(out, text)
        if all(0 <= k + d and n + d <= len(cols) for d in offsets):
            # One %-template, filled from each open column's letters shifted by its
            # offset: str % tuple per period instead of a join of pieces (a third of the
            # export's rendering time).
            template = "%s".join(x.replace("%", "%%") for x in texts)
            out.extend(template % args for args in
                       zip(*(cols[k + d:n + d] for d in offsets), strict=True))
            return RowFormulas(out, text)
        for t in range(k, n):
            pieces = [texts[0]]
            for d, text in zip(offsets, tail):
                pieces.append(cols[t + d])
                pieces.append(text)
            out.append("".join(pieces))
        return out

    def _cell(self, row: int, t: int, row_abs: bool = False) -> str:
        """The reference to period ``t`` of a row, its column relative."""
        if self._template is not None:
            # An open column: its offset from the template's period, between NULs.
            return f"\x00{t - self._template}\x00{'$' if row_abs else ''}{row + 1}"
        return xl_rowcol_to_cell(row, self.lay.col(t), row_abs, False)

    def scalar_cell(self, scalar: Scalar) -> str:
        sheet, _, _ = self.lay.scalar_cells[scalar.name]
        self._self = scalar
        return "=" + self._r(self.folded(scalar), None, sheet, 0)

    def _link(self, here: str, key: tuple[str, str]) -> int | None:
        return self.lay.links.get((here, key))

    def ref(self, node: Node, t: int | None, here: str, absolute: bool = False) -> str:
        if isinstance(node, Scalar):
            sheet, row, col = self.lay.scalar_cells[node.name]
            link = self._link(here, ("scalar", node.name)) if t is not None else None
            if link is not None and sheet != here:
                return xl_rowcol_to_cell(link, 2, True, True)
            return sheet_ref(sheet, here) + xl_rowcol_to_cell(row, col, True, True)
        if t is None:
            raise ExportError(f"line {node.name!r} used where a single value is needed")
        sheet, row = self.lay.line_rows[node.name]
        link = self._link(here, ("line", node.name)) if sheet != here else None
        if link is not None:
            sheet, row = here, link
        if absolute:
            return sheet_ref(sheet, here) + xl_rowcol_to_cell(row, self.lay.col(t), True, True)
        return sheet_ref(sheet, here) + self._cell(row, t)

    def row_range(self, line: Line, here: str) -> str:
        sheet, row = self.lay.line_rows[line.name]
        link = self._link(here, ("line", line.name)) if sheet != here else None
        if link is not None:
            sheet, row = here, link
        a = xl_rowcol_to_cell(row, self.lay.col(0), True, True)
        b = xl_rowcol_to_cell(row, self.lay.col(self.lay.n_periods - 1), True, True)
        return f"{sheet_ref(sheet, here)}{a}:{b}"

    def number(self, value: float) -> str:
        """A number as a formula reads it: 0, 1 and 12 typed, any other by its name."""
        if value in PLAIN_NUMBERS or value not in self.lay.constants:
            return number(value)
        return self.lay.constants[value]

    def _prev(self, line: Line, t: int, here: str) -> str:
        """The cell of ``line`` one column left of period ``t`` (relative)."""
        sheet, row = self.lay.line_rows[line.name]
        link = self._link(here, ("line", line.name)) if sheet != here else None
        if link is not None:
            sheet, row = here, link
        return sheet_ref(sheet, here) + self._cell(row, t - 1)

    def _r(self, e: Expr, t: int | None, here: str, outer: int) -> str:
        """Render ``e``; ``outer`` is the precedence of the enclosing operator."""
        if isinstance(e, Const):
            if e.value < 0:
                return f"(-{self.number(-e.value)})"
            return self.number(e.value)
        if isinstance(e, Input):
            return e.name
        if isinstance(e, Chosen):  # the value is a word of the schema, never case text
            return f'({e.name}="{e.value}")'
        if isinstance(e, Ref):
            return self.ref(e.target, t, here)
        if isinstance(e, BinOp):
            p = _PREC[e.op]
            # Left-associative: the right operand of - and / needs brackets at equal
            # precedence; ^ is rendered fully bracketed on the left because Excel's
            # unary minus binds tighter than ^ (=-2^2 is 4).
            left = self._r(e.a, t, here, p + (1 if e.op == "^" else 0))
            right = self._r(e.b, t, here, p + (1 if e.op in "-/^" else 0))
            s = f"{left}{e.op}{right}"
            return f"({s})" if p < outer else s
        if isinstance(e, Neg):
            # Excel's unary minus binds tighter than ^, so the operand is bracketed
            # unless it is atomic (a reference, a name, a function call).
            inner = self._r(e.a, t, here, 0)
            if isinstance(e.a, (BinOp, Compare, Neg)):
                inner = f"({inner})"
            return f"(-{inner})" if outer > 0 else f"-{inner}"
        if isinstance(e, Compare):
            p = _PREC[e.op]
            s = f"{self._r(e.a, t, here, p + 1)}{e.op}{self._r(e.b, t, here, p + 1)}"
            return f"({s})" if outer > 0 else s
        if isinstance(e, Func):
            if e.name == "na":
                return "NA()"
            if e.name == "or_na":
                return f"IFERROR({self._r(e.args[0], t, here, 0)},NA())"
            if e.name == "months_between":
                a, b = (self._r(x, t, here, 0) for x in e.args)
                return f"((YEAR({b})-YEAR({a}))*12+MONTH({b})-MONTH({a}))"
            if e.name == "month_number":  # written by the helper rows only
                a = self._r(e.args[0], t, here, 0)
                return f"(YEAR({a})*12+MONTH({a}))"
            args = ",".join(self._r(a, t, here, 0) for a in e.args)
            return f"{_FUNC[e.name]}({args})"
        if isinstance(e, Lag):
            if t is None:
                raise ExportError("lag used where a single value is needed")
            # One formula for every month: the first k months take the initial value by
            # a flag, not by a different formula. A one-month lag reads the cell to the
            # left (the name column in the first month, never evaluated there); a longer
            # one of another line looks it up by position, as shifted() does.
            init = self._r(e.initial, t, here, 0)
            if e.k == 1 and "first" in self.lay.time_rows:
                flag = self._r(TimeRow("first"), t, here, 0)
                return f"IF({flag}=1,{init},{self._prev(e.target, t, here)})"
            if e.target is not getattr(self, "_self", None):
                idx = self._r(TimeRow("index"), t, here, 0)
                k = self.number(float(e.k))
                return (f"IF({idx}>={k},INDEX({self.row_range(e.target, here)},"
                        f"{idx}-{k}+1),{init})")
            return self.ref(e.target, t - e.k, here) if t >= e.k else \
                self._r(e.initial, t, here, outer)
        if isinstance(e, Shift):
            if t is None:
                raise ExportError("shifted used where a single value is needed")
            k = self._r(e.k, None, here, 0)
            idx = self._r(TimeRow("index"), t, here, 0)
            if e.ahead:
                # Within the horizon while idx + k + 1 <= the row's length (no typed count).
                rng = self.row_range(e.target, here)
                return (f"IF({idx}+({k})<COLUMNS({rng}),INDEX({rng},{idx}+({k})+1),"
                        f"{self._r(e.initial, t, here, 0)})")
            return (f"IF({idx}-({k})>=0,INDEX({self.row_range(e.target, here)},"
                    f"{idx}-({k})+1),{self._r(e.initial, t, here, 0)})")
        if isinstance(e, Cumulative):
            running = self._running.get(e.target.name)
            if running is not None and running.name in self.lay.line_rows:
                return self.ref(running, t, here)
            sheet, row = self.lay.line_rows[e.target.name]
            link = self._link(here, ("line", e.target.name)) if sheet != here else None
            if link is not None:
                sheet, row = here, link
            a = xl_rowcol_to_cell(row, self.lay.col(0), True, True)
            b = self._cell(row, t)
            return f"SUM({sheet_ref(sheet, here)}{a}:{b})"
        if isinstance(e, TimeRow):
            link = self._link(here, ("time", e.kind))
            if link is not None and here != TIMELINE_SHEET:
                return self._cell(link, t, row_abs=True)
            row = self.lay.time_rows[e.kind]
            return sheet_ref(TIMELINE_SHEET, here) + self._cell(row, t, row_abs=True)
        if isinstance(e, PathInput):
            return f"INDEX({e.name},{self._r(e.index, t, here, 0)})"
        if isinstance(e, Reduce):
            rng = self.row_range(e.target, here)
            if e.kind == "total":
                return f"SUM({rng})"
            if e.kind == "row_min":
                return f"MIN({rng})"
            if e.kind == "row_max":
                return f"MAX({rng})"
            if e.kind == "npv":
                return f"NPV({self._r(e.arg, None, here, 0)},{rng})"
            if e.kind == "irr":
                return f"IRR({rng},{self._r(e.arg, None, here, 0)})"
        if isinstance(e, DateConst):
            d: dt.date = e.date
            serial = float((d - dt.date(1899, 12, 30)).days)
            if serial in self.lay.constants:
                return self.lay.constants[serial]
            return f"DATE({d.year},{d.month},{d.day})"
        raise ExportError(f"cannot render expression node {type(e).__name__}")


def foreign_keys(fw: FormulaWriter, node: Node, here: str) -> list[tuple[str, str]]:
    """What a period formula of ``node`` on sheet ``here`` reads from other sheets: lines
    ("line", name), timeline rows ("time", kind) and scalars ("scalar", name), in order of
    first use."""
    out: dict[tuple[str, str], None] = {}
    for x in walk_expr(fw.folded(node)):
        target = getattr(x, "target", None)
        if isinstance(target, Line) and target.sheet != here:
            out[("line", target.name)] = None
        elif isinstance(target, Scalar) and target.sheet != here:
            out[("scalar", target.name)] = None
        if isinstance(x, TimeRow):
            out[("time", x.kind)] = None
        if isinstance(x, (Lag, Shift)):
            out[("time", "index")] = None
            if isinstance(x, Lag) and x.k == 1:
                out[("time", "first")] = None
    if isinstance(fw.folded(node), Cumulative):
        # A running sum's one formula reads the first-month flag (see line_cell).
        out[("time", "first")] = None
    return list(out)


def constants_of(fw: FormulaWriter, nodes) -> list[float]:
    """Every number other than 0, 1 and 12 that the nodes' formulas would hold."""
    seen: dict[float, None] = {}
    for node in nodes:
        for x in walk_expr(fw.folded(node)):
            if isinstance(x, Const) and abs(x.value) not in PLAIN_NUMBERS:
                seen[abs(x.value)] = None
            if isinstance(x, Lag) and x.k not in PLAIN_NUMBERS and x.k != 1:
                seen[float(x.k)] = None
    return list(seen)
