"""`finmodel run assumptions/base.toml -o out.xlsx`: wall time and where it goes.

Run:  python benchmarks/bench_cli.py [--repeat 3] [--before DIR]

Each run is a fresh process (as a user types the command), interleaved with ``--before
DIR`` (the source folder of an older finmodel, e.g. ``git archive COMMIT | tar -x -C
DIR``) when given, best of ``--repeat`` (and the median). CPU includes the child process
the export forks when a CPU is free (finmodel/excel/package.py). Then, in one fresh process per tree, the steps
the command takes: import of ``finmodel.cli``, loading and checking the case, the model
run (break-evens included) and the export.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import machine  # noqa: E402

STEPS = """
import time; t = time.perf_counter()
import finmodel.cli; t1 = time.perf_counter()
import finmodel
a = finmodel.load_assumptions('assumptions/base.toml'); t2 = time.perf_counter()
r = finmodel.run(a); t3 = time.perf_counter()
finmodel.export_excel(r, {out!r}); t4 = time.perf_counter()
print(t1 - t, t2 - t1, t3 - t2, t4 - t3, t4 - t)
"""


def wall(tree: Path, out: Path) -> tuple[float, float]:
    """(wall, user + system CPU) seconds of one `finmodel run ... -o` in a fresh process."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    before = os.times()
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "finmodel.cli", "run", "assumptions/base.toml",
                    "-o", str(out)], cwd=tree, env=env, check=True, capture_output=True)
    elapsed = time.perf_counter() - t
    after = os.times()
    cpu = (after.children_user - before.children_user
           + after.children_system - before.children_system)
    return elapsed, cpu


def steps(tree: Path, out: Path) -> list[float]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    got = subprocess.run([sys.executable, "-c", STEPS.format(out=str(out))], cwd=tree,
                         env=env, check=True, capture_output=True, text=True).stdout
    return [float(x) for x in got.split()]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--before", type=Path, help="source folder of an older finmodel")
    args = ap.parse_args()
    trees = {"now": ROOT}
    if args.before:
        trees["before"] = args.before.resolve()
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.xlsx"
        runs: dict[str, list[tuple[float, float]]] = {k: [] for k in trees}
        for _ in range(args.repeat):  # interleaved, best of N
            for k, tree in trees.items():
                runs[k].append(wall(tree, out))
        print("finmodel run assumptions/base.toml -o out.xlsx (fresh process, best of "
              f"{args.repeat}; median wall after it):")
        for k, got in runs.items():
            w, cpu = min(got)
            print(f"  {k:<7} wall {w:6.2f} s   CPU {cpu:6.2f} s   "
                  f"(median wall {statistics.median(x for x, _ in got):.2f} s)")
        print(f"{'steps':<9}{'import':>9}{'load':>9}{'run':>9}{'export':>9}{'total':>9}")
        for k, tree in trees.items():
            print(f"  {k:<7}" + "".join(f"{x:>9.2f}" for x in steps(tree, out)))
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
