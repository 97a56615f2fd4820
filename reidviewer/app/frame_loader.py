"""Frame decoding off the GUI thread into a bounded LRU cache of ``QImage``.

The players ask for "frame N of tracklet X"; if it is cached they draw at once, otherwise
the request is queued to a ``QThreadPool`` and ``frame_ready`` fires when it is decoded.
A frame that cannot be decoded becomes a grey placeholder with the reason (the app never
dies on a bad frame).
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal
from PySide6.QtGui import QImage

from reidviewer.data.frames import read_frame
from reidviewer.errors import ReidViewerError


def rgb_to_qimage(rgb: np.ndarray) -> QImage:
    """A deep-copied QImage (RGB888) of an (H, W, 3) uint8 array."""
    rgb = np.ascontiguousarray(rgb)
    h, w, _ = rgb.shape
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def placeholder_image(width: int = 64, height: int = 128) -> QImage:
    """A grey frame drawn in place of one that could not be decoded."""
    img = QImage(width, height, QImage.Format.Format_RGB888)
    img.fill(0x505050)
    return img


class _Signals(QObject):
    decoded = Signal(str, QImage)
    failed = Signal(str, str)


class _DecodeJob(QRunnable):
    def __init__(self, path: str, signals: _Signals) -> None:
        super().__init__()
        self.path = path
        self.signals = signals
        self.setAutoDelete(True)

    def run(self) -> None:  # worker thread
        try:
            image = rgb_to_qimage(read_frame(self.path))
        except ReidViewerError as exc:
            self.signals.failed.emit(self.path, str(exc))
            return
        except Exception as exc:  # noqa: BLE001 — a bad frame must never kill the app
            self.signals.failed.emit(self.path, f"{self.path}: {exc}")
            return
        self.signals.decoded.emit(self.path, image)


class FrameLoader(QObject):
    """Decodes frames in background threads and keeps the most recent ones.

    Args:
        capacity: how many frames to keep (128×64 RGB ≈ 24 KB each).
        pool: thread pool to use (default: a private pool with 2 threads).
    """

    frame_ready = Signal(str)
    frame_failed = Signal(str, str)

    def __init__(self, capacity: int = 4000, pool: QThreadPool | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.capacity = capacity
        self._cache: OrderedDict[str, QImage] = OrderedDict()
        self._pending: set[str] = set()
        self._errors: dict[str, str] = {}
        self._lock = threading.Lock()
        if pool is None:
            pool = QThreadPool(self)
            pool.setMaxThreadCount(2)
        self.pool = pool
        self._signals = _Signals(self)
        self._signals.decoded.connect(self._on_decoded)
        self._signals.failed.connect(self._on_failed)

    def get(self, path: str | Path) -> QImage | None:
        """The decoded frame if cached (and marks it recently used); else ``None`` and queues it."""
        key = str(path)
        image = self._cache.get(key)
        if image is not None:
            self._cache.move_to_end(key)
            return image
        if key in self._errors:
            return placeholder_image()
        self.request([key])
        return None

    def error(self, path: str | Path) -> str | None:
        """Why a frame could not be decoded, if it could not."""
        return self._errors.get(str(path))

    def request(self, paths: list[str] | list[Path], priority: int = 0) -> None:
        """Queue frames for decoding (those already cached or queued are skipped)."""
        for p in paths:
            key = str(p)
            if key in self._cache or key in self._pending or key in self._errors:
                continue
            self._pending.add(key)
            self.pool.start(_DecodeJob(key, self._signals), priority)

    def is_cached(self, path: str | Path) -> bool:
        """True when the frame is decoded and in the cache."""
        return str(path) in self._cache

    def clear_queue(self) -> None:
        """Drop requests not yet started (the user moved on to another query)."""
        self.pool.clear()
        self._pending.clear()

    def wait_idle(self, msecs: int = 5000) -> bool:
        """Block until queued decoding is done (tests and benchmarks)."""
        return self.pool.waitForDone(msecs)

    def _on_decoded(self, path: str, image: QImage) -> None:
        self._pending.discard(path)
        self._cache[path] = image
        self._cache.move_to_end(path)
        while len(self._cache) > self.capacity:
            self._cache.popitem(last=False)
        self.frame_ready.emit(path)

    def _on_failed(self, path: str, message: str) -> None:
        self._pending.discard(path)
        self._errors[path] = message
        self.frame_failed.emit(path, message)
        self.frame_ready.emit(path)
