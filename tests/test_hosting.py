"""The AI hosting lease, the conversion and the comparison, worked by hand.

Small hosting case (tests/conftest.py): the 10 MW mining site converts 10 MW of critical IT
from March 2026 (month 2). Phase 1 (half) is ready 2 months later (May, month 4), phase 2
(the other half) 4 months later (July, month 6); rent commences with phase 1. $100/kW-month,
+10 % a year, 1-year term, 50 % chance of a 1-year renewal at the same escalated rate.
Contract value at full ramp: 10 MW x 1,000 x $100 x 12 = $12.0M; 20 % prepaid ($2.4M) at
signing, credited over 6 months ($400k a month); a 2-month deposit ($2.0M) is paid at
signing and returned at the end of the term (month 16).
"""

from __future__ import annotations

import numpy as np
import pytest

import finmodel
from finmodel.inputs.load import parse_assumptions
from finmodel.models.capex import draw_fraction
from finmodel.engine.expr import Input
from finmodel.engine.evaluate import evaluate
from finmodel.engine.graph import Model
from finmodel.engine.timeline import Timeline
from tests.conftest import PENNY, small_hosting_case


def run_small(**changes):
    return finmodel.run(parse_assumptions(small_hosting_case(**changes)), breakevens=False)


def row(r, name):
    return r.values[name][0]


def test_ramp_rent_escalator_and_renewal():
    r = run_small()
    p = "ai_hosting.hosting."
    assert row(r, p + "in_service_mw")[:8].tolist() == [0, 0, 0, 0, 5, 5, 10, 10]
    rent = row(r, p + "rent_usd")
    assert rent[3] == 0
    assert rent[4] == pytest.approx(500_000, abs=PENNY)      # 5 MW x 1,000 x $100
    assert rent[6] == pytest.approx(1_000_000, abs=PENNY)    # 10 MW
    assert rent[15] == pytest.approx(1_000_000, abs=PENNY)   # last month of the term
    # Each phase's one-year term runs from its own commencement (May, July). Month 16
    # starts phase 1's renewal: rate $110 (one anniversary) x 50 % probability, while
    # phase 2 is still in its term; month 18 both are in the renewal.
    assert rent[16] == pytest.approx(5 * 1000 * 110 * 0.5 + 5 * 1000 * 100, abs=PENNY)
    assert rent[18] == pytest.approx(10 * 1000 * 110 * 0.5, abs=PENNY)
    assert rent[28] == pytest.approx(5 * 1000 * 110 * 0.5, abs=PENNY)
    assert rent[30] == 0                                     # both renewals have ended
    assert r.values["ai_hosting.hosting.contract_value_usd"][0] == pytest.approx(12e6)


def test_prepayment_credit_and_deposit():
    r = run_small()
    p = "ai_hosting.hosting."
    prepay, credit, dep = (row(r, p + x) for x in ("prepayment_usd", "prepayment_credit_usd",
                                                   "deposit_usd"))
    assert prepay[2] == pytest.approx(2.4e6) and np.count_nonzero(prepay) == 1
    assert credit[4:10].tolist() == pytest.approx([-400_000] * 6)
    assert np.count_nonzero(credit) == 6 and credit.sum() == pytest.approx(-2.4e6)
    # Returned when the last phase's term ends: July 2026 + 12 months = month 18.
    assert dep[2] == pytest.approx(2e6) and dep[18] == pytest.approx(-2e6)
    assert np.count_nonzero(dep) == 2


def test_a_deposit_still_held_at_the_horizon_is_returned_in_the_last_month():
    # A 5-year term on the 3-year horizon: the $2.0M deposit received at signing (month 2)
    # is owed to the tenant at the horizon, so it goes back in month 35: the tenant's money
    # is never counted as the project's. (Before: kept, +$2.0M of value on 3 years.)
    r = run_small(hosting={"term_years": 5.0})
    dep = row(r, "ai_hosting.hosting.deposit_usd")
    assert dep[2] == pytest.approx(2e6) and dep[35] == pytest.approx(-2e6)
    assert np.count_nonzero(dep) == 2 and dep.sum() == pytest.approx(0.0, abs=1e-6)


def test_the_perpetuity_capitalises_recurring_cash_not_a_deposit_returned():
    # A 27-month term: the deposit goes back in month 33 (July 2026 + 27 months), within
    # the last twelve months of the 3-year horizon; a perpetuity of the
    # last twelve months' free cash flow must not capitalise that one-off: the terminal
    # value is the same with a 2-month deposit and with none, and equals the recurring
    # (EBITDA + capex) twelve months x (1 + g) / (r - g), by hand.
    vals = {"terminal_method": "perpetuity_growth", "terminal_growth_rate": 0.02}
    with_dep = run_small(hosting={"term_years": 2.25}, valuation=vals)
    without = run_small(hosting={"term_years": 2.25, "security_deposit_months": 0.0},
                        valuation=vals)
    assert row(with_dep, "ai_hosting.hosting.deposit_usd")[33] == pytest.approx(-2e6)
    tv = row(with_dep, "ai_hosting.terminal_value_usd")[35]
    assert tv == pytest.approx(row(without, "ai_hosting.terminal_value_usd")[35], rel=1e-12)
    last12 = slice(24, 36)
    recurring = (row(with_dep, "ai_hosting.ebitda_usd")[last12].sum()
                 + row(with_dep, "ai_hosting.capex_total_usd")[last12].sum())
    r = with_dep.assumptions.case.discount_rate
    assert tv == pytest.approx(max(recurring * 1.02 / (r - 0.02), 0.0), rel=1e-12)
    assert tv > 0


def test_conversion_capex_draw_and_asic_sale():
    # $1.0M/MW x 1.1 contingency x 10 MW = $11M: phase 1's $5.5M evenly over months 2-3,
    # phase 2's $5.5M over months 2-5 -> 4.125, 4.125, 1.375, 1.375 ($M).
    r = run_small()
    capex = row(r, "ai_hosting.conversion.capex_usd")
    assert capex[2:6] == pytest.approx([-4.125e6, -4.125e6, -1.375e6, -1.375e6])
    assert capex.sum() == pytest.approx(-11e6)
    # The owned 0.5 EH/s fleet mines until each phase enters service (May: half, July:
    # the rest), and each half is sold then: 250,000 TH x $5 = $1.25M twice.
    sale = row(r, "ai_hosting.asic_sale_usd")
    assert sale[[4, 6]] == pytest.approx([1.25e6, 1.25e6]) and np.count_nonzero(sale) == 2
    assert row(r, "ai_hosting.btc_mined")[6:].sum() == 0
    assert row(r, "ai_hosting.btc_mined")[:4] == pytest.approx(row(r, "mining.btc_mined")[:4])
    assert row(r, "ai_hosting.btc_mined")[4] == pytest.approx(row(r, "mining.btc_mined")[4] / 2)


def test_power_passed_through_and_opex():
    # July (31 days): 10 MW x 100 % load x 744 h x PUE 1.2 = 8,928 MWh at $50 = $446,400,
    # reimbursed by the tenant; opex $120,000 / 12 x 10 MW = $100,000.
    r = run_small()
    assert row(r, "ai_hosting.hosting.energy_mwh")[6] == pytest.approx(8928)
    assert row(r, "ai_hosting.power_cost_usd")[6] == pytest.approx(-446_400, abs=PENNY)
    assert row(r, "ai_hosting.hosting.power_recovery_usd")[6] == pytest.approx(446_400,
                                                                              abs=PENNY)
    assert row(r, "ai_hosting.hosting.opex_usd")[6] == pytest.approx(-100_000, abs=PENNY)
    no_pt = run_small(hosting={"power_pass_through": False})
    assert row(no_pt, "ai_hosting.hosting.power_recovery_usd")[6] == 0


def test_tenant_credit_haircut_and_explicit_default():
    # PD 10 %/yr, LGD 50 %: at lease month 12 the expected loss is 0.5 x (1 - 0.9) = 5 %.
    r = run_small(hosting={"tenant_default_probability_rate": 0.1,
                           "loss_given_default_share": 0.5, "renewal_probability": 1.0})
    contracted = row(r, "ai_hosting.hosting.contracted_rent_usd")[16]
    assert row(r, "ai_hosting.hosting.credit_loss_usd")[16] == pytest.approx(
        -0.05 * contracted)
    # An explicit default in month 10 (Nov 2026): no rent after it, the deposit is kept.
    d = run_small(hosting={"default_month": "2026-11"})
    rent = row(d, "ai_hosting.hosting.rent_usd")
    assert rent[9] > 0 and not rent[10:].any()
    assert row(d, "ai_hosting.hosting.deposit_usd")[16] == 0


def test_hybrid_keeps_mining_on_the_rest_and_shares_the_bill():
    # Convert 5 MW of IT (x 1.2 = 6 MW); the rest of the 12 MW feeds (12 - 6) / 1.1 =
    # 5.45 MW of mining, less than the 10 MW the site had.
    data = small_hosting_case()
    data["strategies"]["hybrid"] = {"kind": "hybrid", "ai_it_mw": 5.0,
                                    "conversion_start_month": "2026-03"}
    r = finmodel.run(parse_assumptions(data), breakevens=False)
    # Mining MW fall to 6 / 1.1 as the hall enters service: half in May, all in July.
    assert row(r, "hybrid.mining_it_mw")[[0, 3, 4, 6]] == pytest.approx(
        [10.0, 10.0, (10.0 + 6 / 1.1) / 2, 6 / 1.1])
    bill = row(r, "hybrid.power_cost_usd")
    split = row(r, "hybrid.mining_power_cost_usd") + row(r, "hybrid.hosting.power_cost_usd")
    assert split == pytest.approx(bill)


def test_s_curve_draws_the_whole_phase_slowly_at_the_ends():
    tl = Timeline(__import__("datetime").date(2026, 1, 1), 24)
    m = Model()
    from finmodel.engine.expr import time

    m.line("d", draw_fraction(time("index") - 2, Input("n")), "", "", "S")
    d = evaluate(m, tl, {"n": 10.0, "conversion_draw_curve": 1.0})["d"][0]  # 1: s_curve
    assert d.sum() == pytest.approx(1.0)
    assert np.count_nonzero(d) == 10 and d[2] < d[6] and d[11] < d[7]
    assert d[2:12] == pytest.approx(d[2:12][::-1])  # symmetric


@pytest.fixture(scope="module")
def base():
    return finmodel.run(finmodel.load_assumptions("assumptions/base.toml"))


@pytest.mark.parametrize("strategy", ["ai_hosting", "hybrid"])
def test_solved_break_evens_put_back_close_the_gap(base, strategy):
    a = base.assumptions
    gap = lambda r: r.summary.loc["npv_usd", strategy] - r.summary.loc["npv_usd", "mining"]  # noqa: E731
    rate = base.summary.loc["breakeven_lease_rate_usd_per_kw_month", strategy]
    r = finmodel.run(finmodel.with_values(a, {"hosting.lease_rate_usd_per_kw_month": rate}),
                     breakevens=False)
    assert abs(gap(r)) < 10.0  # USD, on NPVs of hundreds of millions
    price = base.summary.loc["btc_price_mining_matches_usd", strategy]
    r = finmodel.run(finmodel.with_values(a, {"network.btc_price_usd": price}),
                     breakevens=False)
    assert abs(gap(r)) < 10.0
    per_mw = base.summary.loc["breakeven_capex_usd_per_mw", strategy]
    c = a.conversion
    k = per_mw / ((c.electrical_usd_per_mw + c.cooling_usd_per_mw + c.building_usd_per_mw
                   + c.fit_out_usd_per_mw) * (1 + c.contingency_share))
    cats = {f"conversion.{x}_usd_per_mw": getattr(c, f"{x}_usd_per_mw") * k
            for x in ("electrical", "cooling", "building", "fit_out")}
    r = finmodel.run(finmodel.with_values(a, cats), breakevens=False)
    assert abs(gap(r)) < 10.0


def test_value_by_start_month_matches_separate_runs(base):
    table = base.timing["hybrid"]
    for month in ("2026-01", "2027-06", "2028-04"):
        a = finmodel.with_values(base.assumptions,
                                 {"strategies.hybrid.conversion_start_month": month})
        one = finmodel.run(a, breakevens=False)
        assert table.loc[month, "npv_usd"] == pytest.approx(
            one.summary.loc["npv_usd", "hybrid"], rel=1e-12)
    best = table["npv_usd"].idxmax()
    assert base.summary_json()["timing"]["hybrid"]["best_start_month"] == str(best)


def test_ai_cloud_sells_gpu_hours_and_buys_gpus_per_phase():
    # Product 'cloud': 400 GPUs/MW at $50,000; $2.00/GPU-hour falling 10 %/yr as the fleet
    # ages; 50 % sold; GPUs replaced every year. Phase 1 (5 MW) ready in May (month 4):
    # 2,000 GPUs x 744 h x 50 % = 744,000 GPU-hours x $2.00 = $1,488,000 in May.
    data = small_hosting_case(cloud={"gpus_per_mw": 400.0, "gpu_price_usd": 50_000.0,
                                     "gpu_life_years": 1.0, "price_usd_per_gpu_hour": 2.0,
                                     "price_change_rate": -0.1, "utilisation_share": 0.5,
                                     "opex_usd_per_mw_year": 240_000.0})
    data["strategies"]["ai_hosting"]["product"] = "cloud"
    r = finmodel.run(parse_assumptions(data), breakevens=False)
    p = "ai_hosting.cloud."
    revenue = row(r, p + "revenue_usd")
    assert revenue[4] == pytest.approx(1_488_000, abs=PENNY)
    # Six months after commencement the price has aged: 2 x 0.9 ** 0.5.
    assert row(r, p + "price_usd_per_gpu_hour")[10] == pytest.approx(2 * 0.9 ** 0.5)
    assert row(r, p + "price_usd_per_gpu_hour")[16] == pytest.approx(2.0)  # refreshed
    # GPUs: 5 MW x 400 x $50,000 = $100M when each phase is ready (months 4 and 6) and
    # again a year later (16 and 18).
    capex = row(r, p + "gpu_capex_usd")
    assert np.flatnonzero(capex).tolist() == [4, 6, 16, 18, 28, 30]
    assert capex[4] == pytest.approx(-100e6)
    # The owner pays the power; nothing is passed through; cloud opex $20,000/MW-month.
    assert "ai_hosting.hosting.power_recovery_usd" not in r.values
    assert row(r, p + "opex_usd")[6] == pytest.approx(-20_000 * 10)


@pytest.mark.parametrize("method", ["exit_multiple", "perpetuity_growth"])
def test_terminal_value_at_the_horizon(method):
    # Exit: 7 x the last twelve months' EBITDA. Perpetuity at r = 10 %, g = 2 %: the last
    # twelve months' free cash flow x 1.02 / (0.10 - 0.02). Both in the last month only.
    r = run_small(valuation={"terminal_method": method, "exit_multiple": 7.0,
                             "terminal_growth_rate": 0.02})
    tv = row(r, "ai_hosting.terminal_value_usd")
    assert np.flatnonzero(tv).tolist() == [35]
    if method == "exit_multiple":
        expected = 7.0 * row(r, "ai_hosting.ebitda_usd")[-12:].sum()
    else:
        expected = row(r, "ai_hosting.operating_fcf_usd")[-12:].sum() * 1.02 / 0.08
    assert tv[35] == pytest.approx(expected, rel=1e-12)
    assert row(r, "ai_hosting.unlevered_fcf_usd")[35] == pytest.approx(
        row(r, "ai_hosting.operating_fcf_usd")[35] + expected, rel=1e-12)


def test_growth_at_or_above_the_discount_rate_is_refused():
    with pytest.raises(finmodel.InputError, match="valuation.terminal_growth_rate"):
        run_small(valuation={"terminal_method": "perpetuity_growth",
                             "terminal_growth_rate": 0.10})


def test_gpu_hour_break_even_put_back_closes_the_gap():
    a = finmodel.load_assumptions("assumptions/bitdeer_hybrid.toml")
    r = finmodel.run(a)
    price = r.summary.loc["breakeven_gpu_hour_price_usd", "cloud_hybrid"]
    back = finmodel.run(finmodel.with_values(a, {"cloud.price_usd_per_gpu_hour": price}),
                        breakevens=False)
    gap = back.summary.loc["npv_usd", "cloud_hybrid"] - back.summary.loc["npv_usd", "mining"]
    assert abs(gap) < 10.0
    assert "not match mining even with no conversion capex" in \
        r.reasons["cloud_hybrid.breakeven_capex"][0]
