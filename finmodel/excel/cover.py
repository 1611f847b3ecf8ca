"""The Cover sheet: what the workbook answers (live), how to read it, what each sheet
holds, the reproducibility stamp and the disclaimer."""

from __future__ import annotations

import datetime as dt
import math

from finmodel.excel.labels import strategy_labels

#: One line on what each sheet holds, for the contents table.
SHEET_NOTES = {
    "Cover": "This page: the answer, the stamp, conventions and contents",
    "Dashboard": "The decision in USD millions: metrics by strategy, charts, key inputs",
    "Summary": "Every headline metric by strategy, with its defined name",
    "Sensitivity": "Scenario sets, tornado of the key inputs, two-input grid",
    "Monte Carlo": "Distribution of the metric by strategy and the settings that made it",
    "Comparison": "Each strategy against keeping mining; value of converting by start month",
    "Checks": "Live integrity checks and the master flag",
    "Inputs": "Every input (blue on yellow), by section, with its defined name",
    "Constants": "Numbers the formulas use by name (hours per day, blocks per halving)",
    "Timeline": "Month starts, ends, days, calendar and model years, flags",
    "Network": "Bitcoin network: blocks, halvings, subsidy, fees, hashrate, price",
    "Power": "Power contract: prices, volumes, curtailment, the site's power bill",
    "Mining": "Mining fleet, curtailment decision, production, cost and capex",
    "Hosting": "AI hosting lease: conversion ramp, rent, prepayment, operations",
    "Cloud": "AI cloud: GPUs, GPU-hours sold, operations",
    "Capex": "Conversion capex by phase, placed in service, depreciation",
    "Financing": "Project debt and the convertible note",
    "Tax": "Tax depreciation, interest limits, losses carried forward, tax paid",
    "Cash Flow": "Free cash flow by strategy, cumulative cash, payback",
    "Annual": "Every line rolled up by calendar year",
}

CONVENTIONS = [
    "Money: nominal US dollars, shown in USD millions (USD m) unless a unit says otherwise.",
    "Signs: the site owner's view; money in is positive, money out negative (brackets).",
    "Timing: monthly; cash flows at month end, valued at the start of the first month "
    "(Excel NPV); rates are annual; IRR annualised.",
    "Cell colours: blue on yellow = input; green = link to another sheet; black = "
    "calculation; grey small = the line's model name (what Python calls it).",
    "Every calculated cell is a live formula stored with the value Python computed; "
    "figures marked 'solved' were found by root-finding in Python: re-run after changes.",
]

DISCLAIMER = ("For discussion only. A model of assumptions, not a forecast or an offer: "
              "Bitcoin price, network hashrate, power prices, lease terms and construction "
              "costs are uncertain, and the figures move with them (see Sensitivity and Monte "
              "Carlo). Check the inputs and their sources before relying on any figure.")

#: Defined name of the master flag of the Checks sheet (when the workbook has one).
CHECKS_FLAG = "checks_ok"

_MONEY_TEXT = '+$0.0,,"M";-$0.0,,"M"'


def stamp_rows(result) -> list[tuple[str, str]]:
    """The reproducibility stamp: version, case file and its SHA-256, run date."""
    from finmodel import __version__

    src = getattr(result.assumptions, "_source", None)
    return [
        ("finmodel version", __version__),
        ("Case file", src.name if src else "(built in Python)"),
        ("Case file SHA-256", src.sha256 if src else "-"),
        ("Run date", dt.date.today().isoformat()),
    ]


def _money_text(v: float) -> str:
    """Python's rendering of TEXT(v, _MONEY_TEXT), the cached value of the headline."""
    return f"{'+' if v >= 0 else '-'}${abs(v) / 1e6:.1f}M"


def has_name(wb, name: str) -> bool:
    return any(d[0] == name for d in wb.defined_names)


def checks_flag(ws, st, row: int, col: int, wb, result) -> None:
    """The Checks sheet's master flag, live; a marked placeholder while there is none."""
    if has_name(wb, CHECKS_FLAG) and "checks.all_ok" in result.values:
        from finmodel.excel import checks

        ok = bool(result.values["checks.all_ok"][0] == 1)
        ws.write_formula(row, col, checks.master_flag_formula(),
                         st.flag if ok else st.flag_bad, checks.master_flag_text(ok))
    else:
        ws.write_string(row, col, "No Checks sheet in this workbook version", st.subtitle)


def write_cover(wb, ws, st, result, sheet_names: list[str]) -> None:
    """Write the Cover sheet (after every other sheet, so its names all exist)."""
    a = result.assumptions
    labels = strategy_labels(result)
    ws.hide_gridlines(2)
    ws.set_column(0, 0, 30)
    ws.set_column(1, 1, 100)
    ws.set_row(0, 26)
    ws.write_string(0, 0, a.case.name, st.cover_title)
    ws.write_string(1, 0, "Keep mining Bitcoin on these megawatts, convert them to AI hosting, "
                    "or split them? A live cash-flow model.", st.subtitle)
    row = 3
    ws.write_string(row, 0, "The answer", st.section)
    ws.write_blank(row, 1, None, st.section)
    vm = {x.strategy: x for x in result.model.metrics() if x.metric == "npv_vs_mining_usd"}
    for s in result.strategies:
        if s not in vm:
            continue
        row += 1
        v = float(result.values[vm[s].name][0])
        rate = a.case.discount_rate
        ws.write_string(row, 0, labels[s], st.answer)
        if math.isfinite(v):
            cached = f"is worth {_money_text(v)} over keeping mining (NPV at {rate:.1%})"
        else:
            cached = "#N/A"
        # Label in its own cell: text from the case never enters a formula.
        ws.write_formula(row, 1, f'="is worth "&TEXT({s}_npv_vs_mining_usd,'
                         f'"{_MONEY_TEXT.replace(chr(34), chr(34) * 2)}")&" over keeping '
                         f'mining (NPV at "&TEXT(case_discount_rate,"0.0%")&")"', st.answer,
                         cached)
    row += 1
    ws.write_string(row, 0, "Checks", st.label_bold)
    checks_flag(ws, st, row, 1, wb, result)
    row += 2
    ws.write_string(row, 0, "Reproducibility stamp", st.section)
    ws.write_blank(row, 1, None, st.section)
    for k, v in stamp_rows(result):
        row += 1
        ws.write_string(row, 0, k, st.unit)
        ws.write_string(row, 1, v, st.text)
    row += 2
    ws.write_string(row, 0, "Conventions", st.section)
    ws.write_blank(row, 1, None, st.section)
    for line in CONVENTIONS:
        row += 1
        ws.write_string(row, 1, line, st.text)
    row += 2
    ws.write_string(row, 0, "Contents", st.section)
    ws.write_blank(row, 1, None, st.section)
    for name in sheet_names:
        if name in ("Cover", "Snapshot"):  # the snapshot is hidden machinery of Checks
            continue
        row += 1
        ws.write_url(row, 0, f"internal:'{name}'!A1", st.link, name)
        ws.write_string(row, 1, SHEET_NOTES.get(name, "Model lines of this part"), st.text)
    row += 2
    ws.write_string(row, 0, "Disclaimer", st.section)
    ws.write_blank(row, 1, None, st.section)
    ws.write_string(row + 1, 1, DISCLAIMER, st.wrap)
    ws.set_row(row + 1, 38)
