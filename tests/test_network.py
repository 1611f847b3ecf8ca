"""Bitcoin network lines against hand calculations and the protocol's published rules."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

import finmodel
from finmodel.conventions import from_serial
from tests.conftest import small


def test_next_halving_month_from_block_height():
    # Height 930,000 on 1 Jan 2026; next halving at block 1,050,000 (epoch 5 starts at
    # 5 x 210,000). 120,000 blocks x 10 min = 1,200,000 min = 833.33 days after 1 Jan 2026
    # -> 13 Apr 2028 (day 833 after 2026-01-01 is 2028-04-13). Published projections put
    # it at "Mar-Apr 2028, one source 12 Apr 2028" (industry_facts [B3]).
    a = small(network={"block_height": 930_000}, case={"horizon_years": 3})
    r = finmodel.run(a, breakevens=False)
    assert r.values["network.next_halving_block"][0] == 1_050_000
    when = from_serial(r.values["network.next_halving_date"][0])
    assert when == dt.date(2026, 1, 1) + dt.timedelta(days=833) == dt.date(2028, 4, 13)
    # The halving flag is raised in April 2028 (month index 27) and only there.
    flag = r.values["network.halving_in_period"][0]
    assert np.flatnonzero(flag).tolist() == [27]


def test_subsidy_split_in_the_halving_month():
    # Start 1,000 blocks before a halving: height 1,049,000 on 1 Jan 2026.
    # January: 31 days x 144 = 4,464 blocks; 1,000 at 3.125 BTC + 3,464 at 1.5625 BTC
    # = 3,125 + 5,412.5 = 8,537.5 BTC of subsidy.
    a = small(network={"block_height": 1_049_000})
    r = finmodel.run(a, breakevens=False)
    assert r.values["network.blocks"][0, 0] == pytest.approx(4464.0, abs=1e-9)
    assert r.values["network.subsidy_btc"][0, 0] == pytest.approx(8537.5, abs=1e-9)
    # February: 28 x 144 = 4,032 blocks, all at 1.5625 -> 6,300 BTC.
    assert r.values["network.subsidy_btc"][0, 1] == pytest.approx(6300.0, abs=1e-9)


def test_subsidy_follows_the_satoshi_truncation_rule():
    # Bitcoin Core GetBlockSubsidy: 50e8 sats >> epoch. Epoch 10 (blocks 2.1M-2.31M) is
    # 5e9 / 1024 = 4,882,812.5 -> 4,882,812 sats = 0.04882812 BTC, not 0.048828125.
    a = small(network={"block_height": 2_100_000})
    r = finmodel.run(a, breakevens=False)
    assert r.values["network.subsidy_per_block_btc"][0, 0] == 0.04882812


def test_hashprice_from_a_known_hashrate_price_and_fee():
    # industry_facts [B25]: hashprice = 144 x (subsidy + fees) x price / hashrate (PH/s).
    # 3.125 BTC subsidy, fees 1 % of subsidy, $90,000, 1,050 EH/s = 1,050,000 PH/s:
    # 144 x 3.125 x 1.01 x 90,000 / 1,050,000 = 38.957142... USD/PH/day ([B13]: $39.82).
    a = small(network={"block_height": 930_000, "fee_btc_per_block": None,
                       "fee_share_of_subsidy": 0.01, "hashrate_eh_s": 1050.0,
                       "btc_price_usd": 90_000.0})
    r = finmodel.run(a, breakevens=False)
    expected = 144 * 3.125 * 1.01 * 90_000 / 1_050_000
    assert expected == pytest.approx(38.9571428571, rel=1e-10)
    assert r.values["network.hashprice_usd_per_ph_day"][0, 0] == pytest.approx(expected,
                                                                             rel=1e-12)


def test_growth_and_explicit_paths():
    # Start with growth: 1,000 EH/s growing 21 %/yr compounds monthly, so month 12 is
    # 1,000 x 1.21 = 1,210 and month 6 is 1,000 x 1.1 = 1,100.
    a = small(network={"hashrate_growth_rate": 0.21}, case={"horizon_years": 2})
    h = finmodel.run(a, breakevens=False).values["network.hashrate_eh_s"][0]
    assert h[6] == pytest.approx(1100.0, rel=1e-12)
    assert h[12] == pytest.approx(1210.0, rel=1e-12)
    # An explicit yearly path is flat within each model year.
    b = small(network={"btc_price_usd": None, "btc_price_path_usd": [50_000.0, 70_000.0]},
              case={"horizon_years": 2})
    p = finmodel.run(b, breakevens=False).values["network.btc_price_usd"][0]
    assert p[:12].tolist() == [50_000.0] * 12 and p[12:].tolist() == [70_000.0] * 12
