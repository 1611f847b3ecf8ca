"""The Excel renderer: lays the model out on sheets and writes every line as formulas,
each stored with the value the numpy evaluator computed for it. It never computes."""

from __future__ import annotations

import datetime as dt
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import xlsxwriter
from xlsxwriter.utility import xl_rowcol_to_cell

from finmodel.analysis.timing import tables_of
from finmodel.engine.expr import Ref
from finmodel.engine.graph import Line, Scalar
from finmodel.errors import ExportError
from finmodel.outputs import Outputs
from finmodel.excel import checks as checks_sheet
from finmodel.excel.bridge import Waterfall, waterfall_chart, write_bridge
from finmodel.excel.cover import stamp_rows, write_cover
from finmodel.excel.dashboard import write_dashboard
from finmodel.excel.constants import constant_name
from finmodel.excel.fastxml import DYNAMIC_FUNCTIONS  # noqa: F401  (tests read it here)
from finmodel.excel.fastxml import fast_formulas as _fast_formulas
from finmodel.excel.fastxml import column_name, write_formula_row
from finmodel.excel.helpers import split_long
from finmodel.excel.package import Workbook, paused_gc
from finmodel.excel.formulas import (
    TIMELINE_SHEET,
    FormulaWriter,
    Layout,
    constants_of,
    foreign_keys,
    sheet_ref,
)
from finmodel.excel.labels import number_format, shown_unit, strategy_labels
from finmodel.excel.printing import MONTHLY_ROW_PT, page_setup, year_blocks
from finmodel.inputs.load import input_fields
from finmodel.inputs.workbook_import import case_json
from finmodel.excel.inputs_sheet import (
    BASE_SCENARIO,
    HEADER_ROW,
    SELECTED_NAME,
    write_inputs,
)
from finmodel.valuation import metric_rank

if TYPE_CHECKING:  # pragma: no cover
    from finmodel.api import Result

FIRST_COL = 4  # column E: A label, B unit, C total or value, D line name
HEADER_ROWS = 6
TIME_LABELS = {
    "start": "Period start", "end": "Period end", "days": "Days in period",
    "index": "Period number (0-based)", "year": "Calendar year", "model_year": "Model year",
    "first": "First month (1 = yes)",
}
TIME_UNITS = {"start": "day", "end": "day", "days": "count", "index": "count",
              "year": "calendar_year", "model_year": "count", "first": "flag"}
SHEET_ORDER = ["Summary", "Comparison", "Checks", "Inputs", "Constants", TIMELINE_SHEET,
               "Network", "Power",
               "Mining", "Hosting", "Cloud", "Capex", "Financing", "Tax", "Cash Flow",
               "Annual"]


class _Styles:
    def __init__(self, wb: xlsxwriter.Workbook) -> None:
        self.wb = wb
        self._cache: dict[tuple, Any] = {}
        base = {"font_name": "Arial", "font_size": 9}
        self.title = wb.add_format({**base, "bold": True, "font_size": 14, "font_color": "#1F3864"})
        self.subtitle = wb.add_format({**base, "italic": True, "font_color": "#595959"})
        self.header = wb.add_format({**base, "bold": True, "font_color": "#FFFFFF",
                                     "bg_color": "#1F3864", "align": "center"})
        self.header_left = wb.add_format({**base, "bold": True, "font_color": "#FFFFFF",
                                          "bg_color": "#1F3864"})
        self.header_year = wb.add_format({**base, "bold": True, "font_color": "#FFFFFF",
                                          "bg_color": "#1F3864", "align": "center",
                                          "num_format": "0"})
        self.cover_title = wb.add_format({**base, "bold": True, "font_size": 18,
                                          "font_color": "#1F3864"})
        self.label_bold = wb.add_format({**base, "bold": True})
        self.answer = wb.add_format({**base, "bold": True, "font_size": 11,
                                     "font_color": "#1F3864"})
        self.flag = wb.add_format({**base, "bold": True, "font_color": "#00804A"})
        self.flag_bad = wb.add_format({**base, "bold": True, "font_color": "#C00000"})
        self.link = wb.add_format({**base, "font_color": "#0563C1", "underline": 1})
        self.wrap = wb.add_format({**base, "text_wrap": True, "valign": "top"})
        self.header_wrap = wb.add_format({**base, "bold": True, "font_color": "#FFFFFF",
                                          "bg_color": "#1F3864", "align": "center",
                                          "valign": "vcenter", "text_wrap": True})
        self.constant = wb.add_format({**base, "num_format": "General", "bg_color": "#F2F2F2",
                                       "border": 1, "border_color": "#BFBFBF"})
        self.section = wb.add_format({**base, "bold": True, "bottom": 1,
                                      "bg_color": "#D9E1F2"})
        self.label = wb.add_format(base)
        self.unit = wb.add_format({**base, "font_color": "#595959"})
        self.name = wb.add_format({**base, "font_color": "#A6A6A6", "font_size": 8})
        self.text = wb.add_format(base)
        self.base = base

    def cell(self, unit: str, kind: str = "calc", bold: bool = False) -> Any:
        """kind: 'input' (blue on yellow), 'link' (green), 'calc' (black), 'date'."""
        key = (unit, kind, bold)
        if key not in self._cache:
            props = {**self.base, "num_format": number_format(unit), "bold": bold}
            if kind == "input":
                props.update(font_color="#0000FF", bg_color="#FFF2CC", border=1,
                             border_color="#BFBFBF")
            elif kind == "link":
                props.update(font_color="#00804A", align="right")
            elif kind == "header_date":
                props.update(bold=True, font_color="#FFFFFF", bg_color="#1F3864",
                             align="center")
            self._cache[key] = self.wb.add_format(props)
        return self._cache[key]


def export_excel(result: Result, path: str | os.PathLike[str], scenario: int = 0, *,
                 analysis=None) -> Path:
    """Write ``result`` (one scenario) as a live workbook, atomically.

    Every calculated cell is a formula stored with its numpy value; inputs carry defined
    names equal to their field paths (dots as underscores) and every headline metric the
    name ``<strategy>_<metric>``. ``analysis`` (from ``finmodel sensitivity``) adds the
    Sensitivity and Monte Carlo sheets.
    """
    out = Outputs()
    target = out.target(path, ".xlsx", "workbook")
    out.commit([(target, lambda tmp: write_workbook(result, tmp, scenario,
                                                    analysis=analysis))])
    return target


def write_workbook(result: Result, path: str | os.PathLike[str], scenario: int = 0, *,
                   analysis=None, solved: Callable[[], None] | None = None) -> None:
    """Write the workbook of :func:`export_excel` at ``path`` as it goes (not atomically:
    for a writer of :meth:`finmodel.outputs.Outputs.commit`, which renames it into place).

    ``solved``, when given, is called before the first sheet that shows the values solved
    in Python (Summary on; see :func:`finmodel.api.start_run`): it must put them into
    ``result`` by then. The sheets before it read none of them.
    """
    with paused_gc():  # ~120,000 cells and no cycles: collections scan them for nothing
        _write(result, str(path), scenario, analysis, solved)


def _write(result: Result, path: str, scenario: int, analysis=None,
           solved: Callable[[], None] | None = None) -> None:
    wb = Workbook(path, {"strings_to_formulas": False, "strings_to_urls": False,
                         "nan_inf_to_errors": True})
    wb.set_calc_mode("auto")
    wb.set_properties({"title": result.assumptions.case.name, "author": "finmodel"})
    st = _Styles(wb)
    model, tl = result.model, result.timeline
    n = tl.months
    lay = Layout(FIRST_COL, n)

    # Known sheets in their order, then any other sheet a model uses, in order of use;
    # a calculation sheet only when some line lives on it.
    used = {n.sheet for n in model.nodes.values()}
    extra = [n.sheet for n in model.nodes.values() if n.sheet not in SHEET_ORDER]
    order = [x for x in SHEET_ORDER[:-1] if x in used
             or x in ("Inputs", "Constants", TIMELINE_SHEET)
             or (x == "Comparison" and len(result.strategies) > 1)]
    order += list(dict.fromkeys(extra)) + SHEET_ORDER[-1:] + [checks_sheet.SNAPSHOT_SHEET]
    if analysis is not None:
        wanted = [n for n, present in (("Sensitivity", analysis.tornado is not None
                                        or analysis.grid is not None
                                        or analysis.scenarios is not None),
                                       ("Monte Carlo", analysis.monte_carlo is not None))
                  if present]
        order = order[:1] + wanted + order[1:]
    order = ["Cover", "Dashboard"] + order
    sheets = {name: _fast_formulas(wb.add_worksheet(name)) for name in order}
    calc_sheets = [s for s in order
                   if any(node.sheet == s for node in model.nodes.values())
                   and s not in ("Summary", checks_sheet.SHEET)]

    # --- positions first, so any cell can reference any other -------------------------
    for i, kind in enumerate(TIME_LABELS):
        lay.time_rows[kind] = HEADER_ROWS + i
    strategies = result.strategies
    metric_keys = sorted(dict.fromkeys(x.metric for x in model.metrics()), key=metric_rank)
    summary_top = 9
    for x in model.metrics():
        lay.scalar_cells[x.name] = ("Summary", summary_top + 1 + metric_keys.index(x.metric),
                                    2 + strategies.index(x.strategy))

    checks_sheet.place(model, lay)
    fw = FormulaWriter(lay, model.lines)
    for value in constants_of(fw, model.nodes.values()):
        lay.constants[value] = constant_name(value)[0]
    lines_on = {s: [x for x in model.lines if x.sheet == s] for s in calc_sheets}
    scalars_on = {s: [x for x in model.scalars if x.sheet == s] for s in calc_sheets}
    next_row, link_keys = _place(lay, fw, calc_sheets, lines_on, scalars_on)
    # Formulas longer than the FAST limit become helper rows above their line; then the
    # rows are placed again with the helpers among them.
    helper_of: dict[str, str] = {}
    for s in calc_sheets:
        for group, probe in ((scalars_on, None), (lines_on, n - 1)):
            out = []
            for node in group[s]:
                for h in split_long(fw, node, s, probe):
                    helper_of[h.name] = node.name
                    out.append(h)
                out.append(node)
            group[s] = out
    next_row, link_keys = _place(lay, fw, calc_sheets, lines_on, scalars_on)
    # Long checks get their helper values below the Checks table.
    check_rows = [r for sh, r, _ in lay.scalar_cells.values() if sh == checks_sheet.SHEET]
    row = max(check_rows, default=0) + 3
    check_helpers: list = []
    for x in model.scalars:
        if x.sheet != checks_sheet.SHEET or x.name == \
                f"checks.{checks_sheet.SOLVED_CURRENT}.value":
            continue
        for h in split_long(fw, x, checks_sheet.SHEET, None):
            lay.scalar_cells[h.name] = (checks_sheet.SHEET, row, 2)
            helper_of[h.name] = x.name
            check_helpers.append(h)
            row += 1
    helper_values = _helper_values(result, fw, lines_on,
                                   {**scalars_on, checks_sheet.SHEET: check_helpers}, helper_of)
    values = result.values
    names = strategy_labels(result)

    def val(name: str, t: int | None = None) -> float:
        v = values[name]
        v = v[min(scenario, v.shape[0] - 1)]
        return float(v if t is None else v[t])

    # --- Inputs -------------------------------------------------------------------------
    written = write_inputs(wb, sheets["Inputs"], st, result,
                           lambda name, ref: _define(wb, name, ref))
    _master_flag(sheets["Inputs"], st, result, 0, 3)
    page_setup(sheets["Inputs"], result.assumptions.case.name,
               repeat_rows=(HEADER_ROW, HEADER_ROW))
    inputs_box = written.box
    snapshot = written.cells
    checks_sheet.write_snapshot(sheets[checks_sheet.SNAPSHOT_SHEET], snapshot,
                                case_json(result.assumptions))
    # Numeric inputs by defined name, with their source, for the Dashboard.
    sources = dict(getattr(result.assumptions, "input_sources", {}) or {})
    inputs = {f.defined_name: (f.path, f.unit, float(f.value), sources.get(f.path))
              for f in input_fields(result.assumptions)
              if isinstance(f.value, (int, float)) and not isinstance(f.value, bool)}
    checks_sheet.write_checks(wb, sheets[checks_sheet.SHEET], st, model, lay, fw, val,
                              inputs_box, lambda name, ref: _define(wb, name, ref))
    if check_helpers:
        cs = sheets[checks_sheet.SHEET]
        first = lay.scalar_cells[check_helpers[0].name][1]
        cs.write_string(first - 1, 0, "Parts of long checks (helper rows)", st.section)
        for h in check_helpers:
            _, r, c = lay.scalar_cells[h.name]
            cs.write_string(r, 0, h.label, st.label)
            cs.write_string(r, 1, h.unit, st.unit)
            cs.write_formula(r, c, fw.scalar_cell(h), st.cell(h.unit),
                             _cached(float(helper_values[h.name][0])))
            cs.write_string(r, 3, _name_cell(h.name, helper_of), st.name)
    page_setup(sheets[checks_sheet.SHEET], result.assumptions.case.name, repeat_rows=(3, 3))
    page_setup(sheets[checks_sheet.SNAPSHOT_SHEET], result.assumptions.case.name,
               repeat_rows=(0, 0))

    # --- Constants: the numbers formulas use by name -----------------------------------
    ws = sheets["Constants"]
    ws.write_string(0, 0, "Constants", st.title)
    ws.write_string(1, 0, "Numbers the formulas use by name (no number other than 0, 1 and 12"
                    " is typed into a formula). Structural: change the model, not these.",
                    st.subtitle)
    for c, h in enumerate(["Defined name", "What it is", "Value", "Unit"]):
        ws.write_string(3, c, h, st.header_left)
    for i, (value, name) in enumerate(lay.constants.items()):
        r = 4 + i
        _, unit, what = constant_name(value)
        ws.write_string(r, 0, name, st.name)
        ws.write_string(r, 1, what, st.label)
        ws.write_number(r, 2, value, st.constant)
        ws.write_string(r, 3, unit, st.unit)
        _define(wb, name, f"=Constants!{xl_rowcol_to_cell(r, 2, True, True)}")
    if result.assumptions.tax is not None:
        _write_tax_inputs(wb, ws, st, result, 4 + len(lay.constants) + 1)
    ws.set_column(0, 0, 26)
    ws.set_column(1, 1, 70)
    ws.set_column(2, 2, 16)
    ws.set_column(3, 3, 10)
    page_setup(ws, result.assumptions.case.name, repeat_rows=(3, 3))

    # --- Timeline -----------------------------------------------------------------------
    # The timeline is structure, not model logic: its rows (EDATE from the start month) are
    # the one template written here by hand. numpy takes them from engine.timeline; every
    # line that uses days, years or dates is compared with LibreOffice, which checks both.
    ws = sheets[TIMELINE_SHEET]
    _sheet_header(ws, st, TIMELINE_SHEET, result, lay, None)
    rows = tl.rows
    cols = range(FIRST_COL, FIRST_COL + n)
    for kind, r in lay.time_rows.items():
        ws.write_string(r, 0, TIME_LABELS[kind], st.label)
        formulas = []
        for c in cols:
            start = _ref(lay.time_rows["start"], c)
            idx = _ref(lay.time_rows["index"], c)
            if kind == "start":
                f = f"=EDATE(case_start_month,{idx})"
            elif kind == "end":
                f = f"=EDATE({start},1)"
            elif kind == "days":
                f = f"={_ref(lay.time_rows['end'], c)}-{start}"
            elif kind == "index":
                # One formula across: the column's distance from the first month.
                f = f"=COLUMN()-COLUMN({_ref(r, FIRST_COL, False, True)})"
            elif kind == "year":
                f = f"=YEAR({start})"
            elif kind == "first":
                f = f"=IF({idx}=0,1,0)"
            else:
                f = f"=INT({idx}/12)+1"
            formulas.append(f)
        cached = ([float(t == 0) for t in range(n)] if kind == "first"
                  else [float(v) for v in rows[kind][:n]])
        write_formula_row(ws, r, cols, formulas, st.cell(TIME_UNITS[kind]), cached)
    _monthly_layout(ws, result, n, month_width=7)  # "1 Jan 26" dates

    # --- calculation sheets -------------------------------------------------------------
    for s in calc_sheets:
        ws = sheets[s]
        _sheet_header(ws, st, s, result, lay, fw)
        if link_keys[s]:
            _section(ws, st, HEADER_ROWS, "Links from other sheets", n)
        for key in link_keys[s]:
            _write_link_row(ws, st, lay, key, lay.links[(s, key)], s, values, tl.rows,
                            scenario, names, model)
        row = HEADER_ROWS
        scalars = scalars_on[s]
        if scalars:
            _section(ws, st, lay.scalar_cells[scalars[0].name][1] - 1, "Values", n)
            for x in scalars:
                _, r, c = lay.scalar_cells[x.name]
                owner = x.name.split(".", 1)[0]
                label = f"{names[owner]}: {x.label}" if owner in strategies else x.label
                ws.write_string(r, 0, label, st.label)
                ws.write_string(r, 1, shown_unit(x.unit), st.unit)
                ws.write_string(r, 3, _name_cell(x.name, helper_of), st.name)
                v = helper_values[x.name] if x.name in helper_of else values[x.name]
                ws.write_formula(r, c, fw.scalar_cell(x), st.cell(x.unit),
                                 _cached(float(v[min(scenario, v.shape[0] - 1)])))
        section = None
        for ln in lines_on[s]:
            _, r = lay.line_rows[ln.name]
            if ln.section != section:
                section = ln.section
                _section(ws, st, r - 1, section_label(section, names), n)
            ws.write_string(r, 0, ln.label, st.label)
            ws.write_string(r, 1, shown_unit(ln.unit), st.unit)
            ws.write_string(r, 3, _name_cell(ln.name, helper_of), st.name)
            kind = "link" if _is_link(ln, lay, s) else "calc"
            fmt = st.cell(ln.unit, kind)
            src = helper_values if ln.name in helper_of else values
            row_vals = src[ln.name][min(scenario, src[ln.name].shape[0] - 1)]
            write_formula_row(ws, r, range(FIRST_COL, FIRST_COL + n), fw.line_cells(ln), fmt,
                              np.asarray(row_vals, dtype=float).tolist())
            if ln.agg == "sum":
                ws.write_formula(r, 2, f"=SUM({fw.row_range(ln, s)})",
                                 st.cell(ln.unit, "calc", bold=True), float(row_vals.sum()))
        _monthly_layout(ws, result, n, n_rows=next_row[s])

    if result.convertible is not None and "Financing" in sheets:
        _write_lattice(sheets["Financing"], st, result, next_row["Financing"] + 1)

    # --- Annual -------------------------------------------------------------------------
    ws = sheets["Annual"]
    ws.write_string(0, 0, "Annual summary", st.title)
    ws.write_string(1, 0, result.assumptions.case.name, st.subtitle)
    _master_flag(ws, st, result, 2, 0)
    ws.write_string(3, 0, "Calendar year", st.header_left)
    for c in range(1, FIRST_COL):
        ws.write_blank(3, c, None, st.header_left)
    years = tl.years
    for k, y in enumerate(years):
        c = FIRST_COL + k
        f = "=YEAR(case_start_month)" if k == 0 else f"={xl_rowcol_to_cell(3, c - 1)}+1"
        ws.write_formula(3, c, f, st.header_year, float(y))
    annual = result.annual_rows(scenario)
    year_of = tl.rows["year"]
    spans = [(int(np.flatnonzero(year_of == y)[0]), int(np.flatnonzero(year_of == y)[-1]))
             for y in years]
    row = 4
    section = None
    for ln in model.lines:
        if ln.agg == "none":
            continue
        if (ln.sheet, ln.section) != section:
            section = (ln.sheet, ln.section)
            row += 1
            _section(ws, st, row, f"{section_label(ln.section, names)} ({ln.sheet} sheet)",
                     len(years))
            row += 1
        ws.write_string(row, 0, ln.label, st.label)
        ws.write_string(row, 1, shown_unit(ln.unit), st.unit)
        ws.write_string(row, 3, ln.name, st.name)
        fmt = st.cell(ln.unit)
        src, r = lay.line_rows[ln.name]
        prefix = sheet_ref(src, "Annual")
        cached = annual[ln.name]
        formulas = []
        for k, (first, last) in enumerate(spans):
            # Each year over its own months (contiguous on the timeline): a SUMIF over the
            # whole month row in every year made the workbook quadratic in the horizon.
            end = prefix + _ref(r, lay.col(last))
            if ln.agg in ("sum", "mean"):
                f = (f"={'SUM' if ln.agg == 'sum' else 'AVERAGE'}("
                     f"{prefix}{_ref(r, lay.col(first))}:{_ref(r, lay.col(last))})")
            else:
                f = f"={end}"
            formulas.append(f)
        write_formula_row(ws, row, range(FIRST_COL, FIRST_COL + len(spans)), formulas, fmt,
                          [float(x) for x in cached[:len(spans)]])
        row += 1
    ws.set_column(0, 0, 40)
    ws.set_column(1, 1, 11)
    ws.set_column(2, 2, 4)
    ws.set_column(3, 3, 28)
    ws.set_column(FIRST_COL, FIRST_COL + len(years), 14)
    ws.freeze_panes(4, FIRST_COL)
    page_setup(ws, result.assumptions.case.name, repeat_rows=(3, 3),
               repeat_cols=(0, FIRST_COL - 1))

    # --- Summary ------------------------------------------------------------------------
    # The solved values (break-evens, value by start month) are read from here on.
    if solved is not None:
        solved()
    ws = sheets["Summary"]
    _write_summary(ws, st, result, lay, fw, metric_keys, strategies, summary_top, val, wb)
    waterfall = None
    if "Comparison" in sheets:
        waterfall = _write_comparison(wb, sheets["Comparison"], st, result, lay, metric_keys)
    if "Sensitivity" in sheets or "Monte Carlo" in sheets:
        # Imported here: `run -o` writes neither (its source is compiled on every run
        # where Python keeps no bytecode).
        from finmodel.excel.analysis_sheets import write_monte_carlo, write_sensitivity
    if "Sensitivity" in sheets:
        write_sensitivity(wb, sheets["Sensitivity"], st, analysis, result)
        page_setup(sheets["Sensitivity"], result.assumptions.case.name)
    if "Monte Carlo" in sheets:
        write_monte_carlo(wb, sheets["Monte Carlo"], st, analysis, result)
        page_setup(sheets["Monte Carlo"], result.assumptions.case.name)
    write_dashboard(wb, sheets["Dashboard"], st, result, lay, FIRST_COL, inputs, waterfall)
    page_setup(sheets["Dashboard"], result.assumptions.case.name, fit_height=True)
    write_cover(wb, sheets["Cover"], st, result, order)
    page_setup(sheets["Cover"], result.assumptions.case.name, fit_height=True)
    sheets["Cover"].activate()
    try:
        wb.close()
    except Exception as exc:  # xlsxwriter raises several types for I/O problems
        raise ExportError(f"could not write the workbook: {exc}") from exc


def _write_summary(ws, st, result, lay, fw, metric_keys, strategies, top, val, wb) -> None:
    a = result.assumptions
    labels = strategy_labels(result)
    ws.write_string(0, 0, "Summary", st.title)
    ws.write_string(1, 0, a.case.name, st.subtitle)
    all_ok = bool(val("checks.all_ok") == 1)
    ws.write_string(7, 0, "Checks (master flag)", st.unit)
    ws.write_formula(7, 1, checks_sheet.master_flag_formula(), st.text,
                     checks_sheet.master_flag_text(all_ok))
    if a.analysis.scenarios:
        ws.write_string(8, 0, "Active scenario (picked on Inputs)", st.unit)
        ws.write_formula(8, 1, f"={SELECTED_NAME}", st.text, BASE_SCENARIO)
    stamp = stamp_rows(result) + [
        ("Conventions", "USD nominal; money in +, out -; flows at month end, valued at "
                        "the start of the first month (Excel NPV); IRR annualised"),
    ]
    for i, (k, v) in enumerate(stamp):
        ws.write_string(2 + i, 0, k, st.unit)
        ws.write_string(2 + i, 1, v, st.text)
    ws.write_string(top, 0, "Metric", st.header_left)
    ws.write_string(top, 1, "Unit", st.header_left)
    for j, s in enumerate(strategies):
        ws.write_string(top, 2 + j, labels[s], st.header)
    ws.write_string(top, 2 + len(strategies), "Defined names / notes", st.header_left)
    by_key = {(x.strategy, x.metric): x for x in result.model.metrics()}
    notes_col = 2 + len(strategies)
    for i, key in enumerate(metric_keys):
        r = top + 1 + i
        any_x = next(x for x in result.model.metrics() if x.metric == key)
        ws.write_string(r, 0, any_x.label, st.label)
        ws.write_string(r, 1, shown_unit(any_x.unit), st.unit)
        names = []
        for s in strategies:
            x = by_key.get((s, key))
            if x is None:
                continue
            _, rr, c = lay.scalar_cells[x.name]
            fmt = st.cell(x.unit, "calc", bold=True)
            v = val(x.name)
            if x.solved:
                if math.isfinite(v):
                    ws.write_number(rr, c, v, fmt)
                else:
                    ws.write_string(rr, c, "n/a", fmt)
            else:
                ws.write_formula(rr, c, fw.scalar_cell(x), fmt, _cached(v))
            name = f"{s}_{key}"
            _define(wb, name, f"=Summary!{xl_rowcol_to_cell(rr, c, True, True)}")
            names.append(name)
        note = ", ".join(names)
        if any(by_key.get((s, key)) is not None and by_key[(s, key)].solved for s in strategies):
            note = "solved (*): " + note
            ws.write_formula(r, notes_col, checks_sheet.stale_formula(note), st.name, note)
        else:
            ws.write_string(r, notes_col, note, st.name)
    r = top + len(metric_keys) + 1
    r = _write_irr_notes(ws, st, result, lay, strategies, r, wb) + 1
    ws.write_string(r, 0, "(*) Solved in Python by root-finding on the whole model and "
                    "written as values: re-run finmodel after changing inputs.", st.subtitle)
    for name, why in result.reasons.items():
        if why[0]:
            r += 1
            ws.write_string(r, 0, f"{name}: {why[0]}", st.unit)
    ws.set_column(0, 0, 46)
    ws.set_column(1, 1, 14)
    ws.set_column(2, 1 + len(strategies), 18)
    ws.set_column(notes_col, notes_col, 40)
    page_setup(ws, a.case.name)


def _write_irr_notes(ws, st, result, lay, strategies, r, wb) -> int:
    """Why each IRR and payback is or is not shown: live text from the check cells (a
    formula of the flows, so it changes with the inputs). Returns the last row used."""
    from finmodel.api import IRR_SERIES
    from finmodel.valuation import PAYBACK_CHECK_REASONS, irr_reasons_for

    def texts(reasons):
        return ",".join('"' + reasons[k].replace('"', "'") + '"' for k in sorted(reasons))

    series = [(f"{kind}.irr_check", key, texts(irr_reasons_for(kind)))
              for kind, key, _ in IRR_SERIES]
    series.append(("payback_check", "payback_years", texts(PAYBACK_CHECK_REASONS)))
    for check, key, choices in series:
        cells = [(j, s) for j, s in enumerate(strategies)
                 if f"{s}.{check}" in lay.scalar_cells]
        if not cells:
            continue
        r += 1
        what = "payback" if key == "payback_years" else key.replace("_", " ")
        ws.write_string(r, 0, f"Why {what} is n/a (live)", st.label)
        ws.write_string(r, 1, "text", st.unit)
        for j, s in cells:
            sheet, cr, cc = lay.scalar_cells[f"{s}.{check}"]
            code = f"'{sheet}'!{xl_rowcol_to_cell(cr, cc, True, True)}"
            cached = result.reasons.get(f"{s}.{key}")
            ws.write_formula(r, 2 + j, f'=IF({code}=0,"",CHOOSE({code},{choices}))',
                             st.text, str(cached[0]) if cached is not None else "")
            _define(wb, f"{s}_{key}_note", f"=Summary!{xl_rowcol_to_cell(r, 2 + j, True, True)}")
    return r


#: Metrics compared strategy by strategy against mining on the Comparison sheet.
COMPARED = ("npv_usd", "project_irr", "moic", "payback_years", "peak_funding_usd",
            "revenue_per_mw_year_usd", "ebitda_per_mw_year_usd")


def _write_comparison(wb, ws, st, result, lay, metric_keys) -> Waterfall | None:
    """Each strategy against mining (live differences of Summary cells), the value of
    converting by start month (values), and the charts."""
    model, strategies = result.model, result.strategies
    others = [s for s in strategies if s != "mining"]
    labels = strategy_labels(result)
    by_key = {(x.strategy, x.metric): x for x in model.metrics()}
    ws.write_string(0, 0, "Comparison: each strategy against keeping mining", st.title)
    ws.write_string(1, 0, result.assumptions.case.name, st.subtitle)
    _master_flag(ws, st, result, 2, 0)
    ws.write_string(3, 0, "Difference to mining", st.header_left)
    ws.write_string(3, 1, "Unit", st.header_left)
    for j, s in enumerate(others):
        ws.write_string(3, 2 + j, f"{labels[s]} vs mining", st.header_wrap)
    row = 4
    for key in (k for k in COMPARED if k in metric_keys):
        x = by_key[("mining", key)]
        ws.write_string(row, 0, x.label, st.label)
        ws.write_string(row, 1, shown_unit(x.unit), st.unit)
        for j, s in enumerate(others):
            mine, theirs = lay.scalar_cells[x.name], lay.scalar_cells[by_key[(s, key)].name]
            a = f"Summary!{xl_rowcol_to_cell(theirs[1], theirs[2], True, True)}"
            b = f"Summary!{xl_rowcol_to_cell(mine[1], mine[2], True, True)}"
            va = float(result.values[by_key[(s, key)].name][0])
            vb = float(result.values[x.name][0])
            ws.write_formula(row, 2 + j, f"={a}-{b}", st.cell(x.unit), _cached(va - vb))
        row += 1

    row, waterfall_rows = write_bridge(ws, st, result, lay, row + 1, others, by_key)
    row += 1
    ws.write_string(row, 0, "Value of converting by start month (solved in Python: the "
                    "model re-run for each start month; re-run finmodel after changing "
                    "inputs)", st.section)
    ws.write_formula(row, 1, checks_sheet.stale_formula(), st.name, "")
    row += 1
    ws.write_string(row, 0, "Conversion start", st.header_left)
    ws.write_string(row, 1, "", st.header_left)
    for j, s in enumerate(result.timing):
        ws.write_string(row, 2 + 2 * j, f"{labels[s]}: NPV (USD m)", st.header_wrap)
        ws.write_string(row, 3 + 2 * j, f"{labels[s]}: vs mining (USD m)", st.header_wrap)
    ws.set_row(row, 26)
    ws.set_row(3, 26)
    first = row + 1
    tables = list(tables_of(result.timing).values())
    if tables:
        for i, start in enumerate(tables[0].start_serial):
            r = first + i
            ws.write_number(r, 0, float(start), st.cell("YYYY-MM"))
            for j, t in enumerate(tables):
                ws.write_number(r, 2 + 2 * j, float(t.npv_usd[i]), st.cell("USD"))
                ws.write_number(r, 3 + 2 * j, float(t.npv_vs_mining_usd[i]), st.cell("USD"))
        last = first + len(tables[0].start_serial) - 1
        for j in range(len(tables)):
            ws.conditional_format(first, 3 + 2 * j, last, 3 + 2 * j,
                                  {"type": "3_color_scale"})
    # The waterfall's helper rows go under every table, clear of the charts beside them.
    waterfall = None
    if waterfall_rows is not None:
        waterfall = waterfall_rows((first + len(tables[0].start_serial) if tables else first)
                                   + 1)
    ws.set_column(0, 0, 46)
    ws.set_column(1, 1, 12)
    ws.set_column(2, 2 + 2 * max(len(tables), len(others)), 18)

    # Charts: cumulative cash by strategy over time; value of converting by start month.
    n = lay.n_periods
    axis = {"name_font": {"size": 9, "bold": False}, "num_font": {"size": 8}}
    grid = {"visible": True, "line": {"color": "#D9D9D9"}}
    line = wb.add_chart({"type": "line"})
    for s in strategies:
        sheet, r = lay.line_rows[f"{s}.cumulative_fcf_usd"]
        line.add_series({
            "name": labels[s],
            "categories": [TIMELINE_SHEET, lay.time_rows["end"], FIRST_COL,
                           lay.time_rows["end"], FIRST_COL + n - 1],
            "values": [sheet, r, FIRST_COL, r, FIRST_COL + n - 1],
            "line": {"width": 1.75},
        })
    line.set_title({"name": "Cumulative free cash flow by strategy (USD m)",
                    "name_font": {"size": 10}})
    line.set_x_axis({**axis, "name": "Month end", "date_axis": True, "num_format": "yyyy",
                     "major_unit": 2, "major_unit_type": "years", "label_position": "low"})
    line.set_y_axis({**axis, "name": "USD m", "num_format": "#,##0,,",
                     "major_gridlines": grid})
    line.set_legend({"position": "bottom"})
    line.set_size({"width": 640, "height": 320})
    chart_col = 4 + 2 * max(len(tables), len(others))
    ws.insert_chart(3, chart_col, line)
    if tables:
        timing = wb.add_chart({"type": "line"})
        last = first + len(tables[0].start_serial) - 1
        for j, s in enumerate(result.timing):
            timing.add_series({"name": labels.get(s, s),
                               "categories": [ws.name, first, 0, last, 0],
                               "values": [ws.name, first, 3 + 2 * j, last, 3 + 2 * j],
                               "line": {"width": 1.75}})
        timing.set_title({"name": "Value of converting by conversion start month: NPV above "
                          "keeping mining (USD m)", "name_font": {"size": 10}})
        timing.set_x_axis({**axis, "name": "Conversion start", "date_axis": True,
                           "num_format": "mmm yy", "major_unit": 6,
                           "major_unit_type": "months", "label_position": "low"})
        timing.set_y_axis({**axis, "name": "USD m", "num_format": "#,##0,,",
                           "major_gridlines": grid})
        timing.set_legend({"position": "bottom"})
        timing.set_size({"width": 640, "height": 300})
        ws.insert_chart(21, chart_col, timing)
    if waterfall is not None:
        ws.insert_chart(39, chart_col, waterfall_chart(wb, waterfall))
    page_setup(ws, result.assumptions.case.name)
    return waterfall


LATTICE_LABELS = {
    "share_price_usd": ("Share price at issue", "USD/share"),
    "volatility": ("Volatility", "rate"), "risk_free_rate": ("Risk-free rate", "rate"),
    "credit_spread": ("Credit spread", "rate"), "steps": ("Tree steps", "count"),
    "price_per_100": ("Value per 100 of par", "USD"),
    "bond_floor_per_100": ("Bond floor per 100 (no conversion)", "USD"),
    "conversion_value_per_100": ("Conversion value per 100 (parity)", "USD"),
    "equity_part_per_100": ("Equity-like part per 100 (conversion probability x value)",
                            "USD"),
    "delta_shares_per_100": ("Delta: shares per 100 of par", "ratio"),
    "gamma_per_100": ("Gamma per 100 of par", "ratio"),
    "value_usd": ("Value of the whole issue", "USD"),
    "issue_discount_usd": ("Value above (+) or below (-) the issue price", "USD"),
}


def _write_lattice(ws, st, result, row: int) -> None:
    """The lattice valuation, which is no formula row: labelled values with their inputs."""
    ws.write_string(row, 0, "Convertible valuation at issue: binomial lattice, credit spread "
                    "on the cash-like part (computed in Python; re-run after changing "
                    "inputs)", st.section)
    for c in range(1, FIRST_COL):
        ws.write_blank(row, c, None, st.section)
    ws.write_formula(row, 1, checks_sheet.stale_formula(), st.section, "")
    for key, value in result.convertible.items():
        row += 1
        label, unit = LATTICE_LABELS[key]
        ws.write_string(row, 0, label, st.label)
        ws.write_string(row, 1, unit, st.unit)
        ws.write_number(row, 2, float(value), st.cell(unit))
        ws.write_string(row, 3, f"lattice.{key}", st.name)


def _sheet_header(ws, st, title, result, lay, fw) -> None:
    n = lay.n_periods
    ws.write_string(0, 0, title, st.title)
    ws.write_string(1, 0, result.assumptions.case.name + " | USD unless stated; money in +,"
                    " money out -", st.subtitle)
    _master_flag(ws, st, result, 2, 0)
    ws.write_string(3, 0, "Period ending", st.header_left)
    ws.write_string(4, 0, "Calendar year", st.header_left)
    for c in range(1, FIRST_COL):
        ws.write_blank(3, c, None, st.header_left)
        ws.write_blank(4, c, None, st.header_left)
    ws.write_string(3, 2, "Total", st.header)
    ends, years = result.timeline.rows["end"], result.timeline.rows["year"]
    cols = range(lay.col(0), lay.col(n))
    src = sheet_ref(TIMELINE_SHEET, title)
    end, year = lay.time_rows["end"] + 1, lay.time_rows["year"] + 1
    write_formula_row(ws, 3, cols, [f"={src}{column_name(c)}{end}-1" for c in cols],
                      st.cell("date", "header_date"), [float(x - 1) for x in ends[:n]])
    write_formula_row(ws, 4, cols, [f"={src}{column_name(c)}{year}" for c in cols],
                      st.header_year, [float(x) for x in years[:n]])


#: Widths of the label columns (label, unit, total, model name) and of a month column.
LABEL_WIDTHS = [30, 8, 9, 16]
MONTH_WIDTH = 6


def _monthly_layout(ws, result, n: int, month_width: float = MONTH_WIDTH,
                    n_rows: int = 0) -> None:
    """Column widths, frozen panes and print setup of a sheet with one column a month."""
    for c, w in enumerate(LABEL_WIDTHS):
        ws.set_column(c, c, w)
    ws.set_column(FIRST_COL, FIRST_COL + n - 1, month_width)
    ws.set_default_row(MONTHLY_ROW_PT)
    ws.set_row(0, 18)
    ws.freeze_panes(HEADER_ROWS, FIRST_COL)
    page_setup(ws, result.assumptions.case.name, repeat_rows=(3, 4),
               repeat_cols=(0, FIRST_COL - 1), fit_width=False)
    year_blocks(ws, LABEL_WIDTHS, month_width, FIRST_COL, n, n_rows)


#: Column of year 1 of each MACRS table on the Constants sheet (E); the importer reads the
#: rates back from there (inputs/workbook_import.py).
MACRS_FIRST_COL = 4


def _write_tax_inputs(wb, ws, st, result, row: int) -> None:
    """The Tax inputs block: each MACRS class's life, method and rate by recovery year as
    input cells, named (``tax_macrs_5_year_rates``...) and read by the Tax sheet's
    depreciation formulas; and the life and schedule of each asset class of the case."""
    from finmodel.models.tax import MACRS, macrs_name

    t = result.assumptions.tax
    ws.write_string(row, 0, "Tax inputs: MACRS depreciation tables (IRS Publication 946, "
                    "Table A-1, half-year convention; rate by recovery year)", st.section)
    for c in range(1, 4):
        ws.write_blank(row, c, None, st.section)
    row += 1
    years = max(len(x) for x in MACRS.values())
    # The published rates have two decimals (14.29 %): shown whole, in the input style.
    rate_fmt = wb.add_format({"font_name": "Arial", "font_size": 9, "num_format": "0.00%",
                              "font_color": "#0000FF", "bg_color": "#FFF2CC", "border": 1,
                              "border_color": "#BFBFBF"})
    for c, h in enumerate(["Defined name", "Class and method", "Life (years)",
                           "Rates"]):
        ws.write_string(row, c, h, st.header_left)
    for y in range(1, years + 1):
        ws.write_string(row, MACRS_FIRST_COL - 1 + y, f"Year {y}", st.header)
    for life, table in MACRS.items():
        row += 1
        name = macrs_name(life)
        method = "150 % declining balance" if life >= 15 else "200 % declining balance"
        ws.write_string(row, 0, name, st.name)
        ws.write_string(row, 1, f"{life}-year property: {method}, switching to straight "
                        "line; half-year convention", st.label)
        ws.write_number(row, 2, life, st.cell("years", "input"))
        ws.write_string(row, 3, "% by year", st.unit)
        for y, pct in enumerate(table, start=1):
            ws.write_number(row, MACRS_FIRST_COL - 1 + y, pct / 100, rate_fmt)
        _define(wb, name, f"=Constants!{xl_rowcol_to_cell(row, MACRS_FIRST_COL, True, True)}:"
                f"{xl_rowcol_to_cell(row, MACRS_FIRST_COL - 1 + len(table), True, True)}")
    row += 1
    used = "MACRS tables above for 5, 7 and 15-year lives; straight line over the life " \
        "otherwise" if t.depreciation == "macrs" else "straight line over each life"
    ws.write_string(row, 1, f"This case's method (tax.depreciation on Inputs): {used}. Each "
                    "asset class's life is its input on Inputs (tax.mining_asset_life_years, "
                    "tax.gpu_life_years, conversion.*_life_years).", st.subtitle)
    ws.set_column(MACRS_FIRST_COL, MACRS_FIRST_COL - 1 + years, 7)


def _master_flag(ws, st, result, row: int, col: int) -> None:
    checks_sheet.write_master_flag(ws, row, col, st.subtitle,
                                   bool(result.values["checks.all_ok"][0] == 1))


def _section(ws, st, row: int, title: str, n: int) -> None:
    ws.write_string(row, 0, title, st.section)
    for c in range(1, FIRST_COL):
        ws.write_blank(row, c, None, st.section)


def section_label(section: str | None, labels: dict[str, str]) -> str:
    """A section title with its strategy's label: "hybrid: rent" -> "Hybrid: ...: rent"."""
    owner, _, rest = (section or "").partition(": ")
    return f"{labels[owner]}: {rest}" if rest and owner in labels else (section or "")


def _place(lay, fw, calc_sheets, lines_on, scalars_on) -> tuple[dict, dict]:
    """Rows of every link, value and line on the calculation sheets; returns the first
    free row of each sheet and the link keys of each sheet."""
    next_row: dict[str, int] = {}
    link_keys: dict[str, list] = {}
    for s in calc_sheets:
        row = HEADER_ROWS
        # Link rows: what this sheet's monthly formulas read from other sheets.
        keys: dict = {}
        for ln in lines_on[s]:
            if not _is_link(ln, lay, s):
                keys.update(dict.fromkeys(foreign_keys(fw, ln, s)))
        link_keys[s] = list(keys)
        if keys:
            row += 1  # section header
            for key in keys:
                lay.links[(s, key)] = row
                row += 1
            row += 1
        if scalars_on[s]:
            row += 1  # section header "Values"
            for x in scalars_on[s]:
                lay.scalar_cells[x.name] = (s, row, 2)
                row += 1
            row += 1
        section = None
        for ln in lines_on[s]:
            if ln.section != section:
                section = ln.section
                row += 1  # section header
            lay.line_rows[ln.name] = (s, row)
            row += 1
        next_row[s] = row
    return next_row, link_keys


def _helper_values(result, fw, lines_on, scalars_on, helper_of) -> dict[str, np.ndarray]:
    """The numpy values of the helper rows (parts of long formulas), for their cache."""
    if not helper_of:
        return {}
    from finmodel.engine.evaluate import _Evaluator, _month_number
    from finmodel.engine.expr import Func
    from finmodel.inputs.load import numeric_inputs

    model = result.model
    scalars, paths = numeric_inputs(result.assumptions)
    ev = _Evaluator(model, result.timeline, scalars, paths, {}, {})
    for name, v in result.values.items():
        ev.values[name] = v[:, None] if isinstance(model.nodes[name], Scalar) else v
    out = {}
    n = result.timeline.months
    with np.errstate(all="ignore"):
        for group in (scalars_on, lines_on):
            for nodes in group.values():
                for h in nodes:
                    if h.name not in helper_of:
                        continue
                    e = fw.folded(h)
                    if isinstance(e, Func) and e.name == "month_number":
                        v = _month_number(ev.eval(e.args[0], None))
                    else:
                        v = ev.eval(e, None)
                    if isinstance(h, Scalar):
                        out[h.name] = np.broadcast_to(v, (v.shape[0], 1))[:, 0]
                        ev.values[h.name] = v
                    else:
                        out[h.name] = np.broadcast_to(v, (v.shape[0], n))
                        ev.values[h.name] = out[h.name]
    return out


def _name_cell(name: str, helper_of: dict[str, str]) -> str:
    """Column D: the model name, or for a helper row the line it is part of."""
    if name not in helper_of:
        return name
    return f"part of {helper_of[name]} ({name.rsplit('~', 1)[-1]})"


def _is_link(ln: Line, lay: Layout, here: str) -> bool:
    """A line that is another sheet's line and nothing else (a link row of the model)."""
    e = ln.expr
    return isinstance(e, Ref) and isinstance(e.target, Line) and e.target.sheet != here


def _write_link_row(ws, st, lay, key, r, here, values, trows, scenario, names, model) -> None:
    """A green row that only brings another sheet's line, timeline row or value here."""
    kind, name = key
    if kind == "time":
        label, unit, sheet = TIME_LABELS[name], TIME_UNITS[name], TIMELINE_SHEET
        src_row, cells = lay.time_rows[name], None
    elif kind == "line":
        node = model.nodes[name]
        label, unit = node.label, node.unit
        sheet, src_row = lay.line_rows[name]
        cells = values[name][min(scenario, values[name].shape[0] - 1)]
    else:
        node = model.nodes[name]
        label, unit = node.label, node.unit
        sheet, src_row, col = lay.scalar_cells[name]
    owner = name.split(".", 1)[0]
    if owner in names:
        label = f"{names[owner]}: {label}"
    ws.write_string(r, 0, f"{label} (from {sheet})", st.label)
    ws.write_string(r, 1, shown_unit(unit), st.unit)
    ws.write_string(r, 3, f"link: {name}", st.name)
    fmt = st.cell(unit, "link")
    src = sheet_ref(sheet, here)
    if kind == "scalar":
        v = values[name][min(scenario, values[name].shape[0] - 1)]
        ws.write_formula(r, 2, f"={src}{xl_rowcol_to_cell(src_row, col, True, True)}", fmt,
                         _cached(float(v)))
        return
    n = lay.n_periods
    vals = ([float(t == 0) for t in range(n)] if kind == "time" and name == "first"
            else [float(v) for v in (trows[name] if kind == "time" else cells)[:n]])
    cols = [lay.col(t) for t in range(n)]
    row = f"${src_row + 1}"
    write_formula_row(ws, r, cols, [f"={src}{column_name(c)}{row}" for c in cols],
                      fmt, [_cached(v) for v in vals])


def _ref(row: int, col: int, row_abs: bool = False, col_abs: bool = False) -> str:
    """``xl_rowcol_to_cell`` (``E18``, ``$E$18``) with the column's letters made once."""
    return (f"{'$' if col_abs else ''}{column_name(col)}{'$' if row_abs else ''}"
            f"{row + 1}")


def _cached(v: float) -> float | str:
    """The cached value of a formula; a missing value is cached as Excel's #N/A."""
    return v if math.isfinite(v) else "#N/A"


def _define(wb: xlsxwriter.Workbook, name: str, ref: str) -> None:
    # An input field and a metric could map to one name (section "mining", strategy
    # "mining"); refuse rather than let one silently shadow the other.
    if any(existing[0] == name for existing in wb.defined_names):
        raise ExportError(f"the defined name {name!r} would be used twice")
    if wb.define_name(name, ref) == -1:
        raise ExportError(f"{name!r} cannot be used as a workbook defined name")


__all__ = ["export_excel"]
