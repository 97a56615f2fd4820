"""``reidviewer evaluate`` and ``reidviewer audit``: numbers from a checkpoint's results."""
from __future__ import annotations

import argparse
import os
import time
import sys
from pathlib import Path
from typing import Any

from reidviewer.cli.common import (
    add_dataset,
    add_device,
    add_model,
    add_split,
    add_workspace,
    model_or_checkpoint,
    parse_split,
    stderr_progress,
    workspace_of,
)
from reidviewer.vocabulary import OPTION_HELP


def register(sub: Any) -> None:
    """Add ``evaluate`` and ``audit``."""
    p = sub.add_parser("evaluate", help="evaluate a checkpoint: CMC R1/R5/R10/R20, mAP and mINP",
                       description="Evaluate a checkpoint on a dataset's split(s): CMC rank-1/5/10/20, mAP and "
                                   "mINP, from the same results file the viewer shows (cached in the workspace).")
    add_dataset(p)
    add_workspace(p)
    p.add_argument("--checkpoint", metavar="FILE", default=None, help=OPTION_HELP["checkpoint"])
    add_model(p)
    add_split(p, allow_all=True)
    p.add_argument("--json", metavar="FILE", default=None, help="also write the metrics as JSON")
    add_device(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("audit", help="attention audit: AUROC of low attention for flagged / occluded frames",
                       description="Does attention single out bad frames? The AUROC of low attention against the "
                                   "frames flagged in the annotations (and SynthWalk's recorded occlusion), per "
                                   "refinement iteration.")
    add_dataset(p)
    add_workspace(p)
    p.add_argument("--checkpoint", metavar="FILE", default=None, help=OPTION_HELP["checkpoint"])
    add_model(p)
    add_split(p)
    p.add_argument("--threshold", type=float, default=0.3,
                   help="SynthWalk occlusion ratio that flags a frame (default 0.3)")
    p.add_argument("--json", metavar="FILE", default=None, help="also write the report as JSON")
    # --- saliency (#20) ---
    p.add_argument("--saliency-pairs", type=int, default=24, metavar="N",
                   help="saliency sanity checks on the first N queries and their top-1 (0: skip; default 24)")
    # --- end saliency ---
    add_device(p)
    p.set_defaults(func=cmd_audit)


def _progress_bar(label: str):
    bar = stderr_progress(label)

    def report(done: int, total: int, text: str = "") -> None:
        bar(done, total)

    return report


def write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as JSON to ``path`` (atomically), saying so on stderr."""
    from reidviewer.workspace import atomic_write_json

    atomic_write_json(path, obj)
    print(f"wrote {path}", file=sys.stderr)


class StageClock:
    """A progress callback that also times the stages of an evaluation (the text of each
    ``progress(done, total, text)`` names its stage) for the summary ``evaluate`` prints."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.stages: dict[str, list[float]] = {}  # text -> [first seen, last seen, last done]
        self.start = time.perf_counter()

    def __call__(self, done: int, total: int, text: str = "") -> None:
        now = time.perf_counter()
        st = self.stages.setdefault(text, [now, now, 0])
        st[1], st[2] = now, done
        self.inner(done, total, text)

    def seconds(self, text: str) -> float | None:
        st = self.stages.get(text)
        return None if st is None else st[1] - st[0]


def folder_bytes(folder: Path) -> int:
    """Bytes of the files under ``folder`` (0 when it does not exist)."""
    total = 0
    stack = [str(folder)]
    while stack:
        try:
            with os.scandir(stack.pop()) as it:
                for e in it:
                    if e.is_dir(follow_symlinks=False):
                        stack.append(e.path)
                    elif e.is_file(follow_symlinks=False):
                        total += e.stat(follow_symlinks=False).st_size
        except OSError:
            continue
    return total


def print_costs(clock: StageClock, dataset, splits: list[int], ws, summary: dict) -> None:
    """Where an evaluation's time and disk went, on stderr: preprocessing and feature rates,
    the frame cache's disk use and the results files' sizes."""
    from reidviewer.data.cache import PROGRESS_TEXT

    wall = time.perf_counter() - clock.start
    lines = [f"evaluation took {wall:.1f} s"]
    prep = clock.stages.get(PROGRESS_TEXT)
    if prep is not None and prep[1] > prep[0]:
        lines.append(f"preprocessing: {prep[2]:,} frames in {prep[1] - prep[0]:.1f} s "
                     f"({prep[2] / (prep[1] - prep[0]):,.0f} frames/s)")
    feat = clock.seconds("extracting features")
    if feat:
        from reidviewer.engine.evaluate import EvalSettings

        cap = EvalSettings().max_frames
        idx = set()
        for s in splits:
            sp = dataset.split(s)
            idx.update(int(i) for i in sp.query)
            idx.update(int(i) for i in sp.gallery)
        frames = sum(min(len(dataset.tracklets[i]), cap) for i in idx)
        lines.append(f"features: {len(idx):,} tracklets, {frames:,} frames in {feat:.1f} s "
                     f"({frames / feat:,.0f} frames/s)")
    from reidviewer.data.cache import GB, FrameCache

    cache = FrameCache(ws, dataset)
    lines.append(f"frame cache: {folder_bytes(cache.dir) / GB:.2f} GB in {cache.dir}")
    for entry in summary.get("per_split", []):
        f = Path(entry.get("results_file") or "")
        if entry.get("results_file") and f.is_file():
            lines.append(f"results file (split {entry['split']}): {f.stat().st_size / 2**20:.0f} MB ({f})")
    print("\n".join(lines), file=sys.stderr)


def announce_cost(dataset, splits: list[int], checkpoint, ws, annotation_version: str | None,
                  device: str = "auto") -> None:
    """Say on stderr what the first split's preprocessing and features will cost, before paying it (#19)."""
    from reidviewer.engine.evaluate import describe_evaluation_cost, evaluation_cost

    cost = evaluation_cost(dataset, splits[0], checkpoint, ws, annotation_version=annotation_version, device=device)
    if cost is None:
        return
    more = len(splits) - 1
    # Only the first is estimated: later splits find part of their frames cached by then, none of their features.
    rest = f" (then {more} more split{'s' if more > 1 else ''}, each with about as many frames to embed)" if more else ""
    print(f"split {splits[0]}: {describe_evaluation_cost(cost)}{rest}", file=sys.stderr, flush=True)


def cmd_evaluate(args: argparse.Namespace) -> int:
    """``reidviewer evaluate``: print a table; ``--json FILE`` writes the numbers."""
    from reidviewer.annotations.apply import open_annotated
    from reidviewer.data.registry import open_dataset
    from reidviewer.engine.evaluate import evaluate_splits

    ws = workspace_of(args)
    dataset = open_dataset(args.root, args.dataset, args.protocol, ws)
    checkpoint = model_or_checkpoint(args)
    splits = parse_split(args.split, len(dataset.splits))
    for s in splits:
        dataset.split(s)  # a split that does not exist: one line, before any work
    dataset, version = open_annotated(dataset, ws)
    announce_cost(dataset, splits, checkpoint, ws, version, args.device)
    clock = StageClock(_progress_bar("evaluate"))
    summary = evaluate_splits(dataset, splits, checkpoint, ws, device=args.device, progress=clock,
                              annotation_version=version)
    print(format_metrics(summary))
    print_costs(clock, dataset, splits, ws, summary)
    if args.json:
        write_json(args.json, summary)
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    """``reidviewer audit``: attention against flagged frames, per iteration; ``--json FILE`` writes it."""
    from reidviewer.annotations.apply import open_annotated
    from reidviewer.annotations.store import AnnotationStore, store_filename
    from reidviewer.data.registry import open_dataset
    from reidviewer.engine.audit_report import format_audit, run_audit
    from reidviewer.engine.evaluate import compute_results

    ws = workspace_of(args)
    base = open_dataset(args.root, args.dataset, args.protocol, ws)
    base.split(args.split)
    checkpoint = model_or_checkpoint(args)
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
    # --- saliency (#20): share of Grad-CAM mass on person / occluders, trained vs randomised ---
    if getattr(args, "saliency_pairs", 0) > 0:
        from reidviewer.engine.saliency_audit import saliency_audit

        report["saliency"] = saliency_audit(dataset, results, ws, pairs=args.saliency_pairs,
                                            progress=_progress_bar("saliency"), checkpoint=checkpoint)
    # --- end saliency ---
    print(format_audit(report))
    if "saliency" in report:  # saliency (#20)
        from reidviewer.engine.saliency_audit import format_saliency

        print(format_saliency(report["saliency"]))
    if args.json:
        write_json(args.json, report)
    return 0


def format_metrics(summary: dict) -> str:
    """R1/R5/R10/R20/mAP/mINP as a small table (percentages)."""
    keys = ("rank1", "rank5", "rank10", "rank20", "mAP", "mINP")
    head = f"{'split':<8}{'R1':>8}{'R5':>8}{'R10':>8}{'R20':>8}{'mAP':>8}{'mINP':>8}"
    lines = [
        f"dataset {summary['dataset']} (protocol {summary['protocol']}), checkpoint {summary['checkpoint']}",
        head,
    ]

    def row(label, d) -> str:
        return f"{label:<8}" + "".join(f"{100 * d[k]:>8.1f}" if d.get(k) is not None else f"{'–':>8}" for k in keys)

    for s in summary.get("per_split", []):
        lines.append(row(s["split"], s))
    if len(summary.get("per_split", [])) > 1:
        lines.append(row("mean", summary))
    return "\n".join(lines)
