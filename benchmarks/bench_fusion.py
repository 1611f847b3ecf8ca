"""Would fusing each line's arithmetic into one numexpr pass speed up the evaluator?

Run:  python benchmarks/bench_fusion.py      (needs numexpr: pip install numexpr)

The Monte Carlo evaluates lines over (600, 240) arrays (1.15 MB each). This times, on such
arrays, numpy one operation at a time (into a preallocated array, as the evaluator writes
into fresh operands) against numexpr compiling the whole expression into one pass,
single-threaded (as it would run inside a worker), best of 7:

- the floor of bench_monte_carlo.py, ``a*b+c``;
- a line of eight operations with an IF whose condition switches once per scenario, all
  operands full-size;
- the same line with a per-scenario (600, 1) and a per-month (1, 240) operand, as most of
  the model's lines mix them.
"""

from __future__ import annotations

import time

import numpy as np

from common import machine


def best(f, k: int = 50) -> float:
    """Best time of one call in microseconds (7 rounds of ``k`` calls)."""
    out = float("inf")
    for _ in range(7):
        t = time.perf_counter()
        for _ in range(k):
            f()
        out = min(out, (time.perf_counter() - t) / k)
    return out * 1e6


def main() -> None:
    try:
        import numexpr as ne
    except ImportError:
        raise SystemExit("bench_fusion.py needs numexpr (not a finmodel dependency): "
                         "pip install numexpr") from None

    ne.set_num_threads(1)
    rng = np.random.default_rng(0)
    shape = (600, 240)
    c, d = (rng.random(shape) for _ in range(2))
    # a > b switches once per scenario, as the model's flags do (a date, a threshold)
    a = rng.random((600, 1)) + np.linspace(0.0, 1.0, 240)
    b = np.ones(shape)
    col, row = rng.random((600, 1)), rng.random((1, 240))
    out, tmp = np.empty(shape), np.empty(shape)
    line = "where(a > b, a * c + d, b / (1.0 + c)) * (1.0 - d) + a * b - c"

    def numpy_line(c, d):
        m = a > b
        np.multiply(a, c, out=out)
        np.add(out, d, out=out)
        np.add(c, 1.0, out=tmp)
        np.divide(b, tmp, out=tmp)
        np.copyto(out, tmp, where=~m)
        np.subtract(1.0, d, out=tmp)
        np.multiply(out, tmp, out=out)
        np.multiply(a, b, out=tmp)
        np.add(out, tmp, out=out)
        np.subtract(out, c, out=out)

    cases = [
        ("a*b+c, full-size operands",
         lambda: np.add(np.multiply(a, b, out=out), c, out=out),
         lambda: ne.evaluate("a * b + c", local_dict=dict(a=a, b=b, c=c), out=out)),
        ("8 operations and an IF, full-size operands",
         lambda: numpy_line(c, d),
         lambda: ne.evaluate(line, local_dict=dict(a=a, b=b, c=c, d=d), out=out)),
        ("the same with (600, 1) and (1, 240) operands",
         lambda: numpy_line(col, row),
         lambda: ne.evaluate(line, local_dict=dict(a=a, b=b, c=col, d=row), out=out)),
    ]
    print(machine(f"numpy {np.__version__}", f"numexpr {ne.__version__} (1 thread)"))
    print(f"{'(600, 240) arrays, microseconds a call':<48}{'numpy':>8}{'numexpr':>9}{'ratio':>8}")
    for label, f_np, f_ne in cases:
        t_np, t_ne = best(f_np), best(f_ne)
        print(f"{label:<48}{t_np:>8.0f}{t_ne:>9.0f}{t_ne / t_np:>7.2f}x")


if __name__ == "__main__":
    main()
