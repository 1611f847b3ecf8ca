"""Shared fixtures: shipped cases, small hand-checkable cases, LibreOffice."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path

import pytest

from finmodel.excel.libreoffice import soffice
from finmodel.inputs.load import parse_assumptions

ROOT = Path(__file__).resolve().parents[1]
CASES = sorted((ROOT / "assumptions").glob("*.toml"))

# Tolerances named after what they stand for.
PARITY = 1e-9  # the bar for Python vs the recalculated workbook, relative
PENNY = 0.005  # USD


def case_dict(name: str = "base") -> dict:
    with open(ROOT / "assumptions" / f"{name}.toml", "rb") as fh:
        return tomllib.load(fh)


def small_case(**changes: dict) -> dict:
    """A small, round-numbered case for hand calculations (1 year, 10 MW)."""
    data = {
        "case": {"name": "small", "start_month": "2026-01", "horizon_years": 1,
                 "discount_rate": 0.10},
        "network": {"block_height": 840_000, "block_time_minutes": 10.0,
                    "fee_btc_per_block": 0.0, "hashrate_eh_s": 1000.0,
                    "btc_price_usd": 100_000.0},
        "site": {"interconnect_mw": 12.0, "mining_it_mw": 10.0},
        "power": {"pricing": "fixed", "contract_mw": 12.0, "ppa_price_usd_per_mwh": 50.0,
                  "market_price_usd_per_mwh": 30.0, "pue": 1.1},
        "mining": {"hashrate_eh_s": 0.5, "efficiency_j_per_th": 20.0, "uptime": 1.0},
    }
    data = copy.deepcopy(data)
    for section, fields in changes.items():
        data[section].update(fields)
    return data


def small(**changes: dict):
    return parse_assumptions(small_case(**changes))


@pytest.fixture(scope="session")
def libreoffice() -> str:
    """LibreOffice is part of the test set-up (scripts/test.sh installs it): missing, the
    tests that need it fail rather than skip."""
    exe = soffice()
    if exe is None:
        pytest.fail("LibreOffice (soffice) is not installed: run ./scripts/test.sh, which "
                    "installs libreoffice-calc-nogui")
    return exe
