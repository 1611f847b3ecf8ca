"""The compiled Monte Carlo loop (finmodel.engine.compiled, kernel.py) against the numpy
evaluator: the same bits for every shipped case and for every operation of the
vocabulary, the same errors, and the fallbacks where numba is missing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

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

pytest.importorskip("numba")  # the test extra installs it; CI runs with it

ROOT = Path(__file__).resolve().parents[1]
CASES = sorted(p for p in (ROOT / "assumptions").glob("*.toml")
               if "portfolio" not in p.name)
SAMPLED = ("hosting.lease_rate_usd_per_kw_month", "conversion.electrical_usd_per_mw",
           "power.ppa_price_usd_per_mwh")


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


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_every_shipped_case_gives_the_same_bits_compiled_and_numpy(case):
    a = finmodel.load_assumptions(case)
    kw = dict(distributions=_spread(a), paths=Paths(0.6, 0.2, 0.4), seed=11,
              metrics=("npv_usd", "project_irr", "payback_years"))
    ref = monte_carlo(a, 700, chunk_size=300, executor=None, kernel="numpy", **kw)
    got = monte_carlo(a, 700, chunk_size=300, executor="threads", kernel="compiled", **kw)
    assert ref.extra["kernel"] == "numpy" and got.extra["kernel"] == "compiled"
    assert ref.samples.shape == got.samples.shape and ref.samples.shape[0] == 700
    assert list(ref.samples.columns) == list(got.samples.columns)
    # Equal to the bit, NaN where numpy has NaN (an IRR that does not exist).
    for col in ref.samples.columns:
        x, y = ref.samples[col].to_numpy(), got.samples[col].to_numpy()
        assert np.array_equal(x.view(np.int64), y.view(np.int64)) or np.array_equal(
            x, y, equal_nan=True), col
    assert np.isfinite(ref.samples.xs("npv_usd", axis=1, level="metric").to_numpy()).all()


def test_base_monte_carlo_is_bit_identical_for_any_chunking_and_executor():
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
        assert got.samples.equals(ref.samples), (chunk, executor)
    # "auto" picks the compiled loop on threads from COMPILED_THRESHOLD scenarios.
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


def test_every_operation_gives_the_numpy_evaluators_bits():
    m = _vocabulary_model()
    inputs, paths = _inputs(257)
    names = [n.name for n in m.nodes.values()]
    ref = evaluate(m, TL, inputs, paths, only=names)
    got = compiled.evaluate_compiled(m, TL, inputs, paths, {}, only=names)
    for name in names:
        a, b = np.broadcast_to(ref[name], got[name].shape), got[name]
        assert a.shape == b.shape, name
        assert np.array_equal(a, b, equal_nan=True), name
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
    assert all(np.array_equal(again[n], got[n], equal_nan=True) for n in names)


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
        assert np.array_equal(got["s"], x.sum(axis=1)), n
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
    assert out["v"][:, 0].tolist() == [0.0, 2.0, 4.0]  # the numpy evaluator answered
