"""Sensitivity and Monte Carlo sheets: results computed in Python by re-evaluating the
model (one vectorised pass each), written as labelled values with charts."""

from __future__ import annotations

import numpy as np

NOTE = ("Computed in Python by re-evaluating the whole model for every variant in one "
        "vectorised pass; values, not formulas: run finmodel sensitivity again after "
        "changing inputs.")


def write_sensitivity(wb, ws, st, an) -> None:
    ws.write_string(0, 0, f"Sensitivity: {an.metric} of {an.strategy}", st.title)
    ws.write_string(1, 0, NOTE, st.subtitle)
    usd = st.cell("USD")
    row = 3
    if an.scenarios is not None:
        ws.write_string(row, 0, "Scenario sets", st.section)
        row += 1
        cols = list(an.scenarios.columns)
        ws.write_string(row, 0, "Scenario", st.header_left)
        for j, (s, m) in enumerate(cols):
            ws.write_string(row, 1 + j, f"{s}: {m}", st.header)
        for name, values in an.scenarios.iterrows():
            row += 1
            ws.write_string(row, 0, str(name), st.label)
            for j, v in enumerate(values):
                _num(ws, row, 1 + j, v, usd)
        row += 2
    if an.tornado is not None:
        t = an.tornado
        ws.write_string(row, 0, f"Tornado (base {an.metric}: {t.attrs['base']:,.0f})",
                        st.section)
        row += 1
        heads = ["Input", "Base value", "Low value", "High value", f"{an.metric} at low",
                 f"{an.metric} at high", "Swing"]
        for j, h in enumerate(heads):
            ws.write_string(row, j, h, st.header if j else st.header_left)
        first = row + 1
        for _, r in t.iterrows():
            row += 1
            ws.write_string(row, 0, r.input, st.label)
            for j, key in enumerate(("base_value", "low_value", "high_value"), start=1):
                _num(ws, row, j, r[key], st.cell("ratio"))
            for j, key in enumerate(("metric_low", "metric_high", "swing"), start=4):
                _num(ws, row, j, r[key], usd)
        last = row
        chart = wb.add_chart({"type": "bar"})
        for col, name in ((4, "at low"), (5, "at high")):
            chart.add_series({"name": name, "categories": [ws.name, first, 0, last, 0],
                              "values": [ws.name, first, col, last, col]})
        chart.set_title({"name": f"Tornado: {an.metric} of {an.strategy}"})
        chart.set_y_axis({"reverse": True})
        chart.set_x_axis({"num_format": '#,##0,,"M"'})
        chart.set_size({"width": 720, "height": 60 + 28 * len(t)})
        ws.insert_chart(3, 9, chart)
        row += 2
    if an.grid is not None:
        g = an.grid
        ws.write_string(row, 0, f"Grid: {an.metric} of {an.strategy} ({g.index.name} down, "
                        f"{g.columns.name} across)", st.section)
        row += 1
        ws.write_string(row, 0, f"{g.index.name} \\ {g.columns.name}", st.header_left)
        for j, x in enumerate(g.columns):
            _num(ws, row, 1 + j, x, st.header)
        top = row + 1
        for y, values in g.iterrows():
            row += 1
            _num(ws, row, 0, y, st.cell("ratio", bold=True))
            for j, v in enumerate(values):
                _num(ws, row, 1 + j, v, usd)
        ws.conditional_format(top, 1, row, len(g.columns), {"type": "3_color_scale",
                                                             "min_color": "#F8696B",
                                                             "mid_color": "#FFEB84",
                                                             "max_color": "#63BE7B"})
    ws.set_column(0, 0, 44)
    ws.set_column(1, 8, 16)


def write_monte_carlo(wb, ws, st, an) -> None:
    mc = an.monte_carlo
    ws.write_string(0, 0, f"Monte Carlo: {len(mc.samples):,} scenarios, seed {mc.seed}",
                    st.title)
    ws.write_string(1, 0, NOTE, st.subtitle)
    summary = mc.summary(an.metric)
    row = 3
    ws.write_string(row, 0, f"{an.metric} by strategy", st.header_left)
    for j, s in enumerate(summary.columns):
        ws.write_string(row, 1 + j, s, st.header)
    for key, values in summary.iterrows():
        row += 1
        ws.write_string(row, 0, str(key), st.label)
        unit = "share" if key.startswith("prob") else "flag" if key == "missing" else "USD"
        for j, v in enumerate(values):
            _num(ws, row, 1 + j, v, st.cell(unit))
    # Histogram of each strategy's metric on shared bins.
    values = mc.samples.xs(an.metric, axis=1, level="metric")
    finite = values.to_numpy()[np.isfinite(values.to_numpy())]
    edges = np.linspace(finite.min(), finite.max(), 31) if finite.size else np.array([0, 1])
    row += 2
    ws.write_string(row, 0, "Histogram: bin centre", st.header_left)
    for j, s in enumerate(values.columns):
        ws.write_string(row, 1 + j, f"{s}: scenarios", st.header)
    first = row + 1
    centres = (edges[:-1] + edges[1:]) / 2
    counts = {s: np.histogram(values[s].dropna(), bins=edges)[0] for s in values.columns}
    for i, c in enumerate(centres):
        row += 1
        _num(ws, row, 0, c, st.cell("USD"))
        for j, s in enumerate(values.columns):
            ws.write_number(row, 1 + j, int(counts[s][i]), st.cell("flag"))
    chart = wb.add_chart({"type": "column"})
    for j, s in enumerate(values.columns):
        chart.add_series({"name": s, "categories": [ws.name, first, 0, row, 0],
                          "values": [ws.name, first, 1 + j, row, 1 + j], "gap": 10})
    chart.set_title({"name": f"Distribution of {an.metric}"})
    chart.set_x_axis({"num_format": '#,##0,,"M"'})
    chart.set_size({"width": 760, "height": 340})
    ws.insert_chart(3, 2 + len(values.columns), chart)
    ws.set_column(0, 0, 30)
    ws.set_column(1, 1 + len(values.columns), 16)


def _num(ws, row, col, v, fmt) -> None:
    v = float(v)
    if np.isfinite(v):
        ws.write_number(row, col, v, fmt)
    else:
        ws.write_string(row, col, "n/a", fmt)
