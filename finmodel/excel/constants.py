"""Named constants: every number a formula would hold other than 0, 1 and 12 gets a
defined name and a row on the Constants sheet, so formulas read ``k_hours_per_day``
rather than a typed 24."""

from __future__ import annotations

from finmodel.conventions import (
    HALVING_INTERVAL_BLOCKS,
    HOURS_PER_DAY,
    INITIAL_SUBSIDY_SATS,
    SATS_PER_BTC,
)

#: Numbers with a meaning of their own: defined name, unit, what it is.
KNOWN = {
    float(HALVING_INTERVAL_BLOCKS): ("k_blocks_per_halving", "blocks",
                                     "Blocks between halvings (Bitcoin protocol)"),
    float(INITIAL_SUBSIDY_SATS): ("k_initial_subsidy_sats", "sats",
                                  "Block subsidy of the first epoch, 50 BTC (Bitcoin protocol)"),
    float(SATS_PER_BTC): ("k_sats_per_btc", "sats/BTC", "Satoshis per bitcoin"),
    float(HOURS_PER_DAY): ("k_hours_per_day", "hours", "Hours per day"),
    60.0: ("k_minutes_per_hour", "minutes", "Minutes per hour"),
    1440.0: ("k_minutes_per_day", "minutes", "Minutes per day"),
    1000.0: ("k_thousand", "x", "Unit step of a thousand: kW per MW, PH/s per EH/s"),
    1e6: ("k_million", "x", "Unit step of a million: TH/s per EH/s, W per MW"),
    2.0: ("k_two", "x", "Two: the halving divisor; the second item of a list"),
}


def constant_name(value: float) -> tuple[str, str, str]:
    """Defined name, unit and description of a constant."""
    if value in KNOWN:
        return KNOWN[value]
    text = repr(float(value)).replace("-", "m").replace("+", "").replace(".", "_")
    return (f"k_{text}", "", "Number from the model's definition (a rate or factor the "
            "model derives once from the case)")
