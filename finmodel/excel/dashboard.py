"""The Dashboard sheet: the decision in USD millions, live from the model's defined names,
with its charts and the key inputs."""

from __future__ import annotations

import math

from finmodel.excel.bridge import Waterfall, waterfall_chart
from finmodel.excel.cover import checks_flag
from finmodel.excel.formulas import TIMELINE_SHEET
from finmodel.excel.labels import input_label, shown_unit, strategy_labels

#: The decision's metrics, in order; those the model has are shown (MIRR, profitability
#: index and the like appear as soon as the model defines them).
DECISION = ("npv_usd", "npv_vs_mining_usd", "project_irr", "mirr", "profitability_index",
            "incremental_irr", "incremental_mirr", "moic", "payback_years", "peak_funding_usd")

#: Inputs that move the answer most, shown with their values (links to Inputs).
KEY_INPUTS = ("network_btc_price_usd", "network_hashrate_eh_s", "network_hashrate_growth_rate",
              "power_ppa_price_usd_per_mwh", "hosting_lease_rate_usd_per_kw_month",
              "hosting_term_years", "conversion_electrical_usd_per_mw",
              "conversion_cooling_usd_per_mw", "conversion_building_usd_per_mw",
              "conversion_fit_out_usd_per_mw", "case_discount_rate", "case_horizon_years")

_MILLIONS = '#,##0,,'


def write_dashboard(wb, ws, st, result, lay, first_col: int, inputs: dict,
                    waterfall: Waterfall | None = None) -> None:
    """``inputs`` maps defined names of inputs to (field path, unit, source or None);
    ``waterfall`` is where the NPV bridge's chart rows are (on Comparison), if any."""
    labels = strategy_labels(result)
    strategies = result.strategies
    metrics = {(x.strategy, x.metric): x for x in result.model.metrics()}
    ws.hide_gridlines(2)
    ws.set_column(0, 0, 40)
    ws.set_column(1, 1, 9)
    ws.set_column(2, 1 + len(strategies), 17)
    ws.set_column(2 + len(strategies), 2 + len(strategies), 22)
    ws.write_string(0, 0, "Dashboard: the decision in USD millions", st.title)
    ws.write_string(1, 0, result.assumptions.case.name, st.subtitle)
    ws.write_string(2, 0, "Checks:", st.unit)
    checks_flag(ws, st, 2, 1, wb, result)

    top = 4
    ws.write_string(top, 0, "Metric", st.header_left)
    ws.write_string(top, 1, "Unit", st.header_left)
    for j, s in enumerate(strategies):
        ws.write_string(top, 2 + j, labels[s], st.header_wrap)
    ws.set_row(top, 26)
    row = top
    rows: dict[str, int] = {}
    for key in DECISION:
        present = [s for s in strategies if (s, key) in metrics]
        if not present:
            continue
        row += 1
        rows[key] = row
        x = metrics[(present[0], key)]
        ws.write_string(row, 0, x.label, st.label)
        ws.write_string(row, 1, shown_unit(x.unit), st.unit)
        for j, s in enumerate(strategies):
            m = metrics.get((s, key))
            if m is None:
                ws.write_string(row, 2 + j, "", st.label)
                continue
            v = float(result.values[m.name][0])
            fmt = st.cell(m.unit, "link", bold=key == "npv_usd")
            # A missing metric (an IRR with no root) reads "n/a"; its reason is on Summary.
            ws.write_formula(row, 2 + j, f'=IFERROR({s}_{key},"n/a")', fmt,
                             v if math.isfinite(v) else "n/a")
    row += 1
    ws.write_string(row, 0, "n/a: the metric does not mean what its name says for that "
                    "strategy's cash flows (reason on Summary).", st.name)

    # Key inputs, linked to the Inputs sheet.
    row += 2
    ws.write_string(row, 0, "Key inputs", st.header_left)
    ws.write_string(row, 1, "Unit", st.header_left)
    ws.write_string(row, 2, "Value", st.header)
    ws.write_string(row, 3, "Source", st.header_left)
    for name in KEY_INPUTS:
        if name not in inputs:
            continue
        path, unit, value, source = inputs[name]
        row += 1
        ws.write_string(row, 0, input_label(path), st.label)
        ws.write_string(row, 1, shown_unit(unit), st.unit)
        ws.write_formula(row, 2, f"={name}", st.cell(unit, "link"), float(value))
        ws.write_string(row, 3, source or "Inputs sheet", st.name)

    bridge_row = row + 2  # the waterfall goes under the tables, beside the other charts
    # Charts: NPV by strategy, value of converting, cumulative cash over time.
    chart_col = 4 + len(strategies)
    npv = wb.add_chart({"type": "column"})
    npv.add_series({"name": "NPV",
                    "categories": [ws.name, top, 2, top, 1 + len(strategies)],
                    "values": [ws.name, rows["npv_usd"], 2, rows["npv_usd"],
                               1 + len(strategies)],
                    "data_labels": {"value": True, "num_format": _MILLIONS},
                    "fill": {"color": "#1F3864"}, "invert_if_negative": False})
    # Bars are read by their length: an axis that starts above zero (the chart engines'
    # automatic scale when every NPV is positive) makes 166 vs 175 look like 1 to 3.
    summary = result.summary_values()
    npvs = [summary[s].get("npv_usd", float("nan")) for s in strategies]
    _axes(npv, "NPV by strategy (USD m)", None, "USD m",
          y_min=0 if min(npvs) >= 0 else None)
    npv.set_x_axis({"label_position": "low"})
    npv.set_legend({"none": True})
    npv.set_size({"width": 520, "height": 260})
    ws.insert_chart(top, chart_col, npv)

    line = wb.add_chart({"type": "line"})
    n = lay.n_periods
    for s in strategies:
        sheet, r = lay.line_rows[f"{s}.cumulative_fcf_usd"]
        line.add_series({
            "name": labels[s],
            "categories": [TIMELINE_SHEET, lay.time_rows["end"], first_col,
                           lay.time_rows["end"], first_col + n - 1],
            "values": [sheet, r, first_col, r, first_col + n - 1],
            "line": {"width": 1.75}})
    _axes(line, "Cumulative free cash flow by strategy (USD m)", "Month end", "USD m")
    line.set_x_axis({"name": "Month end", "date_axis": True, "num_format": "yyyy",
                     "major_unit": 2, "major_unit_type": "years", "label_position": "low",
                     "name_font": {"size": 9, "bold": False}})
    line.set_legend({"position": "bottom"})
    line.set_size({"width": 520, "height": 280})
    ws.insert_chart(top + 15, chart_col, line)
    if "npv_vs_mining_usd" in rows:
        others = [j for j, s in enumerate(strategies) if (s, "npv_vs_mining_usd") in metrics]
        if others:
            j0, j1 = min(others), max(others)
            bar = wb.add_chart({"type": "bar"})
            r = rows["npv_vs_mining_usd"]
            bar.add_series({"name": "Value of converting",
                            "categories": [ws.name, top, 2 + j0, top, 2 + j1],
                            "values": [ws.name, r, 2 + j0, r, 2 + j1],
                            "data_labels": {"value": True, "num_format": _MILLIONS},
                            "fill": {"color": "#00804A"}})
            bar.set_title({"name": "Value of converting: NPV above keeping mining (USD m)",
                           "name_font": {"size": 10}})
            bar.set_x_axis({"name": "USD m", "num_format": _MILLIONS,
                            "name_font": {"size": 9, "bold": False}})
            bar.set_y_axis({"label_position": "low"})
            bar.set_legend({"none": True})
            bar.set_size({"width": 520, "height": 200})
            ws.insert_chart(top + 30, chart_col, bar)
    if waterfall is not None:
        # The same chart as on Comparison, from the same live helper rows.
        ws.write_string(bridge_row, 0, "NPV bridge from mining (table on Comparison)",
                        st.header_left)
        ws.insert_chart(bridge_row + 1, 0, waterfall_chart(wb, waterfall, 720, 330))


def _axes(chart, title: str, x_name: str | None, y_name: str,
          y_min: float | None = None) -> None:
    chart.set_title({"name": title, "name_font": {"size": 10}})
    y = {"name": y_name, "num_format": _MILLIONS, "name_font": {"size": 9, "bold": False},
         "major_gridlines": {"visible": True, "line": {"color": "#D9D9D9"}}}
    if y_min is not None:
        y["min"] = y_min
    chart.set_y_axis(y)
    if x_name:
        chart.set_x_axis({"name": x_name, "name_font": {"size": 9, "bold": False}})
