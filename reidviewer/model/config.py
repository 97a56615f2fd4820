"""The architecture hyper-parameters of a video re-ID network (SPEC §a, §d).

Every ambiguity SPEC resolves with a [CHOICE] is a field here, defaulting to SPEC's choice, so
an ablation is a config change and a checkpoint records exactly what was built. This module
does not import torch, so the CLI and the app can read and edit configs cheaply.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

#: Temporal pooling P(α, X) (SPEC §a.2): ``mean`` = (1/T)·Σαx (default), ``sum`` = Σαx (the
#: paper's literal eq. 2), ``l1`` = Σαx / Σα (Gao & Nevatia's sigmoid + L1 normalisation).
POOLINGS = ("mean", "sum", "l1")
#: Activation between the two frame FC layers (SPEC §a.1 row 14).
FC_ACTIVATIONS = ("tanh", "relu")
#: Interpretation of the similarity loss (SPEC §d.3).
SIMILARITIES = ("A", "B", "C")
#: Weight initialisation: PyTorch's default (calibrated to train, SPEC §a.3) or He/Kaiming.
INITS = ("pytorch", "he")


@dataclass
class ModelConfig:
    """Everything needed to rebuild a network; stored in every checkpoint.

    Attributes:
        head: temporal head name in ``reidviewer.model.heads.HEADS``: ``ran`` (sigmoid attention
            with refinement; ``iterations=0`` is RAN without refinement), ``softmax`` (the same
            with softmax over frames), ``mean`` (temporal mean pooling) or ``rnn`` (RCN).
        iterations: refinement iterations K (SPEC: 3). Attention has K+1 rows (α⁽⁰⁾..α⁽ᴷ⁾).
        pooling: P(α, X) for the sigmoid head, one of ``POOLINGS``.
        share_refinement: one θ' for all K refinement steps (True) or one per step (untied).
        attention_bias: add a bias to θᵀx and θ'ᵀ[x; f] (the paper writes none).
        fc_activation: activation between FC 2560→1024 and FC 1024→128.
        embedding_dim: size of frame features x_i and of the video feature (128).
        hidden_dim: size of the first frame FC layer (1024).
        dropout: dropout before the first frame FC layer (RCN's 0.6).
        rnn_dropout: dropout on tanh(o_{t-1}) inside the RCN recurrence (0.6).
        in_channels: frame channels (Y, U, V, flow-x, flow-y).
        input_height: frame height after cropping (56).
        input_width: frame width after cropping (40).
        conv_channels: output channels of the three conv layers.
        conv_kernel: conv kernel size.
        conv_padding: zero padding of each conv (RCN pads 4 on every side).
        num_classes: training identities for the identity classifier (0: no classifier).
        similarity: similarity-loss head, ``A`` (element-wise product, default), ``B`` (bilinear
            outer product) or ``C`` (literal scalar inner product).
        similarity_symmetric: for ``B``, use ½(f1f2ᵀ + f2f1ᵀ) instead of f1f2ᵀ.
        similarity_eps: ε inside the signed square root (its gradient is infinite at 0).
        init: ``pytorch`` (default init, uniform ±1/√fan_in) or ``he`` (kaiming_normal_, fan_in,
            zero biases).
    """

    head: str = "ran"
    iterations: int = 3
    pooling: str = "mean"
    share_refinement: bool = True
    attention_bias: bool = False
    fc_activation: str = "tanh"
    embedding_dim: int = 128
    hidden_dim: int = 1024
    dropout: float = 0.6
    rnn_dropout: float = 0.6
    in_channels: int = 5
    input_height: int = 56
    input_width: int = 40
    conv_channels: tuple[int, ...] = (16, 32, 32)
    conv_kernel: int = 5
    conv_padding: int = 4
    num_classes: int = 0
    similarity: str = "A"
    similarity_symmetric: bool = False
    similarity_eps: float = 1e-8
    init: str = "pytorch"
    # Free-form note kept with the config (e.g. which ablation this is); not used to build.
    notes: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        self.conv_channels = tuple(int(c) for c in self.conv_channels)
        problems = []
        if not isinstance(self.head, str) or not self.head:
            problems.append(f"head must be a non-empty name, got {self.head!r}")
        for name, allowed in (
            ("pooling", POOLINGS),
            ("fc_activation", FC_ACTIVATIONS),
            ("similarity", SIMILARITIES),
            ("init", INITS),
        ):
            if getattr(self, name) not in allowed:
                problems.append(f"{name} must be one of {', '.join(allowed)}; got {getattr(self, name)!r}")
        if self.iterations < 0:
            problems.append(f"iterations must be >= 0, got {self.iterations}")
        for name in ("embedding_dim", "hidden_dim", "in_channels", "input_height", "input_width", "conv_kernel"):
            if int(getattr(self, name)) <= 0:
                problems.append(f"{name} must be positive, got {getattr(self, name)}")
        if self.conv_padding < 0 or self.num_classes < 0:
            problems.append("conv_padding and num_classes must be >= 0")
        if not self.conv_channels or any(c <= 0 for c in self.conv_channels):
            problems.append(f"conv_channels must be positive, got {self.conv_channels}")
        for name in ("dropout", "rnn_dropout"):
            if not 0.0 <= float(getattr(self, name)) < 1.0:
                problems.append(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if not (self.similarity_eps > 0 and math.isfinite(self.similarity_eps)):
            problems.append(f"similarity_eps must be a positive number, got {self.similarity_eps}")
        if problems:
            raise ValueError("invalid ModelConfig: " + "; ".join(problems))

    @property
    def attention_rows(self) -> int:
        """Rows of the attention output: K+1 for attention heads, 1 for ``mean`` and ``rnn``."""
        return self.iterations + 1 if self.head in ("ran", "softmax") else 1

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (tuples become lists) that ``from_dict`` turns back into this config."""
        d = dataclasses.asdict(self)
        d["conv_channels"] = list(self.conv_channels)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Build a config from ``to_dict`` output; keys it does not know are an error.

        Missing keys take their defaults, so configs written by older versions still load.

        Raises:
            ValueError: naming the unknown keys, or what is invalid about a value.
        """
        if not isinstance(data, dict):
            raise ValueError(f"a model config must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"unknown model config key(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})"
            )
        try:
            return cls(**data)
        except TypeError as exc:  # e.g. a string where a number belongs
            raise ValueError(f"invalid model config: {exc}") from exc

    def replace(self, **changes: Any) -> ModelConfig:
        """A copy with some fields changed (validated)."""
        return dataclasses.replace(self, **changes)
