"""Sensitivity and Monte Carlo sheets: results computed in Python by re-evaluating the
model (one vectorised pass each), written as labelled values with charts."""

from __future__ import annotations

import numpy as np

from finmodel.excel.labels import humanise, input_label, number_format, strategy_labels

NOTE = ("Computed in Python by re-evaluating the whole model for every variant in one "
        "vectorised pass; values, not formulas: run finmodel sensitivity again after "
        "changing inputs.")

#: Readers' names of the analysed metrics and of the Monte Carlo statistics.
METRIC_LABELS = {"npv_usd": "NPV", "project_irr": "Project IRR", "moic": "MOIC",
                 "npv_vs_mining_usd": "Value of converting (NPV above mining)",
                 "equity_npv_usd": "Equity NPV", "payback_years": "Payback"}
STAT_LABELS = {"mean": "Mean", "std": "Standard deviation", "p5": "5th percentile",
               "p25": "25th percentile", "p50": "Median", "p75": "75th percentile",
               "p95": "95th percentile", "prob_positive": "Probability above zero",
               "missing": "Scenarios without a value",
               "prob_beats_mining": "Probability it beats keeping mining"}
HIST_BINS = 30
_MILLIONS = '#,##0,,'


def metric_label(metric: str) -> str:
    return METRIC_LABELS.get(metric, humanise(metric))


def _metric_unit(metric: str) -> str:
    return "USD" if metric.endswith("_usd") else "rate" if "irr" in metric else \
        "x" if metric == "moic" else "years" if metric.endswith("_years") else "ratio"


def _unit_name(unit: str) -> str:
    return {"USD": "USD m", "rate": "%", "x": "x"}.get(unit, unit)


def write_sensitivity(wb, ws, st, an, result) -> None:
    labels = strategy_labels(result)
    what = f"{metric_label(an.metric)} of {labels.get(an.strategy, an.strategy)}"
    unit = _metric_unit(an.metric)
    fmt = st.cell(unit)
    ws.write_string(0, 0, f"Sensitivity: {what}", st.title)
    ws.write_string(1, 0, NOTE, st.subtitle)
    units = {f.path: f.unit for f in _fields(result)}
    row = 3
    if an.scenarios is not None:
        ws.write_string(row, 0, "Scenario sets", st.section)
        row += 1
        cols = list(an.scenarios.columns)
        ws.write_string(row, 0, "Scenario", st.header_left)
        for j, (s, m) in enumerate(cols):
            ws.write_string(row, 1 + j, f"{labels.get(s, s)}: {metric_label(m)} "
                            f"({_unit_name(_metric_unit(m))})", st.header_wrap)
        ws.set_row(row, 26)
        for name, values in an.scenarios.iterrows():
            row += 1
            ws.write_string(row, 0, humanise(str(name)), st.label)
            for j, v in enumerate(values):
                _num(ws, row, 1 + j, v, st.cell(_metric_unit(cols[j][1])))
        row += 2
    if an.tornado is not None:
        t = an.tornado.sort_values("swing", ascending=False)
        base = float(t.attrs["base"])
        ws.write_string(row, 0, f"Tornado: {what}, each input at its low and high value, the "
                        "others at base", st.section)
        row += 1
        ws.write_string(row, 0, f"Base {metric_label(an.metric)} ({_unit_name(unit)})",
                        st.label_bold)
        base_cell = (row, 2)
        _num(ws, row, 2, base, st.cell(unit, bold=True))
        row += 1
        heads = ["Input (low | high value)", "Unit", "Low value", "Base value", "High value",
                 f"At low ({_unit_name(unit)})", f"At high ({_unit_name(unit)})",
                 f"Change at low ({_unit_name(unit)})", f"Change at high ({_unit_name(unit)})",
                 f"Swing ({_unit_name(unit)})"]
        for j, h in enumerate(heads):
            ws.write_string(row, j, h, st.header_wrap if j else st.header_left)
        ws.set_row(row, 26)
        first = row + 1
        for _, r in t.iterrows():
            row += 1
            u = units.get(r.input, "ratio")
            lo, hi = _plain(r.low_value, u), _plain(r.high_value, u)
            ws.write_string(row, 0, f"{humanise(r.input)} ({lo} | {hi})", st.label)
            ws.write_string(row, 1, _unit_name(u), st.unit)
            for j, key in enumerate(("low_value", "base_value", "high_value"), start=2):
                _num(ws, row, j, r[key], st.cell(u))
            _num(ws, row, 5, r.metric_low, fmt)
            _num(ws, row, 6, r.metric_high, fmt)
            b = f"$C${base_cell[0] + 1}"
            for j, key in ((7, "metric_low"), (8, "metric_high")):
                ws.write_formula(row, j, f"={_col(j - 2)}{row + 1}-{b}", fmt,
                                 float(r[key]) - base)
            _num(ws, row, 9, r.swing, fmt)
        last = row
        chart = wb.add_chart({"type": "bar"})
        for col, name, colour in ((7, "Input at its low value", "#C0504D"),
                                  (8, "Input at its high value", "#4F81BD")):
            chart.add_series({"name": name, "categories": [ws.name, first, 0, last, 0],
                              "values": [ws.name, first, col, last, col],
                              "fill": {"color": colour}, "overlap": 100, "gap": 40,
                              "data_labels": {"value": True, "num_format": '+#,##0,,;-#,##0,,',
                                              "position": "outside_end",
                                              "font": {"size": 8}}})
        chart.set_title({"name": f"Tornado: change in {what} from the base "
                         f"({base / 1e6:,.0f} USD m)" if unit == "USD" else
                         f"Tornado: change in {what} from the base",
                         "name_font": {"size": 10}})
        # Largest swing on top; input names at the left edge, never over the bars.
        chart.set_y_axis({"reverse": True, "label_position": "low",
                          "num_font": {"size": 8}})
        chart.set_x_axis({"name": f"Change from the base ({_unit_name(unit)})",
                          "num_format": _MILLIONS if unit == "USD" else "0%",
                          "name_font": {"size": 9, "bold": False},
                          "major_gridlines": {"visible": True,
                                              "line": {"color": "#D9D9D9"}}})
        chart.set_legend({"position": "bottom"})
        chart.set_size({"width": 900, "height": 90 + 34 * len(t)})
        ws.insert_chart(row + 2, 0, chart)
        row += 4 + (90 + 34 * len(t)) // 20
    if an.grid is not None:
        g = an.grid
        ws.write_string(row, 0, f"Grid: {what} ({_unit_name(unit)}); "
                        f"{input_label(g.index.name, units.get(g.index.name, ''))} down, "
                        f"{input_label(g.columns.name, units.get(g.columns.name, ''))} across",
                        st.section)
        row += 1
        ws.write_string(row, 0, f"{humanise(g.index.name)} \\ {humanise(g.columns.name)}",
                        st.header_left)
        cu = units.get(g.columns.name, "ratio")
        head = wb.add_format({**st.base, "bold": True, "font_color": "#FFFFFF",
                              "bg_color": "#1F3864", "align": "center",
                              "num_format": number_format(cu)})
        for j, x in enumerate(g.columns):
            _num(ws, row, 1 + j, x, head)
        top = row + 1
        for y, values in g.iterrows():
            row += 1
            _num(ws, row, 0, y, st.cell(units.get(g.index.name, "ratio"), bold=True))
            for j, v in enumerate(values):
                _num(ws, row, 1 + j, v, fmt)
        ws.conditional_format(top, 1, row, len(g.columns), {"type": "3_color_scale",
                                                             "min_color": "#F8696B",
                                                             "mid_color": "#FFEB84",
                                                             "max_color": "#63BE7B"})
    ws.set_column(0, 0, 52)
    ws.set_column(1, 9, 13)


def histogram(values: np.ndarray, edges_from: np.ndarray, bins: int = HIST_BINS
              ) -> tuple[np.ndarray, np.ndarray]:
    """Bin edges over the 1st-99th percentile of ``edges_from`` and the counts of
    ``values``, with everything below the first edge in the first bin and above the last
    in the last (the tails are counted, not dropped)."""
    finite = edges_from[np.isfinite(edges_from)]
    lo, hi = (np.percentile(finite, [1, 99]) if finite.size else (0.0, 1.0))
    if hi <= lo:
        hi = lo + 1.0
    edges = np.linspace(lo, hi, bins + 1)
    x = values[np.isfinite(values)]
    counts = np.histogram(np.clip(x, lo, hi), bins=edges)[0]
    return edges, counts


def write_monte_carlo(wb, ws, st, an, result) -> None:
    mc = an.monte_carlo
    labels = strategy_labels(result)
    unit = _metric_unit(an.metric)
    mname = metric_label(an.metric)
    ws.write_string(0, 0, f"Monte Carlo: {mname} of each strategy, {len(mc.samples):,} "
                    f"scenarios, seed {mc.seed}", st.title)
    ws.write_string(1, 0, NOTE, st.subtitle)
    summary = mc.summary(an.metric)
    row = 3
    ws.write_string(row, 0, f"{mname} by strategy ({_unit_name(unit)} unless stated)",
                    st.header_left)
    for j, s in enumerate(summary.columns):
        ws.write_string(row, 1 + j, labels.get(s, s), st.header_wrap)
    ws.set_row(row, 26)
    for key, values in summary.iterrows():
        row += 1
        text = STAT_LABELS.get(key)
        if text is None and key.startswith("expected_shortfall_"):
            text = f"Expected shortfall (mean of the worst {key.split('_')[-1][:-3]} %)"
        ws.write_string(row, 0, text or humanise(key), st.label)
        u = "share" if key.startswith("prob") else "count" if key == "missing" else unit
        for j, v in enumerate(values):
            _num(ws, row, 1 + j, v, st.cell(u))
    # Histogram: shared bins over the 1st-99th percentile; the tails in the edge bins.
    values = mc.samples.xs(an.metric, axis=1, level="metric")
    allv = values.to_numpy().ravel()
    chart_row = row + 2
    row += 26  # the chart sits between the summary and the histogram's table
    hist_top = row
    scale = 1e6 if unit == "USD" else 1.0
    ws.write_string(row, 0, f"{mname} bin ({_unit_name(unit)})", st.header_left)
    for j, s in enumerate(values.columns):
        ws.write_string(row, 1 + j, f"{labels.get(s, s)}: scenarios", st.header_wrap)
    ws.set_row(row, 26)
    counts = {}
    for s in values.columns:
        edges, counts[s] = histogram(values[s].to_numpy(), allv)
    first = row + 1
    for i in range(len(edges) - 1):
        row += 1
        a, b = edges[i] / scale, edges[i + 1] / scale
        if i == 0:
            text = f"under {b:,.0f} (tail)"
        elif i == len(edges) - 2:
            text = f"{a:,.0f} and over (tail)"
        else:
            text = f"{a:,.0f} to {b:,.0f}"
        ws.write_string(row, 0, text, st.label)
        for j, s in enumerate(values.columns):
            ws.write_number(row, 1 + j, int(counts[s][i]), st.cell("count"))
    chart = wb.add_chart({"type": "column"})
    colours = ["#1F3864", "#C0504D", "#9BBB59", "#F79646", "#8064A2"]
    for j, s in enumerate(values.columns):
        chart.add_series({"name": [ws.name, hist_top, 1 + j],
                          "categories": [ws.name, first, 0, row, 0],
                          "values": [ws.name, first, 1 + j, row, 1 + j],
                          "fill": {"color": colours[j % len(colours)]}, "gap": 30})
    chart.set_title({"name": f"Distribution of {mname} by strategy, 1st-99th percentile "
                     "(edge bins hold the tails)", "name_font": {"size": 10}})
    chart.set_x_axis({"name": f"{mname} ({_unit_name(unit)})", "num_font": {"rotation": -45,
                                                                           "size": 7},
                      "name_font": {"size": 9, "bold": False}})
    chart.set_y_axis({"name": "Scenarios", "name_font": {"size": 9, "bold": False},
                      "major_gridlines": {"visible": True, "line": {"color": "#D9D9D9"}}})
    chart.set_legend({"position": "bottom"})
    chart.set_size({"width": 980, "height": 440})
    settings_col = 2 + len(values.columns)
    ws.insert_chart(chart_row, 0, chart)
    _write_settings(ws, st, mc, result, 3, settings_col)
    ws.set_column(0, 0, 40)
    ws.set_column(1, 1 + len(values.columns), 15)
    ws.set_column(settings_col, settings_col, 34)
    ws.set_column(settings_col + 1, settings_col + 1, 30)


def _write_settings(ws, st, mc, result, row: int, col: int) -> None:
    """The settings that produced the distribution, beside it."""
    spec = result.assumptions.analysis.monte_carlo
    paths = mc.extra.get("paths")
    ws.write_string(row, col, "Settings of this run", st.header_left)
    ws.write_string(row, col + 1, "", st.header_left)
    rows = [("Scenarios", f"{len(mc.samples):,}"), ("Seed", str(mc.seed))]
    if paths is not None:
        rows += [("BTC price volatility (annual, GBM)", f"{paths.btc_price_volatility:.0%}"),
                 ("Hashrate volatility (annual, GBM)", f"{paths.hashrate_volatility:.0%}"),
                 ("Correlation of price and hashrate shocks", f"{paths.correlation:.2f}")]
    for path, d in spec.distributions.items():
        params = ", ".join(f"{k} {_plain(v, '')}" for k, v in d.items() if k != "dist")
        rows.append((humanise(path), f"{d.get('dist', '')}: {params}"))
    for c in spec.correlations:
        rows.append((f"Correlation {humanise(c.a)} / {humanise(c.b)}", f"{c.rho:.2f}"))
    rows.append(("Copula", "Gaussian (inputs correlated through normal scores)"))
    for k, v in rows:
        row += 1
        ws.write_string(row, col, k, st.label)
        ws.write_string(row, col + 1, v, st.text)


def _fields(result):
    from finmodel.inputs.load import input_fields

    return input_fields(result.assumptions)


def _plain(v, unit: str) -> str:
    """A value as text for a label: 60,000 or 5%."""
    v = float(v)
    if unit in ("rate", "share"):
        return f"{v:.1%}".replace(".0%", "%")
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:,.3g}"


def _col(c: int) -> str:
    return chr(ord("A") + c)


def _num(ws, row, col, v, fmt) -> None:
    v = float(v)
    if np.isfinite(v):
        ws.write_number(row, col, v, fmt)
    else:
        ws.write_string(row, col, "n/a", fmt)
