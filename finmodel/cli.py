"""The ``finmodel`` command: run, sensitivity, portfolio, validate, schema.

Bad input exits with status 2 and one clear message on stderr, never a traceback, and
leaves no output file behind. Every subcommand is one function taking the parsed
arguments; :func:`main` wraps them all in the same error handling. Commands that write
files check their targets first with :class:`finmodel.outputs.Outputs`, compute
everything, then commit all files together.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import sys
import time
from pathlib import Path

from finmodel.errors import ExportError, FinmodelError, escape_controls
from finmodel.outputs import Outputs, Terminated, terminate_cleanly

EXIT_BAD_INPUT = 2
#: Longest line of an error message printed (a safety net; values are shortened at source).
MAX_LINE = 1000


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if argv is None and args.command == "run":
        # Run as the program, one case: no cycle collector at all. Its collections during
        # `run -o` freed only the export's workbook (XlsxWriter's sheets hold cycles), in
        # one 0.08-0.10 s pass over its ~120,000 cells once the export had ended, plus
        # 0.02 s while loading; the memory goes back with the process a moment later.
        # `sensitivity` and `portfolio` can run for long and keep their collector.
        gc.disable()
    try:
        with terminate_cleanly():
            return args.func(args)
    except FinmodelError as exc:
        print_error(str(exc), every_line=args.command == "validate")
        return EXIT_BAD_INPUT
    except MemoryError:
        print_error("not enough memory for this case or analysis; reduce its size")
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("finmodel: interrupted", file=sys.stderr)
        return 130
    except Terminated as exc:
        print(f"finmodel: terminated ({exc}); nothing was written", file=sys.stderr)
        return 143
    finally:
        if argv is None:
            # Run as the program (console script, python -m): the process ends next. The
            # interpreter's collections at exit scanned every object left (numpy, pandas,
            # the model: ~100,000) and freed nothing worth it: 0.2-0.4 s of `finmodel run`.
            # Frozen, they are skipped; the memory goes back with the process. Tests call
            # main with arguments and keep their collector.
            gc.freeze()


def print_error(message: str, every_line: bool = False) -> None:
    """``finmodel: error: <message>`` on stderr: control characters escaped, each line at
    most :data:`MAX_LINE` characters; a list of problems shown whole only when
    ``every_line`` (``validate``), else its first problem and how many more there are."""
    lines = [escape_controls(x) for x in message.split("\n")]
    lines = [x if len(x) <= MAX_LINE else x[:MAX_LINE] + f"…({len(x)} chars)" for x in lines]
    if len(lines) > 1 and not every_line:
        rest = len(lines) - 2
        lines = [lines[1].strip() + (f" (and {rest} more; `finmodel validate` lists them)"
                                     if rest else "")]
    print("finmodel: error: " + "\n".join(lines), file=sys.stderr)


def say(text: str) -> None:
    """Print to stdout with control characters (from case names, paths) escaped."""
    print(escape_controls(text))


def _count(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected at least {minimum}, got {value}")
        return value
    return parse


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not 0 < value < 1e6:
        raise argparse.ArgumentTypeError(f"expected seconds between 0 and 1e6, got {text}")
    return value


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="finmodel", description="Keep mining, convert to AI "
                                "hosting, or split: a live cash-flow model of a powered site.")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run a case: print the summary, write a workbook and JSON")
    r.add_argument("case", help="case file (TOML), for example assumptions/base.toml, or "
                   "a workbook finmodel wrote (.xlsx), edited on its Inputs sheet")
    r.add_argument("-o", "--output", help="workbook to write (.xlsx)")
    r.add_argument("--json", dest="json_path", help="summary JSON to write")
    r.set_defaults(func=_run)
    z = sub.add_parser("sensitivity", help="scenario sets, tornado, grid and Monte Carlo on a"
                       " case (one vectorised evaluation each)")
    z.add_argument("case")
    z.add_argument("--tornado", action="store_true", help="tornado of the [analysis.tornado]"
                   " inputs (default: key inputs +/- 20 %%)")
    z.add_argument("--grid", metavar="FIELD,FIELD", help="two field paths to combine (values"
                   " from [analysis.grid], default 60-140 %% of base)")
    z.add_argument("--monte-carlo", dest="monte_carlo", type=_count(1), nargs="?", const=0,
                   metavar="N", help="Monte Carlo: N scenarios (default: [analysis."
                   "monte_carlo] scenarios)")
    z.add_argument("--seed", type=_count(0), help="override the Monte Carlo seed")
    z.add_argument("-o", "--output", help="workbook to write (.xlsx): the live model plus "
                   "Sensitivity and Monte Carlo sheets")
    z.add_argument("--json", dest="json_path", help="analysis summary JSON to write")
    z.add_argument("--png", metavar="DIR", help="folder for PNG charts (needs the 'plot' "
                   "extra: matplotlib)")
    z.set_defaults(func=_sensitivity)
    rp = sub.add_parser("report", help="a 3-6 page PDF for an investment committee (needs "
                        "the 'plot' extra: matplotlib)")
    rp.add_argument("case")
    rp.add_argument("-o", "--output", required=True, help="PDF to write (.pdf)")
    rp.set_defaults(func=_report)
    q = sub.add_parser("portfolio", help="choose which sites to convert, to what and when, "
                       "under the company's capex and funding limits")
    q.add_argument("portfolio", help="portfolio file (TOML), for example "
                   "assumptions/bitdeer_portfolio.toml")
    q.add_argument("-o", "--output", help="workbook to write (.xlsx): Portfolio and Company "
                   "sheets")
    q.add_argument("--json", dest="json_path", help="plan JSON to write")
    q.add_argument("--monte-carlo", dest="monte_carlo", type=_count(1), nargs="?", const=0,
                   metavar="N", help="probability of a funding shortfall over N scenarios of "
                   "shared BTC price and hashrate paths (default N: [monte_carlo] scenarios "
                   "of the portfolio file, which also sets the seed and volatilities)")
    q.add_argument("--site-workbooks", dest="site_workbooks", metavar="DIR",
                   help="also write each site's live workbook (its chosen option) into DIR, "
                   "linked from the Sites sheet")
    q.add_argument("--time-limit", dest="time_limit", type=_seconds, default=60.0, metavar="S",
                   help="seconds the MILP may take before it reports its best plan and the "
                   "gap it has proven (default 60)")
    q.add_argument("--no-exact-gains", dest="exact_gains", action="store_false",
                   help="skip the exact re-solve of the plan with each limit $100M looser "
                   "(one integer program per constraint: most of the time of a large "
                   "portfolio); the LP relaxation's shadow prices are still reported")
    q.set_defaults(func=_portfolio)
    m = sub.add_parser("import", help="read the Inputs sheet of an edited finmodel "
                       "workbook back into a case file")
    m.add_argument("book", help="a workbook written by finmodel (.xlsx), edited")
    m.add_argument("-o", "--output", required=True, help="case file to write (.toml)")
    m.set_defaults(func=_import)
    v = sub.add_parser("validate", help="check a case or portfolio file and report every "
                       "problem")
    v.add_argument("case")
    v.set_defaults(func=_validate)
    s = sub.add_parser("schema", help="print the JSON Schema of a case file")
    s.set_defaults(func=_schema)
    return p


def json_writer(data: dict):
    """A writer for :meth:`Outputs.commit`: ``data`` as indented JSON (finite numbers only,
    checked now, before anything is written)."""
    text = json.dumps(data, indent=2, allow_nan=False) + "\n"
    return lambda path: Path(path).write_text(text, encoding="utf-8")


def _run(args: argparse.Namespace) -> int:
    from finmodel import aside
    from finmodel.api import complete_run, start_run
    from finmodel.excel.workbook import write_workbook
    from finmodel.inputs import load_assumptions

    t0 = time.perf_counter()
    outputs = Outputs(inputs=[args.case])
    out = outputs.target(args.output, ".xlsx", "-o")
    js = outputs.target(args.json_path, ".json", "--json")
    if Path(args.case).suffix.lower() == ".xlsx":
        a = _read_book(Path(args.case))
    else:
        a = load_assumptions(args.case)
    result, solve = start_run(a)
    # With a workbook to write and a CPU free, the break-evens are solved in a second
    # process while this one writes the sheets that do not show them (0.25 s of the base
    # case); the workbook waits for them before its Summary. The numbers are the same
    # (the child runs the same code on a copy); a failed child is solved again here.
    pending = aside.Aside(solve) if out is not None and aside.possible() else None
    try:
        def solved() -> None:
            nonlocal pending, t_run
            if pending is not None:
                got, pending = pending.result(), None
                complete_run(result, got if got is not None else solve())
            elif t_run is None:
                complete_run(result, solve())
            if t_run is None:  # when the run's every number is known
                t_run = time.perf_counter() - t0

        t_run = None
        if pending is None:
            solved()
        writers = []
        if out is not None:
            writers.append((out, lambda tmp: write_workbook(result, tmp, solved=solved)))
        if js is not None:  # after the workbook, which waits for the break-evens
            writers.append((js, lambda tmp: json_writer(result.summary_json())(tmp)))
        outputs.commit(writers)
    finally:
        if pending is not None:
            pending.stop()
    written = [p for p in (js, out) if p is not None]
    text = format_summary(result)
    say(text)
    warn_failed_checks(result)
    say(f"\nran in {t_run:.2f} s; total {time.perf_counter() - t0:.2f} s"
        + (f"; wrote {', '.join(map(str, written))}" if written else ""))
    return 0


def _sensitivity(args: argparse.Namespace) -> int:
    from finmodel.analysis.run import analysis_json, run_analysis
    from finmodel.api import run
    from finmodel.errors import InputError
    from finmodel.excel.workbook import write_workbook
    from finmodel.inputs import load_assumptions

    t0 = time.perf_counter()
    outputs = Outputs(inputs=[args.case])
    out = outputs.target(args.output, ".xlsx", "-o")
    js = outputs.target(args.json_path, ".json", "--json")
    png = outputs.folder(args.png, "--png")
    if png is not None:
        from finmodel.analysis.plots import check_plotting

        check_plotting()
    a = load_assumptions(args.case)
    grid_inputs = [x.strip() for x in args.grid.split(",")] if args.grid else None
    if args.monte_carlo is None and args.seed is not None:
        raise InputError("--seed: only used with --monte-carlo")
    an = run_analysis(a, tornado_inputs=args.tornado, grid_inputs=grid_inputs,
                      monte_carlo_n=args.monte_carlo, seed=args.seed,
                      progress=_progress_bar(t0))
    writers = []
    if js is not None:
        writers.append((js, json_writer(analysis_json(an))))
    if out is not None:
        result = run(a)
        writers.append((out, lambda tmp: write_workbook(result, tmp, analysis=an)))
    if png is not None:
        from finmodel.analysis.plots import chart_names, save_png

        for name in chart_names(an):
            target = outputs.target(png / name, ".png", "--png")
            writers.append((target, lambda tmp, name=name: save_png(an, name, tmp)))
    text = format_analysis(an)
    outputs.commit(writers)
    say(text)
    say(f"\nran in {time.perf_counter() - t0:.2f} s")
    return 0


def _report(args: argparse.Namespace) -> int:
    from finmodel.api import run
    from finmodel.inputs import load_assumptions
    from finmodel.report import analysis_for_report, render_report

    t0 = time.perf_counter()
    outputs = Outputs(inputs=[args.case])
    out = outputs.target(args.output, ".pdf", "-o")
    a = load_assumptions(args.case)
    result, an = run(a), analysis_for_report(a)
    written = outputs.commit([(out, lambda tmp: render_report(result, tmp, an))])
    say(f"wrote {', '.join(map(str, written))} in {time.perf_counter() - t0:.2f} s")
    return 0


def _portfolio(args: argparse.Namespace) -> int:
    from finmodel.portfolio import load_portfolio, plan_portfolio
    from finmodel.portfolio.report import infeasible_message

    t0 = time.perf_counter()
    outputs = Outputs(inputs=[args.portfolio])
    out = outputs.target(args.output, ".xlsx", "-o")
    js = outputs.target(args.json_path, ".json", "--json")
    sites = outputs.folder(args.site_workbooks, "--site-workbooks", create=True)
    lp = load_portfolio(args.portfolio)
    n_mc = lp.spec.monte_carlo.scenarios if args.monte_carlo == 0 else args.monte_carlo
    plan = plan_portfolio(lp, monte_carlo=n_mc, time_limit=args.time_limit,
                          exact_gains=args.exact_gains)
    if not plan.solution.feasible:
        raise FinmodelError(infeasible_message(plan))
    made = sites is not None and not sites.exists()
    if made:  # made only once the plan is known; removed again if any output fails
        try:
            sites.mkdir()
        except OSError as exc:
            raise ExportError(f"--site-workbooks {sites}: cannot create the folder "
                              f"({exc.strerror or exc})") from None
    try:
        return _write_plan(args, plan, outputs, out, js, sites, t0)
    except BaseException:
        if made:
            with contextlib.suppress(OSError):
                sites.rmdir()  # empty: the outputs removed their temporaries
        raise


def _write_plan(args, plan, outputs, out, js, sites, t0) -> int:
    """Write the plan's outputs (every one or none) and print its summary."""
    from finmodel.api import run
    from finmodel.portfolio.report import format_plan

    writers = []
    links: dict[str, str] = {}
    if sites is not None:
        from finmodel.excel.workbook import write_workbook
        from finmodel.portfolio.plan import site_case

        for i, site in enumerate(plan.chosen.site):
            target = outputs.target(sites / f"{site}.xlsx", ".xlsx", "--site-workbooks")
            result = run(site_case(plan, i))
            writers.append((target, lambda tmp, r=result: write_workbook(r, tmp)))
            links[site] = os.path.relpath(target, out.parent if out is not None else ".")
    if js is not None:
        writers.append((js, json_writer(plan.to_json())))
    if out is not None:
        from finmodel.excel.portfolio_sheets import export_plan

        writers.append((out, lambda tmp: export_plan(plan, tmp, site_links=links)))
    text = format_plan(plan)
    written = outputs.commit(writers)  # every output or none
    say(text)
    say(f"\nran in {time.perf_counter() - t0:.2f} s"
        + (f"; wrote {', '.join(map(str, written))}" if written else ""))
    return 0


def _progress_bar(t0: float):
    """A progress bar on stderr, shown once a run has taken more than two seconds."""
    def show(done: int, total: int) -> None:
        if time.perf_counter() - t0 < 2.0 and done < total:
            return
        width = 30
        filled = int(width * done / total)
        sys.stderr.write(f"\rMonte Carlo [{'#' * filled}{'.' * (width - filled)}] "
                         f"{done}/{total} chunks")
        if done == total:
            sys.stderr.write("\n")
        sys.stderr.flush()
    return show


def format_analysis(an) -> str:
    lines = [f"Sensitivity of {an.metric} for strategy {an.strategy}"]
    if an.scenarios is not None:
        lines += ["", "Scenario sets:", an.scenarios.to_string(float_format=_money)]
    if an.tornado is not None:
        t = an.tornado
        lines += ["", f"Tornado (base {_money(t.attrs['base'])}):"]
        for _, r in t.iterrows():
            lines.append(f"  {r.input:<42} {_money(r.metric_low):>14} .. "
                         f"{_money(r.metric_high):<14} swing {_money(r.swing)}")
    if an.grid is not None:
        lines += ["", f"Grid ({an.grid.index.name} down, {an.grid.columns.name} across):",
                  an.grid.to_string(float_format=_money)]
    if an.monte_carlo is not None:
        s = an.monte_carlo.summary(an.metric)
        kernel = an.monte_carlo.extra.get("kernel", "numpy")
        lines += ["", f"Monte Carlo, {len(an.monte_carlo.samples)} scenarios, seed "
                  f"{an.monte_carlo.seed} ({kernel} kernel):",
                  s.to_string(float_format=lambda v: f"{v:,.3g}")]
    return "\n".join(lines)


def _money(v: float) -> str:
    return f"{v / 1e6:,.1f}M" if math.isfinite(v) else "n/a"


def _read_book(book: Path):
    """The case of an edited workbook; prints what the analyst changed."""
    from finmodel.inputs.workbook_import import read_workbook

    a, changes = read_workbook(book)
    say(f"{book}: {len(changes)} input(s) changed since export" + (":" if changes else ""))
    for c in changes:
        say(f"  {c.path}: {c.old!r} -> {c.new!r}")
    return a


def _import(args: argparse.Namespace) -> int:
    from finmodel.inputs.workbook_import import case_toml

    book = Path(args.book)
    outputs = Outputs(inputs=[book])
    target = outputs.target(args.output, ".toml", "-o")
    a = _read_book(book)
    text = case_toml(a, f"Imported by finmodel from {book.name} (its Inputs sheet); "
                        "validated against the schema.")
    outputs.commit([(target, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))])
    say(f"wrote {target}")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from finmodel.inputs import load_assumptions

    if _is_portfolio(args.case):
        from finmodel.portfolio import load_portfolio

        lp = load_portfolio(args.case)
        say(f"{args.case}: valid portfolio ({lp.spec.company.name}; {len(lp.cases)} sites, "
            f"every site's case valid; {lp.months // 12} years from {lp.start_month})")
        return 0
    a = load_assumptions(args.case)
    say(f"{args.case}: valid ({a.case.name}; {a.case.horizon_years} years from "
        f"{a.case.start_month})")
    return 0


def _is_portfolio(path: str) -> bool:
    """A portfolio file has ``[company]`` and ``[sites]`` tables, which no case has; a file
    that cannot be read as TOML is left to the case loader to report."""
    import tomllib

    from finmodel.inputs.load import MAX_CASE_BYTES

    try:
        with open(path, "rb") as fh:  # at most what the loader reads: /dev/zero never ends
            raw = fh.read(MAX_CASE_BYTES + 1)
        if len(raw) > MAX_CASE_BYTES:
            return False
        data = tomllib.loads(raw.decode("utf-8"))
    except (OSError, ValueError, RecursionError, MemoryError):
        # ValueError: bad TOML, bad UTF-8, an integer past Python's digit limit;
        # RecursionError: tables nested too deep. The case loader names each.
        return False
    return isinstance(data.get("company"), dict) and isinstance(data.get("sites"), dict)


def _schema(args: argparse.Namespace) -> int:
    from finmodel.inputs.schema import Assumptions

    print(json.dumps(Assumptions.model_json_schema(), indent=2))
    return 0


def warn_failed_checks(result) -> None:
    """One warning on stderr per failed check (the run still succeeds: the numbers are
    written, and the workbook's Checks sheet shows the same flags)."""
    for cid, r in result.check_rows().items():
        if not r["ok"]:
            print(f"finmodel: warning: check failed: {cid}: {r['label']}: value "
                  f"{r['value']:g} exceeds the tolerance {r['tolerance']:g}", file=sys.stderr)


def format_summary(result) -> str:
    """A readable table of every strategy's headline metrics."""
    from finmodel.valuation import metric_rank

    values = result.summary_values()  # strategy -> metric -> value (no pandas: see run)
    strategies = list(values)
    units = {s.metric: s.unit for s in result.model.metrics()}
    labels = {s.metric: s.label for s in result.model.metrics()}
    lines = [f"{result.assumptions.case.name}",
             f"{result.assumptions.case.horizon_years} years from "
             f"{result.assumptions.case.start_month}, discount rate "
             f"{result.assumptions.case.discount_rate:.1%}", ""]
    width = max(len(v) for v in labels.values()) + 2
    from finmodel.excel.labels import strategy_labels

    names = strategy_labels(result)
    lines.append("Strategies: " + "; ".join(f"{s} = {names[s]}" for s in strategies))
    lines.append("")
    lines.append(" " * width + "".join(f"{s:>20}" for s in strategies))
    keys = sorted({k for d in values.values() for k in d}, key=metric_rank)
    for key in keys:
        cells = "".join(f"{_fmt(values[s][key], units[key]) if key in values[s] else '':>20}"
                        for s in strategies)
        lines.append(f"{labels[key]:<{width}}{cells}")
    timing = result.summary_json()["timing"]
    if timing:
        lines.append("\nWhen to convert (value of converting vs mining, by start month):")
        for s, t in timing.items():
            after = (f"; after the next halving ({t['after_next_halving_start_month']}) "
                     f"{_fmt(t['after_next_halving_npv_vs_mining_usd'], 'USD')}"
                     if "after_next_halving_start_month" in t else "")
            lines.append(f"  {s}: now {_fmt(t['start_now_npv_vs_mining_usd'], 'USD')}{after}; "
                         f"best {t['best_start_month']} "
                         f"{_fmt(t['npv_vs_mining_at_best_usd'], 'USD')}")
    for name, why in result.reasons.items():
        if why[0]:
            lines.append(f"note: {name}: {why[0]}")
    return "\n".join(lines)


def _fmt(v: float, unit: str) -> str:
    if not math.isfinite(v):
        return "n/a"
    if unit == "rate":
        return f"{v:.2%}"
    if unit == "USD":
        # Money reads in millions, a zero too ("0.0 M USD", not "0.00"); under a million,
        # two decimals keep the figure (a per-MW revenue of 440,013 is "0.44 M USD").
        if abs(v) < 0.5:  # rounding noise of a zero step, never "-0.0"
            return "0.0 M USD"
        if abs(v) >= 1e6:
            return f"{v / 1e6:,.1f} M USD"
        return f"{v / 1e6:,.2f} M USD"
    if unit == "years":
        return f"{v:.2f} y"
    if unit in ("x", "ratio"):
        return f"{v:,.2f}x"
    number = f"{v:,.2f}" if abs(v) < 1e4 else f"{v:,.0f}"
    # Every other figure carries its unit (USD/BTC, USD/MW, BTC, ...): a reader never has to
    # guess whether 132,964 is dollars per coin or per MW.
    return f"{number} {unit}" if unit else number


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
