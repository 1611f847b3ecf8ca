"""The endogenous hashrate model: growth at most the stated rate, slowing as hashprice nears
a reference fleet's cash cost, falling below it."""

from __future__ import annotations

import numpy as np
import pytest

import finmodel
from tests.conftest import small

ENDO = {"hashrate_model": "endogenous", "hashrate_growth_rate": 0.3,
        "reference_efficiency_j_per_th": 20.0, "reference_power_price_usd_per_mwh": 60.0,
        "hashrate_adjustment_speed": 0.5}


def test_first_step_by_hand():
    # Small case: 1,000 EH/s, 3.125 BTC x 144 blocks a day at $100,000 -> hashprice
    # 45,000,000 / 1,000,000 PH/s = $45/PH/day. Reference: 20 J/TH -> 20 kW per PH/s,
    # 0.48 MWh a day x $60 = $28.8/PH/day. (45 / 28.8) ** 0.5 = 1.25 a month, above the
    # cap 1.3 ** (1/12) = 1.0221: hashrate grows at the cap.
    r = finmodel.run(small(case={"horizon_years": 2}, network=ENDO), breakevens=False)
    v = r.values
    assert v["network.hashprice_usd_per_ph_day"][0, 0] == pytest.approx(45.0, rel=1e-12)
    assert v["network.reference_cash_cost_usd_per_ph_day"][0, 0] == pytest.approx(28.8)
    h = v["network.hashrate_eh_s"][0]
    assert h[1] == pytest.approx(1000 * 1.3 ** (1 / 12), rel=1e-12)
    # At $130/MWh the reference cost is $62.4: hashprice is below it, so hashrate falls:
    # month 1 = 1,000 x (45 / 62.4) ** 0.5 = 849.2 EH/s.
    net = dict(ENDO, reference_power_price_usd_per_mwh=130.0)
    h = finmodel.run(small(case={"horizon_years": 2}, network=net),
                     breakevens=False).values["network.hashrate_eh_s"][0]
    assert h[1] == pytest.approx(1000 * (45 / 62.4) ** 0.5, rel=1e-12)


def test_hashrate_settles_where_hashprice_meets_the_reference_cost():
    # With a flat BTC price and no halving in two years, the network grows (or shrinks)
    # until hashprice is near the reference cost, and stays there.
    r = finmodel.run(small(case={"horizon_years": 2}, network=ENDO), breakevens=False)
    v = r.values
    ratio = (v["network.hashprice_usd_per_ph_day"][0]
             / v["network.reference_cash_cost_usd_per_ph_day"][0])
    assert ratio[0] > 1.5 and ratio[-1] == pytest.approx(1.0, abs=0.05)
    assert np.all(np.diff(ratio) <= 1e-12)


def test_base_case_hashprice_stays_near_a_fleets_cost():
    # Issue 8: with +15 %/yr hashrate against +10 %/yr price, hashprice fell to ~$1.25 by
    # 2040, below any fleet's power cost. The shipped base case now uses the endogenous
    # model: hashprice tracks the reference fleet's cash cost (halvings aside).
    r = finmodel.run(finmodel.load_assumptions("assumptions/base.toml"), breakevens=False)
    v = r.values
    hp = v["network.hashprice_usd_per_ph_day"][0]
    cost = v["network.reference_cash_cost_usd_per_ph_day"][0]
    assert hp[-1] > 5.0
    assert np.all(hp[24:] / cost[24:] > 0.5) and np.all(hp[24:] / cost[24:] < 2.0)
