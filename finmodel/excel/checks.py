"""The Checks sheet: one row per check (value, tolerance, flag), the master flag, and the
hidden snapshot of the inputs that tells whether the values solved in Python are current.

The checks themselves are model scalars (``finmodel.models.checks``), rendered by the
same formula writer as every line; this module only lays them out.
"""

from __future__ import annotations

from typing import Any

from xlsxwriter.utility import xl_rowcol_to_cell

from finmodel.engine.graph import Model
from finmodel.excel.formulas import FormulaWriter, Layout
from finmodel.models.checks import SOLVED_CURRENT

SHEET = "Checks"
SNAPSHOT_SHEET = "Snapshot"
#: Defined name of the master flag (1 when every check passes): for covers and headers.
MASTER_NAME = "checks_ok"
#: Defined name of the number of inputs changed since the solved values were computed.
STALE_NAME = "checks_inputs_changed"
FIRST_ROW = 5
FLAG_FORMAT = '[=1]"OK";[=0]"FAIL";General'
STALE_TEXT = "re-run finmodel to refresh the solved values"


def check_ids(model: Model) -> list[str]:
    """Ids of the model's checks, in the order they were defined."""
    return [n.name[len("checks."):-len(".value")] for n in model.scalars
            if n.sheet == SHEET and n.name.endswith(".value")]


def place(model: Model, lay: Layout) -> None:
    """Reserve the cells of every check scalar: value in C, tolerance in E, flag in F."""
    lay.scalar_cells["checks.all_ok"] = (SHEET, FIRST_ROW - 1, 2)
    for i, cid in enumerate(check_ids(model)):
        r = FIRST_ROW + i
        lay.scalar_cells[f"checks.{cid}.value"] = (SHEET, r, 2)
        lay.scalar_cells[f"checks.{cid}.tolerance"] = (SHEET, r, 4)
        lay.scalar_cells[f"checks.{cid}.ok"] = (SHEET, r, 5)


def master_flag_formula() -> str:
    """A text formula for a header: whether every check passes."""
    return f'=IF({MASTER_NAME}=1,"Checks: all pass","Checks: FAILED, see the Checks sheet")'


def master_flag_text(all_ok: bool) -> str:
    return "Checks: all pass" if all_ok else "Checks: FAILED, see the Checks sheet"


def write_master_flag(ws: Any, row: int, col: int, fmt: Any, all_ok: bool) -> None:
    """The master flag as a live text cell (a sheet's header)."""
    ws.write_formula(row, col, master_flag_formula(), fmt, master_flag_text(all_ok))


def stale_formula(otherwise: str = "") -> str:
    """A text formula beside a value solved in Python: a warning once any input changed."""
    other = otherwise.replace('"', '""')
    return f'=IF({STALE_NAME}>0,"{STALE_TEXT}","{other}")'


def write_checks(wb: Any, ws: Any, st: Any, model: Model, lay: Layout, fw: FormulaWriter,
                 val, inputs_box: tuple[int, int, int, int], define) -> None:
    """Write the Checks sheet. ``inputs_box`` (first row, first col, last row, last col) is
    the block of the Inputs sheet the hidden snapshot copies."""
    ws.write_string(0, 0, "Checks", st.title)
    ws.write_string(1, 0, "Live formulas, evaluated with the same expressions in Python "
                    "(JSON 'checks'); a value above its tolerance fails.", st.subtitle)
    for c, h in enumerate(["Check", "Unit", "Value", "Name", "Tolerance", "Flag"]):
        ws.write_string(3, c, h, st.header_left)
    flag = wb.add_format({**st.base, "bold": True, "num_format": FLAG_FORMAT,
                          "align": "center"})
    red = wb.add_format({"bg_color": "#F8CBAD", "font_color": "#9C0006"})
    green = wb.add_format({"bg_color": "#C6EFCE", "font_color": "#006100"})
    r0, c0, r1, c1 = inputs_box
    box = f"{xl_rowcol_to_cell(r0, c0, True, True)}:{xl_rowcol_to_cell(r1, c1, True, True)}"
    r = FIRST_ROW - 1
    ws.write_string(r, 0, f"All checks pass (master flag; defined name {MASTER_NAME})",
                    st.section)
    ws.write_string(r, 1, "flag", st.section)
    ws.write_formula(r, 2, fw.scalar_cell(model.nodes["checks.all_ok"]), flag,
                     val("checks.all_ok"))
    ws.write_string(r, 3, "checks.all_ok", st.name)
    define(MASTER_NAME, f"={SHEET}!{xl_rowcol_to_cell(r, 2, True, True)}")
    last = r
    for cid in check_ids(model):
        value = model.nodes[f"checks.{cid}.value"]
        _, r, _ = lay.scalar_cells[value.name]
        ws.write_string(r, 0, value.label, st.label)
        ws.write_string(r, 1, value.unit, st.unit)
        if cid == SOLVED_CURRENT:
            # Every cell of the Inputs block against its copy taken at export.
            f = f"=SUMPRODUCT((Inputs!{box}<>{SNAPSHOT_SHEET}!{box})*1)"
            define(STALE_NAME, f"={SHEET}!{xl_rowcol_to_cell(r, 2, True, True)}")
        else:
            f = fw.scalar_cell(value)
        ws.write_formula(r, 2, f, st.cell(value.unit), val(value.name))
        ws.write_string(r, 3, value.name, st.name)
        tol = model.nodes[f"checks.{cid}.tolerance"]
        ws.write_formula(r, 4, fw.scalar_cell(tol), st.cell(value.unit), val(tol.name))
        ok = model.nodes[f"checks.{cid}.ok"]
        ws.write_formula(r, 5, fw.scalar_cell(ok), flag, val(ok.name))
        last = r
    for col, rows in ((2, (FIRST_ROW - 1, FIRST_ROW - 1)), (5, (FIRST_ROW, last))):
        ws.conditional_format(rows[0], col, rows[1], col,
                              {"type": "cell", "criteria": "==", "value": 0, "format": red})
        ws.conditional_format(rows[0], col, rows[1], col,
                              {"type": "cell", "criteria": "==", "value": 1,
                               "format": green})
    ws.set_column(0, 0, 80)
    ws.set_column(1, 1, 10)
    ws.set_column(2, 2, 14)
    ws.set_column(3, 3, 34)
    ws.set_column(4, 5, 12)
    ws.freeze_panes(4, 0)


def write_snapshot(ws: Any, cells: dict[tuple[int, int], Any], case_json: str) -> None:
    """The hidden copy of the Inputs block, cell for cell, as it was at export; column B
    carries the case itself (JSON text, in chunks) for ``finmodel import``."""
    from finmodel.inputs.workbook_import import MARKER

    ws.write_string(0, 0, "Inputs as exported (the values solved in Python are current "
                    "while the Inputs sheet equals this copy)")
    ws.write_string(0, 1, MARKER)
    chunk = 30_000  # under Excel's 32,767 characters a cell
    for i in range(0, len(case_json), chunk):
        ws.write_string(1 + i // chunk, 1, case_json[i:i + chunk])  # text, never a formula
    for (r, c), v in cells.items():
        if isinstance(v, str):
            ws.write_string(r, c, v)
        else:
            ws.write_number(r, c, float(v))
    ws.hide()
