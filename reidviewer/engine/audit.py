"""Attention audit: does attention single out the bad frames?

For frames flagged bad (by annotators, or SynthWalk's recorded occlusion ratio above a
threshold), a good attention model gives them *low* attention. The audit scores each frame
with ``1 - attention`` and measures, per refinement iteration ``k = 0..K``, the AUROC of that
score for telling flagged frames from clear ones: 1.0 when every flagged frame gets less
attention than every clear frame, 0.5 when attention ignores the flags (e.g. constant), below
0.5 when attention prefers the bad frames.

AUROC is the Mann-Whitney statistic ``(R1 - n1 (n1 + 1) / 2) / (n1 n0)``, where ``R1`` is the
sum of the flagged frames' ranks among all frames, with tied scores given their average rank
(``scipy.stats.rankdata``), so a tie counts one half -- exactly the trapezoidal ROC area.
It is written here with ranks rather than taken from scikit-learn because scikit-learn is
not a dependency of reidviewer (and ``roc_auc_score`` raises on one-class input, where the
per-tracklet figure should simply be NaN).

Two figures per iteration:

- **overall** (``auroc``): frames pooled over every audited tracklet. RAN attention is a
  per-frame sigmoid (docs/method.md §3.3), not a softmax over the tracklet, so attention values of
  different tracklets are on one scale and pooling is meaningful.
- **per tracklet** (``per_tracklet``): NaN where a tracklet has no flagged or no clear frame;
  ``mean_tracklet_auroc`` averages the defined ones.

A tracklet is audited when it has both attention and flags; attention traces may cover only
some of a tracklet's frames (evaluation uses the first 128), in which case pass
``frame_indices`` so flags are picked at the same frames. numpy and scipy only.
"""
from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from reidviewer.annotations.edits import FRAME_FLAGS, AnnotationError

#: Default occlusion ratio above which a SynthWalk frame counts as flagged.
OCCLUSION_THRESHOLD = 0.3


def mann_whitney_auroc(scores: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """AUROC of ``scores`` for ``positive`` along the last axis, ties counted one half.

    Args:
        scores: ``(..., n)`` scores; higher should mean "positive".
        positive: ``(n,)`` booleans.

    Returns:
        ``scores.shape[:-1]`` AUROCs; NaN where there is no positive or no negative.
    """
    scores = np.asarray(scores, dtype=np.float64)
    positive = np.asarray(positive, dtype=bool)
    n1 = int(positive.sum())
    n0 = int(positive.size - n1)
    if n1 == 0 or n0 == 0:
        return np.full(scores.shape[:-1], np.nan)
    ranks = average_ranks(scores)
    r1 = ranks[..., positive].sum(axis=-1)
    return (r1 - n1 * (n1 + 1) / 2.0) / (n1 * n0)


def average_ranks(scores: np.ndarray) -> np.ndarray:
    """1-based ranks along the last axis, ties sharing their average rank.

    The same numbers as ``scipy.stats.rankdata(method="average", axis=-1)``; written here so
    that the viewer's audit does not import ``scipy.stats`` (over a second of start-up).
    """
    x = np.asarray(scores, dtype=np.float64)
    n = x.shape[-1]
    rows = x.reshape(-1, n)
    out = np.empty_like(rows)
    for r, row in enumerate(rows):
        order = np.argsort(row, kind="stable")
        s = row[order]
        new = np.empty(n, dtype=bool)
        new[:1] = True
        np.not_equal(s[1:], s[:-1], out=new[1:])
        starts = np.flatnonzero(new)
        ends = np.append(starts[1:], n)
        out[r, order] = ((starts + ends + 1) / 2.0)[np.cumsum(new) - 1]
    return out.reshape(x.shape)


@dataclass
class AttentionAudit:
    """What the audit found.

    Attributes:
        auroc: overall AUROC per refinement iteration 0..K (frames pooled over tracklets).
        per_tracklet: tracklet -> AUROC per iteration (NaN where undefined).
        mean_tracklet_auroc: per iteration, the mean of the defined per-tracklet AUROCs
            (NaN if none is defined).
        frames: frames audited.
        flagged: of which flagged.
        tracklets: tracklets audited.
        source: what the flags are (``"annotations"``, ``"occlusion > 0.3"``, ...).
    """

    auroc: list[float]
    per_tracklet: dict[Hashable, list[float]]
    mean_tracklet_auroc: list[float]
    frames: int
    flagged: int
    tracklets: int
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def iterations(self) -> int:
        """Number of attention iterations (K + 1)."""
        return len(self.auroc)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict; NaN becomes ``null`` (JSON has no NaN), tracklet keys become strings."""

        def num(x: float) -> float | None:
            return None if math.isnan(x) else float(x)

        return {
            "source": self.source,
            "iterations": self.iterations,
            "frames": self.frames,
            "flagged": self.flagged,
            "tracklets": self.tracklets,
            "auroc": [num(x) for x in self.auroc],
            "mean_tracklet_auroc": [num(x) for x in self.mean_tracklet_auroc],
            "per_tracklet": {str(k): [num(x) for x in v] for k, v in self.per_tracklet.items()},
            **self.extra,
        }


def occlusion_flags(
    occlusion: Mapping[str, np.ndarray] | None, threshold: float = OCCLUSION_THRESHOLD
) -> dict[str, np.ndarray]:
    """Frames whose recorded occlusion ratio exceeds ``threshold`` (``dataset.occlusion``).

    Raises:
        AnnotationError: the dataset records no occlusion (only SynthWalk does).
    """
    if occlusion is None:
        raise AnnotationError(None, "this dataset records no occlusion ground truth (only SynthWalk does)")
    return {k: np.asarray(v, dtype=np.float64) > threshold for k, v in occlusion.items()}


def store_flags(store: Any, kinds: Iterable[str] = FRAME_FLAGS, keys: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """Frame masks from an annotation store: True where a frame has any of ``kinds``.

    Args:
        store: an attached ``AnnotationStore``.
        kinds: which frame flags count.
        keys: the tracklets to return (reviewed tracklets, even without flags); default:
            every tracklet with at least one frame flag of any kind.
    """
    kinds = frozenset(kinds)
    flags = store.frame_flags()
    out: dict[str, np.ndarray] = {}
    for key in (flags if keys is None else keys):
        mask = np.zeros(store.num_frames(key), dtype=bool)
        for frame, fl in flags.get(key, {}).items():
            if kinds.intersection(fl):
                mask[frame] = True
        out[key] = mask
    return out


def _key(k: Hashable, dataset: Any) -> Hashable:
    # Integer keys are tracklet indices; with a dataset they are turned into tracklet keys so
    # attention keyed by index and flags keyed by key meet.
    if dataset is not None and isinstance(k, (int, np.integer)) and not isinstance(k, bool):
        return dataset.tracklets[int(k)].key
    return k


def audit_attention(
    attention: Mapping[Hashable, np.ndarray],
    flags: Mapping[Hashable, np.ndarray],
    *,
    frame_indices: Mapping[Hashable, np.ndarray] | None = None,
    dataset: Any = None,
    source: str = "",
) -> AttentionAudit:
    """AUROC of ``1 - attention`` for the flagged frames, per refinement iteration.

    Args:
        attention: tracklet -> attention traces ``(K + 1, T)`` (a ``(T,)`` trace is K = 0).
        flags: tracklet -> boolean mask over the tracklet's frames (True = flagged).
        frame_indices: tracklet -> which of its frames the ``T`` attention columns are, when
            the traces do not cover every frame.
        dataset: when given, integer keys (tracklet indices) in ``attention``, ``flags`` and
            ``frame_indices`` are turned into tracklet keys.
        source: a label for the report.

    Returns:
        The :class:`AttentionAudit`.

    Raises:
        AnnotationError: no tracklet has both attention and flags, a trace and its flags do
            not line up, traces differ in iteration count or hold NaN, or no audited frame is
            flagged (or every one is), so AUROC is undefined.
    """
    att = {_key(k, dataset): v for k, v in attention.items()}
    fl = {_key(k, dataset): v for k, v in flags.items()}
    idx = {_key(k, dataset): v for k, v in (frame_indices or {}).items()}
    keys = [k for k in att if k in fl]
    if not keys:
        raise AnnotationError(None, f"attention audit: none of the {len(att)} traced tracklets has flags")

    iterations = None
    scores: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    per: dict[Hashable, list[float]] = {}
    for k in keys:
        a = np.asarray(att[k], dtype=np.float64)
        if a.ndim == 1:
            a = a[None, :]
        if a.ndim != 2:
            raise AnnotationError(None, f"attention audit: trace of {k!r} has shape {a.shape}; expected (K+1, T)")
        if iterations is None:
            iterations = a.shape[0]
        elif a.shape[0] != iterations:
            raise AnnotationError(None, f"attention audit: trace of {k!r} has {a.shape[0]} iterations, others {iterations}")
        if not np.isfinite(a).all():
            raise AnnotationError(None, f"attention audit: trace of {k!r} holds NaN or infinite values")
        f = np.asarray(fl[k], dtype=bool)
        if k in idx:
            sel = np.asarray(idx[k], dtype=np.int64)
            if sel.size and (sel.min() < 0 or sel.max() >= len(f)):
                raise AnnotationError(None, f"attention audit: frame indices of {k!r} go past its {len(f)} frames")
            f = f[sel]
        if len(f) != a.shape[1]:
            raise AnnotationError(
                None,
                f"attention audit: {k!r} has {a.shape[1]} attention columns but {len(f)} flagged/clear frames; "
                "pass frame_indices to say which frames the trace covers",
            )
        per[k] = [float(x) for x in mann_whitney_auroc(1.0 - a, f)]
        scores.append(1.0 - a)
        labels.append(f)

    pooled_scores = np.concatenate(scores, axis=1)
    pooled_labels = np.concatenate(labels)
    n_flagged = int(pooled_labels.sum())
    if n_flagged == 0 or n_flagged == len(pooled_labels):
        what = "no" if n_flagged == 0 else "every"
        raise AnnotationError(
            None, f"attention audit: {what} frame of the {len(keys)} audited tracklets is flagged, so AUROC is undefined"
        )
    overall = mann_whitney_auroc(pooled_scores, pooled_labels)
    table = np.array([per[k] for k in keys], dtype=np.float64)
    defined = ~np.isnan(table)
    counts = defined.sum(axis=0)
    sums = np.where(defined, table, 0.0).sum(axis=0)
    means = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return AttentionAudit(
        auroc=[float(x) for x in overall],
        per_tracklet=per,
        mean_tracklet_auroc=[float(x) for x in means],
        frames=int(len(pooled_labels)),
        flagged=n_flagged,
        tracklets=len(keys),
        source=source,
    )
