"""The one monthly timeline every line shares."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cached_property

from typing import TYPE_CHECKING

import numpy as np

from finmodel.conventions import MONTHS_PER_YEAR, to_serial

if TYPE_CHECKING:
    import pandas as pd


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
        import pandas as pd  # only for the DataFrame views: a run does not need pandas

        return pd.period_range(self.start, periods=self.months, freq="M")

    @cached_property
    def rows(self) -> dict[str, np.ndarray]:
        """Every timeline row as a float array of length ``months``."""
        first = self.start.year * MONTHS_PER_YEAR + self.start.month - 1
        starts = [dt.date(m // MONTHS_PER_YEAR, m % MONTHS_PER_YEAR + 1, 1)
                  for m in range(first, first + self.months + 1)]  # and the end's month
        serial = np.array([to_serial(d) for d in starts])
        start_serial, end_serial = serial[:-1], serial[1:]
        index = np.arange(self.months, dtype=float)
        return {
            "start": start_serial,
            "end": end_serial,
            "days": end_serial - start_serial,
            "index": index,
            "year": np.array([d.year for d in starts[:-1]], dtype=float),
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
