"""Keep mining, convert to AI hosting, or split? Compare the strategies of a case.

    python examples/compare_strategies.py [assumptions/base.toml] [out.xlsx]

Prints the headline metrics side by side, the value of converting by start month, and
writes the live workbook.
"""

from __future__ import annotations

import sys

import pandas as pd

import finmodel


def main(case: str = "assumptions/base.toml", out: str = "comparison.xlsx") -> None:
    a = finmodel.load_assumptions(case)
    result = finmodel.run(a)

    table = result.summary.copy()
    millions = [k for k in table.index if k.endswith("_usd") and "per" not in k
                and "price" not in k]
    table.loc[millions] = table.loc[millions] / 1e6
    table.index = [f"{k} (M)" if k in millions else k for k in table.index]
    with pd.option_context("display.float_format", "{:,.2f}".format, "display.width", 160):
        print(f"{a.case.name}\n")
        print(table.astype(object).where(table.notna(), "-"))

    for strategy, by_month in result.timing.items():
        best = by_month["npv_vs_mining_usd"].idxmax()
        print(f"\n{strategy}: value of converting (vs mining), by start month, USD M")
        print((by_month["npv_vs_mining_usd"].iloc[::6] / 1e6).round(1).to_string())
        print(f"best start: {best} ({by_month.loc[best, 'npv_vs_mining_usd'] / 1e6:,.1f} M)")

    finmodel.export_excel(result, out)
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main(*sys.argv[1:])
