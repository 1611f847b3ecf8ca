"""Monte Carlo on a dask LocalCluster against this process, by number of workers.

Run:  python benchmarks/bench_dask.py [--scenarios 20000] [--repeat 2]

The base case at 20 years with its [analysis.monte_carlo] (as bench_monte_carlo.py), in
chunks of 600: once in this process (the baseline), then on LocalClusters of 1, 2 and (if
the machine has them) more single-threaded worker processes, through
``client.get_executor()``: with dask's default worker environment, and without its
``MALLOC_TRIM_THRESHOLD_=65536``, which makes glibc hand freed memory back at once, so
every chunk-sized array is faulted in again. Every run must give the same samples.

On a real cluster: ``Client("tcp://scheduler:8786")`` and pass ``client.get_executor()``
as ``executor=``; start the workers without ``MALLOC_TRIM_THRESHOLD_`` (remove it from
the ``distributed.nanny.pre-spawn-environ`` config) and with one thread each.
"""

from __future__ import annotations

import argparse
import os
import time

import dask
import numpy as np
from distributed import Client, LocalCluster

from common import machine, monte_carlo_case
from finmodel.analysis.monte_carlo import monte_carlo
TRIM = "MALLOC_TRIM_THRESHOLD_"


def worker_environ(trim: bool) -> dict:
    env = dict(dask.config.get("distributed.nanny.pre-spawn-environ"))
    if not trim:
        env.pop(TRIM, None)
    return env


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenarios", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    os.environ.pop(TRIM, None)  # the parent's environment would override the config
    a, kw = monte_carlo_case()
    kw["chunk_size"] = 600
    n = args.scenarios
    print(machine(f"dask {dask.__version__}"))
    monte_carlo(a, 600, executor=None, **kw)  # warm-up
    best, ref = float("inf"), None
    for _ in range(args.repeat):
        t = time.perf_counter()
        ref = monte_carlo(a, n, executor=None, **kw)
        best = min(best, time.perf_counter() - t)
    base = best
    print(f"{f'{n:,} scenarios in this process':<52}{base:>8.2f} s   1.00x")
    workers = [w for w in (1, 2, 4) if w <= max(os.cpu_count() or 1, 2)]
    for trim in (True, False):
        for w in workers:
            with dask.config.set({"distributed.nanny.pre-spawn-environ": worker_environ(trim)}), \
                    LocalCluster(n_workers=w, threads_per_worker=1, processes=True,
                                 dashboard_address=None) as cluster, Client(cluster) as client:
                ex = client.get_executor()
                monte_carlo(a, 1200, executor=ex, **kw)  # warm the workers' model caches
                best = float("inf")
                for _ in range(args.repeat):
                    t = time.perf_counter()
                    mc = monte_carlo(a, n, executor=ex, **kw)
                    best = min(best, time.perf_counter() - t)
            same = np.array_equal(ref.samples.to_numpy(), mc.samples.to_numpy(), equal_nan=True)
            label = f"LocalCluster, {w} worker{'s' if w > 1 else ''}, " + \
                (f"dask's {TRIM}=65536" if trim else f"{TRIM} unset")
            print(f"{label:<52}{best:>8.2f} s {best / base:>6.2f}x   same samples: {same}")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
