"""Sign, timing and unit conventions, stated once for the whole package.

Sign
    Cash flows are seen from the site owner's side: money in is positive, money out is
    negative. Inputs are positive magnitudes; the model applies the sign.
Timing
    The timeline is monthly. Every flow happens at the end of its period. The valuation
    date is the start of the first period, so the first month's flow is discounted by one
    month (Excel's ``NPV`` convention; ``numpy_financial.npv`` needs a leading 0 to agree).
Rates
    Rates are annual decimals (0.08 = 8 %). The monthly equivalent is derived once, as
    ``(1 + r) ** (1 / 12) - 1``, and an IRR found on monthly flows is reported annualised
    the same way back: ``(1 + irr_m) ** 12 - 1``.
Growth
    A quantity with an annual growth rate ``g`` is ``x0 * (1 + g) ** (t / 12)`` in period
    ``t`` (0-based), i.e. compounded monthly at the equivalent monthly rate.
Units
    Units are part of every field and line name: ``_usd``, ``_mw``, ``_mwh``, ``_eh_s``,
    ``_j_per_th``, ``_usd_per_mwh``, ``_rate`` (annual decimal), ``_share`` (0..1).
    1 EH/s at 1 J/TH draws 1 MW.
Dates
    Dates inside the model are spreadsheet serial numbers (days since 1899-12-30), so
    numpy and the workbook compare and subtract them the same way.
"""

from __future__ import annotations

import datetime as dt

MONTHS_PER_YEAR = 12
HOURS_PER_DAY = 24
EXCEL_EPOCH = dt.date(1899, 12, 30)

#: Blocks per halving epoch and the first epoch's subsidy, from the Bitcoin protocol
#: (src/validation.cpp GetBlockSubsidy: 50 BTC halved every 210,000 blocks, in satoshis).
HALVING_INTERVAL_BLOCKS = 210_000
INITIAL_SUBSIDY_SATS = 5_000_000_000
SATS_PER_BTC = 100_000_000


def to_serial(day: dt.date) -> float:
    """A date as a spreadsheet serial number."""
    return float((day - EXCEL_EPOCH).days)


def from_serial(serial: float) -> dt.date:
    """A spreadsheet serial number as a date (fractions of a day are dropped)."""
    return EXCEL_EPOCH + dt.timedelta(days=int(serial))
