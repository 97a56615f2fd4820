"""Similarity heads for the same/different loss L_sim (docs/method.md §4.3), used only in training.

The paper's wording (inner product → signed square root → l2 normalisation → softmax) is
degenerate for a scalar inner product, so three readings are offered. Every head returns
two logits per pair (different, same), so L_sim is always ``cross_entropy(logits, y)``:

* ``A`` (default): h = f1 ⊙ f2, n = l2(signed_sqrt(h)), logits = W n + b with W 2×128.
* ``B``: h = vec(f1 f2ᵀ) (optionally ½(f1f2ᵀ + f2f1ᵀ)), the same normalisation, W 2×16384.
* ``C``: I = f1·f2, s = sign(I)√(|I|+ε), z = a·s + b; logits (0, z), so the 2-way softmax is
  σ(z) and the cross-entropy is the binary cross-entropy of the literal-scalar reading.
"""
from __future__ import annotations

import torch
from torch import nn

from reidviewer.model.config import ModelConfig


def signed_sqrt(h: torch.Tensor, eps: float) -> torch.Tensor:
    """sign(h)·√(|h| + ε): ε keeps the gradient finite at 0."""
    return torch.sign(h) * torch.sqrt(h.abs() + eps)


def signed_sqrt_l2(h: torch.Tensor, eps: float) -> torch.Tensor:
    """The bilinear-CNN normalisation along the last axis: s = signed_sqrt(h), s / max(‖s‖₂, ε)."""
    s = signed_sqrt(h, eps)
    return s / s.norm(dim=-1, keepdim=True).clamp_min(eps)


class SimilarityHead(nn.Module):
    """Maps two video features (B, D) to same/different logits (B, 2)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.eps = config.similarity_eps


class SimilarityA(SimilarityHead):
    """Interpretation A: element-wise product, signed sqrt, l2, Linear(D→2)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.linear = nn.Linear(config.embedding_dim, 2)

    def forward(self, f1: torch.Tensor, f2: torch.Tensor) -> torch.Tensor:
        return self.linear(signed_sqrt_l2(f1 * f2, self.eps))


class SimilarityB(SimilarityHead):
    """Interpretation B: bilinear outer product, signed sqrt, l2, Linear(D²→2)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.symmetric = config.similarity_symmetric
        self.linear = nn.Linear(config.embedding_dim**2, 2)

    def forward(self, f1: torch.Tensor, f2: torch.Tensor) -> torch.Tensor:
        outer = f1.unsqueeze(2) * f2.unsqueeze(1)
        if self.symmetric:
            outer = 0.5 * (outer + outer.transpose(1, 2))
        return self.linear(signed_sqrt_l2(outer.flatten(1), self.eps))


class SimilarityC(SimilarityHead):
    """Interpretation C: the literal scalar inner product with a learnable affine map."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.scale = nn.Parameter(torch.ones(()))
        self.offset = nn.Parameter(torch.zeros(()))

    def forward(self, f1: torch.Tensor, f2: torch.Tensor) -> torch.Tensor:
        z = self.scale * signed_sqrt((f1 * f2).sum(-1), self.eps) + self.offset
        return torch.stack([torch.zeros_like(z), z], dim=-1)


SIMILARITY_HEADS: dict[str, type[SimilarityHead]] = {"A": SimilarityA, "B": SimilarityB, "C": SimilarityC}


def build_similarity(config: ModelConfig) -> SimilarityHead:
    """The similarity head ``config.similarity`` names."""
    return SIMILARITY_HEADS[config.similarity](config)
