"""Assemble the site's model from the business modules, strategy by strategy.

Every strategy shares the network, the interconnect and the PPA. A converting strategy
mines on all its MW until its conversion starts; then the converted MW stop mining (their
ASICs are sold), construction draws capex, and each phase of the AI lease starts paying
rent when it is ready. The site's power bill is computed once per strategy on the sum of
the mining and AI loads, and split between them by energy drawn.
"""

from __future__ import annotations

from finmodel.engine.expr import Expr, maximum, minimum, time, where, wrap
from finmodel.engine.graph import Model
from finmodel.inputs.schema import Assumptions, StrategySpec
from finmodel.models.capex import build_conversion
from finmodel.models.cloud import build_cloud
from finmodel.models.common import inp
from finmodel.models.hosting import build_hosting
from finmodel.models.mining import add_mining_metrics, build_mining
from finmodel.models.network import Network, build_network
from finmodel.models.power import Power, build_power
from finmodel.valuation import add_cash_flow, add_valuation, monthly_discount_rate

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
    for name, spec in a.strategies.items():
        _build_strategy(m, a, name, spec, net, power, rate)
    for name, spec in a.strategies.items():
        if spec.kind != "mining":
            m.scalar(f"{name}.npv_vs_mining", m.nodes[f"{name}.npv"] - m.nodes["mining.npv"],
                     "NPV minus mining's NPV (the value of converting)", "USD", "Summary",
                     metric="npv_vs_mining_usd", strategy=name)
        for suffix, (metric, label, unit, applies) in SOLVED.items():
            if applies(spec):
                m.scalar(f"{name}.{suffix}", None, label, unit, "Summary", metric=metric,
                         strategy=name, solved=True)
    return m


def _build_strategy(m: Model, a: Assumptions, s: str, spec: StrategySpec, net: Network,
                    power: Power, rate) -> None:
    site_mining = inp("site.mining_it_mw")
    host = conv = None
    if spec.kind == "mining":
        mining_mw = m.line(f"{s}.mining_it_mw", site_mining, "Mining IT load available",
                           "MW", "Mining", agg="mean", section=f"{s}: fleet")
    else:
        host = (build_cloud if spec.product == "cloud" else build_hosting)(m, a, s)
        conv = build_conversion(m, a, s, host)
        after = _mining_mw_after(a, s, spec, host.ai_mw)
        mining_mw = m.line(f"{s}.mining_it_mw",
                           where(time("index") >= host.start_index, after, site_mining),
                           "Mining IT load available", "MW", "Mining", agg="mean",
                           section=f"{s}: fleet")
    mining = build_mining(m, a, net, power, s, mining_mw,
                          host.energy if host is not None else 0.0)

    sec = f"{s}: site power bill"
    energy = mining.energy + host.energy if host is not None else mining.energy
    site_mwh = m.line(f"{s}.site_energy_mwh", energy, "Site grid energy", "MWh", "Power",
                      section=sec)
    m.line(f"{s}.curtailment_credit_usd", power.credit(site_mwh),
           "Curtailment credit (paid-for energy sold back)", "USD", "Power", section=sec)
    bill = m.line(f"{s}.power_cost_usd", -power.cost(site_mwh), "Power cost, net of credits",
                  "USD", "Power", section=sec)
    mining_bill = m.line(f"{s}.mining_power_cost_usd",
                         bill * where(site_mwh > 0, mining.energy / site_mwh, 1),
                         "Power cost falling on mining (by energy share)", "USD", "Power",
                         section=sec)
    revenue, costs = [mining.revenue], [bill, mining.opex]
    capex, other = [mining.capex], []
    if host is not None:
        hosting_bill = m.line(f"{s}.hosting.power_cost_usd", bill - mining_bill,
                              "Power cost falling on the AI load", "USD", "Power", section=sec)
        revenue += [host.revenue]
        if spec.product == "lease":
            revenue += [m.line(f"{s}.hosting.power_recovery_usd",
                               -hosting_bill * (1 + inp("hosting.pass_through_margin_share"))
                               * inp("hosting.power_pass_through"),
                               "Power passed through to the tenant", "USD", "Hosting",
                               section=f"{s}: operations")]
        costs += [host.opex]
        capex += [conv.capex, conv.sustaining, *host.capex]
        other += [mining.asic_sale, *host.other_cash]
    cf = add_cash_flow(m, a, s, revenue, costs, capex, other)
    add_valuation(m, s, cf, rate)
    add_mining_metrics(m, mining, mining_bill, s)


def _mining_mw_after(a: Assumptions, s: str, spec: StrategySpec, ai_mw) -> Expr:
    """Mining IT MW left after the conversion, as a live formula of the inputs."""
    if spec.kind == "ai_hosting":
        return wrap(0.0)
    if spec.mining_it_mw is not None:
        return minimum(inp(f"strategies.{s}.mining_it_mw"), inp("site.mining_it_mw"))
    spare = (inp("site.interconnect_mw") - ai_mw * inp("hosting.pue")) / inp("power.pue")
    return maximum(0, minimum(inp("site.mining_it_mw"), spare))
