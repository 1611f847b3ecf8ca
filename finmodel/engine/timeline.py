"""The one monthly timeline every line shares."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from finmodel.conventions import MONTHS_PER_YEAR, to_serial


@dataclass(frozen=True)
class Timeline:
    """Monthly periods from ``start`` (first day of a month) for ``months`` periods."""

    start: dt.date
    months: int

    def __post_init__(self) -> None:
        if self.start.day != 1:
            raise ValueError("a timeline starts on the first day of a month")
        if self.months < 1:
            raise ValueError("a timeline needs at least one period")

    @cached_property
    def periods(self) -> pd.PeriodIndex:
        return pd.period_range(self.start, periods=self.months, freq="M")

    @cached_property
    def rows(self) -> dict[str, np.ndarray]:
        """Every timeline row as a float array of length ``months``."""
        starts = self.periods.start_time
        ends = (self.periods + 1).start_time
        start_serial = np.array([to_serial(d.date()) for d in starts])
        end_serial = np.array([to_serial(d.date()) for d in ends])
        index = np.arange(self.months, dtype=float)
        return {
            "start": start_serial,
            "end": end_serial,
            "days": end_serial - start_serial,
            "index": index,
            "year": np.asarray(self.periods.year, dtype=float),
            "model_year": np.floor(index / MONTHS_PER_YEAR) + 1.0,
        }

    @cached_property
    def years(self) -> np.ndarray:
        """The calendar years the timeline touches, in order."""
        return np.unique(self.rows["year"]).astype(int)

    @cached_property
    def year_starts(self) -> np.ndarray:
        """Index of the first period of each calendar year (for annual roll-ups)."""
        y = self.rows["year"]
        return np.flatnonzero(np.r_[True, y[1:] != y[:-1]])

    @property
    def model_years(self) -> int:
        """Number of model years (12-month blocks, the last possibly partial)."""
        return -(-self.months // MONTHS_PER_YEAR)
