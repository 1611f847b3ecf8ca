"""The command line: a readable run, and bad input refused with status 2, one clear
message naming the field, the value and the expectation, no traceback, no output file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

BASE = (ROOT / "assumptions" / "base.toml").read_text()


def finmodel_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "finmodel.cli", *args], capture_output=True,
                          text=True, cwd=cwd or ROOT, timeout=120)


def test_run_writes_workbook_and_json_and_prints_a_summary(tmp_path):
    out, js = tmp_path / "out.xlsx", tmp_path / "out.json"
    p = finmodel_cli("run", "assumptions/base.toml", "-o", str(out), "--json", str(js))
    assert p.returncode == 0, p.stderr
    assert "NPV at the discount rate" in p.stdout and "mining" in p.stdout
    summary = json.loads(js.read_text())
    m = summary["strategies"]["mining"]
    assert set(m) >= {"npv_usd", "project_irr", "payback_years", "hashcost_usd_per_ph_day",
                      "all_in_cost_per_btc_usd", "breakeven_btc_price_usd"}
    assert summary["case"]["file"] == "base.toml" and len(summary["case"]["sha256"]) == 64
    assert out.stat().st_size > 10_000
    assert sorted(x.name for x in tmp_path.iterdir()) == ["out.json", "out.xlsx"]


def test_validate_and_schema():
    p = finmodel_cli("validate", "assumptions/base.toml")
    assert p.returncode == 0 and "valid" in p.stdout
    p = finmodel_cli("schema")
    schema = json.loads(p.stdout)
    props = schema["$defs"]["MiningSection"]["properties"]["efficiency_j_per_th"]
    assert props["unit"] == "J/TH" and props["exclusiveMinimum"] == 0


BAD = {
    "wrong type": (BASE.replace("interconnect_mw = 100.0", 'interconnect_mw = "lots"'),
                   ["site.interconnect_mw", "'lots'", "number"]),
    "negative MW": (BASE.replace("interconnect_mw = 100.0", "interconnect_mw = -5.0"),
                    ["site.interconnect_mw", "-5.0", "greater than 0"]),
    "zero efficiency": (BASE.replace("efficiency_j_per_th = 13.5", "efficiency_j_per_th = 0"),
                        ["mining.efficiency_j_per_th", "0", "greater than 0"]),
    "unknown key": (BASE.replace("[site]", "[site]\ninterconect_mw = 3.0"),
                    ["site.interconect_mw", "unknown key"]),
    "malformed TOML": (BASE.replace("[site]", "[site"), ["malformed TOML", "line"]),
    "oversubscribed site": (BASE.replace("mining_it_mw = 95.0", "mining_it_mw = 99.0"),
                            ["site.mining_it_mw", "99", "exceeds site.interconnect_mw"]),
    "bad month": (BASE.replace('"2026-01"', '"2026-13"'), ["case.start_month", "YYYY-MM"]),
    "oversubscribed strategy": (BASE.replace("ai_it_mw = 40.0", "ai_it_mw = 80.0"),
                                ["strategies.hybrid", "80", "oversubscribes",
                                 "site.interconnect_mw"]),
    "lease before conversion": (BASE.replace("prepayment_credit_months = 12",
                                             'prepayment_credit_months = 12\n'
                                             'rent_start_month = "2026-09"'),
                                ["hosting.rent_start_month", "2026-09", "2027-07",
                                 "cannot start before its conversion ends"]),
    "negative lease rate": (BASE.replace("lease_rate_usd_per_kw_month = 130.0",
                                         "lease_rate_usd_per_kw_month = -5.0"),
                            ["hosting.lease_rate_usd_per_kw_month", "-5.0",
                             "greater than 0"]),
    "bad strategy name": (BASE.replace("[strategies.hybrid]", "[strategies.Hybrid-1]"),
                          ["strategies.Hybrid-1", "lower case"]),
    "short path": (BASE.replace("btc_price_usd = 90_000.0", "btc_price_path_usd = [1.0, 2.0]")
                   .replace("btc_price_drift_rate = 0.10", ""),
                   ["btc_price_path_usd", "has 2 values", "15"]),
}


@pytest.mark.parametrize("kind", list(BAD))
def test_bad_input_exits_2_with_one_clear_message(kind, tmp_path):
    text, expected = BAD[kind]
    case = tmp_path / "case.toml"
    case.write_text(text)
    out, js = tmp_path / "out.xlsx", tmp_path / "out.json"
    p = finmodel_cli("run", str(case), "-o", str(out), "--json", str(js))
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert "Traceback" not in p.stderr
    assert p.stderr.startswith("finmodel: error: ")
    for fragment in expected:
        assert fragment in p.stderr, (fragment, p.stderr)
    assert sorted(x.name for x in tmp_path.iterdir()) == ["case.toml"]
    assert p.stdout == ""


def test_missing_file_and_bad_output_paths(tmp_path):
    p = finmodel_cli("run", str(tmp_path / "nope.toml"))
    assert p.returncode == 2 and "case file not found" in p.stderr
    p = finmodel_cli("run", "assumptions/base.toml", "-o", str(tmp_path / "no" / "x.xlsx"))
    assert p.returncode == 2 and "does not exist" in p.stderr
    p = finmodel_cli("run", "assumptions/base.toml", "-o", str(tmp_path / "x.csv"))
    assert p.returncode == 2 and ".xlsx" in p.stderr
    assert list(tmp_path.iterdir()) == []


def test_example_script_prints_the_comparison_and_writes_the_workbook(tmp_path):
    out = tmp_path / "cmp.xlsx"
    p = subprocess.run([sys.executable, "examples/compare_strategies.py",
                        "assumptions/base.toml", str(out)], capture_output=True, text=True,
                       cwd=ROOT, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "ai_hosting" in p.stdout and "best start" in p.stdout
    assert out.stat().st_size > 10_000


def test_convertible_example_prints_cost_and_dilution():
    p = subprocess.run([sys.executable, "examples/convertible_cost_and_dilution.py"],
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "All-in cost to the issuer" in p.stdout and "Dilution by share price" in p.stdout


def test_sensitivity_writes_workbook_json_and_pngs(tmp_path):
    out, js, png = tmp_path / "s.xlsx", tmp_path / "s.json", tmp_path / "png"
    png.mkdir()
    p = finmodel_cli("sensitivity", "assumptions/base.toml", "--tornado", "--grid",
                     "network.btc_price_usd,hosting.lease_rate_usd_per_kw_month",
                     "--monte-carlo", "600", "--seed", "5", "-o", str(out), "--json", str(js),
                     "--png", str(png))
    assert p.returncode == 0, p.stderr
    assert "Tornado" in p.stdout and "Monte Carlo, 600 scenarios, seed 5 (numpy kernel):" in p.stdout
    summary = json.loads(js.read_text())
    assert summary["strategy"] == "hybrid"
    assert len(summary["tornado"]) == 8 and len(summary["grid"]["values"]) == 5
    assert set(summary["scenarios"]) == {"base", "bear", "bull", "capex_overrun"}
    assert 0 <= summary["monte_carlo"]["summary"]["hybrid"]["prob_beats_mining"] <= 1
    assert summary["monte_carlo"]["kernel"] == "numpy"  # 600 < COMPILED_THRESHOLD
    import openpyxl

    wb = openpyxl.load_workbook(out)
    assert {"Sensitivity", "Monte Carlo", "Summary", "Inputs"} <= set(wb.sheetnames)
    assert sorted(x.name for x in png.iterdir()) == ["grid.png", "monte_carlo.png",
                                                     "tornado.png"]


@pytest.mark.parametrize("args, message", [
    (["--grid", "network.btc_price_usd"], "--grid: give two field paths"),
    (["--grid", "network.btc_price_usd,site.nothing_mw"], "site.nothing_mw: no such"),
    (["--tornado", "--png", "/nonexistent/folder"], "the folder does not exist"),
])
def test_sensitivity_bad_input_exits_2(args, message, tmp_path):
    out = tmp_path / "s.xlsx"
    p = finmodel_cli("sensitivity", "assumptions/base.toml", *args, "-o", str(out))
    assert p.returncode == 2 and message in p.stderr and "Traceback" not in p.stderr
    assert not out.exists()


def test_sensitivity_bad_distribution_in_the_case(tmp_path):
    case = tmp_path / "case.toml"
    case.write_text(BASE.replace('dist = "uniform"', 'dist = "uniform"\nmode = 3.0'))
    p = finmodel_cli("sensitivity", str(case), "--monte-carlo", "10")
    assert p.returncode == 2
    assert "distribution of power.ppa_price_usd_per_mwh" in p.stderr and "unknown" in p.stderr


def test_summary_names_bridge_steps_by_title_and_prints_money_in_millions():
    import finmodel
    from finmodel.cli import _fmt, format_summary

    result = finmodel.run(finmodel.load_assumptions(ROOT / "assumptions" / "base.toml"))
    text = format_summary(result)
    # Hand-written expectations: a zero step and money under a million in millions too.
    assert _fmt(0.0, "USD") == _fmt(-3e-7, "USD") == "0.0 M USD"
    assert _fmt(440_013.0, "USD") == "0.44 M USD"
    assert _fmt(-602_900_000.0, "USD") == "-602.9 M USD"
    # Every other figure carries its unit; ratios read as multiples.
    assert _fmt(132_964.4, "USD/BTC") == "132,964 USD/BTC"
    assert _fmt(17.2712, "USD/PH/day") == "17.27 USD/PH/day"
    assert _fmt(1.3412, "x") == "1.34x" and _fmt(1.25, "ratio") == "1.25x"
    lines = {ln.split("  ")[0]: ln for ln in text.splitlines()}
    # The columns are code names (they fit 18 characters); a legend names them as readers do.
    assert ("Strategies: mining = Keep mining; ai_hosting = Convert to AI hosting; "
            "hybrid = Hybrid: 40 MW IT to AI") in text
    asic = lines["NPV bridge from mining: ASIC Sales"]
    v = float(result.summary.loc["bridge_asic_sale_usd", "ai_hosting"])
    assert f"{v / 1e6:,.1f} M USD" in asic
    assert "NPV bridge from mining: Conversion Capex and GPUs" in lines
    credits = lines["NPV bridge from mining: Sell-Back Credits"]
    assert result.summary.loc["bridge_power_credits_usd", "ai_hosting"] == 0
    assert credits.split()[-2:] == ["M", "USD"] and "0.00" not in credits
    assert not any(k.startswith("NPV bridge from mining: ") and k[24].islower()
                   for k in lines)


def test_only_the_program_freezes_its_objects_before_exiting(monkeypatch, capsys):
    # The console script (argv None) freezes the objects left so the interpreter's
    # collections at exit skip them; a caller passing arguments (tests, scripts) keeps
    # its collector as it was.
    import gc

    from finmodel.cli import main

    assert gc.get_freeze_count() == 0
    assert main(["validate", "assumptions/base.toml"]) == 0
    assert gc.get_freeze_count() == 0
    monkeypatch.setattr(sys, "argv", ["finmodel", "validate", "assumptions/base.toml"])
    try:
        assert main() == 0
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
    assert "valid" in capsys.readouterr().out


def test_only_the_program_runs_a_case_without_the_cycle_collector(tmp_path):
    # `finmodel run` as the program: no collection at all (the collector's passes freed
    # only the export's workbook, just before the process ends); main called with
    # arguments, and the program's other commands, keep it on.
    code = ("import gc, sys; from finmodel.cli import main; "
            "sys.argv = ['finmodel'] + sys.argv[1:]; main(); print(gc.isenabled())")
    out = str(tmp_path / "o.xlsx")
    got = {}
    for args in (["run", "assumptions/base.toml", "-o", out], ["validate",
                                                               "assumptions/base.toml"]):
        p = subprocess.run([sys.executable, "-c", code, *args], capture_output=True,
                           text=True, cwd=ROOT, timeout=120)
        assert p.returncode == 0, p.stderr
        got[args[0]] = p.stdout.strip().splitlines()[-1]
    assert got == {"run": "False", "validate": "True"}
    import gc
    import zipfile

    with zipfile.ZipFile(out) as z:
        assert "xl/workbook.xml" in z.namelist()

    from finmodel.cli import main

    assert main(["run", "assumptions/base.toml", "-o", str(tmp_path / "p.xlsx")]) == 0
    assert gc.isenabled()


def test_importing_finmodel_leaves_the_collector_as_it_was_and_no_young_objects():
    # The import's objects go to the oldest generation unscanned (no collection of the
    # ~70,000 at the first allocation after it); nothing stays frozen; a cycle made before
    # the import (the collector off, so it is still there) is freed by a full collection.
    enabled = ("import gc\nimport finmodel\n"
               "young = len(gc.get_objects(0)) + len(gc.get_objects(1))\n"
               "print(gc.isenabled(), gc.get_freeze_count(), young < 5000)\n")
    disabled = ("import gc, weakref\ngc.disable()\n"
                "class C: pass\n"
                "a = C(); a.me = a; dead = weakref.ref(a); del a\n"
                "import finmodel\n"
                "print(gc.isenabled(), gc.get_freeze_count(), dead() is not None)\n"
                "gc.enable(); gc.collect(); print(dead() is None)\n")
    got = []
    for code in (enabled, disabled):
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           cwd=ROOT, timeout=120)
        assert p.returncode == 0, p.stderr
        got.append(p.stdout.split())
    assert got == [["True", "0", "True"], ["False", "0", "True", "True"]]


def test_run_with_its_workbook_and_json_does_not_import_pandas(tmp_path):
    # pandas' import was a tenth of `finmodel run`; the DataFrame views build it on use.
    code = ("import sys; from finmodel.cli import main; "
            f"main(['run', 'assumptions/base.toml', '-o', {str(tmp_path / 'o.xlsx')!r}, "
            f"'--json', {str(tmp_path / 'o.json')!r}]); print('pandas' in sys.modules)")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=ROOT, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip().splitlines()[-1] == "False"
    import finmodel

    r = finmodel.run(finmodel.load_assumptions(ROOT / "assumptions" / "base.toml"))
    assert list(r.timing) == ["ai_hosting", "hybrid"]  # DataFrames, made when read
    t = r.timing["hybrid"]
    assert list(t.columns) == ["npv_usd", "npv_vs_mining_usd"] and t.index.name == "start"
    assert str(t.index[0]) == "2026-01" and t is r.timing["hybrid"]


def _parts(path: Path) -> dict[str, bytes]:
    import zipfile

    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist() if n != "docProps/core.xml"}


@pytest.mark.parametrize("case", ["base", "bitdeer_convertible_hybrid"])
def test_break_evens_solved_in_a_second_process_give_the_same_files(case, tmp_path,
                                                                    monkeypatch, capsys):
    # `run -o` solves the break-evens in a forked child while it writes the sheets that do
    # not show them: the workbook, the JSON and the printed summary are those of solving
    # them first, here; so are they when the child fails (solved again in the parent).
    import pickle

    from finmodel import aside
    from finmodel.cli import main

    def run(tag: str, fork: bool, child_fails: bool = False):
        monkeypatch.setattr(aside, "possible", lambda: fork)
        if child_fails:  # the child cannot send its result: it exits 1
            monkeypatch.setattr(aside.pickle, "dumps", lambda *a, **k: 1 / 0)
        out, js = tmp_path / f"{tag}.xlsx", tmp_path / f"{tag}.json"
        assert main(["run", f"assumptions/{case}.toml", "-o", str(out), "--json",
                     str(js)]) == 0
        monkeypatch.setattr(aside.pickle, "dumps", pickle.dumps)
        text = capsys.readouterr().out.split("\nran in")[0]
        return _parts(out), js.read_text(), text

    made = []

    class Spy(aside.Aside):
        def __init__(self, work):
            made.append(work)
            super().__init__(work)

    monkeypatch.setattr(aside, "Aside", Spy)
    here = run("here", False)
    assert not made
    assert run("forked", True) == here
    assert run("failed", True, child_fails=True) == here
    assert len(made) == 2
    assert "Break-even" in here[2] or "solved" in here[2]


def test_start_run_and_complete_run_are_run(tmp_path):
    import numpy as np

    import finmodel
    from finmodel.api import complete_run, start_run

    a = finmodel.load_assumptions(ROOT / "assumptions" / "base.toml")
    whole = finmodel.run(a)
    part, solve = start_run(a)
    solved = [x.name for x in part.model.scalars if x.solved]
    assert solved and all(np.isnan(part.values[k]).all() for k in solved)
    assert len(part.timing) == 0
    got = solve()
    assert all(np.isnan(part.values[k]).all() for k in solved)  # solve changes nothing
    complete_run(part, got)
    assert list(part.values) == list(whole.values)
    assert all(np.array_equal(part.values[k], whole.values[k], equal_nan=True)
               for k in whole.values)
    assert list(part.reasons) == list(whole.reasons)
    assert all((part.reasons[k] == whole.reasons[k]).all() for k in whole.reasons)
    assert part.summary_json() == whole.summary_json()
    assert not np.isnan(part.values["ai_hosting.breakeven_lease_rate"]).any()


def test_aside_returns_the_childs_value_or_none():
    import os

    from finmodel.aside import Aside

    assert Aside(lambda: {"pid": os.getpid(), "x": [1.5]}).result()["x"] == [1.5]
    assert Aside(lambda: {"pid": os.getpid()}).result()["pid"] != os.getpid()
    assert Aside(lambda: 1 / 0).result() is None
    slow = Aside(lambda: __import__("time").sleep(60))
    slow.stop()  # killed and reaped at once
    assert slow.pid is None
