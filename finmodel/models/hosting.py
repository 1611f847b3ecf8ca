"""The converted data hall, and the AI/HPC hosting lease signed for it (critical IT).

Timeline of a lease, in months from the model start:

    conversion start c  ->  phase k ready at c + ready_k  ->  rent commencement r
    initial term: r <= t < r + 12 T        renewal: r + 12 T <= t < r + 12 (T + T_renew)

Rent in month t: MW in service x 1,000 x rate_0 x (1 + escalator) ** floor((t - r) / 12),
times the renewal reset (and probability) in a renewal, less expected credit losses
(1 - LGD x cumulative default probability, from an annual PD) and SLA credits.
A prepayment (a share of the initial-term contract value at full ramp) arrives at signing
(the conversion start) and is credited against rent over its months, starting a stated
delay after commencement;
a security deposit arrives at signing and is returned at the end of the initial term
(neither is free cash flow when the contract restricts it: ``security_deposit_restricted``).
"""

from __future__ import annotations

from dataclasses import dataclass

from finmodel.conventions import HOURS_PER_DAY, MONTHS_PER_YEAR
from finmodel.engine.expr import (
    Expr,
    ExprLike,
    sum_of,
    PathInput,
    eq,
    floor,
    maximum,
    minimum,
    months_between,
    time,
    where,
    wrap,
)
from finmodel.engine.graph import Line, Model, Scalar
from finmodel.inputs.schema import Assumptions
from finmodel.models.common import escalated, inp

SHEET = "Hosting"


@dataclass(frozen=True)
class Hall:
    """The converted data hall of a strategy: its size, timing and load."""

    ai_mw: Scalar
    start_index: Scalar
    commencement: Scalar
    lease_month: Line
    in_service_mw: Line
    energy: Line


@dataclass(frozen=True)
class Hosting:
    """What a strategy's AI hall earns and costs, whatever the product."""

    hall: Hall
    revenue: Line
    opex: Line
    capex: list[Line]
    other_cash: list[Line]

    @property
    def ai_mw(self) -> Scalar:
        return self.hall.ai_mw

    @property
    def start_index(self) -> Scalar:
        return self.hall.start_index

    @property
    def in_service_mw(self) -> Line:
        return self.hall.in_service_mw

    @property
    def energy(self) -> Line:
        return self.hall.energy


def phase(k: int, name: str) -> Expr:
    """Value of a per-phase input list for phase ``k`` (1-based), by its defined name."""
    return PathInput(f"hosting_{name}", wrap(k))


def phase_chain(m: Model, name: str, pick, n: int, label: str,
                field: str = "phase_ready_months", unit: str = "months") -> Expr:
    """The smallest (``pick=minimum``) or largest (``maximum``) of a per-phase input over
    ``n`` phases, as a chain of values, one per phase after the first (phases 1 to k), so
    that no formula grows with the number of phases. Returns the last link (phase 1's
    input itself when there is one phase)."""
    acc: Expr = phase(1, field)
    for k in range(2, n + 1):
        acc = m.scalar(f"{name}_to_phase_{k}", pick(acc, phase(k, field)),
                       f"{label}, phases 1 to {k}", unit, SHEET)
    return acc


def build_hall(m: Model, a: Assumptions, strategy: str) -> Hall:
    """The converted MW of a strategy, phase by phase, and the energy they draw."""
    s, p = strategy, f"{strategy}.hosting"
    spec = a.strategies[s]
    h = a.hosting
    phases = range(1, len(h.phase_it_shares) + 1)
    sec = f"{s}: conversion and ramp"

    if spec.ai_it_mw is not None:
        ai_expr: Expr = inp(f"strategies.{s}.ai_it_mw")
    else:  # 'ai_hosting' without a stated MW: everything the interconnect can feed
        ai_expr = inp("site.interconnect_mw") / inp("hosting.pue")
    ai_mw = m.scalar(f"{p}.ai_it_mw", ai_expr, "Critical IT MW converted", "MW", SHEET)
    start = m.scalar(f"{p}.conversion_start_index",
                     months_between(inp("case.start_month"),
                                    inp(f"strategies.{s}.conversion_start_month")),
                     "Conversion start (months after model start)", "months", SHEET)
    first_ready = phase_chain(m, f"{p}.first_ready_months", minimum, len(phases),
                              "Earliest phase readiness (months after conversion start)")
    commence_expr = start + first_ready
    if h.rent_start_month is not None and spec.product == "lease":
        commence_expr = maximum(commence_expr, months_between(inp("case.start_month"),
                                                              inp("hosting.rent_start_month")))
    commence = m.scalar(f"{p}.commencement_index", commence_expr,
                        "Commencement (months after model start)", "months", SHEET)
    since_start = m.line(f"{p}.months_since_start", time("index") - start,
                         "Months since conversion start", "months", SHEET, agg="none",
                         section=sec)
    # One row per phase (any number of phases, no formula growing with their count).
    ready = [m.line(f"{p}.phase_{k}_ready_share",
                    where(since_start >= phase(k, "phase_ready_months"),
                          phase(k, "phase_it_shares"), 0),
                    f"Phase {k}: share of the converted IT ready", "share", SHEET,
                    agg="last", section=sec) for k in phases]
    ready_mw = m.line(f"{p}.ready_mw", sum_of(ready) * ai_mw, "Critical IT ready for service",
                      "MW", SHEET, agg="last", section=sec)
    lease_month = m.line(f"{p}.lease_month", time("index") - commence,
                         "Months since commencement", "months", SHEET, agg="none",
                         section=sec)
    in_service = m.line(f"{p}.in_service_mw", where(lease_month >= 0, ready_mw, 0),
                        "Critical IT in service", "MW", SHEET, agg="last", section=sec)
    energy = m.line(f"{p}.energy_mwh",
                    in_service * inp("hosting.it_load_factor") * time("days") * HOURS_PER_DAY
                    * inp("hosting.pue"),
                    "Grid energy drawn by the AI load", "MWh", SHEET, section=sec)
    return Hall(ai_mw, start, commence, lease_month, in_service, energy)


def build_hosting(m: Model, a: Assumptions, strategy: str) -> Hosting:
    """The lease of a converting strategy: rent, credit, prepayment, deposit, opex."""
    s, p = strategy, f"{strategy}.hosting"
    h = a.hosting
    hall = build_hall(m, a, s)
    ai_mw, start, lease_month, in_service = (hall.ai_mw, hall.start_index, hall.lease_month,
                                             hall.in_service_mw)
    phases = range(1, len(h.phase_it_shares) + 1)
    term = inp("hosting.term_years") * MONTHS_PER_YEAR
    renewal_months = inp("hosting.renewal_term_years") * MONTHS_PER_YEAR
    esc = inp("hosting.lease_escalator_rate")
    own = h.phase_terms == "own"
    rate0 = inp("hosting.lease_rate_usd_per_kw_month")

    sec = f"{s}: rent, phase by phase"
    terms, renewals, rents, tcvs = [], [], [], []
    for k in phases:
        # Phase k commences when it is ready (never before the lease's commencement).
        c_k = maximum(start + phase(k, "phase_ready_months"), hall.commencement)
        lm = m.line(f"{p}.phase_{k}_lease_month", time("index") - c_k,
                    f"Months since phase {k} commenced", "months", SHEET, agg="none",
                    section=sec)
        # 'own': each phase's initial term runs from its own commencement, and so does its
        # escalator; 'coterminous': every phase ends with the first phase's term.
        clock = lm if own else lease_month
        mw_k = phase(k, "phase_it_shares") * ai_mw
        in_t = m.line(f"{p}.phase_{k}_in_initial_term",
                      where((lm >= 0) & (clock < term), 1, 0),
                      f"Phase {k} in its initial term", "flag", SHEET, section=sec)
        in_r = m.line(f"{p}.phase_{k}_in_renewal",
                      where((lm >= 0) & (clock >= term) & (clock < term + renewal_months), 1,
                            0),
                      f"Phase {k} in the renewal", "flag", SHEET, section=sec)
        rate_k = (rate0 * (1 + esc) ** floor(maximum(clock, 0) / MONTHS_PER_YEAR)
                  * where(in_r > 0, inp("hosting.renewal_rate_reset_share"), 1))
        rents.append(m.line(f"{p}.phase_{k}_contracted_rent_usd",
                            mw_k * 1000 * rate_k
                            * (in_t + in_r * inp("hosting.renewal_probability")),
                            f"Phase {k} contracted rent", "USD", SHEET, section=sec))
        # The phase's share of the MW in each: a row per phase, so that the hall's shares
        # below are plain sums whatever the number of phases.
        terms.append(m.line(f"{p}.phase_{k}_initial_term_share",
                            in_t * phase(k, "phase_it_shares"),
                            f"Phase {k}: share of the MW in its initial term", "share",
                            SHEET, agg="none", section=sec))
        renewals.append(m.line(f"{p}.phase_{k}_renewal_share",
                               in_r * phase(k, "phase_it_shares"),
                               f"Phase {k}: share of the MW in the renewal", "share", SHEET,
                               agg="none", section=sec))
        skipped = 0 if own else c_k - hall.commencement  # months a late phase misses
        tcvs.append(m.scalar(f"{p}.phase_{k}_contract_value_usd",
                             mw_k * 1000 * rate0 * (_months_escalated(esc, term)
                                                    - _months_escalated(esc, skipped)),
                             f"Phase {k}: contract value of its initial term", "USD", SHEET))
    # Per the contract: every phase's initial-term rent, however long the model runs.
    tcv = m.scalar(f"{p}.contract_value_usd", sum_of(tcvs),
                   "Contract value of the initial term (every phase, per the contract)",
                   "USD", SHEET)

    sec = f"{s}: rent"
    ready_share = in_service / ai_mw
    in_term = m.line(f"{p}.in_initial_term",
                     where(in_service > 0, sum_of(terms) / maximum(ready_share, 1e-12), 0),
                     "Share of the MW in service that is in its initial term", "share",
                     SHEET, agg="none", section=sec)
    m.line(f"{p}.in_renewal",
           where(in_service > 0, sum_of(renewals) / maximum(ready_share, 1e-12), 0),
           "Share of the MW in service that is in the renewal", "share", SHEET, agg="none",
           section=sec)
    contracted = m.line(f"{p}.contracted_rent_usd", sum_of(rents),
                        "Contracted rent (renewal probability-weighted)", "USD", SHEET,
                        section=sec)
    survive = 1 - inp("hosting.loss_given_default_share") * (
        1 - (1 - inp("hosting.tenant_default_probability_rate"))
        ** (maximum(lease_month, 0) / MONTHS_PER_YEAR))
    if h.default_month is not None:
        default_at = months_between(inp("case.start_month"), inp("hosting.default_month"))
        survive = where(time("index") >= default_at,
                        1 - inp("hosting.loss_given_default_share"), survive)
    credit_loss = m.line(f"{p}.credit_loss_usd", -contracted * (1 - survive),
                         "Expected credit loss (tenant default)", "USD", SHEET, section=sec)
    sla = m.line(f"{p}.sla_credits_usd",
                 -(contracted + credit_loss) * inp("hosting.sla_credit_share"),
                 "SLA credits", "USD", SHEET, section=sec)
    rent = m.line(f"{p}.rent_usd", contracted + credit_loss + sla, "Rent revenue", "USD",
                  SHEET, section=sec)

    sec = f"{s}: prepayment and deposit"
    signing = eq(time("index"), start)
    prepay = m.line(f"{p}.prepayment_usd",
                    where(signing, inp("hosting.prepayment_share") * tcv, 0),
                    "Prepayment received at signing", "USD", SHEET, section=sec)
    credit_from = inp("hosting.prepayment_credit_delay_months")
    credit = m.line(f"{p}.prepayment_credit_usd",
                    -where((lease_month >= credit_from)
                           & (lease_month < credit_from
                              + inp("hosting.prepayment_credit_months")),
                           inp("hosting.prepayment_share") * tcv
                           / inp("hosting.prepayment_credit_months"), 0),
                    "Prepayment credited against rent", "USD", SHEET, section=sec)
    deposit_amount = inp("hosting.security_deposit_months") * ai_mw * 1000 \
        * inp("hosting.lease_rate_usd_per_kw_month")
    # Returned when the last phase's initial term ends.
    last_end = hall.commencement + term
    if own:
        last_ready = phase_chain(m, f"{p}.last_ready_months", maximum, len(phases),
                                 "Latest phase readiness (months after conversion start)")
        last_end = maximum(last_end, start + last_ready + term)
    # A deposit still held at the horizon is owed to the tenant: settled in the last month,
    # so money the project must give back is never counted as value.
    horizon_last = inp("case.horizon_years") * MONTHS_PER_YEAR - 1
    refund = eq(time("index"), minimum(last_end, horizon_last))
    if h.default_month is not None:  # a defaulted tenant forfeits its deposit
        refund = refund & (default_at > time("index"))
    # A deposit the contract holds in escrow is restricted cash: not the project's to use,
    # so it is no free cash flow (nor a return on the conversion).
    deposit = m.line(f"{p}.deposit_usd",
                     (where(signing, deposit_amount, 0) - where(refund, deposit_amount, 0))
                     * (1 - inp("hosting.security_deposit_restricted")),
                     "Security deposit received (+) and returned (-); 0 when restricted",
                     "USD", SHEET, section=sec)

    opex = m.line(f"{p}.opex_usd",
                  -escalated(inp("hosting.opex_usd_per_mw_year") / MONTHS_PER_YEAR
                             * in_service, "hosting.opex_escalator_rate"),
                  "Hosting operating cost", "USD", SHEET, section=f"{s}: operations")
    return Hosting(hall, rent, opex, [], [prepay, credit, deposit])


def _months_escalated(rate: Expr, months: ExprLike) -> Expr:
    """Sum of (1 + rate) ** floor(j / 12) for j = 0 .. months - 1: months of rent at a
    rate that steps up once a year."""
    years = floor(wrap(months) / MONTHS_PER_YEAR)
    return (MONTHS_PER_YEAR * _annuity(rate, years)
            + (months - years * MONTHS_PER_YEAR) * (1 + rate) ** years)


def _annuity(rate: Expr, years: Expr) -> Expr:
    """Sum of (1 + rate) ** y for y = 0 .. years - 1 (``years`` when rate is 0)."""
    return where(eq(rate, 0), years, ((1 + rate) ** years - 1) / where(eq(rate, 0), 1, rate))
