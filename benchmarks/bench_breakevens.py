"""`finmodel.run` with break-evens: time against the number of strategies.

Run:  python benchmarks/bench_breakevens.py [--repeat 3] [--before DIR]

The base case with its 3 strategies, and with 10 and 30: mining plus hybrids converting
5 to 70 MW of IT from staggered months. Each run solves every break-even (the BTC price
for mining's NPV = 0; for each converting strategy the lease rate, BTC price and capex per
MW at which it matches mining). Interleaved, best of ``--repeat``; the ratio to 3
strategies should stay near the ratio of strategies (linear). ``--before DIR`` (a checkout
of an older finmodel) times the same cases with that code, in a fresh process.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, machine


def case(strategies: int, folder: Path) -> Path:
    text = (ROOT / "assumptions" / "base.toml").read_text()
    if strategies > 3:
        extra = []
        for k in range(strategies - 3):
            mw = 5.0 + 65.0 * k / max(strategies - 4, 1)
            month = f"2026-{(k % 12) + 1:02d}"
            extra.append(f'\n[strategies.hybrid_{k}]\nkind = "hybrid"\nai_it_mw = {mw:.1f}\n'
                         f'conversion_start_month = "{month}"\n')
        text = text.replace("[hosting]\n", "".join(extra) + "\n[hosting]\n", 1)
    path = folder / f"base_{strategies}.toml"
    path.write_text(text)
    return path


TIMER = """
import sys, time
import finmodel
a = finmodel.load_assumptions(sys.argv[1])
finmodel.run(a, breakevens=False)  # warm: imports, caches
best = float("inf")
for _ in range(int(sys.argv[2])):
    t = time.perf_counter()
    finmodel.run(a)
    best = min(best, time.perf_counter() - t)
print(best)
"""


def seconds(src: Path, toml: Path, repeat: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(src)}
    out = subprocess.run([sys.executable, "-c", TIMER, str(toml), str(repeat)], env=env,
                         cwd=src, check=True, capture_output=True, text=True)
    return float(out.stdout.split()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--before", type=Path, help="source folder of an older finmodel")
    args = ap.parse_args()
    print(machine())
    srcs = {"now": ROOT} | ({"before": args.before} if args.before else {})
    counts = (3, 10, 30)
    with tempfile.TemporaryDirectory() as tmp:
        tomls = {k: case(k, Path(tmp)) for k in counts}
        best = {(s, k): float("inf") for s in srcs for k in counts}
        for _ in range(args.repeat):  # interleaved
            for k in counts:
                for s, src in srcs.items():
                    best[s, k] = min(best[s, k], seconds(src, tomls[k], 1))
    print(f"{'strategies':>10} " + " ".join(f"{s + ' s':>10} {s + ' / 3':>10}" for s in srcs))
    for k in counts:
        print(f"{k:>10} " + " ".join(f"{best[s, k]:>10.2f} {best[s, k] / best[s, 3]:>9.1f}x"
                                     for s in srcs))
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
