"""The company's cash account beside a strategy's equity cash flow.

The equity cash flow (after project debt, the convertible and tax) is what is left for the
shareholders each month. The account holds it: ``B_t = B_{t-1} + equity_t + funding_t``,
opening at zero, where the shareholders fund any month that would end below the minimum
cash, ``funding_t = max(minimum - (B_{t-1} + equity_t), 0)``, up to what is left of their
commitment when the case states one (``financing.equity_commitment_usd``). Cash above the
minimum is kept, not paid out: the account answers whether the company can stay above its
floor, not what it distributes. Without a commitment every deficit is funded, so the
balance can only fall below the minimum when the commitment caps the funding.
"""

from __future__ import annotations

from finmodel.engine.expr import Expr, lag, maximum, minimum
from finmodel.engine.graph import Line, Model
from finmodel.inputs.schema import Assumptions
from finmodel.models.common import inp

SHEET = "Financing"


def build_cash_account(m: Model, a: Assumptions, s: str, equity: Line) -> Line:
    """Add strategy ``s``'s equity funding and cash balance; return the balance line."""
    sec = f"{s}: cash account"
    balance = m.recursive_line(f"{s}.cash.balance_usd", "Cash balance, end of month (after "
                               "equity funding)", "USD", SHEET, section=sec)
    before = lag(balance, 1, 0) + equity
    need: Expr = maximum(inp("financing.minimum_cash_usd") - before, 0)
    if a.financing is not None and a.financing.equity_commitment_usd is not None:
        funded = m.recursive_line(f"{s}.cash.equity_funded_to_date_usd",
                                  "Equity funded to date", "USD", SHEET, section=sec)
        left = maximum(inp("financing.equity_commitment_usd") - lag(funded, 1, 0), 0)
        funding = m.line(f"{s}.cash.equity_funding_usd", minimum(need, left),
                         "Equity funding (to the minimum cash, within the commitment)",
                         "USD", SHEET, section=sec)
        m.define(funded, lag(funded, 1, 0) + funding)
    else:
        funding = m.line(f"{s}.cash.equity_funding_usd", need,
                         "Equity funding (to the minimum cash)", "USD", SHEET, section=sec)
    return m.define(balance, before + funding)


__all__ = ["build_cash_account"]
