"""Cash-flow roll-up and headline valuation metrics, defined once for every strategy.

Conventions (see :mod:`finmodel.conventions`): flows at period end, valued at the start
of the first period. ``npv_usd`` is Excel's ``NPV(monthly_rate, flows)``; ``project_irr``
is Excel's ``IRR(flows, guess)`` on the monthly flows, annualised ``(1 + irr) ** 12 - 1``;
``payback_years`` is when cumulative cash turns non-negative for good (it never dips below
zero again), interpolated within the month, counted from the valuation date; not available,
with the reason, when cumulative cash is never negative (nothing to pay back) or ends
negative;
``moic`` is cash in / cash out over the horizon (terminal value included);
``peak_funding_usd`` is the deepest point of cumulative free cash flow.

Terminal value at the horizon (the case's ``[valuation]``): ``exit_multiple`` x the last
twelve months' EBITDA, or a growing perpetuity of the last twelve months' recurring free
cash flow (EBITDA + capex; one-off deposits, prepayments and asset sales left out),
``FCF_ltm x (1 + g) / (r - g)``, or (``lease_renewal``) that perpetuity with the AI hall
re-let (rent reset, re-letting capex every renewal; :func:`add_cash_flow`), never below
the salvage value of the site
(``salvage_usd_per_mw`` x interconnect MW), added to the last month's flow.
"""

from __future__ import annotations

from dataclasses import dataclass

from finmodel.conventions import MONTHS_PER_YEAR
from finmodel.engine.expr import (
    Expr,
    cumulative,
    eq,
    irr,
    lag,
    maximum,
    minimum,
    ne,
    not_available,
    npv,
    or_not_available,
    row_min,
    sum_of,
    time,
    total,
    where,
    wrap,
)
from finmodel.engine.graph import Line, Model, Scalar
from finmodel.inputs.schema import Assumptions
from finmodel.models.common import chosen, inp

SHEET = "Cash Flow"
#: Monthly IRR starting guess; 10 %/month (Excel's default) fails on long monthly series.
IRR_GUESS_MONTHLY = 0.01

#: The order headline metrics are shown in.
METRIC_ORDER = (
    "npv_usd", "npv_vs_mining_usd", "project_irr", "incremental_irr", "incremental_mirr",
    "mirr", "profitability_index", "incremental_profitability_index", "moic",
    "payback_years",
    "equity_npv_usd", "equity_irr", "equity_mirr", "equity_profitability_index",
    "value_per_share_usd", "value_per_share_diluted_usd",
    "debt_usd", "min_dscr",
    "peak_funding_usd", "revenue_per_mw_year_usd", "ebitda_per_mw_year_usd",
    "btc_mined", "hashcost_usd_per_ph_day", "cash_cost_per_btc_usd",
    "all_in_cost_per_btc_usd", "breakeven_btc_price_usd",
    "breakeven_lease_rate_usd_per_kw_month", "breakeven_gpu_hour_price_usd",
    "btc_price_mining_matches_usd",
    "breakeven_capex_usd_per_mw",
    *(f"bridge_{k}_usd" for k in ("mining_margin", "power_credits", "mining_capex",
                                  "asic_sale", "hall_revenue", "hall_opex",
                                  "conversion_capex", "tenant_financing", "terminal_value")),
)


def metric_rank(metric: str) -> int:
    """Position of a metric in :data:`METRIC_ORDER` (unknown metrics last)."""
    return METRIC_ORDER.index(metric) if metric in METRIC_ORDER else len(METRIC_ORDER)


def monthly_discount_rate(m: Model) -> Scalar:
    """The case's annual discount rate as a monthly rate, derived once."""
    return m.scalar("valuation.monthly_discount_rate",
                    (1 + inp("case.discount_rate")) ** (wrap(1) / MONTHS_PER_YEAR) - 1,
                    "Monthly discount rate", "rate", SHEET)


@dataclass(frozen=True)
class CashFlow:
    revenue: Line
    ebitda: Line
    capex: Line
    fcf: Line


def add_cash_flow(m: Model, a: Assumptions, strategy: str, revenue: list[Line],
                  costs: list[Line], capex: list[Line], other: list[Line],
                  rent: Line | None = None, ai_mw: Expr | None = None) -> CashFlow:
    """Revenue, EBITDA, capex, other cash and free cash flow of a strategy from its signed
    lines, with the terminal value the case asks for.

    ``rent`` (a lease's rent) and ``ai_mw`` (the AI hall's critical IT) enter the
    ``lease_renewal`` terminal value: the growing perpetuity of the last twelve months'
    recurring free cash flow ``N`` (EBITDA + capex: no deposit, prepayment or asset sale),
    with the rent in it reset to ``release_rent_share`` of the last
    twelve months' rent ``R``, less the re-letting capex ``C = release_capex_usd_per_mw x
    ai_mw`` spent at the horizon and every ``T = release_term_years`` after it, growing
    with the rent:

        TV = (N + (share - 1) R) (1 + g) / (r - g) - C / (1 - ((1 + g) / (1 + r)) ** T)

    (r the annual discount rate, g the terminal growth rate). Without a hall (mining) it
    is the growing perpetuity itself.
    """
    s, sec = strategy, f"{strategy}: cash flow"

    def link(lines: list[Line]) -> list[Line]:
        return [m.line(f"{s}.cf.{ln.name.removeprefix(s + '.').replace('.', '_')}", ln,
                       ln.label, ln.unit, SHEET, section=sec) for ln in lines]

    rev_total = m.line(f"{s}.revenue_total_usd", sum_of(link(revenue)), "Revenue", "USD",
                       SHEET, section=sec)
    ebitda = m.line(f"{s}.ebitda_usd", rev_total + sum_of(link(costs)), "EBITDA", "USD",
                    SHEET, section=sec)
    capex_total = m.line(f"{s}.capex_total_usd", sum_of(link(capex)), "Capital expenditure",
                         "USD", SHEET, section=sec)
    flows = ebitda + capex_total
    if other:
        other_total = m.line(f"{s}.other_cash_usd", sum_of(link(other)),
                             "Other cash (prepayments, deposits, asset sales)", "USD", SHEET,
                             section=sec)
        flows = flows + other_total
    # The method is a live choice: every case carries both twelve-month bases, and the
    # workbook's IF on valuation_terminal_method picks the value (none: no terminal value).
    operating = m.line(f"{s}.operating_fcf_usd", flows,
                       "Free cash flow before terminal value", "USD", SHEET, section=sec)
    # A perpetuity capitalises what recurs: EBITDA and capex. A deposit received or
    # returned, a prepayment or an asset sale in the last twelve months happens once, and
    # capitalised it would invent (or destroy) value many times its size.
    recurring = m.line(f"{s}.recurring_fcf_usd", ebitda + capex_total,
                       "Recurring free cash flow (EBITDA + capex; the perpetuity's base)",
                       "USD", SHEET, section=sec)
    ltm = {}
    for key, base in (("ebitda", ebitda), ("recurring_fcf", recurring)):
        cum = m.line(f"{s}.cumulative_{key}_usd", cumulative(base),
                     "Cumulative, for the last twelve months", "USD", SHEET, agg="none",
                     section=sec)
        ltm[key] = m.line(f"{s}.ltm_{key}_usd", cum - lag(cum, MONTHS_PER_YEAR, 0),
                          "Last twelve months", "USD", SHEET, agg="none", section=sec)
    g, r = inp("valuation.terminal_growth_rate"), inp("case.discount_rate")
    perpetuity: Expr = ltm["recurring_fcf"] * (1 + g) / (r - g)
    renewal: Expr = perpetuity
    if rent is not None:
        cum = m.line(f"{s}.cumulative_rent_usd", cumulative(rent),
                     "Cumulative rent, for the last twelve months", "USD", SHEET, agg="none",
                     section=sec)
        ltm_rent = m.line(f"{s}.ltm_rent_usd", cum - lag(cum, MONTHS_PER_YEAR, 0),
                          "Last twelve months' rent", "USD", SHEET, agg="none", section=sec)
        renewal = renewal + (inp("valuation.release_rent_share") - 1) * ltm_rent \
            * (1 + g) / (r - g)
    if ai_mw is not None:
        # Each re-letting's capex, growing like the rent, every T years from the horizon.
        cycle = ((1 + g) / (1 + r)) ** inp("valuation.release_term_years")
        renewal = renewal - inp("valuation.release_capex_usd_per_mw") * ai_mw / (1 - cycle)
    value: Expr = where(chosen("valuation.terminal_method", "exit_multiple"),
                        inp("valuation.exit_multiple") * ltm["ebitda"],
                        where(chosen("valuation.terminal_method", "lease_renewal"), renewal,
                              perpetuity))
    last = eq(time("index"), inp("case.horizon_years") * MONTHS_PER_YEAR - 1)
    # The site is worth at least its salvage value: no multiple of a loss below it.
    floor_value = inp("valuation.salvage_usd_per_mw") * inp("site.interconnect_mw")
    tv = m.line(f"{s}.terminal_value_usd",
                where(chosen("valuation.terminal_method", "none"), 0,
                      where(last, maximum(value, floor_value), 0)),
                "Terminal value (at least the salvage value; none: 0)", "USD", SHEET,
                section=sec)
    fcf = m.line(f"{s}.unlevered_fcf_usd", operating + tv,
                 "Unlevered free cash flow (pre-tax)", "USD", SHEET, section=sec)
    return CashFlow(rev_total, ebitda, capex_total, fcf)


#: Why an IRR is not shown, by the code of :func:`irr_check`; 0 means it is shown.
IRR_CHECK_REASONS = {
    1: "no cash flows",
    2: "the first non-zero flow is an inflow: there is no investment to earn a return on",
    3: "not investment-shaped: outflows follow inflows and cumulative cash crosses zero "
       "more than once, so the NPV profile may cross zero more than once",
}


#: The same for the incremental IRR (converting's flows less mining's), where an inflow
#: first is a tenant's deposit or prepayment received before the conversion capex.
INCREMENTAL_IRR_REASONS = {
    **IRR_CHECK_REASONS,
    2: "the first non-zero flow is an inflow (a deposit or prepayment received before the "
       "conversion capex): the flows are financing-shaped, so no IRR; the incremental MIRR "
       "is the return of converting",
}


def irr_reasons_for(kind: str) -> dict[int, str]:
    """The reasons of :func:`irr_check` codes for the IRR of ``kind`` (``project``,
    ``equity``, ``incremental``)."""
    return INCREMENTAL_IRR_REASONS if kind == "incremental" else IRR_CHECK_REASONS


#: Why payback is not shown, by the code of ``{strategy}.payback_check``; 0: shown.
PAYBACK_CHECK_REASONS = {
    1: "cumulative cash is never negative: there is no investment to pay back",
    2: "cumulative cash is still negative at the horizon: not paid back",
}


def irr_check(m: Model, name: str, flows: Line, cum: Line | None = None) -> Scalar:
    """Whether ``flows`` is investment-shaped, so that its IRR means a return: 0 if so,
    else a code of :data:`IRR_CHECK_REASONS`.

    Investment-shaped: the first non-zero flow is an outflow, and either no outflow
    follows the first inflow (one sign change: by Descartes' rule the NPV profile crosses
    zero once) or cumulative cash is negative until it turns non-negative for good and
    ends positive (one sign change of the cumulative flows: Norstrom's condition for a
    unique positive IRR).
    """
    n = inp("case.horizon_years") * MONTHS_PER_YEAR
    idx = time("index")
    sec = f"{name.split('.')[0]}: IRR check"
    nonzero = m.line(f"{name}.nonzero_index", where(ne(flows, 0), idx, n),
                     "Month of a non-zero flow", "months", SHEET, agg="none", section=sec)
    first = row_min(nonzero)
    first_flow = m.line(f"{name}.first_flow_usd", where(eq(idx, first), flows, 0),
                        "First non-zero flow", "USD", SHEET, agg="none", section=sec)
    inflow = m.line(f"{name}.inflow_index", where(flows > 0, idx, n), "Month of an inflow",
                    "months", SHEET, agg="none", section=sec)
    late = m.line(f"{name}.outflow_after_inflow", where((flows < 0) & (idx > row_min(inflow)),
                                                        1, 0),
                  "Outflow after the first inflow", "flag", SHEET, agg="none", section=sec)
    if cum is None:  # the running sum of the flows, unless the caller has one
        cum = m.line(f"{name}.cumulative_usd", cumulative(flows), "Cumulative flow", "USD",
                     SHEET, agg="none", section=sec)
    neg = m.line(f"{name}.cumulative_negative", where(cum < 0, 1, 0),
                 "Cumulative flow negative", "flag", SHEET, agg="none", section=sec)
    # Months from the first flow until cumulative cash is non-negative for good.
    before = m.line(f"{name}.before_positive_for_good",
                    where((idx >= first) & (total(neg) - cumulative(neg) + neg > 0), 1, 0),
                    "From the first flow to the last negative cumulative", "flag", SHEET,
                    agg="none", section=sec)
    one_cross = (eq(total(neg), total(before))) & (total(flows) > 0)
    code = where(eq(first, n), 1,
                 where(total(first_flow) > 0, 2,
                       where(eq(total(late), 0) | one_cross, 0, 3)))
    return m.scalar(f"{name}.irr_check", code,
                    "IRR check: 0 investment-shaped, else the reason code", "code", SHEET)


def add_return_metrics(m: Model, s: str, kind: str, flows: Line, rate: Expr,
                       cash_in: Line, cash_out: Line, label: str,
                       cum: Line | None = None) -> None:
    """IRR (only where investment-shaped), MIRR and profitability index of ``flows``.

    ``kind`` names the metrics: ``project`` gives ``project_irr``, ``mirr``,
    ``profitability_index``; ``equity`` gives ``equity_irr``, ``equity_mirr``,
    ``equity_profitability_index``; ``incremental`` gives ``incremental_irr``,
    ``incremental_mirr``, ``incremental_profitability_index`` (the flows of converting less
    mining's: a deposit or prepayment received before the conversion capex makes them not
    investment-shaped, and MIRR is the return that is still defined and unique).

    MIRR is Excel's ``MIRR(flows, r, r)`` on the monthly flows, finance and reinvestment
    rate both the discount rate ``r``, annualised: with ``n`` months,
    ``(-NPV(r, inflows) (1 + r)^n / (NPV(r, outflows) (1 + r))) ^ (1 / (n - 1)) - 1``.
    The profitability index is ``NPV(r, inflows) / -NPV(r, outflows)``: present value of
    what comes in per dollar of present value put in.
    """
    kw = dict(sheet="Summary", strategy=s)
    name = f"{s}.{kind}"
    check = irr_check(m, name, flows, cum)
    key = {"project": "project_irr", "equity": "equity_irr",
           "incremental": "incremental_irr"}[kind]
    m.scalar(f"{s}.{key}",
             where(eq(check, 0),
                   or_not_available((1 + irr(flows, IRR_GUESS_MONTHLY)) ** MONTHS_PER_YEAR
                                    - 1), not_available()),
             label, "rate", metric=key, **kw)
    prefix = "" if kind == "project" else f"{kind}_"
    n = inp("case.horizon_years") * MONTHS_PER_YEAR
    # Named parts on the cash-flow sheet, so each Summary formula stays short.
    pv_in = m.scalar(f"{name}.pv_in_usd", npv(rate, cash_in),
                     f"PV of cash in ({kind})", "USD", SHEET)
    pv_out = m.scalar(f"{name}.pv_out_usd", npv(rate, cash_out),
                      f"PV of cash out ({kind})", "USD", SHEET)
    has = m.scalar(f"{name}.has_in_and_out",
                   where((total(cash_out) < 0) & (total(cash_in) > 0), 1, 0),
                   f"Cash both in and out ({kind}; 1)", "flag", SHEET)
    # MIRR's growth of a dollar over the horizon: FV of inflows / PV of outflows.
    growth = m.scalar(f"{name}.mirr_growth",
                      where(has > 0, -pv_in * (1 + rate) ** n / (pv_out * (1 + rate)), 0),
                      f"MIRR growth factor over the horizon ({kind})", "x", SHEET)
    m.scalar(f"{s}.{prefix}mirr",
             where(has > 0, growth ** (MONTHS_PER_YEAR / (n - 1)) - 1, not_available()),
             f"MIRR ({kind}; finance and reinvestment at the discount rate)", "rate",
             metric=f"{prefix}mirr", **kw)
    m.scalar(f"{s}.{prefix}profitability_index",
             where(total(cash_out) < 0, pv_in / -pv_out, not_available()),
             f"Profitability index ({kind}; PV in / PV out)", "x",
             metric=f"{prefix}profitability_index", **kw)


def add_valuation(m: Model, strategy: str, cf: CashFlow, rate: Scalar) -> None:
    """NPV, project IRR, MOIC, payback, peak funding and per-MW-year figures."""
    s, sec = strategy, f"{strategy}: payback and funding"
    fcf = cf.fcf
    cum = m.line(f"{s}.cumulative_fcf_usd", cumulative(fcf), "Cumulative free cash flow",
                 "USD", SHEET, agg="last", section=sec)
    # Paid back from the month after which cumulative cash never goes negative again: a
    # prepayment received before the capex is spent does not count as a payback.
    neg = m.line(f"{s}.cum_negative", where(cum < 0, 1, 0), "Cumulative cash negative",
                 "flag", SHEET, agg="none", section=sec)
    # Negative months from this one on: all of them less those before. The total is a
    # scalar and the count so far a running sum, so each cell has three references (a
    # whole-row SUM in every cell made the workbook quadratic in the horizon).
    negatives = m.scalar(f"{s}.negative_months", total(neg),
                         "Months with cumulative cash negative", "months", SHEET)
    so_far = m.line(f"{s}.negative_months_to_date", cumulative(neg),
                    "Months with cumulative cash negative, to date", "months", SHEET,
                    agg="none", section=sec)
    paid = m.line(f"{s}.paid_back", where(negatives - so_far + neg > 0, 0, 1),
                  "Paid back (non-negative from here on)", "flag", SHEET, agg="none",
                  section=sec)
    before = m.line(f"{s}.months_before_payback", 1 - paid, "Month before payback", "flag",
                    SHEET, agg="none", section=sec)
    # In the month cumulative cash crosses zero, the fraction of the month it took.
    frac = m.line(f"{s}.payback_fraction",
                  where(paid - lag(paid, 1, 0) > 0,
                        where(fcf > 0, -lag(cum, 1, 0) / fcf, 0), 0),
                  "Fraction of the payback month", "months", SHEET, agg="none", section=sec)
    cash_in = m.line(f"{s}.cash_in_usd", maximum(fcf, 0), "Cash in", "USD", SHEET,
                     section=sec)
    cash_out = m.line(f"{s}.cash_out_usd", minimum(fcf, 0), "Cash out", "USD", SHEET,
                      section=sec)
    kw = dict(sheet="Summary", strategy=s)
    m.scalar(f"{s}.npv", npv(rate, fcf), "NPV at the discount rate", "USD",
             metric="npv_usd", **kw)
    add_return_metrics(m, s, "project", fcf, rate, cash_in, cash_out,
                       "Project IRR (unlevered, pre-tax)", cum)
    m.scalar(f"{s}.moic", where(total(cash_out) < 0, total(cash_in) / -total(cash_out),
                                not_available()),
             "MOIC (cash in / cash out)", "x", metric="moic", **kw)
    # No payback where there is nothing to pay back (cumulative cash never below zero: an
    # owned fleet kept mining) or it is never paid back; the code says which.
    check = m.scalar(f"{s}.payback_check",
                     where(eq(negatives, 0), 1, where(eq(total(paid), 0), 2, 0)),
                     "Payback check: 0 shown, else the reason code", "code", SHEET)
    m.scalar(f"{s}.payback_years",
             where(eq(check, 0), (total(before) + total(frac)) / MONTHS_PER_YEAR,
                   not_available()),
             "Payback", "years", metric="payback_years", **kw)
    m.scalar(f"{s}.peak_funding", maximum(-row_min(cum), 0),
             "Peak funding need (deepest cumulative cash)", "USD", metric="peak_funding_usd",
             **kw)
    mw_years = inp("site.interconnect_mw") * inp("case.horizon_years")
    m.scalar(f"{s}.revenue_per_mw_year", total(cf.revenue) / mw_years,
             "Revenue per MW of interconnect per year", "USD",
             metric="revenue_per_mw_year_usd", **kw)
    m.scalar(f"{s}.ebitda_per_mw_year", total(cf.ebitda) / mw_years,
             "EBITDA per MW of interconnect per year", "USD",
             metric="ebitda_per_mw_year_usd", **kw)
