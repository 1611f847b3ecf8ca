"""What does the convertible cost the issuer, and how much does it dilute?

    python examples/convertible_cost_and_dilution.py [assumptions/bitdeer_convertible_hybrid.toml]

Prints the issuer's cash flows by year, the all-in cost (IRR of cash and the value of
shares delivered), the lattice value at issue, and the dilution table across share prices.
"""

from __future__ import annotations

import sys

import pandas as pd

import finmodel


def main(case: str = "assumptions/bitdeer_convertible_hybrid.toml") -> None:
    a = finmodel.load_assumptions(case)
    if a.financing is None or a.financing.convertible is None:
        raise SystemExit(f"{case}: no [financing.convertible] section")
    r = finmodel.run(a, breakevens=False)
    c = a.financing.convertible
    print(f"{a.case.name}\n")
    print(f"${c.principal_usd / 1e6:,.0f}M {c.coupon_rate:.2%} convertible, {c.term_years:g} "
          f"years, conversion price ${c.conversion_price_usd:.2f}, settlement {c.settlement}")
    lines = ["convertible.net_proceeds_usd", "convertible.coupon_usd",
             "convertible.principal_paid_usd", "convertible.issuer_cash_usd",
             "convertible.net_shares_issued"]
    yearly = r.annual.loc[lines]
    yearly = yearly.loc[:, (yearly != 0).any(axis=0)]
    with pd.option_context("display.float_format", "{:,.0f}".format, "display.width", 200,
                           "display.max_columns", None):
        print("\nIssuer cash flows by year (USD; shares for the last row)")
        print(yearly)
    cost = r.summary_json()["convertible"]
    print(f"\nAll-in cost to the issuer: {cost['all_in_cost_rate']:.2%} a year "
          "(coupons, costs, capped call and the value of shares delivered)")
    print(f"Lattice value at issue: {cost['price_per_100']:.2f} per 100 (bond floor "
          f"{cost['bond_floor_per_100']:.2f}, parity {cost['conversion_value_per_100']:.2f})")
    table = r.dilution_table()
    table["net_dilution_share"] = table["net_dilution_share"].map("{:.2%}".format)
    with pd.option_context("display.float_format", "{:,.2f}".format):
        print("\nDilution by share price at conversion")
        print(table.to_string(index=False))


if __name__ == "__main__":
    main(*sys.argv[1:])
