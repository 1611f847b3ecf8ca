"""Project debt on a converting strategy's cash flows, drawn at commencement.

DSCR sizing (sculpted repayment): in each repayment month the target debt service is
``max(CFADS, 0) / target DSCR``; the loan is the present value of that service at the
loan's monthly rate on the drawdown date, capped at ``max_loan_to_cost x conversion
capex`` (a capped loan scales the service down, so the DSCR is then above target).
Because the loan is exactly the present value of its service, the balance rolls forward
to zero at maturity. A stated amount repays as an annuity or in straight instalments.

Balance: ``B_t = B_{t-1} + draw_t - (service_t - interest_t)``,
``interest_t = B_{t-1} x monthly rate`` — a recursive line, stepped through time.
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
)
from finmodel.engine.graph import Line, Model, Scalar
from finmodel.inputs.schema import Assumptions
from finmodel.models.common import inp

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
                    (1 + inp("financing.debt.rate")) ** (1 / MONTHS_PER_YEAR) - 1,
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
        if d.amortisation == "annuity":
            service_expr = repaying * amount * rate / (1 - (1 + rate) ** -tenor)
        else:
            service_expr = None  # straight: principal fixed, interest on the balance
    draw = m.line(f"{p}.draw_usd", where(eq(k, 0), amount, 0), "Loan drawn", "USD", SHEET,
                  section=sec)
    balance = m.recursive_line(f"{p}.balance_usd", "Loan balance, end of month", "USD",
                               SHEET, section=sec)
    interest = m.line(f"{p}.interest_usd", lag(balance, 1, 0) * rate, "Interest", "USD",
                      SHEET, section=sec)
    if service_expr is None:
        principal = m.line(f"{p}.principal_usd", repaying * amount / tenor,
                           "Principal repaid", "USD", SHEET, section=sec)
        service = m.line(f"{p}.service_usd", principal + interest, "Debt service", "USD",
                         SHEET, section=sec)
    else:
        service = m.line(f"{p}.service_usd", service_expr, "Debt service", "USD", SHEET,
                         section=sec)
        principal = m.line(f"{p}.principal_usd", service - interest, "Principal repaid",
                           "USD", SHEET, section=sec)
    m.define(balance, lag(balance, 1, 0) + draw - principal)
    dscr = m.line(f"{p}.dscr", where(service > 0, cfads / service, 0), "DSCR", "ratio",
                  SHEET, agg="none", section=sec)
    first = m.line(f"{p}.first_service_usd", where(eq(k, 1), service, 0),
                   "First month's debt service", "USD", SHEET, agg="none", section=sec)
    reserve = inp("financing.debt.dsra_months") * total(first)
    fees = m.line(f"{p}.fees_and_reserve_usd",
                  where(eq(k, 0), -inp("financing.debt.upfront_fee_share") * amount - reserve,
                        0) + where(eq(k, tenor), reserve, 0),
                  "Upfront fee; reserve funded (-) and released (+)", "USD", SHEET,
                  section=sec)
    to_equity = m.line(f"{p}.cash_to_equity_usd", draw - service + fees,
                       "Debt cash flow to equity", "USD", SHEET, section=sec)
    dscr_floor = m.line(f"{p}.dscr_in_service", where(service > 0, dscr, 1e9),
                        "DSCR where debt is serviced", "ratio", SHEET, agg="none", section=sec)
    m.scalar(f"{p}.min_dscr", where(total(service) > 0, row_min(dscr_floor), 0),
             "Minimum DSCR", "ratio", "Summary", metric="min_dscr", strategy=strategy)
    m.scalar(f"{p}.amount_metric", amount, "Project debt raised", "USD", "Summary",
             metric="debt_usd", strategy=strategy)
    return Debt(amount, interest, to_equity, dscr)
