"""Convertible valuation against QuantLib's BinomialConvertibleEngine (CRR, 500+ steps).

Parameter sets follow 2024-2025 miner converts (industry_facts section 6): coupons 0 %
(Cipher, TeraWulf [V9], [V12]) to 8.5 % (Bitdeer Aug 2024 [V4]); 3-7 year maturities;
premiums 27.5-42.5 %; issuer calls from year 2-3 at a 130 % trigger [V1], [V9], [V20];
holder puts [V1], [V14]. Volatilities 40-90 % and credit spreads 300-1,000 bp cover
what miners' shares and credit show.
"""

from __future__ import annotations

import pytest

from finmodel.errors import InputError, SolverError
from finmodel.financing.convertible import implied_volatility, value_convertible
from tests.quantlib_oracle import build, quantlib_price

SPOT, RATE = 13.94, 0.04  # Bitdeer's Nov 2025 reference price [V1]; a 4 % risk-free rate
# (coupon, years, premium, volatility, spread, call from year, trigger, put year)
SETS = {
    "zero-coupon, no call (Cipher/TeraWulf style)": (0.0, 5, 0.375, 0.60, 0.05, None, None, None),
    "4 %, 6y, soft call 130 % from year 3 (Bitdeer Nov 2025)": (0.04, 6, 0.275, 0.70, 0.06, 3, 1.3, None),
    "8.5 %, 5y, 90 % vol, 1,000 bp, soft call (Bitdeer Aug 2024)": (0.085, 5, 0.35, 0.90, 0.10, 3, 1.3, None),
    "1 %, 7y, 40 % vol, 300 bp, no call": (0.01, 7, 0.30, 0.40, 0.03, None, None, None),
    "5.25 %, 3y, soft call from year 2 (Bitdeer Nov 2024)": (0.0525, 3, 0.425, 0.50, 0.08, 2, 1.3, None),
    "3.5 %, 4y, hard call and a put at year 2": (0.035, 4, 0.30, 0.80, 0.04, 2, None, 2),
    "zero-coupon, 6y, call from 3 and put at 4 (Bitdeer/Core style)": (0.0, 6, 0.375, 0.60, 0.08, 3, 1.3, 4),
}


@pytest.mark.parametrize("steps", [500, 1000])
@pytest.mark.parametrize("name", list(SETS))
def test_price_agrees_with_quantlib(name, steps):
    coupon, years, premium, vol, spread, call_from, trigger, put = SETS[name]
    bond, terms = build(coupon, years, premium, SPOT, call_from, trigger, put)
    ql_price = quantlib_price(bond, spot=SPOT, vol=vol, rate=RATE, spread=spread, steps=steps)
    ours = value_convertible(terms, spot=SPOT, volatility=vol, risk_free_rate=RATE,
                             credit_spread=spread, steps=steps)
    assert ours.price == pytest.approx(ql_price, rel=0.005)  # the bar
    assert ours.price == pytest.approx(ql_price, rel=5e-4)   # what we measure


def test_split_and_blended_agree_without_credit_risk_and_differ_with_it():
    bond, terms = build(0.0, 5, 0.375, SPOT, None, None, None)
    kw = dict(spot=SPOT, volatility=0.6, risk_free_rate=RATE, steps=800)
    a = value_convertible(terms, credit_spread=0.0, method="blended", **kw)
    b = value_convertible(terms, credit_spread=0.0, method="split", **kw)
    assert a.price == pytest.approx(b.price, rel=1e-12)
    a = value_convertible(terms, credit_spread=0.05, method="blended", **kw)
    b = value_convertible(terms, credit_spread=0.05, method="split", **kw)
    # The split discounts only the cash part at the risky rate: worth more (+3.4 % here).
    assert b.price / a.price - 1 == pytest.approx(0.034, abs=0.002)
    assert b.equity_part + b.debt_part == pytest.approx(b.price)


def test_bond_floor_parity_and_greeks():
    bond, terms = build(0.04, 5, 50.0, SPOT, None, None, None)  # a 5,000 % premium
    v = value_convertible(terms, spot=SPOT, volatility=0.6, risk_free_rate=RATE,
                          credit_spread=0.05, steps=1000)
    # Nearly a straight bond: 10 semiannual coupons of 2 and 100 at 5y, discounted at
    # 9 %; the tree discounts per step (1 + r dt), the floor continuously.
    assert v.price == pytest.approx(v.bond_floor, rel=2e-3)
    assert v.delta < 0.03 * terms.conversion_ratio
    bond, terms = build(0.04, 6, 0.275, SPOT, 3, 1.3, None)
    kw = dict(volatility=0.7, risk_free_rate=RATE, credit_spread=0.06, steps=1000)
    v = value_convertible(terms, spot=SPOT, **kw)
    assert v.conversion_value == pytest.approx(100 / 1.275)
    assert v.price > max(v.bond_floor, v.conversion_value)
    # Delta against bump-and-revalue; gamma positive.
    h = 0.01 * SPOT
    up = value_convertible(terms, spot=SPOT + h, **kw).price
    down = value_convertible(terms, spot=SPOT - h, **kw).price
    assert v.delta == pytest.approx((up - down) / (2 * h), rel=0.03)
    assert 0 < v.delta < terms.conversion_ratio and v.gamma > 0


def test_implied_volatility_round_trip_and_refusal():
    bond, terms = build(0.04, 6, 0.275, SPOT, 3, 1.3, None)
    kw = dict(spot=SPOT, risk_free_rate=RATE, credit_spread=0.06, steps=500)
    price = value_convertible(terms, volatility=0.65, **kw).price
    assert implied_volatility(terms, price, **kw) == pytest.approx(0.65, abs=1e-6)
    with pytest.raises(SolverError, match="no volatility"):
        implied_volatility(terms, 50.0, **kw)  # below the bond floor


@pytest.mark.parametrize("steps", [7, 500, 1000])
@pytest.mark.parametrize("name", list(SETS))
def test_compiled_and_numpy_lattices_give_the_same_bits(name, steps):
    """The numba loop does the numpy rollback's arithmetic operation for operation, so
    which one runs cannot change a figure (issue 10: speed without a second model)."""
    coupon, years, premium, vol, spread, call_from, trigger, put = SETS[name]
    _, terms = build(coupon, years, premium, SPOT, call_from, trigger, put)
    kw = dict(spot=SPOT, volatility=vol, risk_free_rate=RATE, credit_spread=spread,
              steps=steps)
    a = value_convertible(terms, kernel="compiled", **kw)
    b = value_convertible(terms, kernel="numpy", **kw)
    assert (a.price, a.equity_part, a.delta, a.gamma) == \
        (b.price, b.equity_part, b.delta, b.gamma)


def test_kernel_choice_is_checked():
    _, terms = build(0.0, 5, 0.375, SPOT, None, None, None)
    with pytest.raises(InputError, match="kernel must be"):
        value_convertible(terms, spot=SPOT, volatility=0.6, risk_free_rate=RATE,
                          credit_spread=0.05, kernel="fortran")
