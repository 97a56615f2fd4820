"""The architecture hyper-parameters of a video re-ID network (docs/method.md §3, §d).

Every ambiguity of the paper is a field here (docs/method.md §7), defaulting to our choice, so
an ablation is a config change and a checkpoint records exactly what was built. This module
does not import torch, so the CLI and the app can read and edit configs cheaply.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from reidviewer.configs import config_from_dict


@dataclass(frozen=True)
class HeadTraits:
    """What a temporal head is, known without importing torch (the CLI and app list heads).

    Attributes:
        attention: it weights frames (its attention rows are learned), rather than pooling
            them uniformly.
        refines: it has refinement iterations K (``ModelConfig.iterations``).
        description: one line for help texts.
    """

    attention: bool
    refines: bool
    description: str


#: Every temporal head by name; ``reidviewer.model.heads.register_head`` adds to it.
HEAD_TRAITS: dict[str, HeadTraits] = {
    "ran": HeadTraits(True, True, "sigmoid temporal attention with K refinement iterations (the paper)"),
    "mean": HeadTraits(False, False, "temporal mean pooling of the frame features"),
    "rnn": HeadTraits(False, False, "RCN's recurrent layer, then the mean over time"),
    "softmax": HeadTraits(True, True, "RAN's refinement with softmax attention (ablation)"),
}

#: Temporal pooling P(α, X) (docs/method.md §3.3–3.5): ``mean`` = (1/T)·Σαx (default), ``sum`` = Σαx (the
#: paper's literal eq. 2), ``l1`` = Σαx / Σα (Gao & Nevatia's sigmoid + L1 normalisation).
POOLINGS = ("mean", "sum", "l1")
#: Activation between the two frame FC layers (docs/method.md §3.1 row 14).
FC_ACTIVATIONS = ("tanh", "relu")
#: Interpretation of the similarity loss (docs/method.md §4.3).
SIMILARITIES = ("A", "B", "C")
#: Weight initialisation: PyTorch's default (calibrated to train, docs/method.md §3.9) or He/Kaiming.
INITS = ("pytorch", "he")
#: Activation after each conv stage (the paper's trunk: tanh).
CONV_ACTIVATIONS = ("tanh", "relu")
#: How the last conv stage's maps become the frame's vector: ``flatten`` (the paper: every
#: position its own weights in the FC layer) or ``avg`` (global average pooling).
TRUNK_POOLS = ("flatten", "avg")
#: Widest layer a config may ask for (a checkpoint's JSON is checked before anything is built).
MAX_WIDTH = 65_536
#: Whole-number fields and their allowed ranges.
INT_RANGES = (
    ("iterations", 0, 64),
    ("embedding_dim", 1, MAX_WIDTH),
    ("hidden_dim", 1, MAX_WIDTH),
    ("in_channels", 1, 64),
    ("input_height", 1, 4096),
    ("input_width", 1, 4096),
    ("conv_kernel", 1, 31),
    ("conv_padding", 0, 31),
    ("num_classes", 0, 1_000_000),
)


@dataclass
class ModelConfig:
    """Everything needed to rebuild a network; stored in every checkpoint.

    Attributes:
        head: temporal head name in ``reidviewer.model.heads.HEADS``: ``ran`` (sigmoid attention
            with refinement; ``iterations=0`` is RAN without refinement), ``softmax`` (the same
            with softmax over frames), ``mean`` (temporal mean pooling) or ``rnn`` (RCN).
        iterations: refinement iterations K (the paper: 3). Attention has K+1 rows (α⁽⁰⁾..α⁽ᴷ⁾).
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
        batchnorm: BatchNorm after each conv (the ``fast`` recipe's trunk; the paper has none).
        conv_activation: activation of each conv stage, ``tanh`` (the paper) or ``relu``.
        bnneck: a BatchNorm between the video feature and the identity classifier (Luo et al.'s
            "BNNeck": the triplet loss acts on the feature, the cross-entropy on its normalised
            copy). The retrieval feature is the pooled feature either way.
        trunk_pool: ``flatten`` the last conv maps (the paper, 2560 values) or ``avg`` them
            over positions (one value per channel).
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
    batchnorm: bool = False
    conv_activation: str = "tanh"
    bnneck: bool = False
    trunk_pool: str = "flatten"
    # Free-form note kept with the config (e.g. which ablation this is); not used to build.
    notes: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        problems = []
        for name, low, high in INT_RANGES:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                problems.append(f"{name} must be a whole number, got {value!r}")
            elif not low <= value <= high:
                problems.append(f"{name} must be between {low} and {high:,}, got {value:,}")
        channels = self.conv_channels
        if not isinstance(channels, (list, tuple)) or not channels or len(channels) > 8 or any(
                isinstance(c, bool) or not isinstance(c, int) or not 1 <= c <= MAX_WIDTH for c in channels):
            problems.append(f"conv_channels must be 1 to 8 whole numbers in 1..{MAX_WIDTH}, got {channels!r}")
        else:
            self.conv_channels = tuple(int(c) for c in channels)
        if not isinstance(self.head, str) or not self.head:
            problems.append(f"head must be a non-empty name, got {self.head!r}")
        for name, allowed in (
            ("pooling", POOLINGS),
            ("fc_activation", FC_ACTIVATIONS),
            ("similarity", SIMILARITIES),
            ("init", INITS),
            ("conv_activation", CONV_ACTIVATIONS),
            ("trunk_pool", TRUNK_POOLS),
        ):
            if getattr(self, name) not in allowed:
                problems.append(f"{name} must be one of {', '.join(allowed)}; got {getattr(self, name)!r}")
        for name in ("share_refinement", "attention_bias", "similarity_symmetric", "batchnorm", "bnneck"):
            if not isinstance(getattr(self, name), bool):
                problems.append(f"{name} must be true or false, got {getattr(self, name)!r}")
        for name in ("dropout", "rnn_dropout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
                problems.append(f"{name} must be in [0, 1), got {value!r}")
        eps = self.similarity_eps
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not (eps > 0 and math.isfinite(eps)):
            problems.append(f"similarity_eps must be a positive number, got {eps!r}")
        if problems:
            raise ValueError("invalid ModelConfig: " + "; ".join(problems))

    @property
    def has_attention(self) -> bool:
        """Whether the head weights frames (``HEAD_TRAITS``); ``mean`` and ``rnn`` do not."""
        traits = HEAD_TRAITS.get(self.head)
        return bool(traits and traits.attention)

    @property
    def attention_rows(self) -> int:
        """Rows of the attention output: K+1 for attention heads, 1 for ``mean`` and ``rnn``."""
        traits = HEAD_TRAITS.get(self.head)
        return self.iterations + 1 if traits and traits.refines else 1

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
        return config_from_dict(cls, data, "model config")

    def replace(self, **changes: Any) -> ModelConfig:
        """A copy with some fields changed (validated)."""
        return dataclasses.replace(self, **changes)
