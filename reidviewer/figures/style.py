"""The look of every exported figure: fonts, line widths, colours and the size presets.

Everything is applied with ``matplotlib.rc_context`` around building *and* saving a figure
(``pdf.fonttype`` and ``svg.fonttype`` are read at save time), never by mutating the global
``rcParams``: the app and a user's own scripts may have their own matplotlib settings.

Fonts: DejaVu Sans ships with matplotlib, so a figure looks the same on every machine; PDFs embed
it as TrueType (``pdf.fonttype`` 42, editable in Illustrator/Inkscape, accepted by IEEE PDF
eXpress), SVGs keep text as ``<text>`` elements (``svg.fonttype`` "none"). A fixed
``svg.hashsalt`` makes the ids inside an SVG the same on every run, so the CLI and the app write
identical files for the same figure.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

#: Figure widths (inches) of the usual two-column paper templates (IEEE, CVF, Springer LNCS ≈).
SIZE_PRESETS: dict[str, float] = {"single": 3.3, "double": 6.9}

#: True match: green, drawn solid with a ✓; false match: red, dashed with a ✗ — so the
#: distinction survives greyscale printing and colour-blind readers (same as the app).
MATCH = "#1a9641"
NON_MATCH = "#d7302a"
PROBE = "#2b2b2b"
NEUTRAL = "#777777"
#: One colour per refinement iteration (Okabe–Ito, colour-blind safe; same order as the app).
ITERATION_COLORS = ["#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#000000"]
#: Line styles and markers cycled with the colours in line plots (readable in greyscale).
LINE_STYLES = ["-", "--", ":", "-."]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]

CHECK = "\u2713"  # ✓ (DejaVu Sans has it)
CROSS = "\u2717"  # ✗

BASE_FONT_SIZE = 7.0

_RC: dict[str, Any] = {
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],
    "font.size": BASE_FONT_SIZE,
    "axes.titlesize": BASE_FONT_SIZE,
    "axes.labelsize": BASE_FONT_SIZE,
    "xtick.labelsize": BASE_FONT_SIZE - 1,
    "ytick.labelsize": BASE_FONT_SIZE - 1,
    "legend.fontsize": BASE_FONT_SIZE - 1,
    "axes.linewidth": 0.6,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "xtick.major.size": 2.5,
    "ytick.major.size": 2.5,
    "lines.linewidth": 1.1,
    "lines.markersize": 3.0,
    "grid.linewidth": 0.4,
    "grid.alpha": 0.5,
    "legend.frameon": False,
    "mathtext.fontset": "dejavusans",
    "axes.unicode_minus": True,
    "pdf.fonttype": 42,
    "ps.fonttype": 42,
    "svg.fonttype": "none",
    "svg.hashsalt": "reidviewer",
    "svg.image_inline": True,
    "savefig.facecolor": "white",
    "savefig.edgecolor": "white",
    "figure.facecolor": "white",
    "image.interpolation": "antialiased",
    # Each frame stays its own image in PDF/SVG (composited, they would be resampled as one).
    "image.composite_image": False,
}

# rc_context changes the process-wide rcParams for its duration; two figures built at once in two
# threads (the app's preview worker and a save) would see each other's settings. One at a time.
_LOCK = threading.RLock()


@contextmanager
def paper_style() -> Iterator[None]:
    """Apply the paper style for building and saving one figure (thread-safe, reentrant)."""
    import matplotlib

    with _LOCK, matplotlib.rc_context(_RC):
        yield


def iteration_color(k: int) -> str:
    """Colour of refinement iteration ``k``."""
    return ITERATION_COLORS[k % len(ITERATION_COLORS)]
