"""The company around the sites: its overhead, its convertible stack, new money, and what
a plan is worth per share.

Sign convention as everywhere in finmodel: money into the company positive, out negative.
Notes convert at maturity when the share price (company.share_price_usd) is above their
conversion price, and are repaid in cash otherwise; coupons are paid until maturity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from finmodel.errors import InputError
from finmodel.portfolio.schema import Portfolio, month_index


def monthly_rate(annual: float) -> float:
    """``(1 + r) ** (1/12) - 1``, as conventions.py states."""
    return (1.0 + annual) ** (1.0 / 12.0) - 1.0


def discount_factors(annual: float, months: int) -> np.ndarray:
    """End-of-month discount factors, the first month discounted one period (Excel NPV)."""
    return (1.0 + monthly_rate(annual)) ** -np.arange(1, months + 1, dtype=float)


def _coupon_months(last: int, per_year: int) -> np.ndarray:
    """Coupon months counted back from ``last`` every 12 / per_year months."""
    step = 12 // per_year
    if step * per_year != 12:
        raise InputError(f"coupons_per_year: {per_year} does not divide the year into whole "
                         "months; expected 1, 2, 3, 4, 6 or 12")
    return np.arange(last, -1, -step)


@dataclass
class CompanyFlows:
    """The company's own monthly flows over the sites' timeline."""

    overhead_usd: np.ndarray  # (months,) after its tax shield, negative
    stack_coupons_usd: np.ndarray  # (months,) existing notes' coupons, negative
    stack_principal_usd: np.ndarray  # (months,) existing notes repaid in cash, negative
    new_per_usd: np.ndarray  # (months,) cash of the new issuance per $ raised
    stack_pv_usd: float  # PV of the existing notes' cash flows still to pay (positive)
    stack_shares: float  # shares the converting notes deliver
    new_cost_per_usd: float  # value lost per $ raised: the issuance cost (sold at fair value)
    new_shares_per_usd: float  # shares per $ raised (equity, or a note that converts)

    @property
    def fixed_usd(self) -> np.ndarray:
        """Overhead plus the existing notes' cash flows, by month."""
        return self.overhead_usd + self.stack_coupons_usd + self.stack_principal_usd


def company_flows(spec: Portfolio, start_month: str, months: int) -> CompanyFlows:
    """Overhead, the existing stack and the new issuance on a ``months``-long timeline."""
    c = spec.company
    t = np.arange(months, dtype=float)
    overhead = -c.overhead_usd_per_year / 12.0 * (1 + c.overhead_escalator_rate) ** (t / 12.0) \
        * (1.0 - c.tax_rate)
    df_long = discount_factors(c.discount_rate, 12 * 60)
    coupons = np.zeros(months)
    principal = np.zeros(months)
    stack_pv, stack_shares = 0.0, 0.0
    for note in spec.financing.existing:
        end = month_index(note.maturity_month, start_month)
        if end < 0:
            raise InputError(f"financing.existing {note.name!r}: maturity_month "
                             f"{note.maturity_month} is before the sites' start {start_month}")
        converts = c.share_price_usd > note.conversion_price_usd
        flows = np.zeros(max(end + 1, months))
        pay = _coupon_months(end, note.coupons_per_year)
        if note.issue_month is not None:  # a note issued since the start: no coupon yet
            pay = pay[pay > month_index(note.issue_month, start_month)]
        flows[pay] -= note.principal_usd * note.coupon_rate / note.coupons_per_year
        coupons += flows[:months]
        if converts:
            stack_shares += note.principal_usd / note.conversion_price_usd
        else:
            flows[end] -= note.principal_usd
            if end < months:
                principal[end] -= note.principal_usd
        stack_pv += -float(flows @ df_long[:flows.size])
    new = spec.financing.new
    per = np.zeros(max(months, new.term_years * 12))
    per[0] = 1.0 - new.issuance_cost_share
    shares = 0.0
    if new.kind == "convertible":
        end = new.term_years * 12 - 1
        per[_coupon_months(end, new.coupons_per_year)] -= new.coupon_rate / \
            new.coupons_per_year
        conv_price = c.share_price_usd * (1 + new.conversion_premium_share)
        if c.share_price_usd > conv_price:  # never with a premium >= 0; kept for symmetry
            shares = 1.0 / conv_price
        else:
            per[end] -= 1.0
    else:
        shares = 1.0 / c.share_price_usd
    # Either kind is sold at its fair value: the holders pay what the shares or the note
    # are worth, so the company gives up only the issuance cost. (The note's coupons and
    # repayment discounted at the company's equity rate are worth less than its principal;
    # counting that as value would make every raise look profitable and the plan borrow to
    # its limit. Before 2026-11-27 the note's principal was counted as lost outright.)
    cost = new.issuance_cost_share
    return CompanyFlows(overhead, coupons, principal, per[:months], stack_pv, stack_shares,
                        cost, shares)


def pv(flows: np.ndarray, annual_rate: float) -> float:
    """Excel ``NPV(monthly rate, flows)``."""
    return float(np.asarray(flows) @ discount_factors(annual_rate, len(flows)))


def overhead_terminal_usd(spec: Portfolio, cf: CompanyFlows) -> float:
    """The overhead beyond the horizon at its end: the multiple times the last twelve
    months' after-tax overhead (negative). Sites valued with a terminal value carry on
    past the horizon; so does the head office that runs them."""
    return spec.company.overhead_terminal_multiple * float(cf.overhead_usd[-12:].sum())


@dataclass
class PerShare:
    """Equity value and value per share of a plan.

    ``value_per_share_usd`` is the plan's equity NPV per diluted share: negative when the
    sites, cash and new money are worth less than the overhead and notes they must carry.
    ``share_value_usd`` is what a share is worth to its holder: limited liability floors it
    at zero (the shortfall falls on creditors, or the plan is not run), so it is the figure
    an investor would sign; the NPV per share is kept beside it because it says how deep
    the hole is, which the floor hides."""

    sites_value_usd: float
    cash_usd: float
    overhead_pv_usd: float  # negative
    stack_pv_usd: float  # negative
    new_funding_cost_usd: float  # negative
    equity_value_usd: float
    shares: float  # diluted
    value_per_share_usd: float  # equity NPV per share, may be negative

    @property
    def share_value_usd(self) -> float:
        """Value per share to its holder: limited liability floors it at zero."""
        return max(0.0, self.value_per_share_usd)


def per_share(spec: Portfolio, cf: CompanyFlows, sites_value_usd: float, new_funding_usd: float
              ) -> PerShare:
    """Equity value = sites' NPV + cash - PV(overhead) - PV(existing notes) - cost of the new
    money; shares = outstanding + shares the converting notes deliver + new shares."""
    c = spec.company
    # The overhead beyond the horizon is one more flow at the end of the last month.
    overhead = pv(cf.overhead_usd, c.discount_rate) + overhead_terminal_usd(spec, cf) * \
        float(discount_factors(c.discount_rate, len(cf.overhead_usd))[-1])
    # An equity raise brings its net proceeds in and no repayment: the cash it adds is
    # counted, net of its cost, as what the new shareholders paid for their shares. A new
    # note brings the same net proceeds in and a liability worth its principal at issue
    # (sold at fair value), so the equity loses its cost only.
    new_cost = -new_funding_usd * cf.new_cost_per_usd
    if spec.financing.new.kind == "equity":
        new_value = new_funding_usd * (1.0 - cf.new_cost_per_usd)
    else:
        new_value = new_cost
    equity = sites_value_usd + c.cash_usd + overhead - cf.stack_pv_usd + new_value
    shares = c.shares_outstanding + cf.stack_shares + new_funding_usd * cf.new_shares_per_usd
    return PerShare(sites_value_usd, c.cash_usd, overhead, -cf.stack_pv_usd, new_cost, equity,
                    shares, equity / shares)
