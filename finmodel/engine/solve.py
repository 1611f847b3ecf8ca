"""Vectorised solvers: IRR across scenarios, and bracketed roots of a model output.

A vectorised solver never fails silently: where it finds no answer it returns NaN and
:func:`irr_reasons` (or the ``reason`` array of :func:`bracketed_root`) says why.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

def _npv0(values: np.ndarray, rate: np.ndarray) -> np.ndarray:
    """sum(c_i / (1 + r) ** i), i from 0 (Excel IRR's own convention), row by row."""
    i = np.arange(values.shape[1])
    return (values * (1.0 + rate[:, None]) ** -i).sum(axis=1)


def _discount_factors(r: np.ndarray, n: int) -> np.ndarray:
    """(1 + r) ** -t for t = 0 .. n-1, row by row, by running products (cheaper than
    powers; the rounding it adds is ~n ulp, far inside the convergence test)."""
    x = np.empty((r.size, n))
    x[:, 0] = 1.0
    if n > 1:
        x[:, 1:] = (1.0 / (1.0 + r))[:, None]
        np.cumprod(x[:, 1:], axis=1, out=x[:, 1:])
    return x


def irr_periodic(values: np.ndarray, *, guess: float = 0.01, tol: float = 1e-13,
                 maxiter: int = 30) -> np.ndarray:
    """Periodic IRR of each row of ``values`` (scenarios, periods).

    A scan of NPV over a grid of rates (one matrix product for all rows) finds the rows
    that have a root at all. Those run Newton's method from ``guess`` together, as Excel's
    IRR does, so both find the same root when a series has several; rows where Newton has
    not converged after ``maxiter`` steps are solved, all at once, in the grid's sign
    change nearest the guess. Rows with no root give NaN (see :func:`irr_reasons`).

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
    out = np.full(s, np.nan)
    lo, hi, f_lo, f_hi = _brackets(c, guess)
    rows = np.flatnonzero(np.isfinite(lo))
    bracketed = rows.copy()
    r = np.full(rows.size, float(guess))
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for _ in range(maxiter):
            if rows.size == 0:
                break
            cc = c[rows]
            x = _discount_factors(r, n)
            cx = cc * x
            f = cx.sum(axis=1)
            fp = -(cx * i).sum(axis=1) / (1.0 + r)  # row-wise: the same bits in any chunk
            new = r - f / fp
            new = np.where(new <= -1.0, (r - 1.0) / 2.0, new)  # stay above -100 %
            conv = (np.abs(new - r) <= tol * (1.0 + np.abs(r))) & np.isfinite(new)
            out[rows[conv]] = new[conv]
            keep = ~conv & np.isfinite(new)
            rows, r = rows[keep], new[keep]
        # Newton may also have stopped on a point that is not a root: check the residual
        # against the size of the discounted flows.
        done = bracketed[np.isfinite(out[bracketed])]
        disc = c[done] * (1.0 + out[done])[:, None] ** -i
        bad = np.abs(disc.sum(axis=1)) > 1e-9 * np.abs(disc).sum(axis=1)
        out[done[bad]] = np.nan
    failed = bracketed[np.isnan(out[bracketed])]
    if failed.size:
        rows_c = c[failed]
        roots, _ = bracketed_root(lambda x: _npv0(rows_c, x), lo[failed], hi[failed],
                                  xtol=1e-15)
        out[failed] = roots
    return out


def _brackets(c: np.ndarray, guess: float) -> tuple[np.ndarray, ...]:
    """For each row, the grid interval of the NPV sign change nearest ``guess`` (NaN when
    NPV does not change sign on the grid), and the NPV at its two ends."""
    n = c.shape[1]
    # Lowest rate whose discount factors stay finite over n periods.
    low = max(10.0 ** (-250.0 / max(n - 1, 1)) - 1.0, -0.99)
    grid = np.unique(np.concatenate([np.linspace(low, -0.1, 60), np.linspace(-0.1, 0.1, 201),
                                     np.geomspace(0.1, 10.0, 40)]))
    disc = (1.0 + grid)[None, :] ** -np.arange(n, dtype=float)[:, None]
    with np.errstate(over="ignore", invalid="ignore"):
        f = c @ disc  # (rows, grid): NPV of every row at every grid rate
    change = np.sign(f[:, :-1]) * np.sign(f[:, 1:]) < 0
    dist = np.where(change, np.abs(grid[:-1] - guess)[None, :], np.inf)
    k = np.argmin(dist, axis=1)
    rows = np.arange(len(k))
    found = np.isfinite(dist[rows, k])
    k1 = np.minimum(k + 1, grid.size - 1)
    lo = np.where(found, grid[k], np.nan)
    hi = np.where(found, grid[k1], np.nan)
    return lo, hi, f[rows, k], f[rows, k1]


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
