"""``reidviewer compare``: two models on the same queries and gallery — what B fixed and broke.

    reidviewer compare --root DATA --checkpoint A.safetensors --checkpoint B.safetensors [--json FILE]
    reidviewer compare --root DATA --checkpoint A.safetensors --model pixels
    reidviewer compare --results a.npz --results b.npz

Each side is a ``--checkpoint FILE``, a ``--model NAME[:ARG]`` (plugin or ``imported:NAME``) or a
``--results FILE``, taken in the order given: the first is A, the second B. With one side only,
A is the default (shipped) checkpoint. Checkpoints and models need the dataset (``--root``);
two results files do not.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from reidviewer.cli.common import MODEL_HELP, add_dataset, add_device, add_workspace, stderr_progress, workspace_of
from reidviewer.errors import UsageError
from reidviewer.vocabulary import OPTION_HELP


class _Side(argparse.Action):
    """Collect ``--checkpoint`` / ``--model`` / ``--results`` in the order given."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        sides = list(getattr(namespace, "sides", None) or [])
        sides.append((self.dest, values))
        namespace.sides = sides


def register(sub: Any) -> None:
    """Add ``compare``."""
    p = sub.add_parser(
        "compare", help="compare two models: metrics, McNemar test, ΔmAP interval, fixed / broken queries",
        description="Compare model B with model A on the same queries and gallery: both models' metrics, the exact "
                    "McNemar test on rank-1 (queries B fixed and broke), a paired bootstrap interval of ΔmAP, TPR at "
                    "FPR 1e-3 / 1e-2, and the queries B fixed and broke. Sides are --checkpoint, --model or "
                    "--results, in order (A first); with one side A is the default checkpoint.",
    )
    add_dataset(p, required=False)
    add_workspace(p)
    p.add_argument("--checkpoint", metavar="FILE", dest="checkpoint", action=_Side,
                   help=OPTION_HELP["checkpoint"] + " (give two, or mix with --model / --results)")
    p.add_argument("--model", metavar="NAME[:ARG]", dest="model", action=_Side, help=MODEL_HELP)
    p.add_argument("--results", metavar="FILE", dest="results", action=_Side,
                   help="a saved results file (.npz) as one side")
    p.add_argument("--split", type=int, default=0, metavar="N", help=OPTION_HELP["split"])
    p.add_argument("--top", type=int, default=10, help="fixed / broken queries to print (default 10)")
    p.add_argument("--json", metavar="FILE", default=None, help="also write the comparison as JSON")
    add_device(p)
    p.set_defaults(func=cmd_compare, sides=[])


def cmd_compare(args: argparse.Namespace) -> int:
    """``reidviewer compare``: print both models, the tests and the fixed / broken queries."""
    from reidviewer.engine.compare import Comparison
    from reidviewer.engine.evaluate import compute_results
    from reidviewer.engine.results import Results

    ws = workspace_of(args)
    sides = list(args.sides or [])
    if len(sides) > 2:
        raise UsageError(f"compare takes two models (A and B), got {len(sides)}")
    if not sides:
        raise UsageError("give the models to compare: --checkpoint A --checkpoint B (or --model / --results)")
    if len(sides) == 1:
        from reidviewer.demo import default_checkpoint

        sides.insert(0, ("checkpoint", str(default_checkpoint())))

    dataset = None
    version = None
    loaded: list[tuple[Any, str]] = []
    for kind, value in sides:
        if kind == "results":
            from reidviewer.engine.compare import results_name

            r = Results.load(value)
            loaded.append((r, results_name(r, Path(value).stem)))
            continue
        if dataset is None:
            if not args.root:
                raise UsageError(f"evaluating --{kind} {value} needs the dataset: add --root DIR")
            from reidviewer.annotations.apply import open_annotated
            from reidviewer.data.registry import open_dataset

            base = open_dataset(args.root, args.dataset, args.protocol, ws)
            base.split(args.split)  # a split that does not exist: one line, before any work
            dataset, version = open_annotated(base, ws)
        if kind == "model":
            from reidviewer.engine.models import model_ref
            from reidviewer.model.plugins import parse_model_spec

            parse_model_spec(value)
            source: Any = model_ref(value)
            name = value[len("imported:"):] if value.startswith("imported:") else value
        else:
            source = Path(value)
            name = source.stem
        r = compute_results(dataset, args.split, source, ws, device=args.device,
                            progress=stderr_progress(f"evaluate {name}"), annotation_version=version)
        loaded.append((r, name))
    (ra, na), (rb, nb) = loaded
    comparison = Comparison(ra, rb, na, nb)
    key_of = None
    if dataset is not None:
        tr = dataset.tracklets

        def key_of(row: int) -> str:
            return tr[int(ra.query_indices[row])].key

    summary = comparison.summary(key_of=key_of)
    print(format_comparison(comparison, summary, args.top))
    if args.json:
        from reidviewer.cli.evaluate import write_json

        write_json(args.json, summary)
    return 0


def format_comparison(c: Any, summary: dict, top: int = 10) -> str:
    """Both models' metrics, the McNemar line, the ΔmAP interval and the top fixed / broken queries."""
    keys = ("rank1", "rank5", "rank10", "rank20", "mAP", "mINP")
    width = max(12, len(c.name_a) + 4, len(c.name_b) + 4)
    lines = [f"{summary['dataset'] or 'results'} (protocol {summary['protocol'] or '?'}), split {summary['split']}, "
             f"{summary['num_queries']} queries",
             f"{'model':<{width}}{'R1':>8}{'R5':>8}{'R10':>8}{'R20':>8}{'mAP':>8}{'mINP':>8}{'TPR@1e-3':>10}{'TPR@1e-2':>10}"]
    for tag in ("a", "b"):
        d = summary[tag]
        tpr = d.get("tpr_at_fpr", {})
        lines.append(f"{tag.upper() + ' ' + d['name']:<{width}}"
                     + "".join(f"{100 * d[k]:>8.1f}" for k in keys)
                     + "".join(f"{100 * tpr[f]:>10.1f}" if f in tpr else f"{'–':>10}" for f in ("0.001", "0.01")))
    lines.append(c.mcnemar_text())
    lines.append(c.ci_text())

    def listing(title: str, rows: Any, ids: list) -> None:
        lines.append(f"{title} ({len(ids)}):" if ids else f"{title}: none")
        for row, ident in list(zip(rows, ids))[:top]:
            lines.append(f"  query {row:>5}  {ident!s:<28} AP {c.ap_a[row]:.3f} → {c.ap_b[row]:.3f}   "
                         f"1st match #{c.first_rank_a[row]} → #{c.first_rank_b[row]}")
        if len(ids) > top:
            lines.append(f"  … {len(ids) - top} more (--json FILE lists them all)")

    listing(f"fixed by {c.name_b} (right at rank 1 only with B)", summary["fixed_rows"], summary["fixed_queries"])
    listing(f"broken by {c.name_b} (right at rank 1 only with A)", summary["broken_rows"], summary["broken_queries"])
    return "\n".join(lines)
