"""Reading an edited finmodel workbook back into a validated case.

The workbook carries, on its hidden Snapshot sheet, the case it was exported from (as
JSON text) and a copy of the Inputs sheet as exported. The importer starts from that case,
takes every live input cell of the Inputs sheet (and the scenario columns), refuses edited
structural inputs, and validates the result with the case schema.

Untrusted files are checked before any XML is parsed: the zip's size, member count and
compression ratio (a zip bomb), and every XML part for a DOCTYPE (entity expansion, the
"billion laughs"); openpyxl then reads in read-only mode through defusedxml, and never
more rows or columns than an Inputs sheet has.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finmodel.errors import InputError
from finmodel.inputs.load import InputField, input_fields, parse_assumptions, \
    structural_reason
from finmodel.inputs.schema import Assumptions

MARKER = "finmodel case snapshot v1"
MAX_FILE_BYTES = 50_000_000
MAX_UNCOMPRESSED_BYTES = 300_000_000
MAX_RATIO = 200  # compressed -> uncompressed, per member over 1 MB
MAX_MEMBERS = 2_000
MAX_INPUT_ROWS = 2_000
MAX_INPUT_COLS = 200
MAX_CASE_CHARS = 5_000_000


@dataclass(frozen=True)
class Change:
    """One input an analyst changed: field path, value at export, value now."""

    path: str
    old: Any
    new: Any


def _refuse(path: Path, why: str) -> InputError:
    return InputError(f"{path}: {why}")


def check_archive(path: Path) -> None:
    """Refuse, before parsing any XML, a file that is not a plausible xlsx: too big, a
    zip bomb, or XML with a DOCTYPE (entity expansion)."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise _refuse(path, f"cannot read the workbook ({exc.strerror})") from None
    if size > MAX_FILE_BYTES:
        raise _refuse(path, f"{size:,} bytes: larger than any finmodel workbook "
                      f"({MAX_FILE_BYTES:,} at most)")
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
            if len(infos) > MAX_MEMBERS:
                raise _refuse(path, f"{len(infos)} parts in the archive: not a finmodel "
                              "workbook")
            total = sum(i.file_size for i in infos)
            if total > MAX_UNCOMPRESSED_BYTES:
                raise _refuse(path, f"expands to {total:,} bytes: refused (a zip bomb?)")
            for i in infos:
                if i.file_size > 1_000_000 and i.file_size > MAX_RATIO * max(i.compress_size, 1):
                    raise _refuse(path, f"{i.filename} expands {i.file_size / max(i.compress_size, 1):,.0f}"
                                  " times: refused (a zip bomb?)")
            for i in infos:
                if i.filename.endswith((".xml", ".rels", ".vml")):
                    with z.open(i) as fh:
                        head = fh.read(4096)
                    if b"<!DOCTYPE" in head.upper() or b"<!ENTITY" in head.upper():
                        raise _refuse(path, f"{i.filename} declares a DOCTYPE or entities:"
                                      " refused (entity expansion)")
                    # Without its size record a reader must scan the whole sheet to size
                    # it (openpyxl does, even in read-only mode): refuse, do not scan.
                    if i.filename.startswith("xl/worksheets/sheet") and \
                            b"<dimension" not in head:
                        raise _refuse(path, f"{i.filename} has no dimension record: not a "
                                      "workbook finmodel or a spreadsheet program wrote")
    except zipfile.BadZipFile:
        raise _refuse(path, "not an xlsx workbook (not a zip archive)") from None


def read_workbook(path: str | Path) -> tuple[Assumptions, list[Change]]:
    """The case an edited finmodel workbook describes, and what was changed in it.

    Raises
    ------
    InputError
        The file is not a finmodel workbook, a structural input was edited, or a value
        breaks the case schema (the message names the field, the value and the rule).
    """
    import openpyxl

    p = Path(path)
    check_archive(p)
    try:
        wb = openpyxl.load_workbook(p, read_only=True, data_only=True, keep_links=False)
    except Exception as exc:  # openpyxl raises many types for a damaged file
        raise _refuse(p, f"not a readable xlsx workbook ({type(exc).__name__}: {exc})") \
            from None
    try:
        if "Inputs" not in wb.sheetnames or "Snapshot" not in wb.sheetnames:
            raise _refuse(p, "not a finmodel workbook (no Inputs and Snapshot sheets)")
        original, snapshot = _case_of(p, wb["Snapshot"])
        inputs = _grid(wb["Inputs"])
        if original.tax is not None and "Constants" in wb.sheetnames:
            _check_tax_tables(p, _grid(wb["Constants"]))
    finally:
        wb.close()
    return _apply(p, original, inputs, snapshot)


def _check_tax_tables(p: Path, grid: dict[tuple[int, int], Any]) -> None:
    """Refuse edited MACRS rates: they are live cells of the Constants sheet (the Tax
    sheet's formulas read them), but IRS tables, not inputs of a case, so an import that
    dropped the edit would re-run a different model from the workbook the analyst saw."""
    from finmodel.excel.workbook import MACRS_FIRST_COL
    from finmodel.models.tax import macrs_tables

    rows = {v: r for (r, c), v in grid.items() if c == 0 and isinstance(v, str)}
    for name, rates in macrs_tables().items():
        r = rows.get(name)
        if r is None:
            continue  # not a sheet finmodel wrote with tables; nothing was edited there
        for k, rate in enumerate(rates):
            now = grid.get((r, MACRS_FIRST_COL + k))
            # A workbook keeps 16 significant digits (24.49 / 100 reads back as 0.2449).
            if not (isinstance(now, (int, float)) and not isinstance(now, bool)
                    and math.isclose(now, rate, rel_tol=1e-12, abs_tol=1e-15)):
                raise _refuse(p, f"Constants: {name} edited in the workbook (year {k + 1}: "
                              f"{_show(rate)} -> {_show(now)}); the MACRS rates are IRS "
                              "Publication 946's tables, not an input of a case file, so "
                              "an import cannot carry them: restore them, or change "
                              "tax.depreciation or the asset lives on Inputs")


def _grid(ws) -> dict[tuple[int, int], Any]:
    """Cells of a sheet (0-based row, col) -> value, within the size of an Inputs sheet."""
    out: dict[tuple[int, int], Any] = {}
    for r, row in enumerate(ws.iter_rows(max_row=MAX_INPUT_ROWS, max_col=MAX_INPUT_COLS,
                                         values_only=True)):
        for c, v in enumerate(row):
            if v is not None:
                out[(r, c)] = v
    return out


def _case_of(p: Path, ws) -> tuple[Assumptions, dict[tuple[int, int], Any]]:
    grid = _grid(ws)
    if grid.get((0, 1)) != MARKER:
        raise _refuse(p, "not a finmodel workbook (its Snapshot sheet carries no case)")
    text, r = [], 1
    while isinstance(grid.get((r, 1)), str):
        text.append(grid[(r, 1)])
        r += 1
    raw = "".join(text)
    if len(raw) > MAX_CASE_CHARS:
        raise _refuse(p, "the embedded case is too long")
    try:
        data = json.loads(raw)
    except ValueError:
        raise _refuse(p, "the case embedded in the workbook is damaged") from None
    return parse_assumptions(data, source=f"{p} (case at export)"), grid


def _apply(p: Path, a: Assumptions, inputs: dict, snapshot: dict
           ) -> tuple[Assumptions, list[Change]]:
    from finmodel.excel.inputs_sheet import HEADER_ROW, VALUE_COL

    rows = {v: r for (r, c), v in inputs.items() if c == 0 and isinstance(v, str)}
    header = {v: c for (r, c), v in inputs.items() if r == HEADER_ROW and isinstance(v, str)}
    scenario_names = list(a.analysis.scenarios)
    overridden = {q for s in a.analysis.scenarios.values() for q in s}
    data = a.model_dump()
    scenarios = {k: dict(v) for k, v in a.analysis.scenarios.items()}
    changes: list[Change] = []
    for f in input_fields(a):
        r = rows.get(f.defined_name)
        if r is None:
            raise _refuse(p, f"the Inputs sheet has no row for {f.path} ({f.defined_name})")
        n = len(f.value) if isinstance(f.value, list) else 1
        if structural_reason(f) is not None:
            for k in range(n):
                now, then = inputs.get((r, VALUE_COL + k)), snapshot.get((r, VALUE_COL + k))
                if not _same(now, then):
                    raise _refuse(p, f"{f.path}: structural input edited in the workbook "
                                  f"({_show(then)} -> {_show(now)}); it shapes the "
                                  "workbook: change it in the case file and re-run finmodel")
            continue
        col = header.get("base", VALUE_COL) if f.path in overridden else VALUE_COL
        cells = [inputs.get((r, col + k)) for k in range(n)]
        new = _value(p, f, cells)
        if not _same_value(new, _case_value(f)):
            changes.append(Change(f.path, _case_value(f), new))
            _set(data, f.path, new)
        for name in scenario_names if f.path in overridden else ():
            c = header.get(name)
            cell = inputs.get((r, c)) if c is not None else None
            old = a.analysis.scenarios[name].get(f.path)
            if cell is None:
                scenarios[name].pop(f.path, None)
            else:
                scenarios[name][f.path] = _number(p, f"{f.path} (scenario {name})", cell)
            if scenarios[name].get(f.path) != old:
                changes.append(Change(f"analysis.scenarios.{name}.{f.path}", old,
                                      scenarios[name].get(f.path)))
    data["analysis"]["scenarios"] = scenarios
    out = parse_assumptions(data, source=f"{p} (Inputs sheet)")
    return out, changes


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dt.datetime):
        a = _serial(a)
    if isinstance(b, dt.datetime):
        b = _serial(b)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) == float(b)
    return a == b


def _same_value(a: Any, b: Any) -> bool:
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return _same(a, b)


def _serial(d: dt.datetime | dt.date) -> float:
    from finmodel.conventions import to_serial

    if isinstance(d, dt.datetime):
        return to_serial(d.date()) + (d - dt.datetime(d.year, d.month, d.day)).total_seconds() \
            / 86400
    return float(to_serial(d))


def _show(v: Any) -> str:
    if isinstance(v, dt.datetime):
        return v.date().isoformat()
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return f"{v:g}"
    return repr(v)


def _case_value(f: InputField) -> Any:
    """The input's value as the case file writes it."""
    if isinstance(f.value, dt.date):
        return f"{f.value.year:04d}-{f.value.month:02d}"
    if f.unit == "flag":
        return bool(f.value)
    return f.value


def _number(p: Path, what: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise _refuse(p, f"{what}: expected a number, got {v!r}")
    return float(v)


def _value(p: Path, f: InputField, cells: list[Any]) -> Any:
    """A cell (or a path's cells) as the case value of input ``f``."""
    if isinstance(f.value, list):
        out = [_number(p, f"{f.path}[{k}]", v) for k, v in enumerate(cells)]
        return [int(x) if f.integer and x == int(x) else x for x in out]
    v = cells[0]
    if f.choices is not None or isinstance(f.value, str):
        if not isinstance(v, str):
            raise _refuse(p, f"{f.path}: expected a word ({', '.join(f.choices or ())}), "
                          f"got {v!r}")
        return v  # the schema checks it is one of the choices
    if isinstance(f.value, dt.date):
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            from finmodel.conventions import from_serial

            v = from_serial(float(v))
        if not isinstance(v, (dt.date, dt.datetime)):
            raise _refuse(p, f"{f.path}: expected a date (a month), got {v!r}")
        if v.day != 1 or (isinstance(v, dt.datetime) and v.time() != dt.time()):
            raise _refuse(p, f"{f.path}: expected the first day of a month, got {_show(v)}")
        return f"{v.year:04d}-{v.month:02d}"
    x = _number(p, f.path, v)
    if f.unit == "flag":
        if x not in (0.0, 1.0):
            raise _refuse(p, f"{f.path}: expected 1 (yes) or 0 (no), got {x:g}")
        return bool(x)
    if f.integer:
        if x != int(x):
            raise _refuse(p, f"{f.path}: expected a whole number, got {x:g}")
        return int(x)
    return x


def _set(data: dict, path: str, value: Any) -> None:
    node = data
    *parents, leaf = path.split(".")
    for part in parents:
        node = node[part]
    node[leaf] = value


def case_json(a: Assumptions) -> str:
    """The case as the JSON text the workbook embeds (the importer's starting point)."""
    return json.dumps(a.model_dump(mode="json", exclude_none=True), separators=(",", ":"),
                      allow_nan=False)


def case_toml(a: Assumptions, header: str = "") -> str:
    """The case as a TOML case file (``finmodel import -o CASE.toml``)."""
    data = a.model_dump(mode="json", exclude_none=True)
    out = [f"# {line}" for line in header.splitlines()]
    tables: list[tuple[str, dict]] = []
    _emit(data, "", out, tables)
    while tables:
        name, table = tables.pop(0)
        out.append(f"\n[{name}]")
        nested: list[tuple[str, dict]] = []
        _emit(table, name, out, nested)
        tables[:0] = nested
    return "\n".join(out).lstrip("\n") + "\n"


def _key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() and k.isascii() else \
        json.dumps(k, ensure_ascii=False)


def _emit(table: dict, prefix: str, out: list[str], tables: list) -> None:
    for k, v in table.items():
        if not isinstance(v, dict):
            out.append(f"{_key(k)} = {_toml_value(v)}")
    for k, v in table.items():
        if isinstance(v, dict):
            tables.append((f"{prefix}.{_key(k)}" if prefix else _key(k), v))


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        if isinstance(v, float) and not math.isfinite(v):
            raise InputError(f"cannot write {v!r} to a case file")
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # a TOML basic string
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_key(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"
    raise InputError(f"cannot write {v!r} to a case file")


__all__ = ["Change", "case_json", "case_toml", "check_archive", "read_workbook"]
