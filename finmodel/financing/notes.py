"""A convertible note's cash flows and dilution for the issuer, on the share-price path.

The share price follows ``S_t = S_0 (1 + drift) ** (t / 12)``. Events, in months from issue:
the issuer calls (forcing conversion) in the first month from ``call_from_years`` with
``S >= trigger x K`` (K the conversion price); holders put at par at ``put_years`` when
``S < K``; otherwise at maturity the note converts if ``S >= K`` and is repaid if not.

Cash (issuer's side): + issue price - costs - capped-call premium at issue; - coupons while
outstanding; - principal when put, repaid, or converted under net-share settlement
('physical' settlement delivers shares only).

Shares on conversion: 'physical' ``N = principal / K``; 'net share' the excess value
``N (S - K) / S``. A capped call (a call spread from K to the cap on N shares, settled in
shares) gives back ``N (min(S, cap) - K)+ / S``.
"""

from __future__ import annotations

from dataclasses import dataclass

from finmodel.conventions import MONTHS_PER_YEAR
from finmodel.engine.expr import (
    Expr,
    cumulative,
    eq,
    floor,
    irr,
    maximum,
    minimum,
    months_between,
    or_not_available,
    time,
    total,
    where,
    wrap,
)
from finmodel.engine.graph import Line, Model
from finmodel.inputs.rules import LATTICE_STEPS
from finmodel.inputs.schema import Assumptions
from finmodel.models.common import chosen, escalated, inp

SHEET = "Financing"
P = "convertible"
#: Share prices of the dilution table, as multiples of the conversion price.
DILUTION_MULTIPLES = (0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0)


@dataclass(frozen=True)
class Note:
    cash: Line  # issuer cash flows (money in +, out -)
    coupons: Line  # positive, for interest deductions
    net_shares: Line  # shares issued net of the capped call, by month


def _cap() -> Expr:
    return inp("financing.convertible.capped_call_cap_price_usd")


def conversion_price_expr(a: Assumptions) -> Expr:
    """The conversion price from whichever of the three terms the case gives."""
    c = a.financing.convertible
    if c.conversion_price_usd is not None:
        return inp("financing.convertible.conversion_price_usd")
    if c.conversion_premium_share is not None:
        return inp("financing.share_price_usd") * (
            1 + inp("financing.convertible.conversion_premium_share"))
    return 1000 / inp("financing.convertible.conversion_rate_per_1000")


def conversion_price(a: Assumptions) -> float:
    c, f = a.financing.convertible, a.financing
    if c.conversion_price_usd is not None:
        return c.conversion_price_usd
    if c.conversion_premium_share is not None:
        return f.share_price_usd * (1 + c.conversion_premium_share)
    return 1000 / c.conversion_rate_per_1000



def gross_shares(a: Assumptions, share_price: Expr, k: Expr) -> Expr:
    """Shares delivered on conversion at ``share_price`` (``k``: the conversion price)."""
    n = inp("financing.convertible.principal_usd") / k
    # Live choice: 'physical' delivers every share, 'net_share' only the excess over par.
    return where(chosen("financing.convertible.settlement", "physical"),
                 n * where(share_price >= k, 1, 0), n * maximum(share_price - k, 0) / share_price)


def capped_call_shares(a: Assumptions, share_price: Expr, k: Expr) -> Expr:
    """Shares the capped call delivers back at ``share_price``."""
    if a.financing.convertible.capped_call_cap_price_usd is None:
        return wrap(0.0)
    n = inp("financing.convertible.principal_usd") / k
    return n * maximum(minimum(share_price, _cap()) - k, 0) / share_price


def build_note(m: Model, a: Assumptions) -> Note:
    """The convertible's lines (shared by every converting strategy)."""
    c = a.financing.convertible
    sec = "Convertible note"
    k_price = wrap(m.scalar(f"{P}.conversion_price_usd", conversion_price_expr(a),
                            "Conversion price", "USD/share", SHEET))
    principal = inp("financing.convertible.principal_usd")
    share = m.line("financing.share_price_usd",
                   escalated(inp("financing.share_price_usd"), "financing.share_price_drift_rate"),
                   "Share price path", "USD/share", SHEET, agg="mean", section=sec)
    issue = m.scalar(f"{P}.issue_index",
                     months_between(inp("case.start_month"),
                                    inp("financing.convertible.issue_month")),
                     "Issue (months after model start)", "months", SHEET)
    k = m.line(f"{P}.months_since_issue", time("index") - issue, "Months since issue",
               "months", SHEET, agg="none", section=sec)
    term = inp("financing.convertible.term_years") * MONTHS_PER_YEAR
    none: Expr = wrap(0.0)
    called_now = put_now = none
    if c.call_from_years is not None:
        callable_ = m.line(f"{P}.call_condition",
                           where((k >= inp("financing.convertible.call_from_years")
                                  * MONTHS_PER_YEAR) & (k < term)
                                 & (share >= inp("financing.convertible.call_trigger_share")
                                    * k_price), 1, 0),
                           "Callable and above the trigger", "flag", SHEET, section=sec)
        called_now = m.line(f"{P}.called", where((callable_ > 0)
                                                 & eq(cumulative(callable_), 1), 1, 0),
                            "Called (conversion forced)", "flag", SHEET, section=sec)
    if c.put_years is not None:
        before: Expr = cumulative(called_now) if c.call_from_years is not None else none
        put_now = m.line(f"{P}.put", where(eq(k, inp("financing.convertible.put_years")
                                                 * MONTHS_PER_YEAR)
                                             & (share < k_price) & eq(before, 0), 1, 0),
                         "Put by holders at par", "flag", SHEET, section=sec)
    early = m.line(f"{P}.ended_early", called_now + put_now, "Called or put this month",
                   "flag", SHEET, section=sec)
    gone = m.line(f"{P}.ended_before", cumulative(early) - early,
                  "Called or put in an earlier month", "flag", SHEET, agg="none",
                  section=sec)
    at_maturity = m.line(f"{P}.matures", where(eq(k, term) & eq(gone, 0) & eq(early, 0),
                                               1, 0),
                         "Reaches maturity", "flag", SHEET, section=sec)
    converts = m.line(f"{P}.converts",
                      called_now + at_maturity * where(share >= k_price, 1, 0),
                      "Converts", "flag", SHEET, section=sec)
    alive = m.line(f"{P}.outstanding", where((k >= 1) & (k <= term) & eq(gone, 0), 1, 0),
                   "Outstanding (earns its coupon)", "flag", SHEET, section=sec)
    period = MONTHS_PER_YEAR / inp("financing.convertible.coupons_per_year")
    coupon_month = (k >= 1) & eq(k - floor(k / period) * period, 0)
    coupons = m.line(f"{P}.coupon_usd",
                     where(coupon_month & (alive > 0), principal
                           * inp("financing.convertible.coupon_rate")
                           / inp("financing.convertible.coupons_per_year"), 0),
                     "Coupon", "USD", SHEET, section=sec)
    proceeds = m.line(f"{P}.net_proceeds_usd",
                      where(eq(k, 0), principal * (inp("financing.convertible.issue_price_share")
                                                   - inp("financing.convertible.issuance_cost_share"))
                            - inp("financing.convertible.capped_call_cost_usd"), 0),
                      "Net proceeds (after costs and the capped call)", "USD", SHEET,
                      section=sec)
    cash_principal = put_now + at_maturity * where(share >= k_price, 0, 1) \
        + converts * chosen("financing.convertible.settlement", "net_share")
    repaid = m.line(f"{P}.principal_paid_usd", cash_principal * principal,
                    "Principal paid in cash", "USD", SHEET, section=sec)
    gross = m.line(f"{P}.shares_issued", converts * gross_shares(a, share, k_price),
                   "Shares delivered on conversion", "shares", SHEET, section=sec)
    back = m.line(f"{P}.capped_call_shares", converts * capped_call_shares(a, share, k_price),
                  "Shares received from the capped call", "shares", SHEET, section=sec)
    net = m.line(f"{P}.net_shares_issued", gross - back, "Net new shares", "shares", SHEET,
                 section=sec)
    cash = m.line(f"{P}.issuer_cash_usd", proceeds - coupons - repaid,
                  "Convertible cash flow (issuer)", "USD", SHEET, section=sec)
    economic = m.line(f"{P}.issuer_economic_usd", cash - net * share,
                      "Cash flow plus the value of net shares delivered", "USD", SHEET,
                      section=sec)
    m.scalar(f"{P}.all_in_cost",
             or_not_available((1 + irr(economic, 0.005)) ** MONTHS_PER_YEAR - 1),
             "All-in cost to the issuer (IRR of cash and shares delivered)", "rate", SHEET)
    m.scalar(f"{P}.net_shares_total", total(net), "Net new shares on the share-price path",
             "shares", SHEET)
    _dilution_table(m, a, k_price)
    return Note(cash, coupons, net)


def _dilution_table(m: Model, a: Assumptions, k_price: Expr) -> None:
    """Dilution across share prices (multiples of the conversion price), live formulas."""
    for i, mult in enumerate(DILUTION_MULTIPLES, start=1):
        price = m.scalar(f"{P}.dilution_{i}.share_price_usd", k_price * mult,
                         f"Dilution at {mult:g} x the conversion price: share price",
                         "USD/share", SHEET)
        gross = m.scalar(f"{P}.dilution_{i}.gross_shares", gross_shares(a, price, k_price),
                         "  shares delivered", "shares", SHEET)
        back = m.scalar(f"{P}.dilution_{i}.capped_call_shares",
                        capped_call_shares(a, price, k_price),
                        "  capped call offset", "shares", SHEET)
        m.scalar(f"{P}.dilution_{i}.net_share",
                 (gross - back) / inp("financing.shares_outstanding"),
                 "  net dilution, share of shares outstanding", "share", SHEET)


def lattice_terms(a: Assumptions, face: float = 100.0):
    """The note's terms for the lattice, per ``face`` of par, valued at issue."""
    from finmodel.financing.convertible import Call, ConvertibleTerms, Put

    c = a.financing.convertible
    n = int(round(c.term_years * c.coupons_per_year))
    times = tuple((i + 1) / c.coupons_per_year for i in range(n))
    calls = ()
    if c.call_from_years is not None:
        calls = tuple(Call(t, face, c.call_trigger_share) for t in times
                      if c.call_from_years - 1e-9 <= t < c.term_years)
    puts = (Put(c.put_years, face),) if c.put_years is not None else ()
    return ConvertibleTerms(face=face, maturity_years=c.term_years,
                            conversion_ratio=face / conversion_price(a),
                            coupon_times=times,
                            coupon_amounts=tuple(face * c.coupon_rate / c.coupons_per_year
                                                 for _ in times),
                            calls=calls, puts=puts)


def lattice_value(a: Assumptions, steps: int = LATTICE_STEPS) -> dict[str, float]:
    """The note valued on the lattice at issue (per 100 of par), with its inputs."""
    from finmodel.financing.convertible import value_convertible

    c = a.financing.convertible
    v = value_convertible(lattice_terms(a), spot=a.financing.share_price_usd,
                          volatility=c.volatility, risk_free_rate=c.risk_free_rate,
                          credit_spread=c.credit_spread, steps=steps,
                          kernel="numpy")  # one lattice a run: numba's import costs more
    return {
        "share_price_usd": a.financing.share_price_usd, "volatility": c.volatility,
        "risk_free_rate": c.risk_free_rate, "credit_spread": c.credit_spread,
        "steps": steps, "price_per_100": v.price, "bond_floor_per_100": v.bond_floor,
        "conversion_value_per_100": v.conversion_value, "delta_shares_per_100": v.delta,
        "gamma_per_100": v.gamma, "equity_part_per_100": v.equity_part,
        "value_usd": v.price / 100 * c.principal_usd,
        "issue_discount_usd": (v.price / 100 - c.issue_price_share) * c.principal_usd,
    }
