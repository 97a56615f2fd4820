"""A figure laid out in inches: images, boxes and text placed exactly, y pointing down.

Thumbnail figures (rankings, failure cases, attention strips) are drawn on one axes that
covers the whole figure, in inch coordinates. Text sizes are in points, so every gap and label
band can be computed (``pt / 72`` inches) and the figure made exactly as tall as its content —
no ``tight_layout`` guessing, and the figure keeps the exact width asked for (a PNG is
``width × dpi`` pixels wide).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from reidviewer.figures.frames import Thumb
from reidviewer.figures.options import FigureError
from reidviewer.figures.style import BASE_FONT_SIZE


def pt(points: float) -> float:
    """Points to inches."""
    return points / 72.0


class Canvas:
    """A ``Figure`` of ``width × height`` inches with one full-size axes in inch units.

    Args:
        width, height: figure size in inches.
    """

    def __init__(self, width: float, height: float) -> None:
        self.width = float(width)
        self.height = float(height)
        self.fig = Figure(figsize=(self.width, self.height))
        ax = self.fig.add_axes((0.0, 0.0, 1.0, 1.0))
        ax.set_xlim(0.0, self.width)
        ax.set_ylim(self.height, 0.0)
        ax.set_autoscale_on(False)
        ax.set_axis_off()
        self.ax = ax

    def image(self, img: np.ndarray, x: float, y: float, w: float, h: float, **kw) -> None:
        """Draw an RGB image (or a 2-D array with ``cmap``/``vmin``/``vmax``) into a box."""
        self.ax.imshow(img, extent=(x, x + w, y + h, y), aspect="auto", zorder=1, **kw)

    def box(self, x: float, y: float, w: float, h: float, color: str, lw: float = 0.8,
            ls: str | tuple = "-", fill: str | None = None, zorder: float = 3) -> None:
        """A rectangle outline (``lw`` in points), optionally filled."""
        self.ax.add_patch(Rectangle((x, y), w, h, fill=fill is not None, facecolor=fill or "none",
                                    edgecolor=color, linewidth=lw, linestyle=ls, zorder=zorder,
                                    joinstyle="miter", capstyle="butt"))

    def line(self, xs: Sequence[float], ys: Sequence[float], color: str, lw: float = 0.6, ls: str = "-") -> None:
        """A polyline (``lw`` in points)."""
        self.ax.plot(xs, ys, color=color, linewidth=lw, linestyle=ls, zorder=2, solid_capstyle="butt")

    def text(self, x: float, y: float, s: str, size: float = BASE_FONT_SIZE - 1, ha: str = "center",
             va: str = "baseline", color: str = "black", **kw) -> None:
        """Text anchored at ``(x, y)`` inches."""
        self.ax.text(x, y, s, fontsize=size, ha=ha, va=va, color=color, zorder=4, **kw)

    def glyph_text(self, x: float, y: float, glyph: str, colour: str, text: str, size: float,
                   ha: str = "center", **kw) -> None:
        """A coloured bold ✓/✗ then black ``text`` on baseline ``y``: centred as a pair on ``x``
        (``ha="center"``) or starting at ``x`` (``ha="left"``)."""
        gw = text_width(glyph, size + 0.5, True) + (0.02 if text else 0.0)
        total = gw + (text_width(text, size, kw.get("fontweight") == "bold") if text else 0.0)
        left = x - total / 2 if ha == "center" else x
        self.text(left, y, glyph, size=size + 0.5, ha="left", color=colour, fontweight="bold")
        if text:
            self.text(left + gw, y, text, size=size, ha="left", **kw)

    def thumbs(self, thumbs: Sequence[Thumb], x: float, y: float, fw: float, fh: float, gap: float,
               note_size: float = 4.5) -> None:
        """A strip of thumbnails from ``(x, y)``, each ``fw × fh`` with ``gap`` between them.

        Placeholders (unreadable frames) carry their note, written small and centred.
        """
        for j, t in enumerate(thumbs):
            tx = x + j * (fw + gap)
            self.image(t.image, tx, y, fw, fh)
            if t.note:
                self.text(tx + fw / 2, y + fh / 2, t.note.replace(" ", "\n"), size=note_size,
                          va="center", color="#444444", linespacing=1.0)


@dataclass(frozen=True)
class Grid:
    """Where the thumbnails of a rows × columns figure go (all in inches).

    Attributes:
        fw, fh: one thumbnail's width and height.
        col_x: left edge of each column.
        col_w: width of each column (its strip of thumbnails).
        row_y: top edge of each row's images.
        height: the figure height.
    """

    fw: float
    fh: float
    col_x: list[float]
    col_w: list[float]
    row_y: list[float]
    height: float


def grid(
    frames: Sequence[int],
    gaps: Sequence[float],
    n_rows: int,
    width: float,
    height: float | None,
    aspect: float,
    header: float,
    above: float,
    below: float,
    row_gap: float,
    margin: float,
    frame_gap: float,
    max_fh: float,
) -> Grid:
    """Size thumbnails to fill ``width`` (and ``height`` when given), then place everything.

    Args:
        frames: thumbnails in each column.
        gaps: space before each column (``gaps[0]`` is ignored; the left margin is used).
        n_rows: rows of images.
        width, height: figure size; ``height`` None: as tall as the content.
        aspect: thumbnail height / width.
        header: band above the first row (column titles).
        above, below: label bands above and below each row's images.
        row_gap: space between rows.
        margin: outer margin on every side.
        frame_gap: space between the thumbnails of one strip.
        max_fh: thumbnails are never taller than this (wide figures of few columns).
    """
    n_thumbs = sum(frames)
    fixed_w = 2 * margin + sum(gaps[1:]) + sum(max(0, f - 1) for f in frames) * frame_gap
    fw = (width - fixed_w) / max(1, n_thumbs)
    fw = min(fw, max_fh / aspect)
    fixed_h = 2 * margin + header + n_rows * (above + below) + max(0, n_rows - 1) * row_gap
    if height is not None:
        fw = min(fw, (height - fixed_h) / max(1, n_rows) / aspect)
    if fw <= 0.02:
        raise FigureError("--size", f"the figure is too small for {n_rows} row(s) of {n_thumbs} frames; "
                          "choose a larger size or fewer queries, frames or top-k")
    fh = fw * aspect
    content_w = fixed_w + n_thumbs * fw
    content_h = fixed_h + n_rows * fh
    fig_h = content_h if height is None else height
    x = margin + (width - content_w) / 2
    y0 = margin + (fig_h - content_h) / 2 + header
    col_x, col_w = [], []
    for i, f in enumerate(frames):
        if i:
            x += gaps[i]
        w = f * fw + max(0, f - 1) * frame_gap
        col_x.append(x)
        col_w.append(w)
        x += w
    row_y = [y0 + r * (above + fh + below + row_gap) + above for r in range(n_rows)]
    return Grid(fw, fh, col_x, col_w, row_y, fig_h)


@lru_cache(maxsize=4096)
def text_width(s: str, size: float, bold: bool = False) -> float:
    """Width in inches of ``s`` set in DejaVu Sans at ``size`` points (measured from the font)."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextToPath

    prop = FontProperties(family="DejaVu Sans", size=size, weight="bold" if bold else "normal")
    w, _, _ = TextToPath().get_text_width_height_descent(s, prop, ismath=False)
    return w / 72.0


def fit_text(candidates: Sequence[str], width: float, size: float, bold: bool = False) -> str:
    """The first candidate that fits ``width`` inches at ``size`` points (else the last one)."""
    for s in candidates:
        if text_width(s, size, bold) <= width:
            return s
    return candidates[-1]


def fmt_distance(d: float) -> str:
    """A distance with three significant digits (0.823, 12.3)."""
    d = float(d)
    if not np.isfinite(d):
        return "–"
    return f"{d:.2f}" if abs(d) < 10 else f"{d:.1f}" if abs(d) < 100 else f"{d:.0f}"
