"""An investment-committee PDF of a case: the decision, the strategies side by side, the
sensitivity and the Monte Carlo distribution (when the case asks for them), the key
inputs and the reproducibility stamp; 3-6 pages of matplotlib (the ``plot`` extra)."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import numpy as np

from finmodel.errors import ExportError
from finmodel.outputs import Outputs

_PAGE = (11.0, 8.5)  # US Letter, landscape (inches)
_BLUE, _RED, _GREEN, _GREY = "#1F3864", "#C0504D", "#00804A", "#595959"
_COLOURS = [_BLUE, _RED, "#9BBB59", "#F79646", "#8064A2"]
#: The decision's rows: metric key, label, how to show it.
_DECISION = [("npv_usd", "NPV", "m"), ("npv_vs_mining_usd", "Value vs keeping mining", "m"),
             ("project_irr", "Project IRR", "%"), ("mirr", "MIRR", "%"),
             ("moic", "MOIC", "x"), ("payback_years", "Payback (years)", "y"),
             ("peak_funding_usd", "Peak funding", "m")]


def write_report(result, path: str | os.PathLike[str], analysis=None) -> Path:
    """Write the PDF report of ``result`` (and of ``analysis``, if given) atomically, with
    the checks every output of finmodel gets (:class:`finmodel.outputs.Outputs`)."""
    out = Outputs()
    target = out.target(path, ".pdf", "report")
    out.commit([(target, lambda tmp: render_report(result, tmp, analysis))])
    return target


def render_report(result, path: str | os.PathLike[str], analysis=None) -> None:
    """Write the PDF report at ``path`` as it goes (not atomically: for a writer of
    :meth:`finmodel.outputs.Outputs.commit`, which renames it into place)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.backends.backend_pdf import PdfPages
    except ImportError:
        raise ExportError("the report needs matplotlib: pip install 'finmodel[plot]'") from None
    with matplotlib.rc_context({"pdf.fonttype": 42, "font.size": 9,
                                "axes.titlesize": 11, "axes.titleweight": "bold",
                                "axes.spines.top": False, "axes.spines.right": False}):
        with PdfPages(path, metadata={"Title": result.assumptions.case.name,
                                      "Creator": "finmodel"}) as pdf:
            pages = [_decision_page]
            if _converting(result):
                pages.append(_bridge_page)
            pages.append(_strategies_page)
            if analysis is not None and (analysis.tornado is not None
                                         or analysis.grid is not None):
                pages.append(_sensitivity_page)
            if analysis is not None and analysis.monte_carlo is not None:
                pages.append(_monte_carlo_page)
            pages.append(_inputs_page)
            for k, page in enumerate(pages, start=1):
                fig = plt.figure(figsize=_PAGE)
                page(fig, result, analysis)
                _frame(fig, result, k, len(pages))
                pdf.savefig(fig)
                plt.close(fig)


# --- pieces ---------------------------------------------------------------------------

def _labels(result) -> dict[str, str]:
    from finmodel.excel.labels import strategy_labels

    return strategy_labels(result)


def _metric(result, strategy: str, key: str) -> float | None:
    for m in result.model.metrics():
        if m.strategy == strategy and m.metric == key:
            return float(result.values[m.name][0])
    return None


def _fmt(v: float | None, how: str) -> str:
    if v is None:
        return ""
    if not np.isfinite(v):
        return "n/a"
    return {"m": f"{v / 1e6:,.1f}", "%": f"{v:.1%}", "x": f"{v:.2f}x",
            "y": f"{v:.1f}"}[how]


def _num(v: float) -> str:
    """A value for a label: 130,000 or 0.5 or 2.5e+06 never."""
    v = float(v)
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.3g}"


def _frame(fig, result, page: int, pages: int) -> None:
    from finmodel.excel.cover import stamp_rows

    stamp = dict(stamp_rows(result))
    fig.text(0.04, 0.965, result.assumptions.case.name, fontsize=8, color=_GREY)
    fig.text(0.96, 0.965, f"Run {stamp['Run date']}", fontsize=8, color=_GREY, ha="right")
    fig.text(0.04, 0.02, f"finmodel {stamp['finmodel version']} | {stamp['Case file']} "
             f"sha256 {stamp['Case file SHA-256'][:16]}", fontsize=7, color=_GREY)
    fig.text(0.96, 0.02, f"Page {page} of {pages}", fontsize=8, color=_GREY, ha="right")


def _title(fig, text: str, sub: str = "") -> None:
    fig.text(0.04, 0.92, text, fontsize=16, weight="bold", color=_BLUE)
    if sub:
        fig.text(0.04, 0.885, sub, fontsize=9, color=_GREY, style="italic")


def _table(ax, rows: list[list[str]], col_labels: list[str], widths=None,
           size: float = 9) -> None:
    ax.axis("off")
    heads = ["\n".join(textwrap.wrap(h, 12)) for h in col_labels]
    t = ax.table(cellText=rows, colLabels=heads, loc="upper left", cellLoc="right",
                 colLoc="center", colWidths=widths)
    t.auto_set_font_size(False)
    t.set_fontsize(size)
    t.scale(1, 1.45)
    for (r, c), cell in t.get_celld().items():
        cell.set_edgecolor("#D9D9D9")
        if r == 0:
            cell.set_height(cell.get_height() * (1 + max(h.count("\n") for h in heads)))
            cell.set_facecolor(_BLUE)
            cell.get_text().set_color("white")
            cell.get_text().set_weight("bold")
            cell.get_text().set_fontsize(size - 1.5)
        if c == 0:
            cell.get_text().set_ha("left")


def _decision_page(fig, result, analysis) -> None:
    labels = _labels(result)
    strategies = result.strategies
    a = result.assumptions
    best = max(strategies, key=lambda s: _metric(result, s, "npv_usd") or -np.inf)
    _title(fig, "The decision", f"NPV at {a.case.discount_rate:.1%} over "
           f"{a.case.horizon_years} years from {a.case.start_month}; USD millions unless "
           "stated; money in +, out -")
    lines = []
    for s in strategies:
        v = _metric(result, s, "npv_vs_mining_usd")
        if v is not None and np.isfinite(v):
            word = "adds" if v >= 0 else "loses"
            lines.append(f"{labels[s]} {word} ${abs(v) / 1e6:,.1f}M against keeping mining.")
    top = _metric(result, best, "npv_usd") / 1e6
    lines.append(f"Highest NPV: {labels[best]} ({'-' if top < 0 else ''}${abs(top):,.1f}M).")
    for i, text in enumerate(lines):
        fig.text(0.04, 0.83 - 0.035 * i, text, fontsize=12 if i < len(lines) - 1 else 11,
                 weight="bold" if i == len(lines) - 1 else "normal", color=_BLUE)
    rows = []
    for key, label, how in _DECISION:
        vals = [_metric(result, s, key) for s in strategies]
        if all(v is None for v in vals):
            continue
        rows.append([label + (" (USD m)" if how == "m" else "")] +
                    [_fmt(v, how) for v in vals])
    ax = fig.add_axes([0.04, 0.08, 0.54, 0.6])
    _table(ax, rows, ["Metric"] + [labels[s] for s in strategies],
           [0.43] + [0.57 / len(strategies)] * len(strategies))
    # Every n/a in the table says why, once per reason (as the CLI and the workbook do).
    why: dict[str, list[str]] = {}
    for key, label, _ in _DECISION:
        for s in strategies:
            v = _metric(result, s, key)
            text = result.reasons.get(f"{s}.{key}")
            if v is not None and not np.isfinite(v) and text is not None and text[0]:
                why.setdefault(f"{label}: {text[0]}", []).append(labels[s])
    y = 0.115
    for text, who in why.items():
        for part in textwrap.wrap(f"n/a - {text} ({', '.join(who)})", 150)[:2]:
            fig.text(0.04, y, part, fontsize=7, color=_GREY)
            y -= 0.018
    ax = fig.add_axes([0.68, 0.14, 0.28, 0.52])
    npv = [(_metric(result, s, "npv_usd") or 0.0) / 1e6 for s in strategies]
    # Long strategy names wrapped under their bars: slanted they ran off the page.
    bars = ax.bar(["\n".join(textwrap.wrap(labels[s], 14)) for s in strategies], npv,
                  color=[_GREEN if v >= 0 else _BLUE for v in npv])
    ax.bar_label(bars, fmt="%.0f", padding=2, fontsize=8)
    ax.axhline(0, color="black", lw=0.6)
    ax.set_ylabel("NPV (USD m)")
    ax.set_title("NPV by strategy")
    ax.tick_params(axis="x", labelsize=7)


def _converting(result) -> list[str]:
    """The strategies with an NPV bridge from mining (every one but mining itself)."""
    return [s for s in result.strategies
            if _metric(result, s, "bridge_mining_margin_usd") is not None]


def _bridge_page(fig, result, analysis) -> None:
    from finmodel.models.strategies import BRIDGE_TITLES

    labels = _labels(result)
    others = _converting(result)
    best = max(others, key=lambda s: _metric(result, s, "npv_usd"))
    keys = list(BRIDGE_TITLES)
    _title(fig, "Why converting is worth what it is",
           "NPV bridge from keeping mining: each step is the present value of one line of "
           "the strategy's cash flow less mining's; the steps sum to the difference in NPV")
    base = _metric(result, "mining", "npv_usd") / 1e6
    steps = [_metric(result, best, f"bridge_{k}_usd") / 1e6 for k in keys]
    ax = fig.add_axes([0.07, 0.2, 0.44, 0.62])
    names = ["Keep mining NPV"] + [BRIDGE_TITLES[k] for k in keys] + [f"{labels[best]} NPV"]
    level = base
    tops = np.cumsum([base] + steps)
    lo, hi = min(0.0, tops.min()), max(0.0, tops.max())
    span = hi - lo or 1.0
    for i, name in enumerate(names):
        if i == 0 or i == len(names) - 1:
            v = base if i == 0 else _metric(result, best, "npv_usd") / 1e6
            ax.bar(i, v, color=_BLUE)
            ax.annotate(f"{v:,.1f}", (i, v), xytext=(0, 3 if v >= 0 else -10),
                        textcoords="offset points", ha="center", fontsize=7)
            continue
        d = steps[i - 1]
        ax.bar(i, d, bottom=level, color=_GREEN if d >= 0 else _RED)
        if abs(d) > 0.12 * span:  # inside a tall bar, so neighbours' labels never collide
            ax.text(i, level + d / 2, f"{d:+,.1f}", ha="center", va="center", fontsize=7,
                    color="white", rotation=90)
        else:
            ax.annotate(f"{d:+,.1f}", (i, max(level, level + d)), xytext=(0, 3),
                        textcoords="offset points", ha="center", fontsize=7)
        level += d
    ax.set_xticks(range(len(names)), names, rotation=35, ha="right", fontsize=8)
    ax.axhline(0, color="black", lw=0.6)
    ax.set_ylabel("USD m (present value at the discount rate)")
    ax.set_title(f"Keep mining to {labels[best]} (highest NPV of the conversions)", pad=14)
    # Bars with a bottom are sticky there, so margins would not apply: set the limits.
    ax.set_ylim(lo - 0.08 * span, hi + 0.08 * span)
    ax.grid(axis="y", color="#E5E5E5")
    rows = [["Keep mining NPV"] + [_fmt(base * 1e6, "m")] * len(others)]
    rows += [[BRIDGE_TITLES[k]] + [_fmt(_metric(result, s, f"bridge_{k}_usd"), "m")
                                   for s in others] for k in keys]
    rows += [["Strategy NPV"] + [_fmt(_metric(result, s, "npv_usd"), "m") for s in others]]
    ax = fig.add_axes([0.55, 0.1, 0.41, 0.72])
    _table(ax, rows, ["USD m"] + [labels[s] for s in others],
           [0.37] + [0.63 / len(others)] * len(others), size=7.5)


def _strategies_page(fig, result, analysis) -> None:
    labels = _labels(result)
    _title(fig, "The strategies side by side",
           "Cumulative free cash flow by month; value of converting by the month it starts")
    dates = result.timeline.periods.to_timestamp(how="end")
    ax = fig.add_axes([0.07, 0.13, 0.5, 0.7])
    for i, s in enumerate(result.strategies):
        v = result.values[f"{s}.cumulative_fcf_usd"][0] / 1e6
        ax.plot(dates, v, color=_COLOURS[i % 5], lw=1.8, label=labels[s])
    ax.axhline(0, color="black", lw=0.6)
    ax.set_ylabel("Cumulative free cash flow (USD m)")
    ax.set_xlabel("Month end")
    ax.set_title("Cumulative cash by strategy")
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    ax.grid(axis="y", color="#E5E5E5")
    ax = fig.add_axes([0.65, 0.13, 0.31, 0.7])
    for i, (s, t) in enumerate(result.timing.items()):
        starts = t.index.to_timestamp()
        colour = _COLOURS[(i + 1) % 5]
        best = t["npv_vs_mining_usd"].idxmax()
        top = t.loc[best, "npv_vs_mining_usd"] / 1e6
        # The best start goes in the legend and is marked on the curve: labels beside
        # the points collided with each other and the axis when two bests share a month.
        ax.plot(starts, t["npv_vs_mining_usd"] / 1e6, color=colour, lw=1.8,
                label=f"{labels.get(s, s)}\nbest start {best}: {top:+,.1f}M")
        ax.plot([best.to_timestamp()], [top], "o", color=colour, ms=5, zorder=3)
    ax.axhline(0, color="black", lw=0.6)
    ax.set_ylabel("NPV above keeping mining (USD m)")
    ax.set_xlabel("Conversion start month")
    ax.set_title("When to convert")
    if result.timing:
        ax.legend(fontsize=8, frameon=False, loc="best")
    ax.grid(axis="y", color="#E5E5E5")


def _sensitivity_page(fig, result, an) -> None:
    from finmodel.excel.analysis_sheets import metric_label
    from finmodel.excel.labels import humanise

    labels = _labels(result)
    what = f"{metric_label(an.metric)} of {labels.get(an.strategy, an.strategy)}"
    _title(fig, f"Sensitivity: {what}", "Each input at its low and high value, the others "
           "at base (one vectorised evaluation of the whole model)")
    if an.tornado is not None:
        t = an.tornado.sort_values("swing", ascending=True)
        base = float(t.attrs["base"]) / 1e6
        ax = fig.add_axes([0.24, 0.12, 0.34, 0.72])
        names = [f"{humanise(p)}\n({_num(lo)} | {_num(hi)})" for p, lo, hi in
                 zip(t["input"], t["low_value"], t["high_value"])]
        lo = t["metric_low"].to_numpy() / 1e6 - base
        hi = t["metric_high"].to_numpy() / 1e6 - base
        y = np.arange(len(t))
        ax.barh(y, lo, color=_RED, label="input at low value")
        ax.barh(y, hi, color=_BLUE, label="input at high value")
        for yi, a, b in zip(y, lo, hi):
            for v in (a, b):
                ax.text(v, yi, f" {v:+,.0f} ", va="center", fontsize=7,
                        ha="left" if v >= 0 else "right")
        ax.set_yticks(y, names, fontsize=7)
        ax.axvline(0, color="black", lw=0.8)
        ax.set_xlabel(f"Change from the base {base:,.0f} (USD m)")
        ax.set_title("Tornado")
        ax.legend(loc="lower right", fontsize=7, frameon=False)
        ax.margins(x=0.25)
    if an.grid is not None:
        g = an.grid
        ax = fig.add_axes([0.66, 0.17, 0.3, 0.6])
        z = g.to_numpy() / 1e6
        im = ax.imshow(z, cmap="RdYlGn", aspect="auto", origin="lower")
        ax.set_xticks(range(len(g.columns)), [_num(x) for x in g.columns], fontsize=7)
        ax.set_yticks(range(len(g.index)), [_num(y) for y in g.index], fontsize=7)
        for i in range(z.shape[0]):
            for j in range(z.shape[1]):
                ax.text(j, i, f"{z[i, j]:,.0f}", ha="center", va="center", fontsize=7)
        ax.set_xlabel(humanise(g.columns.name))
        ax.set_ylabel(humanise(g.index.name))
        ax.set_title(f"Grid: {metric_label(an.metric)} (USD m)")
        fig.colorbar(im, ax=ax, label="USD m", shrink=0.8)


def _monte_carlo_page(fig, result, an) -> None:
    from finmodel.excel.analysis_sheets import histogram, metric_label

    mc = an.monte_carlo
    labels = _labels(result)
    mname = metric_label(an.metric)
    _title(fig, f"Monte Carlo: {mname} by strategy",
           f"{len(mc.samples):,} scenarios, seed {mc.seed}; bins over the 1st-99th "
           "percentile, the tails counted in the edge bins")
    values = mc.samples.xs(an.metric, axis=1, level="metric")
    allv = values.to_numpy().ravel()
    ax = fig.add_axes([0.07, 0.13, 0.52, 0.7])
    for i, s in enumerate(values.columns):
        edges, counts = histogram(values[s].to_numpy(), allv)
        centres = (edges[:-1] + edges[1:]) / 2 / 1e6
        ax.step(centres, counts, where="mid", color=_COLOURS[i % 5], lw=1.6,
                label=labels.get(s, s))
        ax.fill_between(centres, counts, step="mid", color=_COLOURS[i % 5], alpha=0.15)
    ax.set_xlabel(f"{mname} (USD m)")
    ax.set_ylabel("Scenarios per bin")
    ax.set_title("Distribution")
    ax.legend(fontsize=8, frameon=False)
    ax.grid(axis="y", color="#E5E5E5")
    summary = mc.summary(an.metric)
    rows = []
    for key, label, how in (("mean", "Mean (USD m)", "m"), ("p5", "5th percentile", "m"),
                            ("p50", "Median", "m"), ("p95", "95th percentile", "m"),
                            ("prob_positive", "P(above zero)", "%"),
                            ("prob_beats_mining", "P(beats mining)", "%")):
        if key in summary.index:
            rows.append([label] + [_fmt(float(v), how) if np.isfinite(v) else ""
                                   for v in summary.loc[key]])
    ax = fig.add_axes([0.63, 0.5, 0.35, 0.33])
    _table(ax, rows, [""] + [labels.get(s, s) for s in summary.columns],
           [0.31] + [0.69 / len(summary.columns)] * len(summary.columns), size=8)
    spec = result.assumptions.analysis.monte_carlo
    paths = mc.extra.get("paths")
    text = [f"Scenarios {len(mc.samples):,}, seed {mc.seed}"]
    if paths is not None:
        text.append(f"BTC price volatility {paths.btc_price_volatility:.0%}, hashrate "
                    f"{paths.hashrate_volatility:.0%}, correlation {paths.correlation:.2f}")
    from finmodel.excel.labels import humanise

    for p, d in spec.distributions.items():
        params = ", ".join(f"{k} {_num(v)}" for k, v in d.items() if k != "dist")
        text.append(f"{humanise(p)}: {d.get('dist')} ({params})")
    for c in spec.correlations:
        text.append(f"Correlation {humanise(c.a)} / {humanise(c.b)}: {c.rho:.2f}")
    fig.text(0.63, 0.44, "Settings", fontsize=10, weight="bold", color=_BLUE)
    y = 0.44
    for line in text:
        for k, part in enumerate(textwrap.wrap(line, 62)):
            y -= 0.026
            fig.text(0.63 + (0.01 if k else 0), y, part, fontsize=7.5)


KEY_INPUTS = ("network.btc_price_usd", "network.hashrate_eh_s", "network.hashrate_growth_rate",
              "power.ppa_price_usd_per_mwh", "site.interconnect_mw",
              "hosting.lease_rate_usd_per_kw_month", "hosting.term_years",
              "conversion.electrical_usd_per_mw", "conversion.cooling_usd_per_mw",
              "conversion.building_usd_per_mw", "conversion.fit_out_usd_per_mw",
              "case.discount_rate", "case.horizon_years")


def _inputs_page(fig, result, analysis) -> None:
    from finmodel.excel.cover import CONVENTIONS, DISCLAIMER, stamp_rows
    from finmodel.excel.labels import input_label
    from finmodel.inputs.load import input_fields

    _title(fig, "Key inputs and reproducibility", "Change them in the case file and re-run; "
           "every input is on the workbook's Inputs sheet with its defined name")
    fields = {f.path: f for f in input_fields(result.assumptions)}
    sources = dict(result.assumptions.input_sources)
    rows = []
    for p in KEY_INPUTS:
        f = fields.get(p)
        if f is None or isinstance(f.value, (list, str)):
            continue
        v = float(f.value)
        shown = f"{v:.1%}" if f.unit in ("rate", "share") else _num(v)
        source = sources.get(p, "")
        rows.append([input_label(p, f.unit), shown,
                     source if len(source) <= 40 else source[:39] + "…"])
    ax = fig.add_axes([0.04, 0.3, 0.55, 0.55])
    _table(ax, rows, ["Input", "Value", "Source"], [0.52, 0.16, 0.32])
    y = 0.84
    fig.text(0.63, y, "Reproducibility stamp", fontsize=10, weight="bold", color=_BLUE)
    for k, v in stamp_rows(result):
        # A SHA-256 does not fit beside its name: it goes on a line of its own, whole.
        for part in ([f"{k}:"] + ["  " + v[i:i + 32] for i in range(0, len(v), 32)]
                     if len(v) > 40 else [f"{k}: {v}"]):
            y -= 0.03 if part.startswith(k) else 0.022
            fig.text(0.63, y, part, fontsize=7.5, family="monospace" if part[:2] == "  "
                     else None)
    y -= 0.05
    fig.text(0.63, y, "Conventions", fontsize=10, weight="bold", color=_BLUE)
    for c in CONVENTIONS:
        c = c.replace("(brackets)", "(a minus sign in this report)")
        for part in textwrap.wrap(c, 70):
            y -= 0.025
            fig.text(0.63, y, part, fontsize=7.5)
    fig.text(0.04, 0.2, "Disclaimer", fontsize=10, weight="bold", color=_BLUE)
    for i, part in enumerate(textwrap.wrap(DISCLAIMER, 150)):
        fig.text(0.04, 0.17 - 0.025 * i, part, fontsize=8)


def analysis_for_report(a):
    """The analyses a case's ``[analysis]`` section asks for (None when it has none)."""
    from finmodel.analysis.run import run_analysis

    if "analysis" not in a.model_fields_set:
        return None
    spec = a.analysis
    grid = list(spec.grid) if len(spec.grid) == 2 else None
    n = spec.monte_carlo.scenarios if "monte_carlo" in spec.model_fields_set else None
    return run_analysis(a, tornado_inputs=True, grid_inputs=grid, monte_carlo_n=n)
