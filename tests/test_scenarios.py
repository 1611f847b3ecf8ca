"""Many scenarios in one pass give exactly what one run per scenario gives."""

from __future__ import annotations

import numpy as np
import pytest

import finmodel

A = finmodel.load_assumptions("assumptions/base.toml")


def test_an_input_array_equals_one_run_per_value():
    prices = np.array([60_000.0, 90_000.0, 150_000.0, 250_000.0])
    many = finmodel.run(A, inputs={"network.btc_price_usd": prices})
    assert many.n_scenarios == 4
    metrics = many.metrics("mining")
    for k, p in enumerate(prices):
        one = finmodel.run(finmodel.with_values(A, {"network.btc_price_usd": float(p)}))
        np.testing.assert_allclose(many.line("mining.unlevered_fcf_usd").iloc[k],
                                   one.values["mining.unlevered_fcf_usd"][0], rtol=1e-12)
        for key in metrics.columns:
            v = one.summary.loc[key, "mining"]
            if key == "breakeven_btc_price_usd":  # solved to the root-finder's tolerance
                assert metrics.loc[k, key] == pytest.approx(v, rel=1e-8, nan_ok=True)
            else:
                assert metrics.loc[k, key] == pytest.approx(v, rel=1e-12, nan_ok=True)


def test_every_break_even_of_many_scenarios_equals_one_run_each():
    # All break-evens of all strategies and scenarios are solved together (rows of one
    # vectorised evaluation); each must be what a run of that scenario alone solves.
    rates = np.array([12.0, 18.0, 30.0])
    many = finmodel.run(A, inputs={"hosting.lease_rate_usd_per_kw_month": rates})
    solved = [x.name for x in many.model.scalars if x.solved]
    assert len(solved) >= 7
    for k, rate in enumerate(rates):
        one = finmodel.run(finmodel.with_values(A, {"hosting.lease_rate_usd_per_kw_month":
                                                    float(rate)}))
        for name in solved:
            assert many.values[name][k] == pytest.approx(one.values[name][0], rel=1e-8,
                                                         nan_ok=True), name
            assert many.reasons[name][k] == one.reasons[name][0]


def test_price_paths_given_as_lines():
    months = A.case.horizon_years * 12
    rng = np.random.default_rng(7)
    paths = 90_000 * np.exp(np.cumsum(rng.normal(0, 0.08, (3, months)), axis=1))
    many = finmodel.run(A, lines={"network.btc_price_usd": paths}, breakevens=False)
    for k in range(3):
        one = finmodel.run(A, lines={"network.btc_price_usd": paths[k]}, breakevens=False)
        assert many.metrics("mining").loc[k, "npv_usd"] == pytest.approx(
            one.summary.loc["npv_usd", "mining"], rel=1e-12)
    # The revenue line moves with the path it was given.
    rev = many.line("mining.revenue_usd")
    assert rev.iloc[0, 0] == pytest.approx(
        many.values["mining.btc_mined"][0, 0] * paths[0, 0], rel=1e-12)


def test_scenario_values_are_checked_against_the_schema_bounds():
    with pytest.raises(finmodel.InputError, match=r"site.interconnect_mw: scenario value "
                                                  r"-1 breaks the bound > 0"):
        finmodel.run(A, inputs={"site.interconnect_mw": np.array([100.0, -1.0])})
    with pytest.raises(finmodel.InputError, match="network.btc_prize_usd: no such"):
        finmodel.run(A, inputs={"network.btc_prize_usd": np.array([1.0])})
    with pytest.raises(finmodel.InputError, match="must be a 1-D array"):
        finmodel.run(A, inputs={"network.btc_price_usd": np.ones((2, 2))})


def test_annual_roll_up_sums_flows_and_averages_prices():
    r = finmodel.run(A, breakevens=False)
    rev = r.values["mining.revenue_usd"][0]
    price = r.values["network.btc_price_usd"][0]
    assert r.annual.loc["mining.revenue_usd", 2026] == pytest.approx(rev[:12].sum(), rel=1e-12)
    assert r.annual.loc["network.btc_price_usd", 2027] == pytest.approx(price[12:24].mean(),
                                                                        rel=1e-12)
    assert r.annual.loc["network.height_end", 2026] == r.values["network.height_end"][0, 11]
