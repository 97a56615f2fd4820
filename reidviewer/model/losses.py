"""The Siamese training losses of SPEC §d (RAN eqs. 5–6).

For a pair of sequences with video features f1, f2, identity labels y1, y2 and
y = [y1 == y2]:

* L_hinge (eq. 5): ½d² if y, else ½max(0, m − d)², with d = √(Σ(f1 − f2)² + 1e-12) and
  m = 2; ``hinge="rcn_code"`` gives RCN's code form d / max(0, m − d).
* L_id1, L_id2: cross-entropy of the shared classifier on each branch.
* L_sim: cross-entropy of the similarity head's same/different logits.
* L = L_id1 + L_hinge + L_sim + L_id2 (weights 1 by default).

Every term is averaged over the pairs of a batch (summing diverged at lr 1e-3, SPEC §a.3).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
from torch.nn import functional as F

HINGE_FORMS = ("eq5", "rcn_code")
#: distance stabiliser inside the square root (SPEC §d: gradient safety at d = 0).
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
    """

    margin: float = 2.0
    hinge: str = "eq5"
    weight_id: float = 1.0
    weight_hinge: float = 1.0
    weight_sim: float = 1.0

    def __post_init__(self) -> None:
        if self.hinge not in HINGE_FORMS:
            raise ValueError(f"hinge must be one of {', '.join(HINGE_FORMS)}; got {self.hinge!r}")
        if not self.margin > 0:
            raise ValueError(f"margin must be positive, got {self.margin}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LossConfig:
        """Inverse of ``to_dict``; unknown keys are an error."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown loss config key(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        return cls(**data)


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


def identity_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of identity logits (B, N) against labels (B,), averaged over pairs."""
    return F.cross_entropy(logits, labels.long())


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
