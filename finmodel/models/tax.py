"""Tax depreciation and corporate income tax of a strategy, month by month.

Depreciation of an asset class with a life of ``L`` years, on what is placed in service
each month (``P``; ``C`` its running sum):

- straight line: ``(C_t - C_{t-12L}) / 12L`` (the life is a live input: the window is an
  ``INDEX`` into the row, not a fixed offset);
- MACRS, half-year convention (IRS Publication 946, Table A-1) for 5, 7 and 15-year
  classes: ``sum_y rate_y / 12 x (C_{t-12(y-1)} - C_{t-12y})`` — each year's rate spread
  over the months of that year of the asset's life (the class is chosen when the model is
  built; other lives fall back to straight line). The rates are cells of the workbook's
  Tax inputs block (``tax_macrs_5_year_rates``...), which the formulas read by ``INDEX``;
- bonus depreciation expenses a share of property with a life of 20 years or less when it
  is placed in service (OBBBA 2025 made 100 % permanent [T4]).

Tax: taxable income = EBITDA - depreciation - deductible interest (capped at a share of
EBITDA [T5]); losses are carried forward and may offset a share of later taxable income
(80 % in the US); tax = rate x what remains, paid in the month (money out, negative).
"""

from __future__ import annotations

from dataclasses import dataclass

from finmodel.conventions import MONTHS_PER_YEAR
from finmodel.engine.expr import (
    Expr,
    PathInput,
    cumulative,
    lag,
    maximum,
    minimum,
    shifted,
    sum_of,
    wrap,
)
from finmodel.engine.graph import Line, Model
from finmodel.inputs.schema import Assumptions
from finmodel.models.common import inp

SHEET = "Tax"

#: IRS Publication 946, Table A-1 (half-year convention), percentages by recovery year.
MACRS = {
    5: (20.00, 32.00, 19.20, 11.52, 11.52, 5.76),
    7: (14.29, 24.49, 17.49, 12.49, 8.93, 8.92, 8.93, 4.46),
    15: (5.00, 9.50, 8.55, 7.70, 6.93, 6.23, 5.90, 5.90, 5.91, 5.90, 5.91, 5.90, 5.91,
         5.90, 5.91, 2.95),
}
BONUS_MAX_LIFE_YEARS = 20


def macrs_name(life: int) -> str:
    """Defined name of the MACRS table of a ``life``-year class: a row of rates (shares,
    one per recovery year) in the workbook's Tax inputs block, read by ``INDEX``."""
    return f"tax_macrs_{life}_year_rates"


def macrs_tables() -> dict[str, list[float]]:
    """Every MACRS table as shares by defined name: the values the formulas read (the
    workbook's Tax inputs block; numpy's paths)."""
    return {macrs_name(life): [pct / 100 for pct in table] for life, table in MACRS.items()}


@dataclass(frozen=True)
class Tax:
    depreciation: Line
    tax: Line


def depreciation_of(m: Model, a: Assumptions, name: str, label: str, placed: Line,
                    life_path: str, life_now: float, section: str) -> Line:
    """Tax depreciation of what ``placed`` puts in service, for a life given by the input at
    ``life_path`` (its current value ``life_now`` picks the MACRS table)."""
    t = a.tax
    cum = m.line(f"{name}_placed_cumulative", cumulative(placed),
                 f"{label}: placed in service to date", "USD", SHEET, agg="last",
                 section=section)
    life = inp(life_path)
    bonus: Expr = wrap(0.0)
    if t.bonus_depreciation_share > 0 and life_now <= BONUS_MAX_LIFE_YEARS:
        bonus = inp("tax.bonus_depreciation_share")
    rest = 1 - bonus
    table = MACRS.get(int(round(life_now))) if abs(life_now - round(life_now)) < 1e-9 else None
    if t.depreciation == "macrs" and table is not None:
        dep: Expr = wrap(0.0)
        rates = macrs_name(int(round(life_now)))
        for y in range(1, len(table) + 1):
            # The year's rate from the table's cell, spread over its twelve months.
            rate = PathInput(rates, wrap(y)) / MONTHS_PER_YEAR
            dep = dep + rate * (
                (lag(cum, MONTHS_PER_YEAR * (y - 1), 0) if y > 1 else wrap(cum))
                - lag(cum, MONTHS_PER_YEAR * y, 0))
    else:
        months = life * MONTHS_PER_YEAR
        dep = (cum - shifted(cum, months, 0)) / months
    return m.line(f"{name}_depreciation_usd", bonus * placed + rest * dep,
                  f"{label}: tax depreciation", "USD", SHEET, section=section)


def build_tax(m: Model, a: Assumptions, strategy: str, ebitda: Line,
              classes: list[tuple[str, Line, str]], interest: list[Line]) -> Tax:
    """Corporate tax of a strategy.

    ``classes``: (label, placed-in-service line (positive USD), life input path);
    ``interest``: interest expense lines (positive USD).
    """
    s = strategy
    sec = f"{s}: tax depreciation"
    deps = []
    for label, placed, life_path in classes:
        section_name, field = life_path.split(".")
        life_now = float(getattr(getattr(a, section_name), field))
        key = f"{s}.tax.{label.lower().replace(' ', '_').replace('-', '_')}"
        deps.append(depreciation_of(m, a, key, label, placed, life_path, life_now, sec))
    dep = m.line(f"{s}.tax.depreciation_usd", sum_of(deps), "Tax depreciation", "USD", SHEET,
                 section=sec)

    sec = f"{s}: income tax"
    paid_interest = sum_of(interest)
    deductible = m.line(f"{s}.tax.deductible_interest_usd",
                        minimum(paid_interest,
                                inp("tax.interest_limit_share") * maximum(ebitda, 0)),
                        "Deductible interest", "USD", SHEET, section=sec)
    income = m.line(f"{s}.tax.income_before_losses_usd", ebitda - dep - deductible,
                    "Taxable income before losses carried forward", "USD", SHEET,
                    section=sec)
    nol = m.recursive_line(f"{s}.tax.losses_carried_forward_usd",
                           "Losses carried forward, end of month", "USD", SHEET, section=sec)
    opening = lag(nol, 1, 0)
    used = m.line(f"{s}.tax.losses_used_usd",
                  minimum(opening, inp("tax.nol_usage_limit_share") * maximum(income, 0)),
                  "Losses used", "USD", SHEET, section=sec)
    m.define(nol, opening + maximum(-income, 0) - used)
    taxable = m.line(f"{s}.tax.taxable_income_usd", maximum(income, 0) - used,
                     "Taxable income", "USD", SHEET, section=sec)
    tax = m.line(f"{s}.tax.tax_usd", -inp("tax.rate") * taxable, "Income tax paid", "USD",
                 SHEET, section=sec)
    return Tax(dep, tax)
