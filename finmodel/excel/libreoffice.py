"""Recalculate a workbook with LibreOffice (headless), as an independent formula engine.

LibreOffice keeps an xlsx file's cached values unless told to recalculate on load, so a
throw-away profile is written whose registry sets Calc's ``OOXMLRecalcMode`` to 0
("always recalculate"); without it a parity test would only read back our own values.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from finmodel.errors import ExportError

_REGISTRY = """<?xml version="1.0" encoding="UTF-8"?>
<oor:items xmlns:oor="http://openoffice.org/2001/registry"
 xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<item oor:path="/org.openoffice.Office.Calc/Formula/Load"><prop oor:name="OOXMLRecalcMode" oor:op="fuse"><value>0</value></prop></item>
<item oor:path="/org.openoffice.Office.Calc/Formula/Load"><prop oor:name="ODFRecalcMode" oor:op="fuse"><value>0</value></prop></item>
</oor:items>
"""


def soffice() -> str | None:
    """Path of the LibreOffice binary, or None when it is not installed."""
    return shutil.which("soffice") or shutil.which("libreoffice")


def recalculate(src: str | Path, out_dir: str | Path, timeout: float = 300.0) -> Path:
    """Open ``src`` in LibreOffice, recalculate every formula, save it as xlsx in ``out_dir``.

    Returns the path of the recalculated copy (same file name, in ``out_dir``).
    """
    return recalculate_many([src], out_dir, timeout)[0]


def recalculate_many(srcs: list[str | Path], out_dir: str | Path,
                     timeout: float = 1800.0) -> list[Path]:
    """:func:`recalculate` for several workbooks in one LibreOffice start (their file
    names must differ); returns the recalculated copies in the order given."""
    return _convert(srcs, out_dir, "xlsx:Calc MS Excel 2007 XML", ".xlsx", timeout)


def to_pdf(src: str | Path, out_dir: str | Path, timeout: float = 300.0) -> Path:
    """Print ``src`` to PDF with LibreOffice (recalculated, with the sheets' print setup).

    Returns the path of the PDF (same file name, in ``out_dir``).
    """
    return _convert([src], out_dir, "pdf:calc_pdf_Export", ".pdf", timeout)[0]


def _convert(srcs: list[str | Path], out_dir: str | Path, target: str, suffix: str,
             timeout: float) -> list[Path]:
    exe = soffice()
    if exe is None:
        raise ExportError("LibreOffice (soffice) is not installed")
    paths = [Path(s).resolve() for s in srcs]
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="finmodel-lo-") as profile:
        user = Path(profile) / "user"
        user.mkdir()
        (user / "registrymodifications.xcu").write_text(_REGISTRY)
        cmd = [exe, f"-env:UserInstallation=file://{profile}", "--headless", "--norestore",
               "--convert-to", target, "--outdir", str(out_dir), *map(str, paths)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    outs = [out_dir / (p.stem + suffix) for p in paths]
    if proc.returncode != 0 or not all(o.exists() for o in outs):
        raise ExportError(f"LibreOffice failed ({proc.returncode}): {proc.stderr.strip()}")
    return outs
