"""Colours shared by the widgets: the attention colour map and the true/false match colours.

True/false matches are never told by colour alone: a ✓ / ✗ glyph and a solid / dashed
border go with green / red, so colour-blind users can tell them apart.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtGui import QColor

# Viridis at 9 stops (matplotlib's values), interpolated linearly: perceptually ordered and
# readable by colour-blind users. Hard-coded so the app does not import matplotlib to start.
_VIRIDIS = np.array(
    [
        [68, 1, 84], [71, 44, 122], [59, 81, 139], [44, 113, 142], [33, 144, 141],
        [39, 173, 129], [92, 200, 99], [170, 220, 50], [253, 231, 37],
    ],
    dtype=np.float64,
)

MATCH = QColor(26, 150, 65)       # green
NON_MATCH = QColor(215, 48, 39)   # red
NEUTRAL = QColor(120, 120, 120)
FLAG = QColor(255, 170, 0)        # orange: annotated frames

#: One distinct colour per refinement iteration (Okabe–Ito palette, colour-blind safe).
ITERATION_COLORS = [
    QColor(0, 114, 178), QColor(230, 159, 0), QColor(0, 158, 115), QColor(204, 121, 167),
    QColor(86, 180, 233), QColor(213, 94, 0), QColor(240, 228, 66), QColor(0, 0, 0),
]


def iteration_color(k: int) -> QColor:
    """The colour of refinement iteration ``k`` in plots and legends."""
    return ITERATION_COLORS[k % len(ITERATION_COLORS)]


def viridis(values: np.ndarray) -> np.ndarray:
    """Map values in [0, 1] to RGB uint8 colours (…, 3)."""
    v = np.clip(np.asarray(values, dtype=np.float64), 0.0, 1.0) * (len(_VIRIDIS) - 1)
    lo = np.floor(v).astype(int)
    hi = np.minimum(lo + 1, len(_VIRIDIS) - 1)
    t = (v - lo)[..., None]
    return (_VIRIDIS[lo] * (1 - t) + _VIRIDIS[hi] * t).round().astype(np.uint8)
