"""Network input for many frames at once: ``to_network_input`` and a crop, fused into one affine map.

``to_network_input`` followed by ``apply_crop`` walks every value five or six times in numpy
(float conversion, RGB → YUV, per-channel mean, std, division, crop, scalar mean): 70–190 µs
per frame, as much as a third of what the CNN itself costs on two cores, which held MARS-scale
feature extraction well below the CNN's own rate (issue 19).

Every one of those steps is affine per frame, so their composition is too::

    out[c, p] = Σ_k A[c, k] · (z[k, p] − z̄[k]) + b        (z: stored uint8 values, z̄: their
                                                        frame means, p: crop pixels)

with a 5×5 matrix ``A`` (the YUV matrix scaled by each channel's 1/std; the flow channels
diagonal) and a bias ``b`` (the crop's scalar mean, removed). ``A`` and ``b`` follow from the
centred 5×5 Gram matrix of the full stored frame (YUV's variance is ``M Σ Mᵀ`` of the RGB
covariance ``Σ``) and the crop's centred channel means. A chunk of frames costs one
conversion to float, one batched Gram product and one batched 5×5 product, through reused
buffers; the result equals the numpy reference within float32 rounding
(``tests/test_network_batch.py``). With flow off, the flow channels are exactly zero, as
``engine.clips`` feeds training (the numpy pair leaves them at minus the crop's mean).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from reidviewer.data.preprocess import NUM_CHANNELS, YUV_FROM_RGB, PreprocessConfig
from reidviewer.data.transforms import TEST_OFFSET, CropParams, check_crop

#: Frames converted per step by ``network_batch``: 64 frames' float copies (~4 MB) stay in
#: the CPU caches; the whole batch at once (1024 frames, 60 MB) was 3× slower here.
CHUNK_FRAMES = 64


_YUV_ROWS = YUV_FROM_RGB.tolist()


def _affine(gram, crop_mean, config: PreprocessConfig, pixels: int):
    """A (N, 5, 5) and b (N, 5, 1) with network input = A · (stored − channel mean) + b over the crop.

    Working on mean-centred values keeps near-constant channels exact: A · stored and A · mean
    are both huge when a channel's std is tiny, and their difference would lose every digit.

    Args:
        gram: (N, 5, 5) centred Gram matrix of the full stored frame, divided by ``pixels``.
        crop_mean: (N, 5) means of the centred values over the crop.
        config: the preprocessing settings.
        pixels: H × W of the stored frame.
    """
    import torch

    dev = gram.device
    m = torch.tensor(_YUV_ROWS, dtype=torch.float32, device=dev)
    scale = 1.0 / 255.0
    # YUV's variance is M Σ Mᵀ of the RGB covariance Σ; the flow channels are their own.
    var_yuv = torch.einsum("ck,nkl,cl->nc", m, gram[:, :3, :3], m) * (scale * scale)
    var_flow = torch.diagonal(gram[:, 3:, 3:], dim1=1, dim2=2) * (scale * scale)
    var = torch.cat([var_yuv, var_flow], 1).clamp_min(0.0)  # rounding can dip below 0 on a flat channel
    if config.rcn_quirk_norm:
        var = var * (pixels / max(pixels - 1, 1))  # RCN: the unbiased variance, divided by √std
        div = var.sqrt().sqrt() + config.norm_eps
    else:
        div = var.sqrt() + config.norm_eps
    block = torch.zeros(NUM_CHANNELS, NUM_CHANNELS, dtype=torch.float32, device=dev)
    block[:3, :3] = m
    block[3, 3] = block[4, 4] = 1.0
    a = block.unsqueeze(0) * (scale / div).unsqueeze(-1)
    # The scalar mean of the cropped, standardised frame (all channels) is removed too.
    b = -(a @ crop_mean.unsqueeze(-1)).mean(1, keepdim=True).expand(-1, NUM_CHANNELS, -1)
    if not config.use_flow:
        # Flow zeros count in that mean, and stay zeros after it, as training feeds them.
        keep = torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0], device=dev)[None, :, None]
        a = a * keep
        b = -(a @ crop_mean.unsqueeze(-1)).mean(1, keepdim=True) * keep
    return a, b.contiguous()


def _window(z, h: int, w: int, ch: int, cw: int, crop: CropParams):
    """The crop of float frames z (N, 5, H·W) as a (N, 5, ch, cw) view (a copy when mirrored)."""
    # Mirroring then cropping at x equals cropping the mirrored window at w − x − cw.
    x0 = w - crop.x - cw if crop.flip else crop.x
    window = z.reshape(z.shape[0], z.shape[1], h, w)[:, :, crop.y:crop.y + ch, x0:x0 + cw]
    return window.flip(-1) if crop.flip else window


def network_batch(stored: Sequence[np.ndarray] | np.ndarray, config: PreprocessConfig | None = None,
                  crop: CropParams | None = None, out=None):
    """The network input of many stored clips, concatenated: float32 (ΣT_i, 5, h, w), channels_last.

    Equal (within float32 rounding) to ``np.concatenate([apply_crop(to_network_input(s, config),
    crop) for s in stored])``, in about half the time.

    Args:
        stored: uint8 (T_i, 5, H, W) stored frames of each clip (memory-mapped slices are
            fine), or one such array.
        config: the preprocessing settings.
        crop: the view; None for the test-time centre crop.
        out: a float32 tensor of the result's shape to write into (reused buffers avoid the
            page faults of a fresh allocation, which cost as much as the arithmetic here).

    Returns:
        A torch tensor (ΣT_i, 5, H − 8, W − 8) in channels_last memory order (what the CNN's
        convolutions want), ``out`` if given.
    """
    import torch

    arr = stored if isinstance(stored, np.ndarray) else (np.concatenate(list(stored)) if len(stored) else None)
    if arr is None:
        raise ValueError("no clips given")
    if arr.ndim != 4 or arr.shape[1] != NUM_CHANNELS or arr.dtype != np.uint8:
        raise ValueError(f"expected stored uint8 frames of shape (T, 5, H, W), got {arr.dtype} {arr.shape}")
    n, c, h, w = arr.shape
    config = config or PreprocessConfig()
    crop = crop or CropParams(TEST_OFFSET, TEST_OFFSET, False)
    ch, cw = check_crop(h, w, crop)
    if out is None:
        out = torch.empty(n, c, ch, cw, memory_format=torch.channels_last)
    elif tuple(out.shape) != (n, c, ch, cw):
        raise ValueError(f"out has shape {tuple(out.shape)}, expected {(n, c, ch, cw)}")
    # Work buffers reused for every chunk: fresh multi-MB tensors per step cost more in page
    # faults than the arithmetic (measured: 2–10× slower steps).
    k = min(CHUNK_FRAMES, n)
    z_buf = np.empty((k, c, h * w), dtype=np.float32)
    centred_buf = torch.empty(k, c, h * w)
    gram_buf = torch.empty(k, c, c)
    prod_buf = torch.empty(k, c, ch * cw)
    with torch.inference_mode():
        for start in range(0, n, k):
            stop = min(start + k, n)
            m = stop - start
            # numpy's uint8 → float32 conversion is several times faster than torch's here.
            np.copyto(z_buf[:m], arr[start:stop].reshape(m, c, h * w))
            z = torch.from_numpy(z_buf[:m])
            mean = z.mean(-1)
            centred = torch.sub(z, mean.unsqueeze(-1), out=centred_buf[:m])
            gram = torch.bmm(centred, centred.transpose(1, 2), out=gram_buf[:m]).div_(h * w)
            window = _window(centred, h, w, ch, cw, crop)
            a, b = _affine(gram, window.mean((2, 3)), config, h * w)
            window = window.reshape(m, c, ch * cw)  # a copy only where the window is not contiguous
            prod = torch.baddbmm(b, a, window, out=prod_buf[:m])
            out[start:stop].copy_(prod.reshape(m, c, ch, cw))
    return out
