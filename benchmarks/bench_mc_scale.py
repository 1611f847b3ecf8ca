"""Monte Carlo of any size in bounded memory: time and peak memory against scenarios.

Run:  python benchmarks/bench_mc_scale.py [--sizes 10000 100000 1000000]

Each size runs in a fresh process (so the peak resident memory is that run's alone):
one ``monte_carlo`` call of the base case at 20 years with its [analysis.monte_carlo],
``executor="auto"`` (this process up to 50,000 scenarios, a local process pool above).
Printed: wall time, time per 1,000 scenarios (linear time keeps it flat), and the peak
resident memory of the process, of its largest worker, and their bound (the process plus
every worker at that peak).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from common import machine

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

RUN = """
import resource, sys, time
from common import monte_carlo_case
from finmodel.analysis.monte_carlo import monte_carlo
a, kw = monte_carlo_case()
n = int(sys.argv[1])
t = time.perf_counter()
mc = monte_carlo(a, n, **kw)
wall = time.perf_counter() - t
own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(wall, own, kids, mc.samples.shape[0], mc.samples.notna().all(axis=None))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    args = ap.parse_args()
    print(machine())
    print(f"{'scenarios':>10} {'seconds':>9} {'s per 1k':>9} {'peak MiB':>9} "
          f"{'worker MiB':>11} {'all MiB':>8}")
    for n in args.sizes:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(HERE)])}
        out = subprocess.run([sys.executable, "-c", RUN, str(n)], cwd=ROOT, env=env,
                             check=True, capture_output=True, text=True)
        wall, own, kids, rows, _ = out.stdout.split()
        assert int(rows) == n
        # Upper bound of the whole: this process plus every pool worker at its peak.
        total = float(own) + (os.cpu_count() or 1) * float(kids)
        print(f"{n:>10,} {float(wall):>9.1f} {float(wall) / n * 1000:>9.3f} "
              f"{float(own):>9.0f} {float(kids):>11.0f} {total:>8.0f}")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
