"""Ranked retrievals (a paper's "Figure 5"): each probe, then its top-k gallery tracklets.

True matches are boxed in green with a solid line and a ✓, false ones in red with a thin dashed
line and a ✗, so the figure reads the same in greyscale. When a probe's first true match ranks
below the top-k, it is shown after a separator with its rank.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from matplotlib.figure import Figure

from reidviewer.figures.canvas import Canvas, Grid, fit_text, fmt_distance, grid, pt
from reidviewer.figures.frames import FrameSource, Thumb
from reidviewer.figures.options import FigureOptions, figure_size, select_queries
from reidviewer.figures.style import BASE_FONT_SIZE, CHECK, CROSS, MATCH, NEUTRAL, NON_MATCH, PROBE

if TYPE_CHECKING:
    from reidviewer.data.dataset import VideoDataset
    from reidviewer.data.tracklet import Tracklet
    from reidviewer.engine.results import Results

HEAD_SIZE = BASE_FONT_SIZE
LABEL_SIZE = BASE_FONT_SIZE - 1
MARGIN = 0.04
SEP_GAP = 0.12      # between the probe and the ranked list, and before the true-match column
CELL_GAP = 0.035    # between two gallery items
FRAME_GAP = 0.008   # between the frames of one strip
ROW_GAP = 0.07
MAX_THUMB_H = 1.1
MATCH_LW = 1.6
NON_MATCH_LW = 0.7
DASH = (0, (2.0, 1.4))


def match_box(c: Canvas, x: float, y: float, w: float, h: float, is_match: bool) -> None:
    """The true/false border around a gallery strip (outside the images, so no pixel is hidden)."""
    lw = MATCH_LW if is_match else NON_MATCH_LW
    o = pt(lw) / 2
    c.box(x - o, y - o, w + 2 * o, h + 2 * o, MATCH if is_match else NON_MATCH, lw=lw,
          ls="-" if is_match else DASH)


def match_label(c: Canvas, x: float, y: float, is_match: bool, extra: str) -> None:
    """``✓ 0.82`` / ``✗ 0.91`` centred at ``x`` on baseline ``y`` (only the glyph coloured)."""
    c.glyph_text(x, y, CHECK if is_match else CROSS, MATCH if is_match else NON_MATCH, extra, LABEL_SIZE)


def probe_cell(c: Canvas, g: Grid, row: int, line: float, strip: list[Thumb], probe: Tracklet, label_width: float
               ) -> tuple[float, float]:
    """Row ``row``'s probe column: its frames ``strip`` boxed as the probe, its name below
    (fitted to ``label_width``). Returns the row's top and the baseline of its labels."""
    y = g.row_y[row]
    below = y + g.fh + line - pt(1.2)
    c.thumbs(strip, g.col_x[0], y, g.fw, g.fh, FRAME_GAP)
    c.box(g.col_x[0], y, g.col_w[0], g.fh, PROBE, lw=0.6)
    label = fit_text([f"{probe.person} · {probe.camera}", probe.person, f"ID {probe.pid}"], label_width, LABEL_SIZE)
    c.text(g.col_x[0] + g.col_w[0] / 2, below, label, size=LABEL_SIZE)
    return y, below


def build_ranking(dataset: VideoDataset, results: Results, options: FigureOptions) -> Figure:
    """Probes and their ranked gallery; see the module docstring.

    Args:
        dataset: the dataset the results were computed on (for the frames).
        results: the evaluation.
        options: size, queries, ``top_k``, ``frames``, ``show_ranks``, ``show_distances``,
            ``show_true_match``.
    """
    rows = select_queries("ranking", results, options)
    n = options.frames_for("ranking")
    width, height = figure_size(options.size)
    tr = dataset.tracklets
    ranked = [results.ranked(r, options.top_k) for r in rows]
    k = max(1, max(len(g) for g, _, _ in ranked))
    beyond: list[tuple[int, int, float] | None] = []
    for r, (_, _, m) in zip(rows, ranked):
        if options.show_true_match and bool(results.valid[r]) and not m.any():
            g, rk, d = results.true_matches(r)
            beyond.append((int(g[0]), int(rk[0]), float(d[0])))
        else:
            beyond.append(None)
    extra_col = any(b is not None for b in beyond)

    frames = [n] * (1 + k + (1 if extra_col else 0))
    gaps = [0.0, SEP_GAP] + [CELL_GAP] * (k - 1) + ([SEP_GAP] if extra_col else [])
    line = pt(LABEL_SIZE) * 1.45
    head = pt(HEAD_SIZE) * 1.6
    src = FrameSource()
    shown = [tr[int(results.query_indices[r])] for r in rows]
    aspect = src.aspect_of(shown)
    g = grid(frames, gaps, len(rows), width, height, aspect, header=head,
             above=line if extra_col else 0.0, below=line + pt(1), row_gap=ROW_GAP, margin=MARGIN,
             frame_gap=FRAME_GAP, max_fh=MAX_THUMB_H)
    c = Canvas(width, g.height)

    # Column titles.
    top = g.row_y[0] - (line if extra_col else 0.0) - pt(HEAD_SIZE) * 0.45
    c.text(g.col_x[0] + g.col_w[0] / 2, top, "Query", size=HEAD_SIZE, fontweight="bold")
    if options.show_ranks:
        for i in range(k):
            x = g.col_x[1 + i] + g.col_w[1 + i] / 2
            c.text(x, top, fit_text([f"Rank {i + 1}", f"R{i + 1}", str(i + 1)], g.col_w[1 + i], HEAD_SIZE, True),
                   size=HEAD_SIZE, fontweight="bold")
    else:
        mid = (g.col_x[1] + g.col_x[k] + g.col_w[k]) / 2
        c.text(mid, top, f"Top {k} retrievals", size=HEAD_SIZE, fontweight="bold")
    if extra_col:
        x = g.col_x[-1] + g.col_w[-1] / 2
        c.text(x, top, fit_text(["True match", "Match", "GT"], g.col_w[-1] + SEP_GAP, HEAD_SIZE, True),
               size=HEAD_SIZE, fontweight="bold")

    # A faint rule between the probes and the ranked lists.
    x_sep = g.col_x[1] - SEP_GAP / 2
    y_a = g.row_y[0] - (line if extra_col else 0.0)
    y_b = g.row_y[-1] + g.fh + line
    c.line([x_sep, x_sep], [y_a, y_b], NEUTRAL, lw=0.4, ls=(0, (1, 1.5)))
    if extra_col:
        x_sep2 = g.col_x[-1] - SEP_GAP / 2
        c.line([x_sep2, x_sep2], [y_a, y_b], NEUTRAL, lw=0.4, ls=(0, (1, 1.5)))

    for row, r in enumerate(rows):
        probe = tr[int(results.query_indices[r])]
        y, below = probe_cell(c, g, row, line, src.strip(probe, n), probe, g.col_w[0] + SEP_GAP * 0.8)

        gallery_rows, dists, is_match = ranked[row]
        for i, (gr, d, m) in enumerate(zip(gallery_rows, dists, is_match)):
            t = tr[int(results.gallery_indices[int(gr)])]
            x = g.col_x[1 + i]
            c.thumbs(src.strip(t, n), x, y, g.fw, g.fh, FRAME_GAP)
            match_box(c, x, y, g.col_w[1 + i], g.fh, bool(m))
            match_label(c, x + g.col_w[1 + i] / 2, below, bool(m), fmt_distance(d) if options.show_distances else "")

        if extra_col:
            x = g.col_x[-1]
            cx = x + g.col_w[-1] / 2
            b = beyond[row]
            if b is None:
                note = "no true match" if not results.valid[r] else "in top " + str(k)
                c.text(cx, y + g.fh / 2, note.replace(" ", "\n", 1), size=LABEL_SIZE, va="center",
                       color=NEUTRAL, linespacing=1.1)
                continue
            gr, rank, d = b
            t = tr[int(results.gallery_indices[gr])]
            c.text(cx, y - pt(LABEL_SIZE) * 0.45, fit_text([f"rank {rank}", f"#{rank}"], g.col_w[-1] + SEP_GAP,
                                                           LABEL_SIZE), size=LABEL_SIZE)
            c.thumbs(src.strip(t, n), x, y, g.fw, g.fh, FRAME_GAP)
            match_box(c, x, y, g.col_w[-1], g.fh, True)
            match_label(c, cx, below, True, fmt_distance(d) if options.show_distances else "")
    return c.fig
