"""The workbook is a live model: LibreOffice, recalculating every formula from the inputs,
reproduces every Python line and metric; viewers that never recalculate see the same
numbers; an edited input flows through."""

from __future__ import annotations

import datetime as dt
import re
import zipfile
from pathlib import Path

import numpy as np
import openpyxl
import pytest
import xlsxwriter

import finmodel
from finmodel.engine.graph import Line
from finmodel.excel.libreoffice import recalculate
from finmodel.excel.workbook import FIRST_COL
from tests.conftest import CASES, PARITY

VARIANTS = {
    # The base case at a BTC price where mining pays: IRR and payback are numbers.
    "base_profitable": ("base", {"network.btc_price_usd": 250_000.0}),
    # The AI hall re-let at the horizon (terminal value net of re-letting capex).
    "base_lease_renewal": ("base", {"valuation.terminal_method": "lease_renewal",
                                    "valuation.terminal_growth_rate": 0.02,
                                    "valuation.release_rent_share": 0.9,
                                    "valuation.release_capex_usd_per_mw": 1.5e6,
                                    "valuation.release_term_years": 8.0}),
}


def _num(v) -> float:
    if isinstance(v, dt.datetime):
        return (v - dt.datetime(1899, 12, 30)).total_seconds() / 86400
    if v is None or isinstance(v, str):  # '#N/A' and friends
        return float("nan")
    return float(v)


def read_model(path: Path, result: finmodel.Result) -> dict[str, np.ndarray]:
    """Every line (by the name in column D) and scalar of a workbook, as arrays."""
    wb = openpyxl.load_workbook(path, data_only=True)
    out: dict[str, np.ndarray] = {}
    n = result.timeline.months
    for ws in wb.worksheets:
        if ws.title in ("Summary", "Inputs", "Annual", "Timeline"):
            continue
        for row in ws.iter_rows(values_only=True):
            name = row[3] if len(row) > 3 else None
            node = result.model.nodes.get(name) if isinstance(name, str) else None
            if node is None:
                continue
            if isinstance(node, Line):
                out[name] = np.array([_num(v) for v in row[FIRST_COL:FIRST_COL + n]])
            else:
                out[name] = np.array([_num(row[2])])
            if ws.title == "Checks" and name.endswith(".value"):
                # One row per check: value (C), tolerance (E), flag (F).
                out[name.removesuffix(".value") + ".tolerance"] = np.array([_num(row[4])])
                out[name.removesuffix(".value") + ".ok"] = np.array([_num(row[5])])
    for metric in result.model.metrics():
        dn = f"{metric.strategy}_{metric.metric}"
        sheet, cell = next(iter(wb.defined_names[dn].destinations))
        out["metric:" + dn] = np.array([_num(wb[sheet][cell.replace("$", "")].value)])
    annual = wb["Annual"]
    for row in annual.iter_rows(values_only=True):
        name = row[3] if len(row) > 3 else None
        if isinstance(name, str) and name in result.model.nodes:
            out["annual:" + name] = np.array([_num(v) for v in row[FIRST_COL:]
                                              if v is not None])
    return out


def expected_values(result: finmodel.Result) -> dict[str, np.ndarray]:
    exp = {}
    for node in result.model.nodes.values():
        if node.sheet == "Summary":  # metrics: read through their defined names below
            continue
        v = result.values[node.name]
        exp[node.name] = v[0] if isinstance(node, Line) else v[:1]
    for metric in result.model.metrics():
        exp[f"metric:{metric.strategy}_{metric.metric}"] = result.values[metric.name][:1]
    for name, row in result.annual.iterrows():
        exp["annual:" + name] = row.to_numpy()
    return exp


def assert_parity(got: dict, exp: dict, rel: float, irr_rel: float) -> None:
    missing = set(exp) - set(got)
    assert not missing, f"not in the workbook: {sorted(missing)[:5]}"
    worst = []
    for name, e in exp.items():
        g = got[name]
        assert g.shape == e.shape, name
        assert np.array_equal(np.isnan(g), np.isnan(e)), f"{name}: missing values differ"
        ok = ~np.isnan(e)
        tol = irr_rel if "irr" in name else rel
        # Relative to the line's own size: a repaid loan's balance of -5e-7 USD on a
        # $528M loan is rounding noise, not a difference.
        scale = max(1.0, float(np.abs(e[ok]).max())) if ok.any() else 1.0
        err = np.abs(g[ok] - e[ok]) / np.maximum(scale, np.abs(e[ok]))
        if err.size and err.max() > tol:
            k = int(np.argmax(err))
            worst.append(f"{name}[{k}]: workbook {g[ok][k]!r} vs python {e[ok][k]!r}")
    assert not worst, "\n".join(worst[:20])


def _result(case: str) -> finmodel.Result:
    if case in VARIANTS:
        base, changes = VARIANTS[case]
        a = finmodel.with_values(finmodel.load_assumptions(f"assumptions/{base}.toml"),
                                 changes)
    else:
        a = finmodel.load_assumptions(f"assumptions/{case}.toml")
    return finmodel.run(a)


CASE_NAMES = [p.stem for p in CASES] + list(VARIANTS)


@pytest.fixture(scope="module", params=CASE_NAMES)
def exported(request, tmp_path_factory, libreoffice):
    result = _result(request.param)
    d = tmp_path_factory.mktemp(request.param)
    path = finmodel.export_excel(result, d / f"{request.param}.xlsx")
    recalculated = recalculate(path, d / "lo")
    return result, path, recalculated


def test_libreoffice_recalculation_reproduces_every_line_and_metric(exported):
    result, _, recalculated = exported
    # Each formula recalculated by LibreOffice from the Inputs sheet, against numpy.
    # IRR: LibreOffice's iteration stops at its own tolerance, looser than ours.
    assert_parity(read_model(recalculated, result), expected_values(result), PARITY, 1e-7)


def test_live_payback_and_incremental_irr_notes_say_what_python_says(exported):
    # The "Why payback is n/a" row is a formula of the payback check cell: recalculated by
    # LibreOffice it must read Python's reason, "" where payback is shown.
    result, _, recalculated = exported
    wb = openpyxl.load_workbook(recalculated, data_only=True)
    for s in result.strategies:
        sheet, cell = next(iter(wb.defined_names[f"{s}_payback_years_note"].destinations))
        got = wb[sheet][cell.replace("$", "")].value or ""
        assert got == result.reasons[f"{s}.payback_years"][0], s
        assert (got == "") == np.isfinite(result.summary.loc["payback_years", s]), s
        # The incremental IRR's note where its check refuses it (the live text is the
        # check's; a root not found is Python's own note).
        if f"{s}_incremental_irr_note" in wb.defined_names \
                and result.values[f"{s}.incremental.irr_check"][0] > 0:
            sheet, cell = next(iter(wb.defined_names[f"{s}_incremental_irr_note"]
                                    .destinations))
            assert wb[sheet][cell.replace("$", "")].value == \
                result.reasons[f"{s}.incremental_irr"][0], s


def test_cached_values_match_without_recalculation(exported):
    # What a mail preview or pandas.read_excel shows: the values stored with the formulas.
    result, path, _ = exported
    assert_parity(read_model(path, result), expected_values(result), 1e-12, 1e-12)
    frame = __import__("pandas").read_excel(path, sheet_name="Summary", header=None)
    assert frame.shape[0] > 10


def test_every_calculated_cell_is_a_formula_and_none_is_volatile(exported):
    # Values are allowed only where the workbook says a figure was solved in Python: the
    # solved metrics (by their defined names) and the table of conversion start months.
    result, path, _ = exported
    wb = openpyxl.load_workbook(path)
    solved = set()
    for m in result.model.metrics():
        if m.solved:
            sheet, cell = next(iter(wb.defined_names[f"{m.strategy}_{m.metric}"].destinations))
            solved.add((sheet, cell.replace("$", "")))
    # The Tax inputs block's depreciation tables are input cells (named, read by formulas).
    for name, dn in wb.defined_names.items():
        if name.startswith("tax_macrs_"):
            sheet, cells = next(iter(dn.destinations))
            for row in wb[sheet][cells.replace("$", "")]:
                solved.update((sheet, c.coordinate) for c in row)
    formulas = 0
    for ws in wb.worksheets:
        if ws.title in ("Inputs", "Snapshot"):  # inputs, and their hidden copy at export
            continue
        timing_from = None
        for row in ws.iter_rows():
            if ws.title == "Comparison" and isinstance(row[0].value, str) and \
                    row[0].value.startswith("Value of converting by start month"):
                timing_from = row[0].row
            for c in row[FIRST_COL - 2:] if ws.title in ("Summary", "Comparison") else \
                    row[FIRST_COL:]:
                if c.value is None:
                    continue
                if isinstance(c.value, (int, float)):
                    ok = (ws.title, c.coordinate) in solved or (
                        timing_from is not None and c.row > timing_from)
                    assert ok, f"{ws.title}!{c.coordinate} holds a pasted number"
                if isinstance(c.value, str) and c.value.startswith("="):
                    formulas += 1
                    assert not re.search(r"\b(OFFSET|INDIRECT|NOW|TODAY|RAND)\(", c.value)
    n = result.timeline.months
    assert formulas >= len(result.model.lines) * n


def test_inputs_and_metrics_have_defined_names(exported):
    result, path, _ = exported
    wb = openpyxl.load_workbook(path)
    names = set(wb.defined_names)
    from finmodel.inputs.load import input_fields

    for f in input_fields(result.assumptions):
        assert f.defined_name in names
        assert f.defined_name == f.path.replace(".", "_")
    for m in result.model.metrics():
        dn = f"{m.strategy}_{m.metric}"
        sheet, cell = next(iter(wb.defined_names[dn].destinations))
        value = wb[sheet][cell.replace("$", "")].value
        if m.solved:
            assert not (isinstance(value, str) and value.startswith("="))
        else:
            assert isinstance(value, str) and value.startswith("="), dn
    assert "mining_npv_usd" in names and "network_block_height" in names


def test_summary_carries_the_stamp(exported):
    result, path, _ = exported
    ws = openpyxl.load_workbook(path)["Summary"]
    stamp = {ws.cell(r, 1).value: ws.cell(r, 2).value for r in range(3, 8)}
    assert stamp["finmodel version"] == finmodel.__version__
    src = result.assumptions._source
    if src is not None:
        assert stamp["Case file"] == src.name
        assert stamp["Case file SHA-256"] == src.sha256
    # The fixture may have run before midnight: the run date is today or the day before.
    today = dt.date.today()
    assert stamp["Run date"] in {today.isoformat(), (today - dt.timedelta(days=1)).isoformat()}


def test_an_edited_input_cell_flows_through_to_npv(tmp_path, libreoffice):
    # Change the BTC price on the Inputs sheet, let LibreOffice recalculate, and compare
    # with Python's run of the same change.
    a = finmodel.load_assumptions("assumptions/base.toml")
    path = finmodel.export_excel(finmodel.run(a), tmp_path / "base.xlsx")
    wb = openpyxl.load_workbook(path)
    sheet, cell = next(iter(wb.defined_names["network_btc_price_usd"].destinations))
    wb[sheet][cell.replace("$", "")].value = 123_456.0
    sheet, cell = next(iter(wb.defined_names["power_ppa_price_usd_per_mwh"].destinations))
    wb[sheet][cell.replace("$", "")].value = 33.0
    wb.save(tmp_path / "edited.xlsx")
    lo = recalculate(tmp_path / "edited.xlsx", tmp_path / "lo")
    changed = finmodel.run(finmodel.with_values(a, {"network.btc_price_usd": 123_456.0,
                                                    "power.ppa_price_usd_per_mwh": 33.0}))
    got = openpyxl.load_workbook(lo, data_only=True)
    sheet, cell = next(iter(got.defined_names["mining_npv_usd"].destinations))
    npv = got[sheet][cell.replace("$", "")].value
    expected = changed.summary.loc["npv_usd", "mining"]
    assert expected != pytest.approx(finmodel.run(a).summary.loc["npv_usd", "mining"])
    assert npv == pytest.approx(expected, rel=PARITY)


def test_libreoffice_really_recalculates(tmp_path, libreoffice):
    # Without the forced recalculation LibreOffice would keep the cached 5.
    path = tmp_path / "stale.xlsx"
    wb = xlsxwriter.Workbook(path)
    wb.add_worksheet().write_formula("A1", "=1+1", None, 5)
    wb.close()
    lo = recalculate(path, tmp_path / "lo")
    assert openpyxl.load_workbook(lo, data_only=True).active["A1"].value == 2


def test_text_from_the_case_file_never_becomes_a_formula(tmp_path):
    from tests.conftest import small

    a = small(case={"name": '=HYPERLINK("http://example.com","click")'})
    path = finmodel.export_excel(finmodel.run(a, breakevens=False), tmp_path / "t.xlsx")
    with zipfile.ZipFile(path) as z:
        sheets = "".join(z.read(n).decode() for n in z.namelist()
                         if n.startswith("xl/worksheets/"))
    # The printed header repeats the case name as header text, which is never evaluated.
    sheets = re.sub(r"<headerFooter>.*?</headerFooter>", "", sheets)
    assert "HYPERLINK" not in sheets  # not a formula anywhere; it lives in sharedStrings
    ws = openpyxl.load_workbook(path)["Inputs"]
    cell = next(c for row in ws.iter_rows() for c in row if c.value and
                str(c.value).startswith("=HYPERLINK"))
    assert cell.data_type == "s"


def test_a_failed_export_leaves_nothing_behind(tmp_path, monkeypatch):
    from finmodel.excel import workbook

    def boom(*args, **kwargs):
        Path(args[1]).write_bytes(b"half a workbook")
        raise RuntimeError("disk full")

    monkeypatch.setattr(workbook, "_write", boom)
    a = finmodel.load_assumptions("assumptions/base.toml")
    with pytest.raises(RuntimeError):
        finmodel.export_excel(finmodel.run(a, breakevens=False), tmp_path / "x.xlsx")
    assert list(tmp_path.iterdir()) == []


def test_npv_bridge_sums_to_the_npv_difference_after_recalculation(exported):
    # The workbook's bridge steps, recalculated by LibreOffice, add up to the value of
    # converting it recalculates, strategy by strategy.
    result, path, recalculated = exported
    got = read_model(recalculated, result)
    for s in result.strategies:
        if s == "mining":
            continue
        steps = [v[0] for k, v in got.items()
                 if k.startswith(f"metric:{s}_bridge_") and k.endswith("_usd")]
        diff = got[f"metric:{s}_npv_vs_mining_usd"][0]
        assert len(steps) == 9
        assert sum(steps) == pytest.approx(diff, rel=1e-9, abs=1e-3)


# XlsxWriter's own output is the reference for the export's formula fast path: the same
# formulas written with and without it must give byte-identical sheet XML.
SAMPLE_FORMULAS = [
    "=1+2", "=Inputs!$D$5*(1-'Cash Flow'!E7)", "=IF(E5>0,MIN(E6,E7),-E8)",
    "=SUM($E$18:CZ18)", "=NPV(case_discount_rate,$E$9:$FZ$9)", "=IFERROR(E5/E6,NA())",
    "=INDEX(mining_fleet,E3)", "=SUMIF(Timeline!$E$12:$FZ$12,E$4,$E$9:$FZ$9)",
    '=IF(A1="FILTER(",1,0)',  # a dynamic function name inside a string
    "=XLOOKUP(A1,B1:B9,C1:C9)", "=SINGLE(A1)", "=FILTER(A1:A9,B1:B9>0)",
    "=_xlfn.SEC(1)", "=SORTBY(A1:A3,B1:B3)", "=LET(x,1,x)", "=STDEV.S(A1:A3)",
    "=XINGLE(A1)",  # XlsxWriter's pattern \SINGLE\( rewrites this too
]


def _sheet_xml(tmp_path: Path, name: str, fast: bool, options: dict) -> bytes:
    from finmodel.excel.workbook import _fast_formulas

    path = tmp_path / f"{name}.xlsx"
    wb = xlsxwriter.Workbook(str(path), options)
    ws = wb.add_worksheet()
    if fast:
        _fast_formulas(ws)
    for i, f in enumerate(SAMPLE_FORMULAS):
        ws.write_formula(i, 0, f, None, float(i))
    ws.write_array_formula(0, 2, 2, 2, "{=SUM(A1:A3*B1:B3)}")
    wb.close()
    with zipfile.ZipFile(path) as z:
        return z.read("xl/worksheets/sheet1.xml")


@pytest.mark.parametrize("options", [{}, {"use_future_functions": True}])
def test_formula_fast_path_writes_xlsxwriters_own_xml(tmp_path, options):
    fast = _sheet_xml(tmp_path, "fast", True, options)
    own = _sheet_xml(tmp_path, "own", False, options)
    assert fast == own
    assert b"<f>IF(E5&gt;0,MIN(E6,E7),-E8)</f>" in fast
    assert b"_xlfn._xlws.FILTER(" in fast and b"_xlfn.XLOOKUP(" in fast


# Rows written at once by fastxml.write_formula_row, against XlsxWriter's write_formula
# cell by cell: escaping, a cell without a format, boolean, text, error and missing
# values, a row with a dynamic-array function (handed back to XlsxWriter), a row past the
# last column.
SAMPLE_ROWS = [
    (["=E5&\"<x>\"", "=IF(F5>0,F6,G7)", '=IF(A1="FILTER(",1,0)', "=-$E$3"],
     "fmt", [1.5, -0.0, 1e300, 3.0]),
    (["=1", "=2", "=3", "=4"], None, [1.0, 2.0, 3.0, 4.0]),
    (["=A1>0", "=B1", "=C1", "=D1"], "fmt", [True, "#N/A", "text", float("nan")]),
    (["=SUM(A1:A3)", "=SORT(A1:A3)", "=A1", "=_xlfn.SEC(1)"], "fmt", [1.0, 2.0, 3.0, 4.0]),
    (["=XINGLE(A1)", "=A2", "=A3", "=A4"], "fmt", [0.0, 0.0, 0.0, 0.0]),
    # Values met again (their text is kept), and zeros of both signs (one key).
    (["=A1", "=A2", "=A3", "=A4", "=A5"], "fmt", [0.0, -0.0, 2.5, 2.5, -0.0]),
    (["=1", "=2"], "fmt", [1.0, 2.0]),  # at the last columns
]


def _rows_xml(tmp_path: Path, name: str, fast: bool, options: dict) -> bytes:
    from finmodel.excel.fastxml import fast_formulas, write_formula_row

    path = tmp_path / f"{name}.xlsx"
    wb = xlsxwriter.Workbook(str(path), options)
    fmt = wb.add_format({"num_format": "0.00"})
    ws = wb.add_worksheet()
    if fast:
        fast_formulas(ws)
    for r, (formulas, f, values) in enumerate(SAMPLE_ROWS):
        fm = fmt if f else None
        last = r == len(SAMPLE_ROWS) - 1
        cols = range(16383, 16385) if last else range(4, 4 + len(formulas))
        if fast:
            write_formula_row(ws, r, cols, formulas, fm, values)
        else:
            for c, formula, v in zip(cols, formulas, values):
                ws.write_formula(r, c, formula, fm, v)
    ws.write_number(10, 2, 7.0, fmt)
    ws.write_string(10, 3, "a & b", fmt)
    ws.set_row(1, 18)  # a row of formulas with a height, an empty one with a format
    ws.set_row(12, None, fmt)
    ws.write_comment(14, 1, "a comment on an empty row")
    wb.close()
    with zipfile.ZipFile(path) as z:
        return z.read("xl/worksheets/sheet1.xml")


@pytest.mark.parametrize("options", [{}, {"use_future_functions": True},
                                     {"nan_inf_to_errors": True}])
def test_formula_rows_write_xlsxwriters_own_xml(tmp_path, options):
    fast = _rows_xml(tmp_path, "fast", True, options)
    own = _rows_xml(tmp_path, "own", False, options)
    assert fast == own
    assert b'<f>E5&amp;"&lt;x&gt;"</f><v>1.5</v>' in fast
    assert b"<f>A1</f><v>0.0</v>" in fast and b"<f>A5</f><v>-0.0</v>" in fast
    assert fast.count(b'<c r="XF') == 1  # the last column written, the one past refused


def test_row_spans_are_xlsxwriters_own(tmp_path):
    # Cells and comments scattered over blocks of 16 rows, some blocks empty, a comment
    # alone in its block, the dimensions narrowed after writing (a cell outside them).
    from finmodel.excel.fastxml import row_spans

    rng = np.random.default_rng(7)
    wb = xlsxwriter.Workbook(str(tmp_path / "s.xlsx"))
    ws = wb.add_worksheet()
    for r, c in zip(rng.integers(2, 200, 300), rng.integers(1, 60, 300)):
        if 64 <= r < 96:
            continue
        ws.write_number(int(r), int(c), 1.0)
    ws.write_comment(70, 3, "alone in its block")
    ws.write_comment(5, 61, "right of every cell")
    ws.write_comment(210, 0, "below every cell")
    ws.write_number(150, 58, 2.0)
    ws.dim_colmax = 57  # a cell outside the dimensions does not widen a span
    expected = ws._calculate_spans() or ws.row_spans
    assert len(expected) > 8
    assert row_spans(ws) == expected
    wb.close()


def test_fast_path_knows_every_function_xlsxwriter_rewrites():
    import inspect

    from xlsxwriter.worksheet import Worksheet

    from finmodel.excel.workbook import DYNAMIC_FUNCTIONS

    src = inspect.getsource(Worksheet._prepare_formula)
    always = src.split("use_future_functions")[0]  # rewritten even with them off
    names = set(re.findall(r'r"\\b([A-Z][A-Z0-9.]*)\\\(', always))
    assert len(names) > 20
    assert names <= set(DYNAMIC_FUNCTIONS)
    assert re.findall(r'r"\\([A-Z]+)\\\(', always) == ["SINGLE"]  # the \S pattern


def test_line_templates_render_every_cell_as_cell_by_cell_rendering():
    from finmodel.excel.formulas import FormulaWriter, Layout

    result = finmodel.run(finmodel.load_assumptions("assumptions/base.toml"), breakevens=False)
    n = result.timeline.months
    lay = Layout(FIRST_COL, n)
    lay.time_rows = {k: 6 + i for i, k in enumerate(("start", "end", "days", "index",
                                                   "year", "model_year"))}
    for i, ln in enumerate(result.model.lines):
        lay.line_rows[ln.name] = ("Sheet" if i % 2 else "Other sheet", 7 + i)
    for i, x in enumerate(result.model.scalars):
        lay.scalar_cells[x.name] = ("Values", 7 + i, 2)
    fw = FormulaWriter(lay, result.model.lines)
    for ln in result.model.lines:
        assert fw.line_cells(ln) == [fw.line_cell(t, ln) for t in range(n)], ln.name


# Sheet names that put what XlsxWriter rewrites into every formula reading them: a
# dynamic-array function's call, INGLE( and an _xlfn. prefix (quoted sheet names may hold
# them); the first is the plain case.
@pytest.mark.parametrize("other", ["Other sheet", "Wrap SORT(x)", "Is SINGLE(", "_xlfn.X"])
def test_template_rows_write_xlsxwriters_own_xml(tmp_path, other):
    # write_formula_row scans a RowFormulas' short text instead of its formulas: every row
    # of the base model, written from line_cells, is the XML XlsxWriter writes for the
    # same formulas cell by cell, with and without something it rewrites.
    from finmodel.excel.fastxml import RowFormulas, fast_formulas, write_formula_row
    from finmodel.excel.formulas import FormulaWriter, Layout

    result = finmodel.run(finmodel.load_assumptions("assumptions/base.toml"), breakevens=False)
    n = result.timeline.months
    lay = Layout(FIRST_COL, n)
    lay.time_rows = {k: 6 + i for i, k in enumerate(("start", "end", "days", "index",
                                                   "year", "model_year", "first"))}
    for i, ln in enumerate(result.model.lines):
        lay.line_rows[ln.name] = ("Sheet" if i % 2 else other, 14 + i)
    for i, x in enumerate(result.model.scalars):
        lay.scalar_cells[x.name] = ("Values", 7 + i, 2)
    fw = FormulaWriter(lay, result.model.lines)
    rows = [fw.line_cells(ln) for ln in result.model.lines]
    assert sum(type(r) is RowFormulas for r in rows) > 0.9 * len(rows)
    xml = {}
    for fast in (True, False):
        path = tmp_path / f"{fast}.xlsx"
        wb = xlsxwriter.Workbook(str(path))
        fmt = wb.add_format({"num_format": "0.00"})
        ws = wb.add_worksheet("Sheet")
        if fast:
            fast_formulas(ws)
        for r, formulas in enumerate(rows):
            values = [float(t) for t in range(n)]
            if fast:
                write_formula_row(ws, r, range(FIRST_COL, FIRST_COL + n), formulas, fmt,
                                  values)
            else:
                for t, (f, v) in enumerate(zip(formulas, values)):
                    ws.write_formula(r, FIRST_COL + t, f, fmt, v)
        wb.close()
        with zipfile.ZipFile(path) as z:
            xml[fast] = z.read("xl/worksheets/sheet1.xml")
    assert xml[True] == xml[False]
    if other == "Wrap SORT(x)":
        assert b"_xlfn._xlws.SORT(x)" in xml[True]  # XlsxWriter rewrote the name
    if other == "Is SINGLE(":
        assert b"_xlfn.SINGLE(" in xml[True]


def test_formulas_grow_linearly_with_the_horizon(tmp_path):
    # Running sums, not prefix sums; Annual over each year's own months. The values are
    # LibreOffice's (test_libreoffice_recalculation_reproduces_every_line_and_metric).
    a = finmodel.load_assumptions("assumptions/base.toml")
    path = finmodel.export_excel(finmodel.run(a, breakevens=False), tmp_path / "b.xlsx")
    wb = openpyxl.load_workbook(path)
    rows = {(ws.title, row[3].value): row for ws in wb.worksheets for row in ws.iter_rows()
            if len(row) > FIRST_COL and isinstance(row[3].value, str)}
    cum = rows["Cash Flow", "mining.cumulative_fcf_usd"]
    fcf = rows["Cash Flow", "mining.unlevered_fcf_usd"]
    # Previous month's running sum + this month's cash flow; one formula across the row
    # (FAST), the first month's "previous cell" left unread by the first-month flag.
    second = cum[FIRST_COL + 1].value
    assert second.startswith("=IF(") and second.endswith(
        f",0,{cum[FIRST_COL].coordinate})+{fcf[FIRST_COL + 1].coordinate}")
    for name in ("mining.cumulative_fcf_usd", "mining.paid_back"):
        assert not any("SUM(" in c.value for c in rows["Cash Flow", name][FIRST_COL:]), name
    annual = [c.value for c in rows["Annual", "network.blocks"][FIRST_COL:] if c.value]
    blocks = rows["Network", "network.blocks"]
    # 2026 (the case starts in January) is the first twelve months of blocks mined.
    assert annual[0] == f"=SUM('Network'!{blocks[FIRST_COL].coordinate}:" \
        f"{blocks[FIRST_COL + 11].coordinate})"
    every = [c.value for row in wb["Annual"].iter_rows() for c in row
             if isinstance(c.value, str) and c.value.startswith("=")]
    assert not any("SUMIF(" in f or "MATCH(" in f for f in every)


def test_fourteen_construction_phases_export_and_libreoffice_agrees(tmp_path, libreoffice):
    # 14 phases a month apart (a fuzzed case): the depreciation's long sum was split into
    # a helper row that also stood in a shift's month count, which must be a single value
    # ("used where a single value is needed"). The split now leaves the count alone.
    shares = [0.07] * 13 + [1 - 0.07 * 13]
    a = finmodel.with_values(finmodel.load_assumptions("assumptions/base.toml"),
                             {"hosting.phase_it_shares": shares,
                              "hosting.phase_ready_months": list(range(1, 15))})
    result = finmodel.run(a, breakevens=False)
    path = finmodel.export_excel(result, tmp_path / "fourteen_phases.xlsx")
    placed = result.values["hybrid.conversion.placed_share"][0]
    assert placed.sum() == pytest.approx(1.0)
    recalculated = recalculate(path, tmp_path / "lo")
    assert_parity(read_model(recalculated, result), expected_values(result), PARITY, 1e-7)


def test_three_construction_phases_one_row_each_and_libreoffice_agrees(tmp_path, libreoffice):
    # Any number of phases: a lease hybrid, a full conversion and a GPU cloud hall built
    # in three phases. Each phase has rows of its own (ready, placed in service, GPUs
    # bought, contract value); the totals read them, so no formula grows with the phase
    # count (none over the FAST limit), and LibreOffice recalculates every line, the
    # per-phase rows included, to Python's values.
    from finmodel.excel.hygiene import MAX_CHARS, scan

    shares, ready = [0.25, 0.35, 0.4], [6, 12, 18]
    a = finmodel.with_values(finmodel.load_assumptions("assumptions/bitdeer_hybrid.toml"),
                             {"hosting.phase_it_shares": shares,
                              "hosting.phase_ready_months": ready})
    result = finmodel.run(a)
    path = finmodel.export_excel(result, tmp_path / "three_phases.xlsx")
    wb = openpyxl.load_workbook(path)
    names = {c.value for ws in wb.worksheets for c in ws["D"] if isinstance(c.value, str)}
    for k in (1, 2, 3):
        for s in ("hybrid", "ai_hosting", "cloud_hybrid"):
            assert f"{s}.hosting.phase_{k}_ready_share" in names
            assert f"{s}.conversion.phase_{k}_placed_share" in names
        assert f"cloud_hybrid.cloud.phase_{k}_gpus_bought_share" in names
    assert "hybrid.hosting.first_ready_months_to_phase_3" in names
    longest = max(len(c.value) for ws in wb.worksheets if ws.title not in ("Summary", "Cover")
                  for row in ws.iter_rows() for c in row
                  if isinstance(c.value, str) and c.value.startswith("="))
    assert longest <= MAX_CHARS
    assert not scan(path)
    # Hand check of one per-phase row: phase 2 (35 %) is ready 12 months after the
    # conversion starts and stays ready.
    start = int(result.values["hybrid.hosting.conversion_start_index"][0])
    row = result.values["hybrid.hosting.phase_2_ready_share"][0]
    assert row[start + 11] == 0 and row[start + 12] == shares[1] and row[-1] == shares[1]
    placed = result.values["hybrid.conversion.placed_share"][0]
    assert placed.sum() == pytest.approx(1.0)
    assert [placed[start + m] for m in ready] == pytest.approx(shares)
    recalculated = recalculate(path, tmp_path / "lo")
    assert_parity(read_model(recalculated, result), expected_values(result), PARITY, 1e-7)
