"""``reidviewer export saliency``: the "when and where" figure of a probe and a gallery tracklet (#20).

    reidviewer export saliency --root DIR --checkpoint FILE --queries 3 [--compare match] --out fig.pdf

The gallery tracklet is the query's top-1 (``--compare match``: its first true match). Maps are
Grad-CAM w.r.t. the pair's distance (``--saliency-method energy``: activation energy), cached in
the workspace.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_saliency_options(p: argparse.ArgumentParser) -> None:
    """The options only ``export saliency`` reads."""
    p.add_argument("--saliency-method", default="gradcam", choices=("gradcam", "energy"),
                   help="saliency: Grad-CAM w.r.t. the pair's distance (default) or activation energy")
    p.add_argument("--colormap", default="inferno", choices=("inferno", "viridis", "jet"),
                   help="saliency: colour map of the overlay (default inferno)")
    p.add_argument("--opacity", type=float, default=0.6, help="saliency: overlay opacity 0-1 (default 0.6)")
    p.add_argument("--per-frame", action="store_true",
                   help="saliency: stretch each frame's map to its own maximum (default: one scale per tracklet)")


def cmd_export_saliency(args: argparse.Namespace, ws: Any, dataset: Any, results: Any, queries: tuple[int, ...]) -> int:
    """Write the saliency figure of the first query named (default: row 0, or the worst failure)."""
    from reidviewer.cli.common import stderr_progress
    from reidviewer.figures.saliency import DEFAULT_FRAMES, export_saliency, pick_gallery

    if queries:
        row = int(queries[0])
    elif getattr(args, "failures", False) and len(results.failures()):
        row = int(results.failures()[0])
    else:
        row = 0
    gallery = pick_gallery(results, row, "match" if args.compare == "match" else "top1")
    name = (dataset.name if dataset is not None else results.dataset_name) or "results"
    out = Path(args.out) if args.out else ws.figures_dir / f"saliency-{name}-split{results.split}-q{row}.pdf"
    bar = stderr_progress("saliency")
    path = export_saliency(out, dataset, results, ws, row, gallery, method=args.saliency_method,
                           frames=args.frames or DEFAULT_FRAMES, size=args.size if args.size != "single" else "double",
                           dpi=args.dpi, colormap=args.colormap, opacity=args.opacity, per_frame=args.per_frame,
                           progress=lambda d, t, text="": bar(d, t))
    print(f"wrote {path}")
    return 0
