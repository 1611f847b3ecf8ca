"""The engine: expressions, recursion through lag, scenario vectorisation, errors."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from finmodel.engine.evaluate import evaluate
from finmodel.engine.expr import Input, cumulative, lag, maximum, minimum, time, where
from finmodel.engine.graph import Model
from finmodel.engine.timeline import Timeline
from finmodel.errors import ModelError

TL = Timeline(dt.date(2026, 1, 1), 24)


def test_timeline_days_years_and_index():
    rows = TL.rows
    assert rows["days"][:3].tolist() == [31, 28, 31]
    assert rows["days"].sum() == 365 + 365
    assert rows["year"][11] == 2026 and rows["year"][12] == 2027
    assert rows["model_year"][11] == 1 and rows["model_year"][12] == 2
    assert TL.years.tolist() == [2026, 2027]
    # Serial 46023 is 1 Jan 2026 in Excel's 1900 date system.
    assert rows["start"][0] == 46023


def test_balance_roll_forward_steps_through_time():
    # A loan of 1,000 at 1 %/month repaid 100 a month: balance_t = balance_{t-1} * 1.01 - 100
    m = Model()
    bal = m.recursive_line("bal", "Balance", "USD", "S")
    interest = m.line("interest", lag(bal, 1, 1000.0) * Input("r"), "Interest", "USD", "S")
    m.define(bal, lag(bal, 1, 1000.0) + interest - 100)
    v = evaluate(m, TL, {"r": np.array([0.01, 0.0])})
    expected = [1000.0, 1000.0]
    for t in range(24):
        expected = [expected[0] * 1.01 - 100, expected[1] - 100]
        assert v["bal"][:, t] == pytest.approx(expected, rel=1e-12)


def test_recursive_group_with_non_recursive_parts_matches_a_loop():
    # Two lines lagging each other, mixed with parts that read no line of the group (an
    # input path by month, a comparison on the month index, a same-period line): the
    # evaluator steps only the group's part; a plain Python loop is the oracle.
    m = Model()
    stock = m.recursive_line("stock", "Stock", "USD", "S")
    price = m.recursive_line("price", "Price", "USD", "S")
    growth = m.line("growth", 1 + Input("g") * time("index"), "Growth", "x", "S")
    m.define(stock, where(time("index") < 3, Input("s0"),
                          maximum(lag(stock, 1, 0.0) * growth - lag(price, 1, 1.0) * 2, 1.0)))
    m.define(price, minimum(stock / 10 + growth, 50.0) + lag(price, 1, 2.0) * 0.5)
    g = np.array([0.01, 0.03, -0.02])
    v = evaluate(m, TL, {"g": g, "s0": 40.0})
    for k in range(3):
        s_prev, p_prev = 0.0, 2.0
        for t in range(24):
            gr = 1 + g[k] * t
            s = 40.0 if t < 3 else max(s_prev * gr - (p_prev if t else 1.0) * 2, 1.0)
            p = min(s / 10 + gr, 50.0) + p_prev * 0.5
            assert v["stock"][k, t] == pytest.approx(s, rel=1e-14)
            assert v["price"][k, t] == pytest.approx(p, rel=1e-14)
            s_prev, p_prev = s, p


def test_a_cycle_without_lag_is_refused():
    m = Model()
    a = m.recursive_line("a", "A", "USD", "S")
    b = m.line("b", a + 1, "B", "USD", "S")
    m.define(a, b * 2)
    with pytest.raises(ModelError, match="circular reference without a lag"):
        evaluate(m, TL, {})


def test_undefined_recursive_line_is_refused():
    m = Model()
    m.recursive_line("a", "A", "USD", "S")
    with pytest.raises(ModelError, match="never defined"):
        evaluate(m, TL, {})


def test_vocabulary_evaluates_like_plain_numpy():
    m = Model()
    x = m.line("x", time("index") - 10, "x", "", "S")
    m.line("clip", minimum(maximum(x, -3), 5), "", "", "S")
    m.line("sign", where(x >= 0, 1, -1), "", "", "S")
    m.line("cum", cumulative(x), "", "", "S")
    m.line("neg_sq", -x ** 2, "", "", "S")
    v = evaluate(m, TL, {})
    xs = np.arange(24) - 10.0
    assert v["clip"][0].tolist() == np.clip(xs, -3, 5).tolist()
    assert v["sign"][0].tolist() == np.where(xs >= 0, 1, -1).tolist()
    assert v["cum"][0].tolist() == np.cumsum(xs).tolist()
    assert v["neg_sq"][0].tolist() == (-(xs ** 2)).tolist()


def test_lines_that_do_not_vary_by_scenario_are_not_copied():
    m = Model()
    m.line("flat", time("days") * 2, "", "", "S")
    m.line("varies", time("days") * Input("k"), "", "", "S")
    v = evaluate(m, TL, {"k": np.arange(1000.0)})
    assert v["flat"].shape == (1, 24)
    assert v["varies"].shape == (1000, 24)


def test_non_finite_line_is_an_error_naming_the_line():
    m = Model()
    m.line("ratio", 1 / Input("zero"), "", "", "S")
    with pytest.raises(ModelError, match="'ratio' is not finite"):
        evaluate(m, TL, {"zero": 0.0})


def test_scenario_arrays_must_agree_in_length():
    m = Model()
    m.line("x", Input("a") + Input("b"), "", "", "S")
    with pytest.raises(ModelError, match="disagree"):
        evaluate(m, TL, {"a": np.ones(3), "b": np.ones(4)})


def test_an_irr_under_if_is_solved_only_where_kept_and_is_the_same_root():
    # issue 10: IF(check = 0, IRR(flows), NA) solves the IRR only for the scenarios whose
    # check passes; the roots kept are pyxirr's, and the line is as if every scenario
    # had been solved. Flows: -1,000 then `x` a month for 23 months; x < 0 means no root.
    import pyxirr

    from finmodel.engine.expr import Func, irr

    x = np.array([60.0, -5.0, 45.0, 80.0, -1.0])
    m = Model()
    flows = m.line("flows", where(time("index") < 0.5, -1000.0, Input("x")), "F", "USD", "S")
    check = m.scalar("check", where(Input("x") > 0, 0.0, 2.0), "C", "code", "S")
    shared = irr(flows)
    kept = m.scalar("kept", where(check < 1, shared, Func("na", ())), "K", "rate", "S")
    every = m.scalar("every", shared, "E", "rate", "S")
    v = evaluate(m, TL, {"x": x})
    ok = x > 0
    assert np.isnan(v["kept"][~ok]).all()
    assert np.array_equal(v["kept"][ok], v["every"][ok])
    for k in np.flatnonzero(ok):
        ref = pyxirr.irr([-1000.0] + [x[k]] * 23)
        assert v["kept"][k] == pytest.approx(ref, abs=1e-12)
    # Inside the IF the other scenarios were not solved at all.
    from finmodel.engine import evaluate as evaluate_module

    seen = []
    real = evaluate_module.irr_periodic

    def spy(arr, **kw):
        seen.append(arr.shape[0])
        return real(arr, **kw)

    evaluate_module.irr_periodic = spy
    try:
        evaluate(m, TL, {"x": x}, only=["kept"])
    finally:
        evaluate_module.irr_periodic = real
    assert seen == [int(ok.sum())]


def test_a_sub_expression_used_twice_in_a_line_gives_what_it_gives_once():
    m = Model()
    grown = Input("a") * (1.0 + Input("g")) ** (time("index") / 12.0)
    twice = m.line("twice", where(grown > 5.0, grown * 2.0, grown - 1.0) + grown, "T", "USD",
                   "S")
    a, g = np.array([1.0, 4.0, 9.0]), np.array([0.05, 0.2, -0.1])
    v = evaluate(m, TL, {"a": a, "g": g})
    months = np.arange(24)[None, :]
    y = a[:, None] * (1.0 + g[:, None]) ** (months / 12.0)
    assert np.array_equal(v["twice"], np.where(y > 5.0, y * 2.0, y - 1.0) + y)


def test_an_irr_shared_inside_and_outside_an_if_is_whole_outside():
    # The same sub-expression object under IF (solved for some scenarios only) and outside
    # it (all scenarios) in one line: the partial value must not be reused outside.
    from finmodel.engine.expr import irr

    x = np.array([60.0, -5.0, 45.0])  # 45 x 23 > 1,000: a root, though the IF skips it
    m = Model()
    flows = m.line("flows", where(time("index") < 0.5, -1000.0, Input("x")), "F", "USD", "S")
    annual = (1.0 + irr(flows)) ** 12.0 - 1.0  # one object, used twice below
    m.scalar("alone", annual, "A", "rate", "S")
    m.scalar("both", where(Input("x") > 50.0, annual, 0.0) + annual, "B", "rate", "S")
    v = evaluate(m, TL, {"x": x})
    alone = v["alone"]
    assert np.isfinite(alone[[0, 2]]).all()
    assert np.array_equal(v["both"], np.where(x > 50.0, alone, 0.0) + alone, equal_nan=True)


def test_a_shift_moves_whole_columns_by_a_step_common_or_per_scenario():
    # issue 10: a shift whose step is one number for every scenario is copied as column
    # ranges; a per-scenario step goes element by element. A plain loop is the oracle:
    # lead(x, k, after)[t] = x[t + k] if t + k < 24 else after; shifted(x, k, init)[t] =
    # x[t - k] if t - k >= 0 else init.
    from finmodel.engine.expr import lead, shifted

    m = Model()
    x = m.line("x", (time("index") + 1.0) * Input("scale"), "X", "USD", "S")
    m.line("ahead", lead(x, Input("k"), Input("after")), "A", "USD", "S")
    m.line("behind", shifted(x, Input("k"), Input("after") - 1.0), "B", "USD", "S")
    scale, after = np.array([1.0, 10.0, -2.0]), np.array([7.0, 8.0, 9.0])
    for k in (0.0, 3.0, 23.0, 24.0, 30.0, np.array([1.0, 5.0, 40.0])):
        v = evaluate(m, TL, {"scale": scale, "after": after, "k": k})
        ks = np.broadcast_to(k, (3,))
        for s in range(3):
            xs = [(t + 1.0) * scale[s] for t in range(24)]
            kk = int(ks[s])
            assert v["ahead"][s].tolist() == [xs[t + kk] if t + kk < 24 else after[s]
                                              for t in range(24)]
            assert v["behind"][s].tolist() == [xs[t - kk] if t - kk >= 0 else after[s] - 1.0
                                               for t in range(24)]


def test_a_given_line_breaks_the_recursion_through_it():
    # issue 10: a group of lines lagging each other in which one line is given (as a Monte
    # Carlo gives the price path) is evaluated over all periods when no other line lags
    # one of its own; the values are those of the loop (and of stepping, when not given).
    m = Model()
    a = m.recursive_line("a", "A", "USD", "S")
    b = m.line("b", lag(a, 1, 1.0) * Input("g") + 1.0, "B", "USD", "S")
    m.define(a, b * 2.0 - where(time("index") > 5, lag(b, 2, 0.0), 0.0))
    g = np.array([0.5, 1.1])
    stepped = evaluate(m, TL, {"g": g})
    given = np.arange(48.0).reshape(2, 24) / 7.0
    v = evaluate(m, TL, {"g": g}, overrides={"a": given})
    for s in range(2):
        a_prev, b_hist = 1.0, []
        for t in range(24):
            bt = a_prev * g[s] + 1.0
            at = bt * 2.0 - (b_hist[t - 2] if t > 5 else 0.0)
            b_hist.append(bt)
            assert stepped["a"][s, t] == pytest.approx(at, rel=1e-13)
            assert stepped["b"][s, t] == pytest.approx(bt, rel=1e-13)
            a_prev = at
        expected_b = [(given[s, t - 1] if t else 1.0) * g[s] + 1.0 for t in range(24)]
        assert v["b"][s].tolist() == expected_b
        assert v["a"][s].tolist() == given[s].tolist()


def test_buffers_are_reused_without_changing_a_value():
    # issue 10: evaluations of one size reuse their arrays (Buffers); each result is the
    # one evaluated without them, bit for bit, holds only the nodes asked for, and shares
    # no memory with the buffers, which the next evaluation overwrites.
    from finmodel.engine.evaluate import Buffers
    from finmodel.engine.expr import lead, total

    m = Model()
    stock = m.recursive_line("stock", "Stock", "USD", "S")
    growth = m.line("growth", 1 + Input("g") * time("index"), "Growth", "x", "S")
    m.define(stock, maximum(lag(stock, 1, 1.0) * growth - 0.5, where(growth > 1.2, 1.0, 0.5)))
    flow = m.line("flow", -(stock - lead(stock, 2.0, 0.0)) / growth + (growth > 1.1),
                  "Flow", "USD", "S")
    cum = m.line("cum", cumulative(flow) * minimum(growth, 1.3), "Cum", "USD", "S")
    m.scalar("sum", total(cum) * 2.0, "Sum", "USD", "S")
    buffers = Buffers()
    kept = []
    for seed in range(3):
        g = np.random.default_rng(seed).uniform(-0.01, 0.03, 50)
        plain = evaluate(m, TL, {"g": g})
        reused = evaluate(m, TL, {"g": g}, only=["cum", "flow", "sum"], buffers=buffers)
        assert set(reused) == {"cum", "flow", "sum"}
        for name in reused:
            assert np.array_equal(reused[name], plain[name])
        kept.append((reused, plain))
    assert buffers._free, "the arrays were given back"
    for arr in buffers._free:
        arr[...] = np.nan
        for reused, _ in kept:
            assert not any(np.shares_memory(arr, v) for v in reused.values())
    for reused, plain in kept:
        for name in reused:
            assert np.array_equal(reused[name], plain[name])
