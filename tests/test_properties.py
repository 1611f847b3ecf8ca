"""Property tests (hypothesis): generated case files and API arguments end in a clean
refusal (InputError naming what was wrong) or a sane result (finite metrics), never in
another exception; outputs are all or nothing. Examples are derandomized and few, so the
file runs in well under two minutes."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import finmodel
from finmodel.errors import ExportError, InputError, escape_controls, shown
from finmodel.inputs.load import input_fields, load_assumptions, parse_assumptions
from finmodel.outputs import Outputs
from tests.conftest import ROOT

BASE_TEXT = (ROOT / "assumptions" / "base.toml").read_text()
BASE = tomllib.loads(BASE_TEXT)
A = finmodel.load_assumptions(ROOT / "assumptions" / "base.toml")
#: Every input of the base case with a value: (path as keys, value).
LEAVES = [f.path for f in input_fields(A)]
NUMERIC = [f.path for f in input_fields(A) if isinstance(f.value, float)
           and f.unit not in ("YYYY-MM", "flag")]

FAST = settings(max_examples=40, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
SLOW = settings(max_examples=12, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])

values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(-10 ** 30, 10 ** 30),
    st.booleans(), st.text(max_size=30), st.sampled_from(["0000-01", "2200-12", "1899-12",
                                                          "2026-01", "2031-07"]),
    st.lists(st.floats(0, 1e6), max_size=3), st.just({}))


def _set(data: dict, path: str, value) -> dict:
    out = copy.deepcopy(data)
    node = out
    *parents, leaf = path.split(".")
    for p in parents:
        node = node[p]
    node[leaf] = value
    return out


def _sane(result: finmodel.Result) -> None:
    for s in result.strategies:
        npv = result.metrics(s)["npv_usd"].to_numpy()
        assert np.all(np.isfinite(npv)), (s, npv)


@SLOW
@given(changes=st.lists(st.tuples(st.sampled_from(LEAVES), values), min_size=1, max_size=3))
def test_generated_cases_are_refused_cleanly_or_run_sanely(changes):
    data = BASE
    for path, value in changes:
        data = _set(data, path, value)
    try:
        a = parse_assumptions(data, source="gen.toml")
    except InputError as exc:
        assert "gen.toml: " in str(exc) and len(str(exc)) < 5000
        assert "\x1b" not in escape_controls(str(exc))
        return
    _sane(finmodel.run(a, breakevens=False))


@FAST
@given(text=st.text(max_size=400))
def test_any_text_is_a_case_or_a_clean_refusal(text, tmp_path_factory):
    case = tmp_path_factory.mktemp("t") / "case.toml"
    case.write_text(text, encoding="utf-8", errors="surrogatepass")
    with pytest.raises(InputError, match=r"case\.toml"):
        load_assumptions(case)


@FAST
@given(cut=st.integers(0, len(BASE_TEXT)), junk=st.text(max_size=5))
def test_damaged_shipped_case_is_a_case_or_a_clean_refusal(cut, junk, tmp_path_factory):
    case = tmp_path_factory.mktemp("d") / "case.toml"
    case.write_text(BASE_TEXT[:cut] + junk + BASE_TEXT[cut:], encoding="utf-8",
                    errors="surrogatepass")
    try:
        a = load_assumptions(case)
    except InputError as exc:
        assert str(case) in str(exc)
        return
    assert isinstance(a, finmodel.Assumptions)


@SLOW
@given(path=st.sampled_from(NUMERIC + ["case.horizon_years", "nope.x", "site"]),
       scenario=st.lists(st.one_of(st.floats(-1e9, 1e9), st.sampled_from([np.nan, np.inf])),
                         min_size=1, max_size=3))
def test_scenario_inputs_are_refused_cleanly_or_evaluated_sanely(path, scenario):
    try:
        r = finmodel.run(A, inputs={path: scenario}, breakevens=False)
    except InputError as exc:
        assert path.split(".")[0] in str(exc) or "inputs" in str(exc)
        return
    assert r.n_scenarios == len(scenario)
    _sane(r)


@FAST
@given(value=st.one_of(st.text(max_size=3000), st.integers(), st.floats(),
                       st.binary(max_size=50)))
def test_shown_values_are_short_and_have_no_control_characters(value):
    text = shown(value)
    assert len(text) <= 80
    assert not any(ord(c) < 32 or 0x7f <= ord(c) <= 0x9f for c in text)


@FAST
@given(fail_at=st.integers(0, 2), n=st.integers(1, 3))
def test_outputs_are_written_all_or_nothing(fail_at, n, tmp_path_factory):
    folder = tmp_path_factory.mktemp("o")
    targets = [folder / f"out{i}.json" for i in range(n)]
    for t in targets:
        t.write_text("old")
    outputs = Outputs()
    checked = [outputs.target(t, ".json", "--json") for t in targets]

    def writer(i):
        def write(tmp: Path) -> None:
            if i == fail_at:
                raise OSError(28, "No space left on device")
            tmp.write_text("new")
        return write

    if fail_at < n:
        with pytest.raises(ExportError, match="No space left"):
            outputs.commit([(t, writer(i)) for i, t in enumerate(checked)])
        assert [t.read_text() for t in targets] == ["old"] * n
    else:
        outputs.commit([(t, writer(i)) for i, t in enumerate(checked)])
        assert [t.read_text() for t in targets] == ["new"] * n
    assert sorted(x.name for x in folder.iterdir()) == sorted(t.name for t in targets)

