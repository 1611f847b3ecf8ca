"""Every input cell of the workbook is live or visibly structural.

Each input cell (each element of a yearly path too; each other word of a choice) is
changed within its bounds in LibreOffice, the workbook recalculated, and the whole Summary
compared with Python's run of the changed case; an input that is not live must sit in the greyed, locked block of
structural inputs. One LibreOffice session per case; one recalculation per change.
"""

from __future__ import annotations

import datetime as dt
import math

import openpyxl
import pytest
from xlsxwriter.utility import xl_rowcol_to_cell

import finmodel
from finmodel.conventions import to_serial
from finmodel.errors import InputError
from finmodel.excel.inputs_sheet import STRUCTURAL_TITLE, VALUE_COL
from finmodel.inputs.load import InputField, input_fields, structural_reason
from tests.conftest import PARITY
from tests.lo_session import CalcSession

WALKED = ["base", "bitdeer_convertible_hybrid"]


def _month(d: dt.date, k: int) -> str:
    m = d.month - 1 + k
    return f"{d.year + m // 12:04d}-{m % 12 + 1:02d}"


def _within(f: InputField, x: float) -> bool:
    ops = {">": x.__gt__, ">=": x.__ge__, "<": x.__lt__, "<=": x.__le__}
    return all(ops[op](limit) for op, limit in f.bounds)


def _numbers(f: InputField, v: float) -> list[float]:
    if f.unit == "flag":
        return [1.0 - v]
    if f.integer:
        return [v + 1, v - 1, v + 2]
    out = [v * 1.1, v * 0.9, v + 0.05, v - 0.05, v + 1, v - 1] if v else [0.05, 1.0, -0.05]
    return [x for x in out if x != v]


def candidates(f: InputField) -> list[tuple[dict, dict]]:
    """Changes to try for one input, each as (field changes for Python, cell changes by
    offset from the input's value cell): the first the case accepts is used."""
    v = f.value
    out = []
    if isinstance(v, list):
        return []  # paths: one walk per element, see element_candidates
    if isinstance(v, dt.date):
        for k in (1, -1, 2):
            new = _month(v, k)
            out.append(({f.path: new},
                        {0: float(to_serial(dt.date(int(new[:4]), int(new[5:]), 1)))}))
        return out
    if f.choices is not None:
        return [({f.path: c}, {0: c}) for c in f.choices if c != v]
    if isinstance(v, str):
        return [({f.path: v + " (changed)"}, {0: v + " (changed)"})]
    for x in _numbers(f, float(v)):
        if _within(f, x):
            py = int(x) if f.integer else (bool(x) if f.unit == "flag" else x)
            out.append(({f.path: py}, {0: x}))
    return out


def element_candidates(f: InputField, k: int) -> list[tuple[dict, dict]]:
    v = list(f.value)
    out = []
    if f.unit == "share" and abs(sum(v) - 1) < 1e-9 and len(v) > 1:
        j = (k + 1) % len(v)  # keep the shares summing to 1
        for d in (0.05, -0.05):
            new = list(v)
            new[k], new[j] = v[k] + d, v[j] - d
            out.append(({f.path: new}, {k: new[k], j: new[j]}))
        return out
    for x in ([v[k] + 1, v[k] - 1, v[k] + 2] if f.integer else [v[k] * 1.1, v[k] * 0.9]):
        new = list(v)
        new[k] = int(x) if f.integer else x
        out.append(({f.path: new}, {k: float(x)}))
    return out


def _metrics(result) -> dict[str, float]:
    """Every Summary metric computed by formula. An IRR Python finds ambiguous (several
    sign changes: the root nearest the guess) or finds none is left out: on such flows
    LibreOffice's IRR iteration may land on another root, or on none."""
    out = {}
    for m in result.model.metrics():
        v = float(result.values[m.name][0])
        if m.solved or (m.metric.endswith("irr") and (
                math.isnan(v) or result.reasons.get(m.name, [""])[0])):
            continue
        out[f"{m.strategy}_{m.metric}"] = v
    return out


def _close(got: float, exp: float, name: str) -> bool:
    if math.isnan(exp) or math.isnan(got):
        return math.isnan(exp) and math.isnan(got)
    tol = 1e-7 if "irr" in name else PARITY
    return abs(got - exp) <= tol * max(1.0, abs(exp))


@pytest.mark.parametrize("case", WALKED)
def test_every_input_is_live_or_structural(case, tmp_path, libreoffice, capsys):
    a = finmodel.load_assumptions(f"assumptions/{case}.toml")
    base = finmodel.run(a, breakevens=False)
    path = finmodel.export_excel(base, tmp_path / f"{case}.xlsx")
    wb = openpyxl.load_workbook(path)
    ws = wb["Inputs"]
    rows = {ws.cell(r, 1).value: r for r in range(1, ws.max_row + 1)}
    structural_from = rows[STRUCTURAL_TITLE]
    headers = {ws.cell(4, c).value: c for c in range(1, ws.max_column + 1)}
    metric_cells = {}
    for name in (f"{m.strategy}_{m.metric}" for m in base.model.metrics()):
        # Every metric: one n/a here (an IRR on flows that are not investment-shaped) may
        # be a number once an input changes.
        sheet, ref = next(iter(wb.defined_names[name].destinations))
        metric_cells[name] = (sheet, ref.replace("$", ""))

    tried, live, structural, refused, wrong = 0, 0, 0, [], []
    plan: list[tuple[str, dict, dict[str, float | str]]] = []  # (label, changes, cells)
    for f in input_fields(a):
        r = rows[f.defined_name]
        cells_of_input = len(f.value) if isinstance(f.value, list) else 1
        if structural_reason(f) is not None:
            for k in range(cells_of_input):
                c = ws.cell(r, VALUE_COL + 1 + k)
                assert r > structural_from and c.protection.locked, f.path
                assert c.fill.fgColor.rgb.endswith("E7E6E6"), f.path  # greyed
                tried += 1
                structural += 1
            continue
        # The cell an analyst edits: the base column when a scenario changes the input.
        col = headers["base"] if f.path in {p for s in a.analysis.scenarios.values()
                                            for p in s} else VALUE_COL + 1
        if isinstance(f.value, list):
            groups = [(f"{f.path}[{k}]", element_candidates(f, k))
                      for k in range(cells_of_input)]
        elif f.choices is not None:  # every other word of a live choice, one at a time
            groups = [(f"{f.path}={c[f.path]}", [(c, o)]) for c, o in candidates(f)]
        else:
            groups = [(f.path, candidates(f))]
        for label, options in groups:
            tried += 1
            assert not ws.cell(r, col).protection.locked, label
            for changes, offsets in options:
                try:
                    changed = finmodel.with_values(a, changes)
                except InputError:
                    continue
                cells = {xl_rowcol_to_cell(r - 1, col - 1 + k): x for k, x in offsets.items()}
                plan.append((label, _metrics(finmodel.run(changed, breakevens=False)), cells))
                break
            else:
                refused.append(label)

    originals = {}
    with CalcSession(libreoffice, path) as lo:
        for label, expected, cells in plan:
            for ref, x in cells.items():
                originals.setdefault(ref, lo.get("Inputs", ref))
                lo.set("Inputs", ref, x)
            lo.recalculate()
            bad = [f"{n}: workbook {lo.get(*metric_cells[n])!r} vs python {e!r}"
                   for n, e in expected.items() if not _close(lo.get(*metric_cells[n]), e, n)]
            if bad:
                wrong.append(f"{label}: " + "; ".join(bad[:3]))
            else:
                live += 1
            for ref in cells:
                lo.set("Inputs", ref, originals[ref])
    with capsys.disabled():
        print(f"\n{case}: {tried} input cells tried, {live} live, {structural} structural, "
              f"{len(refused)} refused by the schema at every candidate: {refused}")
    assert not wrong, "\n".join(wrong)
    assert not refused
    assert live + structural == tried
    # The terminal method is live: each other method was switched in the workbook.
    method = a.valuation.terminal_method
    assert {label for label, _, _ in plan} >= {
        f"valuation.terminal_method={m}" for m in ("none", "exit_multiple",
                                                    "perpetuity_growth", "lease_renewal")
        if m != method}


#: Scenario sets for the Bitdeer case, which ships none.
EXTRA_SCENARIOS = {"low_btc": {"network.btc_price_usd": 70_000.0, "financing.debt.rate": 0.09},
                   "cheap_build": {"conversion.electrical_usd_per_mw": 2.0e6}}


@pytest.mark.parametrize("case", WALKED)
def test_the_scenario_selector_runs_each_scenario_live(case, tmp_path, libreoffice):
    a = finmodel.load_assumptions(f"assumptions/{case}.toml")
    if not a.analysis.scenarios:
        a = finmodel.with_values(a, {"analysis.scenarios": EXTRA_SCENARIOS})
    path = finmodel.export_excel(finmodel.run(a, breakevens=False), tmp_path / "s.xlsx")
    wb = openpyxl.load_workbook(path)
    cells = {}
    for m in finmodel.run(a, breakevens=False).model.metrics():
        name = f"{m.strategy}_{m.metric}"
        if name in wb.defined_names:
            sheet, ref = next(iter(wb.defined_names[name].destinations))
            cells[name] = (sheet, ref.replace("$", ""))
    selector = next(iter(wb.defined_names["scenario_selected"].destinations))
    selector = (selector[0], selector[1].replace("$", ""))
    with CalcSession(libreoffice, path) as lo:
        for name, changes in [*a.analysis.scenarios.items(), ("base", {})]:
            lo.set(*selector, name)
            lo.recalculate()
            expected = _metrics(finmodel.run(finmodel.with_values(a, changes),
                                             breakevens=False))
            bad = [f"{n}: workbook {lo.get(*cells[n])!r} vs python {e!r}"
                   for n, e in expected.items() if not _close(lo.get(*cells[n]), e, n)]
            assert not bad, f"scenario {name}: " + "; ".join(bad[:5])
            assert lo.get("Summary", "B9") == name  # Summary names the active scenario
            # Solved values belong to the base case: another scenario makes them stale.
            assert (lo.get("Checks", "C5") == 1.0) == (name == "base")
