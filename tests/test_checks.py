"""The model's checks: all pass on every shipped case, in Python and in the recalculated
workbook; each one turns red when an input (in Python) or an edited workbook breaks it."""

from __future__ import annotations

import json

import numpy as np
import openpyxl
import pytest

import finmodel
from finmodel.cli import main
from finmodel.conventions import to_serial
from finmodel.excel.libreoffice import recalculate_many
from tests.conftest import CASES
from tests.xlsx_edit import defined_cell, write_cells


def _base(**changes) -> finmodel.Assumptions:
    a = finmodel.load_assumptions("assumptions/base.toml")
    return finmodel.with_values(a, changes) if changes else a


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_every_shipped_case_passes_every_check(case):
    r = finmodel.run(finmodel.load_assumptions(case), breakevens=False)
    assert len(r.checks) >= 8  # interconnect, bounds by section, solved values current
    assert r.checks["ok"].all(), r.checks[~r.checks["ok"]].to_string()
    assert r.values["checks.all_ok"][0] == 1.0


def _failed(a, **inputs) -> set[str]:
    """Checks that fail when scenario values are given for some inputs with the case
    file's cross-field rules switched off (``rules=False``; the fields' own bounds hold)."""
    r = finmodel.run(a, inputs={k.replace("__", "."): v for k, v in inputs.items()},
                     breakevens=False, rules=False)
    assert r.values["checks.all_ok"][0] == 0.0
    return set(r.checks.index[~r.checks["ok"]])


def test_interconnect_oversubscribed():
    # 200 MW of mining IT x PUE 1.05 on a 100 MW interconnect; the case file refuses it.
    assert _failed(_base(), site__mining_it_mw=[200.0]) >= {"mining.interconnect",
                                                            "hybrid.interconnect"}


def test_phase_shares_not_summing_to_one():
    got = _failed(_base(), hosting__phase_it_shares=[[0.3, 0.8]])
    assert "phase_shares" in got


def test_conversion_before_the_model_start():
    # The example: the model starting in 2027-01, after the 2026-07 conversion.
    late = float(to_serial(__import__("datetime").date(2027, 1, 1)))
    got = _failed(_base(), case__start_month=[late])
    assert {"ai_hosting.starts_after_model_start", "hybrid.starts_after_model_start"} <= got


def test_conversion_delivering_after_the_lease_starts():
    a = _base(**{"hosting.rent_start_month": "2027-07"})  # first phase ready 2027-07
    assert finmodel.run(a, breakevens=False).checks["ok"].all()
    early = float(to_serial(__import__("datetime").date(2027, 1, 1)))
    assert "ai_hosting.delivers_before_lease" in _failed(a, hosting__rent_start_month=[early])


def test_dscr_below_the_covenant():
    a = finmodel.load_assumptions("assumptions/bitdeer_convertible_hybrid.toml")
    big = finmodel.with_values(a, {"financing.debt.sizing": "amount",
                                   "financing.debt.amount_usd": 2e9})
    r = finmodel.run(big, breakevens=False)
    assert {"ai_hosting.dscr_covenant", "hybrid.dscr_covenant"} <= \
        set(r.checks.index[~r.checks["ok"]])
    # The shortfall is the covenant less the minimum DSCR the Summary reports.
    dscr = r.summary.loc["min_dscr", "ai_hosting"]
    assert r.checks.loc["ai_hosting.dscr_covenant", "value"] == pytest.approx(1.35 - dscr)


def test_cash_below_the_minimum_when_the_equity_commitment_caps_the_funding():
    a = finmodel.load_assumptions("assumptions/bitdeer_convertible_hybrid.toml")
    r = finmodel.run(a, inputs={"financing.minimum_cash_usd": [5e7]}, breakevens=False)
    assert r.checks.loc["hybrid.minimum_cash", "ok"]  # every deficit funded: at the floor
    assert r.values["hybrid.cash.balance_usd"].min() == pytest.approx(5e7, abs=0.01)
    # With a zero floor, uncapped funding is the deepest the equity flow's running sum
    # goes below zero; a commitment C leaves that less C uncovered.
    equity = r.values["hybrid.equity_cf_usd"][0]
    deepest = -min(np.cumsum(equity).min(), 0.0)
    assert deepest > 1e8
    base = finmodel.run(a, breakevens=False)
    assert base.values["hybrid.cash.equity_funding_usd"].sum() == pytest.approx(deepest)
    capped = finmodel.with_values(a, {"financing.equity_commitment_usd": 1e8})
    got = _failed(capped)
    assert "hybrid.minimum_cash" in got
    r = finmodel.run(capped, breakevens=False)
    assert r.checks.loc["hybrid.minimum_cash", "value"] == pytest.approx(deepest - 1e8)
    assert r.values["hybrid.cash.equity_funding_usd"].sum() == pytest.approx(1e8)


def test_json_and_cli_report_a_failed_check(tmp_path, capsys, monkeypatch):
    a = finmodel.load_assumptions("assumptions/bitdeer_convertible_hybrid.toml")
    big = finmodel.with_values(a, {"financing.debt.sizing": "amount",
                                   "financing.debt.amount_usd": 2e9})
    js = finmodel.run(big, breakevens=False).summary_json()["checks"]
    assert js["all_pass"] is False and "hybrid.dscr_covenant" in js["failed"]
    assert js["items"]["hybrid.dscr_covenant"]["ok"] is False
    # The CLI: the run succeeds, the JSON says so, and stderr warns once per failed check.
    case = tmp_path / "big.toml"
    text = open("assumptions/bitdeer_convertible_hybrid.toml").read()
    case.write_text(text.replace('sizing = "dscr"', 'sizing = "amount"\namount_usd = 2e9'))
    assert main(["run", str(case), "--json", str(tmp_path / "s.json")]) == 0
    err = capsys.readouterr().err
    assert "warning: check failed: hybrid.dscr_covenant" in err
    assert "warning: check failed: ai_hosting.dscr_covenant" in err
    assert json.loads((tmp_path / "s.json").read_text())["checks"]["all_pass"] is False
    assert main(["run", "assumptions/base.toml"]) == 0
    assert "warning" not in capsys.readouterr().err


# --- the workbook: each check turned red by an edit, all recalculated in one start -------

def _row_of(ws, name: str) -> int:
    return next(r for r in range(1, ws.max_row + 1) if ws.cell(r, 4).value == name)


@pytest.fixture(scope="module")
def edited(tmp_path_factory, libreoffice):
    """(edit name -> recalculated workbook) for edits that each break one check."""
    d = tmp_path_factory.mktemp("checks")
    a = finmodel.load_assumptions("assumptions/bitdeer_convertible_hybrid.toml")
    src = finmodel.export_excel(finmodel.run(a), d / "bitdeer.xlsx")
    wb = openpyxl.load_workbook(src)
    fin = wb["Financing"]
    # A cell of the loan's principal row: the balance is then not repaid by maturity.
    r = _row_of(fin, "hybrid.debt.principal_usd")
    month = next(c for c in range(5, fin.max_column + 1)
                 if isinstance(fin.cell(r, c).value, str) and fin.cell(r, c).value != "=0"
                 and c > 40)
    principal = fin.cell(r, month).coordinate
    equity = fin.cell(_row_of(fin, "hybrid.sources_uses.equity_usd"), 3).coordinate
    # The first month the shareholders fund: without it the cash ends below the minimum.
    funding = _row_of(fin, "hybrid.cash.equity_funding_usd")
    first = 5 + int(np.argmax(finmodel.run(a, breakevens=False)
                              .values["hybrid.cash.equity_funding_usd"][0] > 0))
    funded = fin.cell(funding, first).coordinate
    inputs = {n: defined_cell(src, n) for n in (
        "site_mining_it_mw", "hosting_phase_it_shares", "power_pue",
        "financing_debt_target_dscr", "network_btc_price_usd")}
    shares = inputs["hosting_phase_it_shares"]
    edits = {
        "interconnect": {inputs["site_mining_it_mw"]: 200.0},
        "phase_shares": {shares: 0.7},  # the case has [0.5, 0.5]
        "bounds": {inputs["power_pue"]: 5.0},
        "debt": {("Financing", principal): 0.0},
        "sources": {("Financing", equity): 1.0},
        "cash": {("Financing", funded): 0.0},
        "stale": {inputs["network_btc_price_usd"]: 120_000.0},
        # A pasted typo gets past the list validation; the bounds check catches it.
        "typo": {defined_cell(src, "power_pricing"): "indexd"},
        "none": {},
    }
    paths = [write_cells(src, d / f"{k}.xlsx", v) for k, v in edits.items()]
    outs = recalculate_many(paths, d / "lo")
    return dict(zip(edits, outs))


def _flags(path) -> dict[str, float]:
    wb = openpyxl.load_workbook(path, data_only=True)
    ws = wb["Checks"]
    out = {}
    for r in range(1, ws.max_row + 1):
        name = ws.cell(r, 4).value
        if isinstance(name, str) and name.endswith(".value"):
            out[name[len("checks."):-len(".value")]] = ws.cell(r, 6).value
    out["all"] = ws.cell(_row_of(ws, "checks.all_ok"), 3).value
    out["summary"] = wb["Summary"]["B8"].value
    return out


@pytest.mark.parametrize("edit, breaks", [
    ("interconnect", {"mining.interconnect", "hybrid.interconnect", "solved_current"}),
    ("phase_shares", {"phase_shares"}),
    ("bounds", {"bounds.power", "mining.interconnect"}),
    ("debt", {"hybrid.debt_repaid"}),
    ("sources", {"hybrid.sources_uses"}),
    ("cash", {"hybrid.minimum_cash"}),
    ("stale", {"solved_current"}),
    ("typo", {"bounds.power"}),
])
def test_an_edited_workbook_turns_the_check_red(edited, edit, breaks):
    flags = _flags(edited[edit])
    red = {k for k, v in flags.items() if v == 0 and k not in ("all", "summary")}
    assert breaks <= red, red
    assert flags["all"] == 0
    assert flags["summary"] == "Checks: FAILED, see the Checks sheet"


def test_an_unedited_workbook_passes_every_check_after_recalculation(edited):
    flags = _flags(edited["none"])
    assert flags["all"] == 1 and flags["summary"] == "Checks: all pass"
    assert all(v == 1 for k, v in flags.items() if k not in ("all", "summary"))


def test_stale_solved_values_are_flagged_beside_them(edited):
    ws = openpyxl.load_workbook(edited["stale"], data_only=True)["Summary"]
    notes = [c.value for row in ws.iter_rows() for c in row
             if isinstance(c.value, str) and "re-run finmodel to refresh" in c.value]
    assert notes  # beside each solved metric
    fresh = openpyxl.load_workbook(edited["none"], data_only=True)["Summary"]
    assert not [c.value for row in fresh.iter_rows() for c in row
                if isinstance(c.value, str) and "re-run finmodel to refresh" in c.value]
