"""The per-frame CNN: RCN's three-conv trunk (docs/method.md §3.1, exact), with options.

Each stage is Conv2d(k=5, padding=4) → tanh → MaxPool2d(2, 2) (floor mode). For a 5×56×40
frame the stages give 16×30×22, 32×17×13 and 32×10×8, flattened to 2560 values. The ``fast``
training recipe widens the stages, adds BatchNorm after each conv and uses ReLU
(``ModelConfig.batchnorm``, ``conv_channels``, ``conv_activation``).

``FrameCNN.forward`` applies the max-pool *before* the tanh. That is the same function —
tanh is monotonic, so max(tanh(a), tanh(b)) = tanh(max(a, b)) — and the gradient reaches
the same arg-max element, but tanh runs on a quarter of the values. ``spec_reference_trunk``
builds the literal order of docs/method.md §3.1 sharing the same weights; the tests compare the two.
"""
from __future__ import annotations

import torch
from torch import nn

from reidviewer.model.config import ModelConfig


def stage_output_size(size: int, kernel: int, padding: int) -> int:
    """Spatial size after one conv (stride 1) + 2×2/2 max-pool (floor)."""
    conv = size + 2 * padding - kernel + 1
    if conv < 2:
        raise ValueError(f"input of size {size} is too small for a {kernel}×{kernel} conv with padding {padding}")
    return conv // 2


class FrameCNN(nn.Module):
    """Three conv stages mapping (N, C, H, W) frames to (N, flat_dim) features.

    Args:
        in_channels: frame channels (5: Y, U, V and two flow channels).
        channels: output channels of each conv stage (16, 32, 32).
        kernel: conv kernel size (5).
        padding: zero padding of each conv (4).
        input_size: (H, W) of the frames the network expects (56, 40); the flattened size is
            computed from it and checked at every call.
    """

    def __init__(
        self,
        in_channels: int = 5,
        channels: tuple[int, ...] = (16, 32, 32),
        kernel: int = 5,
        padding: int = 4,
        input_size: tuple[int, int] = (56, 40),
        batchnorm: bool = False,
        activation: str = "tanh",
        pool: str = "flatten",
    ) -> None:
        super().__init__()
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.in_channels = in_channels
        if activation not in ("tanh", "relu"):
            raise ValueError(f"unknown conv activation {activation!r}")
        self.activation = torch.tanh if activation == "tanh" else torch.relu
        convs = []
        norms = []
        c_in = in_channels
        h, w = self.input_size
        for c_out in channels:
            # A conv followed by BatchNorm needs no bias of its own.
            convs.append(nn.Conv2d(c_in, c_out, kernel, stride=1, padding=padding, bias=not batchnorm))
            if batchnorm:
                norms.append(nn.BatchNorm2d(c_out))
            h, w = stage_output_size(h, kernel, padding), stage_output_size(w, kernel, padding)
            c_in = c_out
        self.convs = nn.ModuleList(convs)
        self.norms = nn.ModuleList(norms) if batchnorm else None
        if pool not in ("flatten", "avg"):
            raise ValueError(f"unknown trunk pooling {pool!r}")
        self.pool = pool
        self.output_shape = (c_in, h, w)
        self.flat_dim = c_in * h * w if pool == "flatten" else c_in

    @classmethod
    def from_config(cls, config: ModelConfig) -> FrameCNN:
        """The trunk a ``ModelConfig`` describes."""
        return cls(
            in_channels=config.in_channels,
            channels=config.conv_channels,
            kernel=config.conv_kernel,
            padding=config.conv_padding,
            input_size=(config.input_height, config.input_width),
            batchnorm=config.batchnorm,
            activation=config.conv_activation,
            pool=config.trunk_pool,
        )

    def check_input(self, frames: torch.Tensor) -> None:
        """Raise ValueError unless ``frames`` is (N, in_channels, H, W) with the configured H, W."""
        expected = (self.in_channels, *self.input_size)
        if frames.dim() != 4 or tuple(frames.shape[1:]) != expected:
            raise ValueError(
                f"frames must have shape (N, {expected[0]}, {expected[1]}, {expected[2]}), "
                f"got {tuple(frames.shape)}"
            )

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """Map (N, C, H, W) frames to (N, flat_dim) flattened feature maps."""
        self.check_input(frames)
        x = frames
        for i, conv in enumerate(self.convs):
            x = conv(x)
            if self.norms is not None:
                # BatchNorm before the pool: its per-channel scale may be negative, and a max
                # does not commute with a negative scale.
                x = self.norms[i](x)
            # max-pool before the activation: identical result (tanh and ReLU are monotonic),
            # 4× fewer activations.
            x = self.activation(nn.functional.max_pool2d(x, 2, 2))
        if self.pool == "avg":
            return x.mean((2, 3))
        # flatten in (C, H, W) order whatever the memory format, as the FC weights expect.
        return x.flatten(1)


def spec_reference_trunk(cnn: FrameCNN) -> nn.Sequential:
    """The literal docs/method.md §3.1 layer order (conv → tanh → max-pool, ×3, flatten), sharing weights.

    Used by tests and the benchmark as the eager reference; not needed otherwise.
    """
    layers: list[nn.Module] = []
    for i, conv in enumerate(cnn.convs):
        layers.append(conv)
        if cnn.norms is not None:
            layers.append(cnn.norms[i])
        layers += [nn.Tanh() if cnn.activation is torch.tanh else nn.ReLU(), nn.MaxPool2d(2, 2)]
    layers.append(nn.Flatten(1))
    return nn.Sequential(*layers)
