"""The NPV bridge from mining: a live table on the Comparison sheet (mining's NPV, each
step, the sum and its check) and one waterfall chart implementation, drawn on Comparison
and on the Dashboard from the same helper rows.

The waterfall shows the converting strategy of highest NPV, picked live (``MATCH`` of the
largest NPV), so a changed input that makes another strategy best redraws the chart for
it. A column chart cannot draw a floating bar across zero, so each bar is split into an
invisible base and the parts above and below zero; the step itself is drawn
in green (an increase) or orange (a decrease), both decided by formulas, and its label's
number format carries the sign.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from xlsxwriter.utility import xl_rowcol_to_cell

from finmodel.excel.labels import strategy_labels

_MILLIONS = '#,##0,,'
#: Helper columns of the waterfall: value, running total before and after, and the three
#: stacked parts the chart draws.
(_VALUE, _BEFORE, _AFTER, _BASE, _ABOVE, _BELOW, _UP_ABOVE, _UP_BELOW, _DOWN_ABOVE,
 _DOWN_BELOW, _TOTAL) = range(2, 13)
_HEADS = ("Step", "Total before", "Total after", "Base (hidden)", "Part above zero",
          "Part below zero", "Increase above zero", "Increase below zero",
          "Decrease above zero", "Decrease below zero", "NPV bar")


@dataclass(frozen=True)
class Waterfall:
    """Where the waterfall's helper rows are: ``first``..``last`` on ``sheet`` (0-based
    rows; the label in column A), and the cell holding the chart's title."""

    sheet: str
    first: int
    last: int
    title_cell: str


def _cached(v: float) -> float | str:
    return v if math.isfinite(v) else "#N/A"


def write_bridge(ws, st, result, lay, row: int, others: list[str], by_key):
    """The live NPV bridge table on ``ws`` (Comparison), from ``row``. Returns the last row
    used and a function that writes the waterfall's helper rows from a row given (under
    the sheet's other tables, clear of its charts) and returns where they are; the
    function is None without a converting strategy."""
    from finmodel.models.strategies import BRIDGE

    if not others:
        return row, None
    keys = list(BRIDGE)
    names = strategy_labels(result)

    def summary(strategy: str, metric: str) -> str:
        _, r, c = lay.scalar_cells[by_key[(strategy, metric)].name]
        return f"Summary!{xl_rowcol_to_cell(r, c, True, True)}"

    def value(strategy: str, metric: str) -> float:
        return float(result.values[by_key[(strategy, metric)].name][0])

    ws.write_string(row, 0, "NPV bridge from mining (live: steps sum to the strategy's NPV)",
                    st.section)
    row += 1
    header = row
    ws.write_string(row, 0, "Step", st.header_left)
    ws.write_string(row, 1, "Unit", st.header_left)
    for j, s in enumerate(others):
        ws.write_string(row, 2 + j, names[s], st.header_wrap)
    ws.set_row(row, 26)
    first = row + 1
    labels = ["Keep mining: NPV"] + [BRIDGE[k] for k in keys]
    for i, label in enumerate(labels):
        r = first + i
        ws.write_string(r, 0, label, st.label)
        ws.write_string(r, 1, "USD m", st.unit)
        for j, s in enumerate(others):
            metric = "npv_usd" if i == 0 else f"bridge_{keys[i - 1]}_usd"
            who = "mining" if i == 0 else s
            ws.write_formula(r, 2 + j, f"={summary(who, metric)}", st.cell("USD"),
                             _cached(value(who, metric)))
    last = first + len(labels) - 1
    total_row, check_row = last + 1, last + 2
    ws.write_string(total_row, 0, "= Strategy NPV (mining NPV + steps)", st.label)
    ws.write_string(check_row, 0, "Check: minus the strategy's NPV (0)", st.label)
    for j, s in enumerate(others):
        rng = f"{xl_rowcol_to_cell(first, 2 + j)}:{xl_rowcol_to_cell(last, 2 + j)}"
        ws.write_string(total_row, 1, "USD m", st.unit)
        ws.write_formula(total_row, 2 + j, f"=SUM({rng})", st.cell("USD", bold=True),
                         _cached(value(s, "npv_usd")))
        ws.write_string(check_row, 1, "USD m", st.unit)
        ws.write_formula(check_row, 2 + j,
                         f"={xl_rowcol_to_cell(total_row, 2 + j)}-{summary(s, 'npv_usd')}",
                         st.cell("USD"), 0.0)

    return check_row, lambda at: _helper_rows(ws, st, at, others, names, keys, value, header,
                                              first, total_row)


def _helper_rows(ws, st, r: int, others, names, keys, value, header: int, first: int,
                 total_row: int) -> Waterfall:
    """The waterfall's helper rows from row ``r``: the strategy of highest NPV, picked
    live, and its bridge as bars."""
    from finmodel.models.strategies import BRIDGE_TITLES

    npvs = [value(s, "npv_usd") for s in others]
    pick = max(range(len(others)), key=lambda j: npvs[j] if math.isfinite(npvs[j]) else -1e300)
    end = 1 + len(others)
    heads = f"{xl_rowcol_to_cell(header, 2, True, True)}:{xl_rowcol_to_cell(header, end, True, True)}"
    totals = (f"{xl_rowcol_to_cell(total_row, 2, True, True)}:"
              f"{xl_rowcol_to_cell(total_row, end, True, True)}")
    ws.write_string(r, 0, "Waterfall chart helper: the converting strategy of highest NPV",
                    st.section)
    r += 1
    ws.write_string(r, 0, "Strategy shown (its column in the bridge above)", st.label)
    ws.write_string(r, 1, "count", st.unit)
    ws.write_formula(r, 2, f"=MATCH(MAX({totals}),{totals},0)", st.cell("count"), pick + 1)
    ws.write_formula(r, 3, f"=INDEX({heads},{xl_rowcol_to_cell(r, 2)})", st.text, names[others[pick]])
    pick_cell = xl_rowcol_to_cell(r, 2, True, True)
    r += 1
    ws.write_string(r, 0, "Chart title", st.label)
    title = f"NPV bridge: keep mining to {names[others[pick]]} (USD m)"
    ws.write_formula(r, 2, f'="NPV bridge: keep mining to "&{xl_rowcol_to_cell(r - 1, 3)}'
                     f'&" (USD m)"', st.text, title)
    title_cell = f"='{ws.name}'!{xl_rowcol_to_cell(r, 2, True, True)}"
    r += 1
    for c, head in zip(range(_VALUE, _TOTAL + 1), _HEADS):
        ws.write_string(r, c, head, st.header_wrap)
    ws.write_string(r, 0, "Bar", st.header_left)
    ws.write_string(r, 1, "Unit", st.header_left)
    ws.set_row(r, 26)
    top = r + 1
    steps = [value("mining", "npv_usd")] + [value(others[pick], f"bridge_{k}_usd")
                                           for k in keys]
    bars = ["Keep Mining NPV"] + [BRIDGE_TITLES[k] for k in keys] + ["Strategy NPV"]
    running = 0.0
    usd = st.cell("USD")
    for i, label in enumerate(bars):
        r = top + i
        ws.write_string(r, 0, label, st.label)
        ws.write_string(r, 1, "USD m", st.unit)
        c = {k: xl_rowcol_to_cell(r, k) for k in range(_VALUE, _TOTAL + 1)}
        total = i in (0, len(bars) - 1)  # mining's NPV and the strategy's stand on zero
        src_row = total_row if i == len(bars) - 1 else first + i
        src = (f"{xl_rowcol_to_cell(src_row, 2, False, True)}:"
               f"{xl_rowcol_to_cell(src_row, end, False, True)}")
        v = value(others[pick], "npv_usd") if i == len(bars) - 1 else steps[i]
        before = 0.0 if total else running
        after = before + v
        lo, hi = min(before, after), max(before, after)
        above = hi - lo if lo >= 0 else max(hi, 0.0)
        below = lo - hi if hi <= 0 else min(lo, 0.0)
        ws.write_formula(r, _VALUE, f"=INDEX({src},{pick_cell})", usd, _cached(v))
        if total:
            ws.write_number(r, _BEFORE, 0, usd)
        else:
            ws.write_formula(r, _BEFORE, f"={xl_rowcol_to_cell(r - 1, _AFTER)}", usd,
                             _cached(before))
        ws.write_formula(r, _AFTER, f"={c[_BEFORE]}+{c[_VALUE]}", usd, _cached(after))
        flo, fhi = f"MIN({c[_BEFORE]},{c[_AFTER]})", f"MAX({c[_BEFORE]},{c[_AFTER]})"
        ws.write_formula(r, _BASE, f"=IF({flo}>=0,{flo},IF({fhi}<=0,{fhi},0))", usd,
                         _cached(lo if lo >= 0 else (hi if hi <= 0 else 0.0)))
        ws.write_formula(r, _ABOVE, f"=IF({flo}>=0,{fhi}-{flo},MAX({fhi},0))", usd,
                         _cached(above))
        ws.write_formula(r, _BELOW, f"=IF({fhi}<=0,{flo}-{fhi},MIN({flo},0))", usd,
                         _cached(below))
        if total:
            for k in (_UP_ABOVE, _UP_BELOW, _DOWN_ABOVE, _DOWN_BELOW):
                ws.write_number(r, k, 0, usd)
            ws.write_formula(r, _TOTAL, f"={c[_ABOVE]}+{c[_BELOW]}", usd, _cached(v))
        else:
            up = v >= 0
            for k, part, cond, cached in (
                    (_UP_ABOVE, _ABOVE, ">=", above if up else 0.0),
                    (_UP_BELOW, _BELOW, ">=", below if up else 0.0),
                    (_DOWN_ABOVE, _ABOVE, "<", 0.0 if up else above),
                    (_DOWN_BELOW, _BELOW, "<", 0.0 if up else below)):
                ws.write_formula(r, k, f"=IF({c[_VALUE]}{cond}0,{c[part]},0)", usd,
                                 _cached(cached))
            ws.write_number(r, _TOTAL, 0, usd)
        running = after
    return Waterfall(ws.name, top, top + len(bars) - 1, title_cell)


def waterfall_chart(wb, w: Waterfall, width: int = 760, height: int = 360):
    """A new waterfall chart of the helper rows ``w`` (one chart object per sheet that
    shows it; XlsxWriter inserts a chart once)."""
    n = w.last - w.first + 1
    cats = [w.sheet, w.first, 0, w.last, 0]

    def col(c: int) -> list:
        return [w.sheet, w.first, c, w.last, c]

    chart = wb.add_chart({"type": "column", "subtype": "stacked"})
    chart.add_series({"name": "Base", "categories": cats, "values": col(_BASE),
                      "fill": {"none": True}, "border": {"none": True}, "gap": 60})
    # Each series' labels carry the sign of its steps (the bars hold sizes); a zero
    # part prints no label.
    for k, name, colour, fmt in (
            (_TOTAL, "NPV", "#9DC3E6", '#,##0,,;-#,##0,,;""'),
            (_UP_ABOVE, "Increase", "#A9D18E", '+#,##0,,;+#,##0,,;""'),
            (_UP_BELOW, "Increase (below zero)", "#A9D18E", '+#,##0,,;+#,##0,,;""'),
            (_DOWN_ABOVE, "Decrease", "#F4B183", '-#,##0,,;-#,##0,,;""'),
            (_DOWN_BELOW, "Decrease (below zero)", "#F4B183", '-#,##0,,;-#,##0,,;""')):
        chart.add_series({"name": name, "categories": cats, "values": col(k),
                          "fill": {"color": colour}, "border": {"none": True},
                          "data_labels": {"value": True, "num_format": fmt,
                                          "font": {"size": 8, "bold": True}}})
    chart.set_title({"name": w.title_cell, "name_font": {"size": 10}})
    chart.set_legend({"none": True})
    chart.set_x_axis({"num_font": {"size": 7}, "label_position": "low"})
    chart.set_y_axis({"name": "USD m", "num_format": _MILLIONS,
                      "name_font": {"size": 9, "bold": False},
                      "major_gridlines": {"visible": True, "line": {"color": "#D9D9D9"}}})
    chart.set_size({"width": width, "height": height})
    return chart
