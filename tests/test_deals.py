"""Each shipped public-deal case reproduces the deal's published figures
(sources: ../shared/reference/industry_facts.md, fact IDs in brackets)."""

from __future__ import annotations

import numpy as np
import pytest

import finmodel


def run(case: str) -> finmodel.Result:
    return finmodel.run(finmodel.load_assumptions(f"assumptions/{case}.toml"),
                        breakevens=False)


def annual(r, line, year):
    return r.annual.loc[line, year]


def test_iren_microsoft_style_contract_value_prepayment_and_margin():
    # [L1] IREN-Microsoft, 3 Nov 2025: $9.7B over 5 years for 200 MW of critical IT, 20 %
    # prepaid (~$1.94B), ~$1.94B a year of revenue, ~85 % project EBITDA margin.
    r = run("iren_microsoft_style")
    p = "ai_hosting.hosting."
    assert r.values[p + "contract_value_usd"][0] == pytest.approx(9.7e9, rel=1e-6)
    assert r.values[p + "prepayment_usd"][0].sum() == pytest.approx(1.94e9, rel=1e-6)
    # A full-ramp year (2027: all four Horizon phases in service): contracted rent $1.94B.
    assert annual(r, p + "contracted_rent_usd", 2027) == pytest.approx(1.94e9, rel=1e-6)
    margin = annual(r, "ai_hosting.ebitda_usd", 2027) / annual(r, "ai_hosting.revenue_total_usd",
                                                                2027)
    assert margin == pytest.approx(0.85, abs=0.01)
    # Prepayment credited in years 3-5 of the contract: 36 equal monthly credits.
    credit = r.values[p + "prepayment_credit_usd"][0]
    start = int(r.values[p + "commencement_index"][0]) + 24
    assert np.flatnonzero(credit).tolist() == list(range(start, start + 36))
    # GPUs: ~$5.8B from Dell [L2] = $29M/MW x 200 MW, in the fit-out line.
    assert r.values["ai_hosting.conversion.fit_out_usd"][0].sum() == pytest.approx(-5.8e9,
                                                                                   rel=1e-9)


def test_coreweave_style_lease_value_and_term():
    # [L11] Core Scientific-CoreWeave: ~200 MW of IT, 12 years, > $3.5B.
    r = run("coreweave_colocation")
    p = "ai_hosting.hosting."
    assert r.values[p + "contract_value_usd"][0] == pytest.approx(3.5e9, rel=1e-6)
    # Full ramp (from month 15): $3.5B / 12 = $291.7M a year of contracted rent.
    assert annual(r, p + "contracted_rent_usd", 2028) == pytest.approx(3.5e9 / 12, rel=1e-6)
    for k in (1, 2):  # 12 years of monthly rent from each phase's own commencement
        assert r.values[p + f"phase_{k}_in_initial_term"][0].sum() == 144
    # Power is passed through: the tenant reimburses exactly what its load costs.
    recovery = r.values[p + "power_recovery_usd"][0]
    assert recovery == pytest.approx(-r.values["ai_hosting.hosting.power_cost_usd"][0])


def test_bitdeer_style_hybrid_keeps_mining_on_what_is_left():
    # 175 MW site; 100 MW of IT at PUE 1.25 takes 125 MW; (175 - 125) / 1.05 = 47.62 MW of
    # mining remain, i.e. 2.886 EH/s of SEALMINER A2 at 16.5 J/TH [F5].
    r = run("bitdeer_hybrid")
    mw = r.values["hybrid.mining_it_mw"][0]
    assert mw[0] == pytest.approx(166.0) and mw[-1] == pytest.approx(50 / 1.05)
    powered = r.values["hybrid.powered_hashrate_eh_s"][0]
    # The owned fleet mines until each phase (half at 9 months, half at 12 after the
    # March 2026 start) enters service: MW fall by half the converted 118.4 MW in month 11.
    assert powered[:11] == pytest.approx(10.06)
    assert mw[11] == pytest.approx(166.0 - (166.0 - 50 / 1.05) / 2)
    assert powered[14] == pytest.approx(50 / 1.05 / 16.5)
    grid = (r.values["hybrid.hosting.in_service_mw"][0, -1] * 1.25 + mw[-1] * 1.05)
    assert grid == pytest.approx(175.0)


def test_base_case_matches_the_reference_sanity_checks():
    # industry_facts "Suggested default assumptions", C: 75 MW of IT at $130/kW-month is
    # $117M a year of rent; $9.0M/MW of IT is ~$675M of build.
    r = run("base")
    p = "ai_hosting.hosting."
    assert r.values[p + "ai_it_mw"][0] == pytest.approx(100 / 1.33)
    assert r.values[p + "ai_it_mw"][0] * 1000 * 130 * 12 == pytest.approx(117e6, rel=0.01)
    capex = -r.values["ai_hosting.conversion.capex_usd"][0].sum()
    assert capex == pytest.approx(675e6, rel=0.01)
    # Mining, year 1 ([facts B]): revenue ~$93M before network growth; the model, with
    # 15 %/yr hashrate growth and 10 %/yr price drift, gives a little less.
    assert 80e6 < annual(r, "mining.revenue_usd", 2026) < 95e6


#: Published total contract values of the shipped deal cases, with their sources.
PUBLISHED_TCV = {
    # [L1] IREN-Microsoft, 3 Nov 2025: $9.7B, 5-year term, 200 MW IT, four Horizon phases.
    "iren_microsoft_style": 9.7e9,
    # [L11] Core Scientific-CoreWeave, Jun 2024: ~200 MW IT, 12-year term, > $3.5B.
    "coreweave_colocation": 3.5e9,
}


@pytest.mark.parametrize("case", sorted(PUBLISHED_TCV))
def test_initial_term_rent_ties_to_the_published_contract_value(case):
    # The rent each phase earns in its own initial term, summed over the model's months,
    # is the contract value (issue 8: phases starting the term at the first phase's
    # commencement gave $8.97B and $3.43B).
    r = run(case)
    p = "ai_hosting.hosting."
    phases = len(r.assumptions.hosting.phase_it_shares)
    earned = sum((r.values[p + f"phase_{k}_contracted_rent_usd"][0]
                  * r.values[p + f"phase_{k}_in_initial_term"][0]).sum()
                 for k in range(1, phases + 1))
    assert earned == pytest.approx(PUBLISHED_TCV[case], rel=0.01)
    assert r.values[p + "contract_value_usd"][0] == pytest.approx(earned, rel=1e-9)


def test_coterminous_phases_lose_the_months_before_they_commence():
    # All four IREN phases ending with the first: the later phases lose 3, 6 and 9 months
    # of 50 MW at $808.33/kW-month: $9.7B - 50,000 x 808.33 x 18 = $8.97B (issue 8).
    a = finmodel.with_values(finmodel.load_assumptions("assumptions/iren_microsoft_style.toml"),
                             {"hosting.phase_terms": "coterminous"})
    r = finmodel.run(a, breakevens=False)
    tcv = r.values["ai_hosting.hosting.contract_value_usd"][0]
    assert tcv == pytest.approx(9.7e9 - 50_000 * 808.333333 * 18, rel=1e-9)
    assert tcv == pytest.approx(8.97e9, rel=1e-3)
