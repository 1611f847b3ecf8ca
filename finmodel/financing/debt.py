"""Project debt on a converting strategy's cash flows, drawn at commencement.

DSCR sizing (sculpted repayment): in each repayment month the target debt service is
``max(CFADS, 0) / target DSCR``; the loan is the present value of that service at the
loan's monthly rate on the drawdown date, capped at ``max_loan_to_cost x conversion
capex`` (a capped loan scales the service down, so the DSCR is then above target).
Because the loan is exactly the present value of its service, the balance rolls forward
to zero at maturity. A stated amount repays as an annuity or in straight instalments.

Balance: ``B_t = B_{t-1} + draw_t - principal_t``, ``interest_t = B_{t-1} x monthly rate``,
``principal_t = min(B_{t-1}, scheduled principal + sweep)`` where an optional cash sweep
prepays with a share of the hall's cash left after scheduled service — a recursive line,
stepped through time. The DSCR is measured on scheduled service.
"""

from __future__ import annotations

from dataclasses import dataclass

from finmodel.conventions import MONTHS_PER_YEAR
from finmodel.engine.expr import (
    Expr,
    eq,
    lag,
    maximum,
    minimum,
    npv,
    row_min,
    time,
    total,
    where,
    wrap,
)
from finmodel.engine.graph import Line, Model, Scalar
from finmodel.inputs.schema import Assumptions
from finmodel.models.common import chosen, inp

SHEET = "Financing"


@dataclass(frozen=True)
class Debt:
    amount: Scalar
    interest: Line
    cash_to_equity: Line
    dscr: Line


def build_debt(m: Model, a: Assumptions, strategy: str, cfads: Line, draw_index: Scalar,
               capex_usd: Expr) -> Debt:
    """A term loan for ``strategy``, drawn in month ``draw_index``; ``capex_usd`` is the
    conversion capex it may finance (positive)."""
    d, p, sec = a.financing.debt, f"{strategy}.debt", f"{strategy}: project debt"
    rate = m.scalar(f"{p}.monthly_rate",
                    (1 + inp("financing.debt.rate")) ** (wrap(1) / MONTHS_PER_YEAR) - 1,
                    "Loan rate, monthly", "rate", SHEET)
    tenor = inp("financing.debt.tenor_years") * MONTHS_PER_YEAR
    k = m.line(f"{p}.months_since_draw", time("index") - draw_index, "Months since drawdown",
               "months", SHEET, agg="none", section=sec)
    repaying = m.line(f"{p}.repaying", where((k >= 1) & (k <= tenor), 1, 0),
                      "Repayment month", "flag", SHEET, section=sec)
    if d.sizing == "dscr":
        target = m.line(f"{p}.target_service_usd",
                        repaying * maximum(cfads, 0) / inp("financing.debt.target_dscr"),
                        "Debt service at the target DSCR", "USD", SHEET, section=sec)
        sized = m.scalar(f"{p}.dscr_sized_usd",
                         npv(rate, target) * (1 + rate) ** (draw_index + 1),
                         "Loan the target DSCR supports", "USD", SHEET)
        amount = m.scalar(f"{p}.amount_usd",
                          minimum(sized, inp("financing.debt.max_loan_to_cost_share")
                                  * capex_usd),
                          "Loan amount", "USD", SHEET)
        service_expr: Expr = target * where(sized > 0, amount / sized, 0)
    else:
        amount = m.scalar(f"{p}.amount_usd", inp("financing.debt.amount_usd"), "Loan amount",
                          "USD", SHEET)
        service_expr = None  # the annuity, or a fixed principal with interest (live choice)
    draw = m.line(f"{p}.draw_usd", where(eq(k, 0), amount, 0), "Loan drawn", "USD", SHEET,
                  section=sec)
    balance = m.recursive_line(f"{p}.balance_usd", "Loan balance, end of month", "USD",
                               SHEET, section=sec)
    opening = lag(balance, 1, 0)
    interest = m.line(f"{p}.interest_usd", opening * rate, "Interest", "USD", SHEET,
                      section=sec)
    if service_expr is None:  # 'annuity': level service; 'straight': level principal
        service = m.line(f"{p}.scheduled_service_usd",
                         where(chosen("financing.debt.amortisation", "annuity"),
                               repaying * amount * rate / (1 - (1 + rate) ** -tenor),
                               repaying * amount / tenor + interest),
                         "Scheduled debt service", "USD", SHEET, section=sec)
        scheduled_principal: Expr = service - interest
    else:
        service = m.line(f"{p}.scheduled_service_usd", service_expr,
                         "Scheduled debt service", "USD", SHEET, section=sec)
        scheduled_principal = service - interest
    # What is left of the hall's cash after scheduled service can be swept to prepay; the
    # loan never repays more than is outstanding.
    sweep = inp("financing.debt.cash_sweep_share") * maximum(cfads - service, 0) * repaying
    principal = m.line(f"{p}.principal_usd",
                       minimum(opening, scheduled_principal + sweep),
                       "Principal repaid (scheduled and swept)", "USD", SHEET, section=sec)
    paid = m.line(f"{p}.service_usd", interest + principal, "Debt service paid", "USD",
                  SHEET, section=sec)
    m.define(balance, opening + draw - principal)
    dscr = m.line(f"{p}.dscr", where(service > 0, cfads / service, 0),
                  "DSCR (on scheduled service)", "ratio", SHEET, agg="none", section=sec)
    first = m.line(f"{p}.first_service_usd", where(eq(k, 1), service, 0),
                   "First month's debt service", "USD", SHEET, agg="none", section=sec)
    reserve = inp("financing.debt.dsra_months") * total(first)
    fees = m.line(f"{p}.fees_and_reserve_usd",
                  where(eq(k, 0), -inp("financing.debt.upfront_fee_share") * amount - reserve,
                        0) + where(eq(k, tenor), reserve, 0),
                  "Upfront fee; reserve funded (-) and released (+)", "USD", SHEET,
                  section=sec)
    to_equity = m.line(f"{p}.cash_to_equity_usd", draw - paid + fees,
                       "Debt cash flow to equity", "USD", SHEET, section=sec)
    dscr_floor = m.line(f"{p}.dscr_in_service", where(service > 0, dscr, 1e9),
                        "DSCR where debt is serviced", "ratio", SHEET, agg="none", section=sec)
    m.scalar(f"{p}.min_dscr", where(total(service) > 0, row_min(dscr_floor), 0),
             "Minimum DSCR", "ratio", "Summary", metric="min_dscr", strategy=strategy)
    m.scalar(f"{p}.amount_metric", amount, "Project debt raised", "USD", "Summary",
             metric="debt_usd", strategy=strategy)
    return Debt(amount, interest, to_equity, dscr)
