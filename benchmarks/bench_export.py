"""Workbook export against openpyxl writing the same formulas, and `finmodel run -o`.

Run:  python benchmarks/bench_export.py [--repeat 5] [--before DIR] [--libreoffice]

For the base case at 15 and 30 years: the export now, the export with XlsxWriter's own
formula pass and cell-by-cell rendering (the code before issue 10, switched back in this
process), and openpyxl writing the same formula cells without values (the baseline of the
ratio). Runs are interleaved and the best of ``--repeat`` is kept. ``--before DIR`` (a
checkout of an older finmodel) also times ``finmodel run assumptions/base.toml -o`` in a
fresh process with that code beside this one. ``--libreoffice`` times LibreOffice
recalculating the 15- and 30-year workbooks (each code's, with ``--before``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import openpyxl

import finmodel
from common import ROOT, machine
from finmodel.excel import formulas, workbook


def case(years: int, folder: Path) -> Path:
    text = (ROOT / "assumptions" / "base.toml").read_text()
    path = folder / f"base_{years}y.toml"
    path.write_text(text.replace("horizon_years = 15", f"horizon_years = {years}"))
    return path


def formula_cells(path: Path) -> dict[str, list[tuple[int, int, str]]]:
    wb = openpyxl.load_workbook(path)
    return {ws.title: [(c.row, c.column, c.value) for row in ws.iter_rows() for c in row
                       if isinstance(c.value, str) and c.value.startswith("=")]
            for ws in wb.worksheets}


def openpyxl_write(cells: dict[str, list[tuple[int, int, str]]], path: Path) -> None:
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for title, items in cells.items():
        ws = wb.create_sheet(title)
        for r, c, f in items:
            ws.cell(row=r, column=c, value=f)
    wb.save(path)


def per_cell(self, line):
    """The renderer before issue 10: every cell rendered from the expression tree."""
    return [self.line_cell(t, line) for t in range(self.lay.n_periods)]


def per_cell_row(ws, row, cols, formulas, fmt, values):
    """Rows as before issue 10: XlsxWriter's write_formula for every cell."""
    for c, f, v in zip(cols, formulas, values, strict=True):
        ws.write_formula(row, c, f, fmt, v)


def export_before(result, path: Path) -> None:
    saved = workbook._fast_formulas, formulas.FormulaWriter.line_cells, \
        workbook.write_formula_row
    workbook._fast_formulas, formulas.FormulaWriter.line_cells, workbook.write_formula_row = \
        (lambda ws: ws), per_cell, per_cell_row
    try:
        finmodel.export_excel(result, path)
    finally:
        workbook._fast_formulas, formulas.FormulaWriter.line_cells, \
            workbook.write_formula_row = saved


EXPORT = """
import sys, finmodel
finmodel.export_excel(finmodel.run(finmodel.load_assumptions(sys.argv[1])), sys.argv[2])
"""


def export_with(src: Path, toml: Path, out: Path) -> Path:
    """Export ``toml`` with the finmodel in ``src``, in a fresh process."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    subprocess.run([sys.executable, "-c", EXPORT, str(toml), str(out)], env=env, cwd=src,
                   check=True, capture_output=True)
    return out


def libreoffice_table(folder: Path, srcs: dict[str, Path], repeat: int) -> None:
    """LibreOffice: open, recalculate and save the 15- and 30-year workbooks."""
    from finmodel.excel.libreoffice import recalculate

    books = {(k, y): export_with(src, case(y, folder), folder / f"lo_{k}_{y}.xlsx")
             for k, src in srcs.items() for y in (15, 30)}
    best = {key: float("inf") for key in books}
    for _ in range(repeat):
        for key, path in books.items():
            t = time.perf_counter()
            recalculate(path, folder / "lo_out")
            best[key] = min(best[key], time.perf_counter() - t)
    print("LibreOffice recalculation (open, recalculate, save; best of "
          f"{repeat}):")
    for k in srcs:
        print(f"  {k:>6}: 15 y {best[k, 15]:.2f} s, 30 y {best[k, 30]:.2f} s, "
              f"30 y / 15 y {best[k, 30] / best[k, 15]:.2f}x")


def cli_seconds(src: Path, toml: Path, out: Path) -> float:
    # python -m puts the working folder first on the path: run from the source folder.
    env = {**os.environ, "PYTHONPATH": str(src)}
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "finmodel.cli", "run", str(toml), "-o", str(out)],
                   env=env, cwd=src, check=True, capture_output=True)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--before", type=Path, help="source folder of an older finmodel")
    ap.add_argument("--libreoffice", action="store_true",
                    help="also time LibreOffice recalculating the 15- and 30-year workbooks")
    args = ap.parse_args()
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print(f"{'case':>6} {'cells':>7} {'openpyxl':>9} {'before':>8} {'now':>8} "
              f"{'now/openpyxl':>13} {'now/before':>11}")
        for years in (15, 30):
            result = finmodel.run(finmodel.load_assumptions(case(years, folder)))
            out = folder / f"now_{years}.xlsx"
            finmodel.export_excel(result, out)
            cells = formula_cells(out)
            n_cells = sum(len(v) for v in cells.values())
            best = {"openpyxl": float("inf"), "before": float("inf"), "now": float("inf")}
            for _ in range(args.repeat):  # interleaved, best of N
                for what, fn in (("openpyxl", lambda: openpyxl_write(cells, folder / "o.xlsx")),
                                 ("before", lambda: export_before(result, folder / "b.xlsx")),
                                 ("now", lambda: finmodel.export_excel(result, out))):
                    t = time.perf_counter()
                    fn()
                    best[what] = min(best[what], time.perf_counter() - t)
            print(f"{years:>4} y {n_cells:>7} {best['openpyxl']:>9.3f} {best['before']:>8.3f} "
                  f"{best['now']:>8.3f} {best['now'] / best['openpyxl']:>12.2f}x "
                  f"{best['now'] / best['before']:>10.2f}x")

        toml = ROOT / "assumptions" / "base.toml"
        srcs = {"now": ROOT} | ({"before": args.before} if args.before else {})
        wall = {k: float("inf") for k in srcs}
        for _ in range(args.repeat):
            for k, src in srcs.items():
                wall[k] = min(wall[k], cli_seconds(src, toml, folder / "cli.xlsx"))
        print("finmodel run assumptions/base.toml -o out.xlsx (fresh process, wall, best of "
              f"{args.repeat}): " + ", ".join(f"{k} {v:.2f} s" for k, v in wall.items()))
        if args.libreoffice:
            libreoffice_table(folder, srcs, max(1, args.repeat // 2))
        print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
