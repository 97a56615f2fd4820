"""Reading frame images: always RGB uint8 (H, W, 3), or a ``FrameError`` naming the file.

OpenCV decodes (≈2,600 PNG/s here, faster than PIL). ``cv2.imread`` only says "None" on
failure and half-decodes truncated JPEGs with a warning on stderr, so the checks that
give the user a reason (empty file, not an image, truncated) are made here.
"""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from reidviewer.errors import FrameError

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8"
_PNG_END = b"IEND\xaeB`\x82"

# Decoding threads belong to our own worker pools; OpenCV's pool would oversubscribe 2 cores.
cv2.setNumThreads(1)


def _check_container(path: Path, data: bytes) -> None:
    """Raise a FrameError for empty, non-image or truncated files (cheap header/trailer checks)."""
    if len(data) == 0:
        raise FrameError(path, "empty file (0 bytes), not an image")
    if data.startswith(_PNG_MAGIC):
        if not data.rstrip(b"\x00").endswith(_PNG_END):
            raise FrameError(path, "truncated PNG (no IEND chunk at the end of the file)")
    elif data.startswith(_JPEG_MAGIC):
        if b"\xff\xd9" not in data[-64:]:
            raise FrameError(path, "truncated JPEG (no end-of-image marker)")


def to_rgb8(img: np.ndarray, path: Path) -> np.ndarray:
    """Convert a decoded OpenCV image (any depth, 1/3/4 channels, BGR order) to RGB uint8."""
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)  # 16-bit → 8-bit keeps the top byte, as image viewers do
    elif img.dtype in (np.float32, np.float64):
        img = np.clip(img * 255.0 if img.max() <= 1.0 else img, 0, 255).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise FrameError(path, f"unsupported pixel type {img.dtype}")
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    channels = img.shape[2]
    if channels == 1:
        return cv2.cvtColor(img[:, :, 0], cv2.COLOR_GRAY2RGB)
    if channels == 3:
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    if channels == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)  # alpha dropped: re-ID crops are opaque
    raise FrameError(path, f"unsupported channel count {channels}")


def decode_frame(data: bytes, path: str | Path = "<bytes>") -> np.ndarray:
    """Decode encoded image bytes (PNG/JPEG/...) to RGB uint8 (H, W, 3)."""
    path = Path(path)
    _check_container(path, data)
    buf = np.frombuffer(data, dtype=np.uint8)
    img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if img is None or img.size == 0:
        raise FrameError(path, "cannot be decoded as an image (not a PNG/JPEG, or corrupt)")
    return to_rgb8(img, path)


def read_frame(path: str | Path) -> np.ndarray:
    """Read one frame as RGB uint8 (H, W, 3).

    Grayscale, RGBA and 16-bit images are converted. Raises ``FrameError`` naming the file
    for a missing, empty, truncated or undecodable file.
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise FrameError(path, "frame file not found") from None
    except IsADirectoryError:
        raise FrameError(path, "is a folder, not a frame image") from None
    except OSError as exc:
        raise FrameError(path, f"cannot be read ({exc.strerror or exc})") from None
    return decode_frame(data, path)


def read_frames(paths: list[str | Path]) -> list[np.ndarray]:
    """Read several frames (in order); the first bad one raises ``FrameError``."""
    return [read_frame(p) for p in paths]


def file_size(path: str | Path) -> int:
    """Size in bytes, 0 when missing (used in cheap fingerprints)."""
    try:
        return os.stat(path).st_size
    except OSError:
        return 0
