"""Fuzz the command line with mutated case files (a script, not a test).

Each mutant is one of the shipped cases (``assumptions/*.toml``) with one to three
mutations: a value of any field replaced (another type, an extreme or scaled number, a
bad month, a control character, a long string), a key deleted or added, the ``[analysis]``
section bent (tornado ranges, grid axes, distributions, correlations, metric, strategy),
or the text itself damaged (a line deleted or repeated, the file cut short, a stray
byte). Every mutant goes through ``finmodel validate``, ``finmodel run --json`` and
``finmodel sensitivity --tornado [--grid] --monte-carlo 200 --json`` in-process, and
every outcome must be either

- a clean refusal: status 2, one line ``finmodel: error: ...`` on stderr, nothing
  written; or
- a sane result: status 0, the JSON written, finite NPVs (and, for a sample, a workbook
  that openpyxl opens);

and ``validate`` must agree with ``run`` and ``sensitivity`` on the file. Anything else
(an exception escaping the CLI, another status, several lines, a file left behind, a
disagreement, a hang) is a failure, printed with the mutant's file kept for replay.

    python scripts/fuzz_cases.py --n 1000 --seed 1 --workers 2 --out /tmp/fuzz
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import multiprocessing as mp
import random
import signal
import sys
import time
import tomllib
import traceback
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CASES = [p for p in sorted((ROOT / "assumptions").glob("*.toml")) if "portfolio" not in p.name]
STRINGS = ["0000-01", "9999-12", "1600-01", "1899-12", "2026-13", "2201-01", "2200-12",
           "1900-01", "2031-06", "", "abc", "\x1b[2J\x1b[31mred", "x" * 5000, "mining",
           "hybrid", "network.btc_price_usd"]
PATHS = ["network.btc_price_usd", "site.mining_it_mw", "site.interconnect_mw", "power.pue",
         "power.contract_mw", "case.discount_rate", "case.horizon_years", "case.start_month",
         "case.name", "mining.refresh_interval_years", "mining.economic_curtailment",
         "strategies.hybrid.ai_it_mw", "strategies.hybrid.conversion_start_month",
         "strategies.nope.ai_it_mw", "hosting.pue", "hosting.lease_rate_usd_per_kw_month",
         "valuation.terminal_growth_rate", "financing.convertible.volatility",
         "network.btc_price_path_usd", "site", "nope.x", "analysis.metric", ""]
METRICS = ["npv_usd", "project_irr", "moic", "npv_vs_mining_usd", "payback_years",
           "breakeven_btc_price_usd", "npv", ""]


# --- a small TOML writer: every top-level key as one inline table -----------------------

def _key(k: str) -> str:
    return _string(str(k))


def _string(s: str) -> str:
    return json.dumps(s, ensure_ascii=False).replace("\x7f", "\\u007f")


def _value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) \
            else repr(v)
    if isinstance(v, str):
        return _string(v)
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(type(v))


def dumps(data: dict) -> str:
    return "".join(f"{_key(k)} = {_value(v)}\n" for k, v in data.items())


# --- mutations ----------------------------------------------------------------------------

def _leaves(node, path=()):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(node, list) and node and isinstance(node[0], dict):
        for i, v in enumerate(node):
            yield from _leaves(v, (*path, i))
    else:
        yield path, node


def _dicts(node, path=()):
    if isinstance(node, dict):
        yield path, node
        for k, v in node.items():
            yield from _dicts(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _dicts(v, (*path, i))


def _get(data, path):
    for p in path:
        data = data[p]
    return data


def _replacement(rng: random.Random, old):
    kind = rng.random()
    if kind < 0.45 and isinstance(old, (int, float)) and not isinstance(old, bool):
        k = rng.choice([-1, 0, 0.5, 1.5, 2, 10, 1000, 1e6, 1e-6])
        v = old * k
        return int(v) if isinstance(old, int) and rng.random() < 0.5 else float(v)
    if kind < 0.7:
        return rng.choice([0, -1, 1, 2.5, -1e-9, 1e308, -1e308, float("nan"), float("inf"),
                           10 ** 30, 40, 41, 0.5, True, False])
    if kind < 0.85:
        return rng.choice(STRINGS)
    return rng.choice([[], [1.0], [1.0, 2.0, 3.0], {}, {"x": 1}, [[1.0]], ["a"]])


def mutate_leaf(rng, data):
    path, old = rng.choice(list(_leaves(data)))
    if not path:
        return "nothing"
    _get(data, path[:-1])[path[-1]] = _replacement(rng, old)
    return f"set {'.'.join(map(str, path))}"


def nudge_number(rng, data):
    """A plausible change (x 0.8 to 1.25) of a number: mutants that should mostly run."""
    leaves = [(p, v) for p, v in _leaves(data) if p and isinstance(v, (int, float))
              and not isinstance(v, bool)]
    path, old = rng.choice(leaves)
    new = old * rng.uniform(0.8, 1.25)
    _get(data, path[:-1])[path[-1]] = round(new) if isinstance(old, int) else new
    return f"nudge {'.'.join(map(str, path))}"


def delete_key(rng, data):
    path, d = rng.choice([x for x in _dicts(data) if isinstance(x[1], dict) and x[1]])
    k = rng.choice(list(d))
    del d[k]
    return f"delete {'.'.join(map(str, (*path, k)))}"


def add_key(rng, data):
    path, d = rng.choice([x for x in _dicts(data) if isinstance(x[1], dict)])
    d[rng.choice(["extra", "interconect_mw", "pue", "a.b", "\x1b"])] = rng.choice([1.0, "x"])
    return f"add key under {'.'.join(map(str, path))}"


def bend_analysis(rng, data):
    an = data.setdefault("analysis", {})
    what = rng.choice(["tornado", "grid", "dist", "corr", "metric", "strategy", "mc",
                       "scenario"])
    if what == "tornado":
        t = an.setdefault("tornado", {})
        path = rng.choice(PATHS)
        t[path] = rng.choice([[1.0], [], [1.0, 2.0, 3.0], [5000.0, 50.0], [50.0, 5000.0],
                              -0.1, 0.2, 5.0, 0.999, "abc", [0.0, 1e9]])
    elif what == "grid":
        g = an.setdefault("grid", {})
        if g and rng.random() < 0.5:
            k = rng.choice(list(g))
            g[k] = rng.choice([[], [1.0], [0.0, 1e9], ["a"], [-1.0, 1.0]])
        else:
            g[rng.choice(PATHS)] = rng.choice([[1.0, 2.0], [0.5, 1.0, 1.5], [], [1e6]])
    elif what == "dist":
        d = an.setdefault("monte_carlo", {}).setdefault("distributions", {})
        path = rng.choice(PATHS + list(d))
        d[path] = rng.choice([
            {"dist": "normal", "mean": 1.0, "sd": 0.1}, {"dist": "normal", "mean": 1.0},
            {"dist": "lognormal", "median": 100.0, "sigma": 0.2},
            {"dist": "triangular", "low": 3.0, "mode": 1.0, "high": 2.0},
            {"dist": "uniform", "low": 1.0, "high": 1.1}, {"dist": "beta", "a": 1.0},
            {"dist": "uniform", "low": "abc", "high": 2.0}, {"dist": "uniform"},
            {"dist": "normal", "mean": 100.0, "sd": 1e6}])
    elif what == "corr":
        mc = an.setdefault("monte_carlo", {})
        names = list(mc.get("distributions", {})) or PATHS
        a, b = rng.choice(names), rng.choice(names)
        mc.setdefault("correlations", []).append(
            {"a": a, "b": rng.choice([a, b]), "rho": rng.choice([0.3, 0.99, -0.99, 1.0, 0.0])})
    elif what == "metric":
        an["metric"] = rng.choice(METRICS)
    elif what == "strategy":
        an["strategy"] = rng.choice(["mining", "hybrid", "ai_hosting", "nope", ""])
    elif what == "mc":
        mc = an.setdefault("monte_carlo", {})
        key = rng.choice(["scenarios", "seed", "btc_price_volatility", "path_correlation"])
        mc[key] = rng.choice([0, -1, 1, 2.5, 10 ** 12, 0.5, 6.0, "x"])
    else:
        s = an.setdefault("scenarios", {}).setdefault(rng.choice(["bear", "new"]), {})
        s[rng.choice(PATHS)] = rng.choice([0.0, -1.0, 1e6, 2.5, 60_000.0, "x"])
    return f"analysis {what}"


def damage_text(rng, text: str) -> tuple[str, str]:
    lines = text.splitlines(keepends=True)
    kind = rng.choice(["delete line", "repeat line", "cut", "byte"])
    if kind == "delete line" and lines:
        del lines[rng.randrange(len(lines))]
    elif kind == "repeat line" and lines:
        i = rng.randrange(len(lines))
        lines.insert(i, lines[i])
    elif kind == "cut":
        return text[:rng.randrange(len(text) + 1)], kind
    else:
        i = rng.randrange(len(text) + 1)
        return text[:i] + rng.choice(["\x00", "\x1b", "{", "[", "=", '"', "\ufeff", "\\"]) + \
            text[i:], kind
    return "".join(lines), kind


def make_mutant(rng: random.Random) -> tuple[str, str, str]:
    """(file text, the shipped case it came from, what was done)."""
    source = rng.choice(CASES)
    text = source.read_text()
    if rng.random() < 0.12:
        text, what = damage_text(rng, text)
        return text, source.name, what
    data = tomllib.loads(text)
    done = []
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        op = rng.choices([mutate_leaf, nudge_number, delete_key, add_key, bend_analysis],
                         weights=[35, 25, 7, 3, 30])[0]
        done.append(op(rng, data))
    return dumps(data), source.name, "; ".join(done)


# --- running one mutant ---------------------------------------------------------------------

class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang()


def _cli(args: list[str]) -> tuple[int | str, str, str]:
    from finmodel.cli import main

    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = main(args)
            except SystemExit as exc:  # argparse
                rc = exc.code
    except Hang:
        return "hang", out.getvalue(), err.getvalue()
    except BaseException:
        return "crash", out.getvalue(), err.getvalue() + traceback.format_exc()
    return rc, out.getvalue(), err.getvalue()


def _errors(err: str) -> list[str]:
    """stderr without warnings and the progress bar."""
    return [x for x in err.replace("\r", "\n").splitlines()
            if x and not x.startswith(("finmodel: warning:", "Monte Carlo ["))]


def check_one(job: tuple[int, str, str, str, str, bool]) -> dict:
    i, text, source, what, folder, xlsx = job
    signal.signal(signal.SIGALRM, _alarm)
    base = Path(folder) / f"m{i:05d}"
    base.mkdir(parents=True, exist_ok=True)
    case = base / "case.toml"
    case.write_text(text, encoding="utf-8", errors="surrogatepass")
    res = {"i": i, "source": source, "what": what, "problems": []}

    def bad(msg: str) -> None:
        res["problems"].append(msg)

    def written() -> list[str]:
        return sorted(x.name for x in base.iterdir() if x.name != "case.toml")

    signal.alarm(240)
    try:
        v_rc, v_out, v_err = _cli(["validate", str(case)])
        res["validate"] = v_rc
        if v_rc not in (0, 2):
            bad(f"validate: status {v_rc}: {v_err[-2000:]}")
        grid = []
        try:
            g = tomllib.loads(text).get("analysis", {}).get("grid", {})
            grid = [k for k in g if isinstance(k, str)][:2] if isinstance(g, dict) else []
        except Exception:
            pass
        runs = {"run": ["run", str(case), "--json", str(base / "r.json")]
                + (["-o", str(base / "r.xlsx")] if xlsx else []),
                "sensitivity": ["sensitivity", str(case), "--tornado", "--monte-carlo", "200",
                                "--json", str(base / "s.json")]
                + (["--grid", ",".join(grid)] if len(grid) == 2 and all(
                    "," not in k for k in grid) else [])}
        for name, args in runs.items():
            rc, out, err = _cli(args)
            res[name] = rc
            files = written()
            if rc == 2:
                errs = _errors(err)
                if len(errs) != 1 or not errs[0].startswith("finmodel: error: ") or out:
                    bad(f"{name}: refusal is not one clean line: {err[-2000:]!r}")
                if files:
                    bad(f"{name}: refused but wrote {files}")
                if v_rc == 0:
                    bad(f"{name}: refused a file validate accepts: {err.strip()[:300]}")
                elif v_rc == 2 and errs and errs[0][17:].split(" (and ")[0] not in v_err:
                    bad(f"{name}: refused for another reason than validate: {errs[0][:300]}"
                        f" vs {v_err[:300]}")
            elif rc == 0:
                if v_rc != 0:
                    bad(f"{name}: ran a file validate refuses: {v_err[:300]}")
                js = base / ("r.json" if name == "run" else "s.json")
                try:
                    summary = json.loads(js.read_text(), parse_constant=lambda c: 1 / 0)
                except Exception as exc:
                    bad(f"{name}: JSON missing or not finite: {exc!r}")
                    summary = {}
                if name == "run":
                    for s, m in summary.get("strategies", {}).items():
                        if not isinstance(m.get("npv_usd"), float):
                            bad(f"run: {s} npv_usd is {m.get('npv_usd')!r}")
                    if xlsx:
                        import openpyxl

                        try:
                            openpyxl.load_workbook(base / "r.xlsx", read_only=True).close()
                        except Exception as exc:
                            bad(f"run: workbook does not open: {exc!r}")
                    res["warnings"] = sum(x.startswith("finmodel: warning:")
                                          for x in err.splitlines())
                if any(x.startswith(".fm-") for x in files):
                    bad(f"{name}: left a temporary: {files}")
            else:
                bad(f"{name}: status {rc}: {err[-3000:]}")
            for f in files:
                (base / f).unlink()
    finally:
        signal.alarm(0)
    if not res["problems"]:
        for f in base.iterdir():
            f.unlink()
        base.rmdir()
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--xlsx-share", type=float, default=0.02,
                    help="share of mutants whose run also writes (and reopens) a workbook")
    ap.add_argument("--out", default="/tmp/finmodel-fuzz")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    jobs = []
    for i in range(args.n):
        text, source, what = make_mutant(rng)
        jobs.append((i, text, source, what, args.out, rng.random() < args.xlsx_share))
    t0 = time.perf_counter()
    counts: Counter = Counter()
    failures = []
    with mp.get_context("spawn").Pool(args.workers, maxtasksperchild=50) as pool:
        for k, res in enumerate(pool.imap_unordered(check_one, jobs, chunksize=4), start=1):
            outcome = ("refused" if res.get("validate") == 2 else "ran") \
                if not res["problems"] else "FAILED"
            counts[outcome] += 1
            counts[f"from {res['source']}"] += 1
            if "analysis" in res["what"]:
                counts["touching [analysis]"] += 1
            counts["warned (failed model checks)"] += bool(res.get("warnings"))
            if res["problems"]:
                failures.append(res)
                print(f"FAILED m{res['i']:05d} ({res['source']}: {res['what']}):",
                      *res["problems"], sep="\n  ", flush=True)
            if k % 100 == 0:
                print(f"{k}/{args.n} in {time.perf_counter() - t0:.0f} s: {dict(counts)}",
                      flush=True)
    print(f"\n{args.n} mutants in {time.perf_counter() - t0:.0f} s")
    for key in sorted(counts):
        print(f"  {key:<40} {counts[key]:>6}")
    print(f"failures kept under {args.out}" if failures else "no failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
