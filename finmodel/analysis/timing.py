"""When to convert: the value of a strategy by the month its conversion starts.

Every candidate start month is one scenario of a single vectorised evaluation (the start
month is an input like any other), so scanning five years of start months costs about one
run of the model.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from finmodel.conventions import from_serial
from finmodel.engine.evaluate import evaluate
from finmodel.engine.graph import Model
from finmodel.engine.timeline import Timeline

#: How far ahead start months are scanned.
MAX_MONTHS = 60


def conversion_timing(model: Model, tl: Timeline, scalars: Mapping, paths: Mapping,
                      overrides: Mapping, strategy: str) -> pd.DataFrame:
    """NPV of ``strategy`` and its NPV minus mining's, for conversion starts from the first
    month of the model on (at most :data:`MAX_MONTHS` months, leaving a year of horizon).

    Returns
    -------
    pandas.DataFrame
        Indexed by start month; columns ``npv_usd`` and ``npv_vs_mining_usd``.
    """
    k = min(MAX_MONTHS, tl.months - 12)
    starts = tl.rows["start"][:max(k, 1)]
    trial = dict(scalars)
    trial[f"strategies_{strategy}_conversion_start_month"] = starts
    names = [f"{strategy}.npv", "mining.npv"]
    out = evaluate(model, tl, trial, paths, overrides, only=names)
    npv = np.broadcast_to(out[names[0]], starts.shape)
    ref = np.broadcast_to(out[names[1]], starts.shape)
    index = pd.PeriodIndex([pd.Period(from_serial(x), "M") for x in starts], name="start")
    return pd.DataFrame({"npv_usd": npv, "npv_vs_mining_usd": npv - ref}, index=index)


def timing_summary(table: pd.DataFrame, next_halving_serial: float) -> dict[str, object]:
    """The NPV-maximising start month, starting now, and starting after the next halving."""
    best = table["npv_usd"].idxmax()
    halving = pd.Period(from_serial(next_halving_serial), "M") + 1
    out: dict[str, object] = {
        "best_start_month": str(best),
        "npv_at_best_usd": float(table.loc[best, "npv_usd"]),
        "npv_vs_mining_at_best_usd": float(table.loc[best, "npv_vs_mining_usd"]),
        "start_now_npv_vs_mining_usd": float(table["npv_vs_mining_usd"].iloc[0]),
    }
    if halving in table.index:
        out["after_next_halving_start_month"] = str(halving)
        out["after_next_halving_npv_vs_mining_usd"] = float(
            table.loc[halving, "npv_vs_mining_usd"])
    return out
