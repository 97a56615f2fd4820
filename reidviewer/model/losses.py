"""The Siamese training losses of docs/method.md §4 (RAN eqs. 5–6).

For a pair of sequences with video features f1, f2, identity labels y1, y2 and
y = [y1 == y2]:

* L_hinge (eq. 5): ½d² if y, else ½max(0, m − d)², with d = √(Σ(f1 − f2)² + 1e-12) and
  m = 2; ``hinge="rcn_code"`` gives RCN's code form d / max(0, m − d).
* L_id1, L_id2: cross-entropy of the shared classifier on each branch.
* L_sim: cross-entropy of the similarity head's same/different logits.
* L = L_id1 + L_hinge + L_sim + L_id2 (weights 1 by default).

Every term is averaged over the pairs of a batch (summing diverged at lr 1e-3, docs/method.md §3.9).

The ``fast`` training recipe (identity-balanced P×K batches, as in Gao & Nevatia's video
baselines and Luo et al.'s "bag of tricks") uses ``batch_loss``:

* L_id: label-smoothed cross-entropy (ε = 0.1) of the classifier on every tracklet;
* L_tri: the batch-hard triplet loss (Hermans et al. 2017): for each anchor, its farthest
  positive and closest negative in the batch, ``max(0, m + d(a, p) − d(a, n))``, m = 0.3;
* the paper's hinge and similarity terms over every pair of the batch, weight 0 by default.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch.nn import functional as F

from reidviewer.configs import config_from_dict

HINGE_FORMS = ("eq5", "rcn_code")
#: distance stabiliser inside the square root (docs/method.md §4: gradient safety at d = 0).
DISTANCE_EPS = 1e-12


@dataclass
class LossConfig:
    """Loss settings (training, not architecture).

    Attributes:
        margin: contrastive margin m (2, calibrated with mean pooling).
        hinge: ``eq5`` (squared, the paper) or ``rcn_code`` (non-squared, RCN's code).
        weight_id: weight of each identity term.
        weight_hinge: weight of the contrastive term.
        weight_sim: weight of the similarity term (0 drops it).
        weight_triplet: weight of the batch-hard triplet term (the fast recipe).
        triplet_margin: its margin.
        label_smoothing: ε of the identity cross-entropy.
        weight_attention_level: weight of ``attention_level_loss``, which keeps the average
            attention of a clip near 0.5 (0: off, the paper).
    """

    margin: float = 2.0
    hinge: str = "eq5"
    weight_id: float = 1.0
    weight_hinge: float = 1.0
    weight_sim: float = 1.0
    weight_triplet: float = 0.0
    triplet_margin: float = 0.3
    label_smoothing: float = 0.0
    weight_attention_level: float = 0.0

    def __post_init__(self) -> None:
        if self.hinge not in HINGE_FORMS:
            raise ValueError(f"hinge must be one of {', '.join(HINGE_FORMS)}; got {self.hinge!r}")
        for name in ("margin", "triplet_margin"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        for name in ("weight_id", "weight_hinge", "weight_sim", "weight_triplet", "weight_attention_level"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")
        if not (isinstance(self.label_smoothing, (int, float)) and 0 <= self.label_smoothing < 1):
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LossConfig:
        """Inverse of ``to_dict``; unknown keys are an error (``ValueError``), missing ones take
        their defaults."""
        return config_from_dict(cls, data, "loss config")


@dataclass
class LossTerms:
    """The terms of eq. 6 (each averaged over pairs) and their weighted total."""

    total: torch.Tensor
    id1: torch.Tensor
    hinge: torch.Tensor
    sim: torch.Tensor
    id2: torch.Tensor

    def as_floats(self) -> dict[str, float]:
        """Plain floats for logging and plotting."""
        return {k: float(getattr(self, k).detach()) for k in ("total", "id1", "hinge", "sim", "id2")}


def pair_distance(f1: torch.Tensor, f2: torch.Tensor) -> torch.Tensor:
    """d = √(Σ(f1 − f2)² + 1e-12) per pair, shape (B,)."""
    return torch.sqrt((f1 - f2).pow(2).sum(-1) + DISTANCE_EPS)


def contrastive_loss(
    f1: torch.Tensor, f2: torch.Tensor, same: torch.Tensor, margin: float = 2.0, form: str = "eq5"
) -> torch.Tensor:
    """Per-pair contrastive hinge loss (B,).

    Args:
        f1, f2: (B, D) video features.
        same: (B,) bool or 0/1, 1 for pairs of the same person.
        margin: m.
        form: ``eq5`` (½d², ½max(0, m − d)²) or ``rcn_code`` (d, max(0, m − d)).
    """
    d = pair_distance(f1, f2)
    y = same.to(d.dtype)
    if form == "eq5":
        return y * 0.5 * d.pow(2) + (1 - y) * 0.5 * F.relu(margin - d).pow(2)
    if form == "rcn_code":
        return y * d + (1 - y) * F.relu(margin - d)
    raise ValueError(f"unknown hinge form {form!r}; use one of {', '.join(HINGE_FORMS)}")


def identity_loss(logits: torch.Tensor, labels: torch.Tensor, smoothing: float = 0.0) -> torch.Tensor:
    """Cross-entropy of identity logits (B, N) against labels (B,), averaged over the batch.

    ``smoothing`` ε spreads ε of the target over all N classes (Szegedy et al. 2016): the
    target is (1 − ε)·onehot + ε/N.
    """
    return F.cross_entropy(logits, labels.long(), label_smoothing=float(smoothing))


def batch_hard_triplet_loss(features: torch.Tensor, labels: torch.Tensor, margin: float = 0.3) -> torch.Tensor:
    """The batch-hard triplet loss (Hermans, Beyer and Leibe 2017), averaged over anchors.

    For every anchor: d⁺ = its largest Euclidean distance to a tracklet of the same identity,
    d⁻ = its smallest distance to another identity's tracklet; loss max(0, m + d⁺ − d⁻).
    Anchors without a positive or without a negative in the batch are left out.

    Args:
        features: (B, D) video features.
        labels: (B,) identity labels.
        margin: m.
    """
    d = torch.cdist(features.float(), features.float()).clamp_min(0)
    # cdist's gradient is NaN at exactly 0 distance; the stabiliser keeps it finite.
    d = torch.sqrt(d.pow(2) + DISTANCE_EPS)
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    pos = same & ~eye
    neg = ~same
    usable = pos.any(1) & neg.any(1)
    if not bool(usable.any()):
        return features.sum() * 0.0
    hardest_pos = torch.where(pos, d, torch.full_like(d, -1.0)).max(1).values
    hardest_neg = torch.where(neg, d, torch.full_like(d, float("inf"))).min(1).values
    losses = F.relu(margin + hardest_pos - hardest_neg)
    return losses[usable].mean()


def similarity_loss(logits: torch.Tensor, same: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of same/different logits (B, 2) (class 1 = same), averaged over pairs."""
    return F.cross_entropy(logits, same.long())


def pair_loss(
    model: Any,
    f1: torch.Tensor,
    f2: torch.Tensor,
    labels1: torch.Tensor,
    labels2: torch.Tensor,
    config: LossConfig | None = None,
    same: torch.Tensor | None = None,
) -> LossTerms:
    """The total loss of eq. 6 for a batch of pairs.

    Args:
        model: the ``VideoReIDNet`` (its ``classify`` and ``similarity_logits`` are used).
        f1, f2: (B, D) video features of the two branches.
        labels1, labels2: (B,) training identity labels.
        config: loss settings (defaults: margin 2, eq. 5, weights 1).
        same: (B,) same-person flags; default ``labels1 == labels2``.

    Returns:
        ``LossTerms`` with each term averaged over pairs and the weighted total.
    """
    cfg = config or LossConfig()
    if same is None:
        same = labels1 == labels2
    id1 = identity_loss(model.classify(f1), labels1)
    id2 = identity_loss(model.classify(f2), labels2)
    hinge = contrastive_loss(f1, f2, same, cfg.margin, cfg.hinge).mean()
    sim = similarity_loss(model.similarity_logits(f1, f2), same)
    total = cfg.weight_id * (id1 + id2) + cfg.weight_hinge * hinge + cfg.weight_sim * sim
    return LossTerms(total=total, id1=id1, hinge=hinge, sim=sim, id2=id2)


def attention_level_loss(attention: torch.Tensor, mask: torch.Tensor, level: float = 0.5) -> torch.Tensor:
    """(mean attention of a clip − ``level``)², averaged over clips and iterations.

    With sigmoid attention the overall level of α and the size of the frame features trade
    off freely (pooling divides one by the other), and training drifts to α ≈ 0.01, where the
    sigmoid acts like an exponential: frames are still weighted relative to each other, but
    every α is near 0 and a plot of α looks flat. Anchoring the clip's mean at 0.5 removes
    that free level, so the weighting the model learns shows in α itself.

    Args:
        attention: (B, R, T) attention (0 on padding).
        mask: (B, T) real frames.
        level: the anchor.
    """
    m = mask.to(attention.dtype).unsqueeze(1)
    mean = (attention * m).sum(-1) / m.sum(-1).clamp_min(1)
    return (mean - level).pow(2).mean()


@dataclass
class BatchTerms:
    """The terms of the ``fast`` recipe's loss (each averaged) and their weighted total."""

    total: torch.Tensor
    id: torch.Tensor
    triplet: torch.Tensor
    hinge: torch.Tensor
    sim: torch.Tensor
    attention_level: torch.Tensor | None = None

    def as_dict(self) -> dict[str, torch.Tensor]:
        """Name → term, and the total."""
        d = {"total": self.total, "id": self.id, "triplet": self.triplet, "hinge": self.hinge, "sim": self.sim}
        if self.attention_level is not None:
            d["attention_level"] = self.attention_level
        return d


def batch_loss(model: Any, features: torch.Tensor, labels: torch.Tensor, config: LossConfig,
               attention: torch.Tensor | None = None, mask: torch.Tensor | None = None) -> BatchTerms:
    """The loss of an identity-balanced batch (P identities × K tracklets).

    Args:
        model: the ``VideoReIDNet`` (its ``classify`` and ``similarity_logits`` are used).
        features: (B, D) video features.
        labels: (B,) training identity labels.
        config: weights, margins and label smoothing.
        attention, mask: (B, R, T) attention of a head that weights frames, and its (B, T) mask
            (for ``weight_attention_level``; None for heads without attention).

    Returns:
        ``BatchTerms``; terms with weight 0 are not computed (0).
    """
    zero = features.sum() * 0.0
    cfg = config
    id_term = identity_loss(model.classify(features), labels, cfg.label_smoothing) if cfg.weight_id else zero
    tri = batch_hard_triplet_loss(features, labels, cfg.triplet_margin) if cfg.weight_triplet else zero
    hinge = sim = zero
    if cfg.weight_hinge or cfg.weight_sim:
        a, b = torch.triu_indices(len(labels), len(labels), 1, device=features.device)
        same = labels[a] == labels[b]
        if cfg.weight_hinge:
            hinge = contrastive_loss(features[a], features[b], same, cfg.margin, cfg.hinge).mean()
        if cfg.weight_sim:
            sim = similarity_loss(model.similarity_logits(features[a], features[b]), same)
    total = cfg.weight_id * id_term + cfg.weight_triplet * tri + cfg.weight_hinge * hinge + cfg.weight_sim * sim
    level = None
    if cfg.weight_attention_level and attention is not None and mask is not None:
        level = attention_level_loss(attention, mask)
        total = total + cfg.weight_attention_level * level
    return BatchTerms(total=total, id=id_term, triplet=tri, hinge=hinge, sim=sim, attention_level=level)
