"""The company's plan: options evaluated, one chosen per site, and the company view of it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from finmodel.portfolio.company import CompanyFlows, PerShare, company_flows, per_share
from finmodel.portfolio.load import LoadedPortfolio
from finmodel.portfolio.optimise import (Problem, Solution, build_problem, greedy,
                                         new_money_needed, solve)
from finmodel.portfolio.options import MINING, Options, evaluate_options


@dataclass
class CompanyView:
    """A plan seen from the company: monthly cash, the gap, the money raised, per share."""

    site_cash_usd: pd.DataFrame  # sites x months
    fixed_usd: pd.DataFrame  # overhead, coupons, principal x months
    new_funding_cash_usd: np.ndarray  # (months,) cash of the new issuance
    balance_before_funding_usd: np.ndarray
    balance_usd: np.ndarray
    funding_gap_usd: np.ndarray  # min cash - balance before funding, where positive
    new_funding_usd: float
    per_share: PerShare
    new_shares: float = 0.0  # shares the new money issues (not the notes' conversion)
    keeps_cash_floor: bool = True  # False: no amount of new money keeps the floor

    @property
    def net_cash_usd(self) -> np.ndarray:
        return self.site_cash_usd.sum().to_numpy() + self.fixed_usd.sum().to_numpy()


@dataclass
class Plan:
    """Everything ``finmodel portfolio`` reports."""

    portfolio: LoadedPortfolio
    options: Options
    problem: Problem
    flows: CompanyFlows
    solution: Solution
    greedy: Solution
    company: CompanyView
    status_quo: CompanyView
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def chosen(self) -> Options:
        return self.options.take(self.solution.choice)

    def to_json(self) -> dict[str, Any]:
        return plan_json(self)


def site_case(plan: Plan, k: int):
    """The case of the plan's k-th site with its chosen start month (for its own workbook)."""
    from finmodel.inputs.load import with_values

    chosen = plan.chosen
    a = plan.portfolio.cases[chosen.site[k]]
    if not chosen.start_month[k]:
        return a
    return with_values(a, {f"strategies.{chosen.strategy[k]}.conversion_start_month":
                           chosen.start_month[k]})


def status_quo_choice(options: Options) -> np.ndarray:
    """Index of every site's keep-mining option (its mining row, whether or not allowed)."""
    return np.array([int(np.flatnonzero((options.site == s) & (options.strategy == MINING))[0])
                     for s in options.sites])


def company_view(lp: LoadedPortfolio, options: Options, flows: CompanyFlows,
                 choice: np.ndarray, new_funding_usd: float) -> CompanyView:
    spec = lp.spec
    chosen = options.take(choice)
    periods = options.periods
    site_cash = pd.DataFrame(chosen.cash_usd, index=chosen.site, columns=periods)
    fixed = pd.DataFrame([flows.overhead_usd, flows.stack_coupons_usd,
                          flows.stack_principal_usd], index=["overhead_usd",
                          "existing_coupons_usd", "existing_principal_usd"], columns=periods)
    before = spec.company.cash_usd + np.cumsum(site_cash.sum().to_numpy()
                                               + fixed.sum().to_numpy())
    new_cash = flows.new_per_usd * new_funding_usd
    balance = before + np.cumsum(new_cash)
    gap = np.maximum(0.0, spec.constraints.min_cash_usd - before)
    ps = per_share(spec, flows, float(chosen.npv_usd.sum()), new_funding_usd)
    return CompanyView(site_cash, fixed, new_cash, before, balance, gap, new_funding_usd, ps,
                       new_funding_usd * flows.new_shares_per_usd)


def plan_portfolio(lp: LoadedPortfolio, *, options: Options | None = None,
                   exact_gains: bool = True, monte_carlo: int | None = None,
                   time_limit: float = 60.0, solver: str = "auto") -> Plan:
    """Evaluate every option, choose the plan, and build its company view.

    Parameters
    ----------
    options
        Options already evaluated (default: :func:`evaluate_options`).
    exact_gains
        Also re-solve the MILP with each limit $100M looser (the exact value of more room).
    monte_carlo
        Scenarios for the probability of a funding shortfall (None: skip).
    time_limit
        Seconds the solver may spend on the MILP before it returns its best plan and the
        gap it has proven.
    solver
        "auto" (CP-SAT when OR-Tools is installed, else HiGHS), "highs" or "cpsat": see
        :func:`finmodel.portfolio.optimise.solve`.
    """
    options = options if options is not None else evaluate_options(lp)
    flows = company_flows(lp.spec, lp.start_month, lp.months)
    problem = build_problem(lp.spec, options, flows)
    sol = solve(problem, exact_gains=exact_gains, time_limit=time_limit, solver=solver)
    grd = greedy(problem) if sol.feasible else sol
    view = company_view(lp, options, flows, sol.choice, sol.funding_usd)
    # Keeping every site mining needs new money too (overhead, refreshes, the cash floor):
    # the same least amount the optimiser would raise for that plan, so that a plan which
    # keeps every site mining has the status quo's value per share exactly.
    sq_choice = status_quo_choice(options)
    sq_need = new_money_needed(problem, dict(enumerate(sq_choice)))
    sq = company_view(lp, options, flows, sq_choice,
                      sq_need if np.isfinite(sq_need) else 0.0)
    sq.keeps_cash_floor = bool(np.isfinite(sq_need))
    plan = Plan(lp, options, problem, flows, sol, grd, view, sq)
    if monte_carlo and sol.feasible:
        from finmodel.portfolio.montecarlo import funding_shortfall

        plan.extra["monte_carlo"] = funding_shortfall(plan, monte_carlo).summary()
    return plan


def _num(v: float | None) -> float | None:
    # + 0.0 turns an LP's -0.0 into 0.0 (JSON would carry the sign of a zero dual)
    return None if v is None or not math.isfinite(v) else float(v) + 0.0


def plan_json(plan: Plan) -> dict[str, Any]:
    """``{"objective", "value_usd", "plan": {site: ...}, "constraints": [...], ...}``."""
    sol, opts = plan.solution, plan.options
    cap = opts.capex_by_year()
    sites = {}
    for i in sol.choice:
        sites[str(opts.site[i])] = {
            "strategy": str(opts.strategy[i]),
            "start_month": opts.start_month[i] or None,
            "npv_usd": float(opts.npv_usd[i]),
            "value_of_converting_usd": float(opts.value_of_converting_usd[i]),
            "capex_by_year_usd": {str(y): float(c) for y, c in cap.loc[i].items() if c},
            "peak_funding_usd": float(opts.funding_need()[i].max()),
        }
    sites_npv = float(opts.npv_usd[sol.choice].sum())
    funding_cost = -plan.problem.funding_cost * sol.funding_usd
    v, sq = plan.company, plan.status_quo
    out: dict[str, Any] = {
        "objective": "npv_usd",
        "feasible": sol.feasible,
        "optimal": sol.optimal,
        "mip_gap": sol.mip_gap,
        "solver": sol.solver,
        "value_usd": sites_npv + funding_cost,
        "value_items_usd": {"sites_npv_usd": sites_npv, "new_funding_cost_usd": funding_cost},
        "plan": sites,
        "constraints": [{**c.as_dict(), "shadow_price": _num(c.shadow_price),
                         "milp_gain_per_100m_usd": _num(c.milp_gain_per_100m_usd)}
                        for c in sol.constraints],
        "greedy": {"value_usd": plan.greedy.objective_usd,
                   "plan": {str(opts.site[i]): opts.label(i) for i in plan.greedy.choice},
                   "optimiser_adds_usd": sol.objective_usd - plan.greedy.objective_usd},
        "company": {
            "new_funding_usd": sol.funding_usd,
            "new_funding_kind": plan.portfolio.spec.financing.new.kind,
            "peak_funding_gap_usd": float(v.funding_gap_usd.max()),
            "min_cash_balance_usd": float(v.balance_usd.min()),
            "min_cash_month": str(opts.periods[int(np.argmin(v.balance_usd))]),
            # "before" keeps every site mining and raises the least new money its own
            # cash floor needs (keep_mining_new_funding_usd), as "after" does for the plan.
            "keep_mining_new_funding_usd": sq.new_funding_usd,
            "keep_mining_keeps_cash_floor": sq.keeps_cash_floor,
            "before": _per_share_json(sq.per_share),
            "after": _per_share_json(v.per_share),
            **dilution_json(plan),
        },
        "options": options_json(opts),
    }
    if not sol.feasible:
        out["violations_usd"] = sol.violations
    out.update(plan.extra)
    return out


def dilution_json(plan: Plan) -> dict[str, Any]:
    """Shares the plan and the keep-mining status quo each issue, beside the shares the
    existing notes deliver in both.

    ``dilution_share`` (kept for compatibility) is every share that is not outstanding today
    over the diluted shares with the plan: it counts the notes' conversion, which happens
    with or without the plan. ``new_share_dilution`` is the new money's shares alone over
    the diluted shares of that plan."""
    out0 = plan.portfolio.spec.company.shares_outstanding
    notes = plan.flows.stack_shares
    out: dict[str, Any] = {"note_conversion_shares": notes}
    for key, view in (("plan", plan.company), ("keep_mining", plan.status_quo)):
        shares = view.per_share.shares
        out[f"{key}_new_shares"] = view.new_shares
        out[f"{key}_new_share_dilution"] = view.new_shares / shares
        out[f"{key}_all_dilution_share"] = 1.0 - out0 / shares
    out["dilution_share"] = out["plan_all_dilution_share"]
    return out


def options_json(opts: Options) -> list[dict[str, Any]]:
    """Every option: NPV, value of converting, capex by year, funding need (peak and month
    by month, from its own cash flow)."""
    cap = opts.capex_by_year()
    need = opts.funding_need()
    return [{"site": str(opts.site[i]), "strategy": str(opts.strategy[i]),
             "start_month": opts.start_month[i] or None, "allowed": bool(opts.allowed[i]),
             "npv_usd": float(opts.npv_usd[i]),
             "value_of_converting_usd": float(opts.value_of_converting_usd[i]),
             "capex_by_year_usd": {str(y): float(c) for y, c in cap.loc[i].items() if c},
             "peak_funding_usd": float(need[i].max()),
             "funding_need_by_month_usd": [float(x) for x in need[i]]}
            for i in range(len(opts))]


def _per_share_json(ps: PerShare) -> dict[str, float]:
    return {**{k: float(v) for k, v in ps.__dict__.items()},
            "share_value_usd": ps.share_value_usd}
