"""QuantLib as the oracle for convertible prices (test-only dependency)."""

from __future__ import annotations

import QuantLib as ql

from finmodel.financing.convertible import Call, ConvertibleTerms, Put

TODAY = ql.Date(17, 11, 2025)
DC = ql.Actual365Fixed()


def build(coupon: float, years: int, premium: float, spot: float, call_from_year: int | None,
          trigger: float | None, put_year: int | None = None, face: float = 100.0):
    """(QuantLib bond, finmodel terms) for the same semiannual note issued today."""
    ql.Settings.instance().evaluationDate = TODAY
    maturity = TODAY + ql.Period(years, ql.Years)
    schedule = ql.Schedule(TODAY, maturity, ql.Period(ql.Semiannual), ql.NullCalendar(),
                           ql.Unadjusted, ql.Unadjusted, ql.DateGeneration.Backward, False)
    ratio = face / (spot * (1 + premium))
    callability = ql.CallabilitySchedule()
    calls, puts = [], []
    dates = list(schedule)[1:]
    for d in dates:
        t = DC.yearFraction(TODAY, d)
        if call_from_year is not None and t >= call_from_year - 1e-9 and d != maturity:
            price = ql.BondPrice(face, ql.BondPrice.Clean)
            if trigger is None:
                callability.append(ql.Callability(price, ql.Callability.Call, d))
            else:
                callability.append(ql.SoftCallability(price, d, trigger))
            calls.append(Call(t, face, trigger))
    if put_year is not None:
        d = TODAY + ql.Period(put_year, ql.Years)
        callability.append(ql.Callability(ql.BondPrice(face, ql.BondPrice.Clean),
                                          ql.Callability.Put, d))
        puts.append(Put(DC.yearFraction(TODAY, d), face))
    bond = ql.ConvertibleFixedCouponBond(ql.AmericanExercise(TODAY, maturity), ratio,
                                         callability, TODAY, 0, [coupon],
                                         ql.Thirty360(ql.Thirty360.BondBasis), schedule, face)
    terms = ConvertibleTerms(
        face=face, maturity_years=DC.yearFraction(TODAY, maturity), conversion_ratio=ratio,
        coupon_times=tuple(DC.yearFraction(TODAY, d) for d in dates),
        coupon_amounts=tuple(face * coupon / 2 for _ in dates),
        calls=tuple(calls), puts=tuple(puts))
    return bond, terms


def quantlib_price(bond, *, spot: float, vol: float, rate: float, spread: float,
                   steps: int, dividend_yield: float = 0.0) -> float:
    process = ql.BlackScholesMertonProcess(
        ql.QuoteHandle(ql.SimpleQuote(spot)),
        ql.YieldTermStructureHandle(ql.FlatForward(TODAY, dividend_yield, DC)),
        ql.YieldTermStructureHandle(ql.FlatForward(TODAY, rate, DC)),
        ql.BlackVolTermStructureHandle(ql.BlackConstantVol(TODAY, ql.NullCalendar(), vol, DC)))
    bond.setPricingEngine(ql.BinomialCRRConvertibleEngine(
        process, steps, ql.QuoteHandle(ql.SimpleQuote(spread))))
    return bond.NPV()
