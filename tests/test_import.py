"""finmodel import: an edited workbook read back into a validated case, and refused when it
is not a finmodel export, when a structural input was edited, when a value breaks the
schema, or when the file is hostile."""

from __future__ import annotations

import io
import time
import zipfile

import numpy as np
import openpyxl
import pytest
import xlsxwriter

import finmodel
from finmodel.cli import main
from finmodel.errors import InputError
from finmodel.inputs.workbook_import import read_workbook
from tests.lo_session import CalcSession
from tests.xlsx_edit import defined_cell, sheet_parts, write_cells


@pytest.fixture(scope="module")
def base_book(tmp_path_factory):
    a = finmodel.load_assumptions("assumptions/base.toml")
    d = tmp_path_factory.mktemp("import")
    return a, finmodel.export_excel(finmodel.run(a, breakevens=False), d / "base.xlsx")


def _summary(r) -> dict:
    return {(m.strategy, m.metric): float(r.values[m.name][0]) for m in r.model.metrics()
            if not m.solved}


def test_edited_in_libreoffice_imports_and_reruns_as_the_changed_case(base_book, tmp_path,
                                                                       libreoffice):
    a, book = base_book
    wb = openpyxl.load_workbook(book)
    ws = wb["Inputs"]
    rows = {ws.cell(r, 1).value: r for r in range(1, ws.max_row + 1)}
    base_col = next(c for c in range(1, ws.max_column + 1) if ws.cell(4, c).value == "base")
    bull_col = next(c for c in range(1, ws.max_column + 1) if ws.cell(4, c).value == "bull")
    with CalcSession(libreoffice, book) as lo:
        lo.set(*defined_cell(book, "power_ppa_price_usd_per_mwh"), 45.5)
        lo.set(*defined_cell(book, "power_pricing"), "indexed")
        lo.set(*defined_cell(book, "conversion_draw_curve"), "even")
        lo.set(*defined_cell(book, "mining_economic_curtailment"), 0.0)
        lo.set(*defined_cell(book, "hosting_phase_ready_months"), 10.0)  # first element
        # A scenario-changed input: its base column, and the bull scenario's value.
        lo.set("Inputs", ws.cell(rows["network_btc_price_usd"], base_col).coordinate,
               95_000.0)
        lo.set("Inputs", ws.cell(rows["network_btc_price_usd"], bull_col).coordinate,
               140_000.0)
        # A month: the conversion of ai_hosting starts in September 2026 instead of July.
        import datetime as dt

        from finmodel.conventions import to_serial

        lo.set(*defined_cell(book, "strategies_ai_hosting_conversion_start_month"),
               float(to_serial(dt.date(2026, 9, 1))))
        lo.recalculate()
        edited = lo.save_as(tmp_path / "edited.xlsx")
        npv_lo = lo.get(*defined_cell(book, "ai_hosting_npv_usd"))
    got, changes = read_workbook(edited)
    expected = {
        "power.ppa_price_usd_per_mwh": 45.5, "power.pricing": "indexed",
        "conversion.draw_curve": "even", "mining.economic_curtailment": False,
        "hosting.phase_ready_months": [10, 18], "network.btc_price_usd": 95_000.0,
        "strategies.ai_hosting.conversion_start_month": "2026-09",
    }
    assert {c.path: c.new for c in changes} == {
        **expected, "analysis.scenarios.bull.network.btc_price_usd": 140_000.0}
    assert {c.path: c.old for c in changes}["power.pricing"] == "fixed"
    changed = finmodel.with_values(a, {**expected, "analysis.scenarios": {
        **a.analysis.scenarios, "bull": {**a.analysis.scenarios["bull"],
                                         "network.btc_price_usd": 140_000.0}}})
    assert got.model_dump() == changed.model_dump()
    rerun = finmodel.run(got, breakevens=False)
    np.testing.assert_equal(_summary(rerun), _summary(finmodel.run(changed, breakevens=False)))
    # ... and the workbook LibreOffice recalculated says the same.
    assert npv_lo == pytest.approx(rerun.summary.loc["npv_usd", "ai_hosting"], rel=1e-9)


def test_cli_import_writes_a_case_file_and_run_takes_the_workbook(base_book, tmp_path,
                                                                 capsys):
    a, book = base_book
    edited = write_cells(book, tmp_path / "e.xlsx",
                         {defined_cell(book, "hosting_lease_escalator_rate"): 0.025})
    assert main(["import", str(edited), "-o", str(tmp_path / "case.toml")]) == 0
    out = capsys.readouterr().out
    assert "hosting.lease_escalator_rate: 0.03 -> 0.025" in out
    back = finmodel.load_assumptions(tmp_path / "case.toml")
    assert back.model_dump() == finmodel.with_values(
        a, {"hosting.lease_escalator_rate": 0.025}).model_dump()
    assert main(["run", str(edited), "--json", str(tmp_path / "s.json")]) == 0
    assert "1 input(s) changed" in capsys.readouterr().out


def _refused(path, *words) -> str:
    with pytest.raises(InputError) as err:
        read_workbook(path)
    for w in words:
        assert w in str(err.value)
    return str(err.value)


def test_refuses_a_structural_edit(base_book, tmp_path):
    _, book = base_book
    edited = write_cells(book, tmp_path / "s.xlsx",
                         {defined_cell(book, "case_horizon_years"): 10.0})
    _refused(edited, "case.horizon_years", "structural", "15 -> 10", "re-run finmodel")
    edited = write_cells(book, tmp_path / "k.xlsx",
                         {defined_cell(book, "strategies_hybrid_kind"): "mining"})
    _refused(edited, "strategies.hybrid.kind", "structural")


def test_refuses_edited_tax_tables(tmp_path):
    # The MACRS rates are live input-styled cells on Constants (the Tax sheet reads them);
    # an import used to drop an edit to them silently, re-running a different model.
    a = finmodel.load_assumptions("assumptions/bitdeer_convertible_hybrid.toml")  # has [tax]
    a = a.model_copy(update={"case": a.case.model_copy(update={"horizon_years": 3})})
    book = finmodel.export_excel(finmodel.run(a, breakevens=False), tmp_path / "tax.xlsx")
    sheet, cell = defined_cell(book, "tax_macrs_5_year_rates")  # year 1: 20.00 % [Pub 946]
    edited = write_cells(book, tmp_path / "t.xlsx", {(sheet, cell): 0.25})
    _refused(edited, "Constants: tax_macrs_5_year_rates edited", "year 1: 0.2 -> 0.25",
             "restore them")
    same = write_cells(book, tmp_path / "u.xlsx", {(sheet, cell): 0.2})  # re-typed as is
    assert read_workbook(same)[1] == []


def test_refuses_values_that_break_the_schema(base_book, tmp_path, capsys):
    _, book = base_book
    pue = write_cells(book, tmp_path / "p.xlsx", {defined_cell(book, "power_pue"): 5.0})
    _refused(pue, "power.pue", "less than or equal to 3", "5.0")
    typo = write_cells(book, tmp_path / "t.xlsx", {defined_cell(book, "power_pricing"):
                                                   "indexd"})
    _refused(typo, "power.pricing", "indexd")
    text = write_cells(book, tmp_path / "x.xlsx", {defined_cell(book, "site_mining_it_mw"):
                                                   "lots"})
    _refused(text, "site.mining_it_mw", "expected a number")
    # Cross-field: 99 MW of mining at PUE 1.05 oversubscribes the 100 MW interconnect.
    big = write_cells(book, tmp_path / "b.xlsx", {defined_cell(book, "site_mining_it_mw"):
                                                  99.0})
    _refused(big, "site.mining_it_mw", "exceeds site.interconnect_mw")
    assert main(["import", str(big), "-o", str(tmp_path / "no.toml")]) == 2
    assert not (tmp_path / "no.toml").exists()
    assert "Traceback" not in capsys.readouterr().err


def test_refuses_a_workbook_finmodel_did_not_write(tmp_path):
    plain = tmp_path / "plain.xlsx"
    wb = xlsxwriter.Workbook(plain)
    wb.add_worksheet("Inputs").write("A1", "Inputs")
    wb.close()
    _refused(plain, "not a finmodel workbook")
    (tmp_path / "text.xlsx").write_text("hello")
    _refused(tmp_path / "text.xlsx", "not an xlsx workbook")


# --- hostile files: refused before any XML is expanded, quickly ------------------------

def _quick(path, *words) -> None:
    t0 = time.perf_counter()
    _refused(path, *words)
    assert time.perf_counter() - t0 < 5.0


def test_refuses_a_billion_laughs(base_book, tmp_path):
    _, book = base_book
    laughs = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
              + "".join(f'<!ENTITY lol{i} "{("&lol%s;" % (i - 1 if i > 1 else "")) * 10}">'
                        for i in range(1, 10))
              + ']><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
              '<si><t>&lol9;</t></si></sst>')
    out = tmp_path / "laughs.xlsx"
    with zipfile.ZipFile(book) as zin, zipfile.ZipFile(out, "w") as zout:
        for item in zin.infolist():
            data = laughs.encode() if item.filename == "xl/sharedStrings.xml" else \
                zin.read(item.filename)
            zout.writestr(item, data)
    _quick(out, "DOCTYPE")


def test_refuses_a_zip_bomb(tmp_path):
    out = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/worksheets/sheet1.xml", b"\0" * 60_000_000)
    assert out.stat().st_size < 200_000
    _quick(out, "zip bomb")


@pytest.mark.parametrize("dimension, words", [
    ('<dimension ref="A1:A1000000"/>', ("no row for",)),  # read no further than needed
    ("", ("no dimension record",)),  # sizing it would mean scanning a million rows
])
def test_refuses_a_huge_sheet_quickly(base_book, tmp_path, dimension, words):
    # A finmodel workbook whose Inputs sheet is a million rows long.
    _, book = base_book
    part = sheet_parts(book)["Inputs"]
    rows = io.StringIO()
    rows.write('<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.'
               f'openxmlformats.org/spreadsheetml/2006/main">{dimension}<sheetData>')
    for r in range(1, 1_000_001):
        rows.write(f'<row r="{r}"><c r="A{r}"><v>{r}</v></c></row>')
    rows.write("</sheetData></worksheet>")
    out = tmp_path / "huge.xlsx"
    with zipfile.ZipFile(book) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for item in zin.infolist():
            z.writestr(item, rows.getvalue().encode() if item.filename == part
                       else zin.read(item.filename))
    _quick(out, *words)
