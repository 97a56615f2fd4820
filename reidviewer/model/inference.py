"""Fast inference: frame features for many frames, video features for many tracklets.

The trunk is tiny (28.5 MFLOP per frame incl. the frame FC layers), so on a CPU the speed is
all about keeping oneDNN's convolutions fed:

* **channels_last** input: oneDNN's NHWC convolutions are ~2.5× faster than NCHW here.
* **max-pool before tanh** (``FrameCNN.forward``): the same values, a quarter of the tanh.
* **fixed chunks of 128 frames**: a 1024-frame batch's first feature map (173 MB) falls out
  of the caches; 128-frame chunks keep it in L3 (1024 frames in one go is ~35 % slower).
* every frame of many tracklets goes through the CNN as one flat batch; only the cheap
  temporal head runs per group of (padded, masked) tracklets.
* optionally ``torch.compile`` (Inductor fuses pool + tanh and the bias adds): a few % more,
  at the cost of a compile (≈15 s cold, ≈1–4 s from Inductor's on-disk cache). It is off by
  default; when it fails (no C compiler, unsupported platform) we fall back to eager once.

Results equal the eager reference ``model(frames, mask)`` within float32 rounding (tested).
"""
from __future__ import annotations

import logging
import time
import warnings
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from reidviewer.model.network import VideoReIDNet

log = logging.getLogger(__name__)

#: Frames per CNN call: big enough for full-speed GEMMs, small enough to stay in cache.
DEFAULT_CHUNK = 128
#: Frames per group of tracklets held in memory at once (features are (N, 128) floats).
DEFAULT_GROUP_FRAMES = 8192


class _FrameEncoder(nn.Module):
    """CNN + frame FC layers of a model (sharing its parameters), as one module to compile."""

    def __init__(self, model: VideoReIDNet) -> None:
        super().__init__()
        self.cnn = model.cnn
        self.embed = model.head.embed

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.embed(self.cnn(frames))


# Compiled encoders per model (kept as long as the model lives); None marks a failed compile.
_COMPILED: weakref.WeakKeyDictionary[nn.Module, Callable[[torch.Tensor], torch.Tensor] | None] = (
    weakref.WeakKeyDictionary()
)
_COMPILE_SECONDS: weakref.WeakKeyDictionary[nn.Module, float] = weakref.WeakKeyDictionary()


def _compiled_encoder(model: VideoReIDNet) -> Callable[[torch.Tensor], torch.Tensor] | None:
    if model in _COMPILED:
        return _COMPILED[model]
    try:
        fn = torch.compile(_FrameEncoder(model), dynamic=False)
    except Exception as exc:  # torch.compile unsupported on this platform/Python
        warnings.warn(f"torch.compile unavailable ({exc}); using the eager fast path", RuntimeWarning, stacklevel=3)
        fn = None
    _COMPILED[model] = fn
    return fn


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def _model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def embed_frames(
    model: VideoReIDNet,
    frames: torch.Tensor,
    *,
    chunk_size: int = DEFAULT_CHUNK,
    compile: bool = False,
) -> torch.Tensor:
    """Frame features x_i for a flat batch of frames, fast.

    Args:
        model: the network (put in eval mode for the call; dropout off).
        frames: (N, C, H, W) preprocessed frames, on any device (moved chunk by chunk).
        chunk_size: frames per CNN call.
        compile: use ``torch.compile`` (falls back to eager if compiling fails).

    Returns:
        (N, D) float32 frame features on the model's device.
    """
    model.cnn.check_input(frames)
    device = _model_device(model)
    n = frames.shape[0]
    out = torch.empty(n, model.config.embedding_dim, device=device)
    encoder = _FrameEncoder(model)
    compiled = _compiled_encoder(model) if compile else None
    with _eval_mode(model), torch.inference_mode():
        for start in range(0, n, chunk_size):
            chunk = frames[start : start + chunk_size].to(device, non_blocking=True)
            chunk = chunk.contiguous(memory_format=torch.channels_last)
            # Only full chunks go to the compiled graph: a static shape, never a recompile.
            if compiled is not None and chunk.shape[0] == chunk_size:
                try:
                    first = model not in _COMPILE_SECONDS
                    t0 = time.perf_counter()
                    out[start : start + chunk_size] = compiled(chunk)
                    if first:
                        _COMPILE_SECONDS[model] = time.perf_counter() - t0
                        log.info("torch.compile of the frame encoder took %.1f s", _COMPILE_SECONDS[model])
                    continue
                except Exception as exc:  # compile errors surface on the first call
                    warnings.warn(
                        f"torch.compile failed ({type(exc).__name__}: {exc}); using the eager fast path",
                        RuntimeWarning,
                        stacklevel=2,
                    )
                    _COMPILED[model] = compiled = None
            out[start : start + chunk.shape[0]] = encoder(chunk)
    return out


class _FrameGather:
    """Consecutive chunks of the frames of many clips, copied into one reused uint8 buffer.

    Concatenating a whole group of clips first (8192 frames: 126 MB) made a fresh allocation
    per group, page-faulted in anew every time.
    """

    def __init__(self, clips: Sequence[np.ndarray], chunk_size: int) -> None:
        self.clips = clips
        self.ends = np.cumsum([len(c) for c in clips])
        self.total = int(self.ends[-1]) if len(clips) else 0
        shape = clips[0].shape[1:] if len(clips) else (0,)
        self.buf = np.empty((min(chunk_size, self.total), *shape), dtype=np.uint8)

    def chunk(self, start: int, stop: int) -> np.ndarray:
        """Frames [start, stop) of the clips laid end to end (a view of the reused buffer)."""
        out = self.buf[: stop - start]
        i = int(np.searchsorted(self.ends, start, side="right"))
        pos = start
        while pos < stop:
            first = int(self.ends[i - 1]) if i else 0
            take = min(stop, int(self.ends[i])) - pos
            out[pos - start:pos - start + take] = self.clips[i][pos - first:pos - first + take]
            pos += take
            i += 1
        return out


def embed_stored_frames(
    model: VideoReIDNet,
    clips: Sequence[np.ndarray],
    preprocess=None,
    crop=None,
    *,
    chunk_size: int = DEFAULT_CHUNK,
    compile: bool = False,
) -> torch.Tensor:
    """Frame features x_i straight from stored uint8 frames (the frame cache's form), fast.

    The preprocessing (``data.network_batch``: YUV, standardisation, crop) runs in torch next
    to the CNN, chunk by chunk through reused buffers. ``compile`` compiles the CNN only:
    compiling the preprocessing into the same graph was slower than this eager fused form
    (1,557 against 1,640 frames/s, bench/model.py).

    Args:
        model: the network (eval mode for the call).
        clips: uint8 (T_i, 5, H, W) numpy arrays of stored frames (memory-mapped slices are
            fine), embedded as if laid end to end.
        preprocess: the ``PreprocessConfig`` the model was trained with (None: the default).
        crop: the view (``transforms.CropParams``); None for the test-time centre crop.
        chunk_size: frames per CNN call.
        compile: compile the CNN with ``torch.compile`` (eager if that fails).

    Returns:
        (ΣT_i, D) float32 frame features on the model's device.
    """
    from reidviewer.data.network_batch import network_batch

    gather = _FrameGather(clips, chunk_size)
    n = gather.total
    out = torch.empty(n, model.config.embedding_dim, device=_model_device(model))
    frames_buf = None
    for start in range(0, n, chunk_size):
        stop = min(start + chunk_size, n)
        part = gather.chunk(start, stop)
        if frames_buf is None:
            frames = frames_buf = network_batch(part, preprocess, crop)
        else:
            frames = network_batch(part, preprocess, crop, out=frames_buf[:stop - start])
        out[start:stop] = embed_frames(model, frames, chunk_size=chunk_size, compile=compile)
    return out


@dataclass
class TrackletFeatures:
    """Embeddings of many tracklets (CPU tensors).

    Attributes:
        features: (M, D) video features, row i for tracklet i.
        attention: M tensors (R, T_i): attention of every iteration over each tracklet's frames.
        frame_features: M tensors (T_i, D) if requested, else None.
    """

    features: torch.Tensor
    attention: list[torch.Tensor]
    frame_features: list[torch.Tensor] | None = None


def _groups(lengths: Sequence[int], max_frames: int) -> Iterator[tuple[int, int]]:
    start, total = 0, 0
    for i, n in enumerate(lengths):
        if total and total + n > max_frames:
            yield start, i
            start, total = i, 0
        total += n
    if start < len(lengths):
        yield start, len(lengths)


def extract_features(
    model: VideoReIDNet,
    tracklets: Sequence[torch.Tensor],
    *,
    chunk_size: int = DEFAULT_CHUNK,
    group_frames: int = DEFAULT_GROUP_FRAMES,
    compile: bool = False,
    keep_frame_features: bool = False,
    stored: bool = False,
    preprocess=None,
    crop=None,
) -> TrackletFeatures:
    """Video features and attention of many tracklets, batching all their frames through the CNN.

    Args:
        model: the network (eval mode for the call).
        tracklets: M tensors (T_i, C, H, W) of preprocessed frames, T_i ≥ 1; with ``stored``,
            M uint8 numpy arrays (T_i, 5, H, W) of stored frames (the frame cache's form),
            preprocessed here by ``embed_stored_frames`` with ``preprocess`` and ``crop``.
        chunk_size: frames per CNN call.
        group_frames: about how many frames are embedded before the temporal head runs on
            their tracklets (bounds memory; a longer tracklet forms a group of its own).
        compile: use ``torch.compile`` for the CNN (see ``embed_frames``).
        keep_frame_features: also return each tracklet's frame features.
        stored: ``tracklets`` are stored uint8 frames (see above).
        preprocess: with ``stored``, the ``PreprocessConfig`` (None: the default).
        crop: with ``stored``, the view (None: the test-time centre crop).

    Returns:
        ``TrackletFeatures`` equal to running ``model(frames, mask)`` tracklet by tracklet.
    """
    lengths = [int(t.shape[0]) for t in tracklets]
    for i, n in enumerate(lengths):
        if n == 0:
            raise ValueError(f"tracklet {i} has no frames")
    device = _model_device(model)
    feats: list[torch.Tensor] = []
    attention: list[torch.Tensor] = []
    frame_feats: list[torch.Tensor] | None = [] if keep_frame_features else None
    for a, b in _groups(lengths, group_frames):
        if stored:
            x_flat = embed_stored_frames(model, tracklets[a:b], preprocess, crop, chunk_size=chunk_size,
                                         compile=compile)
        else:
            flat = torch.cat(list(tracklets[a:b])) if b - a > 1 else tracklets[a]
            x_flat = embed_frames(model, flat, chunk_size=chunk_size, compile=compile)
        lens = lengths[a:b]
        t_max = max(lens)
        pos = torch.arange(t_max, device=device)
        mask = pos.unsqueeze(0) < torch.tensor(lens, device=device).unsqueeze(1)
        x = x_flat.new_zeros(b - a, t_max, x_flat.shape[-1])
        x[mask] = x_flat
        with _eval_mode(model), torch.inference_mode():
            out = model.pool(x, mask)
        feats.append(out.feature.cpu())
        att = out.attention.cpu()
        attention.extend(att[i, :, :n].clone() for i, n in enumerate(lens))
        if frame_feats is not None:
            xc = x.cpu()
            frame_feats.extend(xc[i, :n].clone() for i, n in enumerate(lens))
    features = torch.cat(feats) if feats else torch.empty(0, model.config.embedding_dim)
    return TrackletFeatures(features=features, attention=attention, frame_features=frame_feats)


def compile_seconds(model: VideoReIDNet) -> float | None:
    """How long the first compiled call took for ``model`` (None if never compiled)."""
    return _COMPILE_SECONDS.get(model)
