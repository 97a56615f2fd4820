"""Paper-ready figures (PDF/SVG/PNG) from a results file, shared by the app and the CLI.

Kinds: ``ranking`` (ranked retrievals, true matches boxed in green), ``failures`` (probe, wrong
rank-1, true match with its rank), ``attention`` (frames with every refinement iteration's
attention beneath) and ``cmc`` (curves of one or several results). Built with matplotlib's
object-oriented API (``matplotlib.figure.Figure``; never pyplot, which would pick a GUI backend).

    from reidviewer.figures import FigureOptions, export_figure
    export_figure("ranking", dataset, results, "fig5.pdf", FigureOptions(size="single", top_k=5))

Matplotlib is imported on first use of ``export_figure`` / ``render_png`` / ``build_figure``.
"""
from __future__ import annotations

from typing import Any

from reidviewer.figures.options import KINDS, FigureError, FigureOptions, figure_size, parse_queries

__all__ = [
    "KINDS",
    "FigureError",
    "FigureOptions",
    "build_figure",
    "export_figure",
    "figure_size",
    "parse_queries",
    "render_png",
]


def __getattr__(name: str) -> Any:
    if name in ("export_figure", "render_png", "build_figure"):
        from reidviewer.figures import export

        return getattr(export, name)
    raise AttributeError(f"module 'reidviewer.figures' has no attribute {name!r}")
