"""Convertible notes: valuation on a binomial lattice in the Tsiveriotis-Fernandes manner.

The credit risk of a convertible sits only in what it pays in cash: shares can always be
delivered. Two ways of putting that on a tree are offered, by ``method``:

- ``"blended"`` (default): each node carries the probability ``p`` that the note ends in
  shares (1 where it converts, rolled back as an expectation) and is discounted at
  ``r + (1 - p) x spread`` — the equity-like share at the risk-free rate, the debt-like
  share at the risky rate. This is what QuantLib's ``BinomialConvertibleEngine`` (its
  ``TsiveriotisFernandesLattice``) computes, so it can be checked against QuantLib.
- ``"split"``: the value is carried as two parts, as in Tsiveriotis & Fernandes (1998,
  J. Fixed Income 8(2)): the **equity part** (what is received in shares) discounted at
  the risk-free rate, the **debt part** (coupons, redemption, put and call cash) at the
  risk-free rate plus the spread. With a spread it prices 2-7 % above ``blended`` on
  2025-style miner converts (tests/test_convertible.py shows the gap); with no spread the
  two agree.

On a Cox-Ross-Rubinstein tree for the share price (risk-neutral drift ``r - q``), going
back from maturity, at each node: hold = discounted expectation of both parts; then, on a
call date where the share price is at or above the trigger, the issuer calls when holding
is worth more than the call price and the holder takes the better of the call price (cash)
and conversion (shares); on a put date the holder puts when the put price is worth more;
coupons falling on the date are added to the debt part; the holder converts (American, any
time) when the shares are worth more than holding. This is the order QuantLib's
``DiscretizedConvertible`` applies them in, so the two can be compared step for step.
Event times snap to the nearest tree step. Money is per ``face`` of notional.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from scipy.optimize import brentq

from finmodel.errors import InputError, SolverError


@dataclass(frozen=True)
class Call:
    """Issuer call at ``time`` (years) for ``price`` (per face), if the share price is at
    least ``trigger`` x the conversion price (a soft call; None: a hard call)."""

    time: float
    price: float
    trigger: float | None = None


@dataclass(frozen=True)
class Put:
    """Holder put at ``time`` (years) for ``price`` (per face)."""

    time: float
    price: float


@dataclass(frozen=True)
class ConvertibleTerms:
    """The contractual terms a lattice needs, times in years from the valuation date.

    ``conversion_ratio`` is shares received per ``face`` of notional; the conversion
    price is ``face / conversion_ratio``.
    """

    face: float
    maturity_years: float
    conversion_ratio: float
    coupon_times: tuple[float, ...] = ()
    coupon_amounts: tuple[float, ...] = ()
    redemption: float | None = None  # defaults to face
    calls: tuple[Call, ...] = field(default_factory=tuple)
    puts: tuple[Put, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.face <= 0 or self.maturity_years <= 0 or self.conversion_ratio <= 0:
            raise InputError("convertible: face, maturity_years and conversion_ratio must be "
                             f"positive (got {self.face}, {self.maturity_years}, "
                             f"{self.conversion_ratio})")
        if len(self.coupon_times) != len(self.coupon_amounts):
            raise InputError("convertible: one coupon amount per coupon time")

    @property
    def conversion_price(self) -> float:
        return self.face / self.conversion_ratio

    @property
    def redemption_amount(self) -> float:
        return self.face if self.redemption is None else self.redemption


@dataclass(frozen=True)
class ConvertibleValue:
    """A lattice valuation, per ``face`` of notional."""

    price: float
    equity_part: float  # "blended": conversion probability x price; "split": equity part
    debt_part: float
    delta: float  # d price / d share price
    gamma: float
    bond_floor: float  # coupons and redemption discounted at r + spread, no conversion
    conversion_value: float  # conversion_ratio x share price
    steps: int

    @property
    def premium_to_parity(self) -> float:
        return self.price / self.conversion_value - 1.0


def value_convertible(terms: ConvertibleTerms, *, spot: float, volatility: float,
                      risk_free_rate: float, credit_spread: float,
                      dividend_yield: float = 0.0, steps: int = 500,
                      method: Literal["blended", "split"] = "blended",
                      kernel: Literal["auto", "numpy", "compiled"] = "auto",
                      ) -> ConvertibleValue:
    """Value a convertible note on a CRR tree (see the module notes for ``method``).

    Parameters
    ----------
    spot
        Share price today.
    volatility, risk_free_rate, credit_spread, dividend_yield
        Annual decimals; rates continuously compounded, discounting per step
        ``1 / (1 + rate x dt)`` as QuantLib does.
    steps
        Tree steps to maturity (500+ for prices stable to a few basis points).
    kernel
        How the ``"blended"`` tree is rolled back; every choice gives the same bits.
        ``"numpy"``: one array operation per step (~15-30 ms at 1,000 steps).
        ``"compiled"``: a loop compiled by numba (``pip install finmodel[fast]``; ~1.5 ms
        at 1,000 steps, as fast as QuantLib's C++), which costs ~0.5-1 s once per
        process to import numba and load its cached machine code (and a few seconds the
        first time after an install, to compile). ``"auto"``: compiled where numba is
        installed, numpy otherwise; worth it when a process values many lattices
        (``implied_volatility``, sweeps), not for one (``notes.lattice_value`` asks for
        ``"numpy"``). ``"split"`` always uses numpy.
    """
    if spot <= 0 or volatility <= 0 or steps < 2:
        raise InputError(f"convertible: spot and volatility must be positive and steps >= 2 "
                         f"(got {spot}, {volatility}, {steps})")
    if method not in ("blended", "split"):
        raise InputError(f"convertible: method must be 'blended' or 'split', got {method!r}")
    if kernel not in ("auto", "numpy", "compiled"):
        raise InputError(f"convertible: kernel must be 'auto', 'numpy' or 'compiled', got "
                         f"{kernel!r}")
    T, n = terms.maturity_years, int(steps)
    dt = T / n
    dx = volatility * math.sqrt(dt)
    # CRR in log space: up/down by dx; probability matching the drift r - q - sigma^2/2.
    pu = 0.5 + 0.5 * (risk_free_rate - dividend_yield - 0.5 * volatility ** 2) * dt / dx
    if not 0.0 < pu < 1.0:
        raise InputError("convertible: the tree has no risk-neutral probability; use more "
                         "steps")
    pd = 1.0 - pu
    r, spread, cr = risk_free_rate, credit_spread, terms.conversion_ratio
    redemption = terms.redemption_amount

    def step_of(t: float) -> int:
        return min(n, max(0, int(round(t / dt))))

    coupons: dict[int, float] = {}
    for t, c in zip(terms.coupon_times, terms.coupon_amounts):
        if 0.0 < t <= T + 1e-12:
            coupons[step_of(t)] = coupons.get(step_of(t), 0.0) + c
    calls = {step_of(c.time): c for c in terms.calls if 0.0 <= c.time <= T}
    puts = {step_of(p.time): p for p in terms.puts if 0.0 <= p.time <= T}

    # Every node's share price, once: node j of level i sits at (2j - i) dx in log space,
    # so each level is every other entry of one ladder of 2n + 1 prices.
    ladder = spot * np.exp(np.arange(-n, n + 1) * dx)
    conv_ladder = cr * ladder

    def share_prices(i: int) -> np.ndarray:
        return ladder[n - i:n + i + 1:2]

    compiled = None
    if method == "blended" and kernel != "numpy":
        compiled = _compiled_blended()
        if compiled is None and kernel == "compiled":
            raise InputError("convertible: kernel='compiled' needs numba (pip install "
                             "finmodel[fast]); use kernel='numpy' or 'auto'")
    if compiled is not None:
        price, equity_part, saved = _run_blended_kernel(
            compiled, n, pu, pd, spread * dt, 1.0 + (r + spread) * dt, redemption, coupons,
            calls, puts, conv_ladder, ladder, terms.conversion_price)
    elif method == "blended":
        price, equity_part, saved = _roll_back_blended(
            n, pu, pd, spread * dt, 1.0 + (r + spread) * dt, redemption, coupons, calls, puts,
            conv_ladder, ladder, terms.conversion_price)
    else:
        price, equity_part, saved = _roll_back_split(
            n, pu, pd, r * dt, 1.0 + (r + spread) * dt, redemption, coupons, calls, puts,
            conv_ladder, ladder, terms.conversion_price)
    # Delta and gamma from the nodes one and two steps in (the usual tree estimates).
    s1, s2 = share_prices(1), share_prices(2)
    v1, v2 = saved[1], saved[2]
    delta = float((v1[1] - v1[0]) / (s1[1] - s1[0]))
    gamma = float(((v2[2] - v2[1]) / (s2[2] - s2[1]) - (v2[1] - v2[0]) / (s2[1] - s2[0]))
                  / (0.5 * (s2[2] - s2[0])))
    floor = sum(c * math.exp(-(r + spread) * t)
                for t, c in zip(terms.coupon_times, terms.coupon_amounts) if 0.0 < t <= T)
    floor += redemption * math.exp(-(r + spread) * T)
    return ConvertibleValue(price, equity_part, price - equity_part, delta, gamma, floor,
                            cr * spot, n)


def implied_volatility(terms: ConvertibleTerms, market_price: float, *, spot: float,
                       risk_free_rate: float, credit_spread: float,
                       dividend_yield: float = 0.0, steps: int = 500,
                       bounds: tuple[float, float] = (0.01, 3.0),
                       method: Literal["blended", "split"] = "blended",
                       kernel: Literal["auto", "numpy", "compiled"] = "auto") -> float:
    """The volatility at which the lattice price equals ``market_price`` (brentq; each
    try is one lattice, ``kernel`` as in ``value_convertible``).

    Raises
    ------
    SolverError
        When no volatility within ``bounds`` reproduces the price (below the bond floor,
        or above what any volatility gives).
    """
    def gap(vol: float) -> float:
        return value_convertible(terms, spot=spot, volatility=vol,
                                 risk_free_rate=risk_free_rate, credit_spread=credit_spread,
                                 dividend_yield=dividend_yield, steps=steps,
                                 method=method, kernel=kernel).price - market_price

    lo, hi = gap(bounds[0]), gap(bounds[1])
    if lo * hi > 0:
        raise SolverError(f"no volatility in {bounds} gives the price {market_price:g} (prices "
                          f"there: {lo + market_price:.4f} to {hi + market_price:.4f})")
    return float(brentq(gap, *bounds, xtol=1e-10))


def _roll_back_blended(n, pu, pd, s_dt, grow, redemption, coupons, calls, puts,
                       conv_ladder, ladder, conversion_price):
    """The "blended" rollback in numpy, one array operation per step (used where numba is
    not installed): (price, equity part, values at levels 0-2).

    Two rows, the value and the conversion probability, rolled back together in place.
    The arithmetic is ``_blended_loop``'s, operation for operation, so both give the same
    bits (tests/test_convertible.py).
    """
    state = np.zeros((2, n + 1))
    state[0] = redemption
    saved: dict[int, np.ndarray] = {}
    for i in range(n, -1, -1):
        if i < n:
            value, prob = state
            value /= grow - s_dt * prob  # at r + (1 - prob) x spread
            rolled = pu * state[:, 1:]
            rolled += pd * state[:, :-1]
            state = rolled
        value, prob = state
        conv = conv_ladder[n - i:n + i + 1:2]
        # Events in QuantLib's order: call and put, coupon, conversion.
        call = calls.get(i)
        if call is not None:
            active = True if call.trigger is None else \
                ladder[n - i:n + i + 1:2] >= call.trigger * conversion_price
            capped = np.minimum(np.maximum(call.price, conv), value)
            value[:] = np.where(active, capped, value)
        put = puts.get(i)
        if put is not None:
            value[:] = np.where(put.price > value, put.price, value)
        if i in coupons:
            value += coupons[i]
        converted = value <= conv
        np.maximum(value, conv, out=value)
        prob[converted] = 1.0
        if i <= 2:
            saved[i] = value.copy()
    price = float(state[0, 0])
    return price, float(state[1, 0] * price), saved


def _roll_back_split(n, pu, pd, r_dt, grow, redemption, coupons, calls, puts,
                     conv_ladder, ladder, conversion_price):
    """The "split" rollback: (price, equity part, values at levels 0-2).

    Two rows, the value and its equity part: the debt part (value - equity) is
    discounted at ``r + spread``, the equity part at ``r``.
    """
    state = np.zeros((2, n + 1))
    state[0] = redemption
    grow_free = 1.0 + r_dt
    saved: dict[int, np.ndarray] = {}
    for i in range(n, -1, -1):
        if i < n:
            value, other = state
            value -= other  # the debt part, at r + spread; the equity part at r
            value /= grow
            other /= grow_free
            rolled = pu * state[:, 1:]
            rolled += pd * state[:, :-1]
            state = rolled
            state[0] += state[1]
        value, other = state
        conv = conv_ladder[n - i:n + i + 1:2]
        call = calls.get(i)
        if call is not None:
            s = ladder[n - i:n + i + 1:2]
            active = np.ones_like(s, dtype=bool) if call.trigger is None else \
                s >= call.trigger * conversion_price
            capped = np.minimum(np.maximum(call.price, conv), value)
            forced = active & (capped < value)
            # Called: shares if they are worth more, else cash.
            other[:] = np.where(forced, np.where(conv >= call.price, conv, 0.0), other)
            value[:] = np.where(active, capped, value)
        put = puts.get(i)
        if put is not None:
            exercised = put.price > value
            value[:] = np.where(exercised, put.price, value)
            other[exercised] = 0.0
        if i in coupons:
            value += coupons[i]
        converted = value <= conv
        np.maximum(value, conv, out=value)
        np.copyto(other, conv, where=converted)
        if i <= 2:
            saved[i] = value.copy()
    return float(state[0, 0]), float(state[1, 0]), saved


# --- The "blended" rollback as one compiled loop (numba, when installed) -----------------
#
# At 1,000 steps the numpy rollback above makes ~7,000 array calls of a few hundred nodes
# each, and numpy's ~1.3 us per call, not arithmetic, sets its time (~2x QuantLib's C++).
# The same arithmetic as a loop over nodes, compiled by numba, is as fast as QuantLib.
# numba is optional (``pip install finmodel[fast]``): it is imported only when a lattice
# is valued with kernel "auto" or "compiled", so nothing else pays its import, and
# ``cache=True`` keeps the machine code beside this file so the compile is paid once per
# install, not once per run.

_KERNEL: list = []  # [compiled function or None], filled on first use


def _compiled_blended():
    """The compiled blended loop, or None where numba is not installed (or cannot compile
    here: then the numpy rollback does the same arithmetic)."""
    if not _KERNEL:
        try:
            import numba
            kernel = numba.njit(cache=True, nogil=True)(_blended_loop)
        except Exception:  # not installed, or no cache locator / LLVM on this platform
            kernel = None
        _KERNEL.append(kernel)
    return _KERNEL[0]


def _run_blended_kernel(kernel, n, pu, pd, s_dt, grow, redemption, coupons, calls, puts,
                        conv_ladder, ladder, conversion_price):
    """Lay the events out per step and run ``kernel``: (price, equity part, saved levels)."""
    nan = math.nan
    coupon = np.zeros(n + 1)
    has_coupon = np.zeros(n + 1, dtype=np.bool_)
    for i, c in coupons.items():
        coupon[i], has_coupon[i] = c, True
    call_price = np.full(n + 1, nan)
    call_level = np.full(n + 1, -math.inf)  # a hard call is active at every share price
    for i, c in calls.items():
        call_price[i] = c.price
        if c.trigger is not None:
            call_level[i] = c.trigger * conversion_price
    put_price = np.full(n + 1, nan)
    for i, p in puts.items():
        put_price[i] = p.price
    saved = np.empty((3, 3))
    price, prob = kernel(n, pu, pd, s_dt, grow, redemption, coupon, has_coupon, call_price,
                         call_level, put_price, conv_ladder, ladder, saved)
    return price, prob * price, {1: saved[1, :2].copy(), 2: saved[2, :3].copy()}


def _blended_loop(n, pu, pd, s_dt, grow, redemption, coupon, has_coupon, call_price,
                  call_level, put_price, conv_ladder, ladder, saved):
    """The blended rollback node by node, with the numpy version's arithmetic operation for
    operation (so the two give the same bits): returns (price, conversion probability) and
    writes levels 0-2's values into ``saved``. Plain Python; compiled by numba."""
    value = np.empty(n + 1)
    prob = np.zeros(n + 1)
    for j in range(n + 1):
        value[j] = redemption
    for i in range(n, -1, -1):
        if i < n:
            # Node j of level i from children j (down) and j + 1 (up), each discounted at
            # its own blended rate; ascending j reads value[j + 1] before it is written.
            down = value[0] / (grow - s_dt * prob[0])
            for j in range(i + 1):
                up = value[j + 1] / (grow - s_dt * prob[j + 1])
                value[j] = pu * up + pd * down
                prob[j] = pu * prob[j + 1] + pd * prob[j]
                down = up
        base = n - i
        price_c, level, price_p = call_price[i], call_level[i], put_price[i]
        for j in range(i + 1):
            conv = conv_ladder[base + 2 * j]
            v = value[j]
            if price_c == price_c and ladder[base + 2 * j] >= level:  # a call today
                v = min(max(price_c, conv), v)
            if price_p == price_p and price_p > v:
                v = price_p
            if has_coupon[i]:
                v += coupon[i]
            if v <= conv:
                prob[j] = 1.0
                v = conv
            value[j] = v
        if i <= 2:
            for j in range(i + 1):
                saved[i, j] = value[j]
    return value[0], prob[0]
