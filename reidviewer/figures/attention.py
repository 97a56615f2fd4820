"""Attention strips: a tracklet's frames with the attention of every refinement iteration beneath.

Each block is a strip of evenly spread frames above one heat row per iteration
(``α(0)`` .. ``α(K)``) covering *every* frame the model saw, so the strip's thumbnails stand over
the part of each row they belong to (small ticks mark the exact frames shown). RAN's attention is a
per-frame sigmoid, ``α ∈ (0, 1)`` (docs/method.md §3.3); it is drawn with viridis on the fixed 0–1 scale
the app uses, the same for every block so they can be compared, or (``attention_scale
"stretch"``) stretched to the figure's own range, which shows the small differences of a
nearly uniform attention — the colour bar then says which range. SynthWalk records how much of the person each frame hides; that is shown as an extra
grey row, so a reader sees whether attention avoids the occluded frames. With ``compare`` or
``gallery_row`` a gallery tracklet's block follows the probe's.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure

from reidviewer.figures.canvas import Canvas, fit_text, fmt_distance, pt, text_width
from reidviewer.figures.frames import FrameSource, sample_frames
from reidviewer.figures.options import FigureError, FigureOptions, figure_size, select_queries
from reidviewer.figures.style import BASE_FONT_SIZE, CHECK, CROSS, MATCH, NON_MATCH

if TYPE_CHECKING:
    from reidviewer.data.dataset import VideoDataset
    from reidviewer.data.tracklet import Tracklet
    from reidviewer.engine.results import Results

TITLE_SIZE = BASE_FONT_SIZE
LABEL_SIZE = BASE_FONT_SIZE - 1
MARGIN = 0.04
FRAME_GAP = 0.015
HEAT_H = 0.085
HEAT_GAP = 0.012
BLOCK_GAP = 0.1      # between a probe's block and its gallery block
GROUP_GAP = 0.16     # between two probes
MAX_THUMB_H = 1.0
CMAP = "viridis"
SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def iteration_label(k: int) -> str:
    """``α⁽ᵏ⁾`` in Unicode (no mathtext, so SVG text stays plain and editable)."""
    return "α⁽" + str(k).translate(SUPERSCRIPT) + "⁾"


@dataclass
class _Block:
    tracklet: Tracklet
    attention: np.ndarray       # (K + 1, T)
    start: int                  # first frame the attention covers
    occlusion: np.ndarray | None
    title: str
    glyph: tuple[str, str] | None = None  # (glyph, colour) before the title


def _block(dataset: VideoDataset, results: Results, index: int, title: str, gallery: bool,
           show_occlusion: bool, glyph: tuple[str, str] | None = None) -> _Block:
    t = dataset.tracklets[int(index)]
    if not results.has_attention(int(index)):
        raise FigureError(t.key or str(index), "the results hold no attention traces for this tracklet "
                          "(the model has no attention head, or the results file predates them)")
    att = np.asarray(results.attention(int(index)), dtype=np.float64)
    T = att.shape[1]
    # Evaluation may keep only the first (or, for the gallery with gallery_tail, the last) frames.
    start = max(0, len(t) - T) if gallery and results.settings.get("gallery_tail") else 0
    occ = None
    if show_occlusion and dataset.occlusion and t.key in dataset.occlusion:
        o = np.asarray(dataset.occlusion[t.key], dtype=np.float64)[start:start + T]
        occ = o if len(o) == T else None
    return _Block(t, att, start, occ, title, glyph)


def _blocks(dataset: VideoDataset, results: Results, options: FigureOptions) -> list[list[_Block]]:
    """One group per query: the probe's block, then the compared gallery block if any."""
    groups = []
    for r in select_queries("attention", results, options):
        q = int(results.query_indices[r])
        t = dataset.tracklets[q]
        group = [_block(dataset, results, q, f"Query · {t.person} · {t.camera} · {len(t)} frames", False,
                        options.show_occlusion)]
        g_row: int | None = None
        rank: int | None = None
        dist = float("nan")
        if options.gallery_row is not None:
            g_row = int(options.gallery_row)
            if not 0 <= g_row < results.num_gallery:
                raise FigureError("gallery_row", f"{g_row} is out of range (0..{results.num_gallery - 1})")
            rows, d, _ = results.ranked(r)
            hit = np.flatnonzero(rows == g_row)
            if len(hit):  # not ranked when the evaluation rule removes it (same camera)
                rank, dist = int(hit[0]) + 1, float(d[hit[0]])
        elif options.compare == "top1":
            rows, d, _ = results.ranked(r, 1)
            if len(rows):
                g_row, rank, dist = int(rows[0]), 1, float(d[0])
        elif options.compare == "match":
            rows, ranks, d = results.true_matches(r)
            if len(rows):
                g_row, rank, dist = int(rows[0]), int(ranks[0]), float(d[0])
        if g_row is not None:
            gi = int(results.gallery_indices[g_row])
            gt = dataset.tracklets[gi]
            is_match = int(results.gallery_pids[g_row]) == int(results.query_pids[r])
            parts = ["Gallery"]
            if rank is not None:
                parts.append(f"rank {rank}")
            parts += [gt.person, gt.camera, f"{len(gt)} frames"]
            if np.isfinite(dist):
                parts.append(f"d {fmt_distance(dist)}")
            glyph = (CHECK, MATCH) if is_match else (CROSS, NON_MATCH)
            group.append(_block(dataset, results, gi, " · ".join(parts), True, options.show_occlusion, glyph))
        groups.append(group)
    return groups


def build_attention(dataset: VideoDataset, results: Results, options: FigureOptions) -> Figure:
    """Attention strips; see the module docstring.

    Args:
        dataset: the dataset the results were computed on (for the frames).
        results: the evaluation (with attention traces).
        options: size, queries (default: the first), ``frames`` (default 8), ``compare`` /
            ``gallery_row``, ``show_occlusion``, ``attention_scale``.
    """
    if results.attention_iterations == 0:
        raise FigureError("results", "the results hold no attention traces (the model has no attention head)")
    groups = _blocks(dataset, results, options)
    blocks = [b for grp in groups for b in grp]
    n = options.frames_for("attention")
    width, height = figure_size(options.size)
    src = FrameSource()
    aspect = src.aspect_of([b.tracklet for b in blocks])
    k1 = results.attention_iterations
    if options.attention_scale == "stretch":
        vmin = min(float(b.attention.min()) for b in blocks)
        vmax = max(float(b.attention.max()) for b in blocks)
        if vmax - vmin < 1e-6:
            vmin, vmax = vmin - 0.005, vmax + 0.005
    else:
        vmin, vmax = 0.0, 1.0

    labels = [iteration_label(k) for k in range(k1)]
    any_occ = any(b.occlusion is not None for b in blocks)
    label_w = max(text_width(t, LABEL_SIZE) for t in labels + (["occl."] if any_occ else [])) + 0.05
    title_h = pt(TITLE_SIZE) * 1.5
    axis_h = pt(LABEL_SIZE) * 1.3
    legend_line = pt(LABEL_SIZE) * 2.6
    caption = "attention α" + ("  (stretched)" if options.attention_scale == "stretch" else "")
    occ_caption = "person occluded"
    size = LABEL_SIZE - 0.5

    def heat_rows(b: _Block) -> int:
        return k1 + (1 if b.occlusion is not None else 0)

    fixed = 2 * MARGIN
    for gi, grp in enumerate(groups):
        fixed += GROUP_GAP if gi else 0.0
        for bi, b in enumerate(grp):
            fixed += (BLOCK_GAP if bi else 0.0) + title_h + pt(2) + heat_rows(b) * (HEAT_H + HEAT_GAP) + axis_h
    n_strips = len(blocks)
    avail = width - 2 * MARGIN - label_w

    def sizes(legend_h: float) -> tuple[float, float, float, bool]:
        """Thumbnail width, strip width, bar width, and whether the legend needs two lines."""
        fw = min((avail - (n - 1) * FRAME_GAP) / n, MAX_THUMB_H / aspect)
        if height is not None:
            fw = min(fw, (height - fixed - legend_h) / (n_strips * aspect))
        strip_w = n * fw + (n - 1) * FRAME_GAP
        bar_w = min(0.9, strip_w * 0.3)
        need = bar_w + 0.05 + text_width(caption, size) + 0.15 + text_width(occ_caption, size) + 0.05 + 0.6 * bar_w
        return fw, strip_w, bar_w, any_occ and need > strip_w

    fw, strip_w, bar_w, two = sizes(legend_line)
    legend_h = legend_line * (2 if two else 1)
    if two:
        fw, strip_w, bar_w, _ = sizes(legend_h)
    if fw <= 0.02:
        raise FigureError("--size", "the figure is too small for these attention strips; "
                          "choose a larger size or fewer frames or queries")
    fh = fw * aspect
    content_h = fixed + legend_h + n_strips * fh
    fig_h = content_h if height is None else height
    # Centre the content (strip plus its label column) horizontally.
    x0 = MARGIN + label_w + (avail - strip_w) / 2
    x1 = x0 + strip_w
    c = Canvas(width, fig_h)
    y = MARGIN + (fig_h - content_h) / 2

    for gi, grp in enumerate(groups):
        y += GROUP_GAP if gi else 0.0
        for bi, b in enumerate(grp):
            y += BLOCK_GAP if bi else 0.0
            # Title, left-aligned with the label column; the match glyph (coloured) first.
            tx = x0 - label_w
            ty = y + pt(TITLE_SIZE) * 1.05
            words = b.title.split(" · ")
            cands = [" · ".join(words[:m]) for m in range(len(words), 0, -1)]
            weight = "bold" if not bi else "normal"
            if b.glyph:
                room = width - MARGIN - tx - text_width(b.glyph[0], TITLE_SIZE + 0.5, True) - 0.02
                c.glyph_text(tx, ty, b.glyph[0], b.glyph[1], fit_text(cands, room, TITLE_SIZE, not bi),
                             TITLE_SIZE, ha="left", fontweight=weight)
            else:
                c.text(tx, ty, fit_text(cands, width - MARGIN - tx, TITLE_SIZE, not bi), size=TITLE_SIZE,
                       ha="left", fontweight=weight)
            y += title_h
            # Frames, evenly spread over the frames the attention covers.
            T = b.attention.shape[1]
            m = min(n, T)
            picks = sample_frames(T, m)
            if m == n:
                c.thumbs([src.thumb(b.tracklet, b.start + i) for i in picks], x0, y, fw, fh, FRAME_GAP)
            else:  # fewer frames than slots: each over its own frame's share of the rows
                for i in picks:
                    xc = x0 + (i + 0.5) / T * strip_w
                    c.thumbs([src.thumb(b.tracklet, b.start + i)], xc - fw / 2, y, fw, fh, FRAME_GAP)
            y += fh + pt(2)
            # Ticks on the first heat row: the exact frames shown above.
            for i in picks:
                xt = x0 + (i + 0.5) / T * strip_w
                c.line([xt, xt], [y - pt(1.6), y], "black", lw=0.5)
            for k in range(k1):
                c.image(b.attention[k][None, :], x0, y, strip_w, HEAT_H, cmap=CMAP, vmin=vmin, vmax=vmax,
                        interpolation="nearest")
                c.box(x0, y, strip_w, HEAT_H, "#00000055", lw=0.3)
                c.text(x0 - 0.03, y + HEAT_H / 2, labels[k], size=LABEL_SIZE, ha="right", va="center_baseline")
                y += HEAT_H + HEAT_GAP
            if b.occlusion is not None:
                c.image(b.occlusion[None, :], x0, y, strip_w, HEAT_H, cmap="Greys", vmin=0.0, vmax=1.0,
                        interpolation="nearest")
                c.box(x0, y, strip_w, HEAT_H, "#00000055", lw=0.3)
                c.text(x0 - 0.03, y + HEAT_H / 2, "occl.", size=LABEL_SIZE, ha="right", va="center_baseline")
                y += HEAT_H + HEAT_GAP
            ay = y + pt(LABEL_SIZE) * 0.95
            c.text(x0, ay, f"frame {b.start + 1}", size=LABEL_SIZE - 0.5, ha="left", color="#444444")
            c.text(x1, ay, f"frame {b.start + T}", size=LABEL_SIZE - 0.5, ha="right", color="#444444")
            y += axis_h

    # Legend: the colour scale, and the occlusion scale (beside it, or below when there is no room).
    bar_h = HEAT_H * 0.8
    ly = y + pt(LABEL_SIZE) * 0.9
    _scale(c, x0, ly, bar_w, bar_h, CMAP, vmin, vmax, _tick(vmin), _tick(vmax), size)
    c.text(x0 + bar_w + 0.05, ly + bar_h / 2, caption, size=size, ha="left", va="center_baseline")
    if any_occ:
        occ_w = bar_w * 0.6
        if two:
            ly += legend_line
        ox = x1 - occ_w
        _scale(c, ox, ly, occ_w, bar_h, "Greys", 0.0, 1.0, "0", "100%", size)
        c.text(ox - 0.05, ly + bar_h / 2, occ_caption, size=size, ha="right", va="center_baseline")
    return c.fig


def _tick(v: float) -> str:
    """A colour-bar end value: ``0``, ``1``, or three decimals for a stretched range."""
    return f"{v:g}" if v in (0.0, 1.0) else f"{v:.3f}"


def _scale(c: Canvas, x: float, y: float, w: float, h: float, cmap: str, vmin: float, vmax: float, lo: str,
           hi: str, size: float) -> None:
    """A horizontal colour scale with its end values beneath."""
    c.image(np.linspace(vmin, vmax, 128)[None, :], x, y, w, h, cmap=cmap, vmin=vmin, vmax=vmax)
    c.box(x, y, w, h, "#00000055", lw=0.3)
    ty = y + h + pt(size) * 1.05
    c.text(x, ty, lo, size=size, ha="left")
    c.text(x + w, ty, hi, size=size, ha="right")
