"""The workbook as an investor receives it: it prints (LibreOffice PDF export) in few,
readable pages with headers and footers, and readers see labels and units, not code
names."""

from __future__ import annotations

import re
import zipfile

import openpyxl
import pypdf
import pytest

import finmodel
from finmodel.excel.hygiene import scan, typed_numbers
from finmodel.excel.libreoffice import recalculate, to_pdf
from finmodel.excel.printing import MIN_PRINT_SCALE, YEARS_PER_PRINT_BLOCK
from finmodel.excel.workbook import FIRST_COL
from tests.conftest import CASES, ROOT

MAX_BASE_PAGES = 60  # the target for the base workbook


@pytest.fixture(scope="module")
def base_workbook(tmp_path_factory):
    result = finmodel.run(finmodel.load_assumptions(ROOT / "assumptions" / "base.toml"))
    d = tmp_path_factory.mktemp("print")
    return result, finmodel.export_excel(result, d / "base.xlsx")


@pytest.fixture(scope="module")
def base_pdf(base_workbook, libreoffice, tmp_path_factory):
    _, path = base_workbook
    return pypdf.PdfReader(to_pdf(path, tmp_path_factory.mktemp("pdf")))


def _sheet_of(page) -> str:
    # The header's centre is the sheet name; its first line reads "<case> <sheet> Run <date>".
    first = (page.extract_text() or "").split("\n")[0]
    m = re.search(r"\) (.+) Run \d{4}-\d\d-\d\d$", first)
    return m.group(1) if m else first


def test_base_workbook_prints_in_at_most_60_pages(base_workbook, base_pdf):
    result, path = base_workbook
    pages = base_pdf.pages
    assert len(pages) <= MAX_BASE_PAGES
    by_sheet: dict[str, int] = {}
    for p in pages:
        s = _sheet_of(p)
        by_sheet[s] = by_sheet.get(s, 0) + 1
    # Every sheet prints, each under its own header.
    wb = openpyxl.load_workbook(path)
    assert set(by_sheet) == {ws.title for ws in wb.worksheets if ws.sheet_state == "visible"}
    # A monthly sheet prints in blocks of whole years across: 15 years in blocks of 3 -> 5
    # page columns; the Network sheet is short enough for one page down.
    years = result.timeline.months // 12
    assert by_sheet["Network"] == -(-years // YEARS_PER_PRINT_BLOCK)
    # Page x of y in every footer, the case name in every header.
    n = len(pages)
    for i in (0, n - 1):
        text = pages[i].extract_text()
        assert f"Page {i + 1} of {n}" in text
        assert result.assumptions.case.name in text


def test_a_monthly_page_holds_whole_years(base_pdf):
    # The first Network page shows January of the first year to December of the third.
    page = next(p for p in base_pdf.pages if _sheet_of(p) == "Network")
    text = page.extract_text()
    assert "Jan 26" in text and "Dec 28" in text and "Jan 29" not in text


class _PrintRecorder:
    """Stands in for an XlsxWriter worksheet: records the print calls year_blocks makes."""

    def set_v_pagebreaks(self, breaks):
        self.breaks = breaks

    def set_paper(self, paper):
        self.paper = paper

    def set_print_scale(self, scale):
        self.scale = scale


@pytest.mark.parametrize("n_rows, scale", [(30, 54), (273, 46), (400, 47)])
def test_a_long_monthly_sheet_prints_on_fewer_pages_down_never_below_the_floor(n_rows,
                                                                              scale):
    # Hand calculation. Width: label columns 30, 8, 9, 16 and 36 months of 6 print
    # 1.35 * (7 w + 5) px each: 622.35 + 36 * 63.45 = 2906.55 px on 16.4 in * 96 = 1574.4
    # px, so 54.17 %. Height: 11 - 2 * 0.45 = 10.1 in = 727.2 pt; an 11 pt row prints
    # 11 * 1.03 * 1.01 = 11.4433 pt; 2 title rows repeat on every page.
    # 30 rows: one page at 54 %. 273 rows: 115 rows a page at 54 % -> 3 pages down; two
    # pages need ceil(271 / 2) + 2 = 138 rows a page, 727.2 / (138 * 11.4433) = 46.05 %.
    # 400 rows: 2 pages would need 31 % (below the 45 % floor); 3 need
    # ceil(398 / 3) + 2 = 135 rows, 727.2 / (135 * 11.4433) = 47.07 %.
    from finmodel.excel.printing import year_blocks
    from finmodel.excel.workbook import LABEL_WIDTHS

    ws = _PrintRecorder()
    assert year_blocks(ws, LABEL_WIDTHS, 6, FIRST_COL, 180, n_rows) == scale
    assert ws.scale == scale >= 100 * MIN_PRINT_SCALE
    assert ws.breaks == [FIRST_COL + 36 * k for k in range(1, 5)]


def test_every_sheet_has_a_print_setup(base_workbook):
    _, path = base_workbook
    wb = openpyxl.load_workbook(path)
    for ws in wb.worksheets:
        assert ws.page_setup.orientation == "landscape", ws.title
        assert "&A" in ws.oddHeader.center.text, ws.title
        assert "Page &P of &N" in ws.oddFooter.center.text, ws.title
        if ws.title not in ("Summary", "Comparison", "Cover", "Dashboard"):
            assert ws.print_title_rows, ws.title
        if ws.max_column > FIRST_COL + 24:  # a monthly sheet
            assert ws.print_title_cols == "$A:$D", ws.title
            assert len(ws.col_breaks.brk) == 4, ws.title  # 180 months: 5 blocks of 36
            # Readable: never shrunk below the floor to save pages.
            assert ws.page_setup.scale >= 100 * MIN_PRINT_SCALE, ws.title
    assert wb["Inputs"].sheet_properties.pageSetUpPr.fitToPage
    # One page wide (XlsxWriter leaves out fitToWidth=1, the default), any number tall.
    assert wb["Inputs"].page_setup.fitToWidth in (None, 1)
    assert wb["Inputs"].page_setup.fitToHeight == 0


def test_readers_see_labels_and_units_not_code_names(base_workbook):
    result, path = base_workbook
    wb = openpyxl.load_workbook(path)
    summary = wb["Summary"]
    heads = [summary.cell(10, c).value for c in range(3, 6)]
    assert heads == ["Keep mining", "Convert to AI hosting", "Hybrid: 40 MW IT to AI"]
    npv_row = next(r for r in range(11, 30) if summary.cell(r, 1).value ==
                   "NPV at the discount rate")
    assert summary.cell(npv_row, 2).value == "USD m"
    # Money shows in millions; no format prints a trailing decimal point ("15.").
    with zipfile.ZipFile(path) as z:
        styles = z.read("xl/styles.xml").decode()
    assert "#,##0.##" not in styles
    assert "#,##0.00,,;" in summary.cell(npv_row, 3).number_format
    # Section titles name strategies by their labels, and calendar years have no comma.
    annual = wb["Annual"]
    titles = [annual.cell(r, 1).value for r in range(1, annual.max_row + 1)]
    assert "Keep mining: fleet (Mining sheet)" in titles
    assert not any(isinstance(t, str) and t.startswith("mining:") for t in titles)
    assert annual.cell(4, FIRST_COL + 1).number_format == "0"
    assert wb["Network"].cell(5, FIRST_COL + 1).number_format == "0"


@pytest.fixture(scope="module")
def base_recalculated(base_workbook, libreoffice, tmp_path_factory):
    _, path = base_workbook
    return recalculate(path, tmp_path_factory.mktemp("lo"))


def test_cover_answers_the_question_live_and_lists_every_sheet(base_workbook,
                                                               base_recalculated):
    result, path = base_workbook
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames[:2] == ["Cover", "Dashboard"]
    cover = wb["Cover"]
    # Hand check of the headline against the Python figure: 118.9M for the 40 MW hybrid.
    v = float(result.values["hybrid.npv_vs_mining"][0])
    expected = ("Hybrid: 40 MW IT to AI",
                f"is worth +${v / 1e6:,.1f}M over keeping mining (NPV at 10.0%)")
    lo = openpyxl.load_workbook(base_recalculated, data_only=True)["Cover"]
    answers = [(lo.cell(r, 1).value, lo.cell(r, 2).value) for r in range(1, 12)]
    assert expected in answers  # label, then LibreOffice's TEXT() of the live formula
    row = next(r for r in range(1, 12) if cover.cell(r, 1).value == expected[0])
    formula = cover.cell(row, 2).value  # the label stays text, out of the formula
    assert "hybrid_npv_vs_mining_usd" in formula and "case_discount_rate" in formula
    links = {c.hyperlink.location.split("!")[0].strip("'") for row in cover.iter_rows()
             for c in row if c.hyperlink is not None}
    visible = {ws.title for ws in wb.worksheets if ws.sheet_state == "visible"}
    assert links == visible - {"Cover"}


def test_dashboard_is_live_and_matches_python(base_workbook, base_recalculated):
    result, path = base_workbook
    ws = openpyxl.load_workbook(path)["Dashboard"]
    lo = openpyxl.load_workbook(base_recalculated, data_only=True)["Dashboard"]
    heads = [ws.cell(5, c).value for c in range(3, 6)]
    npv_row = next(r for r in range(6, 20) if ws.cell(r, 1).value == "NPV at the discount rate")
    for j, s in enumerate(result.strategies):
        cell = ws.cell(npv_row, 3 + j)
        assert cell.value == f'=IFERROR({s}_npv_usd,"n/a")'
        assert "#,##0.00,," in cell.number_format  # shown in USD millions
        assert lo.cell(npv_row, 3 + j).value == pytest.approx(
            float(result.values[f"{s}.npv"][0]), rel=1e-9)
    assert heads[0] == "Keep mining"
    # The mining IRR has no root: the dashboard reads n/a, not an error.
    irr_row = next(r for r in range(6, 20) if str(ws.cell(r, 1).value).startswith("Project IRR"))
    assert lo.cell(irr_row, 3).value == "n/a"
    # The BTC price among the key inputs is a link to its input cell.
    btc = next(r for r in range(1, 40) if ws.cell(r, 1).value == "Network: BTC price")
    assert ws.cell(btc, 3).value == "=network_btc_price_usd"
    assert lo.cell(btc, 3).value == result.assumptions.network.btc_price_usd


def _chart_refs(path) -> dict[str, list[frozenset[str]]]:
    """Each sheet's charts, as the set of ranges each chart's series read."""
    with zipfile.ZipFile(path) as z:
        wbx = z.read("xl/workbook.xml").decode()
        rels = z.read("xl/_rels/workbook.xml.rels").decode()
        target = dict(re.findall(r'Id="(rId\d+)"[^>]*Target="([^"]+)"', rels))
        target.update({k: v for v, k in re.findall(r'Target="([^"]+)"[^>]*Id="(rId\d+)"', rels)})
        out: dict[str, list[frozenset[str]]] = {}
        for name, rid in re.findall(r'<sheet name="([^"]+)" sheetId="\d+" r:id="(rId\d+)"',
                                    wbx):
            sheet = "xl/" + target[rid].lstrip("/").removeprefix("xl/")
            srels = sheet.replace("worksheets/", "worksheets/_rels/") + ".rels"
            if srels not in z.namelist():
                continue
            drawings = re.findall(r'Target="\.\./drawings/(drawing\d+\.xml)"',
                                  z.read(srels).decode())
            for d in drawings:
                drels = z.read(f"xl/drawings/_rels/{d}.rels").decode()
                for chart in re.findall(r'Target="\.\./charts/(chart\d+\.xml)"', drels):
                    xml = z.read(f"xl/charts/{chart}").decode()
                    out.setdefault(name, []).append(
                        frozenset(re.findall(r"<c:f>([^<]+)</c:f>", xml)))
    return out


def test_dashboard_draws_the_live_npv_bridge_of_the_best_converting_strategy(
        base_workbook, base_recalculated):
    from finmodel.models.strategies import BRIDGE, BRIDGE_TITLES

    result, path = base_workbook
    lo = openpyxl.load_workbook(base_recalculated, data_only=True)["Comparison"]
    col_a = {lo.cell(r, 1).value: r for r in range(1, lo.max_row + 1)}
    # Python's choice, by hand: the converting strategy of highest NPV.
    others = [s for s in result.strategies if s != "mining"]
    npv = {s: float(result.summary.loc["npv_usd", s]) for s in others}
    best = max(npv, key=npv.get)
    pick = col_a["Strategy shown (its column in the bridge above)"]
    assert lo.cell(pick, 3).value == others.index(best) + 1  # LibreOffice's MATCH
    assert lo.cell(pick, 4).value == "Convert to AI hosting"  # its label, not its code
    assert lo.cell(pick + 1, 3).value == \
        "NPV bridge: keep mining to Convert to AI hosting (USD m)"
    # The bars, recalculated by LibreOffice, are Python's bridge for that strategy.
    first = col_a["Keep Mining NPV"]
    bars = [lo.cell(first + i, 1).value for i in range(len(BRIDGE) + 2)]
    assert bars == ["Keep Mining NPV", *BRIDGE_TITLES.values(), "Strategy NPV"]
    want = [float(result.summary.loc["npv_usd", "mining"])] + [
        float(result.summary.loc[f"bridge_{k}_usd", best]) for k in BRIDGE] + [npv[best]]
    got = [lo.cell(first + i, 3).value for i in range(len(want))]
    assert got == pytest.approx(want, rel=1e-9, abs=1e-3)
    # Each bar's drawn parts: base + above + below span the step from the running total.
    running = 0.0
    for i, v in enumerate(want):
        r = first + i
        base, above, below = (lo.cell(r, c).value for c in (6, 7, 8))
        total = i in (0, len(want) - 1)
        start = 0.0 if total else running
        lo_, hi_ = sorted((start, start + v))
        if lo_ >= 0:  # floats above zero on a hidden base
            parts = (lo_, hi_ - lo_, 0.0)
        elif hi_ <= 0:  # hangs below zero from a hidden base
            parts = (hi_, 0.0, lo_ - hi_)
        else:  # crosses zero: one part up from zero, one down
            parts = (0.0, hi_, lo_)
        assert (base, above, below) == pytest.approx(parts, abs=1e-3), bars[i]
        up = [lo.cell(r, c).value for c in (9, 10)]
        down = [lo.cell(r, c).value for c in (11, 12)]
        if not total:
            assert (sum(up) if v >= 0 else sum(down)) == pytest.approx(abs(v), abs=1e-3)
        running = start + v
    assert running == pytest.approx(npv[best], rel=1e-9)
    # One chart implementation: the Dashboard's waterfall reads the same rows as
    # Comparison's.
    charts = _chart_refs(path)
    helper = f"Comparison!$F${first}:$F${first + len(want) - 1}"  # the hidden bases
    on_dash = [c for c in charts["Dashboard"] if helper in c]
    on_comp = [c for c in charts["Comparison"] if helper in c]
    assert len(on_dash) == len(on_comp) == 1 and on_dash == on_comp


@pytest.mark.parametrize("case", [p.stem for p in CASES])
def test_every_formula_of_every_shipped_case_keeps_the_fast_rules(case, tmp_path):
    # One formula per row (first month included), no typed number but 0, 1 and 12, no
    # formula over 150 characters, other sheets read only through link rows.
    result = finmodel.run(finmodel.load_assumptions(ROOT / "assumptions" / f"{case}.toml"))
    path = finmodel.export_excel(result, tmp_path / f"{case}.xlsx")
    problems = scan(path)
    assert not problems, "\n".join(str(p) for p in problems[:10])


def test_the_scanner_catches_each_rule(tmp_path):
    # A workbook breaking each rule once, written by hand, so the scanner cannot pass
    # everything by accident.
    import xlsxwriter

    path = tmp_path / "bad.xlsx"
    wb = xlsxwriter.Workbook(path)
    ws = wb.add_worksheet("Calc")
    wb.add_worksheet("Other")
    for c in range(FIRST_COL, FIRST_COL + 14):
        cell = xlsxwriter.utility.xl_rowcol_to_cell
        prev, here = cell(6, c - 1), cell(0, c)
        ws.write_formula(6, c, "=0" if c == FIRST_COL else f"={prev}+1")  # first differs
        ws.write_formula(7, c, "=$A$1*24")  # a typed 24
        ws.write_formula(8, c, f"=Other!{here}*2")  # a calculation on another sheet
        ws.write_formula(9, c, f"=Other!{here}")  # a link: fine
        ws.write_formula(10, c, "=$A$1" + "+$B$1" * 30)  # too long
    wb.close()
    problems = scan(path)
    found = {(int(p.cell[1:]), p.rule.split(" ")[0]) for p in problems}
    assert found == {(7, "differs"), (8, "typed"), (9, "typed"), (9, "calculates"),
                     (11, "longer")}
    assert next(p.cell for p in problems if p.rule.startswith("differs")) == "F7"
    assert typed_numbers('=TEXT(A1,"0.0%")+B2*12+C$3/1440') == ["1440"]


def test_dashboard_npv_bars_start_at_zero_when_every_npv_is_positive(base_workbook):
    import re
    import zipfile

    result, path = base_workbook
    assert min(result.summary.loc["npv_usd"]) > 0  # base: 165.5, 175.2, 170.7 M USD
    with zipfile.ZipFile(path) as z:
        charts = [z.read(n).decode() for n in z.namelist() if n.startswith("xl/charts/chart")]
    npv = [c for c in charts if "NPV by strategy (USD m)" in c]
    assert len(npv) == 1
    # The value axis of a column chart is its second axis; it has a fixed minimum of 0.
    assert re.search(r'<c:valAx>.*?<c:min val="0"/>', npv[0], re.S)
