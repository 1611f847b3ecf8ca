"""Writing a command's output files all or nothing.

Every command that writes files does it the same way: its targets are checked before any
work (suffix, folder, permission, not a folder, not one of its inputs, not twice), and once
everything is computed each file is written to a short temporary name next to its target
and only then are all of them renamed into place. A failure (an exception, a full disk, a
file-size limit, SIGTERM) before the renames leaves every target as it was and removes the
temporaries; a temporary left by a process killed with SIGKILL is removed by the next
commit into that folder.

>>> out = Outputs(inputs=[case_path])
>>> xlsx = out.target(args.output, ".xlsx", "-o")      # checked now
>>> ...                                                 # compute
>>> out.commit([(xlsx, lambda tmp: write_workbook(result, tmp))])
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from finmodel.errors import ExportError, FinmodelError, shown_name

#: Temporaries are ``.fm-<pid>-<6 hex>.<suffix>``: short, so any valid target name works.
_TEMP = re.compile(r"\.fm-(\d+)-[0-9a-f]{6}\.[a-z]{1,5}$")

Writer = Callable[[Path], None]


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived: unwind (removing temporaries) and exit."""


def _raise_terminated(signum, frame) -> None:
    raise Terminated(signal.Signals(signum).name)


@contextlib.contextmanager
def terminate_cleanly() -> Iterator[None]:
    """While inside, SIGTERM and SIGHUP raise :class:`Terminated` (so ``finally`` blocks and
    the temporaries' cleanup run) and a file-size limit gives an error instead of killing
    the process."""
    old = {}
    for name in ("SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is not None:
            old[sig] = signal.signal(sig, _raise_terminated)
    if hasattr(signal, "SIGXFSZ"):  # past `ulimit -f` writes fail with EFBIG instead
        old[signal.SIGXFSZ] = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


class Outputs:
    """The output files of one command: checked up front, written together at the end."""

    def __init__(self, inputs: Sequence[str | os.PathLike[str]] = ()) -> None:
        self.inputs = [Path(p) for p in inputs]
        self.targets: list[Path] = []

    def target(self, path: str | os.PathLike[str] | None, suffix: str, option: str
               ) -> Path | None:
        """``path`` checked as a file to write (None passes through).

        Raises
        ------
        ExportError
            Wrong suffix, a folder, a missing or unwritable folder, a name too long, the
            same file as an input or as another output.
        """
        if path is None:
            return None
        p = Path(path)
        where = f"{option} {shown_name(str(p))}"
        if p.suffix.lower() != suffix:
            raise ExportError(f"{where}: expected a file name ending in {suffix}")
        if len(os.fsencode(p.name)) > 255:
            raise ExportError(f"{where}: the file name is longer than 255 bytes")
        try:
            if p.is_dir():
                raise ExportError(f"{where}: is a folder; expected a file name ending in "
                                  f"{suffix}")
            folder = self._folder(p.parent, where)
        except OSError as exc:
            raise ExportError(f"{where}: {exc.strerror or exc}") from None
        for other in [*self.inputs, *self.targets]:
            if _same_file(p, other):
                kind = "an input" if other in self.inputs else "another output"
                raise ExportError(f"{where}: is {kind} of this command ({other}); choose "
                                  "another name")
        if p.exists() and not os.access(p, os.W_OK) and not os.access(folder, os.W_OK):
            raise ExportError(f"{where}: the file exists and cannot be replaced")
        self.targets.append(p)
        return p

    def folder(self, path: str | os.PathLike[str] | None, option: str, *,
               create: bool = False) -> Path | None:
        """``path`` checked as an existing, writable folder to write files into; with
        ``create``, a folder that does not exist yet passes when its parent is an existing,
        writable folder (the caller makes it, and removes it if the command fails)."""
        if path is None:
            return None
        p = Path(path)
        where = f"{option} {shown_name(str(p))}"
        if create and not p.exists() and not p.is_symlink():
            self._folder(p.parent, where)
            return p
        if p.exists() and not p.is_dir():
            raise ExportError(f"{where}: is a file; expected a folder")
        return self._folder(p, where, is_target=True)

    @staticmethod
    def _folder(folder: Path, where: str, is_target: bool = False) -> Path:
        folder = folder if str(folder) else Path(".")
        if not folder.is_dir():
            what = "the folder does not exist" if is_target else \
                f"the folder {shown_name(str(folder))} does not exist"
            raise ExportError(f"{where}: {what}")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise ExportError(f"{where}: cannot write into the folder "
                              f"{shown_name(str(folder))} (permission denied or read-only)")
        return folder

    def commit(self, writers: Sequence[tuple[Path, Writer]]) -> list[Path]:
        """Write every ``(target, writer)``: each writer writes its file at the temporary
        path it is given; once all have succeeded the temporaries are renamed onto their
        targets. On any failure the temporaries are removed, the targets are untouched and
        an :class:`ExportError` (or the original finmodel error) is raised."""
        temps: list[Path] = []
        target = None
        try:
            with terminate_cleanly():
                for target, write in writers:
                    _remove_stale(target.parent)
                    tmp = _temporary(target)
                    temps.append(tmp)
                    write(tmp)
                    os.chmod(tmp, 0o644)  # a temporary is private; an output is shared
                for (target, _), tmp in zip(writers, temps):
                    os.replace(tmp, target)
                temps.clear()
        except FinmodelError:
            raise
        except OSError as exc:
            raise ExportError(f"{shown_name(str(target))}: cannot write "
                              f"({exc.strerror or exc})") from None
        except Exception as exc:  # a writer's own wrapper of an OSError (xlsxwriter)
            if isinstance(exc.__cause__ or exc.__context__, OSError):
                raise ExportError(f"{shown_name(str(target))}: cannot write ({exc})") from None
            raise
        finally:
            for tmp in temps:
                with contextlib.suppress(OSError):
                    tmp.unlink()
        return [t for t, _ in writers]


def _temporary(target: Path) -> Path:
    """A new empty file next to ``target`` with a short name and the same suffix."""
    folder = target.parent if str(target.parent) else Path(".")
    suffix = target.suffix.lower()[:6]
    for _ in range(100):
        tmp = folder / f".fm-{os.getpid()}-{secrets.token_hex(3)}{suffix}"
        try:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
            return tmp
        except FileExistsError:
            continue
    raise ExportError(f"{folder}: cannot create a temporary file")


def _remove_stale(folder: Path) -> None:
    """Remove temporaries of finmodel processes that no longer run (killed with SIGKILL)."""
    folder = folder if str(folder) else Path(".")
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            m = _TEMP.fullmatch(entry.name)
            if m and int(m.group(1)) != os.getpid() and not _alive(int(m.group(1))):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
        return a.resolve() == b.resolve()
    except OSError:
        return False
