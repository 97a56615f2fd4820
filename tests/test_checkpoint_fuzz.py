"""Issue #14: 1,000 checkpoints of random architectures all round-trip.

Each config is drawn with a seeded RNG over every registered temporal head (plus one registered
here through ``register_head``, as a plugin would), 0–400 identity classes, refinement
iterations K 0–5, and every boolean or choice option of ``ModelConfig``, with tiny widths so a
save + load costs milliseconds. Every tensor (parameters and buffers alike) gets random values,
so a checkpoint that loaded another checkpoint's weights, a default initialisation or a
reordered tensor would not compare equal. The safetensors header length of each file is
recorded: the old one-byte sniff refused every checkpoint whose length mod 256 is a pickle
opcode, and the test checks that many of those were among the ones that loaded.
"""
from __future__ import annotations

import struct
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from reidviewer.model.checkpoint import load_checkpoint, read_checkpoint_meta, save_checkpoint
from reidviewer.model.cnn import stage_output_size
from reidviewer.model.config import (
    CONV_ACTIVATIONS,
    FC_ACTIVATIONS,
    HEAD_TRAITS,
    INITS,
    POOLINGS,
    SIMILARITIES,
    TRUNK_POOLS,
    HeadTraits,
    ModelConfig,
)
from reidviewer.model.heads import HEADS, TemporalHead, frame_fc, register_head
from reidviewer.model.network import build_model

COUNT = 1000
SEED = 20_241_402
#: The opcodes the old sniff compared the low byte of the header length with (PROTO, MARK,
#: EMPTY_DICT, EMPTY_LIST, GLOBAL). safetensors pads the header to a multiple of 8, so only
#: 0x80 and 0x28 can occur.
PICKLE_OPCODES = {0x80, ord("("), ord("}"), ord("]"), ord("c")}
#: Configurations forced into the draw: the ones issue #14 names (at the project's own widths).
FORCED = [
    dict(head="rnn", num_classes=150),  # iLIDS-VID's 150 training identities
    dict(head="rnn", num_classes=0),
    dict(head="ran", num_classes=1),
    dict(head="mean", bnneck=True, num_classes=179),
]
#: Draws whose forward pass is compared too (every 97th, plus the forced ones).
FORWARD_EVERY = 97
PLUGIN_HEAD = "fuzz_max"


class MaxPoolHead(TemporalHead):
    """A head from outside the package: max over the real frames, times a learned scale."""

    def __init__(self, config: ModelConfig, flat_dim: int) -> None:
        super().__init__(config, flat_dim)
        self.embed = frame_fc(config, flat_dim)
        self.scale = nn.Parameter(torch.ones(config.embedding_dim))
        self.register_buffer("offset", torch.zeros(config.embedding_dim))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        masked = x.masked_fill(~mask.unsqueeze(-1), float("-inf"))
        feature = masked.max(1).values * self.scale + self.offset
        return feature, mask.to(x.dtype).unsqueeze(1)


@pytest.fixture
def plugin_head():
    """``fuzz_max`` registered for the test, and removed after it."""
    register_head(PLUGIN_HEAD, HeadTraits(False, False, "max over frames (test plugin)"))(MaxPoolHead)
    try:
        yield PLUGIN_HEAD
    finally:
        HEADS.pop(PLUGIN_HEAD, None)
        HEAD_TRAITS.pop(PLUGIN_HEAD, None)


def _trunk_fits(height: int, width: int, channels: int, kernel: int, padding: int) -> bool:
    try:
        for _ in range(channels):
            height = stage_output_size(height, kernel, padding)
            width = stage_output_size(width, kernel, padding)
    except ValueError:
        return False
    return True


def random_config(rng: np.random.Generator, head: str, index: int) -> ModelConfig:
    """A random, valid, tiny architecture with head ``head``."""
    pick = lambda options: options[int(rng.integers(len(options)))]  # noqa: E731
    flip = lambda: bool(rng.integers(2))  # noqa: E731
    stages = int(rng.integers(1, 4))
    while True:
        kernel = int(pick((1, 2, 3, 5)))
        padding = int(rng.integers(0, 4))
        height, width = int(rng.integers(4, 25)), int(rng.integers(4, 25))
        if _trunk_fits(height, width, stages, kernel, padding):
            break
    refines = HEAD_TRAITS[head].refines
    return ModelConfig(
        head=head,
        iterations=int(rng.integers(0, 6)) if refines else int(pick((0, 3))),
        pooling=pick(POOLINGS),
        share_refinement=flip(),
        attention_bias=flip(),
        fc_activation=pick(FC_ACTIVATIONS),
        embedding_dim=int(rng.integers(1, 17)),
        hidden_dim=int(rng.integers(1, 25)),
        dropout=float(pick((0.0, 0.1, 0.5, 0.6, 0.95))),
        rnn_dropout=float(pick((0.0, 0.3, 0.6))),
        in_channels=int(rng.integers(1, 6)),
        input_height=height,
        input_width=width,
        conv_channels=tuple(int(c) for c in rng.integers(1, 7, size=stages)),
        conv_kernel=kernel,
        conv_padding=padding,
        num_classes=int(rng.integers(0, 401)),
        similarity=pick(SIMILARITIES),
        similarity_symmetric=flip(),
        similarity_eps=float(pick((1e-8, 1e-6, 1e-3))),
        init=pick(INITS),
        batchnorm=flip(),
        conv_activation=pick(CONV_ACTIVATIONS),
        bnneck=flip(),
        trunk_pool=pick(TRUNK_POOLS),
        notes=pick(("", f"fuzz #{index}", "ablation ✓ «K»", '"quoted" \\ back\nslash')),
    )


def randomise(model: nn.Module, seed: int) -> None:
    """Random values in every tensor of the state dict (buffers too), so nothing is a default."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.is_floating_point():
                values = torch.randn(t.shape, generator=gen, dtype=t.dtype)
                t.copy_(values.abs() + 0.5 if name.endswith("running_var") else values)
            elif t.dtype == torch.int64:  # BatchNorm's num_batches_tracked
                t.fill_(int(torch.randint(0, 2**40, (1,), generator=gen)))


def bits(t: torch.Tensor) -> bytes:
    return t.detach().contiguous().cpu().numpy().tobytes()


def assert_round_trip(model: nn.Module, config: ModelConfig, path: Path, index: int) -> int:
    """Save, load, compare; returns the safetensors header length."""
    weights = save_checkpoint(path, model, config, {"fuzz": {"index": index, "seed": SEED}})
    (header_length,) = struct.unpack("<Q", weights.read_bytes()[:8])
    # alternate the three ways a checkpoint may be named
    named = (weights, weights.with_suffix(".json"), weights.with_suffix(""))[index % 3]
    loaded, loaded_config, meta = load_checkpoint(named)
    where = f"draw {index}: {config} (header length {header_length}, mod 256 = {header_length % 256:#x})"
    assert loaded_config == config, where
    assert loaded_config.to_dict() == config.to_dict(), where  # notes too (not part of ==)
    assert meta["fuzz"] == {"index": index, "seed": SEED}, where
    assert read_checkpoint_meta(weights)["architecture"] == config.to_dict(), where
    assert not loaded.training, where
    want, got = model.state_dict(), loaded.state_dict()
    assert list(got) == list(want), where
    for name, tensor in want.items():
        assert got[name].dtype == tensor.dtype and got[name].shape == tensor.shape, f"{where}: {name}"
        assert bits(got[name]) == bits(tensor), f"{where}: {name} differs after the round trip"
    return header_length


def assert_same_outputs(model: nn.Module, loaded: nn.Module, config: ModelConfig, index: int) -> None:
    gen = torch.Generator().manual_seed(index)
    frames = torch.randn(2, 3, config.in_channels, config.input_height, config.input_width, generator=gen)
    mask = torch.tensor([[True, True, True], [True, False, True]])
    model.eval()
    with torch.no_grad():
        for m in (None, mask):
            a, b = model(frames, m), loaded(frames, m)
            assert bits(a.feature) == bits(b.feature), f"draw {index}: features differ"
            assert bits(a.attention) == bits(b.attention), f"draw {index}: attention differs"
            assert a.attention.shape[1] == model.attention_rows == config.attention_rows
            assert torch.isfinite(a.feature).all()
        f1, f2 = a.feature, a.feature.flip(0)
        assert bits(model.similarity_logits(f1, f2)) == bits(loaded.similarity_logits(f1, f2))
        if config.num_classes:
            assert bits(model.classify(f1)) == bits(loaded.classify(f1))


def test_a_thousand_random_architectures_round_trip(tmp_path, plugin_head):
    rng = np.random.default_rng(SEED)
    heads = sorted(HEADS)
    assert {"ran", "softmax", "mean", "rnn", plugin_head} <= set(heads)
    path = tmp_path / "fuzz"  # one path, overwritten every time: a stale file would not match
    seen_heads: Counter[str] = Counter()
    seen = {name: Counter() for name in ("iterations", "num_classes", "pooling", "batchnorm", "conv_activation",
                                         "bnneck", "trunk_pool", "similarity", "init", "fc_activation")}
    opcode_lengths: Counter[int] = Counter()
    compared = 0
    for index in range(COUNT):
        if index < len(FORCED):
            config = ModelConfig(**FORCED[index])  # the project's own widths
        else:
            config = random_config(rng, heads[index % len(heads)], index)
        torch.manual_seed(index)
        model = build_model(config)
        randomise(model, index)
        length = assert_round_trip(model, config, path, index)
        if length % 256 in PICKLE_OPCODES:
            opcode_lengths[length % 256] += 1
        if index < len(FORCED) or index % FORWARD_EVERY == 0:
            assert_same_outputs(model, load_checkpoint(path)[0], config, index)
            compared += 1
        seen_heads[config.head] += 1
        for name, counter in seen.items():
            counter[getattr(config, name)] += 1

    # The draw covered what it claims to.
    assert set(seen_heads) == set(heads) and min(seen_heads.values()) >= COUNT // len(heads) - 1
    assert set(seen["pooling"]) == set(POOLINGS) and set(seen["similarity"]) == set(SIMILARITIES)
    assert set(seen["trunk_pool"]) == set(TRUNK_POOLS) and set(seen["conv_activation"]) == set(CONV_ACTIVATIONS)
    assert set(seen["init"]) == set(INITS) and set(seen["fc_activation"]) == set(FC_ACTIVATIONS)
    assert set(seen["batchnorm"]) == set(seen["bnneck"]) == {False, True}
    assert set(range(6)) <= set(seen["iterations"])
    assert {0, 150} <= set(seen["num_classes"]) and max(seen["num_classes"]) > 350
    # Many of them would have been refused as "a Python pickle" by the old sniff.
    assert sum(opcode_lengths.values()) >= 20, opcode_lengths
    assert compared >= 10


def test_the_forced_issue_14_architectures_hit_a_pickle_opcode(tmp_path):
    """The issue's example (an ``rnn`` head with 150 classes) really has a header length the
    old sniff refused, so the fuzz test above exercises the bug and not just its neighbours."""
    config = ModelConfig(**FORCED[0])
    weights = save_checkpoint(tmp_path / "rnn150", build_model(config), config)
    (length,) = struct.unpack("<Q", weights.read_bytes()[:8])
    assert length % 256 in PICKLE_OPCODES
