"""Sensitivity, grids, scenario sets, solving and Monte Carlo: each analysis is one
vectorised evaluation, and each must equal separate runs of the model."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import numpy_financial as npf
import pytest
import pyxirr

import finmodel
from finmodel.analysis.monte_carlo import Paths, distribution, monte_carlo, normal_cdf
from finmodel.analysis.sensitivity import grid, scenario_sets, solve_input, tornado
from finmodel.engine.solve import irr_periodic

A = finmodel.load_assumptions("assumptions/base.toml")


def npv_of(changes, strategy):
    r = finmodel.run(finmodel.with_values(A, changes), breakevens=False)
    return r.summary.loc["npv_usd", strategy]


def test_tornado_bars_equal_separate_runs():
    t = tornado(A, {"network.btc_price_usd": 0.3,
                    "hosting.lease_rate_usd_per_kw_month": (100.0, 160.0),
                    "power.ppa_price_usd_per_mwh": 0.25}, strategy="hybrid")
    assert t["swing"].is_monotonic_decreasing
    for _, row in t.iterrows():
        assert row.metric_low == pytest.approx(npv_of({row.input: row.low_value}, "hybrid"),
                                               rel=1e-12)
        assert row.metric_high == pytest.approx(npv_of({row.input: row.high_value}, "hybrid"),
                                                rel=1e-12)
    btc = t.set_index("input").loc["network.btc_price_usd"]
    assert (btc.low_value, btc.high_value) == pytest.approx((63_000, 117_000))
    assert t.attrs["base"] == pytest.approx(npv_of({}, "hybrid"), rel=1e-12)


def test_grid_cells_equal_separate_runs():
    g = grid(A, ("network.btc_price_usd", [60_000, 150_000]),
             ("hosting.lease_rate_usd_per_kw_month", [100, 130, 160]), strategy="ai_hosting")
    assert g.shape == (3, 2)
    assert g.loc[160, 60_000] == pytest.approx(npv_of(
        {"network.btc_price_usd": 60_000.0, "hosting.lease_rate_usd_per_kw_month": 160.0},
        "ai_hosting"), rel=1e-12)
    assert g.loc[130, 150_000] == pytest.approx(npv_of(
        {"network.btc_price_usd": 150_000.0}, "ai_hosting"), rel=1e-12)


def test_scenario_sets_run_together_and_match():
    s = scenario_sets(A, {"bear": {"network.btc_price_usd": 60_000.0,
                                   "hosting.lease_rate_usd_per_kw_month": 110.0},
                          "bull": {"network.btc_price_usd": 150_000.0}})
    assert list(s.index) == ["base", "bear", "bull"]
    assert s.loc["bear", ("hybrid", "npv_usd")] == pytest.approx(npv_of(
        {"network.btc_price_usd": 60_000.0, "hosting.lease_rate_usd_per_kw_month": 110.0},
        "hybrid"), rel=1e-12)
    assert s.loc["base", ("mining", "npv_usd")] == pytest.approx(npv_of({}, "mining"),
                                                                 rel=1e-12)


def test_solve_any_input_for_any_metric():
    # Solving the start BTC price for mining's NPV = 0 is the model's own break-even (on
    # the base site bought greenfield: the owned fleet's resale keeps its NPV positive).
    g = finmodel.with_values(A, {"mining.fleet_owned": False})
    out = solve_input(g, "network.btc_price_usd", metric="npv_usd", strategy="mining",
                      bracket=(1e3, 1e6))
    be = finmodel.run(g).summary.loc["breakeven_btc_price_usd", "mining"]
    assert out["network.btc_price_usd"][0] == pytest.approx(be, rel=1e-7)
    # Vectorised: the lease rate at which ai_hosting's NPV is zero, for three capex levels.
    out = solve_input(A, "hosting.lease_rate_usd_per_kw_month", metric="npv_usd",
                      strategy="ai_hosting", bracket=(1.0, 1000.0),
                      inputs={"conversion.electrical_usd_per_mw": np.array([2e6, 2.9e6, 4e6])})
    assert out["hosting.lease_rate_usd_per_kw_month"].is_monotonic_increasing
    assert npv_of({"hosting.lease_rate_usd_per_kw_month": out.iloc[1, 0]},
                  "ai_hosting") == pytest.approx(0.0, abs=10.0)


def test_monte_carlo_is_reproducible_and_independent_of_chunking():
    spec = dict(distributions={"conversion.electrical_usd_per_mw":
                               {"dist": "triangular", "low": 2.5e6, "mode": 2.9e6, "high": 4e6},
                               "hosting.lease_rate_usd_per_kw_month":
                               {"dist": "normal", "mean": 130.0, "sd": 10.0}},
                correlations={("conversion.electrical_usd_per_mw",
                               "hosting.lease_rate_usd_per_kw_month"): 0.5},
                paths=Paths(btc_price_volatility=0.6, hashrate_volatility=0.2,
                            correlation=0.4), seed=7)
    one = monte_carlo(A, 300, chunk_size=300, executor=None, **spec)
    again = monte_carlo(A, 300, chunk_size=300, executor=None, **spec)
    chunked = monte_carlo(A, 300, chunk_size=64, executor=ThreadPoolExecutor(2), **spec)
    processes = monte_carlo(A, 300, chunk_size=100, executor="processes", **spec)
    for other in (again, chunked, processes):
        assert np.array_equal(one.samples.to_numpy(), other.samples.to_numpy(),
                              equal_nan=True)
    other_seed = monte_carlo(A, 300, chunk_size=300, executor=None, **{**spec, "seed": 8})
    assert not np.array_equal(one.samples.to_numpy(), other_seed.samples.to_numpy(),
                              equal_nan=True)
    # The copula gives the rank correlation it was asked for (0.5, sampling error ~0.05).
    x = one.inputs.rank()
    assert x.corr().iloc[0, 1] == pytest.approx(0.48, abs=0.1)
    s = one.summary()
    assert 0 <= s.loc["prob_beats_mining", "hybrid"] <= 1
    assert s.loc["expected_shortfall_5pct", "mining"] <= s.loc["p5", "mining"]


def test_path_shocks_are_drawn_per_block_whatever_the_chunks(monkeypatch):
    # Path shocks come in blocks of DRAW_BLOCK scenarios, each from its own generator:
    # chunks that straddle blocks draw the same numbers as one piece.
    from finmodel.analysis import monte_carlo as mc_module

    monkeypatch.setattr(mc_module, "DRAW_BLOCK", 50)
    spec = dict(paths=Paths(btc_price_volatility=0.6, hashrate_volatility=0.2,
                            correlation=0.4), seed=5, metrics=("npv_usd", "project_irr"))
    one = monte_carlo(A, 230, chunk_size=230, executor=None, keep_lines=True, **spec)
    for chunk in (64, 50, 120):
        other = monte_carlo(A, 230, chunk_size=chunk, executor=ThreadPoolExecutor(2), **spec)
        assert np.array_equal(one.samples.to_numpy(), other.samples.to_numpy(),
                              equal_nan=True)
        assert "lines" not in other.extra  # only the metrics, unless asked
    price = one.extra["lines"]["network.btc_price_usd"]
    assert price.shape == (230, A.case.horizon_years * 12)
    assert np.unique(price[:, 1]).size == 230  # every scenario its own shocks


def test_gbm_paths_match_the_closed_form():
    # Each month the case's path is multiplied by exp(sigma W_t - sigma^2 t / 2): mean
    # E = base_t, variance base_t^2 (exp(sigma^2 t) - 1). 20,000 paths, t = 2 years.
    mc = monte_carlo(A, 20_000, paths=Paths(btc_price_volatility=0.5), seed=3,
                     metrics=("npv_usd",), executor=None, chunk_size=20_000,
                     keep_lines=True)
    price = mc.extra["lines"]["network.btc_price_usd"]
    base = finmodel.run(A, breakevens=False).values["network.btc_price_usd"][0]
    t, sigma = 24 / 12, 0.5
    sample = price[:, 24]
    mean, var = base[24], base[24] ** 2 * (math.exp(sigma ** 2 * t) - 1)
    se_mean = math.sqrt(var / sample.size)
    assert abs(sample.mean() - mean) < 4 * se_mean
    log = np.log(sample / base[24])
    assert log.var(ddof=1) == pytest.approx(sigma ** 2 * t, rel=0.03)
    assert log.mean() == pytest.approx(-0.5 * sigma ** 2 * t, abs=4 * sigma * math.sqrt(t)
                                       / math.sqrt(sample.size))


def test_vectorised_irr_agrees_with_numpy_financial_and_pyxirr():
    mc = monte_carlo(A, 200, paths=Paths(btc_price_volatility=0.6), seed=11, executor=None,
                     metrics=("npv_usd",), keep_lines=True)
    sc_lines = mc.extra["lines"]["network.btc_price_usd"]
    r = finmodel.run(A, lines={"network.btc_price_usd": sc_lines}, breakevens=False)
    flows = r.values["ai_hosting.unlevered_fcf_usd"]
    ours = irr_periodic(flows)
    checked = 0
    for k in range(flows.shape[0]):
        ref = pyxirr.irr(flows[k], guess=0.01, silent=True)
        if ref is None or not np.isfinite(ours[k]):
            continue
        assert ours[k] == pytest.approx(ref, abs=1e-8)
        ref2 = npf.irr(flows[k])
        if np.isfinite(ref2) and abs(ref2 - ref) < 1e-6:  # numpy-financial found that root
            assert ours[k] == pytest.approx(ref2, abs=1e-8)
        checked += 1
    assert checked > 150


@pytest.mark.parametrize("call, message", [
    (lambda: tornado(A, {"network.btc_prize_usd": 0.1}), "network.btc_prize_usd: no such"),
    (lambda: tornado(A, {"network.btc_price_usd": (100_000.0, 50_000.0)}),
     "low 100000.0 is above high 50000.0"),
    (lambda: tornado(A, {"case.horizon_years": 0.1}), "case.horizon_years: shapes the timeline"),
    (lambda: tornado(A, {"mining.uptime": 0.5}), "mining.uptime: scenario value 1.425 breaks"),
    (lambda: monte_carlo(A, 10, distributions={"network.btc_price_usd":
                                               {"dist": "normal", "mean": 1.0, "sd": -2.0}}),
     "distribution of network.btc_price_usd: sd must be positive"),
    (lambda: monte_carlo(A, 10, distributions={"network.btc_price_usd":
                                               {"dist": "triangular", "low": 5.0, "mode": 1.0,
                                                "high": 9.0}}),
     "expected low <= mode <= high"),
    (lambda: distribution("x.y", {"dist": "beta"}), "unknown dist 'beta'"),
])
def test_bad_analysis_input_is_refused_by_name(call, message):
    with pytest.raises(finmodel.InputError, match=message.replace("(", r"\(")):
        call()


def test_monte_carlo_on_a_dask_cluster_matches_the_local_run():
    # A dask.distributed cluster's executor (here a local one, in-process workers) is a
    # concurrent.futures executor: the chunks run there and the result is the same.
    from distributed import Client, LocalCluster

    spec = dict(distributions={"power.ppa_price_usd_per_mwh":
                               {"dist": "uniform", "low": 30.0, "high": 50.0}},
                paths=Paths(btc_price_volatility=0.5), seed=4, metrics=("npv_usd",))
    local = monte_carlo(A, 240, chunk_size=240, executor=None, **spec)
    with LocalCluster(n_workers=2, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        remote = monte_carlo(A, 240, chunk_size=60, executor=client.get_executor(), **spec)
    assert np.array_equal(local.samples.to_numpy(), remote.samples.to_numpy())


@pytest.mark.parametrize("spec, frozen", [
    ({"dist": "normal", "mean": 3.5, "sd": 0.7}, lambda st: st.norm(loc=3.5, scale=0.7)),
    ({"dist": "lognormal", "median": 65_000.0, "sigma": 0.55},
     lambda st: st.lognorm(s=0.55, scale=65_000.0)),
    ({"dist": "triangular", "low": 104.0, "mode": 130.0, "high": 188.0},
     lambda st: st.triang(c=(130.0 - 104.0) / (188.0 - 104.0), loc=104.0, scale=84.0)),
    ({"dist": "triangular", "low": 2.0, "mode": 2.0, "high": 5.0},
     lambda st: st.triang(c=0.0, loc=2.0, scale=3.0)),
    ({"dist": "uniform", "low": 30.0, "high": 50.0}, lambda st: st.uniform(loc=30.0, scale=20.0)),
])
def test_draws_are_scipy_stats_to_the_bit(spec, frozen):
    # The quantile functions are written out so that loading a case does not import
    # scipy.stats (issue 10: `finmodel run` paid seconds for it); scipy.stats is the oracle.
    from scipy import stats

    q = np.concatenate([[0.0, 1e-15, 0.5, 1 - 1e-15, 1.0],
                        np.random.default_rng(7).random(10_000)])
    assert np.array_equal(distribution("x.y", spec).ppf(q), frozen(stats).ppf(q))
    z = np.random.default_rng(8).standard_normal(10_000) * 3
    assert np.array_equal(normal_cdf(z), stats.norm.cdf(z))


def test_loading_a_case_does_not_import_scipy_stats():
    import subprocess
    import sys

    code = ("import sys, finmodel; finmodel.load_assumptions('assumptions/base.toml'); "
            "print('scipy.stats' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[1]).stdout.strip()
    assert out == "False"
