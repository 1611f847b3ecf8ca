"""The Bitcoin network: blocks, the halving schedule, fees, hashrate, price, hashprice.

The subsidy follows the protocol rule exactly (Bitcoin Core ``GetBlockSubsidy``: 50 BTC in
satoshis, right-shifted once per 210,000 blocks, so fractions of a satoshi are dropped).
Halvings are not typed-in dates: block heights advance by the blocks each month produces
at the average block time, and a month that crosses an epoch boundary is split between the
old and the new subsidy.
"""

from __future__ import annotations

from dataclasses import dataclass

from finmodel.conventions import (
    HALVING_INTERVAL_BLOCKS,
    HOURS_PER_DAY,
    INITIAL_SUBSIDY_SATS,
    MONTHS_PER_YEAR,
    SATS_PER_BTC,
)
from finmodel.engine.expr import (
    Expr,
    cumulative,
    eq,
    floor,
    lag,
    maximum,
    minimum,
    time,
    where,
    wrap,
)
from finmodel.engine.graph import Line, Model, Scalar
from finmodel.inputs.schema import Assumptions
from finmodel.models.common import inp, start_growth_or_path

SHEET = "Network"


def subsidy_per_block_btc(epoch: Expr) -> Expr:
    """Block subsidy in an epoch: ``floor(50e8 / 2**epoch)`` satoshis, in BTC."""
    return floor(INITIAL_SUBSIDY_SATS / 2 ** epoch) / SATS_PER_BTC


@dataclass(frozen=True)
class Network:
    blocks: Line
    rewards_btc: Line
    hashrate_eh_s: Line
    btc_price_usd: Line
    hashprice_usd_per_ph_day: Line
    next_halving_date: Scalar


def build_network(m: Model, a: Assumptions) -> Network:
    """Add the network lines to ``m``."""
    n = a.network
    height0 = inp("network.block_height")
    minutes_per_block = inp("network.block_time_minutes")

    sec = "Blocks and issuance"
    blocks = m.line("network.blocks", time("days") * HOURS_PER_DAY * 60 / minutes_per_block,
                    "Blocks mined", "blocks", SHEET, section=sec)
    height_end = m.line("network.height_end", height0 + cumulative(blocks),
                        "Block height, end of period", "blocks", SHEET, agg="last", section=sec)
    height_start = m.line("network.height_start", lag(height_end, 1, height0),
                          "Block height, start of period", "blocks", SHEET, agg="none",
                          section=sec)
    epoch = m.line("network.epoch", floor(height_start / HALVING_INTERVAL_BLOCKS),
                   "Halving epoch at start of period", "epoch", SHEET, agg="last", section=sec)
    boundary = m.line("network.next_halving_height", (epoch + 1) * HALVING_INTERVAL_BLOCKS,
                      "Next halving height", "blocks", SHEET, agg="none", section=sec)
    m.line("network.halving_in_period", where(height_end >= boundary, 1, 0),
                     "Halving in period", "flag", SHEET, section=sec)
    before = m.line("network.blocks_before_halving",
                    minimum(height_end, boundary) - height_start,
                    "Blocks at the current subsidy", "blocks", SHEET, section=sec)
    sub_now = m.line("network.subsidy_per_block_btc", subsidy_per_block_btc(epoch),
                     "Block subsidy", "BTC/block", SHEET, agg="mean", section=sec)
    sub_next = m.line("network.next_subsidy_per_block_btc", subsidy_per_block_btc(epoch + 1),
                      "Block subsidy after the next halving", "BTC/block", SHEET, agg="none",
                      section=sec)
    subsidy = m.line("network.subsidy_btc", before * sub_now + (blocks - before) * sub_next,
                     "Subsidy issued", "BTC", SHEET, section=sec)
    if n.fee_btc_per_block is not None:
        fees_expr = blocks * inp("network.fee_btc_per_block")
    else:
        fees_expr = subsidy * inp("network.fee_share_of_subsidy")
    fees = m.line("network.fees_btc", fees_expr, "Transaction fees", "BTC", SHEET, section=sec)
    rewards = m.line("network.rewards_btc", subsidy + fees, "Total block rewards", "BTC",
                     SHEET, section=sec)

    sec = "Hashrate and price"
    price = m.line("network.btc_price_usd",
                   start_growth_or_path(n, "network", "btc_price_usd", "btc_price_drift_rate",
                                        "btc_price_path_usd"),
                   "BTC price", "USD/BTC", SHEET, agg="mean", section=sec)
    if n.hashrate_model == "endogenous":
        hashrate = m.recursive_line("network.hashrate_eh_s", "Network hashrate", "EH/s",
                                    SHEET, agg="mean", section=sec)
    else:
        hashrate = m.line("network.hashrate_eh_s",
                          start_growth_or_path(n, "network", "hashrate_eh_s",
                                               "hashrate_growth_rate", "hashrate_path_eh_s"),
                          "Network hashrate", "EH/s", SHEET, agg="mean", section=sec)
    # Hashprice: USD earned per PH/s per day by the average miner (1 EH/s = 1,000 PH/s).
    hashprice = m.line("network.hashprice_usd_per_ph_day",
                       rewards * price / time("days") / (hashrate * 1000),
                       "Hashprice", "USD/PH/day", SHEET, agg="mean", section=sec)
    if n.hashrate_model == "endogenous":
        # 1 PH/s at e J/TH draws e kW: e x 24 / 1,000 MWh a day.
        years = time("index") / MONTHS_PER_YEAR
        cost = m.line("network.reference_cash_cost_usd_per_ph_day",
                      inp("network.reference_efficiency_j_per_th")
                      * (1 - inp("network.reference_efficiency_improvement_rate")) ** years
                      * HOURS_PER_DAY / 1000 * inp("network.reference_power_price_usd_per_mwh")
                      * (1 + inp("network.reference_power_escalator_rate")) ** years,
                      "Reference fleet's cash cost (power)", "USD/PH/day", SHEET, agg="mean",
                      section=sec)
        cap = (1 + inp("network.hashrate_growth_rate")) ** (wrap(1) / MONTHS_PER_YEAR)
        # At most the growth cap; at worst half the network switches off in a month
        # (a zero BTC price must not leave a network of zero hashrate).
        step = maximum(minimum(cap, (lag(hashprice, 1, 1) / lag(cost, 1, 1))
                               ** inp("network.hashrate_adjustment_speed")), 0.5)
        m.define(hashrate, where(eq(time("index"), 0), inp("network.hashrate_eh_s"),
                                 lag(hashrate, 1, inp("network.hashrate_eh_s")) * step))

    next_height = m.scalar("network.next_halving_block",
                           (floor(height0 / HALVING_INTERVAL_BLOCKS) + 1)
                           * HALVING_INTERVAL_BLOCKS,
                           "Next halving block", "blocks", SHEET)
    next_date = m.scalar("network.next_halving_date",
                         inp("case.start_month")
                         + (next_height - height0) * minutes_per_block / (HOURS_PER_DAY * 60),
                         "Next halving (estimated from block time)", "date", SHEET)
    return Network(blocks, rewards, hashrate, price, hashprice, next_date)
