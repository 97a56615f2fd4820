"""The ``reidviewer audit`` report: attention against flagged frames, from a results file.

Two sources of "bad frame" labels, each audited on its own (see ``audit.py`` for the AUROC):

- ``annotations``: frames flagged in the workspace's annotation store (any frame flag), over
  the tracklets that have at least one flagged frame;
- ``occlusion``: SynthWalk's recorded occlusion ratio above a threshold, over every tracklet.

The attention traces of a results file cover the frames the evaluation fed the network (the
first ``max_frames``, or the last ones for the gallery with ``gallery_tail``); the audit picks
the flags at exactly those frames. numpy and scipy only.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from reidviewer.engine.audit import OCCLUSION_THRESHOLD, AttentionAudit, audit_attention, occlusion_flags
from reidviewer.annotations.edits import AnnotationError
from reidviewer.data.dataset import VideoDataset
from reidviewer.data.transforms import sample_test_clip

#: Per-tracklet rows printed in the table (the JSON has them all).
TABLE_TRACKLETS = 20


def traced_frames(dataset: VideoDataset, results: Any) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Attention traces and the frame indices they cover, keyed by tracklet key."""
    settings = results.settings or {}
    max_frames = int(settings.get("max_frames", 128))
    tail = bool(settings.get("gallery_tail", False))
    gallery = {int(i) for i in results.gallery_indices} if tail else set()
    traces: dict[str, np.ndarray] = {}
    frames: dict[str, np.ndarray] = {}
    for idx in results.attention_tracklets:
        t = dataset.tracklets[int(idx)]
        att = results.attention(int(idx))
        sel = sample_test_clip(len(t.frames), max_frames, int(idx) in gallery)
        if len(sel) != att.shape[1]:
            # The trace does not cover the frames this settings record says (an older file):
            # assume the first frames, the evaluation default.
            sel = np.arange(min(att.shape[1], len(t.frames)))
            att = att[:, : len(sel)]
        traces[t.key] = att
        frames[t.key] = sel
    return traces, frames


def run_audit(
    dataset: VideoDataset, results: Any, store: Any = None, threshold: float = OCCLUSION_THRESHOLD
) -> dict[str, Any]:
    """Audit a results file's attention against the store's flags and the recorded occlusion.

    Args:
        dataset: the dataset (or annotated view) the results index into.
        results: a ``Results`` with attention traces.
        store: an ``AnnotationStore`` (attached or read-only) or ``None``.
        threshold: occlusion ratio above which a SynthWalk frame counts as flagged.

    Returns:
        A JSON-ready dict: ``source`` (the headline source: annotations when the store has
        flags on traced tracklets, else occlusion), its ``auroc`` (one value per refinement
        iteration 0..K), ``mean_tracklet_auroc``, ``frames``, ``flagged``, ``tracklets``,
        ``per_tracklet``, and ``sources`` with every source's full audit.

    Raises:
        AnnotationError: the results hold no attention, or there is nothing to audit against.
    """
    if len(results.attention_tracklets) == 0:
        raise AnnotationError(None, "the results hold no attention traces (a model without attention?)")
    traces, frames = traced_frames(dataset, results)
    length = {t.key: len(t.frames) for t in dataset.tracklets}
    audits: dict[str, AttentionAudit] = {}
    problems: list[str] = []
    if store is not None and store.frame_flags():
        masks = {}
        for key, fl in store.frame_flags().items():
            if key in traces:
                m = np.zeros(length[key], dtype=bool)
                m[[f for f in fl if 0 <= f < len(m)]] = True
                masks[key] = m
        try:
            audits["annotations"] = audit_attention(
                traces, masks, frame_indices=frames, source="annotations (flagged frames)"
            )
        except AnnotationError as exc:
            problems.append(f"annotations: {exc}")
    if dataset.occlusion:
        occ = occlusion_flags(dataset.occlusion, threshold)
        occ = {k: v for k, v in occ.items() if k in traces and len(v) == length[k]}
        try:
            audits["occlusion"] = audit_attention(traces, occ, frame_indices=frames, source=f"occlusion > {threshold:g}")
        except AnnotationError as exc:
            problems.append(f"occlusion: {exc}")
    if not audits:
        why = "; ".join(problems) or (
            "no frame is flagged in the annotation store and the dataset records no occlusion "
            "(flag frames in the viewer with Q / O, or audit a SynthWalk set)"
        )
        raise AnnotationError(None, f"nothing to audit: {why}")
    name = "annotations" if "annotations" in audits else "occlusion"
    head = audits[name].to_json()
    return {
        "dataset": dataset.name,
        "split": int(results.split),
        "annotation_version": results.annotation_version,
        "threshold": threshold,
        **head,
        "source": name,
        "source_label": head["source"],
        "sources": {k: a.to_json() for k, a in audits.items()},
        "problems": problems,
    }


def _fmt(x: float | None) -> str:
    return "     n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:8.3f}"


def format_audit(report: dict[str, Any], limit: int = TABLE_TRACKLETS) -> str:
    """The report as a plain-text table: overall and per-tracklet AUROC per iteration."""
    k = int(report["iterations"])
    cols = "".join(f"{'k=' + str(i):>8}" for i in range(k))
    lines = [f"attention audit: {report['dataset']} split {report['split']} "
             f"(AUROC of low attention for flagged frames; 0.5 = chance, 1.0 = every flagged frame lowest)"]
    lines.append(f"{'source':<34}{'frames':>8}{'flagged':>8}{cols}")
    for name, a in report["sources"].items():
        label = f"{a['source']} overall"
        lines.append(f"{label:<34}{a['frames']:>8}{a['flagged']:>8}" + "".join(_fmt(x) for x in a["auroc"]))
        label = f"{a['source']} mean/tracklet"
        lines.append(f"{label:<34}{a['tracklets']:>8}{'':>8}" + "".join(_fmt(x) for x in a["mean_tracklet_auroc"]))
    per = report["per_tracklet"]
    lines.append("")
    lines.append(f"per tracklet ({report['source_label']}):")
    lines.append(f"{'tracklet':<42}{cols}")
    for i, (key, values) in enumerate(per.items()):
        if i >= limit:
            lines.append(f"… {len(per) - limit} more (see --json)")
            break
        short = key if len(key) <= 41 else "…" + key[-40:]
        lines.append(f"{short:<42}" + "".join(_fmt(x) for x in values))
    for p in report.get("problems", []):
        lines.append(f"note: {p}")
    return "\n".join(lines)
