"""The Inputs sheet: sources beside the inputs, data validation of bounds and choices,
protection without a password (only live inputs editable), structural inputs apart."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import openpyxl
import pytest

import finmodel
from finmodel.cli import main
from finmodel.errors import InputError
from finmodel.excel.inputs_sheet import STRUCTURAL_TITLE
from tests.conftest import CASES
from tests.xlsx_edit import sheet_parts


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    a = finmodel.load_assumptions("assumptions/base.toml")
    path = tmp_path_factory.mktemp("inputs") / "base.xlsx"
    return a, finmodel.export_excel(finmodel.run(a, breakevens=False), path)


def _rows(ws) -> dict:
    return {ws.cell(r, 1).value: r for r in range(1, ws.max_row + 1)}


def test_sources_stand_beside_their_inputs(book):
    a, path = book
    ws = openpyxl.load_workbook(path)["Inputs"]
    rows = _rows(ws)
    assert ws.cell(4, 4).value == "Source"
    assert ws.cell(rows["network_btc_price_usd"], 4).value == "[B20]"
    assert ws.cell(rows["conversion_fit_out_life_years"], 4).value == "[T2]"
    shown = {n: ws.cell(r, 4).value for n, r in rows.items() if isinstance(n, str)}
    assert sum(1 for p in a.input_sources if shown.get(p.replace(".", "_"))) == \
        len(a.input_sources)


# Where the case files' comments point ("Sources: ../shared/reference/..."); outside the
# repository, so a checkout without it checks the sources' form only.
FACTS = Path(__file__).resolve().parents[2] / "shared" / "reference" / "industry_facts.md"


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_every_shipped_case_gives_sources_that_exist(case):
    # Each source is EST, fact IDs of the shared reference (ranges such as [L3]-[L17]) or
    # a lettered section of its suggested defaults ("[facts C]": "### C. AI/HPC ...").
    a = finmodel.load_assumptions(case)
    assert len(a.input_sources) >= 20
    text = FACTS.read_text() if FACTS.exists() else None
    known = text and set(re.findall(r"\[([A-Z]\d+)\]", text)) | {
        f"facts {x}" for x in re.findall(r"^### ([A-Z])\. ", text, re.M)}
    for path, src in a.input_sources.items():
        ids = re.findall(r"\[([^\]]+)\]", src)
        assert ids or src == "EST", (path, src)
        assert all(re.fullmatch(r"[A-Z]\d+|facts [A-Z]", i) for i in ids), (path, src)
        assert known is None or set(ids) <= known, (path, src)
        assert re.sub(r"\[[^\]]+\]|EST|[-,; ]", "", src) == "", (path, src)


def test_an_input_taken_out_takes_its_source_with_it():
    a = finmodel.load_assumptions("assumptions/base.toml")
    assert "mining.standby_opex_usd_per_mw_month" in a.input_sources
    b = finmodel.with_values(a, {"mining.standby_opex_usd_per_mw_month": None})
    assert "mining.standby_opex_usd_per_mw_month" not in b.input_sources
    assert len(b.input_sources) == len(a.input_sources) - 1


def test_the_json_schema_documents_input_sources(capsys):
    assert main(["schema"]) == 0
    schema = __import__("json").loads(capsys.readouterr().out)
    doc = schema["properties"]["input_sources"]
    assert "[B20]" in doc["description"] and "EST" in doc["description"]
    assert doc["additionalProperties"]["maxLength"] == 200


def test_a_source_must_name_an_input_and_stays_text(tmp_path):
    a = finmodel.load_assumptions("assumptions/base.toml")
    with pytest.raises(InputError, match="input_sources: 'power.price' is not an input"):
        finmodel.with_values(a, {"input_sources": {"power.price": "[P1]"}})
    b = finmodel.with_values(a, {"input_sources": {"power.pue": '=HYPERLINK("x")'}})
    path = finmodel.export_excel(finmodel.run(b, breakevens=False), tmp_path / "t.xlsx")
    with zipfile.ZipFile(path) as z:
        assert "HYPERLINK" not in z.read(sheet_parts(path)["Inputs"]).decode()


def test_validation_and_protection(book):
    _, path = book
    with zipfile.ZipFile(path) as z:
        xml = z.read(sheet_parts(path)["Inputs"]).decode()
    assert re.search(r"<sheetProtection [^>]*sheet=\"1\"", xml)
    assert "password" not in re.search(r"<sheetProtection [^>]*>", xml).group(0)
    wb = openpyxl.load_workbook(path)
    ws = wb["Inputs"]
    rows = _rows(ws)
    rules = {}
    for dv in ws.data_validations.dataValidation:
        for rng in str(dv.sqref).split():
            rules[rng] = dv
    pue = rules[f"E{rows['power_pue']}"]
    assert pue.type == "custom" and f"E{rows['power_pue']}>=1.0" in pue.formula1 \
        and f"E{rows['power_pue']}<=3.0" in pue.formula1
    pricing = rules[f"E{rows['power_pricing']}"]
    assert pricing.type == "list" and pricing.formula1 == '"fixed,indexed"'
    years = rules[f"E{rows['mining_refresh_interval_years']}"]
    assert "INT(" in years.formula1  # a whole number
    # Live inputs are the only unlocked cells; structural ones sit below, locked.
    assert not ws.cell(rows["power_pue"], 5).protection.locked
    assert rows["case_horizon_years"] > rows[STRUCTURAL_TITLE]
    assert ws.cell(rows["case_horizon_years"], 5).protection.locked
    assert ws.cell(rows["power_pue"], 2).protection.locked  # labels are not editable
