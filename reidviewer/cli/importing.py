"""``reidviewer import``: another model's features or distances as an ordinary results file."""
from __future__ import annotations

import argparse
import sys
from typing import Any

from reidviewer.cli.common import add_dataset, add_split, add_workspace, workspace_of

NPZ_HELP = (
    "an .npz (read with allow_pickle=False) holding query and gallery features qf (Nq x D) and gf (Ng x D), or "
    "a distance matrix distmat (Nq x Ng, smaller is closer); optionally q_ids and g_ids (string arrays of tracklet "
    "keys, the tracklet folders relative to --root), else the rows follow the split's query/gallery order "
    "(torchreid's for MARS, iLIDS-VID, PRID-2011); optionally per-frame weights (flat, or R x sum T) with "
    "weights_index (N+1 offsets, queries then gallery)"
)


def register(sub: Any) -> None:
    """Add ``import``."""
    p = sub.add_parser(
        "import", help="import another model's features or distances as a results file",
        description="Turn the output of a model trained elsewhere (torchreid, your own code) into an ordinary "
                    "results file in the workspace, so the viewer, evaluate, metrics, figures and annotations "
                    "work on it. Open it with: reidviewer open --root DIR --model imported:NAME.")
    add_dataset(p)
    add_workspace(p)
    add_split(p)
    p.add_argument("--features", metavar="FILE.npz", required=True, help=NPZ_HELP)
    p.add_argument("--name", metavar="MODEL", default=None,
                   help="the model's name (default: the file's name); --model imported:MODEL opens it")
    p.add_argument("--metric", choices=("euclidean", "cosine"), default="euclidean",
                   help="how features are compared (default euclidean, as torchreid; cosine L2-normalises them)")
    p.set_defaults(func=cmd_import)


def cmd_import(args: argparse.Namespace) -> int:
    """``reidviewer import``: write the results file and print its metrics."""
    from pathlib import Path

    from reidviewer.cli.evaluate import format_metrics
    from reidviewer.data.registry import open_dataset
    from reidviewer.engine.importer import import_features

    ws = workspace_of(args)
    dataset = open_dataset(args.root, args.dataset, args.protocol, ws)
    dataset.split(args.split)
    name = args.name or Path(args.features).stem
    results, path = import_features(dataset, args.split, args.features, ws, name=name, metric=args.metric)
    m = results.metrics()
    summary = {"dataset": dataset.name, "protocol": dataset.protocol, "checkpoint": f"imported:{name}",
               "per_split": [{"split": args.split, **m}]}
    print(format_metrics(summary))
    print(f"wrote {path}", file=sys.stderr)
    print(f"open it: reidviewer open --root {args.root} --model imported:{name}"
          + (f" --split {args.split}" if args.split else ""), file=sys.stderr)
    return 0
