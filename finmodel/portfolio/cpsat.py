"""The plan's integer program on OR-Tools CP-SAT, with a proof that holds for the float problem.

CP-SAT proves the 50-site benchmark's optimum (1,251 options, 4 capex rows, the lazy cash
rows) in 3-6 s on one thread where HiGHS's branch and bound takes 16-47 s
(benchmarks/README.md, portfolio section). CP-SAT works in integers, so the problem it is
given is a *relaxation* of the float one, built so that every plan the float problem
allows is allowed, with an objective at least as high:

- capex rows in cents, each coefficient rounded down and each budget up (plus one cent
  against float error in the divisions);
- the new money f as an integer F = ceil(f / v) in units v; each cash row divided by its
  G[m] (the cash per dollar raised) so that F keeps the exact coefficient 1 and only the
  options' coefficients are rounded, toward keeping the row (up when G[m] > 0; when
  G[m] < 0 the row bounds F from above, and the rounding of F is allowed for too);
- the objective in units w = c v (c the cost per dollar raised), so that F's cost is
  exactly -1 a unit; NPVs rounded up.

For every float plan (x, f) then ``value(x, f) <= w * int_objective(x, F) + c v``, so
``w * bound + c v`` (CP-SAT's proven bound) bounds the float optimum from above. The plan
CP-SAT returns is checked in float — capex rows, the new money it needs for the cash rows
given, the funding limit — and valued in float; it is called optimal only when that value
is within :data:`~finmodel.portfolio.optimise.MIP_GAP` of the float upper bound, the same
standard as HiGHS. The rounding costs cents (a few dollars in 23 billion at 50 sites), so
this holds whenever CP-SAT itself proves its optimum (else it is tried once more in units
1,000x finer). When it cannot be used — coefficients too large for 64-bit integers, a plan
that the rounding let through but the float rows refuse, no plan found in the time, a gap
the finer units leave open — :func:`restricted` returns ``FALLBACK`` and the caller uses
HiGHS.
"""

from __future__ import annotations

import math
import time

import numpy as np

#: CP-SAT's coefficients (and the activity of each row) must stay well inside int64.
MAX_COEF = 1e13
#: The largest NPV's coefficient in the objective (the unit w follows from it): fine
#: enough that rounding costs cents, coarse enough for CP-SAT's LP.
OBJ_COEF = 1e10
#: The unit of capex rows, USD.
CAPEX_UNIT = 0.01
#: One thread: deterministic for a given seed, and two threads measured slower on the
#: shared 2-core machine (9.8 s against 4.4 s at 50 sites).
WORKERS = 1

#: CP-SAT's random seed (its time to proof varies with it: 3-7 s at 50 sites).
SEED = 0
#: CP-SAT's cut generation off: on the 50-site benchmark it costs more than it saves
#: (3.1-4.6 s over six seeds without, 3.9-9.0 s with, same load).
PARAMS: dict = {"cut_level": 0}

#: What :func:`restricted` returns when CP-SAT cannot answer for the float problem.
FALLBACK = object()


def available() -> bool:
    """Whether OR-Tools is installed (a dependency; HiGHS proves the plan without it)."""
    try:
        import ortools.sat.python.cp_model  # noqa: F401
    except ImportError:
        return False
    return True


def restricted(p, months: np.ndarray, time_limit: float, gap: float, *, budget=None,
               max_funding=None, min_cash=None):
    """The plan over the kept options with the capex rows and the cash rows of ``months``.

    Returns ``(got, x)`` as ``optimise._restricted`` does (``(None, None)`` when no plan
    keeps the rows), or :data:`FALLBACK` when CP-SAT cannot give a float-exact answer.
    A proof that the rounding leaves short of ``gap`` (possible when the plan's value is
    small beside the sites' NPVs) is tried once more in units a thousand times finer."""
    budget = p.budget if budget is None else np.asarray(budget, dtype=float)
    max_funding = p.max_funding if max_funding is None else max_funding
    floor = p.cash_floor + ((p.min_cash if min_cash is None else min_cash) - p.min_cash)
    stop = time.perf_counter() + time_limit
    for coef in (OBJ_COEF, OBJ_COEF * 1e3):
        out = _attempt(p, np.asarray(months, dtype=int), max(stop - time.perf_counter(), 0.1),
                       gap, budget, max_funding, floor, coef)
        if out is FALLBACK:
            return FALLBACK
        got, x, proven = out
        if got is None or got.optimal or not proven:
            return got, x  # no plan; proven to the gap; or out of time (its gap stated)
        # CP-SAT proved its integer optimum but the rounding leaves the float gap open
    return FALLBACK


def _attempt(p, months, time_limit, gap, budget, max_funding, floor, coef):
    """One CP-SAT solve with the largest NPV's objective coefficient about ``coef``:
    FALLBACK, or (got, x, proven) where ``proven`` says CP-SAT proved its optimum (so a
    finer unit may close the float gap); (None, None, True) when no plan keeps the rows."""
    from ortools.sat.python import cp_model

    from finmodel.portfolio.optimise import UNIT, _Got

    cols = np.flatnonzero(p.keep)
    site = p.options.site[cols]
    c = float(p.funding_cost)
    npv = p.npv[cols]
    big = max(float(np.abs(npv).max(initial=0.0)), 1.0)
    if c > 0:  # F's cost is exactly one unit of the objective: w = c v
        v = max(0.01, big / (c * coef))
        w = c * v
    else:
        w, v = max(0.01, big / coef), 0.01
    if big / w > MAX_COEF or max_funding / v > MAX_COEF * 100:
        return FALLBACK

    m = cp_model.CpModel()
    xs = [m.new_bool_var(f"x{i}") for i in cols]
    for s in p.options.sites:
        m.add_exactly_one([xs[k] for k in np.flatnonzero(site == s)])
    f = m.new_int_var(0, int(math.ceil(max_funding / v)) if max_funding > 0 else 0, "f")

    def row(coef: np.ndarray, up: bool):
        """The nonzero coefficients as ints, rounded up (``up``) or down; None if too big."""
        if not np.all(np.isfinite(coef)) or np.abs(coef).max(initial=0.0) > MAX_COEF:
            return None
        r = np.ceil(coef) if up else np.floor(coef)
        nz = np.flatnonzero(r)
        return cp_model.LinearExpr.weighted_sum([xs[k] for k in nz], [int(r[k]) for k in nz])

    # The margins of one unit cover float error in the divisions.
    for k in range(len(p.years)):  # capex: coefficients down, the budget up
        lhs = row(p.capex[k, cols] / CAPEX_UNIT, up=False)
        if lhs is None or budget[k] / CAPEX_UNIT > MAX_COEF:
            return FALLBACK
        m.add(lhs <= int(math.ceil(budget[k] / CAPEX_UNIT)) + 1)
    for mo in months:
        g, fl, cum = float(p.new_per_usd_cum[mo]), float(floor[mo]), p.cum_cash[mo, cols]
        if g == 0.0:  # new money does not reach this month: the row in cents, no F
            lhs = row(cum / 0.01, up=True)
            if lhs is None or abs(fl) / 0.01 > MAX_COEF:
                return FALLBACK
            m.add(lhs >= int(math.floor(fl / 0.01)) - 1)
            continue
        scale = abs(g) * v  # the row in units of F
        lhs = row(cum / scale, up=True)
        if lhs is None or abs(fl) / scale > MAX_COEF:
            return FALLBACK
        if g > 0:  # F + sum(cum/(g v)) x >= floor/(g v)
            m.add(f + lhs >= int(math.floor(fl / scale)) - 1)
        else:  # F <= sum(cum/(|g| v)) x - floor/(|g| v), +1 for F's rounding up
            m.add(f <= lhs - int(math.floor(fl / scale)) + 2)
    obj = np.ceil(npv / w)
    m.maximize(cp_model.LinearExpr.weighted_sum(xs, [int(o) for o in obj])
               - (f if c > 0 else 0))

    solver = cp_model.CpSolver()
    solver.parameters.num_workers = WORKERS
    solver.parameters.random_seed = SEED
    for k, val in PARAMS.items():
        setattr(solver.parameters, k, val)
    solver.parameters.max_time_in_seconds = max(float(time_limit), 0.1)
    solver.parameters.relative_gap_limit = gap / 10  # the float check below decides
    status = solver.solve(m)
    if status == cp_model.INFEASIBLE:
        return None, None, True  # a relaxation of the float problem has no plan: nor has it
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return FALLBACK  # no plan within the time (HiGHS reports that in its own words)

    chosen = cols[[k for k, xv in enumerate(xs) if solver.boolean_value(xv)]]
    x = np.zeros(p.n + 1)
    x[chosen] = 1.0
    # The float problem's own check and value: capex rows to $1 (HiGHS's row tolerance is
    # $0.1 in its units of 1e6), the least new money keeping the given months.
    if np.any(p.capex[:, chosen].sum(axis=1) > budget + 1.0):
        return FALLBACK
    short = floor[months] - p.cum_cash[np.ix_(months, chosen)].sum(axis=1)
    g = p.new_per_usd_cum[months]
    up = g > 0
    need = max(float(np.max(short[up] / g[up], initial=0.0)), 0.0)
    if np.any(short - g * need > 1.0) or need > max_funding * (1 + 1e-9) + 1.0:
        return FALLBACK  # no new money keeps the rows (one with G <= 0 is short)
    x[p.n] = need / UNIT
    value = float(p.npv[chosen].sum() - c * need)
    # Every float plan's value is at most w * (its integer objective) + c v; the NPVs were
    # rounded up, so the bound is tightened by each site's least rounding, and loosened by
    # one unit against float error in npv / w.
    least = sum(float(np.min(obj[site == s] * w - npv[site == s])) for s in p.options.sites)
    upper = solver.best_objective_bound * w + c * v - least + w
    rel = max((upper - value) / max(abs(value), 1.0), 0.0)
    got = _Got(np.sort(chosen), float(need), value, bool(rel <= gap), rel, "cpsat")
    return got, x, status == cp_model.OPTIMAL
