"""The video re-ID network: frame CNN → temporal head, plus the training-only heads."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from reidviewer.model.cnn import FrameCNN
from reidviewer.model.config import ModelConfig
from reidviewer.model.heads import HEADS
from reidviewer.model.similarity import SimilarityHead, build_similarity


@dataclass
class ModelOutput:
    """What the network computes for a batch of sequences.

    Attributes:
        feature: (B, D) video feature f⁽ᴷ⁾, the test-time embedding (Euclidean distance).
        attention: (B, R, T) attention of every iteration α⁽⁰⁾..α⁽ᴷ⁾ (R = K+1 for the
            attention heads, 1 for ``mean``/``rnn``), 0 on padded frames.
        frame_features: (B, T, D) frame features x_i (0 on padded frames), or None.
    """

    feature: torch.Tensor
    attention: torch.Tensor
    frame_features: torch.Tensor | None = None


class VideoReIDNet(nn.Module):
    """A frame CNN, a temporal head and the training-only identity and similarity heads.

    Both Siamese branches are this one network (all weights shared). State-dict names:
    ``cnn.convs.{0,1,2}``, ``head.embed.*`` (frame FC layers), ``head.*`` (attention or
    recurrence), ``classifier`` (Linear D→num_classes, absent when num_classes is 0) and
    ``similarity.*``.

    Args:
        config: the architecture; ``config.head`` must be a registered head.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if config.head not in HEADS:
            raise ValueError(f"unknown temporal head {config.head!r}; registered: {', '.join(sorted(HEADS))}")
        self.config = config
        self.cnn = FrameCNN.from_config(config)
        self.head = HEADS[config.head](config, self.cnn.flat_dim)
        self.classifier = nn.Linear(config.embedding_dim, config.num_classes) if config.num_classes else None
        self.neck: nn.BatchNorm1d | None = None
        if config.bnneck:
            # BNNeck (Luo et al. 2019): the classifier sees a normalised copy of the feature; its
            # bias is frozen at 0 so the normalised features stay centred.
            self.neck = nn.BatchNorm1d(config.embedding_dim)
            self.neck.bias.requires_grad_(False)
        self.similarity: SimilarityHead = build_similarity(config)
        init_weights(self, config.init)

    @property
    def attention_rows(self) -> int:
        """Rows R of the attention output: K+1 for the attention heads, 1 for ``mean``/``rnn``."""
        return self.head.attention_rows

    def frame_features(self, frames: torch.Tensor) -> torch.Tensor:
        """Frame features x_i (N, D) of a flat batch of frames (N, C, H, W)."""
        return self.head.embed(self.cnn(frames))

    def pool(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> ModelOutput:
        """Run only the temporal head on frame features (B, T, D) (see ``forward`` for ``mask``)."""
        mask = _check_mask(mask, x.shape[0], x.shape[1], x.device)
        feature, attention = self.head(x, mask)
        return ModelOutput(feature=feature, attention=attention, frame_features=x)

    def forward(self, frames: torch.Tensor, mask: torch.Tensor | None = None) -> ModelOutput:
        """Embed a batch of sequences.

        Args:
            frames: (B, T, C, H, W) preprocessed frames.
            mask: (B, T) bool, True for real frames and False for padding; None means all real.
                Padded frames are never fed to the CNN (their content, even NaN, is ignored).

        Returns:
            ``ModelOutput`` with feature (B, D), attention (B, R, T), frame_features (B, T, D).
        """
        if frames.dim() != 5:
            raise ValueError(f"frames must have shape (B, T, C, H, W), got {tuple(frames.shape)}")
        b, t = frames.shape[:2]
        if mask is None:
            x = self.frame_features(frames.flatten(0, 1)).view(b, t, -1)
        else:
            mask = _check_mask(mask, b, t, frames.device)
            feats = self.frame_features(frames[mask])
            x = feats.new_zeros(b, t, feats.shape[-1])
            x[mask] = feats
        return self.pool(x, mask)

    def classify(self, feature: torch.Tensor) -> torch.Tensor:
        """Identity logits (B, num_classes) of video features (shared by both branches)."""
        if self.classifier is None:
            raise ValueError("this model has no identity classifier (num_classes is 0)")
        if self.neck is not None:
            feature = self.neck(feature)
        return self.classifier(feature)

    def similarity_logits(self, f1: torch.Tensor, f2: torch.Tensor) -> torch.Tensor:
        """Same/different logits (B, 2) of two video features (B, D); class 1 = same person."""
        return self.similarity(f1, f2)


def _check_mask(mask: torch.Tensor | None, b: int, t: int, device: torch.device) -> torch.Tensor:
    if mask is None:
        return torch.ones(b, t, dtype=torch.bool, device=device)
    if mask.shape != (b, t) or mask.dtype != torch.bool:
        raise ValueError(f"mask must be a bool tensor of shape ({b}, {t}), got {mask.dtype} {tuple(mask.shape)}")
    if mask.numel() and not bool(mask.any(1).all()):
        empty = (~mask.any(1)).nonzero().flatten().tolist()
        raise ValueError(f"sequence(s) {empty} of the batch have no real frame (all masked)")
    return mask.to(device)


def init_weights(model: nn.Module, scheme: str) -> None:
    """Initialise weights: ``pytorch`` keeps PyTorch's defaults; ``he`` draws every conv and linear
    weight with ``kaiming_normal_`` (fan_in) and zeroes the biases (docs/method.md §3.9)."""
    if scheme == "pytorch":
        return
    if scheme != "he":
        raise ValueError(f"unknown init scheme {scheme!r}")
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    for name, p in model.named_parameters():
        if name.endswith("head.start"):
            nn.init.zeros_(p)


def build_model(config: ModelConfig) -> VideoReIDNet:
    """The network ``config`` describes, freshly initialised."""
    return VideoReIDNet(config)
