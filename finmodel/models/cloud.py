"""AI cloud: the owner buys the GPUs for its converted hall and sells GPU-hours (as IREN and
Bitdeer do), instead of leasing the space.

    GPU-hours sold = IT MW in service x GPUs per MW x hours x utilisation
    price          = price_0 x (1 + change) ** (age / 12), age = months since the GPU
                     generation in service was installed (a refresh resets it)
    GPU capex      = each phase's GPUs when the phase is ready, again every GPU life, at
                     gpu_price_0 x (1 + gpu price change) ** (t / 12)

The site's power is the owner's cost (a cloud price includes it), as is cloud opex.
"""

from __future__ import annotations

from finmodel.conventions import HOURS_PER_DAY, MONTHS_PER_YEAR
from finmodel.engine.expr import PathInput, eq, floor, minimum, sum_of, time, where
from finmodel.engine.graph import Model
from finmodel.inputs.schema import Assumptions
from finmodel.models.common import chosen, escalated, inp
from finmodel.models.hosting import Hosting, build_hall, phase

SHEET = "Cloud"


def _age(months: Expr, life: Expr) -> Expr:
    """Months since the latest replacement, for a cycle of ``life`` months."""
    return months - floor(months / life) * life


def build_cloud(m: Model, a: Assumptions, strategy: str) -> Hosting:
    """GPU-hour revenue, GPU purchases and cloud opex of a strategy's converted hall."""
    s, p = strategy, f"{strategy}.cloud"
    hall = build_hall(m, a, s)
    life = inp("cloud.gpu_life_years") * MONTHS_PER_YEAR
    sec = f"{s}: GPU cloud"
    gpus = m.line(f"{p}.gpus", hall.in_service_mw * inp("cloud.gpus_per_mw"), "GPUs in service",
                  "GPUs", SHEET, agg="last", section=sec)
    price = m.line(f"{p}.price_usd_per_gpu_hour",
                   inp("cloud.price_usd_per_gpu_hour") * (1 + inp("cloud.price_change_rate"))
                   ** (_age(time("index") - hall.commencement, life) / MONTHS_PER_YEAR),
                   "Price per GPU-hour", "USD/GPU-hour", SHEET, agg="mean", section=sec)
    hours = m.line(f"{p}.gpu_hours_sold",
                   gpus * time("days") * HOURS_PER_DAY * inp("cloud.utilisation_share"),
                   "GPU-hours sold", "GPU-hours", SHEET, section=sec)
    revenue = m.line(f"{p}.revenue_usd", hours * price, "Compute revenue", "USD", SHEET,
                     section=sec)
    # One row per phase (months since it was ready), so that no formula grows with the
    # number of phases.
    phases = range(1, len(a.hosting.phase_it_shares) + 1)
    since = {k: m.line(f"{p}.phase_{k}_months_ready",
                       time("index") - hall.start_index - phase(k, "phase_ready_months"),
                           f"Phase {k}: months since it was ready", "months", SHEET, agg="none",
                       section=sec) for k in phases}
    bought = [m.line(f"{p}.phase_{k}_gpus_bought_share",
                     where((since[k] >= 0) & eq(_age(since[k], life), 0),
                           phase(k, "phase_it_shares"), 0),
                     f"Phase {k}: share of the GPUs bought or refreshed", "share", SHEET,
                     section=sec) for k in phases]
    capex = m.line(f"{p}.gpu_capex_usd",
                   -sum_of(bought) * hall.ai_mw * inp("cloud.gpus_per_mw")
                   * escalated(inp("cloud.gpu_price_usd"), "cloud.gpu_price_change_rate"),
                   "GPU purchases and refreshes", "USD", SHEET, section=sec)
    opex = m.line(f"{p}.opex_usd",
                  -escalated(inp("cloud.opex_usd_per_mw_year") / MONTHS_PER_YEAR
                             * hall.in_service_mw, "cloud.opex_escalator_rate"),
                  "Cloud operating cost", "USD", SHEET, section=sec)
    other = []
    if a.cloud.gpu_residual_shares is not None:
        # At the horizon the GPUs in service are sold at their residual share of cost, by
        # age; with a terminal value (live choice) the business, GPUs included, is valued
        # instead.
        n_years = len(a.cloud.gpu_residual_shares)
        last = eq(time("index"), inp("case.horizon_years") * MONTHS_PER_YEAR - 1)
        values = []
        for k in phases:
            since_ready = since[k]
            age = _age(since_ready, life)
            year = minimum(floor(age / MONTHS_PER_YEAR) + 1, n_years)
            cost = (phase(k, "phase_it_shares") * hall.ai_mw * inp("cloud.gpus_per_mw")
                    * inp("cloud.gpu_price_usd") * (1 + inp("cloud.gpu_price_change_rate"))
                    ** ((time("index") - age) / MONTHS_PER_YEAR))
            values.append(m.line(f"{p}.phase_{k}_gpu_residual_usd",
                                 where(since_ready >= 0,
                                       cost * PathInput("cloud_gpu_residual_shares", year), 0),
                                 f"Phase {k}: residual value of its GPUs", "USD", SHEET,
                                 agg="last", section=sec))
        other.append(m.line(f"{p}.gpu_residual_usd",
                            where(chosen("valuation.terminal_method", "none"),
                                  where(last, sum_of(values), 0), 0),
                            "GPUs sold at their residual value at the horizon", "USD", SHEET,
                            section=sec))
    return Hosting(hall, revenue, opex, [capex], other)
