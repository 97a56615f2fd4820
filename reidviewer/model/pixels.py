"""``--model pixels``: a colour-statistics baseline that needs no training.

Per frame: the crop is downsampled to 64 x 32 and each RGB channel is histogram-equalised (so
a camera's gain, gamma and colour cast, any monotone change of a channel, leave it nearly
unchanged), converted to HSV, and cut into ``stripes`` horizontal bands (head ... feet). Each
band gives a joint hue x saturation histogram (12 x 4 bins) and a value histogram (12 bins),
its pixels weighted by a Gaussian across the width (sigma = 15 % of it) so that the person in
the middle counts more than the background at the sides. The histograms are square-rooted (the
Hellinger map: Euclidean distance then compares them like the Bhattacharyya coefficient) and
L2-normalised. The tracklet's feature is the mean over its frames, L2-normalised again. No
attention: every frame counts alike.

It answers "is my model better than raw colour?": the line to beat in Metrics and figures.
It is built through the same factory seam as any plugin (``reidviewer.model.plugins``).
"""
from __future__ import annotations

import cv2
import numpy as np

#: Bumped whenever the descriptor changes, so cached results are recomputed.
VERSION = 2
SIZE = (32, 64)  # cv2's (width, height)
HUE_BINS, SAT_BINS, VAL_BINS = 12, 4, 12
#: Gaussian weight across the width: sigma as a fraction of the width.
CENTRE_SIGMA = 0.15


class PixelsModel:
    """Equalised, centre-weighted, striped HSV histograms; mean over frames.

    Args:
        stripes: horizontal bands per frame (default 6).
    """

    def __init__(self, stripes: int = 6) -> None:
        if not 1 <= stripes <= 32:
            raise ValueError(f"stripes must be 1..32, not {stripes}")
        self.stripes = int(stripes)
        self.cache_key = f"pixels-v{VERSION}-stripes{self.stripes}"
        w, h = SIZE
        x = (np.arange(w) - (w - 1) / 2) / (CENTRE_SIGMA * w)
        self._weight = np.repeat(np.exp(-0.5 * x * x)[None, :], h, axis=0).ravel()
        self._band = np.repeat((np.arange(h) * self.stripes // h)[:, None], w, axis=1).ravel()

    @property
    def dims(self) -> int:
        return self.stripes * (HUE_BINS * SAT_BINS + VAL_BINS)

    def frame_descriptor(self, frame: np.ndarray) -> np.ndarray:
        """The L2-normalised descriptor of one RGB uint8 frame."""
        img = cv2.resize(np.ascontiguousarray(frame), SIZE, interpolation=cv2.INTER_AREA)
        img = np.stack([cv2.equalizeHist(np.ascontiguousarray(img[..., c])) for c in range(3)], axis=-1)
        hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV).reshape(-1, 3).astype(np.int64)  # H 0..179, S, V 0..255
        h = hsv[:, 0] * HUE_BINS // 180
        s = hsv[:, 1] * SAT_BINS // 256
        v = hsv[:, 2] * VAL_BINS // 256
        n_hs = self.stripes * HUE_BINS * SAT_BINS
        hs = np.bincount(self._band * HUE_BINS * SAT_BINS + h * SAT_BINS + s, weights=self._weight, minlength=n_hs)
        vh = np.bincount(self._band * VAL_BINS + v, weights=self._weight, minlength=self.stripes * VAL_BINS)
        desc = np.sqrt(np.concatenate([hs, vh])).astype(np.float32)
        return desc / max(float(np.linalg.norm(desc)), 1e-12)

    def embed(self, frames: np.ndarray) -> tuple[np.ndarray, None]:
        """``(feature, None)`` for one tracklet's uint8 ``(T, H, W, 3)`` frames."""
        feats = np.stack([self.frame_descriptor(f) for f in frames])
        mean = feats.mean(axis=0)
        return mean / max(float(np.linalg.norm(mean)), 1e-12), None


def create(arg: str | None = None) -> PixelsModel:
    """The factory: ``--model pixels`` or ``--model pixels:STRIPES``."""
    if arg in (None, ""):
        return PixelsModel()
    try:
        stripes = int(arg)
    except ValueError:
        raise ValueError(f"pixels takes the number of stripes (pixels:6), not {arg!r}") from None
    return PixelsModel(stripes)
