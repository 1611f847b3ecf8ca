"""Cash-flow roll-up and headline valuation metrics, defined once for every strategy.

Conventions (see :mod:`finmodel.conventions`): flows at period end, valued at the start
of the first period. ``npv_usd`` is Excel's ``NPV(monthly_rate, flows)``; ``project_irr``
is Excel's ``IRR(flows, guess)`` on the monthly flows, annualised ``(1 + irr) ** 12 - 1``;
``payback_years`` is when cumulative cash first turns non-negative, interpolated within
the month, counted from the valuation date (not available when it never does).
"""

from __future__ import annotations

from dataclasses import dataclass

from finmodel.conventions import MONTHS_PER_YEAR
from finmodel.engine.expr import (
    Expr,
    cumulative,
    irr,
    lag,
    minimum,
    not_available,
    npv,
    total,
    where,
    wrap,
)
from finmodel.engine.graph import Line, Model, Scalar
from finmodel.models.common import inp

SHEET = "Cash Flow"
#: Monthly IRR starting guess; 10 %/month (Excel's default) fails on long monthly series.
IRR_GUESS_MONTHLY = 0.01


def monthly_discount_rate(m: Model) -> Scalar:
    """The case's annual discount rate as a monthly rate, derived once."""
    return m.scalar("valuation.monthly_discount_rate",
                    (1 + inp("case.discount_rate")) ** (wrap(1) / MONTHS_PER_YEAR) - 1,
                    "Monthly discount rate", "rate", SHEET)


@dataclass(frozen=True)
class CashFlow:
    ebitda: Line
    capex: Line
    fcf: Line


def add_cash_flow(m: Model, strategy: str, revenue: list[Line], costs: list[Line],
                  capex: list[Line], title: str) -> CashFlow:
    """EBITDA and unlevered free cash flow of a strategy from its signed lines."""
    s, sec = strategy, title
    rev = [m.line(f"{s}.cf.{ln.name.split('.')[-1]}", ln, ln.label, ln.unit, SHEET,
                  section=sec) for ln in revenue]
    cst = [m.line(f"{s}.cf.{ln.name.split('.')[-1]}", ln, ln.label, ln.unit, SHEET,
                  section=sec) for ln in costs]
    ebitda = m.line(f"{s}.ebitda_usd", _sum(rev + cst), "EBITDA", "USD", SHEET, section=sec)
    cpx = [m.line(f"{s}.cf.{ln.name.split('.')[-1]}", ln, ln.label, ln.unit, SHEET,
                  section=sec) for ln in capex]
    capex_total = m.line(f"{s}.capex_total_usd", _sum(cpx), "Capital expenditure", "USD",
                         SHEET, section=sec)
    fcf = m.line(f"{s}.unlevered_fcf_usd", ebitda + capex_total,
                 "Unlevered free cash flow (pre-tax)", "USD", SHEET, section=sec)
    return CashFlow(ebitda, capex_total, fcf)


def add_valuation(m: Model, strategy: str, fcf: Line, rate: Scalar) -> None:
    """NPV, project IRR and payback of a strategy's free cash flow."""
    s, sec = strategy, f"{strategy}: payback"
    cum = m.line(f"{s}.cumulative_fcf_usd", cumulative(fcf), "Cumulative free cash flow",
                 "USD", SHEET, agg="last", section=sec)
    nonneg = m.line(f"{s}.cum_nonnegative", where(cum >= 0, 1, 0),
                    "Cumulative cash non-negative", "flag", SHEET, agg="none", section=sec)
    paid = m.line(f"{s}.paid_back", minimum(cumulative(nonneg), 1), "Paid back", "flag",
                  SHEET, agg="none", section=sec)
    before = m.line(f"{s}.months_before_payback", 1 - paid, "Month before payback", "flag",
                    SHEET, agg="none", section=sec)
    # In the month cumulative cash crosses zero, the fraction of the month it took.
    frac = m.line(f"{s}.payback_fraction",
                  where(paid - lag(paid, 1, 0) > 0,
                        where(fcf > 0, -lag(cum, 1, 0) / fcf, 0), 0),
                  "Fraction of the payback month", "months", SHEET, agg="none", section=sec)
    kw = dict(sheet="Summary", strategy=s)
    m.scalar(f"{s}.npv", npv(rate, fcf), "NPV at the discount rate", "USD",
             metric="npv_usd", **kw)
    m.scalar(f"{s}.project_irr", (1 + irr(fcf, IRR_GUESS_MONTHLY)) ** MONTHS_PER_YEAR - 1,
             "Project IRR (unlevered, pre-tax)", "rate", metric="project_irr", **kw)
    m.scalar(f"{s}.payback_years",
             where(total(paid) > 0, (total(before) + total(frac)) / MONTHS_PER_YEAR,
                   not_available()),
             "Payback", "years", metric="payback_years", **kw)


def _sum(lines: list[Line]) -> Expr:
    out = wrap(lines[0])
    for ln in lines[1:]:
        out = out + ln
    return out
