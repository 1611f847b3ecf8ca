"""FAST-standard hygiene of a written workbook: a scanner that reads every formula back.

Rules (the FAST standard's, as the issue states them):

- one formula per row: every monthly cell of a line holds the same formula in relative
  (R1C1) terms, the first month included;
- no number typed into a formula other than 0, 1 and 12 (named constants or input cells
  instead; text inside quotes and number formats of TEXT() are not numbers);
- no formula longer than ``MAX_CHARS`` characters (text inside quotes is a message, not
  logic, and counts as empty quotes);
- on the monthly sheets, a formula that reads another sheet is a link and nothing else
  (``='Power'!E12``): calculations use a green link row on their own sheet.

The annual roll-up (each year's months of a monthly row) is a summary on another time
axis, not a calculation along the timeline: its rows are exempt from the last two rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from openpyxl import load_workbook
from openpyxl.utils import column_index_from_string

MAX_CHARS = 150
ALLOWED_NUMBERS = {0.0, 1.0, 12.0}

_STRING = re.compile(r'"(?:[^"]|"")*"')
_SHEET = re.compile(r"(?:'(?:[^']|'')+'|[A-Za-z_][A-Za-z0-9_.]*)!")
_CELL = re.compile(r"(\$?)([A-Z]{1,3})(\$?)(\d+)(?![\w(])")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_NUMBER = re.compile(r"(?<![\w.])(\d+\.?\d*(?:[eE][-+]?\d+)?)")


@dataclass(frozen=True)
class Problem:
    """One broken rule at one cell."""

    sheet: str
    cell: str
    rule: str
    formula: str

    def __str__(self) -> str:
        return f"{self.sheet}!{self.cell}: {self.rule}: {self.formula[:120]}"


def relative(formula: str, row: int, col: int) -> str:
    """``formula`` with every relative reference written as an offset (R1C1 style)."""
    body = _STRING.sub('""', formula)

    def sub(m: re.Match) -> str:
        cabs, c, rabs, r = m.groups()
        cc = f"C{column_index_from_string(c)}" if cabs else \
            f"C[{column_index_from_string(c) - col}]"
        rr = f"R{r}" if rabs else f"R[{int(r) - row}]"
        return rr + cc

    return _CELL.sub(sub, body)


def typed_numbers(formula: str) -> list[str]:
    """Numbers typed into ``formula`` other than 0, 1 and 12."""
    body = _STRING.sub('""', formula)
    body = _SHEET.sub("", body)
    body = _CELL.sub("", body)
    body = _NAME.sub("", body)
    return [n for n in _NUMBER.findall(body) if float(n) not in ALLOWED_NUMBERS]


def _is_link(formula: str) -> bool:
    body = formula[1:].strip()
    return re.fullmatch(r"(?:'(?:[^']|'')+'|[A-Za-z_][\w.]*)!\$?[A-Z]{1,3}\$?\d+", body) \
        is not None


def scan(path: str | Path, *, first_col: int = 4, header_rows: int = 6,
         monthly_min: int = 12, roll_ups: tuple[str, ...] = ("Annual",)) -> list[Problem]:
    """Every broken rule in the workbook at ``path``.

    A row is monthly when it holds at least ``monthly_min`` formulas from column
    ``first_col`` (0-based) onwards, below the ``header_rows``.
    """
    wb = load_workbook(path)
    out: list[Problem] = []
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            cells = [c for c in row if isinstance(c.value, str) and c.value.startswith("=")]
            for c in cells:
                f = c.value
                if len(_STRING.sub('""', f)) > MAX_CHARS:
                    out.append(Problem(ws.title, c.coordinate, f"longer than {MAX_CHARS}", f))
                nums = typed_numbers(f)
                if nums:
                    out.append(Problem(ws.title, c.coordinate,
                                       f"typed number(s) {', '.join(nums)}", f))
            periods = [c for c in cells if c.column - 1 >= first_col]
            if len(periods) < monthly_min or row[0].row <= header_rows \
                    or ws.title in roll_ups:
                continue
            first = periods[0]
            shape = relative(first.value, first.row, first.column)
            for c in periods[1:]:
                if relative(c.value, c.row, c.column) != shape:
                    out.append(Problem(ws.title, c.coordinate,
                                       f"differs from the row's first formula {first.value!r}",
                                       c.value))
                    break
            for c in periods:
                if "!" in _STRING.sub('""', c.value) and not _is_link(c.value):
                    out.append(Problem(ws.title, c.coordinate,
                                       "calculates on another sheet (use a link row)",
                                       c.value))
                    break
    return out
