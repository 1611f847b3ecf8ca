"""Edit cells of an xlsx file as an analyst would, fast: the sheet's XML is patched in the
zip (openpyxl's load and save of a full model takes seconds a copy), then LibreOffice
recalculates every copy in one start."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

import openpyxl

_NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main",
       "r": "http://schemas.openxmlformats.org/officeDocument/2006/relationships"}


def sheet_parts(path: Path) -> dict[str, str]:
    """Sheet name -> its part inside the zip (xl/worksheets/sheetN.xml)."""
    with zipfile.ZipFile(path) as z:
        book = z.read("xl/workbook.xml").decode()
        rels = z.read("xl/_rels/workbook.xml.rels").decode()
    targets = dict(re.findall(r'Id="(rId\d+)"[^>]*Target="([^"]+)"', rels))
    targets.update({k: v for v, k in re.findall(r'Target="([^"]+)"[^>]*Id="(rId\d+)"', rels)})
    out = {}
    for name, rid in re.findall(r'<sheet name="([^"]+)" sheetId="\d+"[^>]*r:id="(rId\d+)"',
                                book):
        out[name.replace("&amp;", "&")] = "xl/" + targets[rid].removeprefix("/xl/")
    return out


def defined_cell(path: Path, name: str) -> tuple[str, str]:
    """(sheet, cell such as 'D12') of a defined name."""
    wb = openpyxl.load_workbook(path, read_only=True)
    sheet, ref = next(iter(wb.defined_names[name].destinations))
    wb.close()
    return sheet, ref.replace("$", "").split(":")[0]


def write_cells(src: Path, dst: Path, cells: dict[tuple[str, str], float | str]) -> Path:
    """A copy of ``src`` with the given cells (sheet, 'D12') set to numbers or text."""
    parts = sheet_parts(src)
    by_part: dict[str, dict[str, float | str]] = {}
    for (sheet, ref), v in cells.items():
        by_part.setdefault(parts[sheet], {})[ref] = v
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename in by_part:
                xml = data.decode()
                for ref, v in by_part[item.filename].items():
                    xml = _set(xml, ref, v)
                data = xml.encode()
            zout.writestr(item, data)
    return dst


def _set(xml: str, ref: str, v: float | str) -> str:
    pat = re.compile(rf'<c r="{ref}"((?: s="\d+")?)(?: t="\w+")?(?:/>|>.*?</c>)', re.S)
    if isinstance(v, str):
        new = rf'<c r="{ref}"\1 t="inlineStr"><is><t>{escape(v)}</t></is></c>'
    else:
        new = rf'<c r="{ref}"\1><v>{float(v)!r}</v></c>'
    out, n = pat.subn(lambda m: new.replace(r"\1", m.group(1)), xml, count=1)
    if n != 1:
        raise KeyError(f"cell {ref} not found in the sheet")
    return out
