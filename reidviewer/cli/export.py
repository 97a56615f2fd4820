"""``reidviewer export``: paper figures from the command line, headless (no display needed).

    reidviewer export ranking   --root DIR --checkpoint FILE [--split N] [--queries 0,5,person007]
    reidviewer export failures  --results FILE --count 6 --frames 4 --out fig4.pdf
    reidviewer export attention --results FILE --queries 3 --compare top1 --size double
    reidviewer export cmc       --checkpoint a.safetensors --checkpoint b.safetensors --root DIR
    reidviewer export compare   --checkpoint a.safetensors --checkpoint b.safetensors --root DIR --size double
    reidviewer export map       --results FILE --color-by camera --method umap --out map.pdf

The figure is the one the app's File ▸ Export figure saves for the same options
(``reidviewer.figures.export_figure`` draws both). Matplotlib is used through its Agg/PDF/SVG
backends only, never pyplot.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from reidviewer.cli.common import add_dataset, add_device, add_workspace, stderr_progress, workspace_of
from reidviewer.figures.options import DEFAULT_COUNT, DEFAULT_FRAMES, KINDS

_EPILOG = """\
queries: --queries takes query rows (0-based positions in the split's query list, as the app's
query list numbers them) and/or person names as the dataset writes them (e.g. person007; every
query tracklet of that person is shown), separated by commas or spaces. Without --queries a
ranking shows the first --count queries, a failures figure the --count worst failures (lowest
AP first), an attention figure the first query; --failures picks failures for any kind.

data: --root/--checkpoint evaluates the checkpoint (results are cached in the workspace, so a
second export is fast); --results FILE uses a saved results file instead, and the dataset is
found at the folder recorded in it unless --root is given. For cmc, --checkpoint and --results
may be repeated to overlay curves (--label names them in order); compare takes exactly two
(A, then B: CMC overlay, per-query AP scatter, and a strip of queries B fixed and broke).

sizes: single (3.3 in, one column), double (6.9 in, two columns), W or WxH in inches (e.g. 5x3);
without a height, thumbnail figures are as tall as their content. Fonts are DejaVu Sans,
embedded as TrueType in PDF and kept as editable text in SVG.
"""


def register(sub: Any) -> None:
    """Add the ``export`` subcommand to the ``reidviewer`` parser."""
    p = sub.add_parser(
        "export",
        help="export a paper figure (ranking, failures, attention, cmc, compare) as PDF, SVG or PNG",
        description="Export a paper-ready figure from a checkpoint's results (or a saved results file).",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("kind", choices=(*KINDS, "map", "saliency"), help="figure kind")  # map: cli.similar; saliency: cli.saliency
    add_dataset(p, required=False)
    add_workspace(p)
    p.add_argument("--checkpoint", metavar="FILE", action="append", default=[],
                   help="checkpoint to evaluate (repeat for cmc overlays)")
    p.add_argument("--results", metavar="FILE", action="append", default=[],
                   help="saved results file (.npz) to draw from (repeat for cmc overlays)")
    p.add_argument("--split", type=int, default=0, metavar="N", help="split number (default: 0)")
    add_device(p)
    p.add_argument("--queries", metavar="Q", nargs="+", default=None,
                   help="query rows and/or person names (see below)")
    p.add_argument("--count", type=int, default=0,
                   help=f"queries to show when none are named (default: ranking {DEFAULT_COUNT['ranking']}, "
                   f"failures {DEFAULT_COUNT['failures']}, attention {DEFAULT_COUNT['attention']})")
    p.add_argument("--failures", action="store_true", help="show the worst failures instead of the first queries")
    p.add_argument("--out", metavar="FILE", default=None,
                   help="output file, .pdf, .svg or .png (default: the workspace's figures/ folder, PDF)")
    p.add_argument("--size", default="single", help="single, double, W or WxH in inches (default single)")
    p.add_argument("--dpi", type=int, default=300, help="PNG resolution (default 300)")
    p.add_argument("--top-k", type=int, default=5, help="gallery items per query in a ranking (default 5)")
    p.add_argument("--frames", type=int, default=0,
                   help=f"frames per tracklet (default: ranking {DEFAULT_FRAMES['ranking']}, "
                   f"failures {DEFAULT_FRAMES['failures']}, attention {DEFAULT_FRAMES['attention']})")
    p.add_argument("--compare", default="none", choices=("none", "top1", "match"),
                   help="attention: also show the query's top-1 or its first true match")
    p.add_argument("--label", metavar="NAME", action="append", default=[],
                   help="cmc: legend name of each curve, in order (checkpoints first, then results files)")
    p.add_argument("--max-rank", type=int, default=20, help="cmc: last rank shown (default 20)")
    p.add_argument("--no-ranks", action="store_true", help="ranking: no rank numbers")
    p.add_argument("--no-distances", action="store_true", help="no distances under the gallery items")
    p.add_argument("--no-true-match", action="store_true",
                   help="ranking: do not add the first true match when it ranks below the top-k")
    p.add_argument("--no-occlusion", action="store_true", help="attention: no occlusion row (SynthWalk)")
    p.add_argument("--attention-scale", default="fixed", choices=("fixed", "stretch"),
                   help="attention: colours for α on 0-1 (fixed, as the app) or stretched to the figure's range")
    # --- map of the whole set (issue 21) ---
    from reidviewer.cli.similar import add_map_options

    add_map_options(p)
    # --- end map ---
    # --- saliency (#20) ---
    from reidviewer.cli.saliency import add_saliency_options

    add_saliency_options(p)
    # --- end saliency ---
    p.set_defaults(func=cmd_export)


def _open_dataset(root: str | Path, name: str, protocol: str | None, ws):
    from reidviewer.data.registry import open_dataset

    return open_dataset(root, name, protocol, ws)


def cmd_export(args: argparse.Namespace) -> int:
    """``reidviewer export``: build the figure and write it."""
    from reidviewer.engine.results import Results
    from reidviewer.figures import FigureError, FigureOptions, export_figure, parse_queries
    if args.kind == "map":  # --- map of the whole set (issue 21) ---
        from reidviewer.cli.similar import cmd_export_map

        return cmd_export_map(args)
    ws = workspace_of(args)
    if not args.checkpoint and not args.results:
        raise FigureError("export", "give --checkpoint FILE (with --root DIR) or --results FILE")
    if args.kind == "compare" and len(args.checkpoint) + len(args.results) != 2:
        raise FigureError("export", "a compare figure draws two models: give --checkpoint/--results twice (A, then B)")
    if args.kind not in ("cmc", "compare") and len(args.checkpoint) + len(args.results) > 1:
        raise FigureError("export", f"a {args.kind} figure draws one results; only cmc overlays several")
    if args.checkpoint and not args.root:
        raise FigureError("--checkpoint", "evaluating a checkpoint needs the dataset: add --root DIR")

    dataset = _open_dataset(args.root, args.dataset, args.protocol, ws) if args.root else None
    results: list[Results] = []
    labels: list[str] = []
    if args.checkpoint:
        from reidviewer.engine.evaluate import compute_results

        for ck in args.checkpoint:
            path = Path(ck)
            if not path.is_file():
                raise FigureError(path, "checkpoint file not found")
            results.append(compute_results(dataset, args.split, path, ws, device=args.device,
                                           progress=stderr_progress(f"evaluate {path.name}")))
            labels.append(path.stem)
    for rf in args.results:
        results.append(Results.load(rf))
        labels.append("")  # the checkpoint recorded in the file names the curve
    for i, name in enumerate(args.label):
        if i < len(labels):
            labels[i] = name

    if dataset is None and args.kind != "cmc":
        first = results[0]
        root = Path(first.dataset_root) if first.dataset_root else None
        if root is None or not root.is_dir():
            raise FigureError(args.results[0], f"the dataset it was computed on ({first.dataset_root or 'unknown'}) "
                              "is not there; pass --root DIR")
        dataset = _open_dataset(root, first.dataset_name or "auto", first.protocol or None, ws)

    queries: tuple[int, ...] = ()
    if args.queries:
        queries = parse_queries(args.queries, dataset, results[0])
    # --- saliency (#20): the "when and where" figure ---
    if args.kind == "saliency":
        from reidviewer.cli.saliency import cmd_export_saliency

        return cmd_export_saliency(args, ws, dataset, results[0], queries)
    # --- end saliency ---
    options = FigureOptions(
        size=args.size,
        dpi=args.dpi,
        top_k=args.top_k,
        frames=args.frames,
        queries=queries,
        select="failures" if args.failures else "first",
        count=args.count,
        show_ranks=not args.no_ranks,
        show_distances=not args.no_distances,
        show_true_match=not args.no_true_match,
        compare=args.compare,
        show_occlusion=not args.no_occlusion,
        attention_scale=args.attention_scale,
        labels=tuple(labels),
        max_rank=args.max_rank,
    )
    out = Path(args.out) if args.out else default_output(ws, args.kind, dataset, results[0])
    path = export_figure(args.kind, dataset, results, out, options)
    print(f"wrote {path}")
    return 0


def default_output(ws, kind: str, dataset, results) -> Path:
    """``figures/KIND-DATASET-splitN.pdf`` in the workspace."""
    name = (dataset.name if dataset is not None else results.dataset_name) or "results"
    return ws.figures_dir / f"{kind}-{name}-split{results.split}.pdf"
