"""The "when and where" figure (#20): probe and gallery frames with their saliency overlays, and
the attention of every refinement iteration under them.

Two blocks (probe, then the gallery tracklet it is compared with). Each block is a strip of
frames spread over the evaluated clip, each with its saliency map blended in (alpha = opacity ×
map, so where the model does not look the frame shows unchanged), then one heat row per
iteration α⁽⁰⁾..α⁽ᴷ⁾ over the whole clip; a frame stands above the part of the rows it belongs
to. Attention rows share one colour scale, 0 to the figure's largest α; the saliency scale is
0 to each tracklet's maximum (maps are normalised per tracklet).

``build_saliency`` draws from maps already computed; ``export_saliency`` computes them
(``engine.saliency.SaliencyEngine``, cached in the workspace) and writes PDF, SVG or PNG.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from reidviewer.figures.attention import iteration_label
from reidviewer.figures.canvas import Canvas, pt, text_width
from reidviewer.figures.frames import FrameSource, sample_frames
from reidviewer.figures.options import FigureError, figure_size, format_of
from reidviewer.figures.style import BASE_FONT_SIZE

DEFAULT_FRAMES = 6
DEFAULT_COLORMAP = "inferno"
DEFAULT_OPACITY = 0.6
ATTENTION_CMAP = "viridis"


def blend(image: np.ndarray, m: np.ndarray, colormap: str = DEFAULT_COLORMAP, opacity: float = DEFAULT_OPACITY) -> np.ndarray:
    """An RGB uint8 frame with a [0, 1] map blended in (alpha: ``engine.saliency.overlay_alpha``, as the app)."""
    from reidviewer.engine.saliency import overlay_alpha

    colour = colormaps[colormap](np.clip(m, 0, 1))[..., :3] * 255.0
    a = overlay_alpha(m, opacity)[..., None]
    return np.clip(image.astype(np.float64) * (1 - a) + colour * a + 0.5, 0, 255).astype(np.uint8)


def _strip_frames(maps: Any, n: int) -> list[int]:
    """Tracklet frame numbers of ``n`` thumbnails spread over the evaluated clip."""
    clip = np.asarray(maps.frames)
    return [int(clip[j]) for j in sample_frames(len(clip), n)]


def build_saliency(dataset: Any, results: Any, query_row: int, gallery_row: int, probe_maps: Any, gallery_maps: Any,
                   frames: int = DEFAULT_FRAMES, size: str = "double", colormap: str = DEFAULT_COLORMAP,
                   opacity: float = DEFAULT_OPACITY, per_frame: bool = False) -> Figure:
    """The figure (call inside ``figures.style.paper_style()``; ``export_saliency`` does)."""
    frames = max(1, int(frames))
    width, height = figure_size(size)
    qi, gi = int(results.query_indices[query_row]), int(results.gallery_indices[gallery_row])
    blocks = [("Probe", dataset.tracklets[qi], probe_maps), ("Gallery", dataset.tracklets[gi], gallery_maps)]
    atts = [results.attention(t.index) if results.has_attention(t.index) else None for _, t, _ in blocks]
    rows = max((a.shape[0] for a in atts if a is not None), default=0)
    vmax = max((float(np.nanmax(a)) for a in atts if a is not None and a.size), default=1.0) or 1.0

    fs = BASE_FONT_SIZE - 1
    small = BASE_FONT_SIZE - 2
    margin, label_w, gap = 0.05, 0.42, 0.03
    strip_w = width - 2 * margin - label_w
    src = FrameSource()
    aspect = src.aspect_of([t for _, t, _ in blocks])
    fw = (strip_w - gap * (frames - 1)) / frames
    fh = fw * aspect
    row_h = pt(5.5)
    title_h = pt(fs) * 1.6
    block_h = title_h + fh + pt(small) * 1.6 + rows * row_h + pt(6)
    legend_h = pt(small) * 3.2
    need = margin + 2 * block_h + legend_h + margin
    c = Canvas(width, height or need)

    d = results.distmat[query_row, gallery_row] if results.distmat is not None else probe_maps.distance
    y = margin
    for (name, t, maps), att in zip(blocks, atts):
        x0 = margin + label_w
        head = f"{name}: {t.person or t.pid}, {t.camera or t.camid}"
        if name == "Gallery":
            match = "true match" if results.gallery_pids[gallery_row] == results.query_pids[query_row] else "false match"
            rank = np.flatnonzero(results.ranked(query_row)[0] == gallery_row)
            head += f" · rank {int(rank[0]) + 1}" if rank.size else ""
            head += f" · {match} · d = {float(d):.3g}"
        c.text(x0, y + pt(fs), head, size=fs, ha="left")
        y += title_h
        picks = _strip_frames(maps, frames)
        for j, f in enumerate(picks):
            thumb = src.thumb(t, f)
            img = thumb.image
            m = maps.frame_map(f, img.shape[0], img.shape[1], per_frame)
            shown = blend(img, m, colormap, opacity) if (m is not None and thumb.note is None) else img
            tx = x0 + j * (fw + gap)
            c.image(shown, tx, y, fw, fh)
            c.text(tx + fw / 2, y + fh + pt(1), f"frame {f + 1}", size=small - 1, color="#444444", va="top")
        c.text(margin + label_w - 0.04, y + fh / 2, "where", size=small, ha="right", va="center", color="#444444")
        y += fh + pt(small) * 1.6
        if att is not None:
            for k in range(att.shape[0]):
                c.image(att[k][None, :], x0, y + k * row_h, strip_w, row_h * 0.85, cmap=ATTENTION_CMAP, vmin=0, vmax=vmax,
                        interpolation="nearest")
                c.text(margin + label_w - 0.04, y + k * row_h + row_h * 0.45, iteration_label(k), size=small - 0.5, ha="right",
                       va="center")
            c.text(margin, y + rows * row_h / 2, "when", size=small, ha="left", va="center", color="#444444")
        y += rows * row_h + pt(6)
    # Legends: saliency and attention scales.
    lw = min(1.2, strip_w / 2 - 0.3)
    x = margin + label_w
    lh = pt(4)
    for label, cmap, lo, hi in ((f"saliency ({probe_maps.method})", colormap, "0", "max"),
                                ("attention α", ATTENTION_CMAP, "0", f"{vmax:.3f}")):
        c.text(x, y + pt(small), label, size=small, ha="left")
        bx = x + 0.1 + text_width(label, small) + text_width(lo, small - 1)
        c.image(np.linspace(0, 1, 128)[None, :], bx, y + pt(small) - lh, lw * 0.6, lh, cmap=cmap, vmin=0, vmax=1)
        c.text(bx - 0.02, y + pt(small), lo, size=small - 1, ha="right")
        c.text(bx + lw * 0.6 + 0.02, y + pt(small), hi, size=small - 1, ha="left")
        x += strip_w / 2
    return c.fig


def pick_gallery(results: Any, query_row: int, which: str = "top1") -> int:
    """The gallery row paired with a query: its top-1 (``top1``) or first true match (``match``)."""
    if which == "match":
        rows = results.true_matches(query_row)[0]
        if len(rows):
            return int(rows[0])
    return int(results.ranked(query_row, 1)[0][0])


def export_saliency(path: str | Path, dataset: Any, results: Any, workspace: Any, query_row: int = 0,
                    gallery_row: int | None = None, method: str = "gradcam", frames: int = DEFAULT_FRAMES,
                    size: str = "double", dpi: int = 300, colormap: str = DEFAULT_COLORMAP,
                    opacity: float = DEFAULT_OPACITY, engine: Any = None, progress: Any = None,
                    per_frame: bool = False) -> Path:
    """Compute (or read) the pair's maps and write the figure as PDF, SVG or PNG (by suffix)."""
    from reidviewer.engine.saliency import SaliencyEngine
    from reidviewer.figures.export import check_dataset, save_figure
    from reidviewer.figures.style import paper_style

    format_of(path)
    check_dataset(dataset, results)
    if not 0 <= int(query_row) < results.num_queries:
        raise FigureError("--queries", f"query row {query_row} is outside 0..{results.num_queries - 1}")
    if colormap not in colormaps:
        raise FigureError("--colormap", f"unknown colour map {colormap!r}")
    if gallery_row is None:
        gallery_row = pick_gallery(results, query_row)
    engine = engine or SaliencyEngine(dataset, results, workspace)
    reason = engine.unavailable
    if reason:
        raise FigureError("saliency", reason)
    kw = {"progress": progress} if progress is not None else {}
    q, g = engine.pair(int(results.query_indices[query_row]), int(results.gallery_indices[gallery_row]), method, **kw)
    with paper_style():
        fig = build_saliency(dataset, results, query_row, gallery_row, q, g, frames, size, colormap, opacity, per_frame)
        return save_figure(fig, path, dpi)
