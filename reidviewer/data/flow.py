"""Dense optical flow for the two flow channels of every frame (docs/method.md §2.4).

RCN made its flow with MATLAB ``vision.OpticalFlow('Method','Lucas-Kanade')``: a *dense*,
single-scale, non-iterative Lucas–Kanade that solves a 2×2 system at every pixel. No Python
library does that well: OpenCV's ``calcOpticalFlowPyrLK`` is sparse, pyramidal and iterative
(≈12–40 frames/s when asked for every pixel of a 128×64 frame), and scikit-image's
``optical_flow_ilk`` is dense but iterative with image warping, without MATLAB's eigenvalue
cases (and not a dependency here). So the MATLAB recipe is written here by hand, vectorised over every frame pair of a
tracklet at once (OpenCV filters on stacked frames plus branch-free numpy arithmetic):
≈200 µs of CPU per 128×64 frame, 3,300–5,000 frames/s on one core (``bench/pipeline.py``;
Farnebäck ≈450, per-pixel ``calcOpticalFlowPyrLK`` ≈12 in the same runs). OpenCV Farnebäck
and DIS are offered as alternatives.

The recipe (docs/method.md §2.4, MATLAB internals):

* grayscale 0..255 (``rgb2gray`` of the uint8 frame, so rounded to integers) at native size;
* spatial derivatives with the kernel ``[-1 8 0 -8 1]/12`` (a 5-point central difference) and
  its transpose, taken on the mean of the two frames (see ``gradient_frame``);
* temporal derivative ``I_t - I_{t-1}``: the flow of frame t is its motion from frame t−1;
* the products ``Ix², IxIy, Iy², IxIt, IyIt`` are smoothed by the separable 5×5 window
  ``[1 4 6 4 1]/16``, giving the structure tensor ``A = [[a, b], [b, c]]`` per pixel;
* with its eigenvalues λ1 ≥ λ2 and the threshold τ: both ≥ τ → full solve (Cramer's rule);
  only λ1 ≥ τ → normal flow (the least-squares solution along the dominant eigenvector, which
  is MATLAB's "gradient flow is normalised"); otherwise 0.

**The threshold's scale.** MATLAB's default ``NoiseReductionThreshold`` 0.0039 (≈ 1/256) is
meant for intensities in [0, 1]. RCN fed ``double(rgb2gray(img))`` — 0..255 — so RCN's τ acted
on eigenvalues 255² ≈ 65,000 times larger than intended: effectively no threshold, and every
pixel whose tensor is not exactly singular got a full solve, sensor noise in flat areas
included (on a flat background with noise σ = 1 grey level, two thirds of the pixels get
±1–2 px of spurious flow that survives RCN's whole-pixel PNG encoding). Here τ is given on the
0..255 scale the images have. Measured on textured patterns and noisy flat backgrounds:

* ``LK_THRESHOLD_DEFAULT`` = 4.0 (our [CHOICE]; a gradient of about two grey levels per pixel
  in both directions): a flat background with noise σ ≤ 2 stays at zero flow (≥ 99 % of
  pixels), while textured regions keep their full solve (on the tests' smooth textures the
  median error of 0.5–2 px shifts stays within 10 %; τ only decides which pixels are solved);
* ``LK_THRESHOLD_RCN`` = 0.0039 reproduces what RCN actually computed;
* 0.0039·255² ≈ 254 is what MATLAB's default means on [0, 1] images: far too strict for
  64-pixel-wide person crops (over 90 % of a blurred texture gets zero flow).

Units: pixels per frame at native resolution; ``u`` is horizontal (positive to the right) and
``v`` vertical (positive downwards).
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence

import cv2
import numpy as np

#: Default τ on the 0..255 intensity scale (see the module docstring).
LK_THRESHOLD_DEFAULT = 4.0
#: RCN's literal τ: MATLAB's 0.0039 applied to 0..255 images (effectively no threshold).
LK_THRESHOLD_RCN = 0.0039

FLOW_METHODS = ("lk", "farneback", "dis", "none")
FIRST_FRAME_RULES = ("zero", "copy_next")

# cv2 filters correlate (no kernel flip); MATLAB's [-1 8 0 -8 1]/12 is a convolution kernel,
# so the correlation kernel that gives d/dx (positive for intensity rising to the right) is:
_DERIV = np.array([1.0, -8.0, 0.0, 8.0, -1.0], dtype=np.float32) / 12.0
_DERIV_X = _DERIV[None, :]
_DERIV_Y = _DERIV[:, None]
_SMOOTH = np.array([1.0, 4.0, 6.0, 4.0, 1.0], dtype=np.float32) / 16.0
_PAD = 2  # half-width of every 5-tap kernel

# Pixels per vectorised chunk of frame pairs (8 pairs at 128×64, 2 at 256×128): small
# enough that the ~20 working arrays stay in L2 cache (2–3× faster than one big chunk),
# large enough to amortise the per-call overhead of numpy and OpenCV.
_CHUNK_PIXELS = 65_536


class FlowNotice(UserWarning):
    """A harmless condition worth telling the user (one-frame tracklet: its flow is zero)."""


def to_gray(frames: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
    """RGB uint8 frames → grayscale (T, H, W) float32 in 0..255, rounded like ``rgb2gray``.

    OpenCV's fixed-point BT.601 weights (0.299, 0.587, 0.114) differ from MATLAB's
    ``rgb2gray`` (0.2989, 0.5870, 0.1140) by less than a grey level before rounding.
    """
    arr = frames if isinstance(frames, np.ndarray) else np.stack(list(frames))
    if arr.ndim == 3:  # already grayscale
        return arr.astype(np.float32, copy=False)
    t, h, w, _ = arr.shape
    gray = cv2.cvtColor(np.ascontiguousarray(arr, dtype=np.uint8).reshape(t * h, w, 3), cv2.COLOR_RGB2GRAY)
    return gray.reshape(t, h, w).astype(np.float32)


def _lk_pairs(prev: np.ndarray, cur: np.ndarray, threshold: float, gradient_frame: str) -> np.ndarray:
    """Dense LK flow of ``cur`` relative to ``prev``, both (N, H, W) float32 → (N, 2, H, W).

    Speed: the N frames are filtered as one tall image (N·(H+4), W). Two replicated edge rows
    above and below every frame make that equal to per-frame filtering with a replicated
    border, without a Python loop over frames; the five products sit in one planar array so a
    single call smooths them all. Callers pass small chunks (see ``_CHUNK_PIXELS``) so every
    array stays in the CPU cache — numpy arithmetic here is memory-bound.
    """
    f32 = np.float32
    n, h, w = cur.shape
    hp = h + 2 * _PAD

    base = np.empty((n, hp, w), dtype=f32)
    core = base[:, _PAD:-_PAD]
    if gradient_frame == "current":
        core[...] = cur
    else:
        np.add(prev, cur, out=core)
        core *= f32(0.5)
    base[:, :_PAD] = core[:, :1]
    base[:, -_PAD:] = core[:, -1:]
    tall = base.reshape(n * hp, w)
    # Horizontal derivative of the replicated pad rows is already the replicated derivative.
    # filter2D with a 1×5 / 5×1 kernel: one pass, ~35 % faster than sepFilter2D with a unit kernel.
    ix = cv2.filter2D(tall, cv2.CV_32F, _DERIV_X, borderType=cv2.BORDER_REPLICATE).reshape(n, hp, w)
    iy = cv2.filter2D(tall, cv2.CV_32F, _DERIV_Y, borderType=cv2.BORDER_REPLICATE).reshape(n, hp, w)
    iy[:, :_PAD] = iy[:, _PAD:_PAD + 1]
    iy[:, -_PAD:] = iy[:, -_PAD - 1:-_PAD]
    it = np.empty((n, hp, w), dtype=f32)
    np.subtract(cur, prev, out=it[:, _PAD:-_PAD])
    it[:, :_PAD] = it[:, _PAD:_PAD + 1]
    it[:, -_PAD:] = it[:, -_PAD - 1:-_PAD]

    prods = np.empty((5, n, hp, w), dtype=f32)
    np.multiply(ix, ix, out=prods[0])
    np.multiply(ix, iy, out=prods[1])
    np.multiply(iy, iy, out=prods[2])
    np.multiply(ix, it, out=prods[3])
    np.multiply(iy, it, out=prods[4])
    smoothed = cv2.sepFilter2D(prods.reshape(5 * n * hp, w), cv2.CV_32F, _SMOOTH, _SMOOTH,
                               borderType=cv2.BORDER_REPLICATE).reshape(5, n, hp, w)
    a, b, c, p, q = smoothed[:, :, _PAD:-_PAD]

    # One branch-free solve for all three cases, d = −M·[p q]ᵀ with
    #   full (λ2 ≥ τ):        M = A⁻¹ = [[c, −b], [−b, a]] / det
    #   normal (λ1 ≥ τ > λ2): M = e·eᵀ / λ1, e the unit dominant eigenvector,
    #                         = [[r + hd, b], [b, r − hd]] / (2·r·λ1)
    #   none:                 M = 0
    # where hd = (a − c)/2, r = sqrt(hd² + b²), λ1,2 = (a + c)/2 ± r. Selecting M's entries
    # with np.where is ~3× faster than boolean-indexing the normal-flow pixels.
    tau = f32(threshold)
    hd = a - c
    hd *= f32(0.5)
    r = hd * hd
    r += b * b
    np.sqrt(r, out=r)
    mean = a + c
    mean *= f32(0.5)
    lam1 = mean + r
    lam2 = mean - r
    full = lam2 >= tau
    valid = lam1 >= tau
    m11 = np.where(full, c, r + hd)
    m22 = np.where(full, a, r - hd)
    m12 = np.where(full, -b, b)
    # det = λ1·λ2 (= ac − b²), computed from the same λ2 the classification used, so it is
    # ≥ τ² > 0 wherever ``full``; for normal flow 2·r·λ1 > 0 since r = (λ1 − λ2)/2 > 0.
    den = np.where(full, lam2, f32(2.0) * r)
    den *= lam1
    k = np.zeros_like(den)
    np.divide(f32(-1.0), den, out=k, where=valid)

    flow = np.empty((n, 2, h, w), dtype=f32)
    u = flow[:, 0]
    v = flow[:, 1]
    np.multiply(m11, p, out=u)
    u += m12 * q
    u *= k
    np.multiply(m12, p, out=v)
    v += m22 * q
    v *= k
    return flow


def dense_lk(
    gray: np.ndarray,
    threshold: float = LK_THRESHOLD_DEFAULT,
    first_frame: str = "zero",
    gradient_frame: str = "mean",
) -> np.ndarray:
    """Dense Lucas–Kanade flow of every frame of a tracklet, MATLAB-style (see module doc).

    Args:
        gray: (T, H, W) grayscale frames, intensities 0..255, in temporal order.
        threshold: τ on the eigenvalues of the structure tensor, 0..255 intensity scale.
        first_frame: flow of frame 0, which has no predecessor: ``"zero"`` (our default) or
            ``"copy_next"`` (frame 1's flow).
        gradient_frame: where the spatial derivatives are taken: ``"mean"`` of the two frames
            (default; second-order accurate, the usual LK choice) or the ``"current"`` frame.

    Returns:
        (T, 2, H, W) float32: ``[:, 0]`` horizontal u, ``[:, 1]`` vertical v, pixels/frame.
        A one-frame tracklet gets zero flow and a ``FlowNotice`` warning.
    """
    gray = np.asarray(gray, dtype=np.float32)
    if gray.ndim != 3:
        raise ValueError(f"expected (T, H, W) grayscale frames, got shape {gray.shape}")
    if not threshold > 0:
        raise ValueError(f"the LK threshold must be positive, not {threshold}")
    if gradient_frame not in ("mean", "current"):
        raise ValueError(f"gradient_frame must be 'mean' or 'current', not {gradient_frame!r}")
    t, h, w = gray.shape
    flow = _zero_flow(gray.shape, stacklevel=3)
    if t < 2:
        return flow
    chunk = max(1, _CHUNK_PIXELS // (h * w))
    for start in range(1, t, chunk):
        stop = min(t, start + chunk)
        flow[start:stop] = _lk_pairs(gray[start - 1:stop - 1], gray[start:stop], threshold, gradient_frame)
    return _apply_first_frame(flow, first_frame)


def _zero_flow(shape: tuple[int, ...], stacklevel: int) -> np.ndarray:
    """Zero flow for ``(T, H, W)`` frames, ``(T, 2, H, W)`` float32; for a one-frame tracklet
    also the ``FlowNotice`` that its flow stays zero (``stacklevel`` counted from here)."""
    t, h, w = shape
    if t < 2:
        warnings.warn("one-frame tracklet: no frame pair for optical flow, its flow is zero",
                      FlowNotice, stacklevel=stacklevel)
    return np.zeros((t, 2, h, w), dtype=np.float32)


def _apply_first_frame(flow: np.ndarray, rule: str) -> np.ndarray:
    if rule == "zero":
        flow[0] = 0.0
    elif rule == "copy_next":
        if len(flow) > 1:
            flow[0] = flow[1]
    else:
        raise ValueError(f"first_frame must be one of {FIRST_FRAME_RULES}, not {rule!r}")
    return flow


def _opencv_pairs(gray: np.ndarray, method: str, first_frame: str) -> np.ndarray:
    """Flow of frame t relative to t−1 with an OpenCV dense method, (T, 2, H, W) float32."""
    t, h, w = gray.shape
    flow = _zero_flow(gray.shape, stacklevel=4)
    if t < 2:
        return flow
    g8 = np.clip(np.rint(gray), 0, 255).astype(np.uint8)
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM) if method == "dis" else None
    for i in range(1, t):
        # OpenCV's flow maps prev → next: prev(y, x) ≈ next(y + v, x + u), the same sign
        # convention as dense_lk (motion from frame t−1 to frame t).
        if dis is not None:
            f = dis.calc(g8[i - 1], g8[i], None)
        else:
            f = cv2.calcOpticalFlowFarneback(g8[i - 1], g8[i], None, 0.5, 3, 15, 3, 5, 1.2, 0)
        flow[i] = f.transpose(2, 0, 1)
    return _apply_first_frame(flow, first_frame)


def compute_flow(
    gray: np.ndarray,
    method: str = "lk",
    threshold: float = LK_THRESHOLD_DEFAULT,
    first_frame: str = "zero",
    gradient_frame: str = "mean",
) -> np.ndarray:
    """Flow of every frame by the chosen method.

    Args:
        gray: (T, H, W) grayscale 0..255.
        method: ``"lk"`` (dense Lucas–Kanade, RCN's method, default), ``"farneback"`` or
            ``"dis"`` (OpenCV; deviations from RCN), or ``"none"`` (all zero).
        threshold: τ for ``"lk"``.
        first_frame: ``"zero"`` or ``"copy_next"``.
        gradient_frame: see ``dense_lk``.

    Returns:
        (T, 2, H, W) float32 flow (u, v) in pixels per frame.
    """
    gray = np.asarray(gray, dtype=np.float32)
    if method == "lk":
        return dense_lk(gray, threshold, first_frame, gradient_frame)
    if method in ("farneback", "dis"):
        return _opencv_pairs(gray, method, first_frame)
    if method == "none":
        return np.zeros((gray.shape[0], 2, *gray.shape[1:]), dtype=np.float32)
    raise ValueError(f"flow method must be one of {FLOW_METHODS}, not {method!r}")


def encode_flow(flow: np.ndarray) -> np.ndarray:
    """RCN's flow PNG encoding: (T, 2, H, W) float (u, v) → (T, H, W, 2) uint8 (R, G).

    R = v + 127 and G = u + 127, rounded and clipped to [0, 255] (B, always 0, is dropped).
    Like RCN's 8-bit PNGs this keeps whole pixels only: |flow| < 0.5 px encodes as 127.
    """
    out = np.empty((flow.shape[0], flow.shape[2], flow.shape[3], 2), dtype=np.uint8)
    out[..., 0] = np.clip(np.rint(flow[:, 1] + 127.0), 0, 255)
    out[..., 1] = np.clip(np.rint(flow[:, 0] + 127.0), 0, 255)
    return out


def decode_flow(encoded: np.ndarray) -> np.ndarray:
    """Inverse of ``encode_flow``: (T, H, W, 2) uint8 (R, G) → (T, 2, H, W) float32 (u, v)."""
    enc = np.asarray(encoded, dtype=np.float32)
    return np.stack([enc[..., 1] - 127.0, enc[..., 0] - 127.0], axis=1)
