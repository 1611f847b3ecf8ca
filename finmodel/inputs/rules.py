"""Rules that tie fields of a case together (the site's MW, dates, rates), written once on
arrays so they check a case and every scenario of a vectorised run alike.

A scenario run changes some inputs to arrays (one value per scenario); these rules see the
changed values in place of the case's, so ``mining_it_mw = [1e6]`` on a 100 MW site is
refused as the case file would be.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

#: The least discount rate less terminal growth a perpetuity takes (200 years' cash).
MIN_GROWTH_SPREAD = 0.005

#: Steps of the lattice that values the convertible note (see financing.notes).
LATTICE_STEPS = 1000
#: Months supported: the model's dates stay within what Excel and pandas represent.
FIRST_YEAR, LAST_YEAR = 1900, 2200
_EPOCH = np.datetime64("1899-12-30", "D")  # spreadsheet serial 0


def month_serial(month: str) -> float:
    """A 'YYYY-MM' month's first day as a spreadsheet serial."""
    return float((np.datetime64(month, "D") - _EPOCH).astype(int))


def add_months(serial: Any, months: Any) -> np.ndarray:
    """Serials of first days of months moved by ``months`` (first days again)."""
    day = _EPOCH + np.asarray(serial, dtype=float).astype("timedelta64[D]")
    moved = day.astype("datetime64[M]") + np.asarray(months).astype("timedelta64[M]")
    return (moved.astype("datetime64[D]") - _EPOCH).astype(float)


def serial_month(serial: float) -> str:
    """'YYYY-MM' of a serial."""
    return str((_EPOCH + np.timedelta64(int(serial), "D")).astype("datetime64[M]"))


class _View:
    """The case's values with some replaced by scenario arrays."""

    def __init__(self, case: Any, over: Mapping[str, np.ndarray]) -> None:
        self.case, self.over = case, over
        self.n = max([np.size(v) for v in over.values()] + [1])

    def __call__(self, path: str) -> Any:
        if path in self.over:
            return np.asarray(self.over[path], dtype=float)
        node = self.case
        for part in path.split("."):
            node = node[part] if isinstance(node, dict) else getattr(node, part)
        if isinstance(node, str) and len(node) == 7 and node[4] == "-":
            return month_serial(node)
        return node

    def varied(self, *paths: str) -> bool:
        return any(p in self.over for p in paths)


def _first(bad: Any) -> int | None:
    bad = np.atleast_1d(bad)
    return int(np.flatnonzero(bad)[0]) if bad.any() else None


def _at(x: Any, i: int) -> float:
    x = np.atleast_1d(np.asarray(x, dtype=float))
    return float(x[min(i, x.size - 1)])


def cross_field_problem(case: Any, over: Mapping[str, Any] | None = None) -> str | None:
    """The first cross-field rule the case breaks with ``over`` (field path -> scenario
    values) in place of its own values, as a message naming the fields; None if none."""
    v = _View(case, over or {})
    tag = (lambda i, *p: f" (scenario {i})" if v.varied(*p) and v.n > 1 else "")

    mining, pue, link = v("site.mining_it_mw"), v("power.pue"), v("site.interconnect_mw")
    draw = np.multiply(mining, pue)
    if (i := _first(draw > np.multiply(link, 1 + 1e-12))) is not None:
        return (f"site.mining_it_mw: {_at(mining, i):g} MW x power.pue {_at(pue, i):g} = "
                f"{_at(draw, i):g} MW of grid draw exceeds site.interconnect_mw = "
                f"{_at(link, i):g} MW"
                + tag(i, "site.mining_it_mw", "power.pue", "site.interconnect_mw"))
    contract = v("power.contract_mw")
    if (i := _first(np.greater(contract, np.multiply(link, 1 + 1e-12)))) is not None:
        return (f"power.contract_mw: {_at(contract, i):g} MW exceeds site.interconnect_mw = "
                f"{_at(link, i):g} MW" + tag(i, "power.contract_mw", "site.interconnect_mw"))
    for name, spec in case.strategies.items():
        if spec.kind != "mining" and case.hosting is not None and case.conversion is not None:
            msg = _strategy_problem(case, v, name, tag)
            if msg:
                return msg
    if case.valuation.terminal_method in ("perpetuity_growth", "lease_renewal"):
        g, r = v("valuation.terminal_growth_rate"), v("case.discount_rate")
        # r - g of a hair makes the perpetuity any number at all (0.0999999 at 10 %: 1e7
        # years of cash flow, an NPV of 1e14): at least half a point, 200 years' worth.
        if (i := _first(np.greater(g, np.subtract(r, MIN_GROWTH_SPREAD)))) is not None:
            return (f"valuation.terminal_growth_rate: {_at(g, i):g} must be at least "
                    f"{MIN_GROWTH_SPREAD:g} below case.discount_rate = {_at(r, i):g} (the "
                    f"perpetuity is cash flow / (rate - growth))"
                    + tag(i, "valuation.terminal_growth_rate", "case.discount_rate"))
    if case.financing is not None and case.financing.convertible is not None:
        return _lattice_problem(v, tag)
    return None


def _strategy_problem(case: Any, v: _View, name: str, tag) -> str | None:
    where = f"strategies.{name}"
    spec = case.strategies[name]
    start = v(f"{where}.conversion_start_month")
    first = v("case.start_month")
    if (i := _first(np.less(start, first))) is not None:
        return (f"{where}.conversion_start_month: {serial_month(_at(start, i))} is before "
                f"case.start_month {serial_month(_at(first, i))}"
                + tag(i, f"{where}.conversion_start_month"))
    last = add_months(first, case.case.horizon_years * 12 - 1)
    if (i := _first(np.greater(start, last))) is not None:
        return (f"{where}.conversion_start_month: {serial_month(_at(start, i))} is after the "
                f"model's last month {serial_month(_at(last, i))} (case.start_month + "
                f"case.horizon_years): the strategy would convert nothing"
                + tag(i, f"{where}.conversion_start_month"))
    if case.hosting.phase_ready_months:
        # A phase ready after the horizon is never delivered in the model, yet its capex
        # is drawn over its build and the MW keep mining meanwhile: refused, as a start
        # after the horizon is.
        ready = add_months(start, max(case.hosting.phase_ready_months))
        if (i := _first(np.greater(ready, last))) is not None:
            return (f"hosting.phase_ready_months: the last phase of {where} is ready in "
                    f"{serial_month(_at(ready, i))}, after the model's last month "
                    f"{serial_month(_at(last, i))}; expected every phase ready within the "
                    "horizon (build faster, start earlier or lengthen case.horizon_years)"
                    + tag(i, "hosting.phase_ready_months",
                          f"{where}.conversion_start_month"))
    h_pue, p_pue, link = v("hosting.pue"), v("power.pue"), v("site.interconnect_mw")
    if spec.kind == "ai_hosting" and spec.ai_it_mw is None:
        ai = np.divide(link, h_pue)
    else:
        ai = v(f"{where}.ai_it_mw")
    if (i := _first(np.less_equal(ai, 0))) is not None:
        return f"{where}: the site has no MW left to convert" + tag(i, f"{where}.ai_it_mw")
    kept = v(f"{where}.mining_it_mw")
    kept = 0.0 if kept is None else kept
    need = np.multiply(ai, h_pue) + np.multiply(kept, p_pue)
    if (i := _first(need > np.multiply(link, 1 + 1e-9))) is not None:
        parts = f"ai_it_mw {_at(ai, i):g} MW x hosting.pue {_at(h_pue, i):g}"
        if _at(kept, i):
            parts += f" + mining_it_mw {_at(kept, i):g} MW x power.pue {_at(p_pue, i):g}"
        return (f"{where}: {parts} = {_at(need, i):g} MW of grid draw oversubscribes "
                f"site.interconnect_mw = {_at(link, i):g} MW"
                + tag(i, f"{where}.ai_it_mw", f"{where}.mining_it_mw", "hosting.pue",
                      "power.pue", "site.interconnect_mw"))
    debt = case.financing.debt if case.financing is not None else None
    if debt is not None and spec.product == "lease" and case.hosting.term_years is not None:
        tenor, term = v("financing.debt.tenor_years"), v("hosting.term_years")
        if (i := _first(np.greater(tenor, term))) is not None:
            return (f"financing.debt.tenor_years: {_at(tenor, i):g} years is longer than the "
                    f"lease of {where} (hosting.term_years = {_at(term, i):g})"
                    + tag(i, "financing.debt.tenor_years", "hosting.term_years"))
    if case.hosting.rent_start_month is not None and case.hosting.phase_ready_months:
        ready = add_months(start, min(case.hosting.phase_ready_months))
        rent = v("hosting.rent_start_month")
        if (i := _first(np.less(rent, ready))) is not None:
            return (f"hosting.rent_start_month: {serial_month(_at(rent, i))} is before the "
                    f"conversion of {where} delivers its first phase "
                    f"({serial_month(_at(ready, i))}): a lease cannot start before its "
                    "conversion ends"
                    + tag(i, "hosting.rent_start_month", f"{where}.conversion_start_month"))
    return None


def _lattice_problem(v: _View, tag) -> str | None:
    """The CRR tree's up-move probability must lie in (0, 1): |r - s^2/2| sqrt(dt) < s."""
    p = "financing.convertible."
    r, s, term = v(p + "risk_free_rate"), v(p + "volatility"), v(p + "term_years")
    dt = np.divide(term, LATTICE_STEPS)
    drift = np.abs(np.subtract(r, np.multiply(0.5, np.square(s)))) * np.sqrt(dt)
    if (i := _first(drift >= s)) is not None:
        return (f"{p}volatility: {_at(s, i):g} with {p}risk_free_rate {_at(r, i):g} over "
                f"{p}term_years {_at(term, i):g} leaves the valuation lattice "
                f"({LATTICE_STEPS} steps) without a risk-neutral probability; expected "
                f"|risk_free_rate - volatility^2/2| x sqrt(term_years / {LATTICE_STEPS}) "
                f"below the volatility (it is {_at(drift, i):.3g})"
                + tag(i, p + "risk_free_rate", p + "volatility", p + "term_years"))
    return None
