"""The portfolio layer: options, the MILP against brute force, shadow prices against
finite differences, the company view and per-share value by hand, bad input."""

from __future__ import annotations

import copy
import itertools
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import PARITY

from finmodel.cli import main
from finmodel.errors import InputError
from finmodel.portfolio import load_portfolio, parse_portfolio, plan_portfolio
from finmodel.portfolio.company import company_flows, per_share
from finmodel.portfolio.optimise import UNIT, build_problem, relaxation, solve
from finmodel.portfolio.options import evaluate_options
from finmodel.portfolio.schema import month_index

ROOT = Path(__file__).resolve().parents[1]
ASSUMPTIONS = ROOT / "assumptions"
SHIPPED = ASSUMPTIONS / "bitdeer_portfolio.toml"


def _site(mw: float, ppa: float, ai_mw: float) -> dict:
    """A site that overrides the Bitdeer-style hybrid case: size, power price, AI hall."""
    return {"site": {"interconnect_mw": mw, "mining_it_mw": round(mw / 1.05 - 0.5)},
            "power": {"contract_mw": mw, "ppa_price_usd_per_mwh": ppa},
            "mining": {"hashrate_eh_s": round(mw / 1.05 - 0.5) / 16.5},
            "strategies": {"hybrid": {"ai_it_mw": ai_mw},
                           "cloud_hybrid": {"ai_it_mw": ai_mw}}}


def small(**constraints) -> dict:
    """Four sites x three options (keep mining, hybrid from 2026-06, all AI from 2027-01)."""
    data = {
        "base_case": "bitdeer_hybrid.toml",
        "company": {"name": "Four sites", "cash_usd": 300e6, "shares_outstanding": 200e6,
                    "share_price_usd": 13.94, "overhead_usd_per_year": 40e6,
                    "discount_rate": 0.12},
        "options": {"strategies": ["mining", "hybrid", "ai_hosting"],
                    "start_months": ["2026-06"]},
        "sites": {"a": _site(175.0, 38.0, 100.0), "b": _site(120.0, 30.0, 60.0),
                  "c": _site(90.0, 45.0, 40.0), "d": _site(60.0, 50.0, 30.0)},
        "constraints": {"capex_budget_usd_by_year": {"2026": 500e6, "2027": 700e6},
                        "max_new_funding_usd": 900e6, "min_cash_usd": 100e6},
    }
    data["sites"]["b"]["options"] = {"strategies": ["mining", "hybrid", "ai_hosting"],
                                     "start_months": ["2027-01"]}
    data["constraints"].update(constraints)
    return data


@pytest.fixture(scope="module")
def four():
    lp = parse_portfolio(small(), source="small.toml", folder=ASSUMPTIONS)
    return lp, evaluate_options(lp)


def _brute_force(lp, options):
    """Every plan (one option per site), checked and valued directly: the company's cash
    rolled forward month by month with the equity raise it needs (net of its cost)."""
    spec = lp.spec
    cost = spec.financing.new.issuance_cost_share
    flows = company_flows(spec, lp.start_month, lp.months)
    years = np.asarray(options.periods.year)
    per_site = [np.flatnonzero(options.site == s) for s in options.sites]
    best = None
    feasible = 0
    for plan in itertools.product(*per_site):
        idx = list(plan)
        capex = options.capex_usd[idx].sum(axis=0)
        if any(capex[years == int(y)].sum() > limit + 1e-3
               for y, limit in spec.constraints.capex_budget_usd_by_year.items()):
            continue
        before = spec.company.cash_usd + np.cumsum(options.cash_usd[idx].sum(axis=0)
                                                   + flows.overhead_usd)
        raise_net = max(0.0, float((spec.constraints.min_cash_usd - before).max()))
        raised = raise_net / (1 - cost)
        if raised > spec.constraints.max_new_funding_usd + 1e-3:
            continue
        feasible += 1
        value = float(options.npv_usd[idx].sum()) - cost * raised
        if best is None or value > best[0]:
            best = (value, tuple(sorted(idx)), raised)
    return best, feasible


def test_options_are_the_single_site_model(four):
    """Each option's NPV equals a separate run of the site's case with that start month."""
    import finmodel

    lp, options = four
    a = lp.cases["c"]
    changed = finmodel.with_values(a, {"strategies.ai_hosting.conversion_start_month":
                                       "2026-06"})
    alone = finmodel.run(changed, breakevens=False).summary.loc["npv_usd"]
    row = np.flatnonzero((options.site == "c") & (options.strategy == "ai_hosting"))[0]
    assert options.npv_usd[row] == pytest.approx(alone["ai_hosting"], rel=1e-12)
    keep = np.flatnonzero((options.site == "c") & (options.strategy == "mining"))[0]
    assert options.value_of_converting_usd[row] == pytest.approx(
        alone["ai_hosting"] - alone["mining"], rel=1e-9)
    assert options.npv_usd[keep] == pytest.approx(alone["mining"], rel=1e-12)
    assert len(options) == 12


def test_sites_batched_in_one_run_equal_one_run_per_site():
    """Sites that differ only in numeric inputs share one vectorised run (each site x start
    month a scenario); the options are the same numbers, to the bit, as one run per site.
    A site that differs in a flag, or has other start months, runs apart."""
    from finmodel.portfolio.options import site_groups

    data = small()
    data["sites"]["e"] = _site(80.0, 41.0, 35.0)
    data["sites"]["e"]["mining"]["economic_curtailment"] = False  # a flag: structure
    data["sites"]["f"] = _site(150.0, 33.0, 70.0)
    data["sites"]["f"]["hosting"] = {"lease_rate_usd_per_kw_month": 120.0}
    lp = parse_portfolio(data, folder=ASSUMPTIONS)
    groups = {tuple(names): inputs for _, names, inputs in site_groups(lp)}
    assert sorted(groups) == [("a", "c", "d", "f"), ("b",), ("e",)]
    inputs = groups["a", "c", "d", "f"]
    # each site's own power price, repeated over its one start month
    assert inputs["power.ppa_price_usd_per_mwh"].tolist() == [38.0, 45.0, 50.0, 33.0]
    assert inputs["hosting.lease_rate_usd_per_kw_month"].tolist() == [150.0, 150.0, 150.0,
                                                                      120.0]
    batched = evaluate_options(lp)
    alone = evaluate_options(lp, max_scenarios=1)
    assert batched.site.tolist() == alone.site.tolist() == \
        [s for s in "abcdef" for _ in range(3)]
    for field in ("npv_usd", "value_of_converting_usd", "cash_usd", "capex_usd"):
        assert np.array_equal(getattr(batched, field), getattr(alone, field)), field
    # and against the single-site model by hand: site f's hybrid from 2026-06
    import finmodel

    case = finmodel.with_values(lp.cases["f"], {
        "strategies.hybrid.conversion_start_month": "2026-06"})
    npv = finmodel.run(case, breakevens=False).summary.loc["npv_usd", "hybrid"]
    row = np.flatnonzero((batched.site == "f") & (batched.strategy == "hybrid"))[0]
    assert batched.npv_usd[row] == pytest.approx(npv, rel=1e-12)


@pytest.mark.parametrize("solver", ["cpsat", "highs"])
def test_milp_equals_brute_force_over_all_81_plans(four, solver):
    lp, options = four
    (value, idx, raised), feasible = _brute_force(lp, options)
    assert 1 < feasible < 81  # the constraints cut plans out, and leave a choice
    plan = plan_portfolio(lp, options=options, exact_gains=False, solver=solver)
    assert plan.solution.solver == solver and plan.solution.optimal
    assert tuple(sorted(plan.solution.choice)) == idx
    assert plan.solution.objective_usd == pytest.approx(value, rel=1e-9)
    assert plan.solution.funding_usd == pytest.approx(raised, rel=1e-6, abs=1.0)
    # and the unconstrained best (every site's best NPV) is not allowed here
    free = [int(np.flatnonzero(options.site == s)[np.argmax(options.npv_usd[options.site == s])])
            for s in options.sites]
    assert tuple(sorted(free)) != idx


def test_binding_budget_changes_choice_and_shadow_price_matches_resolve(four):
    lp, options = four
    flows = company_flows(lp.spec, lp.start_month, lp.months)
    loose = parse_portfolio(small(capex_budget_usd_by_year={"2026": 5e9, "2027": 5e9},
                                  max_new_funding_usd=5e9), folder=ASSUMPTIONS)
    p_loose = build_problem(loose.spec, options, flows)
    p_tight = build_problem(lp.spec, options, flows)
    s_loose, s_tight = solve(p_loose), solve(p_tight)
    assert set(s_loose.choice) != set(s_tight.choice)
    assert s_tight.objective_usd < s_loose.objective_usd
    binding = [c for c in s_tight.constraints if c.binding]
    assert binding, "the small portfolio's budget should bind"
    # Each budget year's LP shadow price against a finite-difference re-solve of the LP.
    base = relaxation(p_tight)
    for k, year in enumerate(p_tight.years):
        con = next(c for c in s_tight.constraints if c.year == year)
        for step in (1e6, -1e6):
            budget = p_tight.budget.copy()
            budget[k] += step
            moved = relaxation(p_tight, budget=budget)
            fd = (-moved.fun + base.fun) * UNIT / step
            assert con.shadow_price == pytest.approx(fd, rel=1e-6, abs=1e-9), (year, step)
    funding = next(c for c in s_tight.constraints if c.name == "new_funding")
    moved = relaxation(p_tight, max_funding=p_tight.max_funding + 1e6)
    assert funding.shadow_price == pytest.approx((-moved.fun + base.fun) * UNIT / 1e6, rel=1e-6,
                                                 abs=1e-9)
    cash = next(c for c in s_tight.constraints if c.name == "min_cash")
    moved = relaxation(p_tight, min_cash=p_tight.min_cash + 1e6)
    assert cash.shadow_price == pytest.approx((-moved.fun + base.fun) * UNIT / 1e6, rel=1e-6,
                                              abs=1e-9)
    assert any(c.shadow_price > 0.01 for c in s_tight.constraints)


@pytest.mark.parametrize("min_cash, max_new", [(250e6, 900e6), (100e6, 400e6), (150e6, 600e6)])
def test_lazy_cash_floor_equals_full_formulation(four, monkeypatch, min_cash, max_new):
    """The MILP with the cash floor added month by month gives the plan and value of the
    MILP with all 180 months at once, on constraints where the floor binds."""
    import finmodel.portfolio.optimise as opt

    lp, options = four
    loaded = parse_portfolio(small(min_cash_usd=min_cash, max_new_funding_usd=max_new),
                             folder=ASSUMPTIONS)
    p = build_problem(loaded.spec, options, company_flows(loaded.spec, lp.start_month,
                                                          lp.months))
    full = solve(p, exact_gains=False, lazy=False)
    sizes = []
    restricted = opt._restricted
    monkeypatch.setattr(opt, "_restricted", lambda p, months, *a, **k: (
        sizes.append(None if months is None else len(months)), restricted(p, months, *a, **k))[1])
    lazy = solve(p, exact_gains=False)
    assert full.feasible and lazy.feasible and full.optimal and lazy.optimal
    assert sorted(lazy.choice) == sorted(full.choice)
    assert lazy.objective_usd == pytest.approx(full.objective_usd, rel=1e-9)
    assert lazy.funding_usd == pytest.approx(full.funding_usd, rel=1e-6, abs=1.0)
    assert all(n is not None and n < len(p.cash_floor) for n in sizes)
    # the floor binds: the lowest month of the plan sits on it
    cash = next(c for c in lazy.constraints if c.name == "min_cash")
    assert cash.binding and cash.used_usd == pytest.approx(min_cash, abs=1e3)
    # and it matters: without the floor the plan would be another one
    free = solve(build_problem(parse_portfolio(small(min_cash_usd=0.0, max_new_funding_usd=5e9),
                                               folder=ASSUMPTIONS).spec, options,
                               company_flows(loaded.spec, lp.start_month, lp.months)),
                 exact_gains=False)
    assert free.objective_usd > lazy.objective_usd


def test_highs_prints_nothing_when_infeasible(capfd):
    """HiGHS writes to the process's stdout (not Python's) in infeasible cases: silenced."""
    lp = parse_portfolio(small(min_cash_usd=900e6, max_new_funding_usd=0.0), folder=ASSUMPTIONS)
    plan = plan_portfolio(lp, exact_gains=False)
    assert not plan.solution.feasible
    assert capfd.readouterr().out == ""


def _two_notes(new: dict) -> dict:
    """A small portfolio at 10 %, $500M of cash, no overhead, two existing notes (X
    converts, Y is repaid) and the new money ``new``."""
    data = small()
    data["company"].update(cash_usd=500e6, overhead_usd_per_year=0.0, discount_rate=0.10)
    data["financing"] = {"existing": [
        {"name": "X", "principal_usd": 100e6, "coupon_rate": 0.0, "maturity_month": "2028-01",
         "conversion_price_usd": 10.0},
        {"name": "Y", "principal_usd": 100e6, "coupon_rate": 0.06, "coupons_per_year": 1,
         "maturity_month": "2027-12", "conversion_price_usd": 20.0}], "new": new}
    return data


def test_per_share_value_by_hand():
    """Two existing notes (one converts, one is repaid with a coupon) and an equity raise.

    Hand calculation, discount rate 10 %, end-of-month discounting:
    - note X: $100M, 0 % coupon, conversion price $10 < share price $13.94: converts into
      100e6 / 10 = 10,000,000 shares and costs no cash;
    - note Y: $100M, 6 % annual coupon paid once a year, matures in month 24 (index 23):
      coupons at the ends of months 12 and 24, principal at the end of month 24:
      PV = 6e6 / 1.1 + 106e6 / 1.1**2 = 5,454,545.45 + 87,603,305.79 = 93,057,851.24;
    - new equity $200M at $13.94, 3 % cost: adds 200e6 x 0.97 = 194,000,000 of cash and
      200e6 / 13.94 = 14,347,202.30 shares.
    Equity = 1,000,000,000 (sites) + 500,000,000 (cash) - 93,057,851.24 + 194,000,000
           = 1,600,942,148.76; shares = 200,000,000 + 10,000,000 + 14,347,202.30
           = 224,347,202.30; per share = 7.13600 USD
    """
    data = _two_notes({"kind": "equity", "issuance_cost_share": 0.03})
    lp = parse_portfolio(data, folder=ASSUMPTIONS)
    cf = company_flows(lp.spec, lp.start_month, lp.months)
    assert cf.stack_pv_usd == pytest.approx(6e6 / 1.1 + 106e6 / 1.1 ** 2, rel=1e-12)
    assert cf.stack_coupons_usd[11] == pytest.approx(-6e6)
    assert cf.stack_principal_usd[23] == pytest.approx(-100e6)
    ps = per_share(lp.spec, cf, 1e9, 200e6)
    assert ps.equity_value_usd == pytest.approx(1_600_942_148.76, abs=0.01)
    assert ps.shares == pytest.approx(224_347_202.30, abs=0.01)
    assert ps.value_per_share_usd == pytest.approx(1_600_942_148.76 / 224_347_202.30,
                                                   rel=1e-10)
    assert ps.share_value_usd == ps.value_per_share_usd
    # Sites worth -$2B: equity NPV 1,600,942,148.76 - 3e9 = -1,399,057,851.24 over the same
    # shares; limited liability floors the share's value at zero.
    deep = per_share(lp.spec, cf, -2e9, 200e6)
    assert deep.value_per_share_usd == pytest.approx(-1_399_057_851.24 / 224_347_202.30,
                                                     rel=1e-10)
    assert deep.share_value_usd == 0.0


def test_a_new_note_costs_the_equity_its_issuance_cost_only():
    """A new convertible is sold at its fair value: $200M at a 2 % cost brings 196,000,000
    of cash and a liability worth its 200,000,000 principal, so the equity loses
    4,000,000 (reviewed 2026-11-27: the note's principal was counted as lost outright,
    1 - PV(net flows) = 0.736 a dollar for a 4.5 % note, and a zero-coupon note at a 0 %
    rate lost its whole principal). It issues no shares (conversion premium >= 0).
    Equity = 1,000,000,000 + 500,000,000 - 93,057,851.24 (note Y, above) - 4,000,000
           = 1,402,942,148.76 over 210,000,000 shares."""
    data = _two_notes({"kind": "convertible", "coupon_rate": 0.045, "term_years": 6,
                       "issuance_cost_share": 0.02})
    lp = parse_portfolio(data, folder=ASSUMPTIONS)
    cf = company_flows(lp.spec, lp.start_month, lp.months)
    assert cf.new_cost_per_usd == 0.02 and cf.new_shares_per_usd == 0.0
    assert cf.new_per_usd[0] == pytest.approx(0.98)  # the cash still pays its service
    assert cf.new_per_usd.sum() < 0.98 - 0.045 * 6 * 0.99
    ps = per_share(lp.spec, cf, 1e9, 200e6)
    assert ps.equity_value_usd == pytest.approx(1_402_942_148.76, abs=0.01)
    assert ps.new_funding_cost_usd == pytest.approx(-4e6)
    assert ps.shares == pytest.approx(210e6, abs=1e-6)


def test_company_view_rolls_cash_forward(four):
    lp, options = four
    plan = plan_portfolio(lp, options=options, exact_gains=False)
    v = plan.company
    net = v.site_cash_usd.sum().to_numpy() + v.fixed_usd.sum().to_numpy() + \
        v.new_funding_cash_usd
    assert np.allclose(v.balance_usd, lp.spec.company.cash_usd + np.cumsum(net))
    assert v.balance_usd.min() >= lp.spec.constraints.min_cash_usd - 1.0
    js = plan.to_json()
    assert js["value_usd"] == pytest.approx(sum(s["npv_usd"] for s in js["plan"].values())
                                            + js["value_items_usd"]["new_funding_cost_usd"])
    assert set(js["plan"]) == {"a", "b", "c", "d"}
    for c in js["constraints"]:
        assert {"name", "year", "limit_usd", "used_usd", "binding", "shadow_price"} <= set(c)
    json.dumps(js, allow_nan=False)


def test_a_plan_that_keeps_every_site_mining_has_the_status_quo_value_per_share():
    # Fuzzed (2026-11-27): with no capex budget the plan keeps every site mining, yet the
    # summary said 13.15 USD a share keeping mining -> 13.25 with the plan: the status quo
    # raised no money while the plan raised what the cash floor needs. Both raise the
    # least new money that keeps the floor, so they are the same company.
    data = small(capex_budget_usd_by_year={"2026": 0.0, "2027": 0.0}, min_cash_usd=250e6)
    lp = parse_portfolio(data, source="small.toml", folder=ASSUMPTIONS)
    plan = plan_portfolio(lp, exact_gains=False)
    assert set(plan.chosen.strategy) == {"mining"}
    assert plan.company.new_funding_usd > 0  # the floor needs new money in both
    assert plan.status_quo.new_funding_usd == pytest.approx(plan.company.new_funding_usd)
    assert plan.status_quo.per_share.value_per_share_usd == pytest.approx(
        plan.company.per_share.value_per_share_usd, rel=1e-12)
    assert plan.status_quo.balance_usd.min() >= 250e6 - 1.0


# ---- bad input --------------------------------------------------------------------------

def test_site_file_that_does_not_exist():
    data = small()
    data["sites"]["e"] = {"file": "no_such_site.toml"}
    with pytest.raises(InputError, match=r"sites\.e\.file: case file 'no_such_site.toml' "
                                         "not found"):
        parse_portfolio(data, source="p.toml", folder=ASSUMPTIONS)


def test_unknown_strategy_and_unknown_key_are_named():
    data = small()
    data["sites"]["c"]["options"] = {"strategies": ["mining", "lease_all"],
                                     "start_months": ["2026-06"]}
    with pytest.raises(InputError, match=r"sites\.c\.options\.strategies: 'lease_all' is not "
                                         "a strategy"):
        parse_portfolio(data, source="p.toml", folder=ASSUMPTIONS)
    data = small()
    data["sites"]["c"]["power"]["ppa_price"] = 3.0
    with pytest.raises(InputError, match=r"p.toml: sites.c \(over bitdeer_hybrid.toml\): "
                                         r"power.ppa_price: unknown key"):
        parse_portfolio(data, source="p.toml", folder=ASSUMPTIONS)


def test_negative_cash_balance_is_refused():
    data = small()
    data["company"]["cash_usd"] = -5e8
    with pytest.raises(InputError, match=r"company.cash_usd: Input should be greater than "
                                         r"or equal to 0 \(got -500000000.0\)"):
        parse_portfolio(data, source="p.toml", folder=ASSUMPTIONS)
    data = small(min_cash_usd=-1.0)
    with pytest.raises(InputError, match=r"constraints.min_cash_usd"):
        parse_portfolio(data, source="p.toml", folder=ASSUMPTIONS)


def test_infeasible_budget_reports_least_infeasible_plan(tmp_path, capsys):
    data = small(min_cash_usd=900e6, max_new_funding_usd=0.0)
    lp = parse_portfolio(data, folder=ASSUMPTIONS)
    plan = plan_portfolio(lp, exact_gains=False)
    assert not plan.solution.feasible
    assert plan.solution.violations["min_cash"] > 0
    # The CLI says so, names the plan and what it breaks, and writes nothing.
    text = _toml(data).replace('base_case = "bitdeer_hybrid.toml"',
                               f'base_case = "{ASSUMPTIONS / "bitdeer_hybrid.toml"}"')
    src = tmp_path / "p.toml"
    src.write_text(text)
    out, js = tmp_path / "plan.xlsx", tmp_path / "plan.json"
    code = main(["portfolio", str(src), "-o", str(out), "--json", str(js)])
    err = capsys.readouterr().err
    assert code == 2
    assert "no plan satisfies the constraints" in err and "least-infeasible plan" in err
    assert "min_cash by" in err and "Traceback" not in err
    assert not out.exists() and not js.exists()
    assert list(tmp_path.iterdir()) == [src]


def test_capex_budget_no_plan_satisfies(tmp_path):
    """Every site must convert and no year's budget allows it: the least-infeasible plan
    breaks the budget by the fewest dollars, and says which year."""
    data = small(capex_budget_usd_by_year={"2026": 1.0, "2027": 1.0})
    data["options"]["strategies"] = ["hybrid", "ai_hosting"]
    data["sites"]["b"]["options"]["strategies"] = ["hybrid", "ai_hosting"]
    lp = parse_portfolio(data, folder=ASSUMPTIONS)
    options = evaluate_options(lp)
    plan = plan_portfolio(lp, options=options, exact_gains=False)
    assert not plan.solution.feasible
    over = {k: v for k, v in plan.solution.violations.items() if k.startswith("capex")}
    assert over
    # The least-infeasible plan is the cheapest in budgeted capex: each site's option
    # with the least capex in 2026 + 2027 (hand check over every option).
    years = np.asarray(options.periods.year)
    in_budget = options.capex_usd[:, (years == 2026) | (years == 2027)].sum(axis=1)
    least = sum(in_budget[(options.site == s) & options.allowed].min() for s in options.sites)
    assert sum(over.values()) == pytest.approx(least - 2.0, rel=1e-6)
    from finmodel.portfolio.report import infeasible_message

    msg = infeasible_message(plan)
    assert "no plan satisfies the constraints" in msg and "capex_budget 2026 by" in msg


def test_site_workbooks_are_written_and_linked_or_nothing_is(tmp_path, monkeypatch, capsys):
    """``--site-workbooks DIR``: one workbook per site, each linked from the Sites sheet by
    a path relative to the plan, with '/' (XlsxWriter wrote ``..\\sites\\a.xlsx``, one
    file name to LibreOffice on Linux); DIR is made when it does not exist yet (it was
    refused); if any output fails, no file or folder at all is left behind."""
    import openpyxl

    import finmodel.excel.portfolio_sheets as sheets

    src = tmp_path / "p.toml"
    src.write_text(_toml(small()).replace(
        'base_case = "bitdeer_hybrid.toml"',
        f'base_case = "{ASSUMPTIONS / "bitdeer_hybrid.toml"}"'))
    out, js, folder = tmp_path / "out" / "plan.xlsx", tmp_path / "plan.json", tmp_path / "sites"
    out.parent.mkdir()
    args = ["portfolio", str(src), "-o", str(out), "--json", str(js),
            "--site-workbooks", str(folder)]
    real = sheets.export_plan
    monkeypatch.setattr(sheets, "export_plan", lambda *a, **k: (_ for _ in ()).throw(
        OSError(28, "No space left on device")))
    assert main(args) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["out", "p.toml"]
    monkeypatch.setattr(sheets, "export_plan", real)
    assert main(args) == 0
    assert sorted(p.name for p in folder.iterdir()) == ["a.xlsx", "b.xlsx", "c.xlsx", "d.xlsx"]
    ws = openpyxl.load_workbook(out)["Sites"]
    links = {c.hyperlink.target: c.value for row in ws.iter_rows() for c in row
             if c.hyperlink}
    assert set(links) == {f"../sites/{s}.xlsx" for s in "abcd"}
    for target in links:
        site = openpyxl.load_workbook(out.parent / target, read_only=True)
        assert "Inputs" in site.sheetnames or len(site.sheetnames) > 2
        site.close()
    # A file where the folder should be, or a folder under a missing one, is refused.
    (tmp_path / "f").write_text("")
    for bad, says in ((tmp_path / "f", "is a file; expected a folder"),
                      (tmp_path / "no" / "sites", "does not exist")):
        assert main(["portfolio", str(src), "--site-workbooks", str(bad)]) == 2
        assert says in capsys.readouterr().err


def _toml(data: dict) -> str:
    """A minimal TOML writer for the test's nested dictionaries."""
    def val(v):
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, list):
            return "[" + ", ".join(val(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{json.dumps(k)} = {val(x)}" for k, x in v.items()) + "}"
        return repr(float(v)) if isinstance(v, float) else str(v)

    lines: list[str] = []

    def table(prefix: str, d: dict) -> None:
        scalars = {k: v for k, v in d.items() if not isinstance(v, dict) or k ==
                   "capex_budget_usd_by_year"}
        if prefix:
            lines.append(f"[{prefix}]")
        lines.extend(f"{k} = {val(v)}" for k, v in scalars.items())
        for k, v in d.items():
            if k not in scalars:
                table(f"{prefix}.{k}" if prefix else k, v)

    table("", copy.deepcopy(data))
    return "\n".join(lines) + "\n"


def test_cli_on_the_shipped_portfolio(tmp_path, capsys):
    js = tmp_path / "plan.json"
    assert main(["portfolio", str(SHIPPED), "--json", str(js)]) == 0
    out = capsys.readouterr().out
    plan = json.loads(js.read_text())
    assert plan["objective"] == "npv_usd" and plan["feasible"] is True
    assert len(plan["plan"]) >= 5
    for site in plan["plan"].values():
        assert {"strategy", "start_month", "npv_usd", "capex_by_year_usd"} <= set(site)
        if site["start_month"] is not None:
            assert len(site["start_month"]) == 7 and site["start_month"][4] == "-"
    budget = [c for c in plan["constraints"] if c["name"] == "capex_budget"]
    assert any(c["binding"] for c in budget), "the shipped budget must bind"
    assert plan["value_usd"] == pytest.approx(
        sum(s["npv_usd"] for s in plan["plan"].values())
        + plan["value_items_usd"]["new_funding_cost_usd"])
    assert "BINDING" in out and "Greedy" in out
    # Each constraint says in words how its LP dual and its exact gain read: a budget year
    # the integer plan leaves room in, but the LP relaxation fills, is labelled so.
    for c in plan["constraints"]:
        slack_in_lp_only = (not c["at_limit"] and abs(c["shadow_price"]) > 1e-6
                            and not c["milp_gain_per_100m_usd"] > 1.0)
        assert (c["reading"] == "LP relaxation binds; integer plan has slack and $100M more "
                "is worth nothing") == slack_in_lp_only
        assert c["reading"] in out
    assert any(c["reading"].startswith("LP relaxation binds") for c in budget)
    # Limited liability: the share's value is the equity NPV per share floored at zero.
    for when in ("before", "after"):
        ps = plan["company"][when]
        assert ps["share_value_usd"] == max(0.0, ps["value_per_share_usd"])
    before = plan["company"]["before"]
    assert f"Value per share: {before['share_value_usd']:.2f} USD keeping every site mining" in out
    # Keeping every site mining raises money too (fuzzed 2026-11-27: the summary's 13.25 USD
    # "before" counted a raise it did not show). Shares by hand: 200M outstanding, the
    # notes that convert at 13.94 USD, and the raise at 13.94 USD a share.
    c = plan["company"]
    assert c["keep_mining_keeps_cash_floor"] and c["keep_mining_new_funding_usd"] > 1e9
    assert (f"{c['keep_mining_new_funding_usd'] / 1e6:,.1f}M keeping every site mining"
            in out)
    for key, view in (("plan", "after"), ("keep_mining", "before")):
        raised = c["new_funding_usd"] if key == "plan" else c["keep_mining_new_funding_usd"]
        assert c[f"{key}_new_shares"] == pytest.approx(raised / 13.94, rel=1e-12)
        shares = 200e6 + c["note_conversion_shares"] + raised / 13.94
        assert c[view]["shares"] == pytest.approx(shares, rel=1e-12)
        assert c[f"{key}_new_share_dilution"] == pytest.approx(raised / 13.94 / shares)
        assert c[f"{key}_all_dilution_share"] == pytest.approx(1 - 200e6 / shares)
    assert c["dilution_share"] == c["plan_all_dilution_share"]  # the old key, kept
    assert f"{c['plan_new_share_dilution']:.1%} of" in out
    assert f"{c['keep_mining_new_share_dilution']:.1%} of" in out
    # "BINDING" stands apart from the Used figure (it read "687.70 BINDING").
    assert re.search(r"used +[\d,.]+M {3}BINDING", out)
    # An LP dual that rounds to zero prints as 0, never -0.000.
    assert "-0.000" not in out and all(
        math.copysign(1, x["shadow_price"]) > 0 for x in plan["constraints"]
        if x["shadow_price"] == 0)
    assert len(plan["options"]) == 7 * (1 + 3 * 4)
    first = plan["options"][1]
    assert first["start_month"] == "2026-07" and len(first["funding_need_by_month_usd"]) == 180
    assert first["peak_funding_usd"] == max(first["funding_need_by_month_usd"])


# ---- workbook ---------------------------------------------------------------------------

def _keyed(ws) -> dict[str, list]:
    """Rows of a Company/Sites sheet by the key in column D: [value, month 1, month 2...]."""
    out = {}
    for row in ws.iter_rows(min_row=6, values_only=True):
        if isinstance(row[3], str) and row[3]:
            out[row[3]] = [row[2], *row[4:]]
    return out


def _close(got, want, rel=PARITY, scale=1.0):
    got = np.asarray(got, dtype=float)
    want = np.asarray(want, dtype=float)
    assert np.all(np.abs(got - want) <= rel * np.maximum(np.abs(want), scale)), \
        (got - want)[np.argmax(np.abs(got - want))]


@pytest.mark.parametrize("kind", ["convertible", "equity"])
def test_company_sheet_recalculated_by_libreoffice_equals_python(four, tmp_path, libreoffice,
                                                                  kind):
    """Convertible: the new note's service month by month (keeping every site mining, no
    amount of a note repaid in 2032 keeps the floor, so none is counted). Equity with a
    $600M floor: keeping every site mining raises money too (fuzzed 2026-11-27: the sheet's
    "before" left out the status quo's raise, its cost and its shares; recalculated, it
    read 13.15 USD a share where Python said 13.25)."""
    import openpyxl

    from finmodel.excel.libreoffice import recalculate
    from finmodel.excel.portfolio_sheets import export_plan

    lp0, options = four
    data = small()
    data["financing"] = {"existing": [
        {"name": "=HYPERLINK(\"x\") [V3]", "principal_usd": 65e6, "coupon_rate": 0.0525,
         "maturity_month": "2029-12", "conversion_price_usd": 15.95},
        {"name": "V5", "principal_usd": 325e6, "coupon_rate": 0.05, "maturity_month":
         "2032-02", "conversion_price_usd": 9.93}],
        "new": {"kind": kind, "coupon_rate": 0.045, "term_years": 6}}
    data["constraints"]["max_new_funding_usd"] = 3e9
    data["company"]["cash_usd"] = 0.3e9  # owned fleets now mine enough that $0.6B needs no new money
    data["company"].update(overhead_usd_per_year=30e6, overhead_escalator_rate=0.03,
                           overhead_terminal_multiple=8.0)
    if kind == "equity":
        data["constraints"]["min_cash_usd"] = 600e6
    lp = parse_portfolio(data, folder=ASSUMPTIONS)
    plan = plan_portfolio(lp, options=options, exact_gains=False)
    assert plan.solution.feasible and plan.solution.funding_usd > 1e6  # new money drawn
    sq = plan.status_quo
    if kind == "equity":  # keeping every site mining raises money and issues shares
        assert sq.keeps_cash_floor and sq.new_funding_usd > 100e6
        assert sq.new_shares == pytest.approx(sq.new_funding_usd / 13.94, rel=1e-12)
        assert sq.per_share.shares == pytest.approx(
            200e6 + 325e6 / 9.93 + sq.new_funding_usd / 13.94, rel=1e-12)
    else:
        assert not sq.keeps_cash_floor and sq.new_funding_usd == 0.0
    assert plan.flows.stack_shares > 0 and plan.flows.stack_coupons_usd.sum() < 0
    path = export_plan(plan, tmp_path / "plan.xlsx")
    lo = recalculate(path, tmp_path / "lo")
    wb = openpyxl.load_workbook(lo, data_only=True)
    company, sites = _keyed(wb["Company"]), _keyed(wb["Sites"])
    v, n = plan.company, lp.months
    scale = 1e3  # USD: a row's zero months are compared to within 1e-9 x $1,000
    _close(company["sites_cash_usd"][1:n + 1], v.site_cash_usd.sum().to_numpy(), scale=scale)
    _close(company["overhead_usd"][1:n + 1], plan.flows.overhead_usd, scale=scale)
    _close(company["balance_before_funding_usd"][1:n + 1], v.balance_before_funding_usd,
           scale=scale)
    _close(company["balance_usd"][1:n + 1], v.balance_usd, scale=scale)
    _close(company["funding_gap_usd"][1:n + 1], v.funding_gap_usd, scale=scale)
    _close(company["new_funding_cash_usd"][1:n + 1], v.new_funding_cash_usd, scale=scale)
    ps, ps0 = v.per_share, plan.status_quo.per_share
    for key, want in (("overhead_pv_usd", ps.overhead_pv_usd),
                      ("overhead_terminal_usd", 8.0 * plan.flows.overhead_usd[-12:].sum()),
                      ("sites_npv_usd", ps.sites_value_usd),
                      ("equity_value_usd", ps.equity_value_usd),
                      ("diluted_shares", ps.shares),
                      ("value_per_share_usd", ps.value_per_share_usd),
                      ("value_per_share_before_usd", ps0.value_per_share_usd),
                      ("share_value_usd", ps.share_value_usd),
                      ("share_value_before_usd", ps0.share_value_usd),
                      ("equity_value_before_usd", ps0.equity_value_usd),
                      ("diluted_shares_before", ps0.shares),
                      ("new_shares", v.new_shares), ("new_shares_before", sq.new_shares),
                      ("new_share_dilution", v.new_shares / ps.shares),
                      ("new_share_dilution_before", sq.new_shares / ps0.shares),
                      ("dilution_before_share", 1 - 200e6 / ps0.shares),
                      ("lowest_balance_usd", v.balance_usd.min()),
                      ("peak_funding_gap_usd", v.funding_gap_usd.max())):
        _close([company[key][0]], [want])
    # Capex by year on the Sites sheet (SUMIF) and its totals on the Portfolio sheet.
    by_year = plan.chosen.capex_by_year()
    for k, site in enumerate(plan.chosen.site):
        years = list(by_year.columns)
        _close(sites[f"capex_year.{site}"][1:len(years) + 1], by_year.loc[k].to_numpy(),
               scale=scale)
    # Text from the input file stays text.
    raw = openpyxl.load_workbook(path)
    assert all(not str(c.value).startswith("=HYPERLINK") for row in raw["Portfolio"].iter_rows()
               for c in row if c.value is not None)


def test_funding_shortfall_splits_by_site_and_chunk_on_any_executor(four):
    """The same seed gives the same shortfalls whether the (site, chunk) jobs run here or
    on a pool, and whatever the chunk size; with no volatility every scenario is the
    expected path, which the plan funds exactly to its floor (no shortfall)."""
    from concurrent.futures import ThreadPoolExecutor

    from finmodel.portfolio.montecarlo import funding_shortfall

    lp, options = four
    plan = plan_portfolio(lp, options=options, exact_gains=False)
    here = funding_shortfall(plan, 24, seed=3, chunk=24)
    with ThreadPoolExecutor(2) as pool:
        pooled = funding_shortfall(plan, 24, seed=3, chunk=7, executor=pool)
    assert np.allclose(here.shortfall_usd, pooled.shortfall_usd, rtol=1e-12, atol=1e-3)
    assert np.allclose(here.sites_npv_usd, pooled.sites_npv_usd, rtol=1e-12)
    assert here.shortfall_usd.max() > 0  # 50 % BTC volatility: some paths run short
    calm = copy.deepcopy(small())
    calm["monte_carlo"] = {"btc_price_volatility": 0.0, "hashrate_volatility": 0.0}
    lp_calm = parse_portfolio(calm, folder=ASSUMPTIONS)
    plan_calm = plan_portfolio(lp_calm, options=options, exact_gains=False)
    flat = funding_shortfall(plan_calm, 4, seed=3)
    assert np.allclose(flat.sites_npv_usd, plan_calm.chosen.npv_usd.sum(), rtol=1e-9)
    assert flat.shortfall_usd.max() < 1.0


def test_site_level_distributions_in_the_monte_carlo(four):
    """A site's power price drawn per scenario: with flat BTC and hashrate paths each
    scenario's total NPV is the plan's, with that site's option re-run at its drawn price
    (checked against a separate single-site run); the draws do not depend on the chunking;
    a bad distribution is refused with the site and field named."""
    import finmodel
    from finmodel.portfolio.montecarlo import funding_shortfall

    lp, options = four
    data = copy.deepcopy(small())
    data["monte_carlo"] = {"btc_price_volatility": 0.0, "hashrate_volatility": 0.0,
                           "distributions": {"c": {"power.ppa_price_usd_per_mwh": {
                               "dist": "uniform", "low": 30.0, "high": 60.0}}}}
    lp2 = parse_portfolio(data, folder=ASSUMPTIONS)
    plan = plan_portfolio(lp2, options=options, exact_gains=False)
    one = funding_shortfall(plan, 6, seed=5, chunk=6)
    split = funding_shortfall(plan, 6, seed=5, chunk=4)
    assert np.array_equal(one.site_draws["c"]["power.ppa_price_usd_per_mwh"],
                          split.site_draws["c"]["power.ppa_price_usd_per_mwh"])
    assert np.allclose(one.sites_npv_usd, split.sites_npv_usd, rtol=1e-12)
    drawn = one.site_draws["c"]["power.ppa_price_usd_per_mwh"]
    assert drawn.min() >= 30.0 and drawn.max() <= 60.0 and np.ptp(drawn) > 1.0
    k = int(np.flatnonzero(plan.chosen.site == "c")[0])
    strategy, start = plan.chosen.strategy[k], plan.chosen.start_month[k]
    others = plan.chosen.npv_usd.sum() - plan.chosen.npv_usd[k]
    for i in (0, 3):
        changes = {"power.ppa_price_usd_per_mwh": float(drawn[i])}
        if start:
            changes[f"strategies.{strategy}.conversion_start_month"] = start
        alone = finmodel.run(finmodel.with_values(lp2.cases["c"], changes),
                             breakevens=False).summary.loc["npv_usd", strategy]
        assert one.sites_npv_usd[i] == pytest.approx(others + alone, rel=1e-9)
    bad = copy.deepcopy(data)
    bad["monte_carlo"]["distributions"]["c"]["power.ppa_price_usd_per_mwh"]["low"] = 70.0
    with pytest.raises(InputError, match=r"monte_carlo.distributions.c: .*power.ppa_price"):
        parse_portfolio(bad, folder=ASSUMPTIONS)
    bad["monte_carlo"]["distributions"] = {"zz": {}}
    with pytest.raises(InputError, match=r"monte_carlo.distributions.zz: not a site"):
        parse_portfolio(bad, folder=ASSUMPTIONS)


def test_plan_cut_short_by_the_time_limit_gets_the_money_every_month_needs(four):
    """When the lazy MILP runs out of time with a plan that breaks a month it has not seen,
    the plan is kept with the new money that keeps every month: for the optimal choice
    that is exactly the optimum's new money (raising money costs, so the optimum raises
    no more than it needs), and the plan is not claimed optimal."""
    import finmodel.portfolio.optimise as opt
    from finmodel.errors import SolverError

    lp, options = four
    loaded = parse_portfolio(small(min_cash_usd=250e6), folder=ASSUMPTIONS)
    p = build_problem(loaded.spec, options, company_flows(loaded.spec, lp.start_month,
                                                          lp.months))
    full = solve(p, exact_gains=False, lazy=False)
    cut = opt._Got(full.choice, 0.0, full.objective_usd + 5e6, False, 0.01)
    fixed = opt._repaired(p, cut, 1.0)
    assert fixed.funding_usd == pytest.approx(full.funding_usd, rel=1e-9)
    assert fixed.objective_usd == pytest.approx(full.objective_usd, rel=1e-12)
    bound = (full.objective_usd + 5e6) + 0.01 * abs(full.objective_usd + 5e6)
    assert not fixed.optimal
    assert fixed.gap == pytest.approx((bound - full.objective_usd) / abs(full.objective_usd))
    with pytest.raises(SolverError, match="no plan keeping the cash floor within 1 s"):
        opt._repaired(p, cut, 1.0, max_funding=0.0)


def test_plan_not_proven_optimal_says_so_in_the_workbook_and_the_text(four, tmp_path):
    """A plan cut short by the time limit is stated as such, with its proven gap, in the
    Portfolio sheet, the printed summary and the JSON; a proven plan says "proven
    optimal"."""
    import dataclasses

    import openpyxl

    from finmodel.excel.portfolio_sheets import export_plan
    from finmodel.portfolio.report import format_plan

    lp, options = four
    plan = plan_portfolio(lp, options=options, exact_gains=False)
    assert plan.solution.optimal and "; proven optimal" in format_plan(plan)
    export_plan(plan, tmp_path / "proven.xlsx")
    ws = openpyxl.load_workbook(tmp_path / "proven.xlsx")["Portfolio"]
    assert ws["B7"].value.startswith("OR-Tools CP-SAT (proof checked against the float "
                                      "problem), proven optimal;")
    highs = plan_portfolio(lp, options=options, exact_gains=False, solver="highs")
    export_plan(highs, tmp_path / "highs.xlsx")
    ws = openpyxl.load_workbook(tmp_path / "highs.xlsx")["Portfolio"]
    assert ws["B7"].value.startswith("scipy.optimize.milp (HiGHS), proven optimal;")
    assert plan.to_json()["solver"] == "cpsat" and highs.to_json()["solver"] == "highs"
    plan.solution = dataclasses.replace(plan.solution, optimal=False, mip_gap=0.000123)
    assert "proven within 0.012% of the optimum" in format_plan(plan)
    assert plan.to_json()["optimal"] is False and plan.to_json()["mip_gap"] == 0.000123
    export_plan(plan, tmp_path / "cut.xlsx")
    ws = openpyxl.load_workbook(tmp_path / "cut.xlsx")["Portfolio"]
    assert "NOT proven optimal" in ws["B7"].value
    assert "proven within 0.012% of the optimum" in ws["B7"].value
    with pytest.raises(Exception, match="expected a file name ending in .xlsx"):
        export_plan(plan, tmp_path / "plan.xls")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.xlsx", "highs.xlsx",
                                                          "proven.xlsx"]


def test_dominated_options_left_out_keep_the_milp_exact():
    """Options another option of the same site beats on NPV, on capex in every budgeted
    year and on cumulative cash in every month are left out; the MILP over the rest gives
    the value of the MILP over every option, on budgets loose and tight, and every option
    left out has a kept option of its site that beats it on each count."""
    from dataclasses import replace

    from finmodel.portfolio.optimise import undominated

    data = small(capex_budget_usd_by_year={"2026": 450e6, "2027": 500e6, "2028": 300e6},
                 min_cash_usd=150e6)
    data["options"] = {"strategies": ["mining", "hybrid", "ai_hosting", "cloud_hybrid"],
                       "start_months": ["2026-06", "2026-12", "2027-06", "2028-01"]}
    del data["sites"]["b"]["options"]
    lp = parse_portfolio(data, folder=ASSUMPTIONS)
    options = evaluate_options(lp)
    flows = company_flows(lp.spec, lp.start_month, lp.months)
    p = build_problem(lp.spec, options, flows)
    keep = undominated(p)
    assert 0 < (~keep).sum() < len(keep) - 4
    cash = p.cum_cash.T
    for i in np.flatnonzero(~keep):
        same = np.flatnonzero((options.site == options.site[i]) & keep)
        assert any(p.npv[j] >= p.npv[i] and np.all(p.capex[:, j] <= p.capex[:, i])
                   and np.all(cash[j] >= cash[i] - 1e-6) for j in same), i
    plans = set()
    for budget in (p.budget, p.budget * 0.6, p.budget * 3):
        q = replace(p, budget=budget)
        reduced = solve(q, exact_gains=False, lazy=False)
        every = solve(replace(q, keep=options.allowed.copy()), exact_gains=False, lazy=False)
        assert reduced.optimal and every.optimal
        assert reduced.objective_usd == pytest.approx(every.objective_usd, rel=1e-9)
        assert keep[reduced.choice].all()
        plans.add(tuple(sorted(reduced.choice)))
    assert len(plans) == 3  # the budgets bind differently: three different plans


def test_monte_carlo_sites_batched_equal_one_run_per_site():
    """Sites that differ only in numeric inputs share the Monte Carlo's runs (each site's
    chunk of paths a block of scenarios, its drawn inputs and start month set per block):
    the shortfalls and NPVs equal those of one run per (site, chunk), whatever the chunk;
    a site with another structure (a flag) runs apart."""
    from finmodel.portfolio.montecarlo import funding_shortfall

    data = small()
    data["sites"]["e"] = _site(80.0, 41.0, 35.0)
    data["sites"]["e"]["mining"]["economic_curtailment"] = False
    data["monte_carlo"] = {"distributions": {
        "c": {"power.ppa_price_usd_per_mwh": {"dist": "uniform", "low": 30.0, "high": 60.0}},
        "e": {"hosting.lease_rate_usd_per_kw_month": {"dist": "uniform", "low": 100.0,
                                                       "high": 160.0}}}}
    lp = parse_portfolio(data, folder=ASSUMPTIONS)
    plan = plan_portfolio(lp, exact_gains=False)
    assert len(set(plan.chosen.strategy)) > 1  # sites on different options share runs
    alone = funding_shortfall(plan, 10, seed=11, chunk=4, max_scenarios=1)
    for chunk, most in ((4, 600), (10, 600), (3, 7)):
        batched = funding_shortfall(plan, 10, seed=11, chunk=chunk, max_scenarios=most)
        assert np.allclose(batched.sites_npv_usd, alone.sites_npv_usd, rtol=1e-13, atol=0)
        assert np.allclose(batched.shortfall_usd, alone.shortfall_usd, rtol=1e-13, atol=1e-6)
    assert alone.shortfall_usd.max() > 0 and np.ptp(alone.sites_npv_usd) > 1e6


def test_monte_carlo_without_n_takes_the_files_scenarios(tmp_path, capsys):
    """README showed a probability of a shortfall under a command that printed none:
    ``--monte-carlo`` alone takes ``[monte_carlo] scenarios`` (and seed) of the file."""
    data = small()
    data["monte_carlo"] = {"scenarios": 3, "seed": 5}
    src = tmp_path / "p.toml"
    src.write_text(_toml(data).replace('base_case = "bitdeer_hybrid.toml"',
                                       f'base_case = "{ASSUMPTIONS / "bitdeer_hybrid.toml"}"'))
    js = tmp_path / "plan.json"
    assert main(["portfolio", str(src), "--monte-carlo", "--json", str(js)]) == 0
    out = capsys.readouterr().out
    mc = json.loads(js.read_text())["monte_carlo"]
    assert (mc["scenarios"], mc["seed"]) == (3, 5)
    assert "over 3 scenarios (seed 5)" in out


@pytest.mark.parametrize("where, change, message", [
    ("existing", {"coupons_per_year": 5}, r'financing\.existing\."V5"\.coupons_per_year: 5 '
     r"does not divide the year into whole months; expected 1, 2, 3, 4, 6 or 12"),
    ("new", {"coupons_per_year": 5}, r"financing\.new\.coupons_per_year: 5 does not divide"),
    ("existing", {"maturity_month": "2020-08"}, r'financing\.existing\."V5"\.maturity_month: '
     r"2020-08 is before the sites' start 2026-01"),
])
def test_note_terms_the_timeline_cannot_hold_are_refused_at_load(tmp_path, capsys, where,
                                                                   change, message):
    """Fuzzed 2026-11-27: coupons_per_year = 5 failed only when the plan was built, with
    neither file nor field named, and ``finmodel validate`` passed the file."""
    data = small()
    data["financing"] = {"existing": [{"name": "V5", "principal_usd": 325e6, "coupon_rate":
                                       0.05, "maturity_month": "2032-02",
                                       "conversion_price_usd": 9.93}],
                         "new": {"kind": "convertible"}}
    target = data["financing"]["existing"][0] if where == "existing" else \
        data["financing"]["new"]
    target.update(change)
    src = tmp_path / "p.toml"
    src.write_text(_toml(data).replace('base_case = "bitdeer_hybrid.toml"',
                                       f'base_case = "{ASSUMPTIONS / "bitdeer_hybrid.toml"}"'))
    with pytest.raises(InputError, match=re.escape(str(src)) + ": " + message):
        load_portfolio(src)
    assert main(["validate", str(src)]) != 0
    err = capsys.readouterr().err
    assert re.search(message, err) and str(src) in err


def test_plan_workbook_units_labels_and_print(four, tmp_path, libreoffice):
    """Review of 2026-11-27: money shown in millions under a "USD" unit, overhead in full
    dollars, 0.0717 shares per dollar shown as 0.07, Monte Carlo rows labelled with Python
    keys, the Portfolio sheet printed at ~38 % (charts beside a 60-wide column) and the
    notes' labels cut at column A. Checked on the file and on LibreOffice's PDF."""
    import re as _re
    import subprocess
    import zipfile

    import openpyxl

    from finmodel.excel.libreoffice import to_pdf
    from finmodel.excel.portfolio_sheets import export_plan

    lp0, options = four
    data = small()
    data["financing"] = {"existing": [
        {"name": "5.25% notes due Dec 2029 [V3], $400M less $200M [V1] and $135M [V5] "
         "repurchased", "principal_usd": 65e6, "coupon_rate": 0.0525,
         "maturity_month": "2029-12", "conversion_price_usd": 15.95}]}
    lp = parse_portfolio(data, folder=ASSUMPTIONS)
    plan = plan_portfolio(lp, options=options, exact_gains=False, monte_carlo=8)
    path = export_plan(plan, tmp_path / "plan.xlsx")
    wb = openpyxl.load_workbook(path)
    co = wb["Company"]
    rows = {r[3].value: r for r in co.iter_rows(min_row=6) if isinstance(r[3].value, str)}
    assert rows["cash_usd"][1].value == "USD m"
    assert rows["cash_usd"][2].number_format.startswith("#,##0.00,,")  # shown in millions
    assert rows["overhead_usd_per_year"][1].value == "USD m/year"
    assert rows["overhead_usd_per_year"][2].number_format.startswith("#,##0.00,,")
    assert rows["new_shares_per_usd"][1].value == "shares/USD"
    assert rows["new_shares_per_usd"][2].number_format == "0.000000"
    # The note's label wraps onto a taller row rather than being cut at column A.
    note = rows["note.1"][0]
    assert note.value.endswith("repaid") and note.alignment.wrap_text
    assert co.row_dimensions[note.row].height >= 24
    pf = wb["Portfolio"]
    texts = [c.value for row in pf.iter_rows() for c in row if isinstance(c.value, str)]
    for head in ("NPV (USD m)", "Capex counted (USD m)", "Limit (USD m)", "Used (USD m)"):
        assert head in texts
    for key in ("prob_shortfall", "p95_shortfall_usd", "sites_npv_mean_usd"):
        assert key not in texts
    assert "Probability of a funding shortfall" in texts
    assert any(t.startswith("mean of each scenario's NPV; not the NPV of the expected path "
                            f"({plan.chosen.npv_usd.sum() / 1e6:,.1f}M") for t in texts)
    # Printed at a fixed scale >= 60 % (no fit-to-page), charts under the table (their
    # anchors within columns A..H), on a page of their own.
    assert pf.page_setup.scale >= 60 and not pf.sheet_properties.pageSetUpPr.fitToPage
    assert len(pf.row_breaks.brk) == 1
    with zipfile.ZipFile(path) as z:
        drawings = [z.read(n).decode() for n in z.namelist()
                    if n.startswith("xl/drawings/drawing") and n.endswith(".xml")]
    cols = [int(c) for d in drawings for c in _re.findall(r"<xdr:from><xdr:col>(\d+)<", d)]
    assert cols and max(cols) <= 7
    # LibreOffice's PDF: page 1 holds the whole table width (its last column, Source, and
    # the constraints' Reading), and the Company sheet shows the note's label to its end.
    pdf = to_pdf(path, tmp_path / "pdf")
    page1 = subprocess.run(["pdftotext", "-f", "1", "-l", "1", "-layout", str(pdf), "-"],
                           capture_output=True, text=True, check=True).stdout
    assert "Source" in page1 and "Reading" in page1 and "Capex counted" in page1
    full = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "15.95 USD/share, repaid" in " ".join(full.split())


def test_a_case_file_given_as_a_portfolio_is_named_as_such(capsys):
    """It reported "company: required input is missing (and 10 more ...)"."""
    case = ASSUMPTIONS / "bitdeer_hybrid.toml"
    assert main(["portfolio", str(case)]) == 2
    err = capsys.readouterr().err
    assert f"{case}: this is a case file" in err and "run `finmodel run`" in err
    assert "required input is missing" not in err


def _random_problem(rng: np.random.Generator, n_sites: int, n_conversions: int):
    """A synthetic plan problem (sites of random size and NPV, conversions of random cost
    and start month, capex budgets for 2026-2028 that bind, a cash floor, new money whose
    cumulative cash per dollar may turn negative at a repayment), built directly."""
    import pandas as pd

    from finmodel.portfolio.optimise import Problem
    from finmodel.portfolio.options import Options

    months = 48
    periods = pd.period_range("2026-01", periods=months, freq="M")
    rows = []  # site, strategy, start month, npv, monthly cash, monthly capex
    for s in range(n_sites):
        size = rng.uniform(50e6, 400e6)
        base = rng.normal(0.4, 0.3) * size
        mine = rng.normal(0.005, 0.004, months) * size
        rows.append((f"s{s}", "mining", "", base, mine, np.zeros(months)))
        for _ in range(n_conversions):
            m0 = int(rng.integers(0, months - 12))
            cost = size * rng.uniform(0.5, 2.0)
            capex = np.zeros(months)
            capex[m0:m0 + int(rng.integers(3, 10))] = 1.0
            capex *= cost / capex.sum()
            cash = mine.copy()
            cash[m0:] += cost * rng.uniform(0.01, 0.04)
            rows.append((f"s{s}", "conv", str(periods[m0]), base + rng.normal(0.1, 0.3) * size,
                         cash - capex, capex))
    site, strategy, start, npv, cash, capex = (np.array(c) for c in zip(*rows))
    npv = npv.astype(float)
    options = Options(site, strategy, start, npv, npv - npv[strategy == "mining"].repeat(
        n_conversions + 1), np.vstack(cash), np.vstack(capex), periods, np.ones(len(site), bool))
    by_year = options.capex_by_year()
    years = [2026, 2027, 2028]
    cap = np.array([by_year[y].to_numpy() for y in years])
    most = np.array([[cap[k, site == s].max() for s in options.sites] for k in range(3)])
    budget = most.sum(axis=1) * rng.uniform(0.04, 0.25, 3)
    g = np.full(months, 0.97)
    if rng.random() < 0.4:  # coupons, then the repayment: the new money's cash turns negative
        g -= 0.005 * np.arange(months)
        g[36:] -= 1.0
    cash0 = rng.uniform(0.05, 0.4) * sum(npv[strategy == "mining"].clip(1e8))
    min_cash = rng.uniform(0.0, 0.3) * cash0
    floor = min_cash - cash0 + 5e6 * np.arange(1, months + 1)
    site_rows = np.array([(site == s).astype(float) for s in options.sites])
    return Problem(options, npv, site_rows, years, cap, budget, np.cumsum(options.cash_usd, axis=1).T,
                   floor, np.cumsum(np.r_[g[0], np.diff(g)]), float(rng.choice([2e8, 1e9, 2e10])),
                   float(rng.choice([0.0, 0.03, 0.1])), min_cash)


def test_cpsat_equals_highs_on_random_portfolios():
    """CP-SAT (integer coefficients, its proof checked against the float problem) and
    HiGHS give the same value on random portfolios of 3-25 sites: budgets that bind, a
    cash floor, new money that is free or costs, whose cash per dollar may turn negative;
    every CP-SAT plan checked against the float constraints directly."""
    rng = np.random.default_rng(13)
    compared = infeasible = 0
    for k in range(36):
        n_sites, n_conv = ((3, 3), (6, 5), (12, 8), (25, 12))[k % 4]
        p = _random_problem(rng, n_sites, n_conv)
        a = solve(p, exact_gains=False, solver="cpsat")
        b = solve(p, exact_gains=False, solver="highs")
        assert a.feasible == b.feasible, k
        if not a.feasible:
            infeasible += 1
            continue
        assert a.solver == "cpsat" and b.solver == "highs" and a.optimal and b.optimal, k
        assert a.objective_usd == pytest.approx(b.objective_usd, rel=2e-9, abs=1e-3), k
        x = np.zeros(p.n)
        x[a.choice] = 1.0
        assert len(a.choice) == len(p.options.sites)
        assert np.all(p.capex @ x <= p.budget + 1.0), k
        assert 0.0 <= a.funding_usd <= p.max_funding * (1 + 1e-9), k
        assert np.all(p.cum_cash @ x + p.new_per_usd_cum * a.funding_usd >= p.cash_floor - 1.0)
        assert a.objective_usd == pytest.approx(p.npv[a.choice].sum()
                                                - p.funding_cost * a.funding_usd, rel=1e-12)
        compared += 1
    assert compared >= 24 and infeasible >= 1


def test_solver_choice_and_fallback_to_highs(four, monkeypatch):
    """Without OR-Tools "auto" is HiGHS and "cpsat" is refused by name; where CP-SAT
    cannot answer for the float problem (here: coefficients past its limit) HiGHS does,
    with the same plan; an unknown solver is refused naming the choices."""
    import finmodel.portfolio.cpsat as cpsat
    from finmodel.errors import SolverError

    lp, options = four
    p = build_problem(lp.spec, options, company_flows(lp.spec, lp.start_month, lp.months))
    ref = solve(p, exact_gains=False, solver="cpsat")
    assert ref.solver == "cpsat" and ref.optimal
    with monkeypatch.context() as m:
        m.setattr(cpsat, "MAX_COEF", 1e3)
        back = solve(p, exact_gains=False, solver="cpsat")
    assert back.solver == "highs" and back.optimal
    assert sorted(back.choice) == sorted(ref.choice)
    assert back.objective_usd == pytest.approx(ref.objective_usd, rel=1e-9)
    monkeypatch.setattr(cpsat, "available", lambda: False)
    assert solve(p, exact_gains=False).solver == "highs"
    with pytest.raises(SolverError, match=r"solver 'cpsat' needs OR-Tools"):
        solve(p, solver="cpsat")
    with pytest.raises(ValueError, match=r"solver: 'gurobi' is not one of auto, highs, cpsat"):
        solve(p, solver="gurobi")


def test_a_note_issued_after_the_start_pays_no_coupon_before_it_exists():
    """Reviewed 2026-11-27: the Feb 2026 notes [V5] (due Feb 2032, semi-annual) paid a full
    $8.1M coupon in Feb 2026, the month they were issued, coupons being counted back from
    maturity. With issue_month the first coupon is six months after issue: Aug 2026."""
    data = small()
    start = parse_portfolio(small(), folder=ASSUMPTIONS).start_month  # '2026-01'
    note = {"name": "V5", "principal_usd": 325e6, "coupon_rate": 0.05,
            "maturity_month": "2032-02", "conversion_price_usd": 20.0}
    data["financing"] = {"existing": [note]}
    lp = parse_portfolio(data, folder=ASSUMPTIONS)
    before = company_flows(lp.spec, lp.start_month, lp.months).stack_coupons_usd
    feb, aug = month_index("2026-02", start), month_index("2026-08", start)
    assert before[feb] == pytest.approx(-325e6 * 0.05 / 2)  # the old count: paid at issue
    data["financing"]["existing"][0]["issue_month"] = "2026-02"
    lp = parse_portfolio(data, folder=ASSUMPTIONS)
    after = company_flows(lp.spec, lp.start_month, lp.months).stack_coupons_usd
    assert after[feb] == 0.0 and after[aug] == pytest.approx(-8_125_000.0)
    assert np.array_equal(after[feb + 1:], before[feb + 1:])
    data["financing"]["existing"][0]["issue_month"] = "2032-02"
    with pytest.raises(InputError, match=r'existing\."?V5"?\.issue_month: 2032-02 is not '
                                         r"before its maturity_month"):
        parse_portfolio(data, folder=ASSUMPTIONS)


def test_the_overhead_goes_on_beyond_the_horizon_as_the_sites_do():
    """Reviewed 2026-11-27: sites carry an exit value past the horizon, the head office
    that runs them stopped at it. Hand calculation: $12M a year, flat, no tax shield,
    10 %: months of -1,000,000; beyond the horizon 5 x 12,000,000 = 60,000,000 at the end
    of month N, worth 60e6 / 1.1 ** (N / 12) today."""
    data = small()
    data["company"].update(overhead_usd_per_year=12e6, overhead_escalator_rate=0.0,
                           tax_rate=0.0, discount_rate=0.10, overhead_terminal_multiple=5.0)
    lp = parse_portfolio(data, folder=ASSUMPTIONS)
    cf = company_flows(lp.spec, lp.start_month, lp.months)
    n = lp.months
    flows = -1e6 / (1.1 ** (1 / 12)) ** np.arange(1, n + 1)
    ps = per_share(lp.spec, cf, 0.0, 0.0)
    assert ps.overhead_pv_usd == pytest.approx(flows.sum() - 60e6 / 1.1 ** (n / 12),
                                               rel=1e-12)
    data["company"]["overhead_terminal_multiple"] = 0.0  # as before: stops at the horizon
    lp0 = parse_portfolio(data, folder=ASSUMPTIONS)
    ps0 = per_share(lp0.spec, company_flows(lp0.spec, lp0.start_month, n), 0.0, 0.0)
    assert ps0.overhead_pv_usd == pytest.approx(flows.sum(), rel=1e-12)


def test_new_money_needed_when_more_money_makes_a_month_worse():
    """After the repayment the new money's cumulative cash per dollar is negative: more
    money makes those months worse. The least new money is the LP's (minimise f subject
    to every month), inf when no amount will do; the greedy plan keeps every month (it
    broke the floor there and showed a value above the proven optimum)."""
    from scipy.optimize import linprog

    from finmodel.portfolio.optimise import greedy, new_money_needed

    rng = np.random.default_rng(7)
    checked = none = 0
    while checked < 12 or none < 2:
        p = _random_problem(rng, 6, 4)
        if not (p.new_per_usd_cum < 0).any():
            continue
        for _ in range(4):
            choice = [int(rng.choice(np.flatnonzero(p.options.site == s)))
                      for s in p.options.sites]
            x = np.zeros(p.n)
            x[choice] = 1.0
            short = p.cash_floor - p.cum_cash @ x
            # rows in millions: G f >= short  ->  -G f <= -short
            lp = linprog([1.0], A_ub=-p.new_per_usd_cum[:, None], b_ub=-(short - 1.0) / 1e6,
                         bounds=[(0, None)], method="highs")
            need = new_money_needed(p, dict(enumerate(choice)))
            if lp.status == 2:
                assert need == np.inf
                none += 1
            else:
                assert need == pytest.approx(lp.x[0] * 1e6, rel=1e-9, abs=2.0)
                checked += 1
        g = greedy(p)
        if g.feasible:
            x = np.zeros(p.n)
            x[g.choice] = 1.0
            assert np.all(p.cum_cash @ x + p.new_per_usd_cum * g.funding_usd
                          >= p.cash_floor - 1.0)
            best = solve(p, exact_gains=False)
            assert g.objective_usd <= best.objective_usd * (1 + 1e-9) + 1.0


def test_cli_without_exact_gains_keeps_the_plan_and_the_duals(tmp_path, capsys):
    """--no-exact-gains skips the re-solve per constraint (most of a large portfolio's
    time): the same plan, value and LP duals, no exact gain, and the summary says so."""
    full, fast = tmp_path / "full.json", tmp_path / "fast.json"
    assert main(["portfolio", str(SHIPPED), "--json", str(full)]) == 0
    capsys.readouterr()
    assert main(["portfolio", str(SHIPPED), "--json", str(fast), "--no-exact-gains"]) == 0
    out = capsys.readouterr().out
    a, b = json.loads(full.read_text()), json.loads(fast.read_text())
    assert a["plan"] == b["plan"] and a["value_usd"] == b["value_usd"]
    assert [c["shadow_price"] for c in a["constraints"]] == \
        [c["shadow_price"] for c in b["constraints"]]
    assert any(c["milp_gain_per_100m_usd"] for c in a["constraints"])  # 2026: +3.3M
    assert all(c["milp_gain_per_100m_usd"] is None for c in b["constraints"])
    assert "not re-solved (--no-exact-gains)" in out
    for x, y in zip(a["constraints"], b["constraints"]):  # binding: at the limit only
        assert y["binding"] == y["at_limit"] and (not y["binding"] or x["binding"])
