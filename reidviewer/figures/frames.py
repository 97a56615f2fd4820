"""Frames for figures: evenly sampled, resized to one size, a grey placeholder for a bad file.

A figure never fails because one frame is missing or corrupt: the frame becomes a grey
placeholder and the builder writes a small note on it ("missing frame"), so the reader of the
figure sees that something is absent instead of a silently wrong picture.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from reidviewer.data.frames import read_frame
from reidviewer.data.tracklet import Tracklet
from reidviewer.errors import FrameError

#: Frames taller than this are shrunk (at 300 dpi a single-column thumbnail is about 250 px
#: high); smaller ones keep their pixels, so a PDF embeds the frames as they are.
MAX_THUMB_PX = 256
PLACEHOLDER_GREY = 200


@dataclass(frozen=True)
class Thumb:
    """One frame ready to draw: ``image`` (RGB uint8) and ``note`` (None, or why it is a placeholder)."""

    image: np.ndarray
    note: str | None = None


def sample_frames(length: int, n: int) -> list[int]:
    """``n`` frame indices spread evenly over ``length`` frames (each the centre of its share).

    Centring keeps a thumbnail above the part of an attention row it stands for. A tracklet
    shorter than ``n`` repeats frames, so every strip of a figure has the same width.
    """
    if length <= 0 or n <= 0:
        return []
    if n == length:
        return list(range(length))
    return [min(length - 1, int((j + 0.5) * length / n)) for j in range(n)]


class FrameSource:
    """Reads and resizes frames for one figure, remembering each (figures reuse tracklets).

    Args:
        aspect: height / width of the thumbnails; ``None``: that of the first frame read
            (2.0 if none can be read).
    """

    def __init__(self, aspect: float | None = None) -> None:
        self._aspect = aspect
        self._cache: dict[tuple[str, int], Thumb] = {}

    def aspect_of(self, tracklets: list[Tracklet]) -> float:
        """The thumbnails' height / width, fixed at the first readable frame of ``tracklets``."""
        if self._aspect is None:
            for t in tracklets:
                if len(t) == 0:
                    continue
                try:
                    img = read_frame(t.frame_path(0))
                except FrameError:
                    continue
                self._aspect = float(np.clip(img.shape[0] / max(1, img.shape[1]), 0.5, 4.0))
                break
            else:
                self._aspect = 2.0
        return self._aspect

    def _fit(self, img: np.ndarray) -> np.ndarray:
        """Stretch a frame to the figure's aspect (re-ID figures show crops at one aspect)."""
        h = min(img.shape[0], MAX_THUMB_PX)
        w = max(4, int(round(h / (self._aspect or 2.0))))
        if img.shape[:2] == (h, w):
            return img
        interp = cv2.INTER_AREA if img.shape[0] > h else cv2.INTER_LINEAR
        return cv2.resize(img, (w, h), interpolation=interp)

    def thumb(self, tracklet: Tracklet, i: int) -> Thumb:
        """Frame ``i`` of ``tracklet``; a grey placeholder with a note when unreadable."""
        key = (tracklet.key or str(tracklet.index), int(i))
        if key in self._cache:
            return self._cache[key]
        try:
            if not 0 <= i < len(tracklet):
                raise FrameError(tracklet.key, f"no frame {i}")
            thumb = Thumb(self._fit(read_frame(tracklet.frame_path(i))))
        except FrameError as exc:
            note = "missing frame" if "not found" in str(exc) else "bad frame"
            h = 128
            w = max(4, int(round(h / (self._aspect or 2.0))))
            thumb = Thumb(np.full((h, w, 3), PLACEHOLDER_GREY, dtype=np.uint8), note)
        self._cache[key] = thumb
        return thumb

    def strip(self, tracklet: Tracklet, n: int) -> list[Thumb]:
        """``n`` evenly spread frames of ``tracklet`` (repeated when it is shorter)."""
        if len(tracklet) == 0:
            return [self.thumb(tracklet, 0)] * n  # placeholders: an empty tracklet has no frame
        return [self.thumb(tracklet, i) for i in sample_frames(len(tracklet), n)]
