"""Model B against model A (the compare figure): CMC overlay, per-query AP scatter, and a strip of
queries B fixed and broke — each with its probe, A's top-1 and B's top-1.

Top: the two CMC curves (colour, line style *and* marker differ, as in ``cmc``) and the AP of
every query under A (x) against B (y), fixed queries as up-triangles, broken ones as
down-triangles, the rest as small grey dots, so the scatter reads in greyscale. Bottom: rows of
``count`` queries fixed by B (left) and broken by B (right): probe | A's top-1 | B's top-1, true
matches boxed solid with a ✓, false ones dashed with a ✗ (``ranking.match_box``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from reidviewer.figures.canvas import Canvas, fit_text, fmt_distance, grid, pt
from reidviewer.figures.cmc import curve_labels
from reidviewer.figures.frames import FrameSource
from reidviewer.figures.options import FigureError, FigureOptions, figure_size
from reidviewer.figures.ranking import FRAME_GAP, match_box, match_label
from reidviewer.figures.style import BASE_FONT_SIZE, ITERATION_COLORS, LINE_STYLES, MARKERS, NEUTRAL, PROBE

if TYPE_CHECKING:
    from reidviewer.data.dataset import VideoDataset
    from reidviewer.engine.results import Results

HEAD_SIZE = BASE_FONT_SIZE
LABEL_SIZE = BASE_FONT_SIZE - 1
MARGIN = 0.04
GROUP_GAP = 0.22
CELL_GAP = 0.05
ROW_GAP = 0.06


def _cases(comparison, options: FigureOptions) -> tuple[list[int], list[int]]:
    """Fixed and broken query rows to show: the named ones split by kind, else the top ``count`` of each."""
    n = options.count_for("compare")
    if options.queries:
        rows = [int(r) for r in options.queries]
        fixed = [r for r in rows if comparison.fixed_mask[r]]
        broken = [r for r in rows if comparison.broken_mask[r]]
        if not fixed and not broken:
            raise FigureError("queries", "none of the named queries was fixed or broken by B")
        return fixed, broken
    return [int(r) for r in comparison.fixed_rows()[:n]], [int(r) for r in comparison.broken_rows()[:n]]


def build_compare(dataset: VideoDataset, a: Results, b: Results, options: FigureOptions) -> Figure:
    """The compare figure of results ``a`` and ``b``; see the module docstring.

    Args:
        dataset: the dataset both were computed on (for the frames).
        a, b: the two evaluations (same queries and gallery, else ``ComparisonError``).
        options: size, ``labels`` (A's and B's names), ``count`` (cases per side), ``queries``,
            ``frames``, ``max_rank``, ``show_distances``.
    """
    from reidviewer.engine.compare import Comparison

    names = curve_labels([a, b], options.labels)
    c = Comparison(a, b, names[0], names[1])
    width, height = figure_size(options.size)
    fixed, broken = _cases(c, options)
    n_rows = max(len(fixed), len(broken), 1)
    n = options.frames_for("compare")

    # Bottom strip layout: two groups of three columns (probe, A top-1, B top-1).
    frames = [n] * 6
    gaps = [0.0, CELL_GAP, CELL_GAP, GROUP_GAP, CELL_GAP, CELL_GAP]
    line = pt(LABEL_SIZE) * 1.45
    head = pt(HEAD_SIZE) * 1.6 + line
    src = FrameSource()
    tr = dataset.tracklets
    shown = [tr[int(a.query_indices[r])] for r in fixed + broken] or [tr[int(a.query_indices[0])]]
    aspect = src.aspect_of(shown)
    plots_h = min(width * 0.42, 2.4) if height is None else max(1.0, height * 0.45)
    strip_h = None if height is None else height - plots_h
    g = grid(frames, gaps, n_rows, width, strip_h, aspect, header=head, above=0.0, below=line + pt(1),
             row_gap=ROW_GAP, margin=MARGIN, frame_gap=FRAME_GAP, max_fh=0.95)
    total_h = plots_h + g.height
    cv = Canvas(width, total_h)
    fig = cv.fig

    # ---- top: CMC overlay and AP scatter (axes placed in inches, from the top).
    def axes(x0: float, x1: float) -> object:
        bottom, top = 0.36, 0.24
        return fig.add_axes((x0 / width, (total_h - plots_h + bottom) / total_h,
                             (x1 - x0) / width, (plots_h - bottom - top) / total_h))

    left = 0.42
    mid = width * 0.5
    ax = axes(left, mid - 0.12)
    lowest = 100.0
    n_max = 1
    for i, (r, name) in enumerate(zip((a, b), names)):
        cmc = np.asarray(r.cmc, dtype=np.float64) * 100.0
        k = min(options.max_rank, len(cmc))
        if k == 0:
            continue
        x = np.arange(1, k + 1)
        marks = [j for j in range(k) if j == 0 or (j + 1) % 5 == 0]
        ax.plot(x, cmc[:k], color=ITERATION_COLORS[i], linestyle=LINE_STYLES[i], marker=MARKERS[i],
                markevery=marks, label=f"{'AB'[i]}: {name} (R1 {cmc[0]:.1f}%)", clip_on=False, zorder=3)
        lowest = min(lowest, float(cmc[:k].min()))
        n_max = max(n_max, k)
    ax.set_xlabel("Rank")
    ax.set_ylabel("Matching rate (%)")
    ax.set_xlim(1, max(2, n_max))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=6))
    ax.set_ylim(max(0.0, np.floor(lowest / 10.0) * 10.0 - 5.0), 100.0)
    ax.grid(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.legend(loc="lower right", handlelength=2.2, fontsize=BASE_FONT_SIZE - 1.5)

    ax2 = axes(mid + 0.38, width - 0.12)
    v = c.valid
    other = v & ~c.fixed_mask & ~c.broken_mask
    ax2.plot([0, 1], [0, 1], color=NEUTRAL, lw=0.5, ls=(0, (2, 2)), zorder=1)
    ax2.scatter(c.ap_a[other], c.ap_b[other], s=4, color="#9a9a9a", linewidths=0, zorder=2, label="same at R1")
    ax2.scatter(c.ap_a[c.fixed_mask], c.ap_b[c.fixed_mask], s=12, marker="^", color=ITERATION_COLORS[2],
                linewidths=0, zorder=3, label=f"fixed by B ({c.fixed})")
    ax2.scatter(c.ap_a[c.broken_mask], c.ap_b[c.broken_mask], s=12, marker="v", color=ITERATION_COLORS[5],
                linewidths=0, zorder=3, label=f"broken by B ({c.broken})")
    ax2.set_xlim(-0.02, 1.02)
    ax2.set_ylim(-0.02, 1.02)
    ax2.set_aspect("auto")
    ax2.set_xlabel(f"AP, A: {fit_text([names[0], 'A'], 1.2, BASE_FONT_SIZE)}")
    ax2.set_ylabel(f"AP, B: {fit_text([names[1], 'B'], 1.0, BASE_FONT_SIZE)}")
    p = c.mcnemar_p
    ax2.set_title(f"McNemar p = {p:.2g}" if p < 0.001 else f"McNemar p = {p:.3f}", fontsize=BASE_FONT_SIZE - 1)
    for side in ("top", "right"):
        ax2.spines[side].set_visible(False)
    ax2.legend(loc="lower right", fontsize=BASE_FONT_SIZE - 2, handletextpad=0.2, borderaxespad=0.2, markerscale=1.2)

    # ---- bottom: the fixed / broken strip (canvas inches, y down, offset by the plots).
    y_off = plots_h
    row_y = [y + y_off for y in g.row_y]
    top = row_y[0] - pt(LABEL_SIZE) * 0.6
    titles = ["Probe", "A top-1", "B top-1"]
    for grp, (title, rows) in enumerate(((f"Fixed by B ({c.fixed})", fixed), (f"Broken by B ({c.broken})", broken))):
        c0 = 3 * grp
        x_a, x_b = g.col_x[c0], g.col_x[c0 + 2] + g.col_w[c0 + 2]
        cv.text((x_a + x_b) / 2, top - line, title, size=HEAD_SIZE, fontweight="bold")
        for j in range(3):
            cv.text(g.col_x[c0 + j] + g.col_w[c0 + j] / 2, top, fit_text([titles[j], titles[j][0]], g.col_w[c0 + j]
                    + CELL_GAP, LABEL_SIZE), size=LABEL_SIZE, color="#333333")
        if not rows:
            cv.text((x_a + x_b) / 2, row_y[0] + g.fh / 2, "none", size=LABEL_SIZE, va="center", color=NEUTRAL)
        for i, q in enumerate(rows):
            y = row_y[i]
            below = y + g.fh + line - pt(1.2)
            probe = tr[int(a.query_indices[q])]
            cv.thumbs(src.strip(probe, n), g.col_x[c0], y, g.fw, g.fh, FRAME_GAP)
            cv.box(g.col_x[c0], y, g.col_w[c0], g.fh, PROBE, lw=0.6)
            cv.text(g.col_x[c0] + g.col_w[c0] / 2, below,
                    fit_text([probe.person, f"ID {probe.pid}"], g.col_w[c0] + CELL_GAP, LABEL_SIZE), size=LABEL_SIZE)
            for j, r in enumerate((a, b)):
                rows_r, dist, match = r.ranked(q, 1)
                col = c0 + 1 + j
                if not len(rows_r):
                    continue
                t = tr[int(r.gallery_indices[int(rows_r[0])])]
                cv.thumbs(src.strip(t, n), g.col_x[col], y, g.fw, g.fh, FRAME_GAP)
                match_box(cv, g.col_x[col], y, g.col_w[col], g.fh, bool(match[0]))
                match_label(cv, g.col_x[col] + g.col_w[col] / 2, below, bool(match[0]),
                            fmt_distance(dist[0]) if options.show_distances else "")
    x_sep = g.col_x[3] - GROUP_GAP / 2
    cv.line([x_sep, x_sep], [top - line - pt(HEAD_SIZE), row_y[-1] + g.fh + line], NEUTRAL, lw=0.4,
            ls=(0, (1, 1.5)))
    return fig
