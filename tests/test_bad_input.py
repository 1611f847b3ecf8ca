"""Bad input from every door: a representative reproduction of each defect class of the
hostile-user review (issue 9). Each is refused with status 2 and one message naming the
field and the value (CLI), or an InputError (API); nothing is written; validate and the
commands that run a case agree."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import finmodel
from finmodel.analysis.monte_carlo import Paths, monte_carlo
from finmodel.analysis.sensitivity import grid, solve_input, tornado
from finmodel.errors import InputError
from tests.conftest import ROOT

BASE = (ROOT / "assumptions" / "base.toml").read_text()
CONVERTIBLE = (ROOT / "assumptions" / "bitdeer_convertible_hybrid.toml").read_text()
A = finmodel.load_assumptions(ROOT / "assumptions" / "base.toml")


def cli(*args: str, cwd: Path | None = None, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "finmodel.cli", *args], capture_output=True,
                          text=True, cwd=cwd or ROOT, timeout=300, env=env, **kw)


def refused(p: subprocess.CompletedProcess, *fragments: str) -> None:
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert "Traceback" not in p.stderr and p.stdout == ""
    assert p.stderr.startswith("finmodel: error: ") and p.stderr.count("\n") == 1, p.stderr
    for f in fragments:
        assert f in p.stderr, (f, p.stderr)


def swap(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


# --- 1. [analysis]: validate, run and sensitivity refuse the same files -----------------

TORNADO_LINE = '"network.btc_price_usd" = [60_000.0, 130_000.0]'
ANALYSIS_BAD = {
    "tornado one value": (swap(BASE, TORNADO_LINE, '"network.btc_price_usd" = [1.0]'),
                          ["analysis.tornado", "network.btc_price_usd", "[low, high]"]),
    "tornado breaks a cross-field rule": (
        swap(BASE, TORNADO_LINE, '"site.mining_it_mw" = [50.0, 5000.0]'),
        ["analysis.tornado", "site.mining_it_mw", "5000", "exceeds site.interconnect_mw"]),
    "empty grid axis": (swap(BASE, '"network.btc_price_usd" = [60_000.0, 75_000.0',
                             '"network.btc_price_usd" = [], "x" = [60_000.0, 75_000.0'
                             ).replace(', "x" = [60_000.0, 75_000.0, 90_000.0, 110_000.0, '
                                       '130_000.0]', ''),
                        ["analysis.grid", "network.btc_price_usd", "non-empty"]),
    "distribution parameter not a number": (swap(BASE, "low = 30.0", 'low = "abc"'),
                                            ["power.ppa_price_usd_per_mwh", "'low'", "'abc'"]),
    "unknown path": (swap(BASE, TORNADO_LINE, '"network.btc_prize_usd" = 0.2'),
                     ["network.btc_prize_usd", "no such input"]),
    "input correlated with itself": (
        swap(BASE, 'b = "hosting.lease_rate_usd_per_kw_month"',
             'b = "conversion.electrical_usd_per_mw"'), ["not correlated with itself"]),
    "correlations not positive definite": (
        BASE + '\n[analysis.monte_carlo.distributions."power.pue"]\n'
        'dist = "uniform"\nlow = 1.0\nhigh = 1.05\n'
        '[[analysis.monte_carlo.correlations]]\na = "conversion.electrical_usd_per_mw"\n'
        'b = "power.ppa_price_usd_per_mwh"\nrho = 0.95\n'
        '[[analysis.monte_carlo.correlations]]\na = "hosting.lease_rate_usd_per_kw_month"\n'
        'b = "power.ppa_price_usd_per_mwh"\nrho = -0.95\n', ["not positive definite"]),
    "unknown metric": (swap(BASE, 'metric = "npv_usd"', 'metric = "npv"'),
                       ["analysis.metric", "'npv'"]),
    "unknown strategy": (swap(BASE, 'strategy = "hybrid"', 'strategy = "nope"'),
                         ["analysis.strategy", "'nope'"]),
}


@pytest.mark.parametrize("kind", list(ANALYSIS_BAD))
def test_analysis_section_is_validated_once_for_every_command(kind, tmp_path):
    text, fragments = ANALYSIS_BAD[kind]
    case = tmp_path / "case.toml"
    case.write_text(text)
    messages = []
    for command in (["validate"], ["sensitivity", "--tornado", "--json",
                                   str(tmp_path / "s.json")],
                    ["run", "--json", str(tmp_path / "r.json")]):
        p = cli(command[0], str(case), *command[1:])
        refused(p, *fragments)
        messages.append(p.stderr)
    assert len(set(messages)) == 1  # the same message from every door
    assert sorted(x.name for x in tmp_path.iterdir()) == ["case.toml"]


def test_strategy_paths_work_in_every_analysis():
    text = swap(BASE, TORNADO_LINE, '"strategies.hybrid.ai_it_mw" = [10.0, 30.0]')
    a = finmodel.inputs.load.parse_assumptions(__import__("tomllib").loads(text))
    t = tornado(a, {"strategies.hybrid.ai_it_mw": (10.0, 30.0)}, strategy="hybrid")
    assert t.loc[0, "metric_low"] != t.loc[0, "metric_high"]


def test_negative_seed_and_zero_scenarios_are_refused_by_the_cli():
    p = cli("sensitivity", "assumptions/base.toml", "--monte-carlo", "10", "--seed", "-1")
    assert p.returncode == 2 and "Traceback" not in p.stderr and "--seed" in p.stderr
    p = cli("sensitivity", "assumptions/base.toml", "--monte-carlo", "0")
    assert p.returncode == 2 and "Traceback" not in p.stderr and "at least 1" in p.stderr


def test_monte_carlo_without_a_count_uses_the_case_scenarios(tmp_path):
    case = tmp_path / "case.toml"
    case.write_text(swap(BASE, "scenarios = 10_000", "scenarios = 37"))
    p = cli("sensitivity", str(case), "--monte-carlo", "--json", str(tmp_path / "s.json"))
    assert p.returncode == 0, p.stderr
    assert json.loads((tmp_path / "s.json").read_text())["monte_carlo"]["scenarios"] == 37


# --- 2/3. outputs: nothing written unless all succeeded; unwritable targets refused ------

def test_output_that_is_a_folder_is_refused_before_anything_is_written(tmp_path):
    folder = tmp_path / "x.xlsx"
    folder.mkdir()
    p = cli("run", "assumptions/base.toml", "-o", str(folder), "--json", str(tmp_path / "e.json"))
    refused(p, "x.xlsx", "is a folder")
    assert sorted(x.name for x in tmp_path.iterdir()) == ["x.xlsx"]


def test_file_size_limit_leaves_existing_outputs_untouched(tmp_path):
    js, out = tmp_path / "e.json", tmp_path / "e.xlsx"
    js.write_text("old")
    p = subprocess.run(f"ulimit -f 60; exec {sys.executable} -m finmodel.cli run "
                       f"assumptions/base.toml -o {out} --json {js}", shell=True, cwd=ROOT,
                       capture_output=True, text=True, timeout=300,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    refused_code = p.returncode
    assert refused_code == 2 and "Traceback" not in p.stderr, p.stderr
    assert "File too large" in p.stderr
    assert js.read_text() == "old" and not out.exists()
    assert sorted(x.name for x in tmp_path.iterdir()) == ["e.json"]


def test_png_without_matplotlib_is_refused_before_the_analysis(tmp_path):
    block = tmp_path / "block"
    block.mkdir()
    (block / "matplotlib.py").write_text("raise ImportError('blocked for the test')\n")
    png = tmp_path / "png"
    png.mkdir()
    env = {**os.environ, "PYTHONPATH": f"{block}{os.pathsep}{ROOT}"}
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "finmodel.cli", "sensitivity",
                        "assumptions/base.toml", "--monte-carlo", "2000", "--json",
                        str(tmp_path / "s.json"), "--png", str(png)], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=300)
    refused(p, "matplotlib")
    assert "Monte Carlo [" not in p.stderr  # refused before the analysis ran
    assert not (tmp_path / "s.json").exists() and list(png.iterdir()) == []
    assert time.perf_counter() - t0 < 60


@pytest.mark.parametrize("target, fragment", [
    ("/proc/finmodel-test.xlsx", "cannot write"),
    ("/sys/finmodel-test.xlsx", "cannot write"),
])
def test_unwritable_output_is_refused_with_a_message(target, fragment):
    p = cli("run", "assumptions/base.toml", "-o", target)
    refused(p, fragment)


def test_a_valid_long_file_name_is_written_and_leaves_no_temporary(tmp_path):
    out = tmp_path / ("n" * 250 + ".xlsx")  # 255 bytes: the longest valid name
    p = cli("run", "assumptions/base.toml", "-o", str(out))
    assert p.returncode == 0, p.stderr
    assert [x.name for x in tmp_path.iterdir()] == [out.name]
    p = cli("run", "assumptions/base.toml", "-o", str(tmp_path / ("n" * 256 + ".xlsx")))
    refused(p, "longer than 255 bytes")


def test_output_equal_to_the_input_is_refused(tmp_path):
    case = tmp_path / "case.xlsx"
    case.write_text(BASE)
    p = cli("run", str(case), "-o", str(case))
    refused(p, "is an input of this command")
    assert case.read_text() == BASE
    p = cli("sensitivity", str(case), "--json", str(tmp_path / "s.json"), "-o",
            str(tmp_path / "sub" / ".." / "case.xlsx"))
    assert p.returncode == 2 and case.read_text() == BASE


def test_sigterm_during_export_leaves_no_temporary_and_no_output(tmp_path):
    out, js = tmp_path / "t.xlsx", tmp_path / "t.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "finmodel.cli", "run",
                             "assumptions/base.toml", "-o", str(out), "--json", str(js)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not any(tmp_path.glob(".fm-*.xlsx")):
        time.sleep(0.01)  # wait until the workbook's temporary exists: mid-export
    assert any(tmp_path.glob(".fm-*")), "the export never started"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143 and "terminated" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_temporaries_of_a_killed_run_are_removed_by_the_next(tmp_path):
    stale = tmp_path / ".fm-999999999-abcdef.xlsx"  # no such process
    stale.write_text("left by kill -9")
    p = cli("run", "assumptions/base.toml", "--json", str(tmp_path / "r.json"))
    assert p.returncode == 0, p.stderr
    assert [x.name for x in tmp_path.iterdir()] == ["r.json"]


# --- 4. case files that crashed ----------------------------------------------------------

CRASHED = {
    "year 0": (swap(BASE, '"2026-01"', '"0000-01"'), ["case.start_month", "1900-01 to 2200-12",
                                                      "'0000-01'"]),
    "year 9999": (swap(BASE, '"2026-01"', '"9999-12"'), ["case.start_month", "'9999-12'"]),
    "year 1600 (a negative Excel serial)": (swap(BASE, '"2026-01"', '"1600-01"'),
                                            ["case.start_month", "'1600-01'"]),
    "issue month year 0": (swap(CONVERTIBLE, 'issue_month = "', 'issue_month = "0000-01" #'),
                           ["financing.convertible.issue_month", "'0000-01'"]),
    "5,000-digit integer": (swap(BASE, "interconnect_mw = 100.0",
                                 "interconnect_mw = " + "9" * 5000), ["4300 digits"]),
    "400-digit integer": (swap(BASE, "horizon_years = 15", "horizon_years = " + "9" * 400),
                          ["case.horizon_years", "…(400 chars)"]),
    "inline tables 500 deep": (BASE + "\nzz = " + "{a = " * 500 + "1" + "}" * 500 + "\n",
                               ["nested deeper than"]),
    "100,000-character value": (swap(BASE, "interconnect_mw = 100.0",
                                     'interconnect_mw = "' + "x" * 100_000 + '"'),
                                ["site.interconnect_mw", "…(100002 chars)"]),
    "lattice without a risk-neutral probability": (
        swap(swap(CONVERTIBLE, "volatility = 0.", "volatility = 0.01 #"),
             "risk_free_rate = 0.0", "risk_free_rate = 0.3 #"),
        ["financing.convertible.volatility", "financing.convertible.risk_free_rate",
         "risk-neutral"]),
    "conversion after the horizon": (
        swap(BASE, 'conversion_start_month = "2026-07"', 'conversion_start_month = "2045-01"'),
        ["conversion_start_month", "2045-01", "after the model's last month"]),
    # Fuzzed (2026-11-27): a phase ready after the horizon ran and made converting look
    # better (its capex spread over a build that never ends); a NaN share ran to the engine.
    "phase ready after the horizon": (
        swap(BASE, "phase_ready_months = [", "phase_ready_months = [12, 200] #"),
        ["hosting.phase_ready_months", "ready in 2043-03", "after the model's last month "
         "2040-12"]),
    "NaN phase share": (
        swap(BASE, "phase_it_shares = [", "phase_it_shares = [nan, 1.0] #"),
        ["phase_it_shares", "positive shares summing to 1", "nan"]),
    "fractional refresh interval": (
        swap(BASE, "refresh_interval_years = ", "refresh_interval_years = 2.5 #"),
        ["mining.refresh_interval_years", "integer", "2.5"]),
}


@pytest.mark.parametrize("kind", list(CRASHED))
def test_case_files_that_crashed_are_refused_by_validate_and_run(kind, tmp_path):
    text, fragments = CRASHED[kind]
    case = tmp_path / "case.toml"
    case.write_text(text)
    for command in ("validate", "run"):
        p = cli(command, str(case))
        refused(p, *fragments)
        assert len(p.stderr) < 1200


def test_endless_and_huge_files_are_refused_without_reading_them_whole(tmp_path):
    p = cli("validate", "/dev/zero")
    refused(p, "/dev/zero", "larger than")
    p = cli("validate", str(tmp_path))
    refused(p, "cannot read")


# --- 5. silently wrong results ------------------------------------------------------------

@pytest.mark.parametrize("inputs, fragment", [
    ({"site.mining_it_mw": [1e6]}, "exceeds site.interconnect_mw"),
    ({"strategies.hybrid.ai_it_mw": [10.0, 200.0]}, "oversubscribes"),
    ({"case.horizon_years": [5, 40]}, "shapes the timeline"),
    ({"mining.refresh_interval_years": [2.5]}, "whole numbers"),
    ({"mining.economic_curtailment": [0.5]}, "0 or 1"),
    ({"network.btc_price_usd": [1.0, 2.0], "power.pue": [1.0, 1.1, 1.2]}, "disagree"),
    ({"valuation.terminal_growth_rate": [0.0]}, None),
])
def test_scenario_arrays_obey_the_cross_field_rules(inputs, fragment):
    if fragment is None:  # a valid scenario passes
        finmodel.run(A, inputs=inputs, breakevens=False)
        return
    with pytest.raises(InputError, match=fragment):
        finmodel.run(A, inputs=inputs, breakevens=False)


def test_a_multi_valued_discount_rate_reports_every_scenario():
    r = finmodel.run(A, inputs={"case.discount_rate": [0.05, 0.2]}, breakevens=False)
    npv = r.metrics("mining")["npv_usd"].to_numpy()
    assert r.n_scenarios == 2 and npv[0] != npv[1]
    one = finmodel.run(finmodel.with_values(A, {"case.discount_rate": 0.2}), breakevens=False)
    assert npv[1] == pytest.approx(one.summary.loc["npv_usd", "mining"], rel=1e-12)


def test_given_lines_are_checked_against_their_input_bounds():
    with pytest.raises(InputError, match="network.btc_price_usd: line value -5 breaks"):
        finmodel.run(A, lines={"network.btc_price_usd": np.full(180, -5.0)})
    with pytest.raises(InputError, match="not a line"):
        finmodel.run(A, lines={"network.nothing": np.ones(180)})


def test_tornado_range_breaking_a_cross_field_rule_is_refused():
    with pytest.raises(InputError, match="exceeds site.interconnect_mw"):
        tornado(A, {"site.mining_it_mw": (50.0, 5000.0)})


# --- 7. what is printed cannot drive the terminal ------------------------------------------

def test_control_characters_in_the_case_are_escaped_when_printed(tmp_path):
    case = tmp_path / "case.toml"
    case.write_text(swap(BASE, 'name = "', 'name = "\\u001b[2J\\u001b[31mX ', ))
    p = cli("validate", str(case))
    assert p.returncode == 0 and "\x1b" not in p.stdout and "\\x1b[2J" in p.stdout
    case.write_text(swap(BASE, "interconnect_mw = 100.0", 'interconnect_mw = "\\u001b[2J"'))
    p = cli("validate", str(case))
    refused(p, "\\x1b[2J")
    assert "\x1b" not in p.stderr


# --- 8. the Python API raises InputError (a ValueError) naming argument and value ----------

API_BAD = [
    (lambda: finmodel.run(A, inputs={"network.btc_prize_usd": [1.0]}), "btc_prize_usd"),
    (lambda: finmodel.run(A, inputs={1: [1.0]}), "1"),
    (lambda: finmodel.run(A, inputs=[1.0]), "mapping"),
    (lambda: finmodel.run(A, inputs={"network.btc_price_usd": ["x"]}), "numbers"),
    (lambda: finmodel.run(A, lines={"network.btc_price_usd": "x"}), "numbers"),
    (lambda: finmodel.run("base.toml"), "assumptions"),
    (lambda: finmodel.with_values(A, {None: 1}), "None"),
    (lambda: finmodel.with_values(A, {"site.nothing": 1}), "site.nothing"),
    (lambda: finmodel.with_values(A, "x"), "mapping"),
    (lambda: finmodel.load_assumptions(None), "None"),
    (lambda: tornado(A, {"network.btc_price_usd": (1.0,)}), "low, high"),
    (lambda: tornado(A, {"network.btc_price_usd": "x"}), "'x'"),
    (lambda: tornado(A, {"network.btc_price_usd": 0.2}, metric="nope"), "'nope'"),
    (lambda: tornado(A, {"network.btc_price_usd": 0.2}, strategy="nope"), "'nope'"),
    (lambda: grid(A, ("network.btc_price_usd", []), ("power.pue", [1.0])), "non-empty"),
    (lambda: grid(A, "network.btc_price_usd", ("power.pue", [1.0])), "axis"),
    (lambda: solve_input(A, "network.btc_price_usd", metric="npv_usd", strategy="mining",
                         bracket=(5.0,)), "bracket"),
    (lambda: solve_input(A, "network.btc_price_usd", metric="npv_usd", strategy="mining",
                         bracket=(1.0, 2.0), target="x"), "target"),
    (lambda: monte_carlo(A, 10, seed=-1), "seed"),
    (lambda: monte_carlo(A, "10"), "'10'"),
    (lambda: monte_carlo(A, 10, distributions={"network.btc_price_usd": {"dist": "normal",
                                                                         "mean": 1e5,
                                                                         "sd": 1e5}}),
     "breaks the bound > 0"),
    (lambda: monte_carlo(A, 10, metrics=("nope",)), "'nope'"),
    (lambda: monte_carlo(A, 10, executor="gpu"), "executor"),
    (lambda: Paths("x"), "'x'"),
]


@pytest.mark.parametrize("call, fragment", API_BAD, ids=[str(i) for i in range(len(API_BAD))])
def test_the_api_raises_input_error_naming_the_value(call, fragment):
    with pytest.raises(InputError) as info:
        call()
    assert isinstance(info.value, ValueError)
    assert fragment in str(info.value), str(info.value)


def test_monte_carlo_summary_of_a_metric_no_scenario_has():
    # Found by the fuzz: mining never pays back on the base site bought greenfield, so
    # every draw is NaN.
    greenfield = finmodel.with_values(A, {"mining.fleet_owned": False})
    mc = monte_carlo(greenfield, 20, metrics=("payback_years",))
    s = mc.summary("payback_years")
    assert np.isnan(s.loc["mean", "mining"]) and s.loc["missing", "mining"] == 20
    assert np.isfinite(s.loc["mean", "ai_hosting"])


def test_list_inputs_other_than_yearly_paths_do_not_vary_between_scenarios():
    with pytest.raises(InputError, match="not a yearly path"):
        finmodel.run(A, inputs={"hosting.phase_it_shares": [[0.3, 0.8]]}, breakevens=False)


# --- 9. validate reads a portfolio file as a portfolio -------------------------------------

def test_validate_checks_a_portfolio_file_as_a_portfolio(tmp_path):
    # Before: the portfolio was checked against the case schema ("case: required input
    # is missing", 16 problems) and a valid portfolio could not be validated at all.
    src = ROOT / "assumptions" / "bitdeer_portfolio.toml"
    p = cli("validate", str(src))
    assert p.returncode == 0, p.stderr
    assert "valid portfolio" in p.stdout and "7 sites" in p.stdout
    # A site's override breaking its case's schema is named with the site and field.
    bad = tmp_path / "portfolio.toml"
    text = src.read_text().replace('base_case = "bitdeer_hybrid.toml"',
                                   f'base_case = "{ROOT / "assumptions" / "bitdeer_hybrid.toml"}"')
    bad.write_text(text.replace("cash_usd = 900_000_000.0", "cash_usd = -5.0", 1))
    refused(cli("validate", str(bad)), "company.cash_usd", "-5")
