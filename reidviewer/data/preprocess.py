"""Offline preprocessing of a tracklet's frames into the network's 5-channel input (docs/method.md §2).

Two stages, so the expensive part is done once and cached compactly:

1. ``preprocess_tracklet`` (slow: decode, flow at native resolution, resize) → the **stored
   form**, uint8 (T, 5, 64, 48): channels R, G, B, then RCN's flow PNG channels
   R = v + 127 and G = u + 127 (vertical first, as RCN's ``prepareDataset.lua`` stacks them).
   15 KB per frame, so MARS's 1.19 M frames take 18 GB instead of 73 GB as float32.
2. ``to_network_input`` (cheap, vectorised): RGB → YUV (Torch7 coefficients), flow scaled
   like RCN's PNG loader (/255), and every channel of every frame standardised on its own →
   float32 (T, 5, 64, 48). Channel 3 is the vertical flow, channel 4 the horizontal flow.

**Resizing.** RCN calls Torch7 ``image.scale(img, 48, 64)``, whose "bilinear" mode, when it
*shrinks* an image, is in fact an area average (each output pixel is the mean of the source
area it covers, with fractional weights at the edges; ``generic/image.c``
``scaleLinear_rowcol``). ``cv2.INTER_AREA`` computes exactly that (checked to 1e-7 on
128×64 and 256×128 inputs), while ``cv2.INTER_LINEAR`` samples 2×2 pixels per output pixel
and aliases (off by up to 0.08 of the range from 128×64, 0.41 from MARS's 256×128). So the
default ``resize="area"`` is the faithful one; ``"linear"`` is offered. Stored values are
rounded to uint8, which RCN (float throughout) did not do: at most 0.5/255 per value.
"""
from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from reidviewer.data.flow import (
    FIRST_FRAME_RULES,
    FLOW_METHODS,
    LK_THRESHOLD_DEFAULT,
    FlowNotice,
    compute_flow,
    encode_flow,
    to_gray,
)
from reidviewer.configs import config_from_dict
from reidviewer.data.frames import read_frame
from reidviewer.errors import FrameError

#: Channel layout of both the stored form and the network input.
NUM_CHANNELS = 5
#: Index of the horizontal flow channel (the one a horizontal flip could negate).
FLOW_U_CHANNEL = 4
#: Index of the vertical flow channel.
FLOW_V_CHANNEL = 3

#: Bump when the stored form changes; it is part of ``PreprocessConfig.key()``.
STORED_FORMAT_VERSION = 1

#: Torch7 ``image.rgb2yuv`` (torch/image ``init.lua``), rows Y, U, V; columns R, G, B.
YUV_FROM_RGB = np.array(
    [
        [0.299, 0.587, 0.114],
        [-0.14713, -0.28886, 0.436],
        [0.615, -0.51499, -0.10001],
    ],
    dtype=np.float32,
)

_INTERP = {"area": cv2.INTER_AREA, "linear": cv2.INTER_LINEAR}


@dataclass(frozen=True)
class PreprocessConfig:
    """How frames become network input. Every [CHOICE] of docs/method.md §2 is a field with its default.

    Attributes:
        height: stored/network frame height (RCN: 64).
        width: stored/network frame width (RCN: 48).
        resize: ``"area"`` (= Torch7 ``image.scale`` when shrinking, default) or ``"linear"``.
        flow: ``"lk"`` (dense Lucas–Kanade as RCN's MATLAB code, default), ``"farneback"``,
            ``"dis"`` (OpenCV; deviations from RCN) or ``"none"`` (flow channels all zero).
        lk_threshold: LK eigenvalue threshold τ on the 0..255 intensity scale; see
            ``reidviewer.data.flow`` for why 4.0 and not MATLAB's 0.0039 (``flow.LK_THRESHOLD_RCN``).
        lk_gradient: spatial derivatives on the ``"mean"`` of the two frames or the ``"current"``.
        first_frame: flow of the first frame: ``"zero"`` (default) or ``"copy_next"``.
        mixed_sizes: frames of one tracklet with different sizes: ``"resize"`` them to the first
            frame's size (default; flow needs equal sizes) or raise a ``FrameError`` (``"error"``).
        max_work_height: frames taller than this are reduced to it before the flow (JPEGs decoded
            at 1/2, 1/4… by libjpeg, then area-averaged to the height), so MARS's and
            DukeMTMC's 256×128 crops are worked at 128×64 — the size of iLIDS-VID's and PRID's
            frames, for which RCN's flow recipe was made — at a quarter of the cost (flow at
            native 256×128 held MARS preprocessing to ~500 frames/s on two cores). The stored
            form is 64×48 either way; 0 works at native size.
        use_flow: False zeros network channels 3–4 (RCN's ``--disableOpticalFlow``, ``--no-flow``).
        rcn_quirk_norm: divide by sqrt(unbiased std) as RCN's code does, instead of the std.
        norm_eps: added to the divisor so a constant channel gives zeros, never NaN.
        negate_flow_on_flip: negate the horizontal flow when a frame is mirrored (RCN does not).
    """

    height: int = 64
    width: int = 48
    resize: str = "area"
    flow: str = "lk"
    lk_threshold: float = LK_THRESHOLD_DEFAULT
    lk_gradient: str = "mean"
    first_frame: str = "zero"
    mixed_sizes: str = "resize"
    max_work_height: int = 128
    use_flow: bool = True
    rcn_quirk_norm: bool = False
    norm_eps: float = 1e-6
    negate_flow_on_flip: bool = False

    #: Fields that change the stored form (the rest act in ``to_network_input``/transforms).
    STORED_FIELDS = ("height", "width", "resize", "flow", "lk_threshold", "lk_gradient", "first_frame",
                     "mixed_sizes", "max_work_height")

    def __post_init__(self) -> None:
        if self.resize not in _INTERP:
            raise ValueError(f"resize must be one of {tuple(_INTERP)}, not {self.resize!r}")
        if self.flow not in FLOW_METHODS:
            raise ValueError(f"flow must be one of {FLOW_METHODS}, not {self.flow!r}")
        if self.first_frame not in FIRST_FRAME_RULES:
            raise ValueError(f"first_frame must be one of {FIRST_FRAME_RULES}, not {self.first_frame!r}")
        if self.mixed_sizes not in ("resize", "error"):
            raise ValueError(f"mixed_sizes must be 'resize' or 'error', not {self.mixed_sizes!r}")
        if self.lk_gradient not in ("mean", "current"):
            raise ValueError(f"lk_gradient must be 'mean' or 'current', not {self.lk_gradient!r}")
        if not self.lk_threshold > 0:
            raise ValueError(f"lk_threshold must be positive, not {self.lk_threshold}")
        if self.height < 1 or self.width < 1:
            raise ValueError(f"frame size must be positive, not {self.height}×{self.width}")
        if self.max_work_height < 0 or (0 < self.max_work_height < self.height):
            raise ValueError(f"max_work_height must be 0 (native) or at least the frame height {self.height}, "
                             f"not {self.max_work_height}")

    def key(self) -> str:
        """A stable 12-hex-digit hash of everything that changes the stored form (cache key).

        Options that only act on the network input (normalisation, ``use_flow``, flip) are left
        out, so toggling them reuses the same cache.
        """
        stored = {name: getattr(self, name) for name in self.STORED_FIELDS}
        stored["lk_threshold"] = repr(float(self.lk_threshold))
        stored["format"] = STORED_FORMAT_VERSION
        if self.flow != "lk":  # LK-only options do not change other methods' output
            for name in ("lk_threshold", "lk_gradient"):
                stored.pop(name)
        blob = json.dumps(stored, sort_keys=True).encode("utf-8")
        return hashlib.sha1(blob).hexdigest()[:12]

    def to_dict(self) -> dict:
        """Plain dict of every field (for checkpoint metadata and run configs)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> PreprocessConfig:
        """Inverse of ``to_dict``; unknown keys raise ``ValueError`` naming them, missing ones
        take their defaults."""
        return config_from_dict(cls, data, "preprocessing config")


def rgb_to_yuv(rgb: np.ndarray, axis: int = -1) -> np.ndarray:
    """RGB → YUV with Torch7's ``image.rgb2yuv`` coefficients (linear, any value scale).

    Args:
        rgb: array with 3 colour channels along ``axis`` (R, G, B), e.g. floats in [0, 1].
        axis: the channel axis.

    Returns:
        float32 array of the same shape with Y, U, V along ``axis``.
    """
    x = np.moveaxis(np.asarray(rgb, dtype=np.float32), axis, -1)
    if x.shape[-1] != 3:
        raise ValueError(f"expected 3 colour channels on axis {axis}, got shape {np.shape(rgb)}")
    return np.moveaxis(x @ YUV_FROM_RGB.T, -1, axis)


def standardize(x: np.ndarray, quirk: bool = False, eps: float = 1e-6) -> np.ndarray:
    """Standardise each channel of each frame on its own, in place where possible.

    Args:
        x: float32 (T, C, H, W).
        quirk: RCN's code divides by sqrt(std) with the unbiased variance (``torch.var``);
            False (default) divides by the true (population) std, docs/method.md §2.2 [CHOICE].
        eps: added to the divisor so a constant channel gives zeros instead of NaN.

    Returns:
        float32 (T, C, H, W): mean 0 per (frame, channel); std 1 unless ``quirk``.
    """
    x = np.asarray(x, dtype=np.float32)
    t, c = x.shape[:2]
    flat = x.reshape(t, c, -1)
    flat -= flat.mean(axis=-1, keepdims=True)
    if quirk:
        n = flat.shape[-1]
        var = np.einsum("tcn,tcn->tc", flat, flat) / max(n - 1, 1)
        div = np.sqrt(np.sqrt(var)) + np.float32(eps)
    else:
        div = np.sqrt(np.einsum("tcn,tcn->tc", flat, flat) / flat.shape[-1]) + np.float32(eps)
    flat /= div[..., None].astype(np.float32)
    return flat.reshape(x.shape)


def to_network_input(stored: np.ndarray, config: PreprocessConfig | None = None) -> np.ndarray:
    """Stored uint8 (T, 5, H, W) → network input float32 (T, 5, H, W).

    Channels 0–2: Y, U, V of the RGB/255 frame; channels 3–4: flow PNG values /255 (vertical,
    horizontal), each channel of each frame standardised on its own (docs/method.md §2.2).
    ``config.use_flow=False`` zeros channels 3–4.
    """
    config = config or PreprocessConfig()
    s = np.asarray(stored)
    if s.ndim != 4 or s.shape[1] != NUM_CHANNELS:
        raise ValueError(f"expected stored frames of shape (T, 5, H, W), got {s.shape}")
    t, _, h, w = s.shape
    out = np.empty((t, NUM_CHANNELS, h, w), dtype=np.float32)
    scale = np.float32(1.0 / 255.0)
    rgb = s[:, :3].reshape(t, 3, h * w).astype(np.float32) * scale
    out[:, :3] = np.matmul(YUV_FROM_RGB, rgb).reshape(t, 3, h, w)
    np.multiply(s[:, 3:], scale, out=out[:, 3:], dtype=np.float32)
    out = standardize(out, quirk=config.rcn_quirk_norm, eps=config.norm_eps)
    if not config.use_flow:
        out[:, 3:] = 0.0
    return out


#: Frames with a side longer than this are scaled down (keeping their shape) as they are read,
#: before optical flow: re-ID crops are far smaller (iLIDS-VID 128×64, MARS 256×128, which keep
#: their native resolution), and an 8000×8000 frame would otherwise cost gigabytes per tracklet.
MAX_WORKING_SIDE = 512


def _working_size(h: int, w: int, max_height: int = 0) -> tuple[int, int]:
    """(h, w) scaled down to fit ``MAX_WORKING_SIDE`` and ``max_height`` (0: no height cap)."""
    scale = MAX_WORKING_SIDE / max(h, w)
    if max_height:
        scale = min(scale, max_height / h)
    if scale >= 1:
        return h, w
    return max(1, round(h * scale)), max(1, round(w * scale))


def _jpeg_reduction(h: int, max_height: int) -> int:
    """The largest of 8, 4, 2 that keeps a frame of height ``h`` at least ``max_height`` tall (else 1)."""
    if not max_height:
        return 1
    for f in (8, 4, 2):
        if h // f >= max_height:
            return f
    return 1


def _load(frames: Sequence, names: Sequence[str] | None, mixed_sizes: str = "resize",
          notice=None, max_height: int = 0) -> tuple[list[np.ndarray], list[str]]:
    """Frames as RGB uint8 arrays of one working size, plus a name per frame for messages.

    Each frame is brought to the working size (the first frame's, scaled to fit
    ``MAX_WORKING_SIDE`` and ``max_height``) as soon as it is read, so a huge frame costs one
    frame's memory. Frame files taller than twice ``max_height`` that are JPEGs are decoded
    reduced (libjpeg's scaled DCT), the first frame telling by how much.
    """
    images: list[np.ndarray] = []
    labels: list[str] = []
    size: tuple[int, int] | None = None
    first_size: tuple[int, int] | None = None
    odd: list[tuple[str, int, int]] = []
    reduce = None  # decided by the first frame file
    for i, f in enumerate(frames):
        if isinstance(f, np.ndarray):
            label = str(names[i]) if names else f"<frame {i}>"
            if f.ndim != 3 or f.shape[2] != 3 or f.dtype != np.uint8:
                raise FrameError(label, f"expected an RGB uint8 (H, W, 3) image, got {f.dtype} {f.shape}")
            img = f
        else:
            label = str(f)
            if reduce is None:
                img = read_frame(f)
                # mixed_sizes="error" compares true sizes, so it decodes every frame in full.
                reduce = 1 if mixed_sizes == "error" else _jpeg_reduction(img.shape[0], max_height)
                if reduce > 1 and Path(f).suffix.lower() in (".jpg", ".jpeg"):
                    del img  # one full-size frame in memory at a time
                    img = read_frame(f, reduce)
            else:
                img = read_frame(f, reduce)
        h, w = img.shape[:2]
        if size is None:
            first_size = (h, w)
            size = _working_size(h, w, max_height)
            # Said only for frames too large to work with, not for the usual max_height reduction.
            if _working_size(h, w) != (h, w) and notice is not None:
                notice(f"{label}: frame is {w}×{h}; frames of this tracklet are scaled to "
                       f"{size[1]}×{size[0]} for preprocessing")
        elif (h, w) != first_size:
            if mixed_sizes == "error":
                raise FrameError(label, f"is {w}×{h} pixels but the tracklet's first frame "
                                        f"({Path(labels[0]).name}) is {first_size[1]}×{first_size[0]}")
            odd.append((label, w, h))
        if (h, w) != size:
            img = cv2.resize(img, (size[1], size[0]), interpolation=cv2.INTER_AREA)
        images.append(img)
        labels.append(label)
    if odd and notice is not None and first_size is not None:
        label, w, h = odd[0]
        notice(f"{label}: frame is {w}×{h}, the tracklet's first frame is {first_size[1]}×{first_size[0]}; "
               f"{len(odd)} frame(s) resized to {size[1]}×{size[0]}")
    return images, labels


def preprocess_tracklet(
    frames: Sequence[np.ndarray] | Sequence[str | Path],
    config: PreprocessConfig | None = None,
    names: Sequence[str] | None = None,
    notices: list[str] | None = None,
) -> np.ndarray:
    """Frames of one tracklet → the stored form, uint8 (T, 5, height, width).

    Resizes RGB to height×width (``config.resize``), computes flow at native resolution,
    encodes it like RCN's flow PNGs (R = v + 127, G = u + 127, rounded, clipped to 0..255) and
    resizes that the same way (as RCN's loader resized the PNGs).

    Args:
        frames: RGB uint8 (H, W, 3) arrays or frame file paths, in temporal order.
        config: the preprocessing options.
        names: labels for ``frames`` given as arrays, used in error messages.
        notices: if given, harmless conditions (one-frame tracklet, resized mixed sizes) are
            appended here as sentences; otherwise they are issued as ``FlowNotice`` warnings.

    Raises:
        FrameError: a frame cannot be decoded, or (``mixed_sizes="error"``) has another size
            than the first frame — naming the file.
        ValueError: ``frames`` is empty.
    """
    config = config or PreprocessConfig()
    if len(frames) == 0:
        raise ValueError("a tracklet needs at least one frame")

    def notice(text: str) -> None:
        if notices is not None:
            notices.append(text)
        else:
            warnings.warn(text, FlowNotice, stacklevel=3)

    images, labels = _load(frames, names, config.mixed_sizes, notice, config.max_work_height)
    h0, w0 = images[0].shape[:2]
    t = len(images)
    rgb = np.stack(images)  # (T, H0, W0, 3)
    del images

    native = np.empty((t, NUM_CHANNELS, h0, w0), dtype=np.uint8)
    native[:, :3] = rgb.transpose(0, 3, 1, 2)
    if config.flow == "none":
        native[:, 3:] = 127
    else:
        if t == 1:
            notice(f"{labels[0]}: one-frame tracklet, no frame pair for optical flow; its flow is zero")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FlowNotice)
            flow = compute_flow(to_gray(rgb), config.flow, config.lk_threshold, config.first_frame,
                                config.lk_gradient)
        native[:, 3:] = encode_flow(flow).transpose(0, 3, 1, 2)
    return resize_stack(native, config.height, config.width, config.resize)


def resize_stack(stack: np.ndarray, height: int, width: int, method: str = "area") -> np.ndarray:
    """Resize every channel of every frame of (T, C, H, W) uint8 to (T, C, height, width).

    Area resizing of all planes stacked as one tall (T·C·H, W) image is exactly per-plane area
    resizing when shrinking — each output pixel covers [i·s, (i+1)·s) source rows with
    s = H/height, so plane boundaries fall on output boundaries — and costs one OpenCV call.
    Enlarging (or ``"linear"``) interpolates across neighbours, so it goes plane by plane.
    """
    t, c, h, w = stack.shape
    if (h, w) == (height, width):
        return np.ascontiguousarray(stack)
    if method == "area" and h >= height and w >= width:
        tall = np.ascontiguousarray(stack).reshape(t * c * h, w)
        out = cv2.resize(tall, (width, t * c * height), interpolation=cv2.INTER_AREA)
        return out.reshape(t, c, height, width)
    interp = _INTERP[method]
    out = np.empty((t, c, height, width), dtype=stack.dtype)
    for i in range(t):
        for k in range(c):
            out[i, k] = cv2.resize(stack[i, k], (width, height), interpolation=interp)
    return out
