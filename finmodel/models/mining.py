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
    Expr,
    ExprLike,
    PathInput,
    cumulative,
    eq,
    floor,
    lag,
    lead,
    maximum,
    minimum,
    sum_of,
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
    running: Line
    power_if_running: Line


def asic_value_per_th(a: Assumptions, eff: ExprLike) -> Expr | None:
    """Market value per TH of used ASICs of efficiency ``eff`` in each month, from the
    case's price curve (None if it gives none).

    The curve prices machines by J/TH at the start. A machine falls down it as new ones
    improve: ``eff`` in month t sits where ``eff / (1 - improvement) ** (t / 12)`` sits
    today, and the whole curve moves with the price of new ASICs per TH.
    """
    mn = a.mining
    if mn.asic_price_tiers_j_per_th is None:
        return None
    years = time("index") / MONTHS_PER_YEAR
    x = wrap(eff) / (1 - inp("mining.efficiency_improvement_rate")) ** years
    n = len(mn.asic_price_tiers_j_per_th)

    def pt(k: int) -> tuple[Expr, Expr]:
        return (PathInput("mining_asic_price_tiers_j_per_th", wrap(k)),
                PathInput("mining_asic_price_tiers_usd_per_th", wrap(k)))

    out: Expr = pt(n)[1]
    for k in range(n - 1, 0, -1):  # linear between tiers, flat beyond the ends
        (x0, y0), (x1, y1) = pt(k), pt(k + 1)
        out = where(x <= x1, y0 + (y1 - y0) * (x - x0) / (x1 - x0), out)
    out = where(x <= pt(1)[0], pt(1)[1], out)
    return out * (1 + inp("mining.asic_price_change_rate")) ** years


def build_mining(m: Model, a: Assumptions, net: Network, power: Power, strategy: str,
                 site_mw: Line, base_mwh: ExprLike = 0.0,
                 bought_share: ExprLike = 1.0) -> Mining:
    """Add a mining fleet on ``site_mw`` (a line: the mining IT MW, which a conversion
    reduces) to ``m``. ``base_mwh`` is the site's other load in the month (AI hosting),
    billed on the same PPA, so the fleet's marginal cost of power is measured on top of it.
    ``bought_share`` is the share of a greenfield starting fleet (and its infrastructure)
    the strategy buys: a strategy does not buy machines it would sell within a year.

    Decisions, per scenario and month (flag rows on the Mining sheet):

    - *refresh* at each scheduled generation only if the new fleet's margin over its life
      (revenue less the power it adds, in the months it would run, less the opex saved by
      mothballing instead), discounted at the case's rate along the model's expected
      hashprice and power cost, pays back its cost;
    - *mothball*: a fleet that will not run again for the rest of the horizon stops
      costing running opex (standby opex instead) and is sold at its market value.
    """
    s = strategy
    mn = a.mining
    refresh_years = inp("mining.refresh_interval_years")
    age_months = inp("mining.fleet_age_years") * MONTHS_PER_YEAR
    hours = time("days") * HOURS_PER_DAY
    standby = (inp("mining.standby_opex_usd_per_mw_month")
               if mn.standby_opex_usd_per_mw_month is not None
               else inp("mining.opex_usd_per_mw_month"))
    owned = inp("mining.fleet_owned")

    sec = f"{s}: refresh decision"
    gen = m.line(f"{s}.generation_due",
                 where(refresh_years > 0,
                       floor((time("index") + age_months)
                             / maximum(refresh_years * MONTHS_PER_YEAR, 1)), 0),
                 "Fleet generation due (schedule)", "generation", SHEET, agg="last",
                 section=sec)
    due = m.line(f"{s}.refresh_due", where((time("index") > 0) & (gen > lag(gen, 1, 0)), 1, 0),
                 "Refresh due (1)", "flag", SHEET, section=sec)
    cand_eff = m.line(f"{s}.new_fleet_efficiency_j_per_th",
                      inp("mining.efficiency_j_per_th")
                      * (1 - inp("mining.efficiency_improvement_rate")) ** (gen * refresh_years),
                      "Efficiency of this generation's new ASICs", "J/TH", SHEET, agg="mean",
                      section=sec)
    cand_hash = m.line(f"{s}.new_fleet_hashrate_eh_s", site_mw / cand_eff,
                       "Hashrate a new fleet would fill the MW with", "EH/s", SHEET,
                       agg="mean", section=sec)
    cand_e = cand_hash * cand_eff * inp("mining.uptime") * hours * inp("power.pue")
    cand_rev = (net.rewards_btc * cand_hash * inp("mining.uptime") / net.hashrate_eh_s
                * (1 - inp("mining.pool_fee_rate")) * net.btc_price_usd)
    cand_power = power.cost(wrap(base_mwh) + cand_e) - power.cost(base_mwh)
    opex_saved = escalated((inp("mining.opex_usd_per_mw_month") - standby) * site_mw,
                           "mining.opex_escalator_rate")
    rate = m.nodes["valuation.monthly_discount_rate"]
    disc = (1 + rate) ** -(time("index") + 1)
    cand_margin = m.line(f"{s}.new_fleet_margin_pv_usd",
                         (maximum(cand_rev - cand_power, 0) - opex_saved) * disc,
                         "New fleet's margin over mothballing, discounted to the start", "USD",
                         SHEET, section=sec)
    cum_margin = m.line(f"{s}.new_fleet_margin_pv_cum_usd", cumulative(cand_margin),
                        "Cumulative of the above", "USD", SHEET, agg="none", section=sec)
    life = maximum(refresh_years * MONTHS_PER_YEAR, 1)
    pv_life = m.line(f"{s}.new_fleet_life_margin_pv_usd",
                     lead(cum_margin, life - 1, total(cand_margin)) - lag(cum_margin, 1, 0),
                     "New fleet's margin over its life (to the horizon), PV at the start",
                     "USD", SHEET, agg="none", section=sec)
    price = m.line(f"{s}.new_asic_price_usd_per_th",
                   escalated(inp("mining.refresh_price_usd_per_th"),
                             "mining.asic_price_change_rate"),
                   "Price of new ASICs", "USD/TH", SHEET, agg="mean", section=sec)
    cost = m.line(f"{s}.new_fleet_cost_usd", cand_hash * TH_PER_EH * price,
                  "Cost of a new fleet", "USD", SHEET, agg="none", section=sec)
    refresh_flag = m.line(f"{s}.refresh", where((due > 0) & (cand_hash > 0)
                                                & (pv_life >= cost * disc), 1, 0),
                          "Refresh (1): due and pays back at the discount rate", "flag", SHEET,
                          section=sec)

    sec = f"{s}: fleet"
    eff = m.recursive_line(f"{s}.efficiency_j_per_th", "Fleet efficiency", "J/TH", SHEET,
                           agg="mean", section=sec)
    m.define(eff, where(refresh_flag > 0, cand_eff,
                        lag(eff, 1, inp("mining.efficiency_j_per_th"))))
    # A greenfield strategy buys only the machines its MW can power.
    start_hash = where(owned > 0, inp("mining.hashrate_eh_s"),
                       minimum(inp("mining.hashrate_eh_s"),
                               inp("site.mining_it_mw") / inp("mining.efficiency_j_per_th"))
                       * bought_share)
    installed = m.recursive_line(f"{s}.installed_hashrate_eh_s", "Installed hashrate", "EH/s",
                                 SHEET, agg="mean", section=sec)
    m.define(installed, where(refresh_flag > 0, cand_hash, lag(installed, 1, start_hash)))
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
                 where(e_run > 0,
                       where(inp("mining.economic_curtailment") > 0,
                             where(rev_run >= cost_run - cost_stop, 1, 0), 1), 0),
                 "Fleet running (1) or curtailed (0)", "flag", SHEET, section=sec)
    mothballed = m.line(f"{s}.mothballed",
                        where(total(run) - cumulative(run) + run > 0, 0, 1),
                        "Mothballed (1): the fleet does not run again", "flag", SHEET,
                        section=sec)

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
                  -escalated(where(mothballed > 0, standby, inp("mining.opex_usd_per_mw_month"))
                             * site_mw, "mining.opex_escalator_rate"),
                  "Mining operating cost (standby when mothballed)", "USD", SHEET,
                  section=sec)

    sec = f"{s}: capital expenditure"
    first = eq(time("index"), 0)
    initial = m.line(f"{s}.initial_capex_usd",
                     -where(first & (owned < 1),
                            (start_hash * TH_PER_EH
                             * inp("mining.purchase_price_usd_per_th")
                             + inp("mining.infrastructure_capex_usd_per_mw") * site_mw
                            * bought_share), 0),
                     "Initial fleet and infrastructure (greenfield)", "USD", SHEET,
                     section=sec)
    refresh = m.line(f"{s}.refresh_capex_usd", -where(refresh_flag > 0, cost, 0),
                     "Fleet refresh", "USD", SHEET, section=sec)
    capex = m.line(f"{s}.capex_usd", initial + refresh, "Mining capex", "USD", SHEET,
                   section=sec)
    value = asic_value_per_th(a, eff)
    sale_terms = []
    if a.conversion is not None and a.strategies[s].kind != "mining":
        # When a conversion takes MW away, the ASICs they powered are sold.
        per_th = value if value is not None else inp("conversion.asic_sale_price_usd_per_th")
        sale_terms.append(where(site_mw < lag(site_mw, 1, site_mw),
                                maximum(lag(powered, 1, powered) - powered, 0) * TH_PER_EH
                                * per_th, 0))
    if value is not None:  # a mothballed fleet is sold, once, when it stops for good
        sale_terms.append(where((mothballed > 0) & (lag(mothballed, 1, 0) < 1),
                                powered * TH_PER_EH * value, 0))
    sale = None
    if sale_terms:
        sale = m.line(f"{s}.asic_sale_usd", sum_of(sale_terms),
                      "Sale of displaced or mothballed ASICs (market value)", "USD", SHEET,
                      section=sec)
    return Mining(btc, revenue, energy, opex, capex, ph_days, sale, run, cost_run - cost_stop)


def add_mining_metrics(m: Model, mining: Mining, power_cost: Line,
                       strategy: str = "mining") -> None:
    """Mining's own headline figures: BTC mined, hashcost, cost per BTC. ``power_cost`` is
    the part of the site's power bill (before sell-back credits, which are revenue) that
    falls on mining (signed). Hashcost and cash cost per BTC count the months the fleet
    runs; the all-in cost adds mining capex only (never conversion capex)."""
    s = strategy
    btc = m.scalar(f"{s}.btc_mined_total", total(mining.btc_mined),
                   "BTC mined over the horizon", "BTC", "Summary", metric="btc_mined",
                   strategy=s)
    ph_days = m.scalar(f"{s}.ph_days_total", total(mining.running_ph_days),
                       "Hashrate delivered over the horizon", "PH/s-days", SHEET)
    # Costs of the months the fleet runs: a curtailed month produces nothing to cost.
    running_costs = m.line(f"{s}.running_cash_costs_usd",
                           -(power_cost + mining.opex) * mining.running,
                           "Power and opex in the months the fleet runs", "USD", SHEET,
                           section=f"{s}: production and cost")
    cash = m.scalar(f"{s}.cash_costs_total", total(running_costs),
                    "Power and opex over the running months", "USD", SHEET)
    all_in = m.scalar(f"{s}.all_in_costs_total", cash - total(mining.capex),
                      "Power and opex of the running months, and mining capex", "USD", SHEET)
    m.scalar(f"{s}.hashcost", where(ph_days > 0, cash / ph_days, 0),
             "Hashcost (power + opex per PH/s-day)", "USD/PH/day", "Summary",
             metric="hashcost_usd_per_ph_day", strategy=s)
    m.scalar(f"{s}.cash_cost_per_btc", where(btc > 0, cash / btc, 0),
             "Cash cost per BTC mined (power + opex)", "USD/BTC", "Summary",
             metric="cash_cost_per_btc_usd", strategy=s)
    m.scalar(f"{s}.all_in_cost_per_btc", where(btc > 0, all_in / btc, 0),
             "All-in cost per BTC mined (power + opex + capex)", "USD/BTC", "Summary",
             metric="all_in_cost_per_btc_usd", strategy=s)
