"""The one progress and cancel protocol of every long computation in the package.

Progress: a callable ``progress(done, total, text="")`` — how much of how much is done, and
what is being done, in words. Cancel: a ``threading.Event`` (or anything with ``is_set()``),
or a callable returning True; a cancelled computation raises ``reidviewer.errors.Cancelled``
(or, where what is finished stays usable, simply stops early and says so). The CLI draws
progress bars from it, the app's workers forward it to the status bar, and tests pass lists'
``append``.

Training reports richer progress (losses, learning rate, validation): ``TrainProgress``
objects through its own ``progress`` callback; it stops through the same kind of cancel.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from reidviewer.errors import Cancelled


class ProgressFn(Protocol):
    """``progress(done, total, text="")``."""

    def __call__(self, done: int, total: int, text: str = "") -> None: ...


def no_progress(done: int, total: int, text: str = "") -> None:
    """A progress callback that ignores every report."""


def is_cancelled(cancel: Any) -> bool:
    """Whether ``cancel`` (an Event-like object, a callable, or None) asks to stop."""
    if cancel is None:
        return False
    if hasattr(cancel, "is_set"):
        return bool(cancel.is_set())
    return bool(cancel())


def check_cancelled(cancel: Any) -> None:
    """Raise ``Cancelled`` when ``cancel`` asks to stop."""
    if is_cancelled(cancel):
        raise Cancelled("cancelled")


CancelFn = Callable[[], bool]
