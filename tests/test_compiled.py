"""The compiled Monte Carlo loop (finmodel.engine.compiled, kernel.py) against the numpy
evaluator: the same bits for every shipped case and for every operation of the
vocabulary, the same errors, and the fallbacks where numba is missing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numba  # noqa: F401  (the test extra installs it: without it these fail, never skip)
import numpy as np
import pytest

import finmodel
from finmodel.analysis import monte_carlo as mc_module
from finmodel.analysis.monte_carlo import Paths, monte_carlo
from finmodel.analysis.sensitivity import Scenarios
from finmodel.engine import compiled
from finmodel.engine.evaluate import evaluate
from finmodel.engine.expr import (
    Chosen,
    Input,
    PathInput,
    cumulative,
    eq,
    floor,
    irr,
    lag,
    lead,
    maximum,
    minimum,
    ne,
    not_available,
    npv,
    or_not_available,
    row_max,
    row_min,
    shifted,
    time,
    total,
    where,
)
from finmodel.engine.graph import Model
from finmodel.engine.timeline import Timeline
from finmodel.errors import InputError, ModelError


ROOT = Path(__file__).resolve().parents[1]
CASES = sorted(p for p in (ROOT / "assumptions").glob("*.toml")
               if "portfolio" not in p.name)
SAMPLED = ("hosting.lease_rate_usd_per_kw_month", "conversion.electrical_usd_per_mw",
           "power.ppa_price_usd_per_mwh")


def _no_numpy_fallback(monkeypatch) -> None:
    """Make the compiled path fail loudly where it would hand a chunk to numpy (which
    gives the same values, so only this shows that the machine ran)."""
    def refuse(*args, **kwargs):
        raise AssertionError("the compiled path fell back to the numpy evaluator")

    monkeypatch.setattr(compiled, "evaluate", refuse)


def _spread(a: finmodel.Assumptions) -> dict:
    """+-20 % uniform around the case's own value of each sampled input it has."""
    sc = Scenarios.of(a)
    out = {}
    for path in SAMPLED:
        try:
            v = sc.base(path)
        except InputError:
            continue
        if v > 0:
            out[path] = {"dist": "uniform", "low": 0.8 * v, "high": 1.2 * v}
    return out


def _same_bits(x: np.ndarray, y: np.ndarray) -> bool:
    """Equal bit for bit (so -0.0 differs from 0.0, and NaN equals only the same NaN)."""
    x, y = np.ascontiguousarray(x, dtype=float), np.ascontiguousarray(y, dtype=float)
    return x.shape == y.shape and np.array_equal(x.view(np.int64), y.view(np.int64))


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
@pytest.mark.parametrize("paths", [Paths(0.6, 0.2, 0.4), None], ids=["paths", "no-paths"])
def test_every_shipped_case_gives_the_same_bits_compiled_and_numpy(case, paths, monkeypatch):
    a = finmodel.load_assumptions(case)
    kw = dict(distributions=_spread(a), paths=paths, seed=11,
              metrics=("npv_usd", "project_irr", "payback_years"))
    ref = monte_carlo(a, 700, chunk_size=300, executor=None, kernel="numpy", **kw)
    _no_numpy_fallback(monkeypatch)
    got = monte_carlo(a, 700, chunk_size=300, executor="threads", kernel="compiled", **kw)
    assert ref.extra["kernel"] == "numpy" and got.extra["kernel"] == "compiled"
    assert ref.samples.shape == got.samples.shape and ref.samples.shape[0] == 700
    assert list(ref.samples.columns) == list(got.samples.columns)
    # Equal to the bit, NaN where numpy has NaN (an IRR that does not exist).
    for col in ref.samples.columns:
        assert _same_bits(ref.samples[col].to_numpy(), got.samples[col].to_numpy()), col
    assert np.isfinite(ref.samples.xs("npv_usd", axis=1, level="metric").to_numpy()).all()


def test_base_monte_carlo_is_bit_identical_for_any_chunking_and_executor(monkeypatch):
    a = finmodel.load_assumptions(ROOT / "assumptions" / "base.toml")
    spec = a.analysis.monte_carlo
    kw = dict(distributions=spec.distributions,
              correlations={(c.a, c.b): c.rho for c in spec.correlations},
              paths=Paths(spec.btc_price_volatility, spec.hashrate_volatility,
                          spec.path_correlation), seed=spec.seed)
    ref = monte_carlo(a, 1300, executor=None, kernel="numpy", **kw)
    for chunk, executor in ((600, "threads"), (257, None), (1300, None), (500, "processes")):
        got = monte_carlo(a, 1300, chunk_size=chunk, executor=executor, kernel="compiled",
                          **kw)
        assert list(got.samples.columns) == list(ref.samples.columns)
        assert _same_bits(got.samples.to_numpy(), ref.samples.to_numpy()), (chunk, executor)
    # "auto" picks the compiled loop on threads from COMPILED_THRESHOLD scenarios (and the
    # machine runs: no chunk is handed to numpy).
    monkeypatch.setattr(compiled, "evaluate", lambda *a, **k: 1 / 0)
    auto = monte_carlo(a, mc_module.COMPILED_THRESHOLD, **kw)
    assert auto.extra["kernel"] == "compiled"
    small = monte_carlo(a, 50, **kw)
    assert small.extra["kernel"] == "numpy"


# --- every operation, on a small model -------------------------------------------------

TL = Timeline(dt.date(2026, 1, 1), 30)


def _vocabulary_model() -> Model:
    """Each expression node and evaluation path the compiler translates: arithmetic,
    comparisons, IF/AND/OR/floor/min/max, lags and shifts both ways, running sums,
    whole-row reductions (NPV at a fixed and at a varying rate), a varying yearly path,
    a choice, a held value (a fleet kept until refreshed: the HOLD pattern), a general
    recursion (a balance), scalars per scenario, and an IRR between two machine parts."""
    m = Model()
    x = Input("x")  # varies by scenario
    k = Input("k")  # one value for all
    t = time("index")
    price = m.line("price", PathInput("pp", time("model_year")) * (1 + x), "p", "", "S")
    flow = m.line("flow", price * 3 - 40 + where(t >= 5, x * 10, -x) / (k + t), "f", "",
                  "S")
    m.line("logic", where((price > 2) & (flow < 30) | eq(t, 7), 1, 0) + (price >= 1) -
           (price <= 3) * ne(price, 2), "l", "", "S")
    m.line("shape", minimum(maximum(flow, -5), 25) + price ** 0.5 - (-flow), "s", "", "S")
    m.line("floor_", floor(flow / 3) + or_not_available(flow), "fl", "", "S")
    m.line("lags", lag(flow, 1, x) + lag(flow, 3, 2.0) + shifted(flow, k, -1.0)
           + lead(flow, k + 1, 0.5), "lg", "", "S")
    cum = m.line("cum", cumulative(flow), "c", "", "S")
    m.line("choice", Chosen("mode", "b", 1.0) * flow, "ch", "", "S")
    refresh = m.line("refresh", where(price > 2.5, 1, 0), "r", "", "S")
    held = m.recursive_line("held", "h", "", "S")
    m.define(held, where(refresh > 0, price * 2, lag(held, 1, x + 1)))
    bal = m.recursive_line("bal", "b", "", "S")
    m.define(bal, lag(bal, 1, 100.0) * (1 + x / 100) - flow * 0.1)
    m.scalar("tot", total(flow) / 10 + row_min(cum) - row_max(flow), "t", "", "S")
    m.scalar("pv_fixed", npv(k / 100, flow), "pv", "", "S")
    m.scalar("pv_varying", npv(x / 50, flow), "pv", "", "S")
    cash = m.line("cash", where(eq(t, 0), -200.0 - x * 10, flow + 45), "cash", "", "S")
    ret = m.scalar("ret", irr(cash), "irr", "", "S")
    m.line("after_irr", cash * where(ret > 0.01, 1.0, 2.0) + ret, "a", "", "S")
    m.scalar("na_unless", where(x > 1, not_available(), x), "na", "", "S")
    m.scalar("scale", x * 2 + k, "sc", "", "S")
    return m


def _inputs(s: int) -> tuple[dict, dict]:
    rng = np.random.default_rng(5)
    inputs = {"x": rng.uniform(0.1, 2.0, s), "k": 3.0, "mode": np.where(rng.random(s) < 0.5,
                                                                          1.0, 0.0)}
    paths = {"pp": rng.uniform(1.0, 4.0, (s, 3))}
    return inputs, paths


def test_every_operation_gives_the_numpy_evaluators_bits(monkeypatch):
    m = _vocabulary_model()
    inputs, paths = _inputs(257)
    names = [n.name for n in m.nodes.values()]
    ref = evaluate(m, TL, inputs, paths, only=names)
    _no_numpy_fallback(monkeypatch)
    got = compiled.evaluate_compiled(m, TL, inputs, paths, {}, only=names)
    for name in names:
        assert _same_bits(np.broadcast_to(ref[name], got[name].shape), got[name]), name
    # The program really runs in the machine: one segment before the IRR, one after, the
    # held fleet as one HOLD instruction, the balance as a loop.
    program = next(iter(compiled._PROGRAMS[id(m)][1].values()))
    segments = [p for p in program.parts if isinstance(p, compiled._Segment)]
    assert len(segments) == 2
    ops = {compiled._OPS[name]: name for name in compiled._OPS}
    used = {ops[int(o) % compiled._CHECKED] for seg in segments for o in seg.layout[:, 0]}
    assert {"HOLD", "LOOP", "NPV", "NPVD", "SHIFT", "LAG", "CUMSUM", "TOTAL", "RMIN",
            "RMAX", "GATHER", "IF", "AND", "OR", "POW", "NEG", "FLOOR"} <= used
    # And a second call (constants kept) gives the same again.
    again = compiled.evaluate_compiled(m, TL, inputs, paths, {}, only=names)
    assert all(_same_bits(again[n], got[n]) for n in names)


def test_a_line_not_finite_is_named_as_numpy_names_it():
    m = Model()
    x = Input("x")
    m.line("ok", x * time("index"), "", "", "S")
    bad = m.line("ratio", 1 / (x - 2) + time("index"), "", "", "S")
    m.scalar("tot", total(bad), "", "", "S")
    inputs = {"x": np.array([1.0, 3.0, 2.0, 4.0])}  # scenario 2 divides by zero
    with pytest.raises(ModelError) as numpy_error:
        evaluate(m, TL, inputs, only=["tot"])
    with pytest.raises(ModelError) as compiled_error:
        compiled.evaluate_compiled(m, TL, inputs, {}, {}, only=["tot"])
    assert str(compiled_error.value) == str(numpy_error.value)
    assert "'ratio' is not finite (scenario 2, period 0)" in str(compiled_error.value)


def test_the_compiler_and_the_kernel_number_operations_alike():
    from finmodel.engine import kernel

    assert {name: getattr(kernel, name) for name in compiled._OPS} == compiled._OPS
    assert kernel.CHECKED == compiled._CHECKED > max(compiled._OPS.values())


def test_sum_plan_is_numpys_pairwise_order():
    from finmodel.engine import kernel

    rng = np.random.default_rng(3)
    for n in (1, 7, 8, 9, 127, 128, 129, 240, 256, 360, 481, 600):
        x = rng.standard_normal((4, n)) * 10.0 ** rng.uniform(-8, 8, (4, n))
        m = Model()
        m.scalar("s", total(m.line("v", Input("v0") * 0 + PathInput("p", time("index") + 1),
                                   "", "", "S")), "", "", "S")
        tl = Timeline(dt.date(2026, 1, 1), n)
        got = compiled.evaluate_compiled(m, tl, {"v0": np.ones(4)}, {"p": x}, {}, only=["s"])
        ref = evaluate(m, tl, {"v0": np.ones(4)}, {"p": x}, only=["s"])
        assert _same_bits(got["s"], ref["s"]) and _same_bits(got["s"], x.sum(axis=1)), n
        assert kernel.sum_plan(n)[:, 2].sum() == n


def test_kernel_choice_and_fallbacks(monkeypatch):
    a = finmodel.load_assumptions(ROOT / "assumptions" / "base.toml")
    with pytest.raises(InputError, match="kernel must be 'auto', 'compiled' or 'numpy'"):
        monte_carlo(a, 10, kernel="fast")
    monkeypatch.setattr(compiled, "_KERNEL", [None])  # as where numba cannot load
    with pytest.raises(InputError, match=r"kernel='compiled' needs numba"):
        monte_carlo(a, 10, kernel="compiled")
    assert monte_carlo(a, 3000, executor=None).extra["kernel"] == "numpy"
    m = Model()
    m.line("v", Input("x") * 2, "", "", "S")
    out = compiled.evaluate_compiled(m, TL, {"x": np.arange(3.0)}, {}, {}, only=["v"])
    assert out["v"][:, 0].tolist() == [0.0, 2.0, 4.0]
    assert id(m) not in compiled._PROGRAMS  # the numpy evaluator answered: no program


# --- corner cases found in review (each failed before its fix) ---------------------------

T24 = Timeline(dt.date(2026, 1, 1), 24)
X, KK, TI = Input("x"), Input("k"), time("index")
X3 = np.array([0.5, 1.5, 2.5])


def _same_both_ways(m: Model, inputs: dict, paths=None, overrides=None, only=None,
                    tl: Timeline = T24) -> None:
    """numpy and the compiled loop give the same bits (numpy's array broadcast to the
    compiled one's shape: a fixed recursion is (1, periods) there), or the same error."""
    only = only or list(m.nodes)
    got = []
    for f in (evaluate, compiled.evaluate_compiled):
        try:
            got.append(f(m, tl, inputs, paths or {}, overrides or {}, only=only))
        except ModelError as e:
            got.append(e)
    ref, out = got
    if isinstance(ref, Exception) or isinstance(out, Exception):
        assert type(ref) is type(out) and str(ref) == str(out), (ref, out)
        return
    for k in only:
        a, b = np.asarray(ref[k]), np.asarray(out[k])
        shape = np.broadcast_shapes(a.shape, b.shape)
        assert shape == a.shape, (k, a.shape, b.shape)  # never more rows than numpy's
        a, b = np.broadcast_to(a, shape), np.broadcast_to(b, shape)
        assert np.array_equal(a.view(np.int64), b.view(np.int64)), k  # bits: -0.0, NaN


def _fixed_recursion():
    m = Model()
    bal = m.recursive_line("bal", "", "", "S")
    m.define(bal, lag(bal, 1, 100.0) * 1.02 - 1.0)
    m.line("use", X * bal, "", "", "S")
    m.scalar("tb", total(bal), "", "", "S")
    return m


def _hold_with_numbers():
    m = Model()
    refresh = m.line("refresh", where(X * TI > 10, 1, 0), "", "", "S")
    held = m.recursive_line("held", "", "", "S")
    m.define(held, where(refresh > 0, 5.0, lag(held, 1, 0.0)))
    held2 = m.recursive_line("held2", "", "", "S")
    m.define(held2, where(KK > 0, X * TI, lag(held2, 1, 0.0)))
    return m


def _or_na_of_an_operation():
    m = Model()
    m.line("a", X + 1, "", "", "S")
    m.line("b", or_not_available(X * 2), "", "", "S")
    return m


def _loop_bodies():
    m = Model()
    cash = m.line("cash", where(eq(TI, 0), -100 - X, X * 10), "", "", "S")
    ret = m.scalar("ret", irr(cash), "", "", "S")
    b2 = m.recursive_line("b2", "", "", "S")
    m.define(b2, lag(cash, 1, lag(b2, 1, 2.0)) + ret)  # a line from before the IRR
    f = m.line("f", X * TI, "", "", "S")
    b3 = m.recursive_line("b3", "", "", "S")
    m.define(b3, shifted(f, KK, lag(b3, 1, 1.0)) + 1)  # a shift reading the recursion
    c = m.line("c", KK * 1.0, "", "", "S")
    b4 = m.recursive_line("b4", "", "", "S")
    m.define(b4, lag(c, 2, lag(b4, 1, X)) + X * 0.5)  # the lag of a line one number
    return m


def _npv_at_a_rate_per_period():
    m = Model()
    f = m.line("f", X + TI, "", "", "S")
    r = m.line("r", X * TI / 1000, "", "", "S")
    m.scalar("pv", npv(r, f), "", "", "S")
    return m


def _signed_zeros():
    m = Model()
    c0 = m.line("c0", -(X * 0), "", "", "S")
    m.scalar("tot", total(c0), "", "", "S")
    z = X * 0
    m.line("mx", maximum(-z, z), "", "", "S")
    m.line("mn", minimum(z, -z), "", "", "S")
    m.line("z", X * (0 * (TI - 5)), "", "", "S")
    return m


def _scalar_named_like_an_input():
    m = Model()
    cash = m.line("cash", where(eq(TI, 0), -100 - X, X * 10), "", "", "S")
    ret = m.scalar("ret", irr(cash), "", "", "S")
    sx = m.scalar("x", Input("x") * 2, "", "", "S")
    m.line("after", ret + sx, "", "", "S")
    m.scalar("s", X * 2, "", "", "S", solved=True)  # solved outside: numpy's NaN
    return m


def _errors():
    m1 = Model()
    m1.scalar("s", X * TI, "", "", "S")  # a scalar with a value per period
    m2 = Model()
    f = m2.line("f", X + TI, "", "", "S")
    m2.line("g", shifted(f, TI / 4), "", "", "S")  # a shift that changes with the period
    m3 = Model()
    m3.line("a", 1 / (X - X), "", "", "S")  # numpy names this one, the first it meets
    m3.line("b", 1 / (KK - 3.0) + TI, "", "", "S")
    return m1, m2, m3


@pytest.mark.parametrize("build", [_fixed_recursion, _hold_with_numbers, _or_na_of_an_operation,
                                   _loop_bodies, _npv_at_a_rate_per_period, _signed_zeros,
                                   _scalar_named_like_an_input])
def test_corner_cases_give_numpys_bits(build):
    m = build()
    _same_both_ways(m, {"x": X3, "k": 3.0})
    _same_both_ways(m, {"x": X3[:2], "k": 3.0})  # fewer scenarios, constants kept
    _same_both_ways(m, {"x": X3, "k": -1.0})  # other constants


def test_errors_are_numpys_own():
    for m in _errors():
        _same_both_ways(m, {"x": X3, "k": 3.0})
        with pytest.raises(ModelError):
            compiled.evaluate_compiled(m, T24, {"x": X3, "k": 3.0}, {}, {}, only=list(m.nodes))
    m = Model()
    p = m.line("p", X + TI, "", "", "S")
    m.line("q", where(p > 3, 1, 0) * X, "", "", "S")
    given = np.tile(np.arange(24.0), (3, 1))
    given[2, 3] = np.nan  # a given line not finite is named, as numpy names it
    with pytest.raises(ModelError, match=r"line 'p' is not finite \(scenario 2, period 3\)"):
        compiled.evaluate_compiled(m, T24, {"x": X3}, {}, {"p": given}, only=["q"])


def test_timeline_and_layout_of_inputs_are_part_of_the_program():
    m = Model()
    m.line("d", X * time("days"), "", "", "S")
    _same_both_ways(m, {"x": X3})
    _same_both_ways(m, {"x": X3}, tl=Timeline(dt.date(2026, 2, 1), 24))  # 28 days, not 31
    rng = np.random.default_rng(267)
    m = Model()
    line = m.line("l0", PathInput("pp", time("model_year")), "", "", "S")
    m.scalar("tot", total(line), "", "", "S")
    pp = rng.uniform(1, 4, (5, 2)) * 1.37
    _same_both_ways(m, {"x": np.ones(5)}, {"pp": pp})
    _same_both_ways(m, {"x": np.ones(5)}, {"pp": np.asfortranarray(pp)})


def test_results_are_the_callers_and_threads_share_a_program_safely():
    m = Model()
    fk = m.line("fk", KK * (TI + 1), "", "", "S")
    m.line("v", X * fk, "", "", "S")
    o = compiled.evaluate_compiled(m, T24, {"x": X3, "k": 2.0}, {}, {}, only=["fk", "v"])
    o["fk"] += 100  # the caller's array: the program's constants are not touched
    o = compiled.evaluate_compiled(m, T24, {"x": X3, "k": 2.0}, {}, {}, only=["fk", "v"])
    assert o["fk"][0, :3].tolist() == [2.0, 4.0, 6.0]
    bad = []

    def work(k: float) -> None:
        for _ in range(300):
            out = compiled.evaluate_compiled(m, T24, {"x": X3, "k": k}, {}, {},
                                             only=["v", "fk"])
            if out["fk"][0, 0] != k or out["v"][0, 0] != 0.5 * k:
                bad.append(k)

    import threading

    threads = [threading.Thread(target=work, args=(k,)) for k in (1.0, 2.0)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert bad == []
