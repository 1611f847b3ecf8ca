"""Conversion capex: cost per MW of critical IT by category, contingency, the draw of each
phase over its construction months, sustaining capex, and straight-line depreciation.

Draw curves over a phase's ``N`` construction months (month ``j = 0 .. N-1`` after the
conversion start): ``even`` draws ``1 / N`` a month; ``s_curve`` draws
``F((j + 1) / N) - F(j / N)`` with the smoothstep ``F(x) = 3x^2 - 2x^3`` — slow at the
start and the end, fastest mid-build, as construction spending is.
"""

from __future__ import annotations

from dataclasses import dataclass

from finmodel.conventions import MONTHS_PER_YEAR
from finmodel.engine.expr import Expr, cumulative, eq, floor, shifted, sum_of, time, where, wrap
from finmodel.engine.graph import Line, Model
from finmodel.inputs.schema import Assumptions
from finmodel.models.common import chosen, inp
from finmodel.models.hosting import Hosting, phase

SHEET = "Capex"
CATEGORIES = ("electrical", "cooling", "building", "fit_out")


@dataclass(frozen=True)
class Conversion:
    capex: Line
    sustaining: Line
    depreciation: Line
    placed: dict[str, Line]  # category -> cost placed in service (positive), by month


def _smoothstep(x: Expr) -> Expr:
    return 3 * x ** 2 - 2 * x ** 3


def draw_fraction(j: Expr, n: Expr) -> Expr:
    """Share of a phase's capex drawn in construction month ``j`` of ``n``, by the case's
    draw curve (a live choice)."""
    inside = (j >= 0) & (j < n)
    return where(inside, where(chosen("conversion.draw_curve", "even"), 1 / n,
                               _smoothstep((j + 1) / n) - _smoothstep(j / n)), 0)


def build_conversion(m: Model, a: Assumptions, strategy: str, host: Hosting) -> Conversion:
    """Add the conversion capex of a strategy to ``m``."""
    s, p = strategy, f"{strategy}.conversion"
    phases = range(1, len(a.hosting.phase_it_shares) + 1)
    sec = f"{s}: conversion capex"
    j = m.line(f"{p}.construction_month", time("index") - host.start_index,
               "Months since conversion start", "months", SHEET, agg="none", section=sec)
    uplift = 1 + inp("conversion.contingency_share")
    per_phase = {k: m.line(f"{p}.draw_phase_{k}",
                           draw_fraction(j, phase(k, "phase_ready_months"))
                           * phase(k, "phase_it_shares"),
                           f"Share of the build drawn, phase {k}", "share", SHEET,
                           agg="sum", section=sec) for k in phases}
    draw = m.line(f"{p}.draw_share", sum_of(list(per_phase.values())), "Share of the build drawn", "share", SHEET,
                  section=sec)
    cats = [m.line(f"{p}.{cat}_usd",
                   -draw * host.ai_mw * inp(f"conversion.{cat}_usd_per_mw") * uplift,
                   f"{cat.replace('_', '-').capitalize()} (with contingency)", "USD", SHEET,
                   section=sec) for cat in CATEGORIES]
    capex = m.line(f"{p}.capex_usd", sum_of(cats), "Conversion capex", "USD", SHEET, section=sec)
    sustaining = m.line(f"{p}.sustaining_capex_usd",
                        -inp("conversion.sustaining_capex_usd_per_mw_year") / MONTHS_PER_YEAR
                        * host.in_service_mw,
                        "Sustaining capex", "USD", SHEET, section=sec)

    sec = f"{s}: placed in service (each phase at its readiness)"
    # One row per phase, summed: any number of phases, no formula growing with their count.
    per_phase_placed = [m.line(f"{p}.phase_{k}_placed_share",
                               where(eq(j, phase(k, "phase_ready_months")),
                                     phase(k, "phase_it_shares"), 0),
                               f"Phase {k}: share of the build placed in service", "share",
                               SHEET, agg="sum", section=sec) for k in phases]
    placed_share = m.line(f"{p}.placed_share", sum_of(per_phase_placed),
                          "Share of the build placed in service", "share", SHEET, agg="sum",
                          section=sec)
    in_service = m.line(f"{p}.in_service_share", cumulative(placed_share),
                        "Share of the build in service (placed to date)", "share", SHEET,
                        agg="last", section=sec)
    placed = {}
    for cat in CATEGORIES:
        placed[cat] = m.line(f"{p}.{cat}_placed_usd",
                             placed_share * host.ai_mw * inp(f"conversion.{cat}_usd_per_mw")
                             * uplift,
                             f"{cat.replace('_', '-').capitalize()} placed in service", "USD",
                             SHEET, section=sec)

    sec = f"{s}: book depreciation (straight line from each phase's readiness)"
    deps = []
    for cat in CATEGORIES:
        life = inp(f"conversion.{cat}_life_years") * MONTHS_PER_YEAR
        # The share depreciating: placed to date less placed a whole life ago (each phase
        # from its readiness for ceil(life) months; a whole number, so that Python and
        # Excel shift by the same months).
        monthly = in_service - shifted(in_service, -floor(-life))
        deps.append(m.line(f"{p}.{cat}_depreciation_usd",
                           -monthly * host.ai_mw * inp(f"conversion.{cat}_usd_per_mw")
                           * uplift / life,
                           f"Depreciation, {cat.replace('_', '-')}", "USD", SHEET,
                           section=sec))
    depreciation = m.line(f"{p}.depreciation_usd", sum_of(deps), "Depreciation of conversion "
                          "capex", "USD", SHEET, section=sec)
    return Conversion(capex, sustaining, depreciation, placed)
