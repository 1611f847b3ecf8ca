"""Assemble the site's model from the business modules, strategy by strategy.

Every strategy shares the network, the interconnect and the PPA. A converting strategy
mines on all its MW until its conversion starts; then the converted MW stop mining (their
ASICs are sold), construction draws capex, and each phase of the AI lease starts paying
rent when it is ready. The site's power bill is computed once per strategy on the sum of
the mining and AI loads, and split between them by energy drawn.
"""

from __future__ import annotations

from finmodel.engine.expr import (
    Expr,
    eq,
    irr,
    maximum,
    minimum,
    npv,
    or_not_available,
    sum_of,
    time,
    total,
    where,
    wrap,
)
from finmodel.conventions import MONTHS_PER_YEAR
from finmodel.engine.graph import Line
from finmodel.engine.graph import Model
from finmodel.inputs.schema import Assumptions, StrategySpec
from finmodel.financing.cash import build_cash_account
from finmodel.financing.debt import build_debt
from finmodel.financing.notes import Note, build_note
from finmodel.models.capex import CATEGORIES, build_conversion
from finmodel.models.checks import add_checks
from finmodel.models.tax import build_tax
from finmodel.models.cloud import build_cloud
from finmodel.models.common import inp
from finmodel.models.hosting import build_hosting
from finmodel.models.mining import add_mining_metrics, build_mining
from finmodel.models.network import Network, build_network
from finmodel.models.power import Power, build_power
from finmodel.valuation import (
    add_cash_flow,
    add_return_metrics,
    add_valuation,
    monthly_discount_rate,
)

#: Steps of the NPV bridge from mining: each strategy's free cash flow split into these
#: groups (they add up to it); a step is the NPV of the group less mining's.
BRIDGE = {
    "mining_margin": "Mining margin (revenue less its power and opex)",
    "power_credits": "Sell-back credits",
    "mining_capex": "Mining capex",
    "asic_sale": "ASIC sales",
    "hall_revenue": "Lease or cloud revenue (with power passed through)",
    "hall_opex": "Site and hall opex (AI power, opex, sustaining capex)",
    "conversion_capex": "Conversion capex (and GPUs)",
    "tenant_financing": "Tenant financing (prepayment, credits, deposit)",
    "terminal_value": "Terminal value",
}
#: The bridge's steps as a reader names them (title case, acronyms kept): metric labels,
#: the CLI summary and the waterfall's bars.
BRIDGE_TITLES = {
    "mining_margin": "Mining Margin", "power_credits": "Sell-Back Credits",
    "mining_capex": "Mining Capex", "asic_sale": "ASIC Sales",
    "hall_revenue": "Lease or Cloud Revenue", "hall_opex": "Site and Hall Opex",
    "conversion_capex": "Conversion Capex and GPUs", "tenant_financing": "Tenant Financing",
    "terminal_value": "Terminal Value",
}

#: Solved metrics: written as values, computed by root-finding on the whole model.
BREAKEVEN_BTC_PRICE = "breakeven_btc_price"
#: Break-evens that solve one input for "this strategy's NPV = mining's NPV".
INPUT_BREAKEVENS = {
    "breakeven_lease_rate": "hosting_lease_rate_usd_per_kw_month",
    "breakeven_gpu_hour_price": "cloud_price_usd_per_gpu_hour",
}


def _converts(product: str | None = None):
    return lambda spec: spec.kind != "mining" and product in (None, spec.product)


SOLVED = {
    # name suffix: (metric key, label, unit, which strategies have it)
    BREAKEVEN_BTC_PRICE: ("breakeven_btc_price_usd",
                          "Break-even BTC price (start level; NPV = 0, solved)", "USD/BTC",
                          lambda spec: spec.kind == "mining"),
    "breakeven_lease_rate": ("breakeven_lease_rate_usd_per_kw_month",
                             "Lease rate at which converting matches mining (solved)",
                             "USD/kW-month", _converts("lease")),
    "breakeven_gpu_hour_price": ("breakeven_gpu_hour_price_usd",
                                 "GPU-hour price at which converting matches mining "
                                 "(solved)", "USD/GPU-hour", _converts("cloud")),
    "btc_price_mining_matches": ("btc_price_mining_matches_usd",
                                 "BTC price (start level) at which mining matches this "
                                 "strategy (solved)", "USD/BTC", _converts()),
    "breakeven_capex": ("breakeven_capex_usd_per_mw",
                        "Conversion capex per MW at which converting stops paying (solved)",
                        "USD/MW", _converts()),
}


def build_model(a: Assumptions) -> Model:
    """The full line-by-line model of a case: every strategy it lists."""
    m = Model()
    net = build_network(m, a)
    power = build_power(m, a)
    rate = monthly_discount_rate(m)
    note = None
    if a.financing is not None and a.financing.convertible is not None:
        note = build_note(m, a)
    for name, spec in a.strategies.items():
        _build_strategy(m, a, name, spec, net, power, rate, note)
    for name, spec in a.strategies.items():
        if spec.kind != "mining":
            m.scalar(f"{name}.npv_vs_mining", m.nodes[f"{name}.npv"] - m.nodes["mining.npv"],
                     "NPV minus mining's NPV (the value of converting)", "USD", "Summary",
                     metric="npv_vs_mining_usd", strategy=name)
            # The return of converting: the IRR of this strategy's flows less mining's.
            inc = m.line(f"{name}.incremental_fcf_usd",
                         m.nodes[f"{name}.unlevered_fcf_usd"]
                         - m.nodes["mining.unlevered_fcf_usd"],
                         "Free cash flow less mining's (the conversion's own flows)", "USD",
                         "Cash Flow", section=f"{name}: return of converting")
            sec = f"{name}: return of converting"
            inc_in = m.line(f"{name}.incremental_cash_in_usd", maximum(inc, 0),
                            "Incremental cash in", "USD", "Cash Flow", section=sec)
            inc_out = m.line(f"{name}.incremental_cash_out_usd", minimum(inc, 0),
                             "Incremental cash out", "USD", "Cash Flow", section=sec)
            add_return_metrics(m, name, "incremental", inc, rate, inc_in, inc_out,
                               "Incremental IRR vs mining (the return of converting)")
            for key, label in BRIDGE_TITLES.items():
                m.scalar(f"{name}.bridge_{key}",
                         npv(rate, m.nodes[f"{name}.bridge.{key}_usd"])
                         - npv(rate, m.nodes[f"mining.bridge.{key}_usd"]),
                         f"NPV bridge from mining: {label}", "USD", "Summary",
                         metric=f"bridge_{key}_usd", strategy=name)
        for suffix, (metric, label, unit, applies) in SOLVED.items():
            if applies(spec):
                m.scalar(f"{name}.{suffix}", None, label, unit, "Summary", metric=metric,
                         strategy=name, solved=True)
    add_checks(m, a)
    return m


def _build_strategy(m: Model, a: Assumptions, s: str, spec: StrategySpec, net: Network,
                    power: Power, rate, note: Note | None) -> None:
    site_mining = inp("site.mining_it_mw")
    host = conv = None
    bought: Expr = wrap(1.0)
    if spec.kind == "mining":
        mining_mw = m.line(f"{s}.mining_it_mw", site_mining, "Mining IT load available",
                           "MW", "Mining", agg="mean", section=f"{s}: fleet")
    else:
        host = (build_cloud if spec.product == "cloud" else build_hosting)(m, a, s)
        conv = build_conversion(m, a, s, host)
        after = _mining_mw_after(a, s, spec, host.ai_mw)
        # The fleet keeps mining until its MW are converted: each phase's MW stop mining
        # when the phase enters service.
        mining_mw = m.line(f"{s}.mining_it_mw",
                           site_mining - (site_mining - after) * host.in_service_mw
                           / host.ai_mw,
                           "Mining IT load available (until each phase is converted)", "MW",
                           "Mining", agg="mean", section=f"{s}: fleet")
        # A greenfield strategy buys machines only for MW that mine for at least a year.
        bought = m.scalar(f"{s}.greenfield_fleet_share",
                          where(host.hall.commencement >= MONTHS_PER_YEAR, 1,
                                after / site_mining),
                          "Share of a greenfield fleet bought (MW that mine a year or more)",
                          "share", "Mining")
    mining = build_mining(m, a, net, power, s, mining_mw,
                          host.energy if host is not None else 0.0, bought)

    sec = f"{s}: site power bill"
    energy = mining.energy + host.energy if host is not None else mining.energy
    site_mwh = m.line(f"{s}.site_energy_mwh", energy, "Site grid energy", "MWh", "Power",
                      section=sec)
    # Paid-for energy sold back is revenue, not a negative cost.
    credit = m.line(f"{s}.curtailment_credit_usd", power.credit(site_mwh),
                    "Sell-back credit (paid-for energy sold back)", "USD", "Power",
                    section=sec)
    bill = m.line(f"{s}.power_cost_usd", -power.cost(site_mwh) - credit,
                  "Power cost (before sell-back credits)", "USD", "Power", section=sec)
    mining_bill = m.line(f"{s}.mining_power_cost_usd",
                         bill * where(site_mwh > 0, mining.energy / site_mwh, 1),
                         "Power cost falling on mining (by energy share)", "USD", "Power",
                         section=sec)
    revenue, costs = [mining.revenue, credit], [bill, mining.opex]
    capex, other = [mining.capex], []
    if mining.asic_sale is not None:
        other.append(mining.asic_sale)
    hall_flows: list[Line] = []
    groups: dict[str, list[Line]] = {
        "mining_margin": [mining.revenue, mining_bill, mining.opex],
        "power_credits": [credit], "mining_capex": [mining.capex],
        "asic_sale": [mining.asic_sale] if mining.asic_sale is not None else []}
    if host is not None:
        hosting_bill = m.line(f"{s}.hosting.power_cost_usd", bill - mining_bill,
                              "Power cost falling on the AI load", "USD", "Power", section=sec)
        revenue += [host.revenue]
        hall_flows = [host.revenue, hosting_bill, host.opex, conv.sustaining]
        if spec.product == "lease":
            recovery = m.line(f"{s}.hosting.power_recovery_usd",
                              -hosting_bill * (1 + inp("hosting.pass_through_margin_share"))
                              * inp("hosting.power_pass_through"),
                              "Power passed through to the tenant", "USD", "Hosting",
                              section=f"{s}: operations")
            revenue += [recovery]
            hall_flows += [recovery]
        costs += [host.opex]
        capex += [conv.capex, conv.sustaining, *host.capex]
        other += list(host.other_cash)
        residual = [x for x in host.other_cash if x.name.endswith("gpu_residual_usd")]
        groups |= {"hall_revenue": [x for x in revenue if x.name.startswith(f"{s}.hosting")
                                    or x is host.revenue],
                   "hall_opex": [hosting_bill, host.opex, conv.sustaining],
                   "conversion_capex": [conv.capex, *host.capex],
                   "tenant_financing": [x for x in host.other_cash if x not in residual],
                   "terminal_value": residual}
    lease = host is not None and spec.product == "lease"
    cf = add_cash_flow(m, a, s, revenue, costs, capex, other,
                       rent=host.revenue if lease else None,
                       ai_mw=host.ai_mw if host is not None else None)
    tv = m.nodes.get(f"{s}.terminal_value_usd")
    if tv is not None:
        groups.setdefault("terminal_value", []).append(tv)
    for key in BRIDGE:
        m.line(f"{s}.bridge.{key}_usd", sum_of(groups.get(key, [])), BRIDGE[key], "USD",
               "Cash Flow", section=f"{s}: NPV bridge groups")
    add_valuation(m, s, cf, rate)
    add_mining_metrics(m, mining, mining_bill, s)
    if a.tax is not None or a.financing is not None:
        _add_equity(m, a, s, spec, cf, mining, host, conv, note, hall_flows)


def _add_equity(m: Model, a: Assumptions, s: str, spec: StrategySpec, cf, mining, host, conv,
                note: Note | None, hall_flows: list[Line]) -> None:
    """Project debt and the convertible (converting strategies), tax, and what is left for
    shareholders: equity cash flow, its NPV and IRR, and value per share."""
    interest: list[Line] = []
    levered: list[Line] = [cf.fcf]
    debt = None
    if spec.kind != "mining" and a.financing is not None:
        if a.financing.debt is not None:
            cfads = m.line(f"{s}.debt.cfads_usd", sum_of(hall_flows),
                           "Cash flow available for debt service (the AI hall's)", "USD",
                           "Financing", section=f"{s}: project debt")
            debt = build_debt(m, a, s, cfads, host.hall.commencement, -total(conv.capex))
            interest.append(debt.interest)
            levered.append(debt.cash_to_equity)
        if note is not None:
            interest.append(note.coupons)
            levered.append(note.cash)
    if spec.kind != "mining" and a.financing is not None:
        _sources_and_uses(m, a, s, conv, host, debt if a.financing.debt else None, note)
    if a.tax is not None:
        # An owned fleet's remaining tax book value is depreciated from the start.
        mining_placed = m.line(f"{s}.tax.mining_placed_usd",
                               -mining.capex + where(eq(time("index"), 0)
                                                     & (inp("mining.fleet_owned") > 0),
                                                     inp("mining.fleet_book_value_usd"), 0),
                               "Mining assets placed in service", "USD", "Tax",
                               section=f"{s}: tax depreciation")
        classes = [("Mining assets", mining_placed, "tax.mining_asset_life_years")]
        if conv is not None:
            classes += [(cat.replace("_", "-").capitalize(), conv.placed[cat],
                         f"conversion.{cat}_life_years") for cat in CATEGORIES]
            sustaining = m.line(f"{s}.tax.sustaining_placed_usd", -conv.sustaining,
                                "Sustaining capex placed in service", "USD", "Tax",
                                section=f"{s}: tax depreciation")
            classes.append(("Sustaining", sustaining, "conversion.electrical_life_years"))
            for i, gpu in enumerate(host.capex):
                placed = m.line(f"{s}.tax.gpu_placed_{i}_usd", -gpu, "GPUs placed in service",
                                "USD", "Tax", section=f"{s}: tax depreciation")
                classes.append((f"GPUs {i + 1}", placed, "tax.gpu_life_years"))
        tax = build_tax(m, a, s, cf.ebitda, classes, interest)
        levered.append(tax.tax)
    equity = m.line(f"{s}.equity_cf_usd", sum_of(levered), "Cash flow to equity (after tax)",
                    "USD", "Cash Flow", section=f"{s}: equity")
    if a.financing is not None:
        build_cash_account(m, a, s, equity)
    if a.financing is not None:
        coe = m.nodes.get("financing.monthly_cost_of_equity") or m.scalar(
            "financing.monthly_cost_of_equity",
            (1 + inp("financing.cost_of_equity_rate")) ** (wrap(1) / MONTHS_PER_YEAR) - 1,
            "Cost of equity, monthly", "rate", "Cash Flow")
    else:
        coe = m.nodes["valuation.monthly_discount_rate"]
    kw = dict(sheet="Summary", strategy=s)
    value = m.scalar(f"{s}.equity_npv", npv(coe, equity), "Equity NPV (after tax)", "USD",
                     metric="equity_npv_usd", **kw)
    eq_in = m.line(f"{s}.equity_cash_in_usd", maximum(equity, 0), "Equity cash in", "USD",
                   "Cash Flow", section=f"{s}: equity")
    eq_out = m.line(f"{s}.equity_cash_out_usd", minimum(equity, 0), "Equity cash out", "USD",
                    "Cash Flow", section=f"{s}: equity")
    add_return_metrics(m, s, "equity", equity, coe, eq_in, eq_out, "Equity IRR (after tax)")
    if a.financing is not None:
        shares = inp("financing.shares_outstanding")
        m.scalar(f"{s}.value_per_share", value / shares, "Equity NPV per share, before "
                 "dilution", "USD/share", metric="value_per_share_usd", **kw)
        dilution = m.nodes["convertible.net_shares_total"] if (
            note is not None and spec.kind != "mining") else wrap(0.0)
        m.scalar(f"{s}.value_per_share_diluted", value / (shares + dilution),
                 "Equity NPV per share, after the convertible's dilution", "USD/share",
                 metric="value_per_share_diluted_usd", **kw)


def _sources_and_uses(m: Model, a: Assumptions, s: str, conv, host, debt,
                      note: Note | None) -> None:
    """How the conversion is paid for: uses, then sources with equity as the balance."""
    sheet, p = "Financing", f"{s}.sources_uses"
    uses = m.scalar(f"{p}.uses_usd", -total(conv.capex), "Uses: conversion capex", "USD",
                    sheet)
    sources: list[Expr] = []
    prepay = next((x for x in host.other_cash if x.name.endswith("prepayment_usd")), None)
    if prepay is not None:
        sources.append(m.scalar(f"{p}.prepayment_usd", total(prepay),
                                "Sources: customer prepayment", "USD", sheet))
    if debt is not None:
        sources.append(m.scalar(f"{p}.debt_usd", debt.amount, "Sources: project debt", "USD",
                                sheet))
    if note is not None:
        sources.append(m.scalar(f"{p}.convertible_usd",
                                total(m.nodes["convertible.net_proceeds_usd"]),
                                "Sources: convertible, net proceeds", "USD", sheet))
    rest: Expr = wrap(uses)
    for x in sources:
        rest = rest - x
    m.scalar(f"{p}.equity_usd", rest, "Sources: cash and equity (the balance; negative: "
             "more raised than spent)", "USD", sheet)


def _mining_mw_after(a: Assumptions, s: str, spec: StrategySpec, ai_mw) -> Expr:
    """Mining IT MW left after the conversion, as a live formula of the inputs."""
    if spec.kind == "ai_hosting":
        return wrap(0.0)
    if spec.mining_it_mw is not None:
        return minimum(inp(f"strategies.{s}.mining_it_mw"), inp("site.mining_it_mw"))
    spare = (inp("site.interconnect_mw") - ai_mw * inp("hosting.pue")) / inp("power.pue")
    return maximum(0, minimum(inp("site.mining_it_mw"), spare))
