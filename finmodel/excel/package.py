"""Writing the workbook's sheets on both cores, without the cyclic garbage collector.

Two costs of the export that are not XML (``bench_cli.py`` in benchmarks/README.md):

* **Garbage collection.** Building the base workbook allocates ~120,000 cell tuples that
  live until the file is written; they trigger generation-2 collections that scan every
  object in the process and free nothing (the cells form no cycles). :func:`paused_gc`
  turns the collector off for the export and restores its state after.
* **One core.** XlsxWriter assembles each worksheet's XML in turn (~40 % of the export).
  Once the workbook is closed every sheet is independent of the others except for the
  style indices, which XlsxWriter hands out in order of first use as it writes. The
  :class:`Workbook` here hands them out first, in that same order (:func:`assign_styles`),
  then forks: a child process writes about half of the sheets (by cell count) into the
  packager's temporary files while the parent writes the rest. The files are the same
  bytes as XlsxWriter's serial path (``tests/test_excel.py`` compares every part of the
  workbook), so the zip is too.

The child never returns into the caller's code: it exits with :func:`os._exit`, reporting
a failure on a pipe, which the parent raises as an :class:`~finmodel.errors.ExportError`
(the caller's all-or-nothing write then leaves no file). A parent interrupted (SIGTERM,
SIGHUP, Ctrl-C, any exception) kills and reaps its child before unwinding. The sheets are
written in one process where ``os.fork`` does not exist, where other Python threads run
(a fork copies their locks), for workbooks too small to gain (:data:`MIN_PARALLEL_CELLS`)
and in XlsxWriter's ``in_memory`` and ``constant_memory`` modes.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import os
import threading
import traceback
from collections.abc import Iterator, Sequence
from typing import Any

import xlsxwriter
import xlsxwriter.workbook as _xw_workbook
from xlsxwriter.packager import Packager

from finmodel.aside import ForkedChild, default_signals, fork
from finmodel.errors import ExportError

#: zlib level of the workbook's zip (see :meth:`Workbook._store_workbook`).
ZIP_LEVEL = 1
_ZIP_LOCK = threading.Lock()

#: Fewer cells than this in all sheets together are written in one process: a fork and
#: its wait cost ~5-10 ms, the XML of 20,000 cells ~0.08 s.
MIN_PARALLEL_CELLS = 20_000

#: What writing one data validation costs, in formula cells (measured on the base
#: workbook: 0.35 ms against 3.4 us a cell).
VALIDATION_CELLS = 100

#: The child's exit status when a sheet used a style the parent had not numbered (a gap
#: in :func:`assign_styles`): its files are discarded and the parent writes those sheets.
_UNNUMBERED_STYLE = 3


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Turn the cyclic garbage collector off inside, back to its previous state after.

    For work that allocates many long-lived objects and no reference cycles (a
    workbook's cells): each collection would scan them all and free nothing. Reference
    counting still frees everything that is not a cycle.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


class Workbook(xlsxwriter.Workbook):
    """:class:`xlsxwriter.Workbook` that writes its sheets' XML on two processes.

    Parameters
    ----------
    filename, options
        As for :class:`xlsxwriter.Workbook`.
    parallel : bool, default True
        False writes every sheet in this process, as XlsxWriter does (the tests compare
        both paths byte for byte).
    """

    def __init__(self, filename: Any = None, options: dict | None = None, *,
                 parallel: bool = True) -> None:
        super().__init__(filename, options)
        self.parallel = parallel

    def _get_packager(self) -> Packager:
        # XlsxWriter's own hook ("allows the default packager to be over-ridden").
        return _Packager() if self.parallel else super()._get_packager()

    def _store_workbook(self) -> None:
        # XlsxWriter opens its zip with zlib's default level (6): 0.17 s of deflate for the
        # base workbook's 12.8 MB of XML, a tenth of `finmodel run -o`. Level 1 takes a
        # third of the time for a file 13 % larger (1.96 MB against 1.73 MB); the parts
        # are the same bytes. XlsxWriter looks ZipFile up in its module when it stores a
        # workbook, so it is swapped for the call, under a lock so that two threads
        # exporting at once cannot leave the swap in place.
        with _ZIP_LOCK:
            own = _xw_workbook.ZipFile
            _xw_workbook.ZipFile = functools.partial(own, compresslevel=ZIP_LEVEL)
            try:
                super()._store_workbook()
            finally:
                _xw_workbook.ZipFile = own


class _Packager(Packager):
    """XlsxWriter's packager with the worksheet files written by two processes."""

    def _write_worksheet_files(self) -> None:
        sheets = [ws for ws in self.workbook.worksheets() if not ws.is_chartsheet]
        theirs = None if self.in_memory else child_share(sheets)
        if not theirs:
            super()._write_worksheet_files()
            return
        # The temporary files in XlsxWriter's order, one per sheet, before the fork, so
        # the parent's list of files is complete and the child only fills some of them.
        paths = [self._filename(f"xl/worksheets/sheet{i}.xml")
                 for i in range(1, len(sheets) + 1)]
        try:
            assign_styles(sheets)
            child = _Child([sheets[i] for i in theirs], [paths[i] for i in theirs],
                           self.workbook.xf_format_indices)
            try:
                for i, ws in enumerate(sheets):
                    if i not in theirs:
                        _write_sheet(ws, paths[i])
                status, message = child.wait()
            finally:
                child.stop()  # a no-op once waited for
            if status == _UNNUMBERED_STYLE:  # only if assign_styles missed a format
                for i in sorted(theirs):
                    _write_sheet(sheets[i], paths[i])
            elif status != 0:
                raise ExportError("writing the worksheets in a second process failed"
                                  + (f": {message}" if message else
                                     f" (exit status {status})"))
        except BaseException:
            for p in paths:  # ours; XlsxWriter removes the others once zipped
                with contextlib.suppress(OSError):
                    os.remove(p)
            raise


def _write_sheet(ws: Any, path: str) -> None:
    """XlsxWriter's own steps for one worksheet file (``Packager._write_worksheet_files``)."""
    ws._set_xml_writer(path)
    ws._assemble_xml_file()


def python_threads() -> int:
    """How many Python threads run in this process (a fork would copy the locks they hold:
    with any besides this one the sheets are written here)."""
    return threading.active_count()


def idle_cpus() -> int:
    """CPUs this process may use that no other task is running on right now (Linux's
    count of runnable tasks, this one included); elsewhere assumed one.

    On a busy machine the child would only take turns with the parent on one CPU: the
    fork and the copy-on-write of the objects both processes touch then cost ~25 % more
    CPU for no shorter wall time (0.36-0.47 s against 0.28-0.35 s serial with another
    process using the second core).
    """
    try:
        with open("/proc/loadavg", encoding="ascii") as f:
            running = int(f.read().split()[3].split("/")[0])
        return len(os.sched_getaffinity(0)) - running
    except (OSError, ValueError, IndexError, AttributeError):
        return 1


def child_share(sheets: Sequence[Any]) -> set[int] | None:
    """Indices of the sheets a child process should write, or None to write all here.

    About half of the work (cells, and validations as :data:`VALIDATION_CELLS` each),
    largest sheets first; only sheets whose writing changes
    nothing the packager reads afterwards (no hyperlinks: XlsxWriter collects a sheet's
    external links while writing its XML).
    """
    if (not hasattr(os, "fork") or python_threads() > 1 or idle_cpus() < 1
            or any(ws.constant_memory for ws in sheets)):
        return None
    cells = [sum(map(len, ws.table.values())) for ws in sheets]
    if sum(cells) < MIN_PARALLEL_CELLS:
        return None
    # Work by sheet, in cells: a data validation costs about 100 (its formula goes
    # through XlsxWriter's 30 regular expressions; the base Inputs sheet has 117).
    cells = [n + VALIDATION_CELLS * len(ws.validations) for n, ws in zip(cells, sheets)]
    half = sum(cells) / 2
    theirs: set[int] = set()
    load = 0
    for i in sorted(range(len(sheets)), key=lambda i: -cells[i]):
        if not sheets[i].hyperlinks and load + cells[i] <= half:
            theirs.add(i)
            load += cells[i]
    return theirs or None


def _format_of(info: Any, field: str) -> Any:
    """A row's or column's format: a named field from XlsxWriter 3.2, a tuple before."""
    if info is None:
        return None
    return getattr(info, field) if hasattr(info, field) else info[1]


def assign_styles(sheets: Sequence[Any]) -> None:
    """Number every format the sheets use, in the order XlsxWriter's writing would.

    XlsxWriter gives a format its style index (``Format._get_xf_index``) the first time a
    sheet's XML uses it: the sheets in order; in each, the columns' formats left to
    right (``_write_cols``), then row by row the row's format and each cell's format in
    column order, a cell without one taking its row's or else its column's
    (``_write_rows``, ``_write_row``, ``_write_cell``). Numbering them here in that order
    gives every process the same indices as the serial path.
    """
    for ws in sheets:
        col_info = ws.col_info
        for c in sorted(col_info):
            f = _format_of(col_info[c], "column_format")
            if f:
                f._get_xf_index()
        if ws.dim_rowmin is None:  # no <sheetData> rows are written
            continue
        rows = getattr(ws, "row_info", None)
        if rows is None:
            rows = ws.set_rows  # XlsxWriter before 3.2
        table = ws.table
        colmin, colmax = ws.dim_colmin, ws.dim_colmax
        for r in range(ws.dim_rowmin, ws.dim_rowmax + 1):
            cells = table.get(r)
            row_format = _format_of(rows.get(r), "row_format")
            if row_format:  # a row with cells, or an empty one written for its format
                row_format._get_xf_index()
            if not cells:
                continue
            cols = sorted(cells)
            if cols[0] < colmin or cols[-1] > colmax:
                cols = [c for c in cols if colmin <= c <= colmax]
            # The distinct formats in order of first use, by C-level passes (a Python
            # loop over the ~120,000 cells cost more than the fork saves). A cell without
            # a format takes its row's or column's, numbered above already.
            for f in dict.fromkeys([cells[c].format for c in cols]):
                if f:
                    f._get_xf_index()


class _Child(ForkedChild):
    """A forked child process that writes ``sheets`` into ``paths`` and exits.

    ``numbered`` is the workbook's table of style indices: a sheet using a format not in
    it would number the format in the child only, so the child then exits with
    :data:`_UNNUMBERED_STYLE` instead of 0. Any exception exits with 1, its last
    traceback line on a pipe to the parent.
    """

    def __init__(self, sheets: Sequence[Any], paths: Sequence[str], numbered: dict
                 ) -> None:
        read, write = os.pipe()
        pid = fork()  # (child_share refuses other Python threads)
        if pid == 0:
            self._run(sheets, paths, numbered, read, write)  # never returns
        os.close(write)
        self.pid: int | None = pid
        self.pipe = os.fdopen(read, "rb")

    @staticmethod
    def _run(sheets, paths, numbered, read: int, write: int) -> None:
        status = 1
        try:
            os.close(read)
            default_signals()
            gc.disable()
            before = len(numbered)
            for ws, path in zip(sheets, paths):
                _write_sheet(ws, path)
            status = 0 if len(numbered) == before else _UNNUMBERED_STYLE
        except BaseException:
            with contextlib.suppress(BaseException):
                last = traceback.format_exc().strip().splitlines()[-1]
                os.write(write, last.encode("utf-8", "replace")[:2000])
        finally:
            os._exit(status)

    def wait(self) -> tuple[int, str]:
        """Wait for the child: its exit status (negative: killed by that signal) and
        message."""
        message = self.pipe.read().decode("utf-8", "replace")
        self.pipe.close()
        _, status = os.waitpid(self.pid, 0)
        self.pid = None
        return os.waitstatus_to_exitcode(status), message
