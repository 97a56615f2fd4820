"""Background jobs for the GUI: a function run in a ``QThreadPool`` with progress and cancel.

The function receives ``progress(done, total, text)`` and a ``cancel`` event; it should
check ``cancel.is_set()`` now and then and raise ``Cancelled`` (or return) when asked.
Signals arrive on the GUI thread (queued connections), so slots may touch widgets.
"""
from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from reidviewer.errors import ReidViewerError


class Cancelled(Exception):
    """Raised inside a job when the user cancelled it."""


class JobSignals(QObject):
    progress = Signal(int, int, str)
    finished = Signal(object)
    failed = Signal(str)
    cancelled = Signal()


class Job(QRunnable):
    """Runs ``fn(progress, cancel)`` off the GUI thread.

    Progress is throttled to about 10 signals a second so a chatty job cannot flood the
    event loop.
    """

    def __init__(self, fn: Callable[[Callable[[int, int, str], None], threading.Event], Any]) -> None:
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
        now = time.monotonic()
        if done >= total or now - self._last >= 0.1:
            self._last = now
            self.signals.progress.emit(int(done), int(total), text)
        if self.cancel_event.is_set():
            raise Cancelled()

    def run(self) -> None:
        try:
            result = self.fn(self._progress, self.cancel_event)
        except Cancelled:
            self.signals.cancelled.emit()
            return
        except ReidViewerError as exc:
            self.signals.failed.emit(str(exc))
            return
        except Exception as exc:  # noqa: BLE001 — report, never kill the app
            self.signals.failed.emit(f"{type(exc).__name__}: {exc}\n\n{traceback.format_exc(limit=6)}")
            return
        if self.cancel_event.is_set():
            self.signals.cancelled.emit()
        else:
            self.signals.finished.emit(result)


def start_job(job: Job, pool: QThreadPool | None = None) -> Job:
    """Start ``job`` on ``pool`` (default: the global pool) and return it."""
    (pool or QThreadPool.globalInstance()).start(job)
    return job
