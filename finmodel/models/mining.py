"""Bitcoin mining on the site's power: fleet, refresh cycle, curtailment, revenue, costs.

Fleet generations: generation ``g = floor(t / (12 N))`` for a refresh every ``N`` years.
Generation 0 is the fleet installed at the start; each later generation fills the site's
mining MW at the efficiency new ASICs have then, ``J/TH_0 * (1 - improvement) ** (g N)``,
bought at ``USD/TH_0 * (1 + price change) ** (t / 12)``.

Economic curtailment is decided month by month: the fleet runs when what it earns is at
least what running adds to the power bill, ``revenue(run) >= cost(E_run) - cost(0)``,
i.e. revenue per MWh >= the marginal cost of power per MWh. Under take-or-pay without a
sell-back credit the marginal cost of contracted energy is nil, with a credit it is the
credited market price.
"""

from __future__ import annotations

from dataclasses import dataclass

from finmodel.conventions import HOURS_PER_DAY, MONTHS_PER_YEAR
from finmodel.engine.expr import (
    ExprLike,
    eq,
    floor,
    lag,
    maximum,
    minimum,
    time,
    total,
    where,
    wrap,
)
from finmodel.engine.graph import Line, Model
from finmodel.inputs.schema import Assumptions
from finmodel.models.common import escalated, inp
from finmodel.models.network import Network
from finmodel.models.power import Power

SHEET = "Mining"
TH_PER_EH = 1e6


@dataclass(frozen=True)
class Mining:
    btc_mined: Line
    revenue: Line
    energy: Line
    opex: Line
    capex: Line
    running_ph_days: Line
    asic_sale: Line | None


def build_mining(m: Model, a: Assumptions, net: Network, power: Power, strategy: str,
                 site_mw: Line, base_mwh: ExprLike = 0.0) -> Mining:
    """Add a mining fleet on ``site_mw`` (a line: the mining IT MW, which a conversion
    reduces) to ``m``. ``base_mwh`` is the site's other load in the month (AI hosting),
    billed on the same PPA, so the fleet's marginal cost of power is measured on top of it.
    """
    s = strategy
    refresh_years = inp("mining.refresh_interval_years")
    hours = time("days") * HOURS_PER_DAY

    sec = f"{s}: fleet"
    gen = m.line(f"{s}.generation",
                 where(refresh_years > 0,
                       floor(time("index") / maximum(refresh_years * MONTHS_PER_YEAR, 1)), 0),
                 "Fleet generation", "generation", SHEET, agg="last", section=sec)
    eff = m.line(f"{s}.efficiency_j_per_th",
                 inp("mining.efficiency_j_per_th")
                 * (1 - inp("mining.efficiency_improvement_rate")) ** (gen * refresh_years),
                 "Fleet efficiency", "J/TH", SHEET, agg="mean", section=sec)
    # 1 EH/s at 1 J/TH draws 1 MW, so the site's MW buy site_mw / eff EH/s.
    installed = m.line(f"{s}.installed_hashrate_eh_s",
                       where(eq(gen, 0), inp("mining.hashrate_eh_s"), site_mw / eff),
                       "Installed hashrate", "EH/s", SHEET, agg="mean", section=sec)
    powered = m.line(f"{s}.powered_hashrate_eh_s", minimum(installed, site_mw / eff),
                     "Hashrate the site can power", "EH/s", SHEET, agg="mean", section=sec)
    it_mw = m.line(f"{s}.it_load_mw", powered * eff, "IT load when running", "MW", SHEET,
                   agg="mean", section=sec)

    sec = f"{s}: curtailment decision"
    e_run = m.line(f"{s}.energy_if_running_mwh",
                   it_mw * inp("mining.uptime") * hours * inp("power.pue"),
                   "Grid energy if running", "MWh", SHEET, section=sec)
    share = m.line(f"{s}.network_share", powered * inp("mining.uptime") / net.hashrate_eh_s,
                   "Share of network hashrate if running", "share", SHEET, agg="mean",
                   section=sec)
    btc_run = m.line(f"{s}.btc_if_running", net.rewards_btc * share
                     * (1 - inp("mining.pool_fee_rate")),
                     "BTC earned if running (after pool fee)", "BTC", SHEET, section=sec)
    rev_run = m.line(f"{s}.revenue_if_running_usd", btc_run * net.btc_price_usd,
                     "Revenue if running", "USD", SHEET, section=sec)
    cost_run = m.line(f"{s}.power_cost_if_running_usd", power.cost(wrap(base_mwh) + e_run),
                      "Site power cost if the fleet runs", "USD", SHEET, section=sec)
    cost_stop = m.line(f"{s}.power_cost_if_stopped_usd", power.cost(base_mwh),
                       "Site power cost if the fleet stops", "USD", SHEET, section=sec)
    m.line(f"{s}.revenue_per_mwh", where(e_run > 0, rev_run / e_run, 0),
           "Revenue per MWh if running", "USD/MWh", SHEET, agg="mean", section=sec)
    m.line(f"{s}.marginal_power_cost_per_mwh",
           where(e_run > 0, (cost_run - cost_stop) / e_run, 0),
           "Marginal cost of power", "USD/MWh", SHEET, agg="mean", section=sec)
    run = m.line(f"{s}.running",
                 where(inp("mining.economic_curtailment") > 0,
                       where(rev_run >= cost_run - cost_stop, 1, 0), 1),
                 "Fleet running (1) or curtailed (0)", "flag", SHEET, section=sec)

    sec = f"{s}: production and cost"
    btc = m.line(f"{s}.btc_mined", btc_run * run, "BTC mined", "BTC", SHEET, section=sec)
    ph_days = m.line(f"{s}.running_ph_days",
                     powered * inp("mining.uptime") * 1000 * time("days") * run,
                     "Hashrate delivered", "PH/s-days", SHEET, section=sec)
    energy = m.line(f"{s}.energy_mwh", e_run * run, "Grid energy drawn", "MWh", SHEET,
                    section=sec)
    revenue = m.line(f"{s}.revenue_usd", btc * net.btc_price_usd, "Mining revenue", "USD",
                     SHEET, section=sec)
    opex = m.line(f"{s}.opex_usd",
                  -escalated(inp("mining.opex_usd_per_mw_month") * site_mw,
                             "mining.opex_escalator_rate"),
                  "Mining operating cost", "USD", SHEET, section=sec)

    sec = f"{s}: capital expenditure"
    first = eq(time("index"), 0)
    initial = m.line(f"{s}.initial_capex_usd",
                     -where(first, inp("mining.hashrate_eh_s") * TH_PER_EH
                            * inp("mining.purchase_price_usd_per_th")
                            + inp("mining.infrastructure_capex_usd_per_mw") * site_mw, 0),
                     "Initial fleet and infrastructure", "USD", SHEET, section=sec)
    refresh = m.line(f"{s}.refresh_capex_usd",
                     -where(gen > lag(gen, 1, 0),
                            installed * TH_PER_EH
                            * escalated(inp("mining.refresh_price_usd_per_th"),
                                        "mining.asic_price_change_rate"), 0),
                     "Fleet refresh", "USD", SHEET, section=sec)
    capex = m.line(f"{s}.capex_usd", initial + refresh, "Mining capex", "USD", SHEET,
                   section=sec)
    sale = None
    if a.conversion is not None and a.strategies[s].kind != "mining":
        # When a conversion takes MW away, the ASICs they powered are sold.
        sale = m.line(f"{s}.asic_sale_usd",
                      where(site_mw < lag(site_mw, 1, site_mw),
                            maximum(lag(powered, 1, powered) - powered, 0) * TH_PER_EH
                            * inp("conversion.asic_sale_price_usd_per_th"), 0),
                      "Sale of displaced ASICs", "USD", SHEET, section=sec)
    return Mining(btc, revenue, energy, opex, capex, ph_days, sale)


def add_mining_metrics(m: Model, mining: Mining, power_cost: Line,
                       strategy: str = "mining") -> None:
    """Mining's own headline figures: BTC mined, hashcost, cost per BTC. ``power_cost`` is
    the part of the site's power bill that falls on mining (signed)."""
    s = strategy
    btc = m.scalar(f"{s}.btc_mined_total", total(mining.btc_mined),
                   "BTC mined over the horizon", "BTC", "Summary", metric="btc_mined",
                   strategy=s)
    ph_days = m.scalar(f"{s}.ph_days_total", total(mining.running_ph_days),
                       "Hashrate delivered over the horizon", "PH/s-days", SHEET)
    cash = m.scalar(f"{s}.cash_costs_total",
                    -(total(power_cost) + total(mining.opex)),
                    "Power and opex over the horizon", "USD", SHEET)
    all_in = m.scalar(f"{s}.all_in_costs_total", cash - total(mining.capex),
                      "Power, opex and capex over the horizon", "USD", SHEET)
    m.scalar(f"{s}.hashcost", where(ph_days > 0, cash / ph_days, 0),
             "Hashcost (power + opex per PH/s-day)", "USD/PH/day", "Summary",
             metric="hashcost_usd_per_ph_day", strategy=s)
    m.scalar(f"{s}.cash_cost_per_btc", where(btc > 0, cash / btc, 0),
             "Cash cost per BTC mined (power + opex)", "USD/BTC", "Summary",
             metric="cash_cost_per_btc_usd", strategy=s)
    m.scalar(f"{s}.all_in_cost_per_btc", where(btc > 0, all_in / btc, 0),
             "All-in cost per BTC mined (power + opex + capex)", "USD/BTC", "Summary",
             metric="all_in_cost_per_btc_usd", strategy=s)
