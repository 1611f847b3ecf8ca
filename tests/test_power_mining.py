"""Power and mining on a small case, every number worked by hand.

The small case (tests/conftest.py): 10 MW of mining IT load, a 0.5 EH/s fleet at 20 J/TH
(0.5 x 20 = 10 MW, exactly the site), PUE 1.1, 100 % uptime, no pool fee; a 12 MW PPA at
$50/MWh; network 1,000 EH/s, block 840,000 (3.125 BTC subsidy), no fees, BTC $100,000.

January 2026 has 31 days = 744 hours and 31 x 144 = 4,464 blocks:
  energy if running  = 10 MW x 744 h x 1.1             =   8,184 MWh
  contracted energy  = 12 MW x 744 h                   =   8,928 MWh
  BTC if running     = 4,464 x 3.125 x 0.5 / 1,000     =   6.975 BTC
  revenue if running = 6.975 x 100,000                 = 697,500 USD  (85.23 USD/MWh)
"""

from __future__ import annotations

import numpy as np
import pytest

import finmodel
from tests.conftest import PENNY, small

E_RUN, CONTRACTED, BTC_RUN = 8184.0, 8928.0, 6.975


def jan(result, line):
    return result.values[line][0, 0]


def test_running_fleet_pays_for_the_energy_it_draws():
    r = finmodel.run(small(), breakevens=False)
    assert jan(r, "mining.energy_if_running_mwh") == pytest.approx(E_RUN, rel=1e-12)
    assert jan(r, "power.contracted_mwh") == pytest.approx(CONTRACTED, rel=1e-12)
    assert jan(r, "mining.btc_mined") == pytest.approx(BTC_RUN, rel=1e-12)
    assert jan(r, "mining.revenue_usd") == pytest.approx(697_500, abs=PENNY)
    assert jan(r, "mining.running") == 1
    # 8,184 MWh x $50 = $409,200, money out.
    assert jan(r, "mining.power_cost_usd") == pytest.approx(-409_200, abs=PENNY)
    assert jan(r, "mining.revenue_per_mwh") == pytest.approx(697_500 / 8184, rel=1e-12)
    assert jan(r, "mining.marginal_power_cost_per_mwh") == pytest.approx(50.0, rel=1e-12)


def test_fleet_stops_when_revenue_per_mwh_is_below_the_power_price():
    # At $50,000/BTC: revenue 348,750 / 8,184 MWh = 42.61 USD/MWh < 50 -> curtailed.
    r = finmodel.run(small(network={"btc_price_usd": 50_000.0}), breakevens=False)
    assert jan(r, "mining.revenue_per_mwh") == pytest.approx(42.6136, abs=1e-4)
    assert jan(r, "mining.running") == 0
    assert jan(r, "mining.btc_mined") == 0
    assert jan(r, "mining.power_cost_usd") == 0
    # The same month without economic curtailment runs at a loss of 409,200 - 348,750.
    r2 = finmodel.run(small(network={"btc_price_usd": 50_000.0},
                            mining={"economic_curtailment": False}), breakevens=False)
    assert jan(r2, "mining.running") == 1
    assert jan(r2, "mining.revenue_usd") + jan(r2, "mining.power_cost_usd") == \
        pytest.approx(-60_450, abs=PENNY)


def test_take_or_pay_makes_contracted_energy_free_at_the_margin():
    # 100 % take-or-pay: 8,928 MWh x $50 = $446,400 is owed whether the fleet runs or not,
    # so the marginal cost is 0 and the fleet runs even at $50,000/BTC.
    r = finmodel.run(small(network={"btc_price_usd": 50_000.0},
                           power={"take_or_pay_share": 1.0}), breakevens=False)
    assert jan(r, "mining.power_cost_if_stopped_usd") == pytest.approx(446_400, abs=PENNY)
    assert jan(r, "mining.power_cost_if_running_usd") == pytest.approx(446_400, abs=PENNY)
    assert jan(r, "mining.marginal_power_cost_per_mwh") == 0
    assert jan(r, "mining.running") == 1
    assert jan(r, "mining.power_cost_usd") == pytest.approx(-446_400, abs=PENNY)


def test_curtailment_credit_sells_unused_energy_back_at_market():
    # Take-or-pay 100 %, credit 100 % of the $30 market price.
    # Stopped: 446,400 - 30 x 8,928 = 178,560. Running: 446,400 - 30 x (8,928 - 8,184)
    # = 424,080. Marginal: (424,080 - 178,560) / 8,184 = $30/MWh (the market price).
    tp = {"take_or_pay_share": 1.0, "curtailment_credit_share": 1.0}
    r = finmodel.run(small(network={"btc_price_usd": 50_000.0}, power=tp), breakevens=False)
    assert jan(r, "mining.power_cost_if_stopped_usd") == pytest.approx(178_560, abs=PENNY)
    assert jan(r, "mining.power_cost_if_running_usd") == pytest.approx(424_080, abs=PENNY)
    assert jan(r, "mining.marginal_power_cost_per_mwh") == pytest.approx(30.0, rel=1e-12)
    assert jan(r, "mining.running") == 1  # 42.61 > 30
    # At $30,000/BTC: revenue 209,250 / 8,184 = 25.57 < 30 -> stop and sell it all back:
    # credit 30 x 8,928 = 267,840, revenue; the power bill stays 446,400, so the net
    # cost of power is 178,560.
    r = finmodel.run(small(network={"btc_price_usd": 30_000.0}, power=tp), breakevens=False)
    assert jan(r, "mining.running") == 0
    assert jan(r, "mining.curtailment_credit_usd") == pytest.approx(267_840, abs=PENNY)
    assert jan(r, "mining.power_cost_usd") == pytest.approx(-446_400, abs=PENNY)
    assert jan(r, "mining.power_cost_usd") + jan(r, "mining.curtailment_credit_usd") == \
        pytest.approx(-178_560, abs=PENNY)
    # The credit is revenue: counted in revenue, not netted into cost.
    assert jan(r, "mining.revenue_total_usd") == pytest.approx(267_840, abs=PENNY)


def test_energy_beyond_the_contract_is_bought_at_market_plus_charges():
    # An 8 MW contract: 8 x 744 = 5,952 MWh at $50 = 297,600; the other 2,232 MWh at the
    # $30 market = 66,960; charges $3 + $1 on all 8,184 MWh = 32,736. Total 397,296.
    r = finmodel.run(small(power={"contract_mw": 8.0, "transmission_usd_per_mwh": 3.0,
                                  "other_charges_usd_per_mwh": 1.0}), breakevens=False)
    assert jan(r, "mining.power_cost_usd") == pytest.approx(-397_296, abs=PENNY)


def test_indexed_ppa_is_market_plus_adder():
    r = finmodel.run(small(power={"pricing": "indexed", "index_adder_usd_per_mwh": 7.5}),
                     breakevens=False)
    assert jan(r, "power.ppa_price_usd_per_mwh") == 37.5
    assert jan(r, "mining.power_cost_usd") == pytest.approx(-37.5 * E_RUN, abs=PENNY)


def test_fleet_is_capped_by_the_mining_mw():
    # 0.8 EH/s at 20 J/TH would draw 16 MW; the site gives 10 MW -> 0.5 EH/s powered.
    r = finmodel.run(small(mining={"hashrate_eh_s": 0.8}), breakevens=False)
    assert jan(r, "mining.powered_hashrate_eh_s") == pytest.approx(0.5, rel=1e-12)
    assert jan(r, "mining.it_load_mw") == pytest.approx(10.0, rel=1e-12)


def test_capex_opex_and_refresh_cycle():
    # Initial: 0.5 EH/s = 500,000 TH x $20 = $10.0M, plus $300k/MW x 10 MW = $3.0M.
    # Opex: $4,000/MW-month x 10 MW = $40,000, +12 %/yr -> month 12 is 44,800.
    # Refresh every year: generation 1 from month 12 at 20 x (1 - 0.1) = 18 J/TH, filling
    # 10 MW -> 10/18 EH/s = 555,555.6 TH at $15 x (1 - 0.2) = $12/TH -> $6,666,666.67.
    # At $200,000/BTC it earns ~$1.1M a month over power for its 12 months: it pays back.
    a = small(case={"horizon_years": 2}, network={"btc_price_usd": 200_000.0},
              mining={"purchase_price_usd_per_th": 20.0,
                      "infrastructure_capex_usd_per_mw": 300_000.0,
                      "opex_usd_per_mw_month": 4_000.0, "opex_escalator_rate": 0.12,
                      "refresh_interval_years": 1, "refresh_price_usd_per_th": 15.0,
                      "asic_price_change_rate": -0.2, "efficiency_improvement_rate": 0.1})
    r = finmodel.run(a, breakevens=False)
    capex = r.values["mining.capex_usd"][0]
    assert capex[0] == pytest.approx(-13_000_000, abs=PENNY)
    assert capex[12] == pytest.approx(-(10 / 18) * 1e6 * 12.0, abs=PENNY)
    assert np.count_nonzero(capex) == 2
    assert r.values["mining.efficiency_j_per_th"][0, 12] == pytest.approx(18.0, rel=1e-12)
    assert r.values["mining.opex_usd"][0, 0] == pytest.approx(-40_000, abs=PENNY)
    assert r.values["mining.opex_usd"][0, 12] == pytest.approx(-44_800, abs=PENNY)
    # EBITDA and free cash flow are the sums of their lines.
    v = r.values
    assert np.allclose(v["mining.ebitda_usd"], v["mining.revenue_usd"]
                       + v["mining.power_cost_usd"] + v["mining.opex_usd"], rtol=0, atol=1e-6)
    assert np.allclose(v["mining.unlevered_fcf_usd"], v["mining.ebitda_usd"] + capex,
                       rtol=0, atol=1e-6)


def test_refresh_that_does_not_pay_back_is_not_bought():
    # The same refresh at $100,000/BTC. Month 12 (Jan 2027, 31 days, 4,464 blocks) of the
    # 18 J/TH fleet: 10/18 EH/s of 1,000 -> 4,464 x 3.125 x 10/18 / 1,000 x $100,000 =
    # $775,000 of revenue against 10 MW x 744 h x 1.1 x $50 = $409,200 of power: a margin
    # of ~$366k a month, ~$4.4M over its 12-month life, below its $6.67M cost. No refresh:
    # the 20 J/TH fleet runs on.
    a = small(case={"horizon_years": 2},
              mining={"refresh_interval_years": 1, "refresh_price_usd_per_th": 15.0,
                      "asic_price_change_rate": -0.2, "efficiency_improvement_rate": 0.1})
    v = finmodel.run(a, breakevens=False).values
    pv = v["mining.new_fleet_life_margin_pv_usd"][0, 12]
    disc12 = 1.1 ** (-13 / 12)
    assert v["mining.new_fleet_margin_pv_usd"][0, 12] == pytest.approx(
        (775_000 - 409_200) * disc12, rel=1e-9)
    assert 4.0e6 * disc12 < pv < 4.4e6 * disc12
    assert v["mining.new_fleet_cost_usd"][0, 12] == pytest.approx(6_666_666.67, abs=0.01)
    assert v["mining.refresh_due"][0, 12] == 1 and v["mining.refresh"][0].sum() == 0
    assert not v["mining.refresh_capex_usd"].any()
    assert v["mining.efficiency_j_per_th"][0, 23] == 20.0


def test_btc_mined_never_exceeds_the_fleets_share_of_issuance():
    a = finmodel.load_assumptions("assumptions/base.toml")
    v = finmodel.run(a, breakevens=False).values
    cap = v["network.rewards_btc"] * v["mining.powered_hashrate_eh_s"] / v["network.hashrate_eh_s"]
    assert np.all(v["mining.btc_mined"] <= cap * (1 + 1e-12))
