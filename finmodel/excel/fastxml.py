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


def column_name(col: int) -> str:
    """XlsxWriter's ``xl_col_to_name(col)`` (``col`` >= 0), made once per column."""
    name = _COLS.get(col)
    if name is None:
        name = _COLS[col] = xl_col_to_name(col)
    return name


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
    * ``_write_rows`` is XlsxWriter's loop over rows with that formula cell inlined and
      each row's run of such cells written as one string (a method call and a write per
      cell were ~40 % of writing the sheets); row elements, empty rows with a height or
      format or comments, and every other cell are XlsxWriter's own methods. Installed
      only where the worksheet has the attributes that loop reads (XlsxWriter >= 3.2.1).
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

    def write_rows() -> None:
        # XlsxWriter's _write_rows, its inner loop inlined for these cells and each row's
        # run of them written as one string; every other cell goes to write_cell.
        ws.row_spans = row_spans(ws)
        table, row_info, comments, spans = ws.table, ws.row_info, ws.comments, ws.row_spans
        colmin, colmax = ws.dim_colmin, ws.dim_colmax
        write = ws.fh.write
        # Each format's XF index, asked of XlsxWriter once per sheet: a format equal to an
        # earlier one keeps no index of its own and recomputed its key on every cell.
        # The first ask is at the cell XlsxWriter's own loop asks at first, so any index
        # handed out is the same.
        xfs: dict[int, int] = {}
        # Each value's text once: the base workbook's 123,000 cached values are 19,000
        # distinct numbers (a float's shortest repr is most of a cell's time).
        texts: dict[float, str] = {}
        for row_num in range(ws.dim_rowmin, ws.dim_rowmax + 1):
            cells = table[row_num]  # the defaultdict entry XlsxWriter's loop also makes
            info = row_info.get(row_num)
            if not cells:
                if row_num in row_info or row_num in comments:
                    ws._write_empty_row(row_num, spans.get(row_num // 16), info)
                continue
            ws._write_row(row_num, spans.get(row_num // 16), info)
            r = row_num + 1
            run: list[str] = []
            for col_num in sorted(cells):
                if not colmin <= col_num <= colmax:
                    continue
                cell = cells[col_num]
                if type(cell) is CellFormulaTuple:
                    f, fmt, v = cell  # (formula, format, value)
                    if type(v) is float and fmt:
                        name = _COLS.get(col_num)
                        if name is None:
                            name = _COLS[col_num] = xl_col_to_name(col_num)
                        xf = xfs.get(id(fmt))
                        if xf is None:
                            xf = xfs[id(fmt)] = fmt._get_xf_index()
                        if "&" in f or "<" in f or ">" in f:
                            f = (f.replace("&", "&amp;").replace("<", "&lt;")
                                 .replace(">", "&gt;"))
                        if v:  # 0.0 and -0.0 are one key: zeros are written as they are
                            text = texts.get(v)
                            if text is None:
                                text = texts[v] = str(v)
                        else:
                            text = str(v)
                        run.append(f'<c r="{name}{r}" s="{xf}"><f>{f}</f><v>{text}</v></c>')
                        continue
                if run:
                    write("".join(run))
                    run = []
                own_cell(row_num, col_num, cell)
            if run:
                write("".join(run))
            ws._xml_end_tag("row")

    ws._prepare_formula = fast
    ws._write_cell = write_cell
    if all(hasattr(ws, a) for a in ("row_info", "row_spans", "comments", "table")):
        ws._write_rows = write_rows
    return ws


def row_spans(ws: Any) -> dict[int, str]:
    """What XlsxWriter's ``Worksheet._calculate_spans`` sets as ``row_spans``: for each
    block of 16 rows, ``"first:last"`` (1-based) of the columns holding a cell or a
    comment within the sheet's dimensions.

    XlsxWriter tests every column of the dimensions in every row (~0.07 s over the base
    workbook); a row's first and last columns are its keys' minimum and maximum.
    ``tests/test_excel.py`` compares both on scattered cells and comments.
    """
    spans: dict[int, str] = {}
    table, comments = ws.table, ws.comments
    colmin, colmax, last = ws.dim_colmin, ws.dim_colmax, ws.dim_rowmax
    lo = hi = None
    for row_num in range(ws.dim_rowmin, last + 1):
        for cols in (table.get(row_num), comments.get(row_num)):
            if not cols:
                continue
            a, b = min(cols), max(cols)
            if a < colmin or b > colmax:
                inside = [c for c in cols if colmin <= c <= colmax]
                if not inside:
                    continue
                a, b = min(inside), max(inside)
            if lo is None:
                lo, hi = a, b
            else:
                lo, hi = min(lo, a), max(hi, b)
        if (row_num + 1) % 16 == 0 or row_num == last:
            if lo is not None:
                spans[row_num // 16] = f"{lo + 1}:{hi + 1}"
                lo = None
    return spans


def _all_plain(formulas: Sequence[str], joined: str) -> bool:
    """Every formula starts with ``=`` and none ends with ``}``, by C-level passes."""
    if "}" in joined and any(f[-1:] == "}" for f in formulas):
        return False
    try:
        return set(map(itemgetter(0), formulas)) == {"="}
    except IndexError:  # an empty formula
        return False


class RowFormulas(list):
    """A row's formulas (a list of ``str``) that carries ``text``: a short string holding
    every run of characters of every formula except the column letters of references
    (:meth:`finmodel.excel.formulas.FormulaWriter.line_cells` makes it from the one
    template it fills in for each period).

    The runs in ``text`` are separated by characters that none of the patterns
    :func:`write_formula_row` looks for can match across (a newline, ``%s``). As a
    column's letters are always followed by its row number (``$`` or a digit), no
    function call (``NAME(``), ``_xlfn.`` or closing ``}`` of a formula can take a
    letter from them: what matches in a formula matches in ``text``, and
    :func:`write_formula_row` scans ``text`` instead of the whole row (a row of 180
    formulas is ~100 times longer; scanning every row was ~0.08 s of the base export).
    """

    __slots__ = ("text",)

    def __init__(self, formulas, text: str) -> None:
        super().__init__(formulas)
        self.text = text


def write_formula_row(ws: Any, row: int, cols: Sequence[int], formulas: Sequence[str],
                      fmt: Any, values: Sequence[float]) -> None:
    """``ws.write_formula(row, c, f, fmt, v)`` for each column, formula and value.

    Stores what XlsxWriter's ``_write_formula`` stores (the formula without its ``=``)
    when no formula of the row is one it would treat specially (a dynamic-array or
    array formula, an ``_xlfn.`` prefix, future functions on) and the row is inside
    the sheet: the regex searches run once over the row (over its :class:`RowFormulas`
    ``text`` when it has one) instead of once per cell. Any other row is written cell
    by cell by XlsxWriter.
    """
    if not formulas:
        return
    # No pattern below can match across a newline.
    joined = formulas.text if type(formulas) is RowFormulas else "\n".join(formulas)
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
    # tuple.__new__ is the namedtuple's constructor without its Python-level __new__.
    new = tuple.__new__
    ws.table[row].update(zip(cols, [new(CellFormulaTuple, (f[1:], fmt, v))
                                    for f, v in zip(formulas, values, strict=True)],
                             strict=True))
