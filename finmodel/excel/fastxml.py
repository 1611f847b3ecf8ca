"""XlsxWriter's formula-cell path without its per-cell overhead, writing the same XML.

The base workbook has ~123,000 formula cells; XlsxWriter spends ~20 us of Python on each
(argument checks and two regex searches when it is stored, a list of attributes, two
escaping regex searches and a generic element writer when it is written). Everything here
reproduces what XlsxWriter itself would store and write for the cases it handles, and
hands any other case to XlsxWriter's own code. ``tests/test_excel.py`` compares the sheet
XML with XlsxWriter's own for a sample of formulas and rows; pyproject pins the XlsxWriter
versions tested.
"""

from __future__ import annotations

import re
from operator import itemgetter
from typing import Any, Sequence

from xlsxwriter.utility import xl_col_to_name
from xlsxwriter.worksheet import CellFormulaTuple, re_dynamic_function

#: What XlsxWriter's ``_prepare_formula`` rewrites when future functions are off: the
#: dynamic-array functions (``\bNAME(``) and, through its pattern ``\SINGLE\(``, any
#: ``INGLE(``. tests/test_excel.py checks this list against the installed XlsxWriter.
DYNAMIC_FUNCTIONS = (
    "ANCHORARRAY", "BYCOL", "BYROW", "CHOOSECOLS", "CHOOSEROWS", "DROP", "EXPAND", "FILTER",
    "HSTACK", "LAMBDA", "MAKEARRAY", "MAP", "RANDARRAY", "REDUCE", "SCAN", "SEQUENCE",
    "SORT", "SORTBY", "SWITCH", "TAKE", "TEXTSPLIT", "TOCOL", "TOROW", "UNIQUE", "VSTACK",
    "WRAPCOLS", "WRAPROWS", "XLOOKUP",
)
_REWRITTEN = re.compile(r"\b(?:%s)\(|INGLE\(" % "|".join(DYNAMIC_FUNCTIONS))

# The calls either pattern could match: a row holding none of them needs neither regex
# (scanning a row with the two alternations of \b-anchored names cost ~0.65 s over the
# base workbook, substring tests ~0.1 s). Read from XlsxWriter's own pattern; were it
# ever more than ``\bNAME\(`` alternatives, every row is searched with it.
_DYNAMIC_NAMES = re.findall(r"\\b([A-Z][A-Z0-9._]*)\\\(", re_dynamic_function.pattern)
_CALLS: tuple[str, ...] | None = (
    tuple(sorted({f"{n}(" for n in (*DYNAMIC_FUNCTIONS, *_DYNAMIC_NAMES, "INGLE")}))
    if not re.sub(r"\\b[A-Z][A-Z0-9._]*\\\(|\s|\|", "", re_dynamic_function.pattern)
    and not re_dynamic_function.flags & re.IGNORECASE else None)

#: Column letters by index, filled as met (XlsxWriter keeps the same cache).
_COLS: dict[int, str] = {}


def fast_formulas(ws: Any) -> Any:
    """Let ``ws`` skip XlsxWriter's per-formula work where it would change nothing.

    * ``_prepare_formula`` runs ~30 ``re.sub`` per formula to add ``_xlfn.`` prefixes (it
      was 60 % of the export). With future functions off it only strips the leading ``=``
      of a formula that calls none of ``DYNAMIC_FUNCTIONS``, so that is done with one
      search; any other formula takes XlsxWriter's own path.
    * ``_write_cell`` writes a formula cell with a format and a float value as one string,
      as XlsxWriter's ``_xml_formula_element`` would (``r`` and ``s`` attributes, the
      formula with ``&``, ``<`` and ``>`` escaped, the value as ``str(float)``); any other
      cell (strings, numbers, booleans, error or text values, no format) is XlsxWriter's.
    """
    prepare = ws._prepare_formula
    own_cell = ws._write_cell

    def fast(formula: str, expand_future_functions: bool = False) -> str:
        if (formula[:1] == "=" and formula[-1:] != "}" and not expand_future_functions
                and not ws.use_future_functions and "_xlfn." not in formula
                and ("(" not in formula or not _REWRITTEN.search(formula))):
            return formula[1:]
        return prepare(formula, expand_future_functions)

    def write_cell(row: int, col: int, cell) -> None:
        if type(cell) is CellFormulaTuple and type(cell.value) is float and cell.format:
            name = _COLS.get(col)
            if name is None:
                name = _COLS[col] = xl_col_to_name(col)
            f = cell.formula
            if "&" in f or "<" in f or ">" in f:  # XlsxWriter's _escape_data
                f = f.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            ws.fh.write(f'<c r="{name}{row + 1}" s="{cell.format._get_xf_index()}">'
                        f"<f>{f}</f><v>{cell.value}</v></c>")
            return
        own_cell(row, col, cell)

    ws._prepare_formula = fast
    ws._write_cell = write_cell
    return ws


def _all_plain(formulas: Sequence[str], joined: str) -> bool:
    """Every formula starts with ``=`` and none ends with ``}``, by C-level passes."""
    if "}" in joined and any(f[-1:] == "}" for f in formulas):
        return False
    try:
        return set(map(itemgetter(0), formulas)) == {"="}
    except IndexError:  # an empty formula
        return False


def write_formula_row(ws: Any, row: int, cols: Sequence[int], formulas: Sequence[str],
                      fmt: Any, values: Sequence[float]) -> None:
    """``ws.write_formula(row, c, f, fmt, v)`` for each column, formula and value.

    Stores what XlsxWriter's ``_write_formula`` stores (the formula without its ``=``)
    when no formula of the row is one it would treat specially (a dynamic-array or
    array formula, an ``_xlfn.`` prefix, future functions on) and the row is inside
    the sheet: the regex searches run once over the row instead of once per cell. Any
    other row is written cell by cell by XlsxWriter.
    """
    if not formulas:
        return
    joined = "\n".join(formulas)  # no pattern below can match across a newline
    special = _CALLS is None or any(call in joined for call in _CALLS)
    if (ws.use_future_functions or ws.constant_memory or "_xlfn." in joined
            or special and (re_dynamic_function.search(joined) or _REWRITTEN.search(joined))
            or not _all_plain(formulas, joined)
            or min(cols) < 0 or max(cols) >= ws.xls_colmax or not 0 <= row < ws.xls_rowmax):
        for c, f, v in zip(cols, formulas, values, strict=True):
            ws.write_formula(row, c, f, fmt, v)
        return
    ws._check_dimensions(row, min(cols))
    ws._check_dimensions(row, max(cols))
    table = ws.table[row]
    for c, f, v in zip(cols, formulas, values, strict=True):
        table[c] = CellFormulaTuple(f[1:], fmt, v)
