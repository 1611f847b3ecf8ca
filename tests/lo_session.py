"""A LibreOffice Calc session driven through UNO: open a workbook once, then change cells,
recalculate and read results many times (an analyst at the keyboard, a hundred times
faster than one convert-to per edit). Needs the python3-uno bridge (scripts/test.sh)."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_UNO_PATHS = ("/usr/lib/python3/dist-packages", "/usr/lib/libreoffice/program")


def _uno():
    for p in _UNO_PATHS:
        if p not in sys.path and Path(p).is_dir():
            sys.path.append(p)  # after the environment's own packages
    import uno  # noqa: PLC0415

    return uno


class CalcSession:
    """One headless LibreOffice with one open workbook."""

    def __init__(self, exe: str, path: str | Path) -> None:
        uno = _uno()
        self._profile = tempfile.TemporaryDirectory(prefix="finmodel-uno-")
        pipe = f"finmodel_{os.getpid()}_{id(self)}"
        self._proc = subprocess.Popen(
            [exe, f"-env:UserInstallation=file://{self._profile.name}", "--headless",
             "--invisible", "--norestore", "--nologo",
             f"--accept=pipe,name={pipe};urp;StarOffice.ComponentContext"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        local = uno.getComponentContext()
        resolver = local.ServiceManager.createInstanceWithContext(
            "com.sun.star.bridge.UnoUrlResolver", local)
        ctx = None
        for _ in range(240):
            try:
                ctx = resolver.resolve(f"uno:pipe,name={pipe};urp;StarOffice.ComponentContext")
                break
            except Exception:  # noqa: BLE001 - not listening yet
                time.sleep(0.25)
        if ctx is None:
            self.close()
            raise RuntimeError("LibreOffice did not start")
        desktop = ctx.ServiceManager.createInstanceWithContext("com.sun.star.frame.Desktop",
                                                               ctx)
        prop = uno.createUnoStruct("com.sun.star.beans.PropertyValue")
        prop.Name, prop.Value = "Hidden", True
        self.doc = desktop.loadComponentFromURL(uno.systemPathToFileUrl(str(Path(path)
                                                                            .resolve())),
                                                "_blank", 0, (prop,))
        self.doc.calculateAll()

    def _cell(self, sheet: str, ref: str):
        return self.doc.Sheets.getByName(sheet).getCellRangeByName(ref)

    def get(self, sheet: str, ref: str) -> float | str:
        """A cell's value: a number (NaN for an error such as #N/A) or its text."""
        c = self._cell(sheet, ref)
        if c.getError() != 0:
            return math.nan
        kind = c.getType().value  # EMPTY, VALUE, TEXT, FORMULA
        if kind == "TEXT" or (kind == "FORMULA" and c.FormulaResultType2 == 2):  # STRING
            return c.getString()
        return c.getValue()

    def set(self, sheet: str, ref: str, value: float | str) -> None:
        c = self._cell(sheet, ref)
        if isinstance(value, str):
            c.setString(value)
        else:
            c.setValue(float(value))

    def save_as(self, path: str | Path) -> Path:
        """Save the workbook as xlsx (as an analyst's File > Save As would)."""
        uno = _uno()
        prop = uno.createUnoStruct("com.sun.star.beans.PropertyValue")
        prop.Name, prop.Value = "FilterName", "Calc MS Excel 2007 XML"
        self.doc.storeToURL(uno.systemPathToFileUrl(str(Path(path).resolve())), (prop,))
        return Path(path)

    def recalculate(self) -> None:
        self.doc.calculateAll()

    def close(self) -> None:
        try:
            if getattr(self, "doc", None) is not None:
                self.doc.close(True)
        except Exception:  # noqa: BLE001 - the office may already be gone
            pass
        self._proc.terminate()
        try:
            self._proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self._proc.kill()
        self._profile.cleanup()

    def __enter__(self) -> CalcSession:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
