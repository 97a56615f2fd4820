"""Failure cases (a paper's "Figure 4"): the probe, the wrong rank-1, and the true match with its rank.

One row per failed query (worst AP first unless queries are named), each tracklet a short
strip of evenly spread frames. The wrong rank-1 has the red dashed border and ✗, the true match
the green solid border and ✓, as in the ranking figure.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from matplotlib.figure import Figure

from reidviewer.figures.canvas import Canvas, fit_text, fmt_distance, grid, pt, text_width
from reidviewer.figures.frames import FrameSource
from reidviewer.figures.options import FigureOptions, figure_size, select_queries
from reidviewer.figures.ranking import (
    CELL_GAP, FRAME_GAP, HEAD_SIZE, LABEL_SIZE, MARGIN, MAX_THUMB_H, ROW_GAP, SEP_GAP, match_box, probe_cell,
)
from reidviewer.figures.style import CHECK, CROSS, MATCH, NEUTRAL, NON_MATCH

if TYPE_CHECKING:
    from reidviewer.data.dataset import VideoDataset
    from reidviewer.engine.results import Results


def build_failures(dataset: VideoDataset, results: Results, options: FigureOptions) -> Figure:
    """Failure cases; see the module docstring.

    Args:
        dataset: the dataset the results were computed on (for the frames).
        results: the evaluation.
        options: size, queries (or ``count`` worst failures), ``frames``, ``show_distances``.
    """
    rows = select_queries("failures", results, options)
    n = options.frames_for("failures")
    width, height = figure_size(options.size)
    tr = dataset.tracklets
    src = FrameSource()
    aspect = src.aspect_of([tr[int(results.query_indices[r])] for r in rows])
    line = pt(LABEL_SIZE) * 1.45
    head = pt(HEAD_SIZE) * 1.6
    g = grid([n, n, n], [0.0, SEP_GAP, SEP_GAP + CELL_GAP], len(rows), width, height, aspect, header=head,
             above=0.0, below=line + pt(1), row_gap=ROW_GAP, margin=MARGIN, frame_gap=FRAME_GAP,
             max_fh=MAX_THUMB_H)
    c = Canvas(width, g.height)
    top = g.row_y[0] - pt(HEAD_SIZE) * 0.45
    titles = (["Query", "Probe"], ["Wrong rank-1", "Rank-1 ✗", "Rank-1"], ["True match", "Match"])
    for i, options_ in enumerate(titles):
        c.text(g.col_x[i] + g.col_w[i] / 2, top, fit_text(options_, g.col_w[i] + SEP_GAP, HEAD_SIZE, True),
               size=HEAD_SIZE, fontweight="bold")
    x_sep = g.col_x[1] - SEP_GAP / 2
    c.line([x_sep, x_sep], [g.row_y[0], g.row_y[-1] + g.fh + line], NEUTRAL, lw=0.4, ls=(0, (1, 1.5)))

    for row, r in enumerate(rows):
        probe = tr[int(results.query_indices[r])]
        y, below = probe_cell(c, g, row, line, src.strip(probe, n), probe, g.col_w[0] + SEP_GAP)

        top_rows, top_d, top_m = results.ranked(r, 1)
        t = tr[int(results.gallery_indices[int(top_rows[0])])]
        x = g.col_x[1]
        c.thumbs(src.strip(t, n), x, y, g.fw, g.fh, FRAME_GAP)
        match_box(c, x, y, g.col_w[1], g.fh, bool(top_m[0]))
        w = g.col_w[1] + SEP_GAP
        d = fmt_distance(top_d[0])
        cands = [f"{t.person} · d {d}", f"{t.person} · {d}", f"ID {t.pid} · {d}", d] if options.show_distances \
            else [t.person, f"ID {t.pid}"]
        text = fit_text(cands, w - text_width(CROSS, LABEL_SIZE + 0.5, True) - 0.02, LABEL_SIZE)
        c.glyph_text(x + g.col_w[1] / 2, below, CROSS, NON_MATCH, text, LABEL_SIZE)

        g_rows, ranks, dists = results.true_matches(r)
        x = g.col_x[2]
        if not len(g_rows):
            c.text(x + g.col_w[2] / 2, y + g.fh / 2, "no true match\nin the gallery", size=LABEL_SIZE,
                   va="center", color=NEUTRAL)
            continue
        t = tr[int(results.gallery_indices[int(g_rows[0])])]
        c.thumbs(src.strip(t, n), x, y, g.fw, g.fh, FRAME_GAP)
        match_box(c, x, y, g.col_w[2], g.fh, True)
        d = fmt_distance(dists[0])
        rank = int(ranks[0])
        cands = [f"rank {rank} · d {d}", f"rank {rank} · {d}", f"#{rank} · {d}"] if options.show_distances \
            else [f"rank {rank}", f"#{rank}"]
        w = g.col_w[2] + SEP_GAP - text_width(CHECK, LABEL_SIZE + 0.5, True) - 0.02
        c.glyph_text(x + g.col_w[2] / 2, below, CHECK, MATCH, fit_text(cands, w, LABEL_SIZE), LABEL_SIZE)
    return c.fig
