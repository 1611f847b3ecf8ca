"""The Inputs sheet: live inputs (data validation of their bounds or allowed words), the
scenario selector, sources, and the structural inputs shown apart, greyed and locked.

Columns: A defined name, B description, C unit, D source, E value (F onwards: the rest of
a yearly path). An input a scenario of ``[analysis.scenarios]`` changes gets its editable
base value and one column per scenario in the scenario block at the right; its value in
E is then ``INDEX`` over that block by the selected scenario. The sheet is protected
without a password: only the live input cells can be typed in.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from xlsxwriter.utility import xl_col_to_name, xl_rowcol_to_cell

from finmodel.conventions import to_serial
from finmodel.inputs.load import InputField, input_fields, structural_reason

SHEET = "Inputs"
HEADER_ROW = 3
FIRST_ROW = 4
VALUE_COL = 4  # E
SOURCE_COL = 3  # D
SELECTOR = (2, VALUE_COL)  # E3
SELECTED_NAME = "scenario_selected"
INDEX_NAME = "scenario_index"
BASE_SCENARIO = "base"
STRUCTURAL_TITLE = "Structural inputs: change in the case file and re-run finmodel"
HEADERS = ["Defined name", "Description", "Unit", "Source", "Value"]


@dataclass
class InputsLayout:
    """Where the Inputs sheet put things (for the snapshot, the importer and tests)."""

    #: path -> (row, col) of the value the model reads (first element of a path).
    value_cells: dict[str, tuple[int, int]] = field(default_factory=dict)
    #: path -> (row, col) of the cell an analyst edits (the base column for an input a
    #: scenario changes); None for a structural input.
    edit_cells: dict[str, tuple[int, int]] = field(default_factory=dict)
    structural: dict[str, str] = field(default_factory=dict)
    #: scenario name -> column of its values in the scenario block ("base" first).
    scenario_cols: dict[str, int] = field(default_factory=dict)
    #: every cell of the block the snapshot copies: (row, col) -> value at export.
    cells: dict[tuple[int, int], Any] = field(default_factory=dict)

    @property
    def box(self) -> tuple[int, int, int, int]:
        rows = [r for r, _ in self.cells]
        cols = [c for _, c in self.cells]
        return min(rows), min(cols), max(rows), max(cols)


def _serial(v: Any) -> float | str:
    if isinstance(v, dt.date):
        return float(to_serial(v))
    if isinstance(v, str):
        return v
    return float(v)


def _rule(f: InputField, cell: str) -> tuple[str, str]:
    """(custom validation formula, what it allows) for a numeric input cell."""
    parts = [f"{cell}{op}{limit!r}" for op, limit in f.bounds]
    if f.unit == "YYYY-MM":
        return f"AND(ISNUMBER({cell}),DAY({cell})=1)", "the first day of a month"
    if f.unit == "flag":
        return f"OR({cell}=0,{cell}=1)", "1 (yes) or 0 (no)"
    if f.integer:
        parts.append(f"INT({cell})={cell}")
    if not parts:
        parts.append(f"ISNUMBER({cell})")
    if isinstance(f.value, list):
        parts.append(f"{cell}>0")
    said = " and ".join(f"{op} {limit:g}" for op, limit in f.bounds) or "a number"
    if f.integer:
        said += ", a whole number"
    return f"AND({','.join(parts)})", said


def write_inputs(wb: Any, ws: Any, st: Any, result: Any, define) -> InputsLayout:
    """Write the Inputs sheet of ``result``'s case; ``define(name, ref)`` adds a name."""
    a = result.assumptions
    lay = InputsLayout()
    scenarios: dict[str, dict[str, float]] = dict(a.analysis.scenarios)
    sources: dict[str, str] = dict(a.input_sources)
    overridden = {p for changes in scenarios.values() for p in changes}
    fields = input_fields(a)
    width = max([len(f.value) for f in fields if isinstance(f.value, list)] + [1])
    block = VALUE_COL + width + 1  # first column of the scenario block
    if scenarios:
        lay.scenario_cols = {n: block + i for i, n in enumerate([BASE_SCENARIO, *scenarios])}

    base = {**st.base}
    unlocked = {"locked": False, "font_color": "#0000FF", "bg_color": "#FFF2CC", "border": 1,
                "border_color": "#BFBFBF"}
    fmts: dict[tuple[str, str], Any] = {}

    def fmt(unit: str, kind: str) -> Any:
        key = (unit, kind)
        if key not in fmts:
            from finmodel.excel.labels import number_format

            props = {**base, "num_format": number_format(unit)}
            if kind == "input":
                props.update(unlocked)
            elif kind == "structural":
                props.update(font_color="#595959", bg_color="#E7E6E6", border=1,
                             border_color="#BFBFBF", italic=True)
            elif kind == "scenario_blank":
                props.update(unlocked, bg_color="#FFFBEB")
            fmts[key] = wb.add_format(props)
        return fmts[key]

    ws.write_string(0, 0, "Inputs", st.title)
    ws.write_string(1, 0, "Blue on yellow: live inputs (every formula reacts; typing is "
                    "checked against the case schema's bounds). Grey: structural inputs. "
                    "Each input's defined name is its field path with dots as underscores.",
                    st.subtitle)
    for c, h in enumerate(HEADERS):
        ws.write_string(HEADER_ROW, c, h, st.header_left)
    lay.cells[(HEADER_ROW, VALUE_COL)] = HEADERS[VALUE_COL]  # the snapshot copies E4 on
    if scenarios:
        names = list(lay.scenario_cols)
        ws.write_string(SELECTOR[0], 0, "Active scenario (pick from the list; "
                        "[analysis.scenarios] of the case)", st.section)
        ws.write_string(*SELECTOR, BASE_SCENARIO, fmt("text", "input"))
        lay.cells[SELECTOR] = BASE_SCENARIO
        ws.data_validation(*SELECTOR, *SELECTOR, {
            "validate": "list", "source": names, "error_title": "Scenario",
            "error_message": "Pick one of: " + ", ".join(names)})
        first, last = block, block + len(names) - 1
        hdr = (f"{xl_rowcol_to_cell(HEADER_ROW, first, True, True)}:"
               f"{xl_rowcol_to_cell(HEADER_ROW, last, True, True)}")
        ws.write_formula(SELECTOR[0], SELECTOR[1] + 1,
                         f"=MATCH({xl_rowcol_to_cell(*SELECTOR, True, True)},{hdr},0)",
                         st.name, 1)
        lay.cells[(SELECTOR[0], SELECTOR[1] + 1)] = 1.0
        define(SELECTED_NAME, f"={SHEET}!{xl_rowcol_to_cell(*SELECTOR, True, True)}")
        define(INDEX_NAME, f"={SHEET}!{xl_rowcol_to_cell(SELECTOR[0], SELECTOR[1] + 1, True, True)}")
        for n, c in lay.scenario_cols.items():
            ws.write_string(HEADER_ROW, c, n, st.header)  # names: [a-z...] table keys
            lay.cells[(HEADER_ROW, c)] = n

    live = [f for f in fields if structural_reason(f) is None]
    fixed = [f for f in fields if structural_reason(f) is not None]
    row = FIRST_ROW
    section = None
    for f in live:
        if f.section != section:
            section = f.section
            ws.write_string(row, 0, f"[{section}]", st.section)
            ws.write_blank(row, 1, None, st.section)
            row += 1
        _label(ws, st, row, f, sources)
        _live_value(ws, row, f, fmt, lay, block, scenarios, overridden, define)
        row += 1
    row += 1
    ws.write_string(row, 0, STRUCTURAL_TITLE, st.section)
    for c in range(1, VALUE_COL + 1):
        ws.write_blank(row, c, None, st.section)
    row += 1
    for f in fixed:
        reason = structural_reason(f)
        lay.structural[f.path] = reason
        _label(ws, st, row, f, sources)
        cell = fmt(f.unit, "structural")
        values = f.value if isinstance(f.value, list) else [f.value]
        for k, v in enumerate(values):
            sv = _serial(v)
            if isinstance(sv, str):
                ws.write_string(row, VALUE_COL + k, sv, cell)  # text stays text
            else:
                ws.write_number(row, VALUE_COL + k, sv, cell)
            lay.cells[(row, VALUE_COL + k)] = sv
        ws.write_comment(row, VALUE_COL, f"Structural ({reason}): change it in the case "
                         "file and re-run finmodel.", {"visible": False})
        lay.value_cells[f.path] = (row, VALUE_COL)
        _name(f, row, len(values), define)
        row += 1
    ws.set_column(0, 0, 38)
    ws.set_column(1, 1, 64)
    ws.set_column(2, 2, 12)
    ws.set_column(3, 3, 16)
    ws.set_column(VALUE_COL, VALUE_COL, 16)
    ws.set_column(VALUE_COL + 1, VALUE_COL + width, 11)
    if scenarios:
        ws.set_column(block, block + len(scenarios), 14)
    ws.freeze_panes(FIRST_ROW, 0)
    ws.protect("", {"format_columns": True, "format_rows": True})
    return lay


def _label(ws, st, row: int, f: InputField, sources: dict[str, str]) -> None:
    ws.write_string(row, 0, f.defined_name, st.name)
    ws.write_string(row, 1, f.description, st.label)
    ws.write_string(row, 2, f.unit, st.unit)
    if f.path in sources:
        ws.write_string(row, SOURCE_COL, sources[f.path], st.unit)  # text, never a formula


def _name(f: InputField, row: int, n: int, define) -> None:
    first = xl_rowcol_to_cell(row, VALUE_COL, True, True)
    ref = first if n == 1 and not isinstance(f.value, list) else \
        f"{first}:{xl_rowcol_to_cell(row, VALUE_COL + n - 1, True, True)}"
    define(f.defined_name, f"={SHEET}!{ref}")


def _live_value(ws, row: int, f: InputField, fmt, lay: InputsLayout, block: int,
                scenarios: dict[str, dict[str, float]], overridden: set[str], define) -> None:
    values = f.value if isinstance(f.value, list) else [f.value]
    cell_fmt = fmt(f.unit, "input")

    def put(r: int, c: int, v: Any, style=cell_fmt) -> None:
        sv = _serial(v)
        if isinstance(sv, str):
            ws.write_string(r, c, sv, style)
        else:
            ws.write_number(r, c, sv, style)
        lay.cells[(r, c)] = sv
        _validate(ws, r, c, f)

    if f.path in overridden:
        # The value the model reads is the selected scenario's, else the base.
        cols = list(lay.scenario_cols.values())
        rng = (f"{xl_rowcol_to_cell(row, cols[0], False, True)}:"
               f"{xl_rowcol_to_cell(row, cols[-1], False, True)}")
        pick = f"INDEX({rng},1,{INDEX_NAME})"
        base_ref = xl_rowcol_to_cell(row, cols[0], False, True)
        v = _serial(f.value)
        ws.write_formula(row, VALUE_COL, f'=IF({pick}="",{base_ref},{pick})',
                         fmt(f.unit, "calc"), v)
        lay.cells[(row, VALUE_COL)] = v
        put(row, cols[0], f.value)
        for name, col in list(lay.scenario_cols.items())[1:]:
            if f.path in scenarios[name]:
                put(row, col, float(scenarios[name][f.path]))
            else:
                ws.write_blank(row, col, None, fmt(f.unit, "scenario_blank"))
                _validate(ws, row, col, f)
        lay.edit_cells[f.path] = (row, cols[0])
    else:
        for k, v in enumerate(values):
            put(row, VALUE_COL + k, v)
        lay.edit_cells[f.path] = (row, VALUE_COL)
    lay.value_cells[f.path] = (row, VALUE_COL)
    _name(f, row, len(values), define)


def _validate(ws, row: int, col: int, f: InputField) -> None:
    if f.choices is not None:
        ws.data_validation(row, col, row, col, {
            "validate": "list", "source": list(f.choices), "error_title": f.path,
            "error_message": f"{f.path}: one of " + ", ".join(f.choices)})
        return
    if isinstance(f.value, str):
        return
    cell = f"{xl_col_to_name(col)}{row + 1}"
    formula, said = _rule(f, cell)
    ws.data_validation(row, col, row, col, {
        "validate": "custom", "value": "=" + formula, "ignore_blank": True,
        "error_title": f.path[:32], "error_message": f"{f.path}: expected {said}"[:255]})
