"""Every node of the expression vocabulary, rendered as a formula and recalculated by
LibreOffice, agrees with the numpy evaluator (house-style test: one definition, two
renderers)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

import finmodel
from finmodel.api import Result, timeline_of
from finmodel.engine.evaluate import evaluate
from finmodel.engine.expr import (
    PathInput,
    cumulative,
    date,
    eq,
    floor,
    irr,
    lag,
    maximum,
    minimum,
    months_between,
    ne,
    not_available,
    or_not_available,
    row_max,
    row_min,
    shifted,
    npv,
    on_or_after,
    time,
    total,
    where,
)
from finmodel.excel.formulas import FormulaWriter, Layout
from finmodel.excel.libreoffice import recalculate
from finmodel.inputs.load import numeric_inputs
from finmodel.models.common import chosen, inp
from finmodel.models.strategies import build_model
from tests.conftest import PARITY, small
from tests.test_excel import assert_parity, expected_values, read_model

S = "Vocabulary"  # a sheet of its own (Checks is the model's checks sheet)


def vocabulary_result() -> Result:
    a = small(case={"horizon_years": 3},
              network={"btc_price_usd": None, "btc_price_path_usd": [60e3, 80e3, 120e3]})
    m = build_model(a)
    idx = time("index")
    price = PathInput("network_btc_price_path_usd", time("model_year"))
    m.line("v.path", price, "Path lookup", "USD", S)
    m.line("v.arith", (idx + 1) * 3 - idx / 4 + 2 ** (idx / 12), "Arithmetic", "", S)
    m.line("v.neg_pow", -(idx / 10) ** 2, "Unary minus and power", "", S)
    m.line("v.minmax", minimum(maximum(idx - 5, 0), 20), "Min and max", "", S)
    m.line("v.logic", where((idx > 3) & ne(idx, 7) | eq(idx, 0), 1, 0), "And, or, <>", "", S)
    m.line("v.floor", floor(idx / 5), "Floor", "", S)
    m.line("v.chosen", where(chosen("power.pricing", "fixed"), idx, -idx)
           + chosen("power.pricing", "indexed"), "A choice input, by its word", "", S)
    m.line("v.dates", on_or_after(date(dt.date(2027, 3, 1))), "On or after a date", "flag", S)
    m.line("v.since", time("end") - inp("case.start_month"), "Days since start", "days", S)
    m.line("v.months", months_between(inp("case.start_month"), time("end")),
           "Months between dates", "months", S)
    flow = m.line("v.flow", where(eq(idx, 0), -1000, 60 + idx), "A cash flow", "USD", S)
    m.line("v.cum", cumulative(flow), "Cumulative", "USD", S)
    # A loan balance: each month interest accrues on the opening balance and 40 is repaid.
    bal = m.recursive_line("v.balance", "Balance", "USD", S)
    interest = m.line("v.interest", lag(bal, 1, 500.0) * 0.01, "Interest", "USD", S)
    m.define(bal, maximum(lag(bal, 1, 500.0) + interest - 40, 0))
    m.line("v.lag2", lag(flow, 2, -1), "Lag of two with an initial value", "USD", S)
    m.line("v.shift", shifted(flow, inp("case.horizon_years") * 4, -7),
           "Shift by an input (12 periods)", "USD", S)
    m.scalar("v.total", total(flow), "Total", "USD", S)
    m.scalar("v.extremes", row_max(flow) - row_min(flow), "Max - min", "USD", S)
    m.scalar("v.npv", npv(0.01, flow), "NPV at 1 %", "USD", S)
    m.scalar("v.irr", irr(flow, 0.01), "IRR", "rate", S)
    m.scalar("v.na", where(total(flow) < -1e12, 1, not_available()), "Missing", "", S)
    positive = m.line("v.positive", 1 + idx, "Only inflows", "USD", S)
    m.scalar("v.irr_none", or_not_available(irr(positive, 0.01)), "IRR without a root", "rate",
             S)
    tl = timeline_of(a)
    scalars, paths = numeric_inputs(a)
    values = evaluate(m, tl, scalars, paths)
    values["mining.breakeven_btc_price"] = np.array([np.nan])
    return Result(a, m, tl, values, 1)


def test_every_vocabulary_node_recalculates_to_the_numpy_value(tmp_path, libreoffice):
    r = vocabulary_result()
    v = r.values
    # Spot checks by hand before the comparison with LibreOffice.
    assert v["v.path"][0, 11] == 60e3 and v["v.path"][0, 12] == 80e3
    assert v["v.neg_pow"][0, 5] == -0.25
    assert v["v.chosen"][0, :3].tolist() == [0, 1, 2]  # pricing is 'fixed'
    lay = Layout(4, 36, {"v.chosen": (S, 9)}, {}, {"index": 9})
    assert FormulaWriter(lay).line_cell(1, r.model.nodes["v.chosen"]).startswith(
        '=IF((power_pricing="fixed"),')
    assert v["v.dates"][0].tolist() == [0] * 14 + [1] * 22  # March 2027 is month 14
    assert np.isnan(v["v.na"][0]) and np.isnan(v["v.irr_none"][0])
    assert v["v.months"][0, :3].tolist() == [1, 2, 3]  # Jan 2026 ends on 1 Feb 2026
    assert v["v.shift"][0, :12].tolist() == [-7] * 12
    assert v["v.shift"][0, 12:].tolist() == v["v.flow"][0, :-12].tolist()
    balance = 500.0
    for t in range(36):
        balance = max(balance * 1.01 - 40, 0)
        assert v["v.balance"][0, t] == pytest.approx(balance, rel=1e-12)
    path = finmodel.export_excel(r, tmp_path / "vocabulary.xlsx")
    got = read_model(recalculate(path, tmp_path / "lo"), r)
    assert_parity(got, expected_values(r), PARITY, 1e-7)
