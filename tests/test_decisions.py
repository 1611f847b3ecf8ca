"""The operator's decisions: the fleet a site starts with, refresh, mothball and sale.

Issue 8 measured the base case before these decisions existed (greenfield fleet, refresh
every 5 years whatever the economics): mining's NPV was -$361M, with replacement fleets of
$212M (2031-01) and $249M (2036-01) that never ran; with ``refresh_interval_years = 0`` it
was -$148M. ``ai_hosting`` bought a $228M fleet in month 0 and sold it six months later.
"""

from __future__ import annotations

import numpy as np
import pytest

import finmodel
from finmodel.inputs.load import parse_assumptions
from tests.conftest import CASES, PENNY, small, small_hosting_case


@pytest.fixture(scope="module")
def base():
    return finmodel.load_assumptions("assumptions/base.toml")


@pytest.fixture(scope="module")
def greenfield(base):
    """The base site as issue 8 found it: the fleet and infrastructure bought at the start,
    network hashrate growing 15 %/yr whatever the economics."""
    return finmodel.run(finmodel.with_values(base, {"mining.fleet_owned": False,
                                                    "mining.fleet_age_years": 0.0,
                                                    "network.hashrate_model": "growth",
                                                    "network.hashrate_growth_rate": 0.15}),
                        breakevens=False)


def _runs(path):
    return finmodel.run(finmodel.load_assumptions(path), breakevens=False)


def _purchases(v, s):
    return np.flatnonzero(v[f"{s}.capex_usd"][0] < 0)


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_no_fleet_is_bought_that_is_curtailed_for_the_rest_of_the_horizon(path):
    r = _runs(path)
    for s in r.strategies:
        run = r.values[f"{s}.running"][0]
        for t in _purchases(r.values, s):
            assert run[t:].any(), f"{s} buys ASICs in month {t} that never run"


def test_greenfield_base_buys_no_fleet_that_never_runs(greenfield):
    v = greenfield.values
    # The 2031 and 2036 refreshes of issue 8 do not pay back: none is bought.
    assert not v["mining.refresh_capex_usd"].any()
    assert np.flatnonzero(v["mining.refresh_due"][0]).tolist() == [60, 120]  # 2031-01, 2036-01
    assert list(_purchases(v, "mining")) == [0]
    no_refresh = finmodel.run(finmodel.with_values(
        greenfield.assumptions, {"mining.refresh_interval_years": 0}), breakevens=False)
    npv = greenfield.summary.loc["npv_usd", "mining"]
    assert npv == pytest.approx(no_refresh.summary.loc["npv_usd", "mining"], abs=PENNY)
    # Without mothballing (standby opex = running opex, no resale of idle machines) this
    # is issue 8's "refresh_interval_years = 0" figure, -$148M; mothballing the fleet
    # from 2032 (standby opex, the idle machines sold) recovers ~$45M of it.
    a = finmodel.with_values(greenfield.assumptions, {
        "mining.standby_opex_usd_per_mw_month": None, "mining.asic_price_tiers_j_per_th": None,
        "mining.asic_price_tiers_usd_per_th": None})
    as_issue = finmodel.run(a, breakevens=False).summary.loc["npv_usd", "mining"]
    assert as_issue == pytest.approx(-148.1e6, abs=0.1e6)
    assert 40e6 < npv - as_issue < 50e6


@pytest.mark.parametrize("owned", [True, False], ids=["owned", "greenfield"])
@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_no_strategy_buys_a_fleet_it_sells_within_its_first_year(path, owned):
    a = finmodel.with_values(finmodel.load_assumptions(path), {"mining.fleet_owned": owned})
    r = finmodel.run(a, breakevens=False)
    for s in r.strategies:
        sale = r.values.get(f"{s}.asic_sale_usd")
        if sale is None:
            continue
        for t in _purchases(r.values, s):
            if r.values[f"{s}.initial_capex_usd"][0, t] < 0 and \
                    a.mining.purchase_price_usd_per_th == 0:
                continue  # infrastructure only, no machines
            assert not sale[0, t:t + 12].any(), f"{s} sells within a year of buying (month {t})"


def test_greenfield_strategy_does_not_buy_the_fleet_it_would_sell():
    # Small hosting case bought greenfield: the hall enters service 2-4 months after a
    # March start, so the converted MW would mine for under a year: no machines bought.
    data = small_hosting_case(mining={"fleet_owned": False, "purchase_price_usd_per_th": 20.0})
    v = finmodel.run(parse_assumptions(data), breakevens=False).values
    assert v["ai_hosting.greenfield_fleet_share"][0] == 0
    assert not v["ai_hosting.capex_usd"].any() and not v["ai_hosting.asic_sale_usd"].any()
    assert v["mining.capex_usd"][0, 0] == pytest.approx(-0.5e6 * 20.0)


def test_greenfield_base_converts_after_mining_a_year_and_a_half(greenfield):
    # Base: conversion starts 2026-07, phases enter service 12 and 18 months later; the
    # fleet bought in month 0 mines 18 months before its first quarter is sold.
    v = greenfield.values
    assert v["ai_hosting.greenfield_fleet_share"][0] == 1
    assert np.flatnonzero(v["ai_hosting.asic_sale_usd"][0]).tolist() == [18, 24]


def test_owned_fleet_is_not_bought_and_mines_until_converted(base):
    r = finmodel.run(base, breakevens=False)
    v = r.values
    for s in r.strategies:
        assert not v[f"{s}.initial_capex_usd"].any()
    # ai_hosting mines the owned fleet until each phase enters service (25 % in month 18,
    # the rest in month 24) and sells the machines then.
    assert (v["ai_hosting.btc_mined"][0, :18] == v["mining.btc_mined"][0, :18]).all()
    assert not v["ai_hosting.btc_mined"][0, 24:].any()
    sale = v["ai_hosting.asic_sale_usd"][0]
    assert np.flatnonzero(sale).tolist() == [18, 24]


def test_displaced_asics_sell_at_the_price_curve():
    # Small hosting case (owned 0.5 EH/s at 20 J/TH; half the MW convert in May 2026,
    # month 4). Curve: 15 J/TH -> $20/TH, 25 J/TH -> $10/TH; 20 J/TH sits halfway: $15/TH
    # with no efficiency gain or price change. 250,000 TH x $15 = $3.75M.
    data = small_hosting_case(mining={"asic_price_tiers_j_per_th": [15.0, 25.0],
                                      "asic_price_tiers_usd_per_th": [20.0, 10.0]})
    r = finmodel.run(parse_assumptions(data), breakevens=False)
    sale = r.values["ai_hosting.asic_sale_usd"][0]
    assert sale[4] == pytest.approx(3.75e6, abs=PENNY) and np.count_nonzero(sale) == 2
    # With new ASICs 10 %/yr more efficient and 6 %/yr cheaper per TH, in month 4 the fleet
    # sits at 20 / 0.9 ** (4/12) = 20.715 J/TH: 20 - 10 x 5.715 / 10 = $14.285/TH,
    # x 0.94 ** (4/12) for the price level.
    data["mining"].update(efficiency_improvement_rate=0.1, asic_price_change_rate=-0.06)
    r = finmodel.run(parse_assumptions(data), breakevens=False)
    x = 20 / 0.9 ** (4 / 12)
    per_th = (20 - (x - 15)) * 0.94 ** (4 / 12)
    assert r.values["ai_hosting.asic_sale_usd"][0, 4] == pytest.approx(2.5e5 * per_th,
                                                                      rel=1e-12)


def test_a_fleet_curtailed_for_good_is_mothballed_and_sold():
    # Network hashrate doubling every year: in the small case (revenue $85/MWh in January
    # against $50/MWh of power) the fleet stops in month 9 and never runs again.
    a = small(case={"horizon_years": 2}, network={"hashrate_growth_rate": 1.0},
              mining={"opex_usd_per_mw_month": 4_000.0, "standby_opex_usd_per_mw_month": 1_000.0,
                      "asic_price_tiers_j_per_th": [15.0, 25.0],
                      "asic_price_tiers_usd_per_th": [20.0, 10.0]})
    v = finmodel.run(a, breakevens=False).values
    run, moth = v["mining.running"][0], v["mining.mothballed"][0]
    stop = int(np.argmin(run))
    assert run[:stop].all() and not run[stop:].any() and 6 <= stop <= 12
    assert (moth == (np.arange(24) >= stop)).all()
    opex = v["mining.opex_usd"][0]
    assert opex[stop - 1] == pytest.approx(-40_000) and opex[stop] == pytest.approx(-10_000)
    # Sold once, in the first idle month, at $15/TH (20 J/TH, halfway along the curve).
    sale = v["mining.asic_sale_usd"][0]
    assert np.flatnonzero(sale).tolist() == [stop]
    assert sale[stop] == pytest.approx(5e5 * 15.0, abs=PENNY)


def test_refresh_flag_rows_are_on_the_mining_sheet(base):
    m = finmodel.run(base, breakevens=False).model
    for name in ("refresh_due", "refresh", "mothballed", "running"):
        assert m.nodes[f"mining.{name}"].sheet == "Mining"


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_npv_bridge_sums_to_the_npv_difference(path):
    r = _runs(path)
    for s in r.strategies:
        if s == "mining":
            continue
        steps = [r.summary.loc[k, s] for k in r.summary.index if k.startswith("bridge_")]
        assert len(steps) == 9
        diff = r.summary.loc["npv_vs_mining_usd", s]
        assert sum(steps) == pytest.approx(diff, rel=1e-9)
        # ...and each step is the NPV of its group of lines, strategy less mining.
        out = r.summary_json()["strategies"][s]
        assert sum(out[k] for k in out if k.startswith("bridge_")) == pytest.approx(diff,
                                                                                   rel=1e-9)
