"""Valuation conventions against numpy-financial, pyxirr and hand calculations."""

from __future__ import annotations

import numpy as np
import numpy_financial as npf
import pytest
import pyxirr
from hypothesis import given, settings
from hypothesis import strategies as st

import finmodel
from finmodel.engine.solve import bracketed_root, irr_periodic, irr_reasons
from finmodel.engine.expr import maximum, minimum, wrap
from tests.conftest import small


@pytest.fixture(scope="module")
def base():
    return finmodel.run(finmodel.load_assumptions("assumptions/base.toml"))


@pytest.fixture(scope="module")
def profitable():
    # The base case at a higher BTC price, so that IRR and payback exist.
    a = finmodel.load_assumptions("assumptions/base.toml")
    a = finmodel.with_values(a, {"network.btc_price_usd": 250_000.0})
    return finmodel.run(a)


def test_npv_is_excels_npv_which_is_numpy_financial_with_a_leading_zero(profitable):
    # Excel NPV(r, v1..vn) discounts v1 by one period; numpy_financial.npv discounts the
    # first value by zero periods, hence the leading 0.
    cf = profitable.values["mining.unlevered_fcf_usd"][0]
    r_m = 1.10 ** (1 / 12) - 1
    assert profitable.values["valuation.monthly_discount_rate"][0] == pytest.approx(r_m)
    assert profitable.summary.loc["npv_usd", "mining"] == pytest.approx(
        npf.npv(r_m, np.r_[0.0, cf]), rel=1e-12)


def test_project_irr_agrees_with_numpy_financial_and_pyxirr():
    # One sign change (an outlay, then 5 years of constant margin): a single root, which
    # numpy-financial and pyxirr must both find.
    a = small(case={"horizon_years": 5}, mining={"purchase_price_usd_per_th": 20.0})
    r = finmodel.run(a, breakevens=False)
    cf = r.values["mining.unlevered_fcf_usd"][0]
    assert (np.diff(np.sign(cf[cf != 0])) != 0).sum() == 1
    irr = r.summary.loc["project_irr", "mining"]
    assert irr == pytest.approx((1 + npf.irr(cf)) ** 12 - 1, rel=1e-9)
    assert irr == pytest.approx((1 + pyxirr.irr(cf)) ** 12 - 1, rel=1e-9)


def _checked(flows: list[float]) -> tuple[float, float]:
    """(IRR check code, annual IRR as reported) of a monthly series, through the model."""
    import datetime as dt

    from finmodel.engine.evaluate import evaluate
    from finmodel.engine.expr import PathInput, time
    from finmodel.engine.graph import Model
    from finmodel.engine.timeline import Timeline
    from finmodel.valuation import add_return_metrics

    m = Model()
    f = m.line("x.flows", PathInput("flows", time("index") + 1), "", "USD", "S")
    pos = m.line("x.in", maximum(f, 0), "", "USD", "S")
    neg = m.line("x.out", minimum(f, 0), "", "USD", "S")
    add_return_metrics(m, "x", "project", f, wrap(0.01), pos, neg, "IRR")
    v = evaluate(m, Timeline(dt.date(2026, 1, 1), len(flows)),
                 {"case_horizon_years": len(flows) / 12}, {"flows": [flows]})
    return v["x.project.irr_check"][0], v["x.project_irr"][0]


def test_irr_only_where_the_series_is_investment_shaped():
    # -100, +230, -132: NPV is zero at 10 % and at 20 % a month (two crossings): n/a.
    code, irr = _checked([-100.0, 230.0, -132.0] + [0.0] * 9)
    assert code == 3 and np.isnan(irr)
    # Starts with an inflow (a site that already mines): n/a, whatever the roots.
    code, irr = _checked([50.0, -100.0, 60.0] + [0.0] * 9)
    assert code == 2 and np.isnan(irr)
    # Conventional: out, then in: shown, and equal to numpy-financial's root.
    code, irr = _checked([-100.0, 0.0, 60.0, 60.0] + [0.0] * 8)
    assert code == 0
    assert irr == pytest.approx((1 + npf.irr([-100.0, 0.0, 60.0, 60.0])) ** 12 - 1, rel=1e-9)
    # A later outflow, but cumulative cash crosses zero once and ends positive (Norstrom):
    # shown. -100, +80, +80, -20: cumulative -100, -20, +60, +40.
    code, irr = _checked([-100.0, 80.0, 80.0, -20.0] + [0.0] * 8)
    assert code == 0
    assert irr == pytest.approx((1 + npf.irr([-100.0, 80.0, 80.0, -20.0])) ** 12 - 1,
                                rel=1e-9)
    # Nothing at all.
    assert _checked([0.0] * 12)[0] == 1


def test_owned_site_mining_irr_is_na_with_its_reason(profitable):
    # The base site already mines: its first flow is an inflow, so no IRR, and the note
    # says why in the summary JSON; MIRR and the profitability index are still shown.
    assert np.isnan(profitable.summary.loc["project_irr", "mining"])
    out = profitable.summary_json()["strategies"]["mining"]
    assert out["project_irr"] is None and "inflow" in out["project_irr_note"]
    assert out["mirr"] is not None and out["profitability_index"] is not None


def test_payback_is_interpolated_within_the_month():
    # Hand case: -13,000,000 at month 0 then EBITDA; payback where cumulative turns >= 0.
    a = small(case={"horizon_years": 5},
              mining={"purchase_price_usd_per_th": 20.0,
                      "infrastructure_capex_usd_per_mw": 300_000.0})
    r = finmodel.run(a, breakevens=False)
    cf = r.values["mining.unlevered_fcf_usd"][0]
    cum = np.cumsum(cf)
    assert cum[0] < 0 < cum[-1]
    k = int(np.argmax(cum >= 0))  # first month (0-based) with cumulative >= 0
    # Flows at month ends: cumulative is cum[k-1] at the end of month k-1 (time k months)
    # and crosses zero a fraction -cum[k-1] / cf[k] into month k.
    expected = (k + (-cum[k - 1]) / cf[k]) / 12
    assert r.summary.loc["payback_years", "mining"] == pytest.approx(expected, rel=1e-12)
    assert 3.0 < expected < 5.0


def test_payback_never_reached_is_missing_not_zero(base):
    # The base site bought greenfield: the fleet and infrastructure never earn back.
    a = finmodel.with_values(base.assumptions, {"mining.fleet_owned": False})
    greenfield = finmodel.run(a, breakevens=False)
    assert greenfield.values["mining.cumulative_fcf_usd"][0].max() < 0
    assert np.isnan(greenfield.summary.loc["payback_years", "mining"])
    assert greenfield.summary_json()["strategies"]["mining"]["payback_years"] is None


def test_breakeven_btc_price_put_back_gives_zero_npv(base):
    # The owned base fleet is worth its resale value even at a zero BTC price: no
    # break-even, and the reason says so.
    assert np.isnan(base.summary.loc["breakeven_btc_price_usd", "mining"])
    assert "zero BTC price" in base.reasons["mining.breakeven_btc_price"][0]
    # Bought greenfield, it has one.
    g = finmodel.run(finmodel.with_values(base.assumptions, {"mining.fleet_owned": False}))
    be = g.summary.loc["breakeven_btc_price_usd", "mining"]
    a = finmodel.with_values(g.assumptions, {"network.btc_price_usd": be})
    npv = finmodel.run(a, breakevens=False).summary.loc["npv_usd", "mining"]
    # 1 USD on a project of several hundred million USD of capex.
    assert abs(npv) < 1.0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-50, 100), min_size=12, max_size=120),
       st.floats(10, 500))
def test_npv_at_the_irr_is_zero(flows, outlay):
    cf = np.array([[-outlay, *flows]])
    r = irr_periodic(cf)[0]
    if np.isnan(r):
        assert irr_reasons(cf, np.array([r]))[0] != ""
        return
    # Relative to the size of the discounted flows: at -86 %/period they are ~1e10 x.
    scale = np.abs(cf[0] * (1 + r) ** -np.arange(cf.shape[1])).sum()
    assert abs(npf.npv(r, cf[0])) <= 1e-9 * scale
    if np.sum(np.diff(np.sign(cf[0][cf[0] != 0])) != 0) == 1:
        # One sign change: one root above -100 %, which pyxirr must find too.
        assert r == pytest.approx(pyxirr.irr(cf[0]), abs=1e-8)


def test_irr_reasons_say_why_there_is_none():
    flows = np.array([[1.0, 2.0, 0.0], [-1.0, -2.0, 0.0], [-10.0, 1.0, 12.0]])
    rates = irr_periodic(flows)
    why = irr_reasons(flows, rates)
    assert np.isnan(rates[:2]).all()
    assert why[0].startswith("no negative") and why[1].startswith("no positive")
    assert why[2] == ""


def test_bracketed_root_matches_brentq_and_reports_no_bracket():
    from scipy.optimize import brentq

    k = np.array([2.0, 5.0, 10.0, -1.0])
    f = lambda x: x ** 3 - k * x - 5  # noqa: E731
    roots, why = bracketed_root(f, np.zeros(4), np.array([10.0, 10.0, 10.0, 0.5]))
    for i, ki in enumerate(k[:3]):
        assert roots[i] == pytest.approx(brentq(lambda x, ki=ki: x ** 3 - ki * x - 5, 0, 10),
                                         rel=1e-9)
    assert np.isnan(roots[3]) and "not crossed" in why[3]


def test_payback_with_nothing_invested_is_missing_with_the_reason(base):
    # The base site's owned fleet kept mining: cumulative cash is never negative, so there
    # is no investment to pay back — not a payback of 0.00 years.
    assert base.values["mining.cumulative_fcf_usd"][0].min() >= 0
    assert np.isnan(base.summary.loc["payback_years", "mining"])
    assert "no investment to pay back" in base.reasons["mining.payback_years"][0]
    js = base.summary_json()["strategies"]
    assert js["mining"]["payback_years"] is None
    assert "no investment to pay back" in js["mining"]["payback_years_note"]
    # Converting invests: shown, no note.
    assert base.summary.loc["payback_years", "ai_hosting"] > 0
    assert js["ai_hosting"]["payback_years_note"] is None
    # Never paid back: the other reason.
    g = finmodel.run(finmodel.with_values(base.assumptions, {"mining.fleet_owned": False}),
                     breakevens=False)
    assert "not paid back" in g.reasons["mining.payback_years"][0]


def test_payback_ignores_a_prepayment_received_before_the_capex():
    # IREN-style: 20 % of the contract is prepaid at signing, before the GPUs are bought,
    # so cumulative cash is positive, then deeply negative, then recovers. Payback is the
    # month it recovers for good: after the last month with negative cumulative cash k,
    # k + 1 months plus the fraction of month k + 1 that closes the gap.
    a = finmodel.load_assumptions("assumptions/iren_microsoft_style.toml")
    r = finmodel.run(a, breakevens=False)
    cf = r.values["ai_hosting.unlevered_fcf_usd"][0]
    cum = np.cumsum(cf)
    assert cum[0] > 0 and cum.min() < 0 < cum[-1]
    k = int(np.flatnonzero(cum < 0)[-1])
    expected = (k + 1 + -cum[k] / cf[k + 1]) / 12
    assert r.summary.loc["payback_years", "ai_hosting"] == pytest.approx(expected, rel=1e-12)


def test_irr_of_a_root_on_a_scan_rate_is_exact():
    # Issue 8: -100 then 110 is 10 % by hand (110 / 1.1 = 100), a rate the IRR scan tries;
    # the NPV there is exactly zero, which once hid the root (NaN).
    assert irr_periodic(np.array([[-100.0, 110.0]]))[0] == 0.1
    flows = np.array([[-100.0, 0.0, 121.0], [-100.0, 0.0, 0.0], [-100.0, 110.0, 0.0]])
    rates = irr_periodic(flows)
    assert rates[0] == pytest.approx(0.1, rel=1e-14)  # 121 / 1.1^2 = 100
    assert np.isnan(rates[1])
    assert rates[2] == 0.1
    assert irr_reasons(flows, rates).tolist() == ["", "no positive cash flow: no IRR", ""]


def test_zeros_are_not_sign_changes():
    # Issue 8: -100, 0, 0, 121 changes sign once (zeros skipped, Descartes' rule), so it
    # has one root and no "several sign changes" warning; -100, 0, 60, 0, -10, 60 twice.
    from finmodel.engine.solve import sign_changes

    flows = np.array([[-100.0, 0.0, 0.0, 121.0, 0.0, 0.0],
                      [0.0, -100.0, 0.0, 0.0, 0.0, 130.0],
                      [-100.0, 0.0, 60.0, 0.0, -10.0, 60.0]])
    assert sign_changes(flows).tolist() == [1, 1, 3]
    rates = irr_periodic(flows)
    assert rates[0] == pytest.approx(1.21 ** (1 / 3) - 1, rel=1e-13)
    assert rates[1] == pytest.approx(1.3 ** 0.25 - 1, rel=1e-13)
    why = irr_reasons(flows, rates)
    assert why[0] == "" and why[1] == ""
    assert why[2] == "several sign changes: the root nearest the guess"


def test_irr_matches_pyxirr_and_is_the_same_in_any_chunk():
    # Investment-shaped series, some with a second outlay (several sign changes).
    rng = np.random.default_rng(8)
    c = np.exp(rng.normal(0, 0.3, (400, 180))) / 90.0
    c[:, 0] = -1.0
    c[::3, 60] -= 0.5
    rates = irr_periodic(c)
    # pyxirr from its default guess: from 0.01 it stops up to 1e-11 short on a few rows.
    ref = np.array([pyxirr.irr(row) for row in c], dtype=float)
    both = np.isfinite(rates) & np.isfinite(ref)
    assert both.sum() == 400
    np.testing.assert_allclose(rates[both], ref[both], rtol=0, atol=1e-12)
    pieces = np.concatenate([irr_periodic(c[i:i + k]) for i, k in
                             ((0, 1), (1, 7), (8, 100), (108, 292))])
    assert np.array_equal(pieces, rates)


def test_mirr_is_excels_mirr_as_numpy_financial_computes_it(profitable):
    # numpy_financial.mirr follows Excel's MIRR (finance and reinvestment rate both the
    # monthly discount rate here); the model annualises the monthly MIRR. The
    # profitability index is PV of the inflows over PV of the outflows, by hand.
    r_m = 1.10 ** (1 / 12) - 1
    for s in ("mining", "ai_hosting", "hybrid"):
        cf = profitable.values[f"{s}.unlevered_fcf_usd"][0]
        expected = (1 + npf.mirr(cf, r_m, r_m)) ** 12 - 1
        assert profitable.summary.loc["mirr", s] == pytest.approx(expected, rel=1e-12)
        disc = (1 + r_m) ** -np.arange(1, len(cf) + 1)
        pi = (np.maximum(cf, 0) @ disc) / -(np.minimum(cf, 0) @ disc)
        assert profitable.summary.loc["profitability_index", s] == pytest.approx(pi, rel=1e-12)


def test_incremental_return_is_mirr_when_the_deposit_comes_first(base):
    # Base: the tenant's security deposit arrives at signing, before the conversion capex,
    # so converting's flows less mining's open with an inflow: no IRR means a return
    # there. Their MIRR (finance and reinvestment at the discount rate) is numpy-financial's
    # MIRR on the same monthly flows, annualised; the PI is PV in / -PV out by hand.
    v = base.values
    rm = v["valuation.monthly_discount_rate"][0]
    inc = v["ai_hosting.incremental_fcf_usd"][0]
    assert inc[np.flatnonzero(inc)[0]] > 0
    assert np.isnan(base.summary.loc["incremental_irr", "ai_hosting"])
    assert "inflow" in base.reasons["ai_hosting.incremental_irr"][0]
    assert "incremental MIRR" in base.reasons["ai_hosting.incremental_irr"][0]
    assert base.summary.loc["incremental_mirr", "ai_hosting"] == pytest.approx(
        (1 + npf.mirr(inc, rm, rm)) ** 12 - 1, rel=1e-12)
    disc = (1 + rm) ** -np.arange(1, inc.size + 1)
    pv_in, pv_out = (np.maximum(inc, 0) * disc).sum(), (np.minimum(inc, 0) * disc).sum()
    assert base.summary.loc["incremental_profitability_index", "ai_hosting"] == pytest.approx(
        pv_in / -pv_out, rel=1e-12)
    # MIRR at the discount rate is above it exactly when converting beats mining.
    assert (base.summary.loc["incremental_mirr", "ai_hosting"] > 0.10) == (
        base.summary.loc["npv_vs_mining_usd", "ai_hosting"] > 0)


def test_a_restricted_deposit_is_not_free_cash_flow(base):
    # The contract holds the deposit in escrow: neither its receipt nor its return is the
    # project's cash. The NPV falls by exactly the deposit's own NPV (received at signing,
    # returned at the end of the term), and the incremental flows become investment-shaped:
    # their IRR is numpy-financial's, annualised.
    a = finmodel.with_values(base.assumptions, {"hosting.security_deposit_restricted": True})
    r = finmodel.run(a, breakevens=False)
    rm = base.values["valuation.monthly_discount_rate"][0]
    dep = base.values["ai_hosting.hosting.deposit_usd"][0]
    assert dep.max() > 0 and dep.min() < 0  # received, then returned
    assert not r.values["ai_hosting.hosting.deposit_usd"].any()
    dep_npv = (dep * (1 + rm) ** -np.arange(1, dep.size + 1)).sum()
    assert base.summary.loc["npv_usd", "ai_hosting"] - r.summary.loc["npv_usd", "ai_hosting"] \
        == pytest.approx(dep_npv, rel=1e-9)
    inc = r.values["ai_hosting.incremental_fcf_usd"][0]
    assert inc[np.flatnonzero(inc)[0]] < 0
    assert r.summary.loc["incremental_irr", "ai_hosting"] == pytest.approx(
        (1 + npf.irr(inc)) ** 12 - 1, rel=1e-9)
    assert r.reasons["ai_hosting.incremental_irr"][0] == ""


def test_no_break_even_btc_price_on_an_owned_endogenous_site_and_why(base):
    # Base: an owned fleet (no capex) sold at its ASIC-curve value when it stops, and an
    # endogenous network hashrate. At a BTC price path scaled to a millionth, the network
    # hashrate falls until hashprice is back near the reference cash cost, so mining's NPV
    # is still positive: no BTC price level makes it zero, and the reason says both.
    why = base.reasons["mining.breakeven_btc_price"][0]
    assert "zero BTC price" in why and "ASIC-curve value" in why and "endogenous" in why
    price = base.values["network.btc_price_usd"]
    r = finmodel.run(base.assumptions, lines={"network.btc_price_usd": price * 1e-6},
                     breakevens=False)
    assert r.summary.loc["npv_usd", "mining"] > 0
    h = r.values["network.hashrate_eh_s"][0]
    assert h[-1] < 1e-3 * base.values["network.hashrate_eh_s"][0][-1]
    # A site on the growth hashrate model (Riot style) has no such rescue: its reason is
    # the zero-price one alone (power sold back covers the costs there).
    riot = finmodel.run(finmodel.load_assumptions("assumptions/riot_style_fixed_block.toml"))
    why = riot.reasons["mining.breakeven_btc_price"][0]
    assert "zero BTC price" in why and "endogenous" not in why
