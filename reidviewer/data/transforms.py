"""Per-sample transforms and clip sampling (docs/method.md §2.6, §c.1–c.2, §e.5), as RCN's code does them.

Training (RCN ``train.lua`` ``doDataAug``): one crop offset (x, y), each uniform in {1..8}, and
one horizontal flip with p = 0.5 are drawn **per sequence** and applied to every frame. The
frame is mirrored first, then cropped with Torch's 0-based ``image.crop(x, y, x+40, y+56)``
(rows y..y+55, cols x..x+39 of 64×48 → 56×40; offset 0 is never drawn, a Torch quirk kept for
fidelity), then the scalar mean of the whole cropped 5-channel frame is subtracted. The flip
mirrors the flow channels too but does not negate the horizontal flow (RCN); negation is an
option.

Test: a single centre crop at (4, 4) without flip (our choice, docs/method.md §2.6); ``tta_views`` gives RCN's 16
views (offsets (k, k), k = 1..8, each without and with flip).

Everything works on numpy arrays (T, 5, 64, 48); torch tensors are accepted too (so a GPU
batch can be augmented in place of a CPU one). Randomness comes from a
``numpy.random.Generator`` passed in, so runs are repeatable from a seed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from reidviewer.data.preprocess import FLOW_U_CHANNEL

#: Offsets are drawn from {MIN_OFFSET..MAX_OFFSET} (Torch: ``floor(rand*8) + 1``).
MIN_OFFSET = 1
MAX_OFFSET = 8
#: Output size of a crop of the default 64×48 stored frame (rows, cols). A crop is always
#: ``MAX_OFFSET`` smaller than the stored frame in each direction (``crop_size``).
CROP_HEIGHT = 56
CROP_WIDTH = 40


def crop_size(height: int, width: int) -> tuple[int, int]:
    """(rows, cols) of the crops of a stored ``height``×``width`` frame: 8 smaller each way."""
    return height - MAX_OFFSET, width - MAX_OFFSET


def check_crop(height: int, width: int, params: CropParams) -> tuple[int, int]:
    """(rows, cols) of crop ``params`` on a ``height``×``width`` frame; ValueError if it does not fit."""
    ch, cw = crop_size(height, width)
    x, y = params.x, params.y
    if not (0 <= x and x + cw <= width and 0 <= y and y + ch <= height and ch > 0 and cw > 0):
        raise ValueError(f"crop at x={x}, y={y} ({ch}×{cw}) does not fit a {height}×{width} frame")
    return ch, cw
#: The test-time centre crop.
TEST_OFFSET = 4
#: RCN's training clip length and test clip cap.
TRAIN_SEQ_LEN = 16
TEST_MAX_FRAMES = 128


@dataclass(frozen=True)
class CropParams:
    """One sequence's augmentation: crop offset (x = column, y = row) and horizontal flip."""

    x: int
    y: int
    flip: bool


def draw_crop(rng: np.random.Generator) -> CropParams:
    """Draw RCN's per-sequence augmentation: x, y uniform in {1..8}, flip with p = 0.5."""
    x = int(rng.integers(MIN_OFFSET, MAX_OFFSET + 1))
    y = int(rng.integers(MIN_OFFSET, MAX_OFFSET + 1))
    flip = bool(rng.random() < 0.5)
    return CropParams(x, y, flip)


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


def apply_crop(seq: Any, params: CropParams, negate_flow_on_flip: bool = False) -> Any:
    """Mirror (if ``params.flip``), crop 56×40 at (x, y), subtract each frame's scalar mean.

    Args:
        seq: network input (T, 5, H, W) float (numpy or torch); the crop is (H − 8)×(W − 8).
        params: the sequence's offset and flip.
        negate_flow_on_flip: also negate the horizontal flow channel when mirroring.

    Returns:
        (T, 5, H − 8, W − 8) (56×40 from 64×48), a new array of the input's kind (float32
        for numpy).
    """
    h, w = seq.shape[-2], seq.shape[-1]
    ch, cw = check_crop(h, w, params)
    x, y = params.x, params.y
    if _is_torch(seq):
        import torch

        out = torch.flip(seq, dims=(-1,)) if params.flip else seq
        out = out[..., y:y + ch, x:x + cw].clone()
        if params.flip and negate_flow_on_flip:
            out[..., FLOW_U_CHANNEL, :, :] *= -1
        return out - out.mean(dim=(-3, -2, -1), keepdim=True)
    arr = np.asarray(seq)
    if params.flip:
        # Mirroring then cropping at x equals cropping the mirrored window of the original.
        out = arr[..., y:y + ch, w - x - cw:w - x][..., ::-1].astype(np.float32)
    else:
        out = arr[..., y:y + ch, x:x + cw].astype(np.float32)
    if params.flip and negate_flow_on_flip:
        out[..., FLOW_U_CHANNEL, :, :] *= -1
    out -= out.mean(axis=(-3, -2, -1), keepdims=True)
    return out


def train_transform(seq: Any, rng: np.random.Generator, negate_flow_on_flip: bool = False) -> tuple[Any, CropParams]:
    """Training augmentation of one sequence: one draw, applied identically to every frame.

    Returns:
        The (T, 5, 56, 40) crop and the ``CropParams`` drawn.
    """
    params = draw_crop(rng)
    return apply_crop(seq, params, negate_flow_on_flip), params


def test_transform(seq: Any) -> Any:
    """Test-time input: the centre crop at (4, 4), no flip, per-frame mean removed."""
    return apply_crop(seq, CropParams(TEST_OFFSET, TEST_OFFSET, False))


def tta_params() -> list[CropParams]:
    """RCN's 16 test views in order: for k = 1..8, (k, k) without flip, then with flip."""
    return [CropParams(k, k, flip) for k in range(MIN_OFFSET, MAX_OFFSET + 1) for flip in (False, True)]


def tta_views(seq: Any, negate_flow_on_flip: bool = False) -> Any:
    """RCN's 16-view test-time augmentation of one sequence: (16, T, 5, 56, 40)."""
    views = [apply_crop(seq, p, negate_flow_on_flip) for p in tta_params()]
    if _is_torch(seq):
        import torch

        return torch.stack(views)
    return np.stack(views)


def sample_train_clip(length: int, rng: np.random.Generator, seq_len: int = TRAIN_SEQ_LEN) -> np.ndarray:
    """Frame indices of a training clip: ``seq_len`` consecutive frames from a uniform random start.

    A sequence shorter than ``seq_len`` is used whole (RAN keeps short sequences; docs/method.md §5.2
    [CHOICE]).
    """
    if length < 1:
        raise ValueError("cannot sample a clip from an empty sequence")
    if length <= seq_len:
        return np.arange(length)
    start = int(rng.integers(0, length - seq_len + 1))
    return np.arange(start, start + seq_len)


def sample_test_clip(length: int, max_frames: int = TEST_MAX_FRAMES, gallery_tail: bool = False) -> np.ndarray:
    """Frame indices of a test clip: the first ``min(length, max_frames)`` frames.

    Args:
        length: frames in the sequence.
        max_frames: the cap (RCN/RAN evaluate with 128).
        gallery_tail: take the last frames instead, as RCN's code does for the gallery.
    """
    if length < 1:
        raise ValueError("cannot sample a clip from an empty sequence")
    n = min(length, max_frames)
    return np.arange(length - n, length) if gallery_tail else np.arange(n)
