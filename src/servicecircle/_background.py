"""Writers run in forked children, so that a run's files are written on every core.

A run's last step writes several files (tables, GeoPackages, a workbook, the map), each a pure
function of results already in memory. On Linux, :class:`ForkedWriters` runs such a writer in
a child made with ``fork`` (the results are shared copy-on-write, nothing is pickled or
imported again) while this process goes on with the next one; :meth:`ForkedWriters.wait`
collects them and raises the first failure as the child raised it.

Only where it is safe: Linux, more than one usable core, and a process with no other Python
thread (a notebook kernel, a Dask client or a progress monitor thread keeps every writer in
this process). ``SERVICECIRCLE_WRITE_JOBS=1`` turns it off; ``=N`` allows ``N - 1`` children.
"""

from __future__ import annotations

import logging
import os
import pickle
import signal
import sys
import threading
import warnings
from collections.abc import Callable

log = logging.getLogger(__name__)

JOBS_ENV = "SERVICECIRCLE_WRITE_JOBS"


def child_slots() -> int:
    """How many writers may run in children at once (0: every writer runs here)."""
    if not sys.platform.startswith("linux") or not hasattr(os, "fork"):
        return 0
    if threading.active_count() > 1:
        return 0
    value = os.environ.get(JOBS_ENV, "").strip()
    try:
        jobs = int(value) if value else len(os.sched_getaffinity(0))
    except ValueError:
        log.warning("%s=%r is not a number; writing in one process", JOBS_ENV, value)
        return 0
    return max(jobs - 1, 0)


class ForkedWriters:
    """Writers running in children: at most :func:`child_slots` at once."""

    def __init__(self) -> None:
        self._children: dict[int, tuple[str, int]] = {}  # pid: (what, read end of its pipe)

    def start(self, what: str, writer: Callable[[], None]) -> bool:
        """Run ``writer`` in a child when a slot is free (``True``); ``False``: run it here."""
        self._collect(block=False)
        if len(self._children) >= child_slots():
            return False
        read, write = os.pipe()
        with warnings.catch_warnings():  # 3.12+ warns of fork with threads; there are none
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # pragma: no cover - the child (coverage does not follow forks)
            os.close(read)
            _run_child(writer, write)
        os.close(write)
        self._children[pid] = (what, read)
        log.debug("writing %s in child %d", what, pid)
        return True

    def wait(self) -> None:
        """Wait for every child; raise the first failure (the others are stopped)."""
        self._collect(block=True)

    def stop(self) -> None:
        """Stop every child (a failed run: its files are thrown away)."""
        for pid, (_, read) in list(self._children.items()):
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            os.close(read)
        self._children.clear()

    def _collect(self, block: bool) -> None:
        for pid, (what, read) in list(self._children.items()):
            if block:
                report = _read_all(read)  # first: a child blocked on a full pipe never ends
                _, status = os.waitpid(pid, 0)
            else:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done == 0:
                    continue
                report = _read_all(read)
            os.close(read)
            del self._children[pid]
            if status != 0:
                self.stop()
                raise _failure(what, report, status)


def _run_child(writer: Callable[[], None], pipe: int) -> None:  # pragma: no cover - child
    """Run the writer; on failure send the exception back; leave without any cleanup (the
    parent's buffers, files and atexit handlers are the parent's)."""
    code = 0
    try:
        writer()
    except BaseException as err:
        code = 1
        try:
            data = pickle.dumps(err)
        except Exception:
            data = pickle.dumps(RuntimeError(f"{type(err).__name__}: {err}"))
        view = memoryview(data)
        while view:
            view = view[os.write(pipe, view) :]
    finally:
        os._exit(code)


def _read_all(fd: int) -> bytes:
    parts = []
    while chunk := os.read(fd, 1 << 16):
        parts.append(chunk)
    return b"".join(parts)


def _failure(what: str, report: bytes, status: int) -> BaseException:
    """The child's exception, or one that says how it ended."""
    if report:
        try:
            err = pickle.loads(report)
            if isinstance(err, BaseException):
                return err
        except Exception:  # fall through to the plain message
            pass
    how = (
        f"signal {os.WTERMSIG(status)}"
        if os.WIFSIGNALED(status)
        else f"exit status {os.WEXITSTATUS(status)}"
    )
    return RuntimeError(f"writing {what} failed in its writer process ({how})")
