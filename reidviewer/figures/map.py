"""The map of the whole set as a paper figure: every query and gallery tracklet, coloured as in
the app's Map tab (``reidviewer.engine.embedding_map.point_colours``), vector output.

Queries are circles, gallery-only tracklets triangles; a highlighted query is a large star and
its true matches are ringed. Above ``RASTER_ABOVE`` points the dots are rasterised inside the
PDF/SVG (text and axes stay vector) so the file stays small.
"""
from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from reidviewer.engine import embedding_map as em
from reidviewer.figures.options import figure_size
from reidviewer.figures.style import MATCH, PROBE, paper_style

#: Above this many points, the dots are rasterised (in a vector file).
RASTER_ABOVE = 30_000


def build_map(results, coords: np.ndarray, ms: em.MapSet, color_by: str = "identity", dataset=None,
              size: str = "single", flagged: Collection[int] | None = None, highlight_query: int | None = None,
              method: str = "pca") -> Figure:
    """The map figure (call inside ``paper_style()``; ``export_map`` does)."""
    width, height = figure_size(size)
    if height is None:
        height = min(width * 0.92, 4.2)
    values = em.colour_values(results, ms, color_by, flagged)
    colours = em.point_colours(values, color_by, em.category_names(ms, color_by, dataset), max_legend=8)
    fig = Figure(figsize=(width, height), layout="constrained")
    ax = fig.add_subplot()
    rgb = colours.rgb / 255.0
    isq = ms.query_rows >= 0
    istr = ms.is_training
    isg = ~isq & ~istr
    s = 9.0 if len(ms) < 2000 else (3.0 if len(ms) < 20000 else 1.0)
    raster = len(ms) > RASTER_ABOVE
    if istr.any():
        ax.scatter(coords[istr, 0], coords[istr, 1], c=rgb[istr], s=s * 0.8, marker="s", linewidths=0,
                   rasterized=raster, zorder=1, alpha=0.7)
    ax.scatter(coords[isg, 0], coords[isg, 1], c=rgb[isg], s=s, marker="^", linewidths=0, rasterized=raster,
               zorder=2)
    ax.scatter(coords[isq, 0], coords[isq, 1], c=rgb[isq], s=s, marker="o", linewidths=0, rasterized=raster,
               zorder=3)
    if highlight_query is not None:
        q = ms.point_of_query(highlight_query)
        matches = np.flatnonzero((ms.pids == ms.pids[q]) & (np.arange(len(ms)) != q)) if ms.pids[q] >= 0 else []
        if len(matches):
            ax.scatter(coords[matches, 0], coords[matches, 1], s=s * 6, facecolors="none", edgecolors=MATCH,
                       linewidths=0.8, zorder=4)
        ax.scatter([coords[q, 0]], [coords[q, 1]], s=s * 14, marker="*", c=PROBE, zorder=5)
    handles = [Line2D([], [], linestyle="none", marker="s", markersize=4, markerfacecolor=np.array(c) / 255.0,
                      markeredgewidth=0, label=label) for label, c in colours.legend]
    handles += [Line2D([], [], linestyle="none", marker="o", markersize=3, color="#555555", label="query"),
                Line2D([], [], linestyle="none", marker="^", markersize=3, color="#555555", label="gallery")]
    if istr.any():
        handles.append(Line2D([], [], linestyle="none", marker="s", markersize=3, color="#999999", label="training"))
    if highlight_query is not None:
        handles += [Line2D([], [], linestyle="none", marker="*", markersize=6, color=PROBE, label="this query"),
                    Line2D([], [], linestyle="none", marker="o", markersize=5, markerfacecolor="none",
                           markeredgecolor=MATCH, label="its true matches")]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), borderaxespad=0.2,
              title=em.COLOR_BY_NAMES[color_by] + (f"\n({colours.note})" if colours.note else ""),
              title_fontsize=6)
    name = {"pca": "PCA", "umap": "UMAP"}.get(method, method)
    ax.set_xlabel(f"{name} 1")
    ax.set_ylabel(f"{name} 2")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_aspect("equal", adjustable="datalim")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig


def export_map(path: str | Path, results, coords: np.ndarray, ms: em.MapSet, dpi: int = 300, **kw) -> Path:
    """Build the map figure and write it (PDF, SVG or PNG by suffix), atomically."""
    from reidviewer.figures.export import save_figure

    with paper_style():
        fig = build_map(results, coords, ms, **kw)
        return save_figure(fig, path, dpi)
