"""When to convert: the value of a strategy by the month its conversion starts.

Every candidate start month is one scenario of a single vectorised evaluation (the start
month is an input like any other), so scanning five years of start months costs about one
run of the model.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from finmodel.conventions import MONTHS_PER_YEAR, from_serial
from finmodel.engine.evaluate import evaluate
from finmodel.engine.graph import Model
from finmodel.engine.timeline import Timeline

if TYPE_CHECKING:
    import pandas as pd

#: How far ahead start months are scanned.
MAX_MONTHS = 60


@dataclass(frozen=True)
class TimingTable:
    """One strategy's value by conversion start month, as arrays (:meth:`frame` is the
    DataFrame of :func:`conversion_timing`). ``run`` keeps these: a run and its workbook
    need no pandas (its import was a tenth of ``finmodel run``)."""

    start_serial: np.ndarray
    npv_usd: np.ndarray
    npv_vs_mining_usd: np.ndarray

    def frame(self) -> pd.DataFrame:
        """Indexed by start month; columns ``npv_usd`` and ``npv_vs_mining_usd``."""
        import pandas as pd

        index = pd.PeriodIndex([pd.Period(from_serial(x), "M") for x in self.start_serial],
                               name="start")
        return pd.DataFrame({"npv_usd": self.npv_usd,
                             "npv_vs_mining_usd": self.npv_vs_mining_usd}, index=index)

    @staticmethod
    def of(frame: pd.DataFrame) -> TimingTable:
        """The arrays of a DataFrame of :func:`conversion_timing`."""
        from finmodel.conventions import to_serial

        return TimingTable(np.array([to_serial(p.start_time.date()) for p in frame.index]),
                           frame["npv_usd"].to_numpy(float),
                           frame["npv_vs_mining_usd"].to_numpy(float))


class TimingFrames(Mapping):
    """``Result.timing``: strategy -> DataFrame of :func:`conversion_timing`, each made
    when first read; :attr:`tables` holds the arrays."""

    def __init__(self, tables: Mapping[str, TimingTable]) -> None:
        self.tables = dict(tables)
        self._frames: dict[str, pd.DataFrame] = {}

    def __getitem__(self, strategy: str) -> pd.DataFrame:
        if strategy not in self._frames:
            self._frames[strategy] = self.tables[strategy].frame()
        return self._frames[strategy]

    def __iter__(self) -> Iterator[str]:
        return iter(self.tables)

    def __len__(self) -> int:
        return len(self.tables)

    def __repr__(self) -> str:
        return f"TimingFrames({list(self.tables)})"


def tables_of(timing: Mapping) -> dict[str, TimingTable]:
    """The arrays of ``Result.timing`` (a :class:`TimingFrames`, or DataFrames)."""
    if isinstance(timing, TimingFrames):
        return timing.tables
    return {s: TimingTable.of(t) for s, t in timing.items()}


def timing_table(model: Model, tl: Timeline, scalars: Mapping, paths: Mapping,
                 overrides: Mapping, strategy: str) -> TimingTable:
    """NPV of ``strategy`` and its NPV minus mining's, for conversion starts from the first
    month of the model on (at most :data:`MAX_MONTHS` months, leaving a year of horizon)."""
    k = min(MAX_MONTHS, tl.months - 12)
    starts = tl.rows["start"][:max(k, 1)]
    trial = dict(scalars)
    trial[f"strategies_{strategy}_conversion_start_month"] = starts
    names = [f"{strategy}.npv", "mining.npv"]
    out = evaluate(model, tl, trial, paths, overrides, only=names)
    npv = np.broadcast_to(out[names[0]], starts.shape)
    ref = np.broadcast_to(out[names[1]], starts.shape)
    return TimingTable(starts, npv, npv - ref)


def conversion_timing(model: Model, tl: Timeline, scalars: Mapping, paths: Mapping,
                      overrides: Mapping, strategy: str) -> pd.DataFrame:
    """:func:`timing_table` as a DataFrame.

    Returns
    -------
    pandas.DataFrame
        Indexed by start month; columns ``npv_usd`` and ``npv_vs_mining_usd``.
    """
    return timing_table(model, tl, scalars, paths, overrides, strategy).frame()


def _month(serial: float) -> tuple[int, int]:
    d = from_serial(serial)
    return d.year, d.month


def timing_summary(table: TimingTable | pd.DataFrame, next_halving_serial: float
                   ) -> dict[str, object]:
    """The NPV-maximising start month, starting now, and starting after the next halving."""
    if not isinstance(table, TimingTable):
        table = TimingTable.of(table)
    months = [_month(x) for x in table.start_serial]
    best = int(np.nanargmax(table.npv_usd))  # the first of equal maxima, as idxmax
    y, m = _month(next_halving_serial)
    after = divmod(y * MONTHS_PER_YEAR + m, MONTHS_PER_YEAR)  # the month after it
    halving = (after[0], after[1] + 1)
    out: dict[str, object] = {
        "best_start_month": "%04d-%02d" % months[best],
        "npv_at_best_usd": float(table.npv_usd[best]),
        "npv_vs_mining_at_best_usd": float(table.npv_vs_mining_usd[best]),
        "start_now_npv_vs_mining_usd": float(table.npv_vs_mining_usd[0]),
    }
    if halving in months:
        i = months.index(halving)
        out["after_next_halving_start_month"] = "%04d-%02d" % halving
        out["after_next_halving_npv_vs_mining_usd"] = float(table.npv_vs_mining_usd[i])
    return out
