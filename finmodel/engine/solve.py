"""Vectorised solvers: IRR across scenarios, and bracketed roots of a model output.

A vectorised solver never fails silently: where it finds no answer it returns NaN and
:func:`irr_reasons` (or the ``reason`` array of :func:`bracketed_root`) says why.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np


@functools.lru_cache(maxsize=1)
def _threadpools():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def one_blas_thread():
    """A context in which BLAS (numpy's matrix products) runs on one thread.

    The IRR scan's products are small and Monte Carlo runs one chunk per core: BLAS's own
    threads only oversubscribe the cores (benchmarks/README.md: bench_monte_carlo.py
    measures a run with them and without).
    """
    return _threadpools().limit(limits=1, user_api="blas")


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
    that have a root at all, and where. A row with one sign change on the grid runs
    Newton's method from the middle of its grid interval (3-4 steps); a row with several
    runs it from ``guess``, as Excel's IRR does, so both find the same root. A root that
    falls exactly on a grid rate is that rate. Rows where Newton has not converged after
    ``maxiter`` steps are solved, all at once, in the grid's sign change nearest the guess.
    Rows with no root give NaN (see :func:`irr_reasons`). Every step is row by row, so a
    row's rate has the same bits whatever other rows are solved with it.

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
    out = np.full(c.shape[0], np.nan)
    with one_blas_thread():
        lo, hi, f_lo, f_hi, count = _brackets(c, guess)
    # A root on a grid rate (lo == hi) is that rate when it is the row's only one.
    on_grid = (count == 1) & (lo == hi)
    out[on_grid] = lo[on_grid]
    rows = np.flatnonzero((count > 0) & ~on_grid)
    lone = count[rows] == 1
    with np.errstate(invalid="ignore", divide="ignore"):
        # False position in the lone root's interval, rounded to 2^-24 so that the last
        # bits of the matrix product (which may depend on the chunk) cannot move it, and
        # snapped to a grid rate next to it, where the root may be exact (-100, 110).
        a, b = lo[rows], hi[rows]
        fp = a - f_lo[rows] * (b - a) / (f_hi[rows] - f_lo[rows])
        fp = np.where(np.abs(fp - a) < 2.0 ** -24, a,
                      np.where(np.abs(fp - b) < 2.0 ** -24, b, np.round(fp * 2.0 ** 24)
                               / 2.0 ** 24))
        start = np.where(lone, fp, float(guess))
    sub = c if rows.size == c.shape[0] else c[rows]
    out[rows] = _newton(sub, _transposed(sub), start, lo[rows], hi[rows], tol, maxiter)
    failed = rows[np.isnan(out[rows])]
    if failed.size:
        rows_c = c[failed]
        roots, _ = bracketed_root(lambda x: _npv0(rows_c, x), lo[failed], hi[failed],
                                  xtol=1e-15)
        out[failed] = roots
    return out


#: Newton steps taken by Horner's scheme (over all rows at once, cheap per row but ~1 ms of
#: Python per step); a row still going after them continues row by row.
HORNER_STEPS = 8


def _newton(c: np.ndarray, ct: np.ndarray, r: np.ndarray, lo: np.ndarray, hi: np.ndarray,
            tol: float, maxiter: int) -> np.ndarray:
    """Newton's method on NPV(r) = sum c_t v^t, v = 1 / (1 + r), for each row of ``c``
    (``ct`` is its transpose), NaN where it does not converge or stops off a root.

    The first :data:`HORNER_STEPS` steps take NPV and its derivative from Horner's scheme,
    period by period over all rows at once: no (rows, periods) temporaries. The few rows
    still going after that continue with discount factors row by row. Which is used
    depends only on the row's own step count, and every operation is element by element
    or row by row, so a row's result has the same bits whatever other rows are solved
    with it. A root inside the row's bracket ``[lo, hi]`` is one; any other is checked
    against the size of the discounted flows.
    """
    n = c.shape[1]
    out = np.full(r.size, np.nan)
    idx = np.arange(r.size)  # the row of ``out`` of each column of ct
    r = np.array(r, dtype=float)
    live = np.ones(r.size, dtype=bool)
    i = np.arange(n, dtype=float)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for step in range(maxiter):
            if not live.any():
                break
            if step < HORNER_STEPS:
                v = 1.0 / (1.0 + r)
                f, d = _horner(ct, v)
                new = r + f / (d * v * v)  # dNPV/dr = dNPV/dv * -v^2
            else:
                if step == HORNER_STEPS:
                    idx, r = idx[live], r[live]
                    live = live[live]
                    rows = c[idx]
                cx = rows * _discount_factors(r, n)
                new = r + cx.sum(axis=1) * (1.0 + r) / (cx * i).sum(axis=1)
            new = np.where(new <= -1.0, (r - 1.0) / 2.0, new)  # stay above -100 %
            conv = live & (np.abs(new - r) <= tol * (1.0 + np.abs(r))) & np.isfinite(new)
            out[idx[conv]] = new[conv]
            live &= ~conv & np.isfinite(new)
            r = np.where(live, new, r)  # a finished row stays where it finished
            if step < HORNER_STEPS and 2 * live.sum() < live.size:
                # Drop finished rows once they are the most.
                ct, r, idx, live = ct[:, live], r[live], idx[live], live[live]
        # Newton may also have stopped on a point that is not a root: check the residual
        # against the size of the discounted flows, unless it is inside a known bracket.
        check = np.flatnonzero(np.isfinite(out) & ~((out >= lo) & (out <= hi)))
        if check.size:
            disc = c[check] * _discount_factors(out[check], n)
            bad = np.abs(disc.sum(axis=1)) > 1e-9 * np.abs(disc).sum(axis=1)
            out[check[bad]] = np.nan
    return out


def _transposed(c: np.ndarray, block: int = 256) -> np.ndarray:
    """``c.T`` as a C-ordered array, copied a block of rows at a time (twice as fast as
    numpy's copy of the transposed view, whose writes stride the whole array)."""
    out = np.empty(c.shape[::-1])
    for k in range(0, c.shape[0], block):
        out[:, k:k + block] = c[k:k + block].T
    return out


def _horner(ct: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """sum_t c_t v^t and its derivative in v, for each column of ``ct``."""
    f = ct[-1].copy()
    d = np.zeros_like(f)
    for t in range(ct.shape[0] - 2, -1, -1):
        d *= v
        d += f
        f *= v
        f += ct[t]
    return f, d


#: Rates (per period) the IRR scan tries: every 1 % around zero, wider far from it. The
#: scan only places Newton's start (within 0.5 % of a lone root); its cost is one matrix
#: product of (rows, periods) by (periods, rates).
_GRID = np.unique(np.concatenate([np.linspace(-0.1, 0.1, 21), np.geomspace(0.1, 10.0, 13)]))


@functools.lru_cache(maxsize=8)
def _grid(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The scan's rates for ``n`` periods and their discount factors, (n, rates)."""
    # Lowest rate whose discount factors stay finite over n periods.
    low = max(10.0 ** (-250.0 / max(n - 1, 1)) - 1.0, -0.99)
    grid = np.unique(np.concatenate([-np.geomspace(-low, 0.1, 12), _GRID]))
    disc = (1.0 + grid)[None, :] ** -np.arange(n, dtype=float)[:, None]
    disc.flags.writeable = False
    return grid, disc


def _brackets(c: np.ndarray, guess: float) -> tuple[np.ndarray, ...]:
    """For each row, the grid interval ``[lo, hi]`` of the NPV sign change nearest
    ``guess`` (``lo == hi`` for a root exactly on a grid rate; NaN when there is none),
    the NPV at both ends, and how many sign changes and roots the grid shows."""
    grid, disc = _grid(c.shape[1])
    with np.errstate(over="ignore", invalid="ignore"):
        f = c @ disc  # (rows, rates): every row's NPV at every rate
    pos, neg = f > 0, f < 0
    # Candidates: the intervals where NPV changes sign, then the rates where it is exactly
    # zero (a root on the grid; not when every flow is zero), nearest the guess first.
    cand = (pos[:, :-1] & neg[:, 1:]) | (neg[:, :-1] & pos[:, 1:])
    at_lo, at_hi = np.arange(grid.size - 1), np.arange(1, grid.size)
    dist = np.abs(grid[:-1] - guess)
    zero = f == 0
    if zero.any():
        zero &= (pos.any(axis=1) | neg.any(axis=1))[:, None]
        cand = np.concatenate([cand, zero], axis=1)
        at_lo = np.concatenate([at_lo, np.arange(grid.size)])
        at_hi = np.concatenate([at_hi, np.arange(grid.size)])
        dist = np.concatenate([dist, np.abs(grid - guess)])
    order = np.argsort(dist, kind="stable")
    nearest = order[cand[:, order].argmax(axis=1)]
    count = cand.sum(axis=1)
    rows = np.arange(c.shape[0])
    found = count > 0
    i, j = at_lo[nearest], at_hi[nearest]
    lo = np.where(found, grid[i], np.nan)
    hi = np.where(found, grid[j], np.nan)
    return lo, hi, f[rows, i], f[rows, j], count


def sign_changes(values: np.ndarray) -> np.ndarray:
    """How many times each row's cash flows change sign, zeros skipped (Descartes' rule:
    at most that many positive roots of the NPV polynomial)."""
    signs = np.sign(np.atleast_2d(np.asarray(values, dtype=float)))
    # Carry the last non-zero sign over zeros, so [-1, 0, 0, +1] is one change, not three.
    idx = np.where(signs != 0, np.arange(signs.shape[1]), 0)
    np.maximum.accumulate(idx, axis=1, out=idx)
    held = np.take_along_axis(signs, idx, axis=1)
    return ((held[:, 1:] * held[:, :-1]) < 0).sum(axis=1)


def irr_reasons(values: np.ndarray, rates: np.ndarray) -> np.ndarray:
    """Why each NaN of :func:`irr_periodic` has no rate ('' where a rate was found)."""
    c = np.atleast_2d(np.asarray(values, dtype=float))
    changes = sign_changes(c)
    reason = np.full(c.shape[0], "", dtype=object)
    nan = np.isnan(rates)
    reason[nan & (c.max(axis=1) <= 0)] = "no positive cash flow: no IRR"
    reason[nan & (c.min(axis=1) >= 0)] = "no negative cash flow: no IRR"
    reason[nan & (reason == "")] = "no root found above -100 % per period"
    reason[~nan & (changes > 1)] = "several sign changes: the root nearest the guess"
    return reason


#: :func:`bracketed_root`'s reason where the bracket's ends are on one side of the target.
NOT_CROSSED = "the target is not crossed between the bracket's ends"


def bracketed_root(
    f: Callable[[np.ndarray], np.ndarray],
    lo: np.ndarray,
    hi: np.ndarray,
    *,
    xtol: float = 1e-9,
    maxiter: int = 200,
    fa: np.ndarray | None = None,
    fb: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Roots of a vectorised function, one per scenario, within ``[lo, hi]``.

    Illinois (modified false-position) iteration on every scenario at once: each call of
    ``f`` evaluates all scenarios, so solving 1,000 break-evens costs about as many model
    evaluations as solving one. The bracket must change sign; where it does not the root
    is NaN and the reason says so.

    Parameters
    ----------
    f
        Function of a vector of trial values, one per scenario.
    lo, hi
        The bracket of each scenario.
    xtol
        Stop when the bracket is narrower than ``xtol * max(1, |hi|)``.
    maxiter
        Iterations at most.
    fa, fb
        ``f(lo)`` and ``f(hi)`` when already known (saves two evaluations).

    Returns
    -------
    (roots, reasons)
        Roots (NaN where none) and a reason string per scenario ('' when solved).
    """
    a, b = np.array(lo, dtype=float), np.array(hi, dtype=float)
    fa = f(a) if fa is None else np.array(fa, dtype=float)
    fb = f(b) if fb is None else np.array(fb, dtype=float)
    reason = np.full(a.shape, "", dtype=object)
    bad = np.sign(fa) * np.sign(fb) > 0
    reason[bad] = NOT_CROSSED
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
