"""Reading frame images: always RGB uint8 (H, W, 3), or a ``FrameError`` naming the file.

OpenCV decodes (≈2,600 PNG/s here, faster than PIL). ``cv2.imread`` only says "None" on
failure and half-decodes truncated JPEGs with a warning on stderr, so the checks that
give the user a reason (empty file, not an image, truncated) are made here.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

import cv2
import numpy as np

from reidviewer.errors import FrameError

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8"
_PNG_END = b"IEND\xaeB`\x82"

#: Smallest usable frame side, in pixels (a 1×1 "frame" is not a person crop).
MIN_FRAME_SIDE = 4
#: Largest frame file read, in bytes (a re-ID crop is kilobytes; this refuses a stray video).
MAX_FRAME_BYTES = 256 * 1024 * 1024

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


#: ``cv2.imdecode`` flags that let libjpeg decode a JPEG at 1/2, 1/4 or 1/8 of its size (a
#: scaled inverse DCT: several times faster than decoding in full and shrinking).
_REDUCED = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}


def is_jpeg(data: bytes) -> bool:
    """Whether encoded bytes are a JPEG (its SOI marker)."""
    return data[:2] == b"\xff\xd8"


def decode_frame(data: bytes, path: str | Path = "<bytes>", reduce: int = 1) -> np.ndarray:
    """Decode encoded image bytes (PNG/JPEG/...) to RGB uint8 (H, W, 3).

    Args:
        data: the encoded bytes.
        path: the file they came from (for messages).
        reduce: 2, 4 or 8: a JPEG is decoded at that fraction of its size (libjpeg's scaled
            DCT); other formats, and ``reduce=1``, decode in full.
    """
    path = Path(path)
    _check_container(path, data)
    buf = np.frombuffer(data, dtype=np.uint8)
    flag = _REDUCED.get(int(reduce)) if reduce != 1 and is_jpeg(data) else None
    try:
        if flag is not None:
            img = cv2.imdecode(buf, flag)  # BGR, 8-bit
            if img is not None and img.size and min(img.shape[:2]) >= MIN_FRAME_SIDE:
                return np.ascontiguousarray(img[:, :, ::-1])
        img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:  # e.g. more pixels than OpenCV's safety limit
        raise FrameError(path, f"cannot be decoded ({str(exc).strip().splitlines()[-1]})") from None
    if img is None or img.size == 0:
        raise FrameError(path, "cannot be decoded as an image (not a PNG/JPEG, or corrupt)")
    h, w = img.shape[:2]
    if min(h, w) < MIN_FRAME_SIDE:
        raise FrameError(path, f"is {w}×{h} pixels: too small to be a person crop "
                               f"(at least {MIN_FRAME_SIDE}×{MIN_FRAME_SIDE})")
    return to_rgb8(img, path)


def read_frame(path: str | Path, reduce: int = 1) -> np.ndarray:
    """Read one frame as RGB uint8 (H, W, 3).

    Grayscale, RGBA and 16-bit images are converted. Raises ``FrameError`` naming the file
    for a missing, empty, truncated or undecodable file. ``reduce`` (2, 4, 8) decodes a JPEG at
    that fraction of its size (``decode_frame``).
    """
    path = Path(path)
    try:
        # A stat first: a FIFO or device named .png would block open() or never end.
        st = os.stat(path)
        if stat.S_ISDIR(st.st_mode):
            raise FrameError(path, "is a folder, not a frame image")
        if not stat.S_ISREG(st.st_mode):
            raise FrameError(path, "is not a regular file (a FIFO, device or socket), not a frame image")
        if st.st_size > MAX_FRAME_BYTES:
            raise FrameError(path, f"is {st.st_size / 2**20:.0f} MB: too large for a frame image")
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise FrameError(path, "frame file not found") from None
    except IsADirectoryError:
        raise FrameError(path, "is a folder, not a frame image") from None
    except OSError as exc:
        raise FrameError(path, f"cannot be read ({exc.strerror or exc})") from None
    return decode_frame(data, path, reduce)
