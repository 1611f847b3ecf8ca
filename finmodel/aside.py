"""A piece of work done in a forked second process while this one goes on.

``finmodel run -o`` solves a case's break-evens (a quarter of the command's CPU) in a child
process while the parent writes the workbook's sheets that do not show them, then reads
what the child found. The child gets a copy of the process as it was at the fork, runs one
function on it, sends the result back pickled on a pipe and exits with :func:`os._exit`
(it never returns into the caller's code); a child that fails, is killed or sends nothing
gives ``None``, and the caller does the work itself. Used only where a CPU is free right
now and no other Python thread runs (:func:`possible`).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import warnings
from collections.abc import Callable
from typing import Any


def possible() -> bool:
    """Whether forking gains: ``os.fork`` exists, no other Python thread runs (a fork
    copies the locks they hold) and a CPU is idle (else parent and child only take turns;
    see :func:`finmodel.excel.package.idle_cpus`)."""
    from finmodel.excel.package import idle_cpus, python_threads

    return hasattr(os, "fork") and python_threads() == 1 and idle_cpus() >= 1


def fork() -> int:
    """``os.fork()``, without Python >= 3.12's warning about the process's other OS
    threads: callers fork only when no other Python thread runs (BLAS's idle workers are
    the threads it sees), and the child runs its own work and exits with ``os._exit``,
    never returning into the caller's code, needing no lock those threads could hold."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", r".*use of fork\(\) may lead to deadlocks",
                                DeprecationWarning)
        return os.fork()


def default_signals() -> None:
    """In a child: signals end it at once. It must not run the parent's handlers (SIGTERM
    raises Terminated in the CLI) nor unwind into the parent's code."""
    for name in ("SIGTERM", "SIGHUP", "SIGINT"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_DFL)


class ForkedChild:
    """A forked child process (``pid``) and the read end of its pipe (``pipe``)."""

    pid: int | None
    pipe: Any

    def stop(self) -> None:
        """Kill and reap the child unless waited for already (the parent is unwinding)."""
        self.pipe.close()
        if self.pid is not None:
            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                os.waitpid(self.pid, 0)
            self.pid = None


class Aside(ForkedChild):
    """Run ``work()`` in a forked child; :meth:`result` waits for its return value.

    The caller must call :meth:`result` or :meth:`stop` (``stop`` in a ``finally``: an
    interrupted parent kills and reaps its child).
    """

    def __init__(self, work: Callable[[], Any]) -> None:
        read, write = os.pipe()
        pid = fork()
        if pid == 0:  # the child
            status = 1
            try:
                os.close(read)
                default_signals()
                data = pickle.dumps(work(), protocol=pickle.HIGHEST_PROTOCOL)
                with os.fdopen(write, "wb") as pipe:
                    pipe.write(data)
                status = 0
            finally:
                os._exit(status)
        os.close(write)
        self.pid: int | None = pid
        self.pipe = os.fdopen(read, "rb")

    def result(self) -> Any | None:
        """The child's return value once it has exited; None if it failed."""
        try:
            data = self.pipe.read()
        finally:
            self.pipe.close()
        _, status = os.waitpid(self.pid, 0)
        self.pid = None
        if os.waitstatus_to_exitcode(status) != 0 or not data:
            return None
        return pickle.loads(data)  # our own child's bytes
