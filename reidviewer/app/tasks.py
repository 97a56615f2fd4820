"""Background work for the GUI: one mechanism for every long job, one cancel, one progress.

A job is a function ``fn(progress, cancel)`` run in a ``QThreadPool``: it reports with
``progress(done, total, text)`` (the one progress protocol of the package, see
``reidviewer.progress``) and stops when ``cancel`` (a ``threading.Event``) is set, raising
``reidviewer.errors.Cancelled`` — which is the same for the engine, the data layer and here.
The job's outcome arrives on the GUI thread as exactly one of ``finished(result)``,
``cancelled()`` (no dialog: the user asked for it) or ``failed(message)``, whose words come
from ``describe_failure`` — the one place where errors become sentences (training uses it too).
"""
from __future__ import annotations

import errno
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from reidviewer.errors import Cancelled, FrameError, ReidViewerError


def describe_failure(exc: BaseException, kept: Path | None = None) -> str:
    """An error in plain words: what happened and what to do (``kept``: a folder left as it was)."""
    tail = f"\n\nThe run folder is kept: {kept}" if kept is not None else ""
    if isinstance(exc, FrameError):
        return (f"A frame of the dataset cannot be read.\n{exc}\n"
                f"Replace or remove that file (or exclude its tracklet) and try again.{tail}")
    if isinstance(exc, ReidViewerError):
        return f"{exc}{tail}"
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return f"The disk is full: {exc.filename or ''} could not be written. Free some space and try again.{tail}"
    if isinstance(exc, MemoryError) or (isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()):
        return f"The device ran out of memory. Use smaller batches (or the CPU) and try again.{tail}"
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=6))
    return f"Unexpected error: {type(exc).__name__}: {exc}{tail}\n\nDetails:\n{tb}"


class JobSignals(QObject):
    progress = Signal(int, int, str)
    finished = Signal(object)
    failed = Signal(str)
    cancelled = Signal()


class Job(QRunnable):
    """Runs ``fn(progress, cancel)`` off the GUI thread.

    Progress is throttled to about 10 signals a second so a chatty job cannot flood the
    event loop; a progress report after Cancel raises ``Cancelled`` inside the job.
    """

    def __init__(self, fn: Callable[[Callable[..., None], threading.Event], Any]) -> None:
        super().__init__()
        self.fn = fn
        self.signals = JobSignals()
        self.cancel_event = threading.Event()
        self._last = 0.0
        self.setAutoDelete(False)

    def cancel(self) -> None:
        """Ask the job to stop at its next check."""
        self.cancel_event.set()

    def _progress(self, done: int, total: int, text: str = "") -> None:
        if self.cancel_event.is_set():
            raise Cancelled("cancelled")
        now = time.monotonic()
        if done >= total or now - self._last >= 0.1:
            self._last = now
            if not self._emit(self.signals.progress, int(done), int(total), text):
                raise Cancelled("the window that asked is gone")

    @staticmethod
    def _emit(signal, *args) -> bool:
        """Emit; False when the signals' object was already deleted (the window closed while the
        job ran — nobody is left to tell, and that is not an error)."""
        try:
            signal.emit(*args)
        except RuntimeError:
            return False
        return True

    def run(self) -> None:
        try:
            result = self.fn(self._progress, self.cancel_event)
        except Cancelled:
            self._emit(self.signals.cancelled)
            return
        except BaseException as exc:  # noqa: BLE001 — report, never kill the app
            if self.cancel_event.is_set():
                self._emit(self.signals.cancelled)  # whatever broke after Cancel, the user asked to stop
            else:
                self._emit(self.signals.failed, describe_failure(exc))
            return
        if self.cancel_event.is_set():
            self._emit(self.signals.cancelled)
        else:
            self._emit(self.signals.finished, result)


def start_job(job: Job, pool: QThreadPool | None = None) -> Job:
    """Start ``job`` on ``pool`` (default: the global pool) and return it."""
    (pool or QThreadPool.globalInstance()).start(job)
    return job
