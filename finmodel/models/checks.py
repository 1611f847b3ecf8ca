"""The model's checks: one value per check that must stay within a tolerance.

Each check is three scalars on the Checks sheet, written once and rendered both ways like
every other line: ``checks.<id>.value`` (how far the model is from the rule; 0 when it
holds), ``checks.<id>.tolerance`` and ``checks.<id>.ok`` (1 when value <= tolerance).
``checks.all_ok`` is the master flag (workbook defined name ``checks_ok``).

One check cannot be a model expression: whether the values solved in Python (break-evens,
the start-month table, the lattice) are current. In Python they are solved from this
run's inputs, so its value is 0 by definition; the workbook compares the Inputs sheet
with a hidden snapshot of it taken at export (see ``finmodel.excel.checks``).
"""

from __future__ import annotations

from dataclasses import dataclass

from finmodel.conventions import MONTHS_PER_YEAR
from finmodel.engine.expr import (
    Const,
    Expr,
    Func,
    PathInput,
    eq,
    floor,
    maximum,
    ne,
    row_max,
    row_min,
    sum_of,
    where,
    wrap,
)
from finmodel.engine.graph import Model, Scalar
from finmodel.inputs.load import LIVE_CHOICES, input_fields
from finmodel.inputs.schema import Assumptions
from finmodel.models.common import chosen, inp

SHEET = "Checks"
#: The check whose value the workbook computes from its hidden snapshot of the inputs.
SOLVED_CURRENT = "solved_current"
EXACT = 1e-9  # what must hold up to rounding (shares, MW, money relative to its size)
CENT = 0.01  # money in USD: a balance topped up to the minimum is exact to rounding


@dataclass(frozen=True)
class Check:
    """One check: its id, what it means, and its three scalars."""

    id: str
    label: str
    value: Scalar
    tolerance: Scalar
    ok: Scalar


def _abs(e: Expr) -> Expr:
    return maximum(e, -e)


def add_checks(m: Model, a: Assumptions) -> list[Check]:
    """Add every check that applies to the case, and the master flag."""
    out: list[Check] = []

    def check(cid: str, label: str, value, unit: str, tolerance: float) -> None:
        v = m.scalar(f"checks.{cid}.value", value, label, unit, SHEET)
        tol = m.scalar(f"checks.{cid}.tolerance", Const(tolerance), "Tolerance", unit, SHEET)
        ok = m.scalar(f"checks.{cid}.ok", where(v <= tol, 1, 0), "Flag (1 = OK)", "flag",
                      SHEET)
        out.append(Check(cid, label, v, tol, ok))

    strategies = [s for s, spec in a.strategies.items() if spec.kind != "mining"]
    for s in a.strategies:
        _interconnect(m, a, s, check)
        balance = m.nodes.get(f"{s}.cash.balance_usd")
        if balance is not None:
            check(f"{s}.minimum_cash", f"{s}: cash never below the minimum "
                  "(financing.minimum_cash_usd; worst shortfall). Equity funds every "
                  "deficit, so this goes red only when financing.equity_commitment_usd "
                  "caps the funding", maximum(inp("financing.minimum_cash_usd")
                                              - row_min(balance), 0), "USD", CENT)
    if a.hosting is not None:
        shares = sum_of([PathInput("hosting_phase_it_shares", wrap(k))
                         for k in range(1, len(a.hosting.phase_it_shares) + 1)])
        check("phase_shares", "Phase shares of the converted MW sum to 1 (|sum - 1|)",
              _abs(shares - 1), "share", EXACT)
    for s in strategies:
        start = m.nodes[f"{s}.hosting.conversion_start_index"]
        check(f"{s}.starts_after_model_start", f"{s}: conversion starts on or after the "
              "model start (months before it)", maximum(-wrap(start), 0), "months", 0.0)
        if a.hosting.rent_start_month is not None and a.strategies[s].product == "lease":
            first = m.nodes[f"{s}.hosting.commencement_index"]
            rent = Func("months_between", (inp("case.start_month"),
                                           inp("hosting.rent_start_month")))
            check(f"{s}.delivers_before_lease", f"{s}: the conversion delivers its first "
                  "phase by the lease's rent start (months late)",
                  maximum(wrap(first) - rent, 0), "months", 0.0)
        uses = m.nodes.get(f"{s}.sources_uses.uses_usd")
        if uses is not None:
            parts = [m.nodes[n] for n in (f"{s}.sources_uses.{k}" for k in (
                "prepayment_usd", "debt_usd", "convertible_usd", "equity_usd"))
                if n in m.nodes]
            check(f"{s}.sources_uses", f"{s}: sources equal uses (|uses - sources| / uses)",
                  _abs(wrap(uses) - sum_of(parts)) / maximum(_abs(wrap(uses)), 1), "ratio",
                  EXACT)
        if f"{s}.debt.balance_usd" in m.nodes:
            _debt(m, a, s, check)
    for section, expr in _bounds_by_section(a).items():
        check(f"bounds.{section}", f"Inputs of [{section}] outside their bounds (count)",
              expr, "count", 0.0)
    check(SOLVED_CURRENT, "Inputs changed since the values solved in Python (count): "
          "re-run finmodel to refresh them", Const(0.0), "count", 0.0)
    flags = sum_of([c.ok for c in out])
    m.scalar("checks.all_ok", where(eq(flags, len(out)), 1, 0), "All checks pass (1 = yes)",
             "flag", SHEET)
    return out


def _interconnect(m: Model, a: Assumptions, s: str, check) -> None:
    """The grid capacity a strategy's loads hold, month by month, within the interconnect."""
    load: Expr = m.nodes[f"{s}.mining_it_mw"] * inp("power.pue")
    ready = m.nodes.get(f"{s}.hosting.ready_mw")
    if ready is not None:
        load = load + ready * inp("hosting.pue")
    draw = m.line(f"{s}.grid_capacity_mw", load, "Grid capacity held (IT MW x PUE, mining "
                  "and AI)", "MW", "Power", agg="none", section=f"{s}: interconnect")
    check(f"{s}.interconnect", f"{s}: grid capacity never above the interconnect (MW over, "
          "worst month)", maximum(row_max(draw) - inp("site.interconnect_mw"), 0), "MW",
          EXACT)


def _debt(m: Model, a: Assumptions, s: str, check) -> None:
    balance, since = m.nodes[f"{s}.debt.balance_usd"], m.nodes[f"{s}.debt.months_since_draw"]
    left = m.line(f"{s}.debt.balance_after_maturity_usd",
                  where(since >= inp("financing.debt.tenor_years") * MONTHS_PER_YEAR,
                        _abs(balance), 0),
                  "Balance left from maturity on (check)", "USD", "Financing", agg="none",
                  section=f"{s}: project debt")
    amount = m.nodes[f"{s}.debt.amount_usd"]
    check(f"{s}.debt_repaid", f"{s}: project debt repaid by maturity (largest balance "
          "left / loan)", row_max(left) / maximum(amount, 1), "ratio", EXACT)
    service = m.nodes[f"{s}.debt.scheduled_service_usd"]
    dscr = m.nodes[f"{s}.debt.min_dscr"]
    check(f"{s}.dscr_covenant", f"{s}: minimum DSCR at or above the covenant "
          "(financing.debt.target_dscr; shortfall)",
          where(row_max(service) > 0, maximum(inp("financing.debt.target_dscr") - dscr, 0),
                0), "ratio", 1e-6)


_OPS = {">": lambda x, k: x <= k, ">=": lambda x, k: x < k, "<": lambda x, k: x >= k,
        "<=": lambda x, k: x > k}


def _bounds_by_section(a: Assumptions) -> dict[str, Expr]:
    """Per case section, the number of inputs outside the schema's bounds."""
    terms: dict[str, list[Expr]] = {}
    for f in input_fields(a):
        if isinstance(f.value, list):
            cells = [PathInput(f.defined_name, wrap(k)) for k in range(1, len(f.value) + 1)]
            bounds = f.bounds or ((">", 0.0),)  # a path's values are positive
        elif isinstance(f.value, (int, float)) and f.bounds:
            cells, bounds = [inp(f.path)], f.bounds
        elif f.choices is not None and f.path in LIVE_CHOICES:  # a word not on the list
            known = sum_of([chosen(f.path, c) for c in f.choices])
            terms.setdefault(f.section.split(".")[0], []).append(where(known > 0, 0, 1))
            continue
        else:
            continue
        for x in cells:
            bad: Expr | None = None
            for sym, limit in bounds:
                cond = _OPS[sym](x, limit)
                bad = cond if bad is None else bad | cond
            # A whole-number test as an IF of its own: the workbook can put it on a
            # helper row when a long input name makes the formula too long.
            flag = where(bad, 1, where(ne(x, floor(x)), 1, 0) if f.integer else 0)
            terms.setdefault(f.section.split(".")[0], []).append(flag)
    return {k: sum_of(v) for k, v in terms.items()}


__all__ = ["Check", "SOLVED_CURRENT", "add_checks"]
