"""Render expression trees as Excel formulas, cell by cell.

The renderer knows where every line and scalar sits (a :class:`Layout`) and nothing of
what they mean. Only classic, non-volatile functions are used (IF, MIN, MAX, INT, AND,
OR, SUM, NPV, IRR, INDEX, EDATE, YEAR, NA), which LibreOffice 7.4 and every Excel share.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
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

# Operator precedence in Excel formulas (higher binds tighter).
_PREC = {"=": 1, "<>": 1, "<": 1, "<=": 1, ">": 1, ">=": 1, "+": 2, "-": 2, "*": 3, "/": 3,
         "^": 5}
_FUNC = {"min": "MIN", "max": "MAX", "if": "IF", "floor": "INT", "and": "AND", "or": "OR"}

TIMELINE_SHEET = "Timeline"


@dataclass
class Layout:
    """Where things are: each line's sheet and row, each scalar's cell, the period columns."""

    first_col: int
    n_periods: int
    line_rows: dict[str, tuple[str, int]] = field(default_factory=dict)
    scalar_cells: dict[str, tuple[str, int, int]] = field(default_factory=dict)
    time_rows: dict[str, int] = field(default_factory=dict)

    def col(self, t: int) -> int:
        return self.first_col + t


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
        # Lines that are a running sum of another line, by the line they sum: a running
        # sum is written as "previous cell + this month" (linear in the horizon), and any
        # other formula that needs the same sum refers to it.
        self._running = {ln.expr.target.name: ln for ln in lines
                         if isinstance(ln.expr, Cumulative)}
        # While rendering a template (see line_cells): the period it is rendered for.
        self._template: int | None = None
        self._columns = [xl_col_to_name(layout.col(t)) for t in range(layout.n_periods)]

    def line_cell(self, t: int, line: Line) -> str:
        """The formula (with leading '=') of ``line`` in period ``t``."""
        sheet, _ = self.lay.line_rows[line.name]
        e = line.expr
        if isinstance(e, Cumulative) and self._running.get(e.target.name) is line:
            this = self.ref(e.target, t, sheet)
            return f"={self.ref(line, t - 1, sheet)}+{this}" if t > 0 else f"={this}"
        return "=" + self._r(e, t, sheet, 0)

    def line_cells(self, line: Line) -> list[str]:
        """The formulas of ``line`` in every period, as :meth:`line_cell` gives them.

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
        return "=" + self._r(scalar.expr, None, sheet, 0)

    def ref(self, node: Node, t: int | None, here: str, absolute: bool = False) -> str:
        if isinstance(node, Scalar):
            sheet, row, col = self.lay.scalar_cells[node.name]
            return sheet_ref(sheet, here) + xl_rowcol_to_cell(row, col, True, True)
        if t is None:
            raise ExportError(f"line {node.name!r} used where a single value is needed")
        sheet, row = self.lay.line_rows[node.name]
        if absolute:
            return sheet_ref(sheet, here) + xl_rowcol_to_cell(row, self.lay.col(t), True, True)
        return sheet_ref(sheet, here) + self._cell(row, t)

    def row_range(self, line: Line, here: str) -> str:
        sheet, row = self.lay.line_rows[line.name]
        a = xl_rowcol_to_cell(row, self.lay.col(0), True, True)
        b = xl_rowcol_to_cell(row, self.lay.col(self.lay.n_periods - 1), True, True)
        return f"{sheet_ref(sheet, here)}{a}:{b}"

    def _r(self, e: Expr, t: int | None, here: str, outer: int) -> str:
        """Render ``e``; ``outer`` is the precedence of the enclosing operator."""
        if isinstance(e, Const):
            s = number(e.value)
            return f"({s})" if e.value < 0 else s
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
            args = ",".join(self._r(a, t, here, 0) for a in e.args)
            return f"{_FUNC[e.name]}({args})"
        if isinstance(e, Lag):
            if t is None:
                raise ExportError("lag used where a single value is needed")
            return self.ref(e.target, t - e.k, here) if t >= e.k else \
                self._r(e.initial, t, here, outer)
        if isinstance(e, Shift):
            if t is None:
                raise ExportError("shifted used where a single value is needed")
            k = self._r(e.k, None, here, 0)
            idx = self._r(TimeRow("index"), t, here, 0)
            if e.ahead:
                return (f"IF({idx}+({k})<={self.lay.n_periods - 1},"
                        f"INDEX({self.row_range(e.target, here)},{idx}+({k})+1),"
                        f"{self._r(e.initial, t, here, 0)})")
            return (f"IF({idx}-({k})>=0,INDEX({self.row_range(e.target, here)},"
                    f"{idx}-({k})+1),{self._r(e.initial, t, here, 0)})")
        if isinstance(e, Cumulative):
            running = self._running.get(e.target.name)
            if running is not None and running.name in self.lay.line_rows:
                return self.ref(running, t, here)
            sheet, row = self.lay.line_rows[e.target.name]
            a = xl_rowcol_to_cell(row, self.lay.col(0), True, True)
            b = self._cell(row, t)
            return f"SUM({sheet_ref(sheet, here)}{a}:{b})"
        if isinstance(e, TimeRow):
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
            return f"DATE({d.year},{d.month},{d.day})"
        raise ExportError(f"cannot render expression node {type(e).__name__}")
