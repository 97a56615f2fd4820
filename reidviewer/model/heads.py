"""Temporal heads: per-frame embedding and pooling of a sequence into one video feature.

A head owns two things:

* ``embed``: the frame FC layers mapping the CNN's flattened maps (N, 2560) to frame features
  x_i (N, 128). For RAN (and the ``mean``/``softmax`` baselines) that is Dropout(0.6) →
  Linear 2560→1024 → tanh → Linear 1024→128 (docs/method.md §3.1 rows 12–15); for RCN it is Dropout →
  Linear 2560→128.
* ``forward(x, mask)``: pools frame features (B, T, D) with a boolean mask (B, T) of real
  (non-padding) frames into ``(feature (B, D), attention (B, R, T))``. Padded frames get
  attention 0 and do not count in any average.

Heads are registered by name (``@register_head("ran")``) so ``ModelConfig.head`` picks one and
a checkpoint names the one it was trained with.

Registered heads:

* ``ran``: sigmoid attention α⁽⁰⁾ = σ(θᵀx_i), then K refinements α⁽ᵏ⁾ = σ(θ'ᵀ[x_i; f⁽ᵏ⁻¹⁾])
  with f⁽ᵏ⁾ = P(α⁽ᵏ⁾, X) (docs/method.md §3.3–3.5). ``iterations=0`` is RAN without refinement.
* ``softmax``: the same refinement structure with a softmax over the (real) frames in place of
  the sigmoid. The weights then sum to 1, so P is the weighted sum Σα_i x_i whatever
  ``pooling`` says.
* ``mean``: temporal mean pooling of x_i (α ≡ 1); attention rows: 1.
* ``rnn``: RCN's recurrent layer o_1 = e_1 + b_start, o_t = e_t + W_h·Dropout(tanh(o_{t−1})) + b_h,
  then the mean of o_t over frames; attention rows: 1 (uniform).
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import TypeVar

import torch
from torch import nn
from torch.nn import functional as F

from reidviewer.model.config import HEAD_TRAITS, HeadTraits, ModelConfig


class TemporalHead(nn.Module):
    """Base class of temporal heads. Subclasses set ``self.embed`` and implement ``forward``.

    Args:
        config: the architecture.
        flat_dim: size of the CNN's flattened output (2560 for 56×40 input).
    """

    embed: nn.Module

    def __init__(self, config: ModelConfig, flat_dim: int) -> None:
        super().__init__()
        self.config = config
        self.flat_dim = flat_dim

    @property
    def attention_rows(self) -> int:
        """Rows of the attention output (K+1 for refinement heads, else 1)."""
        return 1

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pool frame features.

        Args:
            x: (B, T, D) frame features; rows of padded frames are ignored.
            mask: (B, T) bool, True for real frames; every row has at least one.

        Returns:
            ``(feature (B, D), attention (B, attention_rows, T))`` with attention 0 on padding.
        """
        raise NotImplementedError


H = TypeVar("H", bound=type[TemporalHead])

#: Registered temporal heads by name.
HEADS: dict[str, type[TemporalHead]] = {}


def register_head(name: str, traits: HeadTraits | None = None) -> Callable[[H], H]:
    """Class decorator registering a ``TemporalHead`` subclass under ``name``.

    Args:
        name: the head's name (``ModelConfig.head``).
        traits: what it is (attention or not, refinement iterations or not); needed for a
            head not in ``HEAD_TRAITS`` yet.
    """

    def deco(cls: H) -> H:
        if name in HEADS and HEADS[name] is not cls:
            raise ValueError(f"a temporal head named {name!r} is already registered ({HEADS[name].__name__})")
        if traits is not None:
            HEAD_TRAITS[name] = traits
        elif name not in HEAD_TRAITS:
            raise ValueError(f"temporal head {name!r} needs its traits (attention, refinement)")
        HEADS[name] = cls
        return cls

    return deco


def frame_fc(config: ModelConfig, flat_dim: int) -> nn.Sequential:
    """RAN's frame FC layers: Dropout → Linear(flat, hidden) → activation → Linear(hidden, D)."""
    act: nn.Module = nn.Tanh() if config.fc_activation == "tanh" else nn.ReLU()
    return nn.Sequential(
        OrderedDict(
            dropout=nn.Dropout(config.dropout),
            fc1=nn.Linear(flat_dim, config.hidden_dim),
            act=act,
            fc2=nn.Linear(config.hidden_dim, config.embedding_dim),
        )
    )


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of (B, T, D) over the real frames of each row."""
    m = mask.to(x.dtype)
    return (x * m.unsqueeze(-1)).sum(1) / m.sum(1, keepdim=True)


def attention_pool(alpha: torch.Tensor, x: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """P(α, X) of docs/method.md §3.3–3.5 for (B, T) weights (already 0 on padding) and (B, T, D) features.

    ``mean``: (1/T)·Σα_i x_i with T the number of real frames (reduces to mean pooling at
    α ≡ 1); ``sum``: Σα_i x_i (literal eq. 2); ``l1``: Σα_i x_i / Σα_i.
    """
    pooled = torch.bmm(alpha.unsqueeze(1), x).squeeze(1)
    if pooling == "sum":
        return pooled
    if pooling == "mean":
        return pooled / mask.sum(1, keepdim=True).to(x.dtype)
    if pooling == "l1":
        return pooled / alpha.sum(1, keepdim=True).clamp_min(1e-12)
    raise ValueError(f"unknown pooling {pooling!r}")


@register_head("ran")
class RANHead(TemporalHead):
    """Sigmoid temporal attention with K refinement iterations (docs/method.md §3.3–3.5, eqs. 1–4)."""

    def __init__(self, config: ModelConfig, flat_dim: int) -> None:
        super().__init__(config, flat_dim)
        d = config.embedding_dim
        self.embed = frame_fc(config, flat_dim)
        self.attention = nn.Linear(d, 1, bias=config.attention_bias)  # θ (eq. 1)
        self.iterations = config.iterations
        self.refine: nn.Module | None
        if config.iterations == 0:
            self.refine = None
        elif config.share_refinement:
            self.refine = nn.Linear(2 * d, 1, bias=config.attention_bias)  # θ' (eq. 3), shared
        else:
            self.refine = nn.ModuleList(nn.Linear(2 * d, 1, bias=config.attention_bias) for _ in range(config.iterations))

    @property
    def attention_rows(self) -> int:
        return self.iterations + 1

    def weights(self, scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Attention weights from (B, T) scores: σ(z), exactly 0 on padding."""
        return torch.sigmoid(scores) * mask.to(scores.dtype)

    def pool(self, alpha: torch.Tensor, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The video feature f = P(α, X)."""
        return attention_pool(alpha, x, mask, self.config.pooling)

    def _refine_layer(self, k: int) -> nn.Linear:
        assert self.refine is not None
        return self.refine if isinstance(self.refine, nn.Linear) else self.refine[k]  # type: ignore[return-value]

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        d = x.shape[-1]
        alpha = self.weights(self.attention(x).squeeze(-1), mask)
        feature = self.pool(alpha, x, mask)
        alphas = [alpha]
        for k in range(self.iterations):
            layer = self._refine_layer(k)
            # θ'ᵀ[x_i; f] = θ'_xᵀx_i + θ'_fᵀf: the same value as concatenating f to every frame,
            # without building the (B, T, 2D) tensor.
            w = layer.weight[0]
            scores = x @ w[:d] + (feature @ w[d:]).unsqueeze(1)
            if layer.bias is not None:
                scores = scores + layer.bias
            alpha = self.weights(scores, mask)
            feature = self.pool(alpha, x, mask)
            alphas.append(alpha)
        return feature, torch.stack(alphas, 1)


@register_head("softmax")
class SoftmaxAttentionHead(RANHead):
    """RAN's refinement structure with softmax attention over the real frames of a sequence.

    The weights sum to 1 per sequence, so pooling is the weighted sum Σα_i x_i (``pooling`` is
    not used). The paper reports sigmoid beating softmax; this is the ablation.
    """

    def weights(self, scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=1)

    def pool(self, alpha: torch.Tensor, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return torch.bmm(alpha.unsqueeze(1), x).squeeze(1)


@register_head("mean")
class MeanPoolHead(TemporalHead):
    """Temporal mean pooling of RAN's frame features (α ≡ 1 on real frames)."""

    def __init__(self, config: ModelConfig, flat_dim: int) -> None:
        super().__init__(config, flat_dim)
        self.embed = frame_fc(config, flat_dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return masked_mean(x, mask), mask.to(x.dtype).unsqueeze(1)


@register_head("rnn")
class RecurrentHead(TemporalHead):
    """RCN's head (docs/method.md §3.1, exact): Dropout → Linear(2560→128) → recurrent layer → mean over t.

    o_1 = e_1 + b_start; o_t = e_t + W_h·Dropout(tanh(o_{t−1})) + b_h; no output non-linearity.
    Padded frames are skipped: the state carries over them unchanged and they are left out
    of the mean, so a padded sequence gives the same feature as the unpadded one.
    """

    def __init__(self, config: ModelConfig, flat_dim: int) -> None:
        super().__init__(config, flat_dim)
        d = config.embedding_dim
        self.embed = nn.Sequential(
            OrderedDict(dropout=nn.Dropout(config.dropout), fc=nn.Linear(flat_dim, d))
        )
        self.start = nn.Parameter(torch.empty(d))  # b_start (Torch7 nn.Add(128))
        self.recurrent = nn.Linear(d, d)  # W_h, b_h
        self.state_dropout = nn.Dropout(config.rnn_dropout)
        # Torch7's nn.Add initialises uniformly in ±1/√size, like PyTorch's Linear bias.
        bound = 1.0 / d**0.5
        nn.init.uniform_(self.start, -bound, bound)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, t, _ = x.shape
        state = x.new_zeros(b, x.shape[-1])
        started = torch.zeros(b, dtype=torch.bool, device=x.device)
        total = torch.zeros_like(state)
        for i in range(t):
            e = x[:, i]
            recur = e + self.recurrent(self.state_dropout(torch.tanh(state)))
            new = torch.where(started.unsqueeze(1), recur, e + self.start)
            valid = mask[:, i]
            state = torch.where(valid.unsqueeze(1), new, state)
            total = total + state * valid.unsqueeze(1).to(x.dtype)
            started = started | valid
        feature = total / mask.sum(1, keepdim=True).to(x.dtype)
        return feature, mask.to(x.dtype).unsqueeze(1)
