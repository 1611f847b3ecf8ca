"""Site power: the PPA (fixed with an escalator, or indexed to a market path plus an
adder), take-or-pay, curtailment credits, delivery charges, and the facility overhead.

The cost of drawing ``E`` MWh in a month is defined once, in :meth:`Power.cost`:

    cost(E) = ppa_price * max(min(E, contracted), min_paid)     energy under the contract
            + market_price * max(E - contracted, 0)              energy beyond it
            + charges * E                                        transmission and other
            - credit_share * market_price * max(min_paid - E, 0) paid-for energy sold back

with ``min_paid = take_or_pay_share * contracted``. It is used for the energy actually
drawn and, to decide economic curtailment, for the energy a running and a stopped fleet
would draw.
"""

from __future__ import annotations

from dataclasses import dataclass

from finmodel.conventions import HOURS_PER_DAY
from finmodel.engine.expr import Expr, ExprLike, maximum, minimum, time, where, wrap
from finmodel.engine.graph import Line, Model
from finmodel.inputs.schema import Assumptions
from finmodel.models.common import chosen, escalated, inp, start_growth_or_path

SHEET = "Power"


@dataclass(frozen=True)
class Power:
    """The site's PPA, shared by every strategy on the site."""

    ppa_price: Line
    market_price: Line
    contracted_mwh: Line
    min_paid_mwh: Line
    charges: Line

    def cost(self, energy_mwh: ExprLike) -> Expr:
        """Cost of drawing ``energy_mwh`` in a period, as a positive magnitude (USD)."""
        e = wrap(energy_mwh)
        return (self.ppa_price * maximum(minimum(e, self.contracted_mwh), self.min_paid_mwh)
                + self.market_price * maximum(e - self.contracted_mwh, 0)
                + self.charges * e
                - self.credit(e))

    def credit(self, energy_mwh: ExprLike) -> Expr:
        """Credit for paid-for energy left unused and sold back at the market price."""
        unused = maximum(self.min_paid_mwh - wrap(energy_mwh), 0)
        return inp("power.curtailment_credit_share") * self.market_price * unused


def build_power(m: Model, a: Assumptions) -> Power:
    """Add the PPA's price and volume lines to ``m``."""
    p = a.power
    sec = "Prices"
    market = m.line("power.market_price_usd_per_mwh",
                    start_growth_or_path(p, "power", "market_price_usd_per_mwh",
                                         "market_price_escalator_rate",
                                         "market_price_path_usd_per_mwh"),
                    "Market price", "USD/MWh", SHEET, agg="mean", section=sec)
    # Live choice: both prices are formulas, the pricing word picks one.
    price_expr = where(chosen("power.pricing", "fixed"),
                       escalated(inp("power.ppa_price_usd_per_mwh"), "power.ppa_escalator_rate"),
                       market + inp("power.index_adder_usd_per_mwh"))
    ppa = m.line("power.ppa_price_usd_per_mwh", price_expr, "PPA energy price", "USD/MWh",
                 SHEET, agg="mean", section=sec)
    charges = m.line("power.charges_usd_per_mwh",
                     inp("power.transmission_usd_per_mwh")
                     + inp("power.other_charges_usd_per_mwh"),
                     "Transmission and other charges", "USD/MWh", SHEET, agg="mean",
                     section=sec)
    sec = "Contract volumes"
    contracted = m.line("power.contracted_mwh",
                        inp("power.contract_mw") * time("days") * HOURS_PER_DAY,
                        "Contracted energy", "MWh", SHEET, section=sec)
    min_paid = m.line("power.min_paid_mwh", inp("power.take_or_pay_share") * contracted,
                      "Take-or-pay minimum", "MWh", SHEET, section=sec)
    return Power(ppa, market, contracted, min_paid, charges)
