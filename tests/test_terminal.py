"""Terminal value that cannot invent or destroy value: a salvage floor under any multiple,
and GPUs sold at their residual value when the case values nothing beyond the horizon."""

from __future__ import annotations

import pytest

import finmodel
from tests.conftest import PENNY, small


def test_a_multiple_of_negative_ebitda_is_floored_at_the_salvage_value():
    # The small case at $30,000/BTC: the fleet is curtailed all year (revenue ~$25.6/MWh
    # against $50/MWh of power), so EBITDA is the opex alone: 12 x -$40,000 = -$480,000.
    # 8 x that would be a -$3.84M terminal value; the floor is $100,000/MW x 12 MW = $1.2M.
    a = small(network={"btc_price_usd": 30_000.0},
              mining={"opex_usd_per_mw_month": 4_000.0})
    a = finmodel.with_values(a, {"valuation.terminal_method": "exit_multiple",
                                 "valuation.exit_multiple": 8.0,
                                 "valuation.salvage_usd_per_mw": 100_000.0})
    v = finmodel.run(a, breakevens=False).values
    assert v["mining.ltm_ebitda_usd"][0, 11] == pytest.approx(-480_000, abs=PENNY)
    tv = v["mining.terminal_value_usd"][0]
    assert tv[11] == pytest.approx(1.2e6, abs=PENNY) and not tv[:11].any()
    # A positive multiple above the floor is kept as it is.
    b = finmodel.with_values(a, {"network.btc_price_usd": 100_000.0})
    v = finmodel.run(b, breakevens=False).values
    assert v["mining.terminal_value_usd"][0, 11] == pytest.approx(
        8 * v["mining.ltm_ebitda_usd"][0, 11], rel=1e-12)
    assert v["mining.terminal_value_usd"][0, 11] > 1.2e6


def test_gpus_are_sold_at_their_residual_value_at_the_horizon():
    # Bitdeer-style cloud hybrid with no terminal value: 100 MW x 380 GPUs at $76,000,
    # half ready 9 and half 12 months after a March 2026 start, replaced every 5 years.
    # In the last month (179) phase 1's GPUs are 179 - 2 - 9 = 168 -> 48 months old (year
    # 5: 10 % of cost), phase 2's 45 months (year 4: 25 %); each was bought at
    # $76,000 x 0.95 ** (months since the start / 12).
    a = finmodel.load_assumptions("assumptions/bitdeer_hybrid.toml")
    a = finmodel.with_values(a, {"valuation.terminal_method": "none",
                                 "cloud.gpu_residual_shares": [0.8, 0.6, 0.4, 0.25, 0.1]})
    v = finmodel.run(a, breakevens=False).values
    each = 50 * 380 * 76_000.0
    expected = (each * 0.95 ** ((179 - 48) / 12) * 0.1
                + each * 0.95 ** ((179 - 45) / 12) * 0.25)
    residual = v["cloud_hybrid.cloud.gpu_residual_usd"][0]
    assert residual[179] == pytest.approx(expected, rel=1e-12)
    assert not residual[:179].any()


def test_lease_renewal_re_lets_the_hall_net_of_re_letting_capex():
    # Base, valued with the hall re-let at the horizon: r = 10 %, g = 2 %, renewed rent
    # 90 % of the last twelve months', $1.5M per MW of AI IT to re-let every 8 years.
    # By hand, from the model's own monthly lines: N = last twelve months' free cash flow,
    # R = last twelve months' rent, C = 1.5e6 x the hall's MW; q = (1.02 / 1.10) ** 8;
    # TV = (N + (0.9 - 1) R) x 1.02 / 0.08 - C / (1 - q).
    base = finmodel.load_assumptions("assumptions/base.toml")
    a = finmodel.with_values(base, {"valuation.terminal_method": "lease_renewal",
                                    "valuation.terminal_growth_rate": 0.02,
                                    "valuation.release_rent_share": 0.9,
                                    "valuation.release_capex_usd_per_mw": 1.5e6,
                                    "valuation.release_term_years": 8.0})
    r = finmodel.run(a, breakevens=False)
    v = r.values
    for s in ("ai_hosting", "hybrid"):
        n = v[f"{s}.operating_fcf_usd"][0][-12:].sum()
        rent = v[f"{s}.hosting.rent_usd"][0][-12:].sum()
        mw = float(v[f"{s}.hosting.ai_it_mw"][0])
        assert rent > 0 and mw > 0
        q = (1.02 / 1.10) ** 8
        expected = (n + (0.9 - 1) * rent) * 1.02 / 0.08 - 1.5e6 * mw / (1 - q)
        tv = v[f"{s}.terminal_value_usd"][0]
        assert tv[-1] == pytest.approx(expected, rel=1e-12)
        assert not tv[:-1].any()
    assert v["hybrid.hosting.ai_it_mw"][0] == 40.0  # the case file's ai_it_mw
    # Nothing to re-let (mining): the growing perpetuity of free cash flow, as
    # perpetuity_growth gives; and with the rent kept and no capex, the hall's is too.
    same = finmodel.with_values(a, {"valuation.release_rent_share": 1.0,
                                    "valuation.release_capex_usd_per_mw": 0.0})
    pg = finmodel.with_values(same, {"valuation.terminal_method": "perpetuity_growth"})
    x, y = finmodel.run(same, breakevens=False), finmodel.run(pg, breakevens=False)
    for s in ("mining", "ai_hosting", "hybrid"):
        assert x.values[f"{s}.terminal_value_usd"][0][-1] == pytest.approx(
            y.values[f"{s}.terminal_value_usd"][0][-1], rel=1e-12)
    # Growth at or above the discount rate has no perpetuity: refused, naming the field.
    with pytest.raises(finmodel.InputError, match="valuation.terminal_growth_rate"):
        finmodel.with_values(a, {"valuation.terminal_growth_rate": 0.10})
    # ... and a hair below it has a perpetuity of any size (fuzzed: 0.0999999 at 10 % gave
    # an NPV of 1.09e14 USD): at least half a point below, which is still accepted.
    r = a.case.discount_rate
    with pytest.raises(finmodel.InputError, match="at least 0.005 below case.discount_rate"):
        finmodel.with_values(a, {"valuation.terminal_growth_rate": r - 1e-7})
    assert finmodel.with_values(a, {"valuation.terminal_growth_rate": r - 0.005}) \
        .valuation.terminal_growth_rate == pytest.approx(r - 0.005)
