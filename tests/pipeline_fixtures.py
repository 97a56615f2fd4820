"""Small on-disk fixtures for the input-pipeline tests: textured frames that move, as PNG files."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from reidviewer.data.dataset import VideoDataset
from reidviewer.data.tracklet import Tracklet


def texture(height: int, width: int, seed: int = 0, sigma: float = 2.5, margin: int = 24) -> np.ndarray:
    """A smooth random texture (float32, 0..255) larger than the frame by ``margin`` each side."""
    rng = np.random.default_rng(seed)
    base = cv2.GaussianBlur(rng.random((height + 2 * margin, width + 2 * margin)).astype(np.float32), (0, 0), sigma)
    return (base - base.min()) / (base.max() - base.min()) * 255.0


def moving_gray(num: int, dx: float, dy: float, height: int = 128, width: int = 64, seed: int = 0,
                sigma: float = 2.5) -> np.ndarray:
    """(num, H, W) float32 frames of a texture whose content moves by (+dx, +dy) px per frame."""
    m = 24
    base = texture(height, width, seed, sigma, m)
    frames = []
    for t in range(num):
        # WARP_INVERSE_MAP: dst(x, y) = src(x - dx·t, y - dy·t), i.e. content moves by +(dx, dy).
        mat = np.float32([[1, 0, -dx * t], [0, 1, -dy * t]])
        big = cv2.warpAffine(base, mat, (base.shape[1], base.shape[0]),
                             flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT)
        frames.append(big[m:m + height, m:m + width])
    return np.stack(frames).astype(np.float32)


def moving_rgb(num: int, dx: float = 1.0, dy: float = 0.0, height: int = 128, width: int = 64,
               seed: int = 0) -> list[np.ndarray]:
    """RGB uint8 frames: three differently tinted copies of a moving texture."""
    gray = moving_gray(num, dx, dy, height, width, seed)
    out = []
    for g in gray:
        rgb = np.stack([g, 0.9 * g + 20, 0.5 * g + 100], axis=-1)
        out.append(np.clip(np.rint(rgb), 0, 255).astype(np.uint8))
    return out


def write_tracklet(root: Path, rel: str, frames: list[np.ndarray]) -> list[str]:
    """Write RGB frames as PNGs under ``root/rel``; return their paths relative to ``root``."""
    folder = root / rel
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i, rgb in enumerate(frames):
        name = f"{rel}/{i + 1:05d}.png"
        assert cv2.imwrite(str(root / name), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        names.append(name)
    return names


def make_dataset(root: Path, specs: list[tuple[str, list[np.ndarray]]], fingerprint: str = "fixture01") -> VideoDataset:
    """A ``VideoDataset`` over tracklets written from ``(relative folder, frames)`` specs."""
    tracklets = []
    for i, (rel, frames) in enumerate(specs):
        names = write_tracklet(root, rel, frames)
        tracklets.append(Tracklet(index=i, pid=i, camid=i % 2, frames=names, root=root,
                                  person=f"person{i:03d}", camera=f"cam{i % 2 + 1}", key=rel))
    return VideoDataset(name="fixture", root=root, protocol="default", tracklets=tracklets, splits=[],
                        protocols=("default",), fingerprint=fingerprint)
