"""Choosing one option per site under the company's constraints.

The choice is a mixed-integer program solved exactly with ``scipy.optimize.milp`` (HiGHS):

    maximise    sum_o npv_o x_o - c f
    subject to  sum_{o at site s} x_o = 1                          for every site s
                sum_o capex_o[y] x_o <= budget[y]                  for every budgeted year y
                cash0 + fixed[:m] + sum_o cum_cash_o[m] x_o + G[m] f >= min_cash   every month m
                0 <= f <= max_new_funding,  x_o in {0, 1}

where ``f`` is the new money raised (at the plan's start), ``G[m]`` the cumulative cash per
dollar raised up to month m (net proceeds less coupons and repayment), ``c`` the value lost
per dollar raised, ``fixed`` the overhead and existing notes' flows, and ``cum_cash_o`` the
option's cumulative free cash flow (without terminal value). Shadow prices come from the
LP relaxation (``linprog``, HiGHS duals): d(objective) / d(limit), per USD.

The cash floor is added lazily: the MILP first sees only the months where reference plans
(the greedy one, the best NPV of every site, the least capex of every site) come closest to
the floor; every month of its plan is then checked and the worst month of each violated
stretch is added, until no month is violated. The restricted problem is a relaxation of the
full one, so a plan that is optimal for it and keeps every month is optimal for the full
problem (and its proven bound holds for the full problem too): exact, with a handful of
rows instead of 180. The shadow prices come from the LP relaxation of the full problem
(all months; 0.3 s at 50 sites), so the cash duals are those of the stated problem.

Each restricted problem is proven by OR-Tools CP-SAT when it is installed (a dependency
of finmodel): 3-5 s at 50 sites against HiGHS's 15-47 s. CP-SAT is given an
integer relaxation of the float problem and its plan is checked and valued in float, so
the proof holds for the float problem to :data:`MIP_GAP` (:mod:`finmodel.portfolio.cpsat`);
where it cannot say so, HiGHS solves the restricted problem instead.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from dataclasses import dataclass, field, replace

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

from finmodel.errors import SolverError
from finmodel.portfolio import cpsat
from finmodel.portfolio.company import CompanyFlows
from finmodel.portfolio.options import Options
from finmodel.portfolio.schema import Portfolio

#: A constraint is binding when the plan uses it to within this share of its limit, or
#: when $100M more room would raise the value (integer plans rarely fill a limit exactly).
AT_LIMIT = 1e-3
#: The solvers see money in millions of USD: HiGHS's tolerances are absolute, and rows in
#: USD (1e9) next to 0/1 variables gave different optima for the same problem.
UNIT = 1e6
#: Relative gap at which HiGHS stops: proven optimal to one part in a billion.
MIP_GAP = 1e-9
#: "auto": CP-SAT on the lazily restricted problem when OR-Tools is installed (HiGHS when
#: it is not, when CP-SAT cannot give a float-exact answer, and for the full formulation).
SOLVERS = ("auto", "highs", "cpsat")


@dataclass
class Problem:
    """The plan's linear program in matrix form (variables: options, then f)."""

    options: Options
    npv: np.ndarray
    site_rows: np.ndarray  # (sites, options) 0/1
    years: list[int]  # budgeted years
    capex: np.ndarray  # (years, options)
    budget: np.ndarray  # (years,)
    cum_cash: np.ndarray  # (months, options)
    cash_floor: np.ndarray  # (months,): min_cash - cash0 - cumulative fixed flows
    new_per_usd_cum: np.ndarray  # (months,)
    max_funding: float
    funding_cost: float
    min_cash: float
    keep: np.ndarray = field(default=None)  # undominated options (what the MILP sees)

    def __post_init__(self) -> None:
        if self.keep is None:
            self.keep = undominated(self)

    @property
    def n(self) -> int:
        return len(self.npv)

    def objective(self) -> np.ndarray:
        """Per variable, in UNIT: each option's NPV, then minus the cost per UNIT raised."""
        return np.r_[self.npv / UNIT, -self.funding_cost]

    def rows(self, *, budget=None, max_funding=None, min_cash=None, months=None):
        """(A_ub, b_ub) with every inequality as ``A x <= b``, (A_eq, b_eq), bounds; money
        in UNIT (f too). ``months``: the cash-floor rows kept (all by default)."""
        budget = self.budget if budget is None else budget
        max_funding = self.max_funding if max_funding is None else max_funding
        floor = self.cash_floor + ((self.min_cash if min_cash is None else min_cash)
                                   - self.min_cash)
        a_cap = np.c_[self.capex / UNIT, np.zeros(len(self.years))]
        a_cash = -np.c_[self.cum_cash / UNIT, self.new_per_usd_cum]
        b_cash = -floor / UNIT
        if months is not None:
            a_cash, b_cash = a_cash[months], b_cash[months]
        a_ub = np.r_[a_cap, a_cash]
        b_ub = np.r_[np.asarray(budget) / UNIT, b_cash]
        a_eq = np.c_[self.site_rows, np.zeros(self.site_rows.shape[0])]
        b_eq = np.ones(self.site_rows.shape[0])
        lo = np.zeros(self.n + 1)
        hi = np.r_[self.options.allowed.astype(float), max_funding / UNIT]
        return a_ub, b_ub, a_eq, b_eq, lo, hi


def build_problem(spec: Portfolio, options: Options, cf: CompanyFlows) -> Problem:
    sites = options.sites
    site_rows = np.array([[1.0 if s == name else 0.0 for s in options.site] for name in sites])
    budget = spec.constraints.capex_budget_usd_by_year
    years = sorted(int(y) for y in budget)
    by_year = options.capex_by_year()
    capex = np.array([by_year[y].to_numpy() if y in by_year else np.zeros(len(options))
                      for y in years]).reshape(len(years), len(options))
    c = spec.company
    floor = spec.constraints.min_cash_usd - c.cash_usd - np.cumsum(cf.fixed_usd)
    return Problem(options, options.npv_usd.copy(), site_rows, years, capex,
                   np.array([budget[str(y)] for y in years], dtype=float),
                   np.cumsum(options.cash_usd, axis=1).T, floor, np.cumsum(cf.new_per_usd),
                   spec.constraints.max_new_funding_usd, cf.new_cost_per_usd,
                   spec.constraints.min_cash_usd)


@dataclass
class Constraint:
    """One constraint of the plan. The headline is ``milp_gain_per_100m_usd``, the exact
    value of $100M more room (a re-solve of the MILP); ``shadow_price`` is the LP
    relaxation's dual, d value / d limit, which can be nonzero beside an integer plan that
    leaves room (the relaxation fills the limit with a fraction of a site). ``reading`` says
    which case a row is, in words."""

    name: str
    year: int | None
    limit_usd: float
    used_usd: float
    binding: bool  # the plan fills the limit, or $100M more room raises the value
    shadow_price: float  # d objective / d limit (LP relaxation), USD per USD
    milp_gain_per_100m_usd: float | None = None  # exact re-solve with the limit 100M looser
    month: str | None = None
    at_limit: bool = False  # the integer plan fills the limit (to AT_LIMIT)

    @property
    def reading(self) -> str:
        gain = self.milp_gain_per_100m_usd
        if self.at_limit:
            return "at the limit"
        if gain is not None and gain > 1.0:
            return "integer plan has room, but $100M more changes the plan"
        if np.isfinite(self.shadow_price) and abs(self.shadow_price) > 1e-6:
            return "LP relaxation binds; integer plan has slack" + (
                " and $100M more is worth nothing" if gain is not None else "")
        return "slack"

    def as_dict(self) -> dict:
        out = {k: (bool(v) if isinstance(v, np.bool_) else v) for k, v in self.__dict__.items()}
        return {**out, "reading": self.reading}


@dataclass
class Solution:
    """A solved plan: the chosen option of each site and the new money raised."""

    choice: np.ndarray  # option indices, one per site
    funding_usd: float
    objective_usd: float
    feasible: bool = True
    optimal: bool = True  # proven to MIP_GAP (False: the time limit stopped HiGHS)
    mip_gap: float = 0.0  # proven relative gap of the plan found
    solver: str = "highs"  # what proved it: "cpsat" (OR-Tools) or "highs" (scipy.optimize.milp)
    constraints: list[Constraint] = field(default_factory=list)
    violations: dict[str, float] = field(default_factory=dict)  # least-infeasible plan


def undominated(p: Problem) -> np.ndarray:
    """Options no other option of the same site beats on every count (NPV, capex in every
    budgeted year, cumulative cash in every month); of identical options the first. The
    MILP's optimum never needs the others, so leaving them out keeps it exact.

    Why exact: say option i of site s is left out because option j of s has
    ``npv[j] >= npv[i]``, ``capex[y, j] <= capex[y, i]`` in every budgeted year y and
    ``cum_cash[m, j] >= cum_cash[m, i]`` in every month m (to 1e-6 USD). Take any plan
    that chooses i, with new money f, and swap i for j, keeping f. Each capex row's left
    side falls or stays, each month's cash balance (cash0 + fixed flows + the sites'
    cumulative cash + G[m] f) rises or stays, f and its limit are untouched, so the new
    plan keeps every constraint the old one kept (of the full problem or of any subset of
    its rows, such as the lazily restricted cash floor), and its value changes by
    ``npv[j] - npv[i] >= 0``. "Beats" (better or equal on every count, and strictly better
    NPV or an earlier index) is a strict order, so following it from any option left out
    ends at a kept option: every plan, in particular an optimal one, has a plan of kept
    options at least as good. Tested against the MILP over every option
    (tests/test_portfolio.py)."""
    keep = p.options.allowed.copy()
    cash = p.cum_cash.T
    for site in p.options.sites:
        idx = np.flatnonzero(p.options.site == site)
        for i in idx:
            other = idx != i
            beats = (p.npv[idx] >= p.npv[i]) & np.all(p.capex[:, idx] <= p.capex[:, [i]], axis=0) \
                & np.all(cash[idx] >= cash[i] - 1e-6, axis=1) & other & keep[idx]
            strictly = beats & ((p.npv[idx] > p.npv[i]) | (idx < i))
            if strictly.any():
                keep[i] = False
    return keep


@dataclass
class _Got:
    choice: np.ndarray
    funding_usd: float
    objective_usd: float
    optimal: bool
    gap: float
    solver: str = "highs"


def _milp(p: Problem, *, time_limit: float, lazy: bool = True, solver: str = "auto",
          **limits) -> _Got | None:
    """The MILP, with the cash floor added lazily (``lazy``) or in full; None if no plan
    keeps the constraints. ``solver``: see :func:`solve`."""
    if not lazy:
        return _restricted(p, None, time_limit, presolve=False, solver="highs", **limits)[0]
    _, b_full, *_ = p.rows(**limits)
    b_cash = b_full[len(p.years):]
    months = start_months(p, b_cash)
    stop = time.perf_counter() + time_limit
    while True:
        got, x = _restricted(p, np.array(sorted(months)), max(stop - time.perf_counter(), 0.1),
                             presolve=True, solver=solver, **limits)
        if got is None:
            return None  # a relaxation of the full problem is infeasible: so is the full one
        short = -(p.cum_cash @ x[:p.n] / UNIT + p.new_per_usd_cum * x[p.n]) - b_cash  # f in UNIT
        new = worst_months(short) - months
        if not new:
            return got
        if not got.optimal or time.perf_counter() >= stop:
            return _repaired(p, got, time_limit, **limits)
        months |= new


def _repaired(p: Problem, got: _Got, time_limit: float, **limits) -> _Got:
    """Out of time with a plan that breaks a month left out: the same choice with the new
    money it needs to keep every month. Not proven optimal; its gap is against the
    restricted problem's bound, which bounds the full problem too."""
    q = p if not limits else _with_limits(p, **limits)
    f = new_money_needed(q, dict(enumerate(got.choice)))
    if not f <= q.max_funding * (1 + 1e-9):  # inf: no amount of new money will do
        raise SolverError(f"the plan's MILP found no plan keeping the cash floor within "
                          f"{time_limit:g} s")
    obj = float(p.npv[got.choice].sum() - p.funding_cost * f)
    bound = got.objective_usd + got.gap * abs(got.objective_usd)
    return _Got(got.choice, f, obj, False, (bound - obj) / max(abs(obj), 1.0), got.solver)


def _with_limits(p: Problem, *, budget=None, max_funding=None, min_cash=None) -> Problem:
    """The problem with other limits (as in :meth:`Problem.rows`)."""
    floor = p.cash_floor + ((p.min_cash if min_cash is None else min_cash) - p.min_cash)
    return replace(p, budget=p.budget if budget is None else np.asarray(budget),
                   max_funding=p.max_funding if max_funding is None else max_funding,
                   cash_floor=floor, min_cash=p.min_cash if min_cash is None else min_cash)


def start_months(p: Problem, b_cash: np.ndarray) -> set[int]:
    """The months where reference plans come closest to (or furthest below) the cash floor."""
    opts, months = p.options, set()
    total = opts.capex_usd.sum(axis=1)
    refs = [greedy(p).choice]
    for key in (p.npv, -total):
        pick = []
        for s in opts.sites:
            idx = np.flatnonzero((opts.site == s) & opts.allowed)
            pick.append(idx[np.argmax(key[idx])])
        refs.append(np.array(pick))
    g = np.where(p.new_per_usd_cum > 0, p.new_per_usd_cum, np.nan)
    for choice in refs:
        short = -p.cum_cash[:, choice].sum(axis=1) / UNIT - b_cash  # > 0: below the floor
        months.add(int(np.argmax(short)))
        if np.isfinite(g).any():  # the month that sets the new money needed
            months.add(int(np.nanargmax(short / g)))
    return months


def worst_months(short: np.ndarray, tol: float = 1e-6) -> set[int]:
    """The worst month of each stretch of months below the floor (``short`` > tol, UNIT)."""
    out, m = set(), 0
    below = short > tol
    while m < len(short):
        if below[m]:
            end = m
            while end + 1 < len(short) and below[end + 1]:
                end += 1
            out.add(m + int(np.argmax(short[m:end + 1])))
            m = end + 1
        else:
            m += 1
    return out


def _restricted(p: Problem, months: np.ndarray | None, time_limit: float, *,
                presolve: bool, solver: str = "auto",
                **limits) -> tuple[_Got | None, np.ndarray | None]:
    if months is not None and solver != "highs" and cpsat.available():
        got = cpsat.restricted(p, months, time_limit, MIP_GAP, **limits)
        if got is not cpsat.FALLBACK:
            return got
    a_ub, b_ub, a_eq, b_eq, lo, hi = p.rows(months=months, **limits)
    cols = np.r_[np.flatnonzero(p.keep), p.n]
    cons = [LinearConstraint(a_eq[:, cols], b_eq, b_eq)]
    if len(b_ub):
        cons.append(LinearConstraint(a_ub[:, cols], -np.inf, b_ub))
    integrality = np.r_[np.ones(len(cols) - 1), 0]
    # HiGHS's presolve spends most of its time on 180 dense cash rows (9 s of the first
    # 10 at 50 sites) and finds nothing the dominance step has not; with a few rows it helps.
    with _quiet():
        res = milp(-p.objective()[cols], constraints=cons, integrality=integrality,
                   bounds=Bounds(lo[cols], hi[cols]),
                   options={"mip_rel_gap": MIP_GAP, "time_limit": time_limit,
                            "presolve": presolve})
    if res.status == 2:  # infeasible
        return None, None
    if res.x is None:
        raise SolverError(f"the plan's MILP found no plan within {time_limit:g} s: "
                          f"{res.message}")
    x = np.zeros(p.n + 1)
    x[cols] = res.x
    gap = float(res.mip_gap) if res.mip_gap is not None else 0.0
    return _Got(np.flatnonzero(x[:p.n] > 0.5), float(x[p.n]) * UNIT,
                float(-res.fun) * UNIT, res.status == 0, gap), x


@contextlib.contextmanager
def _quiet():
    """Silence what HiGHS prints on the process's stdout (a debug line when infeasible)."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def relaxation(p: Problem, **limits):
    """The LP relaxation (0 <= x <= 1): linprog's result, with HiGHS duals (d objective /
    d limit are unit-free; the objective ``-fun`` is in UNIT)."""
    a_ub, b_ub, a_eq, b_eq, lo, hi = p.rows(**limits)
    with _quiet():
        return linprog(-p.objective(), A_ub=a_ub if len(b_ub) else None,
                       b_ub=b_ub if len(b_ub) else None, A_eq=a_eq, b_eq=b_eq,
                       bounds=list(zip(lo, hi)), method="highs")


def solve(p: Problem, *, exact_gains: bool = True, time_limit: float = 60.0,
          lazy: bool = True, solver: str = "auto") -> Solution:
    """The optimal plan, its binding constraints and their shadow prices; if no plan
    satisfies the constraints, the least-infeasible plan (``feasible`` False).

    HiGHS stops at a proven relative gap of :data:`MIP_GAP` or after ``time_limit``
    seconds with the best plan found and its proven gap (``optimal`` False). The exact
    +$100M re-solves run only when the plan was proven optimal. ``lazy`` False gives the
    MILP every month of the cash floor at once (the reference the lazy scheme is tested
    against).

    ``solver``: "auto" proves the lazily restricted problem with OR-Tools CP-SAT when it is
    installed (a dependency of finmodel; :mod:`finmodel.portfolio.cpsat` says why and how it
    stays exact for the float problem), else with HiGHS; "highs" or "cpsat" force one.
    The LP relaxation and its duals are HiGHS's either way."""
    if solver not in SOLVERS:
        raise ValueError(f"solver: {solver!r} is not one of {', '.join(SOLVERS)}")
    if solver == "cpsat" and not cpsat.available():
        raise SolverError("solver 'cpsat' needs OR-Tools: pip install 'ortools>=9.12'")
    got = _milp(p, time_limit=time_limit, lazy=lazy, solver=solver)
    if got is None:
        return least_infeasible(p, time_limit)
    choice, f, obj = got.choice, got.funding_usd, got.objective_usd
    sol = Solution(choice, f, obj, optimal=got.optimal, mip_gap=got.gap, solver=got.solver)
    lp = relaxation(p)
    duals_ub = -lp.ineqlin.marginals if lp.status == 0 else np.full(len(p.budget) +
                                                                    len(p.cash_floor), np.nan)
    dual_f = -lp.upper.marginals[p.n] if lp.status == 0 else np.nan
    x = np.zeros(p.n)
    x[choice] = 1.0
    for k, year in enumerate(p.years):
        used = float(p.capex[k] @ x)
        full = bool(used >= p.budget[k] * (1 - AT_LIMIT) - 1.0)
        sol.constraints.append(Constraint("capex_budget", year, float(p.budget[k]), used, full,
                                          float(duals_ub[k]), at_limit=full))
    full = bool(p.max_funding > 0 and f >= p.max_funding * (1 - AT_LIMIT) - 1.0)
    sol.constraints.append(Constraint("new_funding", None, p.max_funding, f, full, float(dual_f),
                                      at_limit=full))
    balance = p.cum_cash @ x + p.new_per_usd_cum * f - p.cash_floor + p.min_cash
    m = int(np.argmin(balance))
    cash_duals = duals_ub[len(p.years):]
    full = bool(balance[m] <= p.min_cash + max(1.0, AT_LIMIT * abs(p.min_cash)))
    sol.constraints.append(Constraint(
        "min_cash", None, p.min_cash, float(balance[m]), full,
        -float(np.sum(cash_duals)), month=str(p.options.periods[m]), at_limit=full))
    if exact_gains and got.optimal:
        for con in sol.constraints:
            con.milp_gain_per_100m_usd = _gain(p, con, obj, time_limit, solver)
            if con.milp_gain_per_100m_usd is not None and con.milp_gain_per_100m_usd > 1.0:
                con.binding = True
    return sol


def _gain(p: Problem, con: Constraint, obj: float, time_limit: float,
          solver: str = "auto") -> float | None:
    """Objective gained by re-solving the MILP with the limit $100M looser."""
    step = 1e8
    if con.name == "capex_budget":
        budget = p.budget.copy()
        budget[p.years.index(con.year)] += step
        got = _milp(p, time_limit=time_limit, solver=solver, budget=budget)
    elif con.name == "new_funding":
        got = _milp(p, time_limit=time_limit, solver=solver, max_funding=p.max_funding + step)
    else:
        if p.min_cash < step:
            return None
        got = _milp(p, time_limit=time_limit, solver=solver, min_cash=p.min_cash - step)
    return None if got is None or not got.optimal else got.objective_usd - obj


def least_infeasible(p: Problem, time_limit: float = 60.0) -> Solution:
    """The plan that breaks the constraints by the fewest dollars: elastic slack on every
    budgeted year, on the funding limit and on the cash floor, their sum minimised, ties
    broken by NPV."""
    a_ub, b_ub, a_eq, b_eq, lo, hi = p.rows()
    ny, nm = len(p.years), len(p.cash_floor)
    # variables: x (n), f, slack per budgeted year (ny), cash slack, funding slack
    slack = np.zeros((ny + nm, ny + 2))
    slack[:ny, :ny] = -np.eye(ny)
    slack[ny:, ny] = -1.0
    a_ub = np.c_[a_ub, slack]
    a_f = np.r_[np.zeros(p.n), 1.0, np.zeros(ny + 1), -1.0]  # f <= max_funding + s_f
    a_ub = np.r_[a_ub, a_f[None, :]]
    b_ub = np.r_[b_ub, p.max_funding / UNIT]
    a_eq = np.c_[a_eq, np.zeros((a_eq.shape[0], ny + 2))]
    scale = max(1.0, float(np.abs(p.npv).sum()) / UNIT)
    c = np.r_[-p.npv / UNIT / scale * 1e-6, p.funding_cost / scale * 1e-6, np.ones(ny + 2)]
    with _quiet():
        res = milp(c, constraints=[LinearConstraint(a_eq, b_eq, b_eq),
                                   LinearConstraint(a_ub, -np.inf, b_ub)],
                   integrality=np.r_[np.ones(p.n), np.zeros(ny + 3)],
                   bounds=Bounds(np.zeros(p.n + ny + 3),
                                 np.r_[p.options.allowed.astype(float),
                                       np.full(ny + 3, np.inf)]),
                   options={"time_limit": time_limit})
    if res.x is None:
        raise SolverError(f"the least-infeasible plan did not solve ({res.message})")
    x = np.r_[res.x[:p.n], res.x[p.n:] * UNIT]
    choice = np.flatnonzero(x[:p.n] > 0.5)
    viol = {f"capex_budget {y}": float(x[p.n + 1 + k]) for k, y in enumerate(p.years)
            if x[p.n + 1 + k] > 1.0}
    if x[p.n + 1 + ny] > 1.0:
        viol["min_cash"] = float(x[p.n + 1 + ny])
    if x[-1] > 1.0:
        viol["new_funding"] = float(x[-1])
    obj = float(p.npv[choice].sum() - p.funding_cost * x[p.n])
    return Solution(choice, float(x[p.n]), obj, feasible=False, violations=viol)


def greedy(p: Problem) -> Solution:
    """Rank options by NPV gained per extra dollar of capex and take them in that order
    while every budgeted year holds and the new money needed stays within the limit (or,
    when the starting plan already needs more, does not grow). Each site starts at its
    allowed option with the least capex (keep mining, where allowed)."""
    opts = p.options
    total_capex = opts.capex_usd.sum(axis=1)
    choice: dict[str, int] = {}
    for i, s in enumerate(opts.site):  # the allowed option with the least capex, best NPV
        if opts.allowed[i] and (s not in choice or (total_capex[i], -p.npv[i]) <
                                (total_capex[choice[s]], -p.npv[choice[s]])):
            choice[s] = i
    gain = np.array([p.npv[i] - p.npv[choice[s]] for i, s in enumerate(opts.site)])
    extra = total_capex - np.array([total_capex[choice[s]] for s in opts.site])
    ratio = np.where(extra > 0, gain / np.maximum(extra, 1.0), -np.inf)
    need = new_money_needed(p, choice)
    upgraded: set[str] = set()
    for i in np.argsort(-ratio, kind="stable"):
        s = opts.site[i]
        if not opts.allowed[i] or not np.isfinite(ratio[i]) or gain[i] <= 0 or s in upgraded:
            continue
        trial = {**choice, s: int(i)}
        if not _within_budget(p, trial):
            continue
        trial_need = new_money_needed(p, trial)
        if trial_need <= max(p.max_funding, need) * (1 + 1e-9):
            choice, need = trial, trial_need
            upgraded.add(s)
    idx = np.array(sorted(choice.values()))
    feasible = bool(np.isfinite(need) and need <= p.max_funding * (1 + 1e-9))
    f = need if feasible else 0.0
    return Solution(idx, f, float(p.npv[idx].sum() - p.funding_cost * f), feasible=feasible)


def _within_budget(p: Problem, choice: dict) -> bool:
    x = np.zeros(p.n)
    x[list(choice.values())] = 1.0
    return bool(np.all(p.capex @ x <= p.budget + 1e-6 * np.maximum(p.budget, 1.0)))


def new_money_needed(p: Problem, choice: dict) -> float:
    """The least new money that keeps the plan's cash floor in every month (inf if no
    amount will do). A month whose cumulative cash per dollar raised G is positive needs at
    least short / G; one where G is negative (coupons and the repayment have passed the
    proceeds) allows at most short / G, since more money makes that month worse; one where
    G is zero must keep the floor on its own."""
    x = np.zeros(p.n)
    x[list(choice.values())] = 1.0
    short = p.cash_floor - p.cum_cash @ x  # what G f must cover, month by month
    g = p.new_per_usd_cum
    up = g > 0
    need = max(0.0, float(np.max(short[up] / g[up], initial=0.0)))
    if np.any(short - g * need > 1.0):  # a month with G <= 0 still short ($1: the solvers'
        return float("inf")             # row tolerance)
    return need
