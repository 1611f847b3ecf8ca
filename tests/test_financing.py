"""Project debt, the convertible's cash flows and dilution, tax, and equity, by hand.

Case: assumptions/bitdeer_convertible_hybrid.toml (Bitdeer's Nov 2025 convertible [V1]:
$400M, 4 % semiannual, 6 years, conversion price $17.77, capped call to $27.88 for
$35.4M; project debt at 7.125 % for 8 years at a 1.35x DSCR; 21 % tax).
"""

from __future__ import annotations

import numpy as np
import pytest

import finmodel
from finmodel.inputs.load import parse_assumptions
from tests.conftest import small_case

CASE = "assumptions/bitdeer_convertible_hybrid.toml"
A = finmodel.load_assumptions(CASE)


def run(changes=None):
    a = finmodel.with_values(A, changes) if changes else A
    return finmodel.run(a, breakevens=False)


def v(r, name):
    return r.values[name][0]


def test_sculpted_debt_meets_the_target_dscr_every_month_and_is_repaid():
    # At a 1.6x target the DSCR-sized loan (~$601M) is below 100 % of the $660M capex, so
    # the DSCR binds: service = CFADS / 1.6 in every repayment month, and the loan (the
    # present value of that service) is repaid exactly at maturity.
    r = run({"financing.debt.max_loan_to_cost_share": 1.0,
             "financing.debt.target_dscr": 1.6})
    p = "hybrid.debt."
    service, cfads = v(r, p + "scheduled_service_usd"), v(r, p + "cfads_usd")
    paying = v(r, p + "repaying") > 0
    assert paying.sum() == 96  # 8 years
    assert (cfads[paying] > 0).all()
    np.testing.assert_allclose(cfads[paying] / service[paying], 1.6, rtol=1e-12)
    balance = v(r, p + "balance_usd")
    assert abs(balance[paying][-1]) < 1e-3  # USD, on a loan of ~$650M
    assert v(r, p + "principal_usd").sum() == pytest.approx(r.values[p + "amount_usd"][0],
                                                            rel=1e-12)
    assert r.summary.loc["min_dscr", "hybrid"] == pytest.approx(1.6, rel=1e-12)
    assert r.values[p + "amount_usd"][0] == pytest.approx(r.values[p + "dscr_sized_usd"][0])


def test_loan_to_cost_cap_scales_the_service_down():
    r = run()
    capex = -v(r, "hybrid.conversion.capex_usd").sum()
    assert r.values["hybrid.debt.amount_usd"][0] == pytest.approx(0.8 * capex, rel=1e-12)
    assert r.summary.loc["min_dscr", "hybrid"] > 1.35


@pytest.mark.parametrize("profile", ["annuity", "straight"])
def test_stated_amount_amortises_to_zero(profile):
    r = run({"financing.debt.sizing": "amount", "financing.debt.amount_usd": 300e6,
             "financing.debt.amortisation": profile})
    p = "hybrid.debt."
    paying = v(r, p + "repaying") > 0
    assert abs(v(r, p + "balance_usd")[paying][-1]) < 1e-3
    if profile == "annuity":
        service = v(r, p + "scheduled_service_usd")[paying]
        assert np.ptp(service) < 1e-6  # level payments
        i = 1.07125 ** (1 / 12) - 1
        assert service[0] == pytest.approx(300e6 * i / (1 - (1 + i) ** -96), rel=1e-12)
    else:
        assert np.allclose(v(r, p + "principal_usd")[paying], 300e6 / 96)


def test_convertible_cash_flows_on_the_share_price_path():
    r = run()
    p = "convertible."
    # Issue: 400M x (1 - 3 %) - 35.4M capped call = 352.6M, in month 0.
    proceeds = v(r, p + "net_proceeds_usd")
    assert proceeds[0] == pytest.approx(352.6e6) and np.count_nonzero(proceeds) == 1
    # The path 13.94 x 1.12^t is above $17.77 at the year-4 put (21.93), and first
    # reaches the 130 % trigger (23.10) in month 54 (13.94 x 1.12^4.5 = 23.11): the issuer
    # calls and conversion is forced. Coupons of $8M every 6 months until then.
    coupons = v(r, p + "coupon_usd")
    assert np.flatnonzero(coupons).tolist() == list(range(6, 55, 6))
    assert coupons[6] == pytest.approx(8e6)
    s = 13.94 * 1.12 ** 4.5
    assert v(r, "financing.share_price_usd")[54] == pytest.approx(s)
    assert np.flatnonzero(v(r, p + "converts")).tolist() == [54]
    assert v(r, p + "put").sum() == 0
    # Net share settlement: principal in cash, the excess in shares; the capped call (cap
    # $27.88 > S) gives all of it back.
    n = 400e6 / 17.77
    assert v(r, p + "principal_paid_usd")[54] == pytest.approx(400e6)
    assert v(r, p + "shares_issued")[54] == pytest.approx(n * (s - 17.77) / s)
    assert v(r, p + "net_shares_issued")[54] == pytest.approx(0.0, abs=1e-6)
    cash = v(r, p + "issuer_cash_usd")
    assert cash.sum() == pytest.approx(352.6e6 - 9 * 8e6 - 400e6)


def test_a_called_note_converts_early_and_physical_settlement_pays_no_cash():
    # A faster share price crosses 1.3 x 17.77 = 23.10 after the call date (month 36):
    # 13.94 x 1.3^t >= 23.10 from t = 1.92 years, so the first callable month is 36.
    r = run({"financing.share_price_drift_rate": 0.30,
             "financing.convertible.settlement": "physical"})
    p = "convertible."
    assert np.flatnonzero(v(r, p + "converts")).tolist() == [36]
    assert v(r, p + "principal_paid_usd").sum() == 0
    assert v(r, p + "shares_issued")[36] == pytest.approx(400e6 / 17.77)
    assert np.flatnonzero(v(r, p + "coupon_usd")).tolist() == [6, 12, 18, 24, 30, 36]


def test_holders_put_when_out_of_the_money():
    r = run({"financing.share_price_drift_rate": -0.05})
    p = "convertible."
    assert np.flatnonzero(v(r, p + "put")).tolist() == [48]
    assert v(r, p + "principal_paid_usd")[48] == pytest.approx(400e6)
    assert v(r, p + "converts").sum() == 0


def test_dilution_table_by_hand():
    # At 2 x $17.77 = $35.54: N = 400M / 17.77 = 22.51M; net share delivers N x 1/2;
    # the capped call returns N x (27.88 - 17.77) / 35.54; net over 200M shares.
    table = run().dilution_table().set_index("price_multiple")
    n = 400e6 / 17.77
    row = table.loc[2.0]
    assert row.gross_shares == pytest.approx(n / 2)
    assert row.capped_call_shares == pytest.approx(n * (27.88 - 17.77) / 35.54)
    assert row.net_dilution_share == pytest.approx((n / 2 - n * 10.11 / 35.54) / 200e6)
    assert table.loc[1.0, "gross_shares"] == 0 and table.loc[1.5, "net_dilution_share"] == 0


def test_tax_with_macrs_bonus_and_losses_carried_forward():
    # Small case with a $10M fleet bought in month 0 (5-year MACRS, no bonus): year-1
    # depreciation is 20 % = $2M, i.e. $166,666.67 a month for months 0-11, 32 % in
    # year 2. Losses carry forward and offset at most 80 % of later taxable income.
    data = small_case(case={"horizon_years": 3}, mining={"purchase_price_usd_per_th": 20.0})
    data["tax"] = {"rate": 0.21, "depreciation": "macrs", "bonus_depreciation_share": 0.0}
    r = finmodel.run(parse_assumptions(data), breakevens=False)
    dep = v(r, "mining.tax.mining_assets_depreciation_usd")
    assert dep[:12] == pytest.approx([10e6 * 0.20 / 12] * 12)
    assert dep[12:24] == pytest.approx([10e6 * 0.32 / 12] * 12)
    income = v(r, "mining.tax.income_before_losses_usd")
    ebitda = v(r, "mining.ebitda_usd")
    assert income == pytest.approx(ebitda - dep)
    nol, used = v(r, "mining.tax.losses_carried_forward_usd"), v(r, "mining.tax.losses_used_usd")
    opening = np.r_[0.0, nol[:-1]]
    assert used == pytest.approx(np.minimum(opening, 0.8 * np.maximum(income, 0)))
    assert nol == pytest.approx(opening + np.maximum(-income, 0) - used)
    taxable = np.maximum(income, 0) - used
    assert v(r, "mining.tax.tax_usd") == pytest.approx(-0.21 * taxable)
    # 100 % bonus: the whole $10M in month 0.
    data["tax"]["bonus_depreciation_share"] = 1.0
    r = finmodel.run(parse_assumptions(data), breakevens=False)
    dep = v(r, "mining.tax.mining_assets_depreciation_usd")
    assert dep[0] == pytest.approx(10e6) and dep[1:].sum() == pytest.approx(0, abs=1e-6)


def test_equity_cash_flow_is_the_sum_of_its_parts():
    r = run()
    parts = (v(r, "hybrid.unlevered_fcf_usd") + v(r, "hybrid.tax.tax_usd")
             + v(r, "hybrid.debt.cash_to_equity_usd") + v(r, "convertible.issuer_cash_usd"))
    assert v(r, "hybrid.equity_cf_usd") == pytest.approx(parts)
    s = r.summary_json()["strategies"]["hybrid"]
    assert set(s) >= {"equity_npv_usd", "equity_irr", "value_per_share_usd",
                      "value_per_share_diluted_usd", "debt_usd", "min_dscr"}
    assert s["value_per_share_usd"] == pytest.approx(s["equity_npv_usd"] / 200e6)


def test_debt_longer_than_the_lease_is_refused():
    with pytest.raises(finmodel.InputError, match="financing.debt.tenor_years: 12 years is "
                                                  "longer than the lease"):
        finmodel.with_values(A, {"financing.debt.tenor_years": 12.0})


def test_issuer_all_in_cost_and_lattice_in_the_summary():
    r = finmodel.run(A)
    c = r.summary_json()["convertible"]
    # Coupon 4 % plus 3 % costs, the $35.4M capped call and shares delivered: above 4 %.
    assert 0.04 < c["all_in_cost_rate"] < 0.15
    assert c["price_per_100"] > c["bond_floor_per_100"]
    assert c["price_per_100"] > c["conversion_value_per_100"]


def test_cash_sweep_repays_early_and_never_below_zero():
    # Half of the hall's cash after scheduled service prepays the loan: it is gone well
    # before the 8-year tenor, the balance never goes negative, and no more principal is
    # repaid than was lent.
    r = run({"financing.debt.cash_sweep_share": 0.5})
    p = "hybrid.debt."
    balance = v(r, p + "balance_usd")
    paid_off = np.flatnonzero(balance[1:] <= 1e-6)
    draw_month = int(np.flatnonzero(v(r, p + "draw_usd"))[0])
    assert paid_off.size and paid_off[0] + 1 - draw_month < 96
    assert balance.min() >= -1e-6
    assert v(r, p + "principal_usd").sum() == pytest.approx(
        r.values[p + "amount_usd"][0], rel=1e-12)


def test_conversion_terms_as_price_premium_or_rate_agree():
    # $17.77 = 27.5 % over $13.94 = $1,000 / 56.2635 shares [V1].
    base = run().summary.loc["equity_npv_usd", "hybrid"]
    for change in ({"financing.convertible.conversion_price_usd": None,
                    "financing.convertible.conversion_premium_share": 0.275},
                   {"financing.convertible.conversion_price_usd": None,
                    "financing.convertible.conversion_rate_per_1000": 56.2635}):
        other = run(change)
        assert other.values["convertible.conversion_price_usd"][0] == pytest.approx(17.77,
                                                                                   abs=0.005)
        assert other.summary.loc["equity_npv_usd", "hybrid"] == pytest.approx(base, rel=1e-3)
    with pytest.raises(finmodel.InputError, match="exactly one of conversion_price_usd"):
        run({"financing.convertible.conversion_premium_share": 0.3})


def test_sources_equal_uses():
    # $660M of conversion capex (100 MW x $6.6M/MW); $528M of debt (80 %), $352.6M net
    # from the convertible: $220.6M more than the build needs.
    r = run()
    p = "hybrid.sources_uses."
    val = {k: r.values[p + k][0] for k in ("uses_usd", "prepayment_usd", "debt_usd",
                                           "convertible_usd", "equity_usd")}
    assert val["uses_usd"] == pytest.approx(660e6)
    assert val["debt_usd"] == pytest.approx(528e6)
    assert val["convertible_usd"] == pytest.approx(352.6e6)
    assert val["uses_usd"] == pytest.approx(val["prepayment_usd"] + val["debt_usd"]
                                            + val["convertible_usd"] + val["equity_usd"])


def test_macrs_rates_are_input_cells_of_the_tax_block_that_the_formulas_read(tmp_path,
                                                                             libreoffice):
    # The 5-year MACRS table sits in the Tax inputs block as cells (IRS Publication 946,
    # Table A-1: 20, 32, 19.2, 11.52, 11.52, 5.76 %); the Tax sheet's depreciation reads
    # them by name. Edited in the workbook (year 1 at 30 %, year 2 at 22 %), LibreOffice's
    # depreciation follows: $10M x 30 % / 12 a month in year 1, x 22 % / 12 in year 2.
    import openpyxl

    from finmodel.excel.libreoffice import recalculate

    data = small_case(case={"horizon_years": 3}, mining={"purchase_price_usd_per_th": 20.0})
    data["tax"] = {"rate": 0.21, "depreciation": "macrs", "bonus_depreciation_share": 0.0}
    r = finmodel.run(parse_assumptions(data), breakevens=False)
    path = finmodel.export_excel(r, tmp_path / "tax.xlsx")
    wb = openpyxl.load_workbook(path)
    sheet, cells = next(iter(wb.defined_names["tax_macrs_5_year_rates"].destinations))
    row = list(wb[sheet][cells.replace("$", "")])[0]
    assert [c.value for c in row] == pytest.approx([0.20, 0.32, 0.192, 0.1152, 0.1152, 0.0576])
    assert row[0].fill.fgColor.rgb.endswith("FFF2CC")  # styled as an input cell
    tax = wb["Tax"]
    name_col = {tax.cell(i, 4).value: i for i in range(1, tax.max_row + 1)}
    dep_row = name_col["mining.tax.mining_assets_depreciation_usd"]
    formulas = [tax.cell(dep_row, c).value for c in range(5, 5 + 36)]
    helpers = [tax.cell(i, c).value for i in range(1, tax.max_row + 1) for c in range(5, 41)
               if isinstance(tax.cell(i, c).value, str)]
    assert any("INDEX(tax_macrs_5_year_rates,1)/12" in f for f in helpers + formulas)
    assert not any("0.01666" in f or "k_0_" in f for f in helpers + formulas)
    row[0].value, row[1].value = 0.30, 0.22
    wb.save(tmp_path / "edited.xlsx")
    lo = openpyxl.load_workbook(recalculate(tmp_path / "edited.xlsx", tmp_path / "lo"),
                                data_only=True)["Tax"]
    got = np.array([lo.cell(dep_row, c).value for c in range(5, 5 + 36)], dtype=float)
    assert got[:12] == pytest.approx([10e6 * 0.30 / 12] * 12, rel=1e-9)
    assert got[12:24] == pytest.approx([10e6 * 0.22 / 12] * 12, rel=1e-9)
    assert got[24:] == pytest.approx([10e6 * 0.192 / 12] * 12, rel=1e-9)
