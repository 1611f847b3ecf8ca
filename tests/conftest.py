"""Shared fixtures: shipped cases, small hand-checkable cases, LibreOffice."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path

import pytest

from finmodel.excel.libreoffice import soffice
from finmodel.inputs.load import parse_assumptions

ROOT = Path(__file__).resolve().parents[1]
# Site cases (a portfolio file, *_portfolio.toml, lists cases rather than being one).
CASES = sorted(p for p in (ROOT / "assumptions").glob("*.toml")
               if not p.stem.endswith("_portfolio"))

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


def small_hosting_case(**changes: dict) -> dict:
    """The small case with a 10 MW AI conversion starting in March 2026 (see
    tests/test_hosting.py for the hand calculations)."""
    data = small_case(case={"horizon_years": 3}, mining={"fleet_owned": True})
    data["strategies"] = {
        "mining": {"kind": "mining"},
        "ai_hosting": {"kind": "ai_hosting", "ai_it_mw": 10.0,
                       "conversion_start_month": "2026-03"},
    }
    data["hosting"] = {
        "pue": 1.2, "phase_it_shares": [0.5, 0.5], "phase_ready_months": [2, 4],
        "lease_rate_usd_per_kw_month": 100.0, "lease_escalator_rate": 0.10,
        "term_years": 1.0, "renewal_probability": 0.5, "renewal_rate_reset_share": 1.0,
        "renewal_term_years": 1.0, "power_pass_through": True, "it_load_factor": 1.0,
        "opex_usd_per_mw_year": 120_000.0, "prepayment_share": 0.2,
        "prepayment_credit_months": 6, "security_deposit_months": 2.0,
    }
    data["conversion"] = {
        "electrical_usd_per_mw": 1_000_000.0, "cooling_usd_per_mw": 0.0,
        "building_usd_per_mw": 0.0, "fit_out_usd_per_mw": 0.0, "contingency_share": 0.1,
        "draw_curve": "even", "asic_sale_price_usd_per_th": 5.0,
    }
    for section, fields in changes.items():
        data.setdefault(section, {}).update(fields)
    return data
