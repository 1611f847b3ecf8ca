"""The plan as text, for the command line."""

from __future__ import annotations

import math

from finmodel.portfolio.plan import Plan


def _m(v: float | None) -> str:
    if v is None or not math.isfinite(v):
        return "n/a"
    return f"{v / 1e6:,.1f}M"


def _n(v: float) -> str:
    """Shares in millions."""
    return f"{v / 1e6:,.1f}M"


def _dual(v: float | None) -> str:
    """An LP dual to three decimals; one that rounds to zero prints as 0 (not -0.000)."""
    if v is None or not math.isfinite(v):
        return "n/a"
    return "0" if abs(v) < 5e-4 else f"{v:+.3f}"


def format_plan(plan: Plan) -> str:
    """The chosen option of each site, the value, the constraints with their shadow prices,
    the greedy ranking beside the optimiser, and the company view."""
    js = plan.to_json()
    spec = plan.portfolio.spec
    proof = "proven optimal" if plan.solution.optimal else (
        f"best plan found in the time limit, proven within {plan.solution.mip_gap:.3%} of "
        "the optimum")
    lines = [spec.company.name, f"{len(plan.options)} options over "
             f"{len(plan.options.sites)} sites; objective: total NPV (USD); {proof}", "",
             f"{'site':<14}{'decision':<28}{'NPV':>12}{'vs mining':>12}{'capex':>12}"]
    cap = plan.options.capex_by_year()
    for i in plan.solution.choice:
        o = plan.options
        lines.append(f"{o.site[i]:<14}{o.label(i):<28}{_m(o.npv_usd[i]):>12}"
                     f"{_m(o.value_of_converting_usd[i]):>12}{_m(cap.loc[i].sum()):>12}")
    items = js["value_items_usd"]
    lines += ["", f"Value: {_m(js['value_usd'])} (sites {_m(items['sites_npv_usd'])}, cost of "
              f"new money {_m(items['new_funding_cost_usd'])})", "",
              "Constraints (+100M: value of 100M more room, "
              + ("exact MILP re-solve" if any(c["milp_gain_per_100m_usd"] is not None
                                              for c in js["constraints"]) else
                 "not re-solved (--no-exact-gains); binding means at the limit")
              + "; LP dual: d value / d limit of the LP relaxation, which may fill a limit "
              "the integer plan cannot):"]
    for c in js["constraints"]:
        what = c["name"] + (f" {c['year']}" if c["year"] else "") + \
            (f" (lowest {c['month']})" if c.get("month") else "")
        lines.append(f"  {what:<26} limit {_m(c['limit_usd']):>10}  used {_m(c['used_usd']):>10}"
                     f"   {'BINDING' if c['binding'] else 'slack':<8} +100M "
                     f"{_m(c['milp_gain_per_100m_usd']):>8}  LP dual {_dual(c['shadow_price']):>6}"
                     f"  ({c['reading']})")
    g = js["greedy"]
    lines += ["", f"Greedy by NPV per capex dollar: {_m(g['value_usd'])} "
              f"(the optimiser adds {_m(g['optimiser_adds_usd'])}): "
              + ", ".join(f"{s} {d}" for s, d in g["plan"].items())]
    c = js["company"]
    b, a = c["before"], c["after"]
    sq_raise = (f"{_m(c['keep_mining_new_funding_usd'])} keeping every site mining (the least"
                " its own cash floor needs)" if c["keep_mining_keeps_cash_floor"] else
                "keeping every site mining no amount keeps the cash floor (none counted)")
    out0 = spec.company.shares_outstanding
    lines += ["", f"New money raised ({c['new_funding_kind']}): {_m(c['new_funding_usd'])} "
              f"with the plan; {sq_raise}",
              f"Peak funding gap before new money {_m(c['peak_funding_gap_usd'])}; lowest cash "
              f"{_m(c['min_cash_balance_usd'])} in {c['min_cash_month']}",
              f"Value per share: {b['share_value_usd']:.2f} USD keeping every site mining"
              f" -> {a['share_value_usd']:.2f} USD with the plan (both with their own new "
              "money)",
              f"Equity NPV per share: {b['value_per_share_usd']:.2f} -> "
              f"{a['value_per_share_usd']:.2f} USD"
              + (" (below zero: liabilities exceed value; limited liability floors the "
                 "share at 0)" if min(a["value_per_share_usd"], b["value_per_share_usd"]) < 0
                 else ""),
              f"Shares: {_n(out0)} outstanding + {_n(c['note_conversion_shares'])} from the "
              "existing notes (either way) + new shares:",
              f"  {'with the plan':<26}{_n(c['plan_new_shares']):>8} new "
              f"({c['plan_new_share_dilution']:.1%} of {_n(a['shares'])} diluted); all "
              f"dilution incl. the notes {c['plan_all_dilution_share']:.1%}",
              f"  {'keeping every site mining':<26}{_n(c['keep_mining_new_shares']):>8} new "
              f"({c['keep_mining_new_share_dilution']:.1%} of {_n(b['shares'])} diluted); all "
              f"dilution incl. the notes {c['keep_mining_all_dilution_share']:.1%}"]
    if "monte_carlo" in js:
        mc = js["monte_carlo"]
        lines.append(f"Probability of a funding shortfall: {mc['prob_shortfall']:.1%} over "
                     f"{mc['scenarios']} scenarios (seed {mc['seed']}); mean shortfall when "
                     f"short {_m(mc['mean_shortfall_when_short_usd'])}")
    return "\n".join(lines)


def infeasible_message(plan: Plan) -> str:
    """No plan satisfies the constraints: say by how much the least-infeasible one breaks
    them, and what it is."""
    sol, o = plan.solution, plan.options
    broken = "; ".join(f"{k} by {_m(v)}" for k, v in sol.violations.items())
    chosen = ", ".join(f"{o.site[i]} {o.label(i)}" for i in sol.choice)
    return (f"{plan.portfolio.source.name if plan.portfolio.source else 'portfolio'}: no plan "
            f"satisfies the constraints. The least-infeasible plan ({chosen}) still breaks "
            f"{broken}; raise those limits (constraints.capex_budget_usd_by_year, "
            "constraints.max_new_funding_usd, company.cash_usd or constraints.min_cash_usd)")

