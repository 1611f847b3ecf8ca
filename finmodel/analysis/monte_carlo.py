"""Monte Carlo over the vectorised evaluator.

Uncertain inputs are drawn from four distributions (:class:`Distribution`, the arithmetic of
scipy.stats' quantile functions), correlated through a Gaussian copula (correlated
standard normals -> uniforms -> each distribution's quantile function).
The BTC price and network hashrate can follow stochastic paths: each month the case's own
path (start, drift or explicit yearly values) is multiplied by a lognormal factor
``exp(sigma W_t - sigma^2 t / 2)`` (W a Brownian motion sampled monthly), so the mean path
is the case's path and the spread is geometric Brownian motion's; the two Brownian
motions can be correlated.

The sampled inputs (a few numbers per scenario) are drawn up front from the seed; the
monthly path shocks, the bulk of the random numbers, are drawn where each chunk is
evaluated, in blocks of :data:`DRAW_BLOCK` scenarios each with its own generator seeded by
``(seed, block)``. The scenarios are split into chunks evaluated on any
``concurrent.futures``-style executor (local processes, threads, a dask.distributed
client's ``get_executor()``): the results do not depend on the chunking or on the
executor, and memory stays that of a few chunks whatever the number of scenarios.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from finmodel.analysis.sensitivity import Scenarios, metric_frame
from finmodel.api import PRICE_LINE
from finmodel.engine.evaluate import Buffers
from finmodel.engine.solve import one_blas_thread
from finmodel.errors import InputError, shown
from finmodel.inputs.bounds import check_scenarios, resolve_input
from finmodel.inputs.schema import Assumptions

if TYPE_CHECKING:
    import pandas as pd  # the DataFrames are built by the functions that return them

#: Most scenarios one call runs (the schema's bound on [analysis.monte_carlo] scenarios).
MAX_SCENARIOS = 10_000_000
#: Above this many scenarios "auto" runs the chunks on a local process pool.
PROCESS_THRESHOLD = 50_000
#: From this many scenarios "auto" runs the compiled loop where numba is installed:
#: importing numba and loading the compiled machine code costs ~0.3 s once per process,
#: what ~2,300 scenarios of the base case save on one thread (0.20 -> 0.07 ms each;
#: benchmarks/bench_monte_carlo.py). The first run after an install also compiles it
#: (~10-20 s, then cached beside finmodel/engine/kernel.py).
COMPILED_THRESHOLD = 2_000
#: Scenarios per block of path shocks (one generator per block; see the module docstring).
DRAW_BLOCK = 600
HASHRATE_LINE = "network.hashrate_eh_s"
#: The line arrays the chunks evaluated in this process reuse: one chunk's worth (~200 MB
#: at 600 scenarios x 240 months), of one size at a time; emptied when a call ends here.
_BUFFERS = Buffers()


@dataclass(frozen=True)
class Distribution:
    """One input's distribution: ``kind`` and its parameters as the case file names them.

    :meth:`ppf` computes what scipy.stats' frozen ``norm``, ``lognorm``, ``triang`` and
    ``uniform`` compute, operation for operation (``_ppf(q) * scale + loc``), so the draws
    are scipy's to the bit (tests/test_analysis.py) without importing scipy.stats, which
    takes longer than the whole model: every case with ``[analysis]`` checks its
    distributions' tails when it is loaded, so ``finmodel run`` would pay it each time.
    """

    kind: str
    params: tuple[tuple[str, float], ...]

    def ppf(self, q):
        """The quantile function at ``q`` (array-like in [0, 1])."""
        q = np.asarray(q, dtype=float)
        p = dict(self.params)
        if self.kind == "uniform":
            return q * (p["high"] - p["low"]) + p["low"]
        if self.kind == "triangular":
            lo, hi = p["low"], p["high"]
            c = (p["mode"] - lo) / (hi - lo)
            return np.where(q < c, np.sqrt(c * q), 1 - np.sqrt((1 - c) * (1 - q))) \
                * (hi - lo) + lo
        from scipy.special import ndtri  # the normal quantile, as scipy.stats' own
        if self.kind == "normal":
            return ndtri(q) * p["sd"] + p["mean"]
        return np.exp(p["sigma"] * ndtri(q)) * p["median"] + 0.0  # lognormal, loc 0


def normal_cdf(x: np.ndarray) -> np.ndarray:
    """The standard normal distribution function (scipy.stats.norm.cdf's ``ndtr``)."""
    from scipy.special import ndtr
    return ndtr(x)


def distribution(path: str, spec: Mapping[str, Any]) -> Distribution:
    """A :class:`Distribution` from a spec such as ``{"dist": "triangular", "low": 7e6,
    "mode": 9e6, "high": 12e6}``; bad parameters name the input."""
    if not isinstance(spec, Mapping):
        raise InputError(f"distribution of {path}: expected a table such as {{dist = "
                         f"'uniform', low = 1, high = 2}}, got {shown(spec)}")
    kind = spec.get("dist")
    p = {}
    for k, v in spec.items():
        if k == "dist":
            continue
        try:
            x = float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None
        except OverflowError:
            x = None
        if x is None or not math.isfinite(x):
            raise InputError(f"distribution of {path}: {shown(k)} must be a finite number, "
                             f"got {shown(v)}")
        p[k] = x

    def need(*names: str) -> None:
        missing = [x for x in names if x not in p]
        extra = sorted(set(p) - set(names))
        if missing or extra:
            raise InputError(f"distribution of {path}: '{kind}' takes {', '.join(names)}"
                             f" (missing {missing or 'none'}, unknown {extra or 'none'})")

    if kind == "normal":
        need("mean", "sd")
        if p["sd"] <= 0:
            raise InputError(f"distribution of {path}: sd must be positive, got {p['sd']!r}")
        return Distribution(kind, tuple(p.items()))
    if kind == "lognormal":  # median and the standard deviation of the log
        need("median", "sigma")
        if p["median"] <= 0 or p["sigma"] <= 0:
            raise InputError(f"distribution of {path}: median and sigma must be positive, "
                             f"got {p['median']!r} and {p['sigma']!r}")
        return Distribution(kind, tuple(p.items()))
    if kind == "triangular":
        need("low", "mode", "high")
        lo, mode, hi = p["low"], p["mode"], p["high"]
        if not lo <= mode <= hi or lo == hi:
            raise InputError(f"distribution of {path}: expected low <= mode <= high with "
                             f"low < high, got {lo!r}, {mode!r}, {hi!r}")
        return Distribution(kind, tuple(p.items()))
    if kind == "uniform":
        need("low", "high")
        if p["low"] >= p["high"]:
            raise InputError(f"distribution of {path}: low {p['low']!r} must be below high "
                             f"{p['high']!r}")
        return Distribution(kind, tuple(p.items()))
    raise InputError(f"distribution of {path}: unknown dist {shown(kind)}; expected normal, "
                     "lognormal, triangular or uniform")


#: Quantiles whose values every drawn input must respect: a draw beyond them needs a
#: standard normal beyond +/- 7.9, about once in 3e14 draws.
TAIL = 1e-15


def prepare_draws(sc: Scenarios, distributions: Mapping[str, Any] | None,
                  correlations: Mapping[tuple[str, str], float] | None
                  ) -> tuple[list[str], dict[str, Any], np.ndarray]:
    """(sampled paths, their distributions, Cholesky factor of the correlation matrix),
    checked: paths are numeric inputs of the case; parameters valid; every input's
    1e-15 and 1 - 1e-15 quantiles (and every corner of those ranges together) within the
    fields' bounds and the case's cross-field rules; correlations between two different
    sampled inputs, each pair once, the matrix positive definite."""
    if distributions is not None and not isinstance(distributions, Mapping):
        raise InputError(f"monte_carlo distributions: expected a mapping of field path -> "
                         f"spec, got {shown(distributions)}")
    dists = {}
    for p, spec in (distributions or {}).items():
        sc.base(p)  # an unknown, structural or non-numeric path is refused here, by name
        kind = resolve_input(sc.assumptions, p).kind
        if kind != "number":
            raise InputError(f"distribution of {p}: draws continuous values, but {p} is a "
                             f"{'whole number' if kind == 'integer' else kind}")
        dists[p] = distribution(p, spec)
    names = list(dists)
    if names:
        ends = {p: d.ppf([TAIL, 1 - TAIL]) for p, d in dists.items()}
        check_scenarios(sc.assumptions, ends, what="monte_carlo distributions")
        if len(names) > 1:
            corners = np.array(np.meshgrid(*[[0, 1]] * min(len(names), 12))).reshape(
                min(len(names), 12), -1)
            check_scenarios(sc.assumptions,
                            {p: ends[p][corners[k]] for k, p in enumerate(names[:12])},
                            what="monte_carlo distributions")
    corr = np.eye(len(names))
    if correlations is not None and not isinstance(correlations, Mapping):
        raise InputError(f"monte_carlo correlations: expected a mapping of (path, path) -> "
                         f"rho, got {shown(correlations)}")
    seen: set[frozenset] = set()
    for pair, rho in (correlations or {}).items():
        if not isinstance(pair, tuple) or len(pair) != 2:
            raise InputError(f"correlation {shown(pair)}: expected a pair of field paths")
        p, q = pair
        if p not in dists or q not in dists:
            raise InputError(f"correlation ({shown(p)}, {shown(q)}): both inputs need a "
                             "distribution")
        if p == q:
            raise InputError(f"correlation ({p}, {q}): an input is not correlated with "
                             "itself; name two different inputs")
        if frozenset(pair) in seen:
            raise InputError(f"correlation ({p}, {q}): given twice")
        seen.add(frozenset(pair))
        if isinstance(rho, bool) or not isinstance(rho, (int, float)) or not -1.0 < rho < 1.0:
            raise InputError(f"correlation ({p}, {q}): expected -1 < rho < 1, got {shown(rho)}")
        i, j = names.index(p), names.index(q)
        corr[i, j] = corr[j, i] = rho
    try:
        chol = np.linalg.cholesky(corr)
    except np.linalg.LinAlgError:
        raise InputError("correlations: the matrix is not positive definite (the "
                         "correlations contradict each other)") from None
    return names, dists, chol


@dataclass(frozen=True)
class Paths:
    """Stochastic monthly paths: annual volatilities, and the correlation of their shocks.

    Raises
    ------
    InputError
        A value that is not a number, a volatility outside 0 to 5, a correlation outside
        -1 to 1.
    """

    btc_price_volatility: float = 0.0
    hashrate_volatility: float = 0.0
    correlation: float = 0.0

    def __post_init__(self) -> None:
        for name in ("btc_price_volatility", "hashrate_volatility", "correlation"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise InputError(f"paths.{name}: expected a number, got {shown(v)}")
        for name in ("btc_price_volatility", "hashrate_volatility"):
            if not 0.0 <= getattr(self, name) <= 5.0:
                raise InputError(f"paths.{name}: expected 0 to 5, got {getattr(self, name)!r}")
        if not -1.0 <= self.correlation <= 1.0:
            raise InputError(f"paths.correlation: expected -1 to 1, got {self.correlation!r}")


def lognormal_factors(z: np.ndarray, volatility: float) -> np.ndarray:
    """``exp(sigma W_t - sigma^2 t / 2)`` at month ends t = 0, 1/12, ... from standard normal
    monthly shocks ``z`` (scenarios, months); the first month has factor 1."""
    return _lognormal_factors_into(np.array(z, dtype=float), volatility)


def _lognormal_factors_into(z: np.ndarray, volatility: float) -> np.ndarray:
    """:func:`lognormal_factors` written over ``z`` (the same operations, in place: a chunk's
    path arrays are large enough that each temporary is faulted in page by page)."""
    dt = 1.0 / 12.0
    np.multiply(z, volatility * math.sqrt(dt), out=z)
    np.subtract(z, 0.5 * volatility ** 2 * dt, out=z)
    z[:, 0] = 0.0
    np.cumsum(z, axis=1, out=z)
    return np.exp(z, out=z)


@dataclass
class MonteCarlo:
    """Draws and results of a Monte Carlo run."""

    samples: pd.DataFrame  # scenario x (strategy, metric)
    inputs: pd.DataFrame  # scenario x sampled input
    seed: int
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self, metric: str = "npv_usd", tail: float = 0.05) -> pd.DataFrame:
        """Per strategy: mean, standard deviation, percentiles, P(metric > 0), expected
        shortfall (mean of the worst ``tail``), and P(beats mining) for the others."""
        import pandas as pd

        out = {}
        npv = self.samples.xs(metric, axis=1, level="metric")
        for s in npv.columns:
            x = npv[s].to_numpy()
            x = x[np.isfinite(x)]
            worst = np.sort(x)[:max(1, int(math.floor(tail * x.size)))]
            nan = math.nan
            # A metric that exists in no scenario (payback never reached) summarises as NaN.
            row = {"mean": x.mean() if x.size else nan,
                   "std": x.std(ddof=1) if x.size > 1 else (0.0 if x.size else nan),
                   **{f"p{q}": np.percentile(x, q) if x.size else nan
                      for q in (5, 25, 50, 75, 95)},
                   "prob_positive": float((x > 0).mean()) if x.size else nan,
                   f"expected_shortfall_{int(tail * 100)}pct": worst.mean() if x.size else nan,
                   "missing": int(npv[s].isna().sum())}
            if s != "mining" and "mining" in npv.columns:
                row["prob_beats_mining"] = float((npv[s] > npv["mining"]).mean())
            out[s] = row
        return pd.DataFrame(out)


@lru_cache(maxsize=4)
def _scenarios(case_json: str) -> Scenarios:
    """The case's model, built once per worker process."""
    return Scenarios.of(Assumptions.model_validate_json(case_json))


def path_lines(sc: Scenarios, paths: Paths, seed: int, start: int, stop: int
               ) -> dict[str, np.ndarray]:
    """The stochastic BTC price and hashrate lines of scenarios ``start:stop``.

    Scenario k's shocks are row ``k % DRAW_BLOCK`` of block ``k // DRAW_BLOCK``, whose two
    (DRAW_BLOCK, months) arrays of standard normals come from ``default_rng((seed,
    block))``: the same numbers whichever chunk asks for them.
    """
    lines: dict[str, np.ndarray] = {}
    if not (paths.btc_price_volatility > 0 or paths.hashrate_volatility > 0):
        return lines
    months = sc.timeline.months
    z1, z2 = [], []
    for b in range(start // DRAW_BLOCK, (stop - 1) // DRAW_BLOCK + 1):
        rng = np.random.default_rng((seed, b))
        lo = max(start - b * DRAW_BLOCK, 0)
        hi = min(stop - b * DRAW_BLOCK, DRAW_BLOCK)
        a = rng.standard_normal((DRAW_BLOCK, months))[lo:hi]
        z1.append(a)
        # rho a + sqrt(1 - rho^2) b, with one temporary (products and sums commute exactly)
        b = rng.standard_normal((DRAW_BLOCK, months))[lo:hi]
        np.multiply(b, math.sqrt(1 - paths.correlation ** 2), out=b)
        z2.append(np.add(b, np.multiply(a, paths.correlation), out=b))
    base = _base_lines(sc)
    for line, z, volatility in ((PRICE_LINE, z1, paths.btc_price_volatility),
                                (HASHRATE_LINE, z2, paths.hashrate_volatility)):
        if volatility > 0:
            z = z[0] if len(z) == 1 else np.concatenate(z)
            f = _lognormal_factors_into(z, volatility)
            lines[line] = np.multiply(f, base[line], out=f)
    return lines


def _evaluate_chunk(sc: Scenarios, inputs: dict[str, np.ndarray], paths: Paths, seed: int,
                    start: int, stop: int, metrics: Sequence[str], kernel: str = "numpy"
                    ) -> dict[tuple[str, str], np.ndarray]:
    lines = path_lines(sc, paths, seed, start, stop)
    return sc.metric_arrays(inputs, metrics, lines=lines, size=stop - start,
                            buffers=_BUFFERS, compiled=kernel == "compiled")


def _chunk(args: tuple) -> dict[tuple[str, str], np.ndarray]:
    """Evaluate one chunk in a worker (a top-level function, so process pools can pickle
    it; the case travels as JSON, the chunk as its sampled inputs and its bounds)."""
    case_json, *rest = args
    return _evaluate_chunk(_scenarios(case_json), *rest)


def monte_carlo(a: Assumptions, n: int, *,
                distributions: Mapping[str, Mapping[str, Any]] | None = None,
                correlations: Mapping[tuple[str, str], float] | None = None,
                paths: Paths | None = None, seed: int = 0,
                metrics: Sequence[str] = ("npv_usd", "project_irr"),
                chunk_size: int = 600, executor: Executor | str | None = "auto",
                progress=None, keep_lines: bool = False, kernel: str = "auto"
                ) -> MonteCarlo:
    """Run ``n`` scenarios of the case.

    Parameters
    ----------
    distributions
        Field path -> distribution spec (see :func:`distribution`).
    correlations
        ``(path_a, path_b) -> rho`` between sampled inputs (Gaussian copula).
    paths
        Stochastic BTC price and hashrate paths (:class:`Paths`).
    chunk_size
        Scenarios per evaluation; ~600 keeps each chunk's arrays in cache (measured:
        10,000 scenarios in 1.15 s at 625, 1.44 s at 1,250, 8.1 s in one piece). A
        multiple of :data:`DRAW_BLOCK` draws each path shock once; any other size is as
        exact but draws the blocks it straddles again.
    executor
        ``"auto"``: with the compiled kernel, a thread per CPU (the compiled loop runs
        without the GIL); with numpy, this process up to :data:`PROCESS_THRESHOLD`
        scenarios (starting worker processes costs ~0.8 s, more than they save below
        that), a local process pool above it; ``"threads"``; ``"processes"``; ``None``
        (this process, one thread); or any ``concurrent.futures.Executor`` (a
        dask.distributed client's ``get_executor()``).
        dask starts its workers with ``MALLOC_TRIM_THRESHOLD_=65536``, which makes each
        chunk 2-2.6x slower (freed arrays go back to the system and are faulted in
        again): remove that key from the ``distributed.nanny.pre-spawn-environ`` config
        before starting a cluster (benchmarks/bench_dask.py shows how and what it costs).
    progress
        Called with (chunks done, chunks) after each chunk, for a progress bar.
    keep_lines
        Also return the stochastic price and hashrate lines, (n, months) each, in
        ``extra["lines"]``; by default only the metrics and sampled inputs are kept, so
        memory does not grow with n x months.
    kernel
        ``"compiled"``: each chunk in one loop compiled by numba, scenario by scenario
        (:mod:`finmodel.engine.compiled`; ``pip install finmodel[fast]``): ~3x faster on
        one thread, and chunks on a thread per core;
        ``"numpy"``: the numpy evaluator; ``"auto"``: compiled from
        :data:`COMPILED_THRESHOLD` scenarios where numba is installed. The results are
        the same bits either way; ``extra["kernel"]`` says which ran.

    Raises
    ------
    InputError
        ``n``, ``chunk_size`` or ``seed`` not a whole number in range; an unknown metric,
        executor or path; a bad distribution, one whose tails break a field's bounds or a
        cross-field rule; correlations of an input with itself, repeated, or not positive
        definite.
    """
    import pandas as pd

    for name, v, lo in (("n", n, 1), ("chunk_size", chunk_size, 1), ("seed", seed, 0)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise InputError(f"monte_carlo: {name} must be a whole number >= {lo}, got "
                             f"{shown(v)}")
    if n > MAX_SCENARIOS:
        raise InputError(f"monte_carlo: n = {n:,} scenarios is more than {MAX_SCENARIOS:,}")
    if paths is not None and not isinstance(paths, Paths):
        raise InputError(f"monte_carlo: paths must be a Paths, got {shown(paths)}")
    if isinstance(metrics, str) or not all(isinstance(m, str) for m in metrics):
        raise InputError(f"monte_carlo: metrics must be a list of metric names, got "
                         f"{shown(metrics)}")
    if kernel not in ("auto", "compiled", "numpy"):
        raise InputError(f"monte_carlo: kernel must be 'auto', 'compiled' or 'numpy', got "
                         f"{shown(kernel)}")
    from finmodel.engine import compiled  # (here: `finmodel run` imports this module)

    if kernel == "compiled" and not compiled.available():
        raise InputError("monte_carlo: kernel='compiled' needs numba (pip install "
                         "'finmodel[fast]')")
    if kernel == "auto":
        kernel = ("compiled" if n >= COMPILED_THRESHOLD and compiled.installed()
                  and compiled.available() else "numpy")
    if not (executor in ("auto", "processes", "threads", None)
            or isinstance(executor, Executor)):
        raise InputError(f"monte_carlo: executor must be 'auto', 'processes', 'threads', "
                         f"None or a concurrent.futures.Executor, got {shown(executor)}")
    if not isinstance(a, Assumptions):
        sc = Scenarios.of(a)  # (says what was expected)
    case_json = a.model_dump_json()
    # The model built once per case (and so its compiled program, its constants): a
    # sensitivity study runs many Monte Carlos of one case.
    sc = _scenarios(case_json)
    if not metrics:
        raise InputError("monte_carlo: metrics must name at least one metric")
    for m in metrics:
        sc.metric_names(m)
    names, dists, chol = prepare_draws(sc, distributions, correlations)
    rng = np.random.default_rng(seed)
    inputs: dict[str, np.ndarray] = {}
    if names:
        u = normal_cdf(rng.standard_normal((n, len(names))) @ chol.T)
        for k, p in enumerate(names):
            inputs[p] = dists[p].ppf(u[:, k])
    paths = paths or Paths()
    bounds = list(range(0, n, chunk_size)) + [n]
    slices = [({p: v[i:j] for p, v in inputs.items()}, paths, seed, i, j, tuple(metrics),
               kernel)
              for i, j in zip(bounds[:-1], bounds[1:])]
    if executor == "auto":
        if kernel == "compiled":  # the compiled loop lets go of the GIL: threads share it
            executor = "threads" if len(slices) > 1 and (os.cpu_count() or 1) > 1 else None
        else:
            executor = "processes" if n > PROCESS_THRESHOLD else None
    try:
        if executor is None or len(slices) == 1:  # this process: the model is built
            frames = []
            for done, job in enumerate(slices, start=1):
                frames.append(_evaluate_chunk(sc, *job))
                if progress:
                    progress(done, len(slices))
        elif executor == "threads":
            # BLAS pinned around the pool: the chunks' own pins (threadpoolctl's limits are
            # per process) then save and restore that one thread, in whatever order.
            from concurrent.futures import ThreadPoolExecutor

            with one_blas_thread(), ThreadPoolExecutor(
                    min(os.cpu_count() or 1, len(slices))) as pool:
                frames = _map(lambda job: _evaluate_chunk(sc, *job), slices, pool, progress)
        else:
            frames = _map(_chunk, [(case_json, *job) for job in slices], executor, progress)
    finally:
        _BUFFERS.clear()  # (a worker process keeps its own for its next chunks)
    samples = metric_frame({key: np.concatenate([f[key] for f in frames])
                            for key in frames[0]})
    drawn = pd.DataFrame(inputs) if inputs else pd.DataFrame(index=range(n))
    extra: dict[str, Any] = {"paths": paths, "kernel": kernel}
    if keep_lines:
        extra["lines"] = path_lines(sc, paths, seed, 0, n)
    return MonteCarlo(samples, drawn, seed, extra)


def _base_lines(sc: Scenarios) -> dict[str, np.ndarray]:
    """The case's own price and hashrate lines, evaluated once per :class:`Scenarios`."""
    from finmodel.engine.evaluate import evaluate

    base = sc.__dict__.get("_base_lines")
    if base is None:
        out = evaluate(sc.model, sc.timeline, sc.scalars, sc.paths,
                       only=[PRICE_LINE, HASHRATE_LINE])
        base = sc.__dict__["_base_lines"] = {k: out[k] for k in (PRICE_LINE, HASHRATE_LINE)}
    return base


def _map(fn, jobs: list, executor, progress) -> list:
    own = executor == "processes"
    if own:
        from concurrent.futures import ProcessPoolExecutor

    pool = ProcessPoolExecutor() if own else executor
    try:
        futures = [pool.submit(fn, job) for job in jobs]
        out = []
        for i, f in enumerate(futures, start=1):
            out.append(f.result())
            if progress:
                progress(i, len(jobs))
        return out
    finally:
        if own:
            pool.shutdown()
