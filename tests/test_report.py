"""`finmodel report`: a 3-6 page PDF for an investment committee, read back with pypdf."""

from __future__ import annotations

import subprocess
import sys

import pypdf
import pytest

import finmodel
from tests.conftest import ROOT


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "finmodel.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)


def _text(pdf: pypdf.PdfReader) -> list[str]:
    return [" ".join((p.extract_text() or "").split()) for p in pdf.pages]


def test_report_of_the_base_case_has_the_decision_sensitivity_and_monte_carlo(tmp_path):
    out = tmp_path / "report.pdf"
    p = _cli("report", "assumptions/base.toml", "-o", str(out))
    assert p.returncode == 0, p.stderr
    pages = _text(pypdf.PdfReader(out))
    assert 3 <= len(pages) <= 6
    # decision, NPV bridge, strategies, sensitivity, Monte Carlo, inputs
    assert len(pages) == 6
    result = finmodel.run(finmodel.load_assumptions(ROOT / "assumptions" / "base.toml"))
    hybrid = float(result.values["hybrid.npv_vs_mining"][0]) / 1e6
    assert "The decision" in pages[0]
    assert f"adds ${hybrid:,.1f}M against keeping mining" in pages[0]
    # Every n/a says why (base: no project IRR, the first flow being an inflow).
    assert ("n/a - Project IRR: the first non-zero flow is an inflow: there is no investment "
            "to earn a return on") in pages[0]
    assert "Why converting is worth what it is" in pages[1]
    assert "Keep mining to Convert to AI hosting" in pages[1]  # the highest NPV: 175.2M
    steps = [float(result.values[f"ai_hosting.bridge_{k}"][0]) / 1e6
             for k in ("mining_margin", "asic_sale", "hall_revenue", "conversion_capex")]
    for v in steps:  # -79.5, 77.8, 950.1, -602.9 in the table and on the bars
        assert f"{v:,.1f}" in pages[1] and f"{v:+,.1f}" in pages[1]
    assert "The strategies side by side" in pages[2] and "When to convert" in pages[2]
    for s, t in result.timing.items():  # the legend names each best start and its value
        best = t["npv_vs_mining_usd"].idxmax()  # base: 2026-02, +9.9M and +5.3M
        top = t.loc[best, "npv_vs_mining_usd"] / 1e6
        assert f"best start {best}: {top:+,.1f}M" in pages[2]
    assert "Tornado" in pages[3] and "Grid" in pages[3]
    assert "Monte Carlo" in pages[4] and "seed 2026" in pages[4]
    assert "Key inputs" in pages[5] and "Case file SHA-256" in pages[5]
    sha = result.assumptions._source.sha256  # whole, on two lines of 32 characters
    assert sha[:32] in pages[5] and sha[32:] in pages[5]
    for k, text in enumerate(pages, start=1):
        assert f"Page {k} of {len(pages)}" in text


def test_report_of_the_bitdeer_convertible_case(tmp_path):
    out = tmp_path / "bitdeer.pdf"
    p = _cli("report", "assumptions/bitdeer_convertible_hybrid.toml", "-o", str(out))
    assert p.returncode == 0, p.stderr
    pages = _text(pypdf.PdfReader(out))
    assert 3 <= len(pages) <= 6
    assert "Hybrid: 100 MW IT to AI" in pages[0] and "The decision" in pages[0]
    assert "Key inputs" in pages[-1]
    # Each key input's source from the case's [input_sources], as the case file states it.
    sources = finmodel.load_assumptions(
        ROOT / "assumptions" / "bitdeer_convertible_hybrid.toml").input_sources
    assert sources["hosting.lease_rate_usd_per_kw_month"] == "EST; [L3]-[L17]"
    assert "EST; [L3]-[L17]" in pages[-1] and "[B24]" in pages[-1]
    assert "(a minus sign in this report)" in pages[-1]


def test_report_of_a_case_without_analysis_is_three_pages(tmp_path):
    out = tmp_path / "riot.pdf"
    p = _cli("report", "assumptions/riot_style_fixed_block.toml", "-o", str(out))
    assert p.returncode == 0, p.stderr
    pages = _text(pypdf.PdfReader(out))
    assert len(pages) == 3  # decision, strategies, key inputs: mining only, no bridge
    assert "Tornado" not in " ".join(pages)


@pytest.mark.parametrize("name", ["report.txt", "missing/report.pdf"])
def test_report_to_a_bad_path_exits_2_and_writes_nothing(tmp_path, name):
    out = tmp_path / name
    p = _cli("report", "assumptions/base.toml", "-o", str(out))
    assert p.returncode == 2
    assert p.stderr.startswith("finmodel: error:") and "Traceback" not in p.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == []
