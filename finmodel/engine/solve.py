"""Vectorised solvers: IRR across scenarios, and bracketed roots of a model output.

A vectorised solver never fails silently: where it finds no answer it returns NaN and
:func:`irr_reasons` (or the ``reason`` array of :func:`bracketed_root`) says why.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.optimize import brentq

# Grid of periodic rates scanned for a sign change when Newton's method fails.
_SCAN = np.concatenate([np.linspace(-0.99, -0.1, 90), np.linspace(-0.1, 0.1, 401)[1:],
                        np.geomspace(0.1, 10.0, 60)[1:]])


def _npv0(values: np.ndarray, rate: np.ndarray) -> np.ndarray:
    """sum(c_i / (1 + r) ** i), i from 0 (Excel IRR's own convention)."""
    i = np.arange(values.shape[1])
    return (values * (1.0 + rate[:, None]) ** -i).sum(axis=1)


def irr_periodic(values: np.ndarray, *, guess: float = 0.01, tol: float = 1e-13,
                 maxiter: int = 100) -> np.ndarray:
    """Periodic IRR of each row of ``values`` (scenarios, periods).

    Newton's method from ``guess`` for every row at once (as Excel's IRR does, so both find
    the same root when a series has several), then a scan-and-``brentq`` fallback for rows
    where Newton did not converge. Rows with no sign change give NaN.

    Parameters
    ----------
    values
        Cash flows, first column at time 0 (Excel's ``IRR`` convention).
    guess
        Starting periodic rate.

    Returns
    -------
    numpy.ndarray
        One periodic rate per row, NaN where there is none.
    """
    c = np.atleast_2d(np.asarray(values, dtype=float))
    s, n = c.shape
    i = np.arange(n, dtype=float)
    r = np.full(s, float(guess))
    done = np.zeros(s, dtype=bool)
    has_root = (c.max(axis=1) > 0) & (c.min(axis=1) < 0)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for _ in range(maxiter):
            x = (1.0 + r)[:, None] ** -i
            f = (c * x).sum(axis=1)
            fp = -(i * c * x).sum(axis=1) / (1.0 + r)
            step = f / fp
            new = r - step
            new = np.where(new <= -1.0, (r - 1.0) / 2.0, new)  # stay above -100 %
            conv = np.abs(new - r) <= tol * (1.0 + np.abs(r))
            r = np.where(done, r, new)
            done |= conv & np.isfinite(new)
            if done.all():
                break
        ok = done & np.isfinite(r) & has_root
        ok[ok] = np.abs(_npv0(c[ok], r[ok])) <= 1e-7 * np.abs(c[ok]).sum(axis=1)
    out = np.where(ok, r, np.nan)
    for k in np.flatnonzero(~ok & has_root):
        out[k] = _scan_root(c[k], guess)
    return out


def _scan_root(row: np.ndarray, guess: float) -> float:
    """The root nearest ``guess`` among the sign changes on a rate grid, or NaN."""
    f = _npv0(np.broadcast_to(row, (_SCAN.size, row.size)), _SCAN)
    change = np.flatnonzero(np.sign(f[:-1]) * np.sign(f[1:]) < 0)
    if change.size == 0:
        return float("nan")
    k = change[np.argmin(np.abs(_SCAN[change] - guess))]
    g = lambda rate: float(_npv0(row[None, :], np.array([rate]))[0])  # noqa: E731
    return float(brentq(g, _SCAN[k], _SCAN[k + 1], xtol=1e-15, rtol=1e-14))


def irr_reasons(values: np.ndarray, rates: np.ndarray) -> np.ndarray:
    """Why each NaN of :func:`irr_periodic` has no rate ('' where a rate was found)."""
    c = np.atleast_2d(np.asarray(values, dtype=float))
    signs = np.sign(c)
    changes = (np.diff(np.where(signs == 0, np.nan, signs), axis=1) != 0).sum(axis=1)
    reason = np.full(c.shape[0], "", dtype=object)
    nan = np.isnan(rates)
    reason[nan & (c.max(axis=1) <= 0)] = "no positive cash flow: no IRR"
    reason[nan & (c.min(axis=1) >= 0)] = "no negative cash flow: no IRR"
    reason[nan & (reason == "")] = "no root found above -100 % per period"
    reason[~nan & (changes > 1)] = "several sign changes: the root nearest the guess"
    return reason


def annualise(monthly_rate: np.ndarray | float) -> np.ndarray:
    """Monthly rate -> annual rate, ``(1 + r) ** 12 - 1``."""
    return (1.0 + np.asarray(monthly_rate)) ** 12 - 1.0


def bracketed_root(
    f: Callable[[np.ndarray], np.ndarray],
    lo: np.ndarray,
    hi: np.ndarray,
    *,
    xtol: float = 1e-9,
    maxiter: int = 200,
) -> tuple[np.ndarray, np.ndarray]:
    """Roots of a vectorised function, one per scenario, within ``[lo, hi]``.

    Illinois (modified false-position) iteration on every scenario at once: each call of
    ``f`` evaluates all scenarios, so solving 1,000 break-evens costs about as many model
    evaluations as solving one. The bracket must change sign; where it does not the root
    is NaN and the reason says so.

    Returns
    -------
    (roots, reasons)
        Roots (NaN where none) and a reason string per scenario ('' when solved).
    """
    a, b = np.array(lo, dtype=float), np.array(hi, dtype=float)
    fa, fb = f(a), f(b)
    reason = np.full(a.shape, "", dtype=object)
    bad = np.sign(fa) * np.sign(fb) > 0
    reason[bad] = "the target is not crossed between the bracket's ends"
    reason[~np.isfinite(fa) | ~np.isfinite(fb)] = "the model is not finite at the bracket"
    x = np.where(fa == 0, a, b)
    active = (reason == "") & (fa != 0) & (fb != 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        for _ in range(maxiter):
            if not active.any():
                break
            x_new = np.where(active, b - fb * (b - a) / (fb - fa), x)
            fx = f(x_new)
            same = np.sign(fx) == np.sign(fb)
            # Illinois step: when the new point lands on b's side, keep a but halve f(a),
            # which stops false position from creeping in from one end only.
            a_next = np.where(active & ~same, b, a)
            fa_next = np.where(active & ~same, fb, np.where(active & same, fa / 2, fa))
            b = np.where(active, x_new, b)
            fb = np.where(active, fx, fb)
            a, fa = a_next, fa_next
            x = x_new
            active &= (np.abs(b - a) > xtol * np.maximum(1.0, np.abs(b))) & (fx != 0)
    unsolved = active & (reason == "")
    reason[unsolved] = f"no convergence in {maxiter} iterations"
    x = np.where(reason == "", x, np.nan)
    return x, reason
