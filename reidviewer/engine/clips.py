"""Training clips: which frames of a tracklet, their augmentation, and batching.

``paper``: ``seq_len`` consecutive frames from a uniform random start (RCN), one crop offset
and flip per clip. ``fast``: restricted random sampling (Li et al. 2018, Gao & Nevatia 2018):
the tracklet is cut into ``seq_len`` equal chunks and one random frame is taken from each, so
a clip spans the whole tracklet; the same crop and flip for the whole clip, then random
erasing (Zhong et al. 2020) frame by frame, which also gives attention something to learn to
down-weight.
"""
from __future__ import annotations

import numpy as np

from reidviewer.data.dataset import VideoDataset

#: Random erasing: the erased area as a fraction of the frame, and its aspect ratio range.
ERASE_AREA = (0.02, 0.4)
ERASE_ASPECT = (0.3, 3.3)


def restricted_random_frames(length: int, seq_len: int, rng: np.random.Generator) -> np.ndarray:
    """One random frame from each of ``seq_len`` equal chunks of a tracklet of ``length`` frames.

    A tracklet shorter than ``seq_len`` gives some frames twice (still in temporal order), so
    every clip has exactly ``seq_len`` frames.
    """
    if length < 1:
        raise ValueError("cannot sample a clip from an empty sequence")
    bounds = np.floor(np.linspace(0, length, seq_len + 1)).astype(np.int64)
    low = np.minimum(bounds[:-1], length - 1)
    high = np.maximum(bounds[1:], low + 1)
    return rng.integers(low, high)


def random_erase(clip: np.ndarray, rng: np.random.Generator, probability: float) -> np.ndarray:
    """Erase a random rectangle of each frame (with ``probability``) in place, filling it with
    standard-normal noise (the input is standardised, so noise has its statistics).

    Args:
        clip: (T, C, H, W) float32 network input.
        rng: the generator.
        probability: chance that a frame is erased.
    """
    t, c, h, w = clip.shape
    for i in np.flatnonzero(rng.random(t) < probability):
        for _ in range(10):  # a rectangle that fits, as Zhong et al. retry
            area = rng.uniform(*ERASE_AREA) * h * w
            aspect = np.exp(rng.uniform(np.log(ERASE_ASPECT[0]), np.log(ERASE_ASPECT[1])))
            eh, ew = int(round(np.sqrt(area * aspect))), int(round(np.sqrt(area / aspect)))
            if 0 < eh < h and 0 < ew < w:
                y, x = int(rng.integers(0, h - eh + 1)), int(rng.integers(0, w - ew + 1))
                clip[i, :, y:y + eh, x:x + ew] = rng.standard_normal((c, eh, ew), dtype=np.float32)
                break
    return clip


class ClipSource:
    """Training clips from the preprocessing cache.

    Args:
        cache: the ``FrameCache`` of the dataset.
        dataset: the dataset (tracklet lengths).
        seq_len: frames per clip.
        use_flow: False zeros the flow channels.
        negate_flow_on_flip: negate the horizontal flow of mirrored clips.
        sampling: ``consecutive`` or ``restricted``.
        random_erasing: per-frame erasing probability.
    """

    def __init__(self, cache, dataset: VideoDataset, seq_len: int, use_flow: bool,
                 negate_flow_on_flip: bool = False, sampling: str = "consecutive",
                 random_erasing: float = 0.0) -> None:
        self.cache = cache
        self.dataset = dataset
        self.seq_len = seq_len
        self.use_flow = use_flow
        self.negate_flow_on_flip = negate_flow_on_flip
        self.sampling = sampling
        self.random_erasing = random_erasing

    def frames(self, index: int, rng: np.random.Generator) -> np.ndarray | slice:
        """The frames of tracklet ``index`` a clip takes."""
        from reidviewer.data.transforms import sample_train_clip

        n = len(self.dataset.tracklets[index])
        if self.sampling == "restricted":
            return restricted_random_frames(n, self.seq_len, rng)
        picked = sample_train_clip(n, rng, self.seq_len)
        return slice(int(picked[0]), int(picked[-1]) + 1)

    def clip(self, index: int, rng: np.random.Generator) -> np.ndarray:
        """(T, 5, h, w) float32: the clip's frames, cropped, maybe mirrored and erased."""
        from reidviewer.data.transforms import train_transform

        seq = self.cache.network_input(index, self.frames(index, rng))
        out, _ = train_transform(seq, rng, self.negate_flow_on_flip)
        out = np.ascontiguousarray(out, dtype=np.float32)
        if not self.use_flow:
            out[:, 3:5] = 0.0
        if self.random_erasing:
            random_erase(out, rng, self.random_erasing)
        return out


def stack_clips(clips: list[np.ndarray]):
    """Pad clips of different lengths into (B, T, C, H, W) with a (B, T) mask of real frames."""
    import torch

    t = max(c.shape[0] for c in clips)
    b = len(clips)
    x = np.zeros((b, t) + clips[0].shape[1:], dtype=np.float32)
    mask = np.zeros((b, t), dtype=bool)
    for i, c in enumerate(clips):
        x[i, : len(c)] = c
        mask[i, : len(c)] = True
    return torch.from_numpy(x), torch.from_numpy(mask)
