"""Assemble the site's model from the business modules, strategy by strategy."""

from __future__ import annotations

from finmodel.engine.graph import Model
from finmodel.inputs.schema import Assumptions
from finmodel.models.mining import add_mining_metrics, build_mining
from finmodel.models.network import build_network
from finmodel.models.power import build_power
from finmodel.valuation import add_cash_flow, add_valuation, monthly_discount_rate

#: Break-even BTC price: the scale on the whole BTC price path at which the strategy's NPV
#: is zero (curtailment re-optimised at every trial price), reported at the start level.
BREAKEVEN_BTC_PRICE = "breakeven_btc_price"


def build_model(a: Assumptions) -> Model:
    """The full line-by-line model of a case."""
    m = Model()
    net = build_network(m, a)
    power = build_power(m, a)
    rate = monthly_discount_rate(m)
    s = "mining"
    mining = build_mining(m, a, net, power, s)
    cf = add_cash_flow(m, s, [mining.revenue], [mining.power_cost, mining.opex],
                       [mining.capex], "Mining")
    add_valuation(m, s, cf.fcf, rate)
    add_mining_metrics(m, mining, s)
    m.scalar(f"{s}.{BREAKEVEN_BTC_PRICE}", None,
             "Break-even BTC price (start level; NPV = 0, solved)", "USD/BTC", "Summary",
             metric="breakeven_btc_price_usd", strategy=s, solved=True)
    return m
