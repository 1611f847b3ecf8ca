"""The workbook's sheets written on two processes (finmodel/excel/package.py).

The oracle is XlsxWriter's own serial path: every part of the zip must be the same bytes
(the creation time in docProps/core.xml aside), for the base workbook and for a sheet
exercising every way XlsxWriter numbers a style (column, row and cell formats, cells
without one, an empty row with a format, a comment, a validation, a hyperlink).
"""

from __future__ import annotations

import gc
import os
import signal
import zipfile
from pathlib import Path

import openpyxl
import pytest

import finmodel
from finmodel.errors import ExportError
from finmodel.excel import package
from finmodel.excel.workbook import write_workbook
from finmodel.outputs import Terminated, terminate_cleanly

IDLE_CPUS = package.idle_cpus  # the real one (the fixture below stands in for it)


@pytest.fixture(autouse=True)
def alone(monkeypatch):
    """Fork as if this were the only thread and a CPU were free: a test run may have left
    idle threads (dask's offload thread, after the Monte Carlo tests) and keep both CPUs
    busy, which make the export stay serial."""
    monkeypatch.setattr(package, "python_threads", lambda: 1)
    monkeypatch.setattr(package, "idle_cpus", lambda: 1)  # the suite may keep both busy


@pytest.fixture(scope="module")
def base():
    return finmodel.run(finmodel.load_assumptions("assumptions/base.toml"), breakevens=False)


def _parts(path: Path) -> tuple[list[str], dict[str, bytes]]:
    with zipfile.ZipFile(path) as z:
        names = [i.filename for i in z.infolist()]
        return names, {n: z.read(n) for n in names}


def _same_but_timestamp(a: Path, b: Path) -> None:
    names_a, pa = _parts(a)
    names_b, pb = _parts(b)
    assert names_a == names_b
    differ = [n for n in names_a if pa[n] != pb[n]]
    assert differ in ([], ["docProps/core.xml"]), differ


def _forks(monkeypatch) -> list[int]:
    """Record the pid of every child forked by the packager."""
    pids: list[int] = []
    real = package._Child.__init__

    def init(self, *args, **kwargs):
        real(self, *args, **kwargs)
        pids.append(self.pid)

    monkeypatch.setattr(package._Child, "__init__", init)
    return pids


def _serial(monkeypatch):
    monkeypatch.setattr(package, "MIN_PARALLEL_CELLS", 10**12)


def _parallel(monkeypatch):
    monkeypatch.setattr(package, "MIN_PARALLEL_CELLS", 0)


def test_base_workbook_is_byte_identical_to_the_serial_path(base, tmp_path, monkeypatch):
    pids = _forks(monkeypatch)
    _serial(monkeypatch)
    write_workbook(base, tmp_path / "serial.xlsx")
    assert pids == []
    monkeypatch.setattr(package, "MIN_PARALLEL_CELLS", 20_000)  # the shipped threshold
    write_workbook(base, tmp_path / "parallel.xlsx")
    assert len(pids) == 1
    _same_but_timestamp(tmp_path / "serial.xlsx", tmp_path / "parallel.xlsx")


def test_the_zip_is_deflated_at_level_one_and_xlsxwriter_left_as_it_was(base, tmp_path,
                                                                        monkeypatch):
    # Level 1 instead of zlib's 6: the same parts, a larger file (measured: 1.96 MB
    # against 1.73 MB for base), and XlsxWriter's ZipFile restored after the call.
    import xlsxwriter.workbook

    _serial(monkeypatch)
    write_workbook(base, tmp_path / "one.xlsx")
    monkeypatch.setattr(package, "ZIP_LEVEL", 6)
    write_workbook(base, tmp_path / "six.xlsx")
    assert xlsxwriter.workbook.ZipFile is zipfile.ZipFile
    _same_but_timestamp(tmp_path / "one.xlsx", tmp_path / "six.xlsx")
    one, six = (os.path.getsize(tmp_path / f) for f in ("one.xlsx", "six.xlsx"))
    assert 1.05 * six < one < 1.3 * six


def test_the_child_gets_about_half_the_work_and_no_sheet_with_links(base, tmp_path,
                                                                      monkeypatch):
    shares = []
    real = package.child_share

    def spy(sheets):
        got = real(sheets)
        work = [sum(map(len, ws.table.values()))
                + package.VALIDATION_CELLS * len(ws.validations) for ws in sheets]
        shares.append((got, work, [bool(ws.hyperlinks) for ws in sheets]))
        return got

    monkeypatch.setattr(package, "child_share", spy)
    write_workbook(base, tmp_path / "p.xlsx")
    (theirs, work, links), = shares
    child = sum(work[i] for i in theirs)
    assert 0.4 * sum(work) <= child <= 0.5 * sum(work)
    assert not any(links[i] for i in theirs) and any(links)  # the Cover's links stay


def _styled_book(path: Path, serial: bool | None, monkeypatch, cells: int = 3000) -> None:
    """Four sheets of ``cells`` formulas; serial None keeps the threshold as it is."""
    if serial is not None:
        (_serial if serial else _parallel)(monkeypatch)
    wb = package.Workbook(str(path))
    fmts = [wb.add_format({"num_format": f"0.{'0' * i}"}) for i in range(8)]
    bold, red = wb.add_format({"bold": True}), wb.add_format({"font_color": "red"})
    for s in range(4):
        ws = wb.add_worksheet(f"S{s}")
        ws.set_column(2, 3, 12, fmts[(s + 5) % 8])  # a column format, first used here
        ws.set_column(6, 6, None, red)
        ws.set_row(1, 20, fmts[(s + 3) % 8])       # a row format on a row with cells
        ws.set_row(40, None, bold)                 # an empty row with a format
        ws.write_comment(41, 1, "comment on an empty row")
        ws.data_validation(0, 0, 10, 0, {"validate": "integer", "criteria": ">",
                                         "value": 0})
        for r in range(cells // 10):
            for c in range(10):
                fmt = None if (r + c) % 7 == 0 else fmts[(r * 3 + c + s) % 8]
                ws.write_formula(r, c, f"=A{r + 1}+{c}", fmt, float(r * c))
        ws.write_string(2, 12, "text", bold)
        ws.write_number(3, 12, 1.5)
    wb.get_worksheet_by_name("S0").write_url(0, 14, "https://example.com", None, "link")
    wb.close()


def test_every_way_of_numbering_a_style_gives_the_serial_bytes(tmp_path, monkeypatch):
    pids = _forks(monkeypatch)
    _styled_book(tmp_path / "serial.xlsx", True, monkeypatch)
    _styled_book(tmp_path / "parallel.xlsx", False, monkeypatch)
    assert len(pids) == 1
    _same_but_timestamp(tmp_path / "serial.xlsx", tmp_path / "parallel.xlsx")
    # The hyperlink's relationship, collected while its sheet is written, is there.
    names, _ = _parts(tmp_path / "parallel.xlsx")
    assert "xl/worksheets/_rels/sheet1.xml.rels" in names


def test_a_style_the_parent_did_not_number_makes_it_write_those_sheets_itself(
        tmp_path, monkeypatch):
    # With no styles numbered up front the child would number some on its own: it must
    # stop, and the parent writes its sheets. The workbook is whole and reads the same.
    monkeypatch.setattr(package, "assign_styles", lambda sheets: None)
    pids = _forks(monkeypatch)
    _styled_book(tmp_path / "gap.xlsx", False, monkeypatch)
    assert len(pids) == 1
    _styled_book(tmp_path / "serial.xlsx", True, monkeypatch)
    got = openpyxl.load_workbook(tmp_path / "gap.xlsx")
    want = openpyxl.load_workbook(tmp_path / "serial.xlsx")
    for ws in want.worksheets:
        for row_w, row_g in zip(ws.iter_rows(), got[ws.title].iter_rows(), strict=True):
            for a, b in zip(row_w, row_g, strict=True):
                assert (a.value, a.number_format, a.font.b) == \
                    (b.value, b.number_format, b.font.b), a.coordinate


def test_a_failure_in_the_child_is_an_export_error_and_leaves_no_file(base, tmp_path,
                                                                      monkeypatch):
    parent = os.getpid()
    real = package._write_sheet

    def fail_in_child(ws, path):
        if os.getpid() != parent:
            raise OSError(28, "No space left on device")
        real(ws, path)

    monkeypatch.setattr(package, "_write_sheet", fail_in_child)
    pids = _forks(monkeypatch)
    with pytest.raises(ExportError, match="second process failed.*No space left on device"):
        finmodel.export_excel(base, tmp_path / "x.xlsx")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ChildProcessError):  # reaped
        os.waitpid(pids[0], os.WNOHANG)


def test_sigterm_in_the_parent_kills_and_reaps_the_child(base, tmp_path, monkeypatch):
    parent = os.getpid()
    real = package._write_sheet

    def slow_child_then_sigterm(ws, path):
        if os.getpid() != parent:
            signal.pause()  # the child would take forever
        os.kill(parent, signal.SIGTERM)  # the user gives up while the parent writes
        real(ws, path)

    monkeypatch.setattr(package, "_write_sheet", slow_child_then_sigterm)
    pids = _forks(monkeypatch)
    with pytest.raises(Terminated), terminate_cleanly():
        finmodel.export_excel(base, tmp_path / "x.xlsx")
    assert len(pids) == 1
    with pytest.raises(ChildProcessError):  # killed and reaped, no zombie, no orphan
        os.waitpid(pids[0], os.WNOHANG)
    with pytest.raises(ProcessLookupError):
        os.kill(pids[0], 0)
    assert list(tmp_path.iterdir()) == []


def test_small_workbooks_threads_and_busy_cpus_stay_in_one_process(base, tmp_path,
                                                                   monkeypatch):
    import threading

    pids = _forks(monkeypatch)
    monkeypatch.setattr(package, "idle_cpus", lambda: 0)  # every CPU busy
    write_workbook(base, tmp_path / "busy.xlsx")
    assert pids == []
    monkeypatch.setattr(package, "idle_cpus", lambda: 1)
    _styled_book(tmp_path / "small.xlsx", False, monkeypatch, cells=300)
    assert len(pids) == 1  # threshold 0: even 300 cells fork
    monkeypatch.setattr(package, "MIN_PARALLEL_CELLS", 20_000)  # shipped: 1,200 cells stay
    _styled_book(tmp_path / "small2.xlsx", None, monkeypatch, cells=300)
    assert len(pids) == 1
    monkeypatch.setattr(package, "python_threads", threading.active_count)
    stop = threading.Event()
    t = threading.Thread(target=stop.wait)
    t.start()
    try:  # another thread runs: a fork would copy its locks
        write_workbook(base, tmp_path / "threaded.xlsx")
    finally:
        stop.set()
        t.join()
    assert len(pids) == 1
    monkeypatch.setattr(package, "python_threads", lambda: 1)
    write_workbook(base, tmp_path / "alone.xlsx")
    assert len(pids) == 2


def test_the_export_pauses_the_cycle_collector_and_restores_it(base, tmp_path, monkeypatch):
    from finmodel.excel import workbook

    seen = []
    real = workbook._write

    def spy(*args, **kwargs):
        seen.append(gc.isenabled())
        return real(*args, **kwargs)

    monkeypatch.setattr(workbook, "_write", spy)
    assert gc.isenabled()
    write_workbook(base, tmp_path / "a.xlsx")
    assert seen == [False] and gc.isenabled()
    gc.disable()
    try:
        write_workbook(base, tmp_path / "b.xlsx")
        assert not gc.isenabled()  # a caller's choice is kept
    finally:
        gc.enable()


def test_idle_cpus_counts_this_process_as_running():
    # Linux's runnable count includes the reader: never more idle CPUs than usable ones
    # less this one.
    assert IDLE_CPUS() <= len(os.sched_getaffinity(0)) - 1
