"""Subcommands beyond the data layer: ``open``, ``train``, ``evaluate``, ``export``, ``audit``.

Each imports its layer lazily so ``reidviewer --help`` stays instant.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def register(sub: Any, add_dataset, add_workspace) -> None:
    """Add the subcommands to the ``reidviewer`` parser."""
    p = sub.add_parser("open", help="open the viewer on a dataset and checkpoint")
    add_dataset(p, required=False)
    add_workspace(p)
    p.add_argument("--checkpoint", metavar="FILE", help="checkpoint (.safetensors); default: the shipped one")
    p.add_argument("--split", type=int, default=0, help="split index (default 0)")
    p.set_defaults(func=cmd_open)

    p = sub.add_parser("train", help="train a model (RCN/RAN protocol; also under torchrun)")
    add_dataset(p)
    add_workspace(p)
    p.add_argument("--split", type=int, default=0, help="split index (default 0)")
    p.add_argument("--head", default="ran", help="ran | mean | rnn | softmax (default ran)")
    p.add_argument("--iterations", type=int, default=3, help="refinement iterations K (default 3)")
    p.add_argument("--pooling", default=None, choices=("mean", "sum", "l1"),
                   help="attention pooling P: mean (1/T)Σαx (default), sum Σαx (literal eq. 2), l1 Σαx/Σα")
    p.add_argument("--epochs", type=int, default=None, help="epochs (default: the paper's 1000)")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default 1e-3)")
    p.add_argument("--attention-lr-scale", type=float, default=None,
                   help="learning-rate multiplier for the attention parameters θ, θ′ (default 1)")
    p.add_argument("--hinge", default=None, choices=("eq5", "rcn_code"),
                   help="contrastive term: eq5 (squared, the paper; default) or rcn_code (RCN's non-squared)")
    p.add_argument("--init-from", metavar="FILE", default=None,
                   help="start from the matching weights of this checkpoint (e.g. a trained mean-pooling trunk)")
    p.add_argument("--milestones", default=None, help="comma-separated epochs where lr ÷10 (default 300,600)")
    p.add_argument("--pairs-per-step", type=int, default=None, help="pairs per optimiser step (default 1)")
    p.add_argument("--device", default="auto", help="auto (cuda, mps, cpu), cpu, cuda, cuda:N, mps")
    p.add_argument("--seed", type=int, default=None, help="random seed (default 1)")
    p.add_argument("--eval-every", type=int, default=None, help="validation rank-1 every N epochs (0: never)")
    p.add_argument("--checkpoint-every", type=int, default=None, help="checkpoint every N epochs")
    p.add_argument("--no-flow", action="store_true", help="zero the optical-flow channels")
    p.add_argument("--out", metavar="RUN", default=None, help="run name (folder under the workspace's runs/) or path")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="evaluate a checkpoint: CMC R1/R5/R10/R20 and mAP")
    add_dataset(p)
    add_workspace(p)
    p.add_argument("--checkpoint", metavar="FILE", default=None, help="checkpoint (default: the shipped one)")
    p.add_argument("--split", default="0", help="split index or 'all' (mean over splits)")
    p.add_argument("--json", metavar="FILE", default=None, help="also write the metrics as JSON")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("audit", help="attention audit: AUROC of low attention for flagged / occluded frames")
    add_dataset(p)
    add_workspace(p)
    p.add_argument("--checkpoint", metavar="FILE", default=None, help="checkpoint (default: the shipped one)")
    p.add_argument("--split", type=int, default=0, help="split index (default 0)")
    p.add_argument("--threshold", type=float, default=0.3, help="SynthWalk occlusion ratio that flags a frame (default 0.3)")
    p.add_argument("--json", metavar="FILE", default=None, help="also write the report as JSON")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_audit)


def cmd_open(args: argparse.Namespace) -> int:
    """``reidviewer open``: the viewer on a dataset."""
    from reidviewer.app import launch

    return launch(args)


def _progress_bar(label: str):
    from reidviewer.cli import _stderr_progress

    bar = _stderr_progress(label)

    def report(done: int, total: int, text: str = "") -> None:
        bar(done, total)

    return report


def cmd_train(args: argparse.Namespace) -> int:
    """``reidviewer train``."""
    from reidviewer.engine.train import TrainConfig, resumed_config, run_dir_for, run_training_cli
    from reidviewer.workspace import Workspace

    config = TrainConfig.from_cli(args)
    if args.resume:
        # "Continue exactly where it stopped": the run's own settings, not this command line's
        # defaults; only --epochs (to train longer) and --device may change.
        ignored = [flag for flag, value in (("--lr", args.lr), ("--milestones", args.milestones),
                                            ("--pairs-per-step", args.pairs_per_step), ("--seed", args.seed),
                                            ("--pooling", args.pooling), ("--hinge", args.hinge),
                                            ("--init-from", args.init_from),
                                            ("--attention-lr-scale", args.attention_lr_scale)) if value is not None]
        if ignored:
            print(f"note: {', '.join(ignored)} ignored with --resume (the run keeps its own settings; "
                  "only --epochs and --device can change)", file=sys.stderr)
        if args.epochs is None:
            config.epochs = 0
        config = resumed_config(run_dir_for(Workspace(args.workspace), config.run_name), config)
    return run_training_cli(config, args)


def cmd_evaluate(args: argparse.Namespace) -> int:
    """``reidviewer evaluate``: print a table; ``--json FILE`` writes the numbers."""
    from reidviewer.data.registry import open_dataset
    from reidviewer.engine.evaluate import default_checkpoint, evaluate_splits
    from reidviewer.workspace import Workspace, atomic_write_json

    ws = Workspace(args.workspace)
    dataset = open_dataset(args.root, args.dataset, args.protocol, ws)
    checkpoint = Path(args.checkpoint) if args.checkpoint else default_checkpoint()
    if args.split == "all":
        splits = list(range(len(dataset.splits)))
    else:
        try:
            splits = [int(args.split)]
        except ValueError:
            raise ValueError(f"--split must be a number or 'all', not {args.split!r}") from None
    from reidviewer.annotations.apply import open_annotated

    dataset, version = open_annotated(dataset, ws)
    summary = evaluate_splits(dataset, splits, checkpoint, ws, device=args.device, progress=_progress_bar("evaluate"),
                              annotation_version=version)
    print(format_metrics(summary))
    if args.json:
        atomic_write_json(args.json, summary)
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    """``reidviewer audit``: attention against flagged frames, per iteration; ``--json FILE`` writes it."""
    from reidviewer.annotations.apply import open_annotated
    from reidviewer.annotations.audit_report import format_audit, run_audit
    from reidviewer.annotations.store import AnnotationStore, store_filename
    from reidviewer.data.registry import open_dataset
    from reidviewer.engine.evaluate import compute_results, default_checkpoint
    from reidviewer.workspace import Workspace, atomic_write_json

    ws = Workspace(args.workspace)
    base = open_dataset(args.root, args.dataset, args.protocol, ws)
    checkpoint = Path(args.checkpoint) if args.checkpoint else default_checkpoint()
    dataset, version = open_annotated(base, ws)
    results = compute_results(dataset, args.split, checkpoint, ws, device=args.device,
                              progress=_progress_bar("audit"), annotation_version=version)
    path = ws.annotations_dir / store_filename(base.name, base.fingerprint) if base.fingerprint else None
    store = AnnotationStore(path, base.fingerprint, base.name, mode="read") if path and path.is_file() else None
    try:
        report = run_audit(dataset, results, store, args.threshold)
    finally:
        if store is not None:
            store.close()
    report["checkpoint"] = str(checkpoint)
    print(format_audit(report))
    if args.json:
        atomic_write_json(args.json, report)
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


def format_metrics(summary: dict) -> str:
    """R1/R5/R10/R20/mAP as a small table (percentages)."""
    head = f"{'split':<8}{'R1':>8}{'R5':>8}{'R10':>8}{'R20':>8}{'mAP':>8}"
    lines = [
        f"dataset {summary['dataset']} ({summary['protocol']}), checkpoint {summary['checkpoint']}",
        head,
    ]
    for s in summary.get("per_split", []):
        lines.append(
            f"{s['split']:<8}{100 * s['rank1']:>8.1f}{100 * s['rank5']:>8.1f}{100 * s['rank10']:>8.1f}"
            f"{100 * s['rank20']:>8.1f}{100 * s['mAP']:>8.1f}"
        )
    if len(summary.get("per_split", [])) > 1:
        lines.append(
            f"{'mean':<8}{100 * summary['rank1']:>8.1f}{100 * summary['rank5']:>8.1f}{100 * summary['rank10']:>8.1f}"
            f"{100 * summary['rank20']:>8.1f}{100 * summary['mAP']:>8.1f}"
        )
    return "\n".join(lines)


def dump_json(obj: Any) -> str:
    return json.dumps(obj, indent=2)
