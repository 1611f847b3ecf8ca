"""What the benchmarks share: the Monte Carlo case and the line naming the machine."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import finmodel
from finmodel.analysis.monte_carlo import Paths

ROOT = Path(__file__).resolve().parents[1]


def monte_carlo_case(years: int = 20) -> tuple[finmodel.Assumptions, dict]:
    """The base case at ``years`` and the keyword arguments of its [analysis.monte_carlo]."""
    a = finmodel.with_values(finmodel.load_assumptions(ROOT / "assumptions" / "base.toml"),
                             {"case.horizon_years": years})
    spec = a.analysis.monte_carlo
    return a, dict(distributions=spec.distributions,
                   correlations={(c.a, c.b): c.rho for c in spec.correlations},
                   paths=Paths(spec.btc_price_volatility, spec.hashrate_volatility,
                               spec.path_correlation), seed=spec.seed)


def machine(*extra: str) -> str:
    """One line: architecture, cores, Python, anything else, and the load average."""
    return ", ".join([f"machine: {platform.machine()}", f"{os.cpu_count()} cores",
                      f"Python {platform.python_version()}", *extra,
                      f"load average {os.getloadavg()[0]:.2f}"])
