"""SynthWalk: a seeded generator of pedestrian tracklets, written in real datasets' layouts.

Each identity is a walking figure (head, hair, torso, arms and legs that swing with a gait
cycle) whose clothing colours, shirt pattern, lower garment, shoes, accessories, proportions and
gait form the identity. Each camera has its own illumination, colour cast, background, blur,
scale, viewpoint (three-quarter view in cam1, side view in cam2, walking the other way) and
sensor noise, so colours shift between cameras as they do in real data. Some tracklets get
**occluders** (poles and pillars, passers-by, cars and boxes, foreground clutter) that hide part
of the person for a run of frames; the fraction of the person's pixels they hide is recorded per
frame in the sidecar ``synthwalk.json`` as ground truth.

The output is byte-identical for the same :class:`SynthConfig`, whatever the number of worker
processes: every tracklet draws from its own generator seeded by ``(seed, person, camera)``.

Default layout (the demo: as the real iLIDS-VID tarball, so the iLIDS-VID reader opens it)::

    OUT/i-LIDS-VID/sequences/cam1/person001/cam1_person001_00317.png
    OUT/i-LIDS-VID/sequences/cam2/person001/cam2_person001_00042.png
    OUT/train-test people splits/train_test_splits_ilidsvid.mat   # ls_set, 10 x N, int32
    OUT/synthwalk.json                                            # config + occlusion truth

The ``folder`` and ``mars`` layouts (``reidviewer.data.synthwalk_layouts``) add more cameras
(each with a style of its own), several tracklets per person, JPEG frames, low resolution and
unknown cameras, for sets with the traits of MARS-like real data.

Drawing is done with OpenCV at ``supersample`` times the frame size into premultiplied RGBA
layers (OpenCV's anti-aliased drawing on a 4-channel image blends every channel, alpha
included, which is exactly premultiplied "over" compositing), then area-downsampled.
"""
from __future__ import annotations

import io
import json
import math
import os
import shutil
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from reidviewer.configs import config_from_dict
from reidviewer.errors import DatasetError, ReidViewerError

#: What ``generate`` reports its progress as.
PROGRESS_TEXT = "generating SynthWalk"
#: Bumped whenever the drawing changes, so a cached demo set is regenerated.
VERSION = 1
SIDECAR = "synthwalk.json"
SEQUENCES = Path("i-LIDS-VID") / "sequences"
SPLITS_FILE = Path("train-test people splits") / "train_test_splits_ilidsvid.mat"
NUM_SPLITS = 10


#: On-disk layouts ``generate`` can write (``reidviewer.data.synthwalk_layouts``).
LAYOUTS = ("ilidsvid", "folder", "mars")
#: Frame file formats.
IMAGE_FORMATS = ("png", "jpg")
#: Most cameras a set can have (each gets a style of its own).
MAX_CAMERAS = 8


@dataclass(frozen=True)
class SynthConfig:
    """What to generate. The same config always gives byte-identical files.

    The defaults give the demo: the iLIDS-VID layout, two cameras, one tracklet per person and
    camera. The other fields make sets with the traits of other data (MARS-like short,
    low-resolution, JPEG-compressed tracklets from many cameras, some of unknown camera).

    Attributes:
        ids: number of identities (people who appear in the query/gallery or training parts).
        seed: master random seed.
        min_len: shortest tracklet, in frames.
        max_len: longest tracklet, in frames.
        mean_len: 0 for lengths uniform in ``[min_len, max_len]``; else a log-normal length
            distribution with this mean, clipped to ``[min_len, max_len]`` (MARS: many short
            tracklets, a few very long ones).
        height: frame height in pixels (iLIDS-VID: 128).
        width: frame width in pixels (iLIDS-VID: 64).
        occluded_fraction: share of tracklets that get one or two occlusion events.
        supersample: drawing resolution factor before area downsampling (smooth edges).
        layout: ``ilidsvid`` (two cameras, one tracklet each; the demo), ``folder``
            (``{train,query,gallery}/<person>/<camera>/<tracklet>/NNNN.png``) or ``mars``
            (``bbox_train/``, ``bbox_test/`` and ``info/`` as the real MARS).
        cameras: number of cameras (``ilidsvid``: 2).
        min_tracklets, max_tracklets: tracklets per identity, uniform in this range (0: one per
            camera; ``ilidsvid`` needs 0). Each identity is seen by at least two cameras.
        image_format: ``png`` or ``jpg``.
        jpeg_quality: JPEG quality (1..100); each tracklet varies it by up to ±10.
        render_scale: draw frames at this fraction of ``height``×``width`` and scale them up,
            the look of low-resolution crops (1: full resolution).
        unknown_camera: ``folder`` layout: share of tracklets whose camera folder is
            ``unknown`` (their camera is not known).
        test_fraction: ``folder``/``mars``: share of identities in the test part.
        distractors: ``mars``: tracklets of people seen once (pid 0, gallery distractors).
        junk: ``mars``: junk tracklets (pid -1, bad detections).
        person_scale: the person's height relative to the camera's usual framing (above 1: a
            tight detector box, the person filling more of the crop, as in MARS).
    """

    ids: int = 150
    seed: int = 0
    min_len: int = 24
    max_len: int = 96
    height: int = 128
    width: int = 64
    occluded_fraction: float = 0.5
    supersample: int = 2
    layout: str = "ilidsvid"
    cameras: int = 2
    min_tracklets: int = 0
    max_tracklets: int = 0
    mean_len: float = 0.0
    image_format: str = "png"
    jpeg_quality: int = 90
    render_scale: float = 1.0
    unknown_camera: float = 0.0
    test_fraction: float = 0.5
    distractors: int = 0
    junk: int = 0
    person_scale: float = 1.0

    def __post_init__(self) -> None:
        problems = []
        if self.ids < 2:
            problems.append(f"SynthWalk needs at least 2 identities (got ids={self.ids})")
        if self.min_len < 2:
            problems.append(f"tracklets need at least 2 frames (got min_len={self.min_len})")
        if self.max_len < self.min_len:
            problems.append(f"max_len ({self.max_len}) is smaller than min_len ({self.min_len})")
        if self.mean_len and not self.min_len <= self.mean_len <= self.max_len:
            problems.append(f"mean_len ({self.mean_len}) must lie in [min_len, max_len]")
        if self.height < 32 or self.width < 16:
            problems.append(f"frames of {self.height}x{self.width} are too small (at least 32x16)")
        if not 0.0 <= self.occluded_fraction <= 1.0:
            problems.append(f"occluded_fraction must be in [0, 1] (got {self.occluded_fraction})")
        if not 1 <= self.supersample <= 4:
            problems.append(f"supersample must be 1..4 (got {self.supersample})")
        if self.layout not in LAYOUTS:
            problems.append(f"layout must be one of {', '.join(LAYOUTS)} (got {self.layout!r})")
        if not 2 <= self.cameras <= MAX_CAMERAS:
            problems.append(f"cameras must be 2..{MAX_CAMERAS} (got {self.cameras})")
        if self.layout == "ilidsvid" and (self.cameras != 2 or self.max_tracklets):
            problems.append("the ilidsvid layout has two cameras and one tracklet per person and camera")
        if self.min_tracklets < 0 or self.max_tracklets < self.min_tracklets or (self.max_tracklets and self.min_tracklets < 2):
            problems.append(f"tracklets per identity must satisfy 2 <= min_tracklets <= max_tracklets "
                            f"(or both 0); got {self.min_tracklets}..{self.max_tracklets}")
        if self.image_format not in IMAGE_FORMATS:
            problems.append(f"image_format must be one of {', '.join(IMAGE_FORMATS)} (got {self.image_format!r})")
        if not 1 <= self.jpeg_quality <= 100:
            problems.append(f"jpeg_quality must be 1..100 (got {self.jpeg_quality})")
        if not 0.2 <= self.render_scale <= 1.0:
            problems.append(f"render_scale must be in [0.2, 1] (got {self.render_scale})")
        for name in ("unknown_camera", "test_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                problems.append(f"{name} must be in [0, 1] (got {getattr(self, name)})")
        if not 0.5 <= self.person_scale <= 1.5:
            problems.append(f"person_scale must be in [0.5, 1.5] (got {self.person_scale})")
        if self.distractors < 0 or self.junk < 0:
            problems.append("distractors and junk must be >= 0")
        if problems:
            raise ValueError("; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        """The config as a JSON-ready dict."""
        return asdict(self)

    def to_json(self) -> str:
        """The config as a JSON string."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SynthConfig:
        """Rebuild a config from :meth:`to_dict` output (missing keys take their defaults).

        Unknown keys are ignored, unlike the other configs: a sidecar written by another
        version of the generator (a field added or dropped since) must still read, and
        ``is_complete`` then compares the config it gives with the one asked for.

        Raises:
            ValueError: ``data`` is not a dict, or a value the constructor refuses.
        """
        return config_from_dict(cls, data, "SynthWalk config", ignore_unknown=True)

    @classmethod
    def mars(cls, scale: float = 1.0, seed: int = 0, **changes: Any) -> SynthConfig:
        """A MARS-layout set at MARS's real counts times ``scale``.

        MARS: 625 training and 626 test identities, 8,298 training and 12,180 test tracklets
        (3,248 distractors, 870 junk), about 1.19 M frames of 256×128 JPEG; lengths 2..920
        frames, mean about 58; six cameras.
        """
        if not 0 < scale <= 1:
            raise ValueError(f"scale must be in (0, 1] (got {scale})")
        ids = max(4, round(1251 * scale))
        base = dict(ids=ids, seed=seed, layout="mars", cameras=6, min_tracklets=2, max_tracklets=24,
                    min_len=2, max_len=920, mean_len=58.0, height=256, width=128, image_format="jpg",
                    jpeg_quality=90, test_fraction=626 / 1251, distractors=round(3248 * scale),
                    junk=round(870 * scale), supersample=1)
        base.update(changes)
        return cls(**base)


# --------------------------------------------------------------------------------------------
# Palettes. Several colours are common on purpose (dark trousers, navy, black, denim): many
# identities share a garment colour, so re-identification needs the combination.

_CLOTHES: tuple[tuple[str, tuple[int, int, int], float], ...] = (
    ("black", (32, 32, 36), 3.0),
    ("charcoal", (64, 66, 70), 2.0),
    ("grey", (128, 128, 130), 2.0),
    ("white", (226, 226, 220), 2.0),
    ("navy", (32, 42, 88), 2.5),
    ("blue", (48, 88, 172), 1.5),
    ("denim", (72, 98, 138), 2.0),
    ("light blue", (142, 176, 214), 1.0),
    ("red", (178, 36, 42), 1.2),
    ("maroon", (104, 32, 44), 1.0),
    ("green", (46, 112, 62), 1.0),
    ("olive", (98, 102, 56), 1.0),
    ("khaki", (178, 158, 112), 1.2),
    ("brown", (108, 72, 46), 1.2),
    ("beige", (212, 196, 166), 1.0),
    ("yellow", (226, 192, 52), 0.6),
    ("orange", (222, 118, 42), 0.5),
    ("pink", (226, 142, 168), 0.6),
    ("purple", (104, 62, 134), 0.6),
    ("teal", (42, 128, 132), 0.6),
)
_LOWER_WEIGHTS = {"black": 4.0, "charcoal": 2.0, "navy": 2.0, "denim": 4.0, "blue": 1.0, "grey": 1.5,
                  "khaki": 2.0, "brown": 1.0, "beige": 0.8, "white": 0.4, "olive": 0.6, "red": 0.3,
                  "maroon": 0.3, "green": 0.3}
_SKIN = ((242, 208, 184), (226, 182, 152), (204, 154, 118), (168, 118, 84), (124, 84, 58), (92, 62, 44))
_HAIR = (("black", (26, 22, 20)), ("dark brown", (56, 38, 28)), ("brown", (104, 72, 46)),
         ("blonde", (204, 172, 112)), ("grey", (156, 154, 150)), ("auburn", (134, 62, 36)))
_SHOES = ((24, 24, 26), (60, 40, 30), (232, 232, 228), (110, 90, 70), (40, 40, 60))
_PATTERNS = ("plain", "plain", "plain", "stripes", "checks", "logo", "jacket")
_HAIR_STYLES = ("short", "short", "long", "ponytail", "buzz", "curly")


@dataclass(frozen=True)
class _Look:
    """An identity's appearance and gait (colours are RGB floats)."""

    skin: tuple
    hair: tuple
    hair_style: str
    top: tuple
    top2: tuple
    pattern: str
    sleeves: str
    lower: str
    lower_colour: tuple
    legwear: tuple
    shoes: tuple
    backpack: tuple | None
    bag: tuple | None
    hat: tuple | None
    height: float
    build: float
    period: float
    stride: float
    knee: float
    arm_swing: float
    names: dict


def _pick(rng: np.random.Generator, items: list, weights: list[float]):
    w = np.asarray(weights, dtype=np.float64)
    return items[int(rng.choice(len(items), p=w / w.sum()))]


def _jitter(rng: np.random.Generator, rgb: tuple[int, int, int], amount: float = 10.0) -> tuple:
    c = np.clip(np.asarray(rgb, dtype=np.float64) + rng.uniform(-amount, amount, 3), 0, 255)
    return tuple(float(x) for x in c)


def _sample_look(rng: np.random.Generator) -> _Look:
    """Draw one identity: clothing, colours, accessories, proportions and gait."""
    names = [c[0] for c in _CLOTHES]
    colours = {c[0]: c[1] for c in _CLOTHES}
    top_name = _pick(rng, names, [c[2] for c in _CLOTHES])
    pattern = _PATTERNS[int(rng.integers(len(_PATTERNS)))]
    # The second colour contrasts with the first (stripes on a white shirt are dark, ...).
    top2_name = top_name
    while top2_name == top_name:
        top2_name = _pick(rng, names, [c[2] for c in _CLOTHES])
    lower = _pick(rng, ["trousers", "shorts", "skirt"], [7.0, 1.2, 1.5])
    lower_names = list(_LOWER_WEIGHTS)
    lower_name = _pick(rng, lower_names, list(_LOWER_WEIGHTS.values()))
    skin = _jitter(rng, _SKIN[int(rng.integers(len(_SKIN)))], 6)
    hair_name, hair_rgb = _HAIR[int(rng.choice(len(_HAIR), p=[0.34, 0.24, 0.16, 0.12, 0.08, 0.06]))]
    hair_style = _HAIR_STYLES[int(rng.integers(len(_HAIR_STYLES)))]
    legwear = skin if rng.random() < 0.6 else _jitter(rng, (30, 30, 34), 6)  # bare legs or tights
    accessory = {}
    backpack = bag = hat = None
    if rng.random() < 0.25:
        n = _pick(rng, names, [c[2] for c in _CLOTHES])
        backpack, accessory["backpack"] = _jitter(rng, colours[n]), n
    if rng.random() < 0.2:
        n = _pick(rng, ["black", "brown", "beige", "red", "navy", "white"], [3, 2, 1, 1, 1, 1])
        bag, accessory["bag"] = _jitter(rng, colours[n]), n
    if rng.random() < 0.15:
        n = _pick(rng, ["black", "navy", "red", "white", "beige", "grey"], [2, 2, 1, 1, 1, 1])
        hat, accessory["hat"] = _jitter(rng, colours[n]), n
    return _Look(
        skin=skin,
        hair=_jitter(rng, hair_rgb, 6),
        hair_style=hair_style,
        top=_jitter(rng, colours[top_name]),
        top2=_jitter(rng, colours[top2_name]),
        pattern=pattern,
        sleeves="short" if rng.random() < 0.3 else "long",
        lower=lower,
        lower_colour=_jitter(rng, colours[lower_name]),
        legwear=legwear,
        shoes=_jitter(rng, _SHOES[int(rng.integers(len(_SHOES)))], 8),
        backpack=backpack,
        bag=bag,
        hat=hat,
        height=float(rng.uniform(0.88, 1.0)),
        build=float(rng.uniform(0.85, 1.2)),
        period=float(rng.uniform(12.0, 19.0)),
        stride=float(rng.uniform(0.32, 0.46)),
        knee=float(rng.uniform(0.7, 1.05)),
        arm_swing=float(rng.uniform(0.25, 0.5)),
        names={"top": top_name, "pattern": pattern, "lower": lower, "lower_colour": lower_name,
               "hair": f"{hair_name} {hair_style}",
               **({} if pattern == "plain" else {"pattern_colour": top2_name}), **accessory},
    )


# --------------------------------------------------------------------------------------------
# Anti-aliased drawing with sub-pixel coordinates.

_SHIFT = 3
_ONE = 1 << _SHIFT
_AA = cv2.LINE_AA


def _pt(p: tuple[float, float]) -> tuple[int, int]:
    # floor(x + 0.5) without the cost of round(); coordinates are in 1/8 pixel.
    return (math.floor(p[0] * _ONE + 0.5), math.floor(p[1] * _ONE + 0.5))


def _rgba(c: tuple, k: float = 1.0, alpha: float = 255.0) -> tuple[float, float, float, float]:
    return (min(255.0, c[0] * k), min(255.0, c[1] * k), min(255.0, c[2] * k), alpha)


def _line(img: np.ndarray, p, q, colour, thick: float) -> None:
    cv2.line(img, _pt(p), _pt(q), colour, max(1, int(round(thick))), _AA, _SHIFT)


def _poly(img: np.ndarray, pts, colour) -> None:
    arr = np.array([_pt(p) for p in pts], dtype=np.int32)
    cv2.fillPoly(img, [arr], colour, _AA, _SHIFT)


def _ellipse(img: np.ndarray, c, axes, colour, angle: float = 0.0, start: float = 0.0, end: float = 360.0) -> None:
    ax = (max(1, int(round(axes[0] * _ONE))), max(1, int(round(axes[1] * _ONE))))
    cv2.ellipse(img, _pt(c), ax, angle, start, end, colour, -1, _AA, _SHIFT)


def _lerp(a: float, b: float, t: float) -> float:
    return a + (b - a) * t


def _draw_person(
    img: np.ndarray,
    look: _Look,
    cx: float,
    floor_y: float,
    H: float,
    view: float,
    facing: int,
    phase: float,
    shadow: bool = True,
) -> None:
    """Draw a walking figure into a premultiplied RGBA layer.

    Args:
        img: the (h, w, 4) uint8 layer.
        look: the identity.
        cx: horizontal centre (pixels).
        floor_y: where the feet touch the floor.
        H: figure height, head top to sole.
        view: 0 = seen from the front, 1 = seen from the side (swing is foreshortened by it).
        facing: +1 walking right, -1 walking left.
        phase: gait phase in radians.
        shadow: draw a soft contact shadow (kept below the mask threshold).
    """
    v, d, wf = view, facing, look.build
    sin, cos = math.sin, math.cos
    thigh, shin, foot_h = 0.245 * H, 0.235 * H, 0.035 * H
    torso_len = 0.30 * H
    far_k = 0.72  # far-side limbs are darker: a cheap depth cue

    def leg_angles(phi: float) -> tuple[float, float]:
        th = look.stride * sin(phi)
        # Knee flexes in the swing phase (hip angle increasing), a little in stance.
        kn = look.knee * max(0.0, cos(phi)) ** 1.5 + 0.08
        return th, th - kn

    near_th, near_sh = leg_angles(phase)
    far_th, far_sh = leg_angles(phase + math.pi)
    ext = max(thigh * cos(near_th) + shin * cos(near_sh), thigh * cos(far_th) + shin * cos(far_sh))
    hip_y = floor_y - foot_h - ext  # the stance foot touches the floor: gives the vertical bob
    lat = (1.0 - v) * 0.055 * H * wf  # hip half-separation seen from the front

    def leg_points(sign: float, th: float, sh: float):
        hip = (cx + sign * lat, hip_y)
        knee = (hip[0] + d * v * sin(th) * thigh, hip[1] + cos(th) * thigh)
        ankle = (knee[0] + d * v * sin(sh) * shin, knee[1] + cos(sh) * shin)
        return hip, knee, ankle

    near_leg = leg_points(-d, near_th, near_sh)
    far_leg = leg_points(d, far_th, far_sh)

    # Torso, leaning slightly forward.
    lean = 0.06
    top_c = (cx + d * v * sin(lean) * torso_len, hip_y - cos(lean) * torso_len)
    w_sh = _lerp(0.125, 0.075, v) * H * wf
    w_ch = _lerp(0.118, 0.085, v) * H * wf
    w_wa = _lerp(0.095, 0.068, v) * H * wf
    fwd = d * v * 0.018 * H  # chest bulges forward in side view
    chest_y = _lerp(top_c[1], hip_y, 0.35)
    chest_x = _lerp(top_c[0], cx, 0.35)
    waist_y = hip_y - 0.02 * H
    torso = [
        (top_c[0] - w_sh, top_c[1] + 0.02 * H),
        (top_c[0] - w_sh * 0.6, top_c[1] - 0.005 * H),
        (top_c[0] + w_sh * 0.6, top_c[1] - 0.005 * H),
        (top_c[0] + w_sh, top_c[1] + 0.02 * H),
        (chest_x + w_ch + max(fwd, 0), chest_y),
        (cx + w_wa, waist_y),
        (cx - w_wa, waist_y),
        (chest_x - w_ch + min(fwd, 0), chest_y),
    ]

    # Arms: they swing opposite to the leg of the same side.
    ua, fa = 0.165 * H, 0.15 * H
    arm_lat = (1.0 - v) * (w_sh - 0.02 * H)

    def arm_points(sign: float, phi: float):
        a = -look.arm_swing * sin(phi)
        b = a + 0.2 + 0.25 * max(0.0, -sin(phi))  # elbow bends more when the arm swings forward
        out = sign * (1.0 - v) * 0.012 * H  # arms hang slightly outward seen from the front
        sh = (top_c[0] + sign * arm_lat, top_c[1] + 0.03 * H)
        el = (sh[0] + d * v * sin(a) * ua + out, sh[1] + cos(a) * ua)
        wr = (el[0] + d * v * sin(b) * fa + out, el[1] + cos(b) * fa)
        return sh, el, wr

    near_arm = arm_points(-d, phase)
    far_arm = arm_points(d, phase + math.pi)

    arm_w, fore_w = 0.052 * H * wf, 0.043 * H * wf
    thigh_w, shin_w = 0.078 * H * wf, 0.058 * H * wf
    head_c = (top_c[0] + d * v * 0.012 * H, top_c[1] - 0.075 * H)
    head_ax = (_lerp(0.05, 0.056, v) * H, 0.066 * H)

    if shadow:
        _ellipse(img, (cx, floor_y), (0.16 * H * max(v, 0.6), 0.022 * H), (0, 0, 0, 70))

    hair = _rgba(look.hair)
    if look.hair_style == "long":
        _ellipse(img, (head_c[0] - d * v * 0.03 * H, head_c[1] + 0.07 * H), (0.058 * H, 0.11 * H), hair)
    if look.backpack is not None:
        bx = top_c[0] - d * (v * (w_ch + 0.03 * H))
        by = top_c[1] + 0.12 * H
        _ellipse(img, (bx, by), (_lerp(0.1, 0.05, v) * H, 0.1 * H), _rgba(look.backpack))

    def draw_arm(pts, k: float) -> None:
        sh, el, wr = pts
        sleeve = _rgba(look.top, k)
        _line(img, sh, el, sleeve, arm_w)
        _line(img, el, wr, sleeve if look.sleeves == "long" else _rgba(look.skin, k), fore_w)
        _ellipse(img, (wr[0] + d * v * 0.008 * H, wr[1] + 0.015 * H), (0.022 * H, 0.026 * H), _rgba(look.skin, k))

    def draw_leg(pts, k: float) -> None:
        hip, knee, ankle = pts
        upper = _rgba(look.lower_colour if look.lower in ("trousers", "shorts") else look.legwear, k)
        lower = _rgba(look.lower_colour if look.lower == "trousers" else look.legwear, k)
        _line(img, hip, knee, upper, thigh_w)
        if look.lower == "shorts":
            # Shorts end above the knee: draw the bare part of the thigh over the garment.
            mid = (_lerp(hip[0], knee[0], 0.6), _lerp(hip[1], knee[1], 0.6))
            _line(img, mid, knee, _rgba(look.legwear, k), shin_w * 1.1)
        _line(img, knee, ankle, lower, shin_w)
        toe = (ankle[0] + d * 0.075 * H * max(v, 0.3), ankle[1] + foot_h * 0.75)
        heel = (ankle[0] - d * 0.012 * H * max(v, 0.3), ankle[1] + foot_h * 0.55)
        _line(img, heel, toe, _rgba(look.shoes, k), 0.048 * H)

    draw_arm(far_arm, far_k)
    draw_leg(far_leg, far_k * 1.1)
    draw_leg(near_leg, 1.0)

    # Pelvis joins the legs to the torso in the lower garment's colour.
    pelvis_c = _rgba(look.lower_colour)
    _poly(img, [(cx - w_wa, waist_y), (cx + w_wa, waist_y),
                (near_leg[0][0] + 0.035 * H * wf * (1 if near_leg[0][0] >= cx else -1), hip_y + 0.05 * H),
                (far_leg[0][0] + 0.035 * H * wf * (1 if far_leg[0][0] >= cx else -1), hip_y + 0.05 * H)],
          pelvis_c)
    if look.lower == "skirt":
        knees_x = (near_leg[1][0], far_leg[1][0])
        hem_y = hip_y + 0.19 * H
        left = min(min(knees_x) - 0.04 * H, cx - w_wa * 1.45)
        right = max(max(knees_x) + 0.04 * H, cx + w_wa * 1.45)
        _poly(img, [(cx - w_wa, waist_y), (cx + w_wa, waist_y), (right, hem_y), (left, hem_y)], pelvis_c)

    top = _rgba(look.top)
    _poly(img, torso, top)
    _draw_pattern(img, look, torso, top_c, cx, waist_y, w_sh, w_wa, v, d, H)
    if look.backpack is not None:  # straps over the chest
        strap = _rgba(look.backpack, 0.6)
        for s in (-1.0, 1.0):
            x0 = top_c[0] + s * w_sh * (1 - v) * 0.5 + d * v * w_sh * 0.2
            _line(img, (x0, top_c[1] + 0.01 * H), (x0 + d * v * 0.01 * H, chest_y + 0.04 * H), strap, 0.014 * H)

    # Neck and head.
    _line(img, (top_c[0], top_c[1]), (head_c[0], head_c[1] + 0.05 * H), _rgba(look.skin, 0.9), 0.045 * H)
    if look.hair_style == "ponytail":
        _ellipse(img, (head_c[0] - d * max(v, 0.3) * 0.06 * H, head_c[1] + 0.015 * H), (0.022 * H, 0.04 * H),
                 hair, angle=-d * 25)
    _ellipse(img, head_c, head_ax, _rgba(look.skin))
    tilt = -d * v * 28.0  # hair sits further back on a head seen from the side
    if look.hair_style == "curly":
        _ellipse(img, (head_c[0], head_c[1] - 0.012 * H), (head_ax[0] * 1.2, head_ax[1] * 1.0), hair, tilt, 175, 365)
    elif look.hair_style == "buzz":
        _ellipse(img, head_c, (head_ax[0] * 1.02, head_ax[1] * 1.02), hair, tilt, 195, 345)
    else:
        _ellipse(img, (head_c[0], head_c[1] - 0.004 * H), (head_ax[0] * 1.1, head_ax[1] * 1.06), hair, tilt, 170, 370)
    if look.hair_style == "long":  # hair framing the face
        _ellipse(img, (head_c[0] - d * v * 0.03 * H, head_c[1] + 0.01 * H), (head_ax[0] * (1.05 - 0.6 * v), head_ax[1] * 0.9),
                 hair, tilt, 150 if d > 0 else 210, 390 if d > 0 else 330)
        _ellipse(img, (head_c[0] + d * v * 0.012 * H, head_c[1] + 0.012 * H), (head_ax[0] * (0.75 - 0.25 * v), head_ax[1] * 0.72),
                 _rgba(look.skin))
    if look.hat is not None:
        hat = _rgba(look.hat)
        _ellipse(img, (head_c[0], head_c[1] - 0.02 * H), (head_ax[0] * 1.08, head_ax[1] * 0.85), hat, 0, 180, 360)
        brim_back = (head_c[0] - d * 0.03 * H * v - (1 - v) * 0.05 * H, head_c[1] - 0.02 * H)
        brim_front = (head_c[0] + d * (0.045 + 0.04 * v) * H + (1 - v) * 0.05 * H * (d < 0), head_c[1] - 0.018 * H)
        _line(img, brim_back, brim_front, _rgba(look.hat, 0.8), 0.016 * H)

    if look.bag is not None:
        bag = _rgba(look.bag)
        bx = cx + (-d) * (1 - v) * w_wa * 1.2 + d * v * 0.01 * H
        by = hip_y + 0.02 * H
        _line(img, (top_c[0] + d * (1 - v) * w_sh * 0.7, top_c[1] + 0.01 * H), (bx, by - 0.04 * H), _rgba(look.bag, 0.5), 0.012 * H)
        _poly(img, [(bx - 0.05 * H, by - 0.045 * H), (bx + 0.05 * H, by - 0.045 * H),
                    (bx + 0.055 * H, by + 0.05 * H), (bx - 0.055 * H, by + 0.05 * H)], bag)
    draw_arm(near_arm, 1.0)


def _draw_pattern(img, look: _Look, torso, top_c, cx, waist_y, w_sh, w_wa, v, d, H) -> None:
    """Shirt pattern clipped to the torso trapezoid (drawn inside it, so alpha stays 255)."""
    if look.pattern == "plain":
        return
    c2 = _rgba(look.top2)
    y0, y1 = top_c[1] + 0.035 * H, waist_y - 0.01 * H

    def span(y: float) -> tuple[float, float]:
        t = (y - top_c[1]) / max(1e-6, waist_y - top_c[1])
        xc = _lerp(top_c[0], cx, t)
        hw = _lerp(w_sh * 0.95, w_wa, t) - 0.012 * H
        return xc - hw, xc + hw

    if look.pattern in ("stripes", "checks"):
        thick = 0.02 * H
        n = 5 if look.pattern == "stripes" else 6
        for k in range(n):
            y = _lerp(y0, y1, (k + 0.5) / n)
            a, b = span(y)
            _line(img, (a, y), (b, y), c2, thick if look.pattern == "stripes" else thick * 0.6)
        if look.pattern == "checks":
            a0, b0 = span(y0)
            a1, b1 = span(y1)
            left, right = max(a0, a1), min(b0, b1)
            m = 4
            for k in range(m):
                x = _lerp(left, right, (k + 0.5) / m)
                _line(img, (x, y0), (x + (cx - top_c[0]) * 0.9, y1), c2, thick * 0.6)
    elif look.pattern == "logo":
        y = _lerp(y0, y1, 0.3)
        a, b = span(y)
        x = (a + b) / 2 + d * v * (b - a) * 0.22
        _ellipse(img, (x, y), (0.042 * H * (1 - 0.55 * v), 0.042 * H), c2)
    elif look.pattern == "jacket":
        # Open jacket: the inner shirt shows as a band down the front.
        a0, b0 = span(y0 - 0.03 * H)
        a1, b1 = span(y1)
        f0 = (a0 + b0) / 2 + d * v * (b0 - a0) * 0.3
        f1 = (a1 + b1) / 2 + d * v * (b1 - a1) * 0.3
        hw = 0.03 * H * (1 - 0.5 * v)
        _poly(img, [(f0 - hw, y0 - 0.03 * H), (f0 + hw, y0 - 0.03 * H), (f1 + hw, y1), (f1 - hw, y1)], c2)


# --------------------------------------------------------------------------------------------
# Cameras: each has a look of its own (a bright warm hall and a dim cool corridor).

_CAMERA_STYLES: dict[int, dict[str, Any]] = {
    1: dict(gain=1.06, gamma=0.9, cast=(1.05, 1.0, 0.88), blur=0.5, noise=2.5, view=0.55, facing=1,
            scale=0.86, feet=0.965, horizon=0.6, wall_top=(200, 196, 186), wall_bottom=(170, 162, 148),
            floor_near=(164, 146, 124), floor_far=(142, 128, 110), kind="hall"),
    2: dict(gain=0.88, gamma=1.12, cast=(0.86, 1.0, 1.1), blur=0.9, noise=4.5, view=0.95, facing=-1,
            scale=0.76, feet=0.93, horizon=0.52, wall_top=(92, 104, 108), wall_bottom=(74, 84, 86),
            floor_near=(78, 82, 78), floor_far=(60, 64, 62), kind="corridor"),
}


def _camera_style(seed: int, cam: int) -> dict[str, Any]:
    """The camera's preset, perturbed a little by the master seed.

    Cameras 1 and 2 are the demo's hall and corridor; cameras 3 and up are drawn from the
    seed around one of the two kinds, with their own light, colour cast, blur, noise, view and
    scale, so a many-camera set has as many looks as cameras.
    """
    rng = np.random.default_rng([seed, 0, cam])
    if cam in _CAMERA_STYLES:
        style = dict(_CAMERA_STYLES[cam])
        style["gain"] *= float(rng.uniform(0.95, 1.05))
        style["cast"] = tuple(float(c * rng.uniform(0.97, 1.03)) for c in style["cast"])
        return style
    style = dict(_CAMERA_STYLES[1 if rng.random() < 0.5 else 2])
    tint = rng.uniform(0.82, 1.1, 3)
    style.update(
        gain=float(rng.uniform(0.85, 1.1)), gamma=float(rng.uniform(0.9, 1.1)),
        cast=tuple(float(c) for c in rng.uniform(0.9, 1.08, 3)), blur=float(rng.uniform(0.4, 1.1)),
        noise=float(rng.uniform(2.0, 5.5)), view=float(rng.uniform(0.35, 1.0)),
        facing=1 if rng.random() < 0.5 else -1, scale=float(rng.uniform(0.72, 0.9)),
        feet=float(rng.uniform(0.92, 0.97)), horizon=float(rng.uniform(0.48, 0.64)),
    )
    for key in ("wall_top", "wall_bottom", "floor_near", "floor_far"):
        style[key] = tuple(float(np.clip(c * t, 0, 255)) for c, t in zip(style[key], tint))
    return style


def _background(rng: np.random.Generator, style: dict, h: int, w: int) -> np.ndarray:
    """A background strip (h, w, 3) uint8 RGB that the crop window scrolls across."""
    hz = int(round(h * (style["horizon"] + rng.uniform(-0.04, 0.04))))
    tint = rng.uniform(0.9, 1.08, 3)
    img = np.empty((h, w, 3), np.float32)
    t = np.linspace(0, 1, hz, dtype=np.float32)[:, None]
    img[:hz] = (np.outer(1 - t, style["wall_top"]) + np.outer(t, style["wall_bottom"]))[:, None, :] * tint
    t = np.linspace(0, 1, h - hz, dtype=np.float32)[:, None]
    img[hz:] = (np.outer(1 - t, style["floor_far"]) + np.outer(t, style["floor_near"]))[:, None, :] * tint
    canvas = np.clip(img, 0, 255).astype(np.uint8)
    aa = _AA
    if style["kind"] == "hall":
        # Tiled floor in perspective, doors, posters, seams and a handrail.
        for k in range(1, 6):
            y = hz + (h - hz) * (k / 6) ** 1.5
            cv2.line(canvas, (0, int(y)), (w, int(y)), (120, 106, 90), 1, aa)
        x = rng.uniform(-40, 0)
        while x < w + 40:
            cv2.line(canvas, (int(x), hz), (int(x + (x - w / 2) * 0.0 + rng.uniform(-30, 30)), h), (126, 112, 96), 1, aa)
            x += rng.uniform(14, 22)
        x = rng.uniform(0, 30)
        while x < w:
            kind = rng.random()
            if kind < 0.35:  # door
                dw, dh = int(rng.uniform(20, 28)), int(hz * rng.uniform(0.6, 0.8))
                col = tuple(int(c) for c in rng.uniform(90, 170, 3))
                cv2.rectangle(canvas, (int(x), hz - dh), (int(x) + dw, hz), col, -1, aa)
                cv2.rectangle(canvas, (int(x), hz - dh), (int(x) + dw, hz), (70, 64, 58), 1, aa)
                x += dw + rng.uniform(10, 40)
            elif kind < 0.7:  # poster
                pw, ph = int(rng.uniform(10, 22)), int(rng.uniform(14, 26))
                y = int(hz * rng.uniform(0.2, 0.45))
                col = tuple(int(c) for c in rng.uniform(40, 230, 3))
                cv2.rectangle(canvas, (int(x), y), (int(x) + pw, y + ph), col, -1, aa)
                x += pw + rng.uniform(8, 30)
            else:  # seam
                cv2.line(canvas, (int(x), 0), (int(x), hz), (150, 142, 130), 1, aa)
                x += rng.uniform(10, 30)
        y = int(hz * rng.uniform(0.5, 0.7))
        cv2.line(canvas, (0, y), (w, y), (120, 112, 100), 1, aa)
        cv2.line(canvas, (0, hz), (w, hz), (110, 100, 88), 1, aa)
    else:
        # Corridor: bright windows, dark pillars, a light strip, reflections on the floor.
        x = rng.uniform(-10, 20)
        while x < w:
            kind = rng.random()
            if kind < 0.45:  # window, over-exposed
                ww = int(rng.uniform(18, 34))
                top = int(hz * rng.uniform(0.1, 0.25))
                bot = int(hz * rng.uniform(0.65, 0.85))
                cv2.rectangle(canvas, (int(x), top), (int(x) + ww, bot), (214, 226, 232), -1, aa)
                cv2.line(canvas, (int(x) + ww // 2, top), (int(x) + ww // 2, bot), (120, 130, 136), 1, aa)
                x += ww + rng.uniform(6, 20)
            elif kind < 0.75:  # pillar
                pw = int(rng.uniform(6, 12))
                cv2.rectangle(canvas, (int(x), 0), (int(x) + pw, hz + 2), (56, 62, 64), -1, aa)
                x += pw + rng.uniform(6, 24)
            else:  # notice board
                bw = int(rng.uniform(12, 20))
                y = int(hz * rng.uniform(0.3, 0.5))
                col = tuple(int(c) for c in rng.uniform(60, 160, 3))
                cv2.rectangle(canvas, (int(x), y), (int(x) + bw, y + int(bw * 0.8)), col, -1, aa)
                x += bw + rng.uniform(10, 30)
        cv2.line(canvas, (0, 2), (w, 2), (236, 240, 236), 2, aa)
        cv2.line(canvas, (0, hz), (w, hz), (44, 48, 48), 2, aa)
    out = canvas.astype(np.float32)
    # Low-frequency texture (dirt, uneven light) so the wall and floor are not flat.
    coarse = rng.normal(0.0, 7.0, (max(2, h // 10), max(2, w // 10), 1)).astype(np.float32)
    out += cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)[:, :, None]
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------------------------
# Occluders. All positions are in the supersampled crop window; static objects move across the
# window as the person walks past them (the detector's box follows the person).

_OCCLUDER_KINDS = ("pole", "passer-by", "car", "box", "clutter")
_OCCLUDER_WEIGHTS = (0.26, 0.3, 0.14, 0.14, 0.16)
_CAR_COLOURS = ((190, 192, 196), (230, 230, 228), (30, 32, 36), (150, 30, 34), (40, 60, 120), (90, 94, 100))


def _plan_occluders(rng: np.random.Generator, n: int, walk_speed: float, W: float, H: float) -> list[dict]:
    """One or two occlusion events for a tracklet of ``n`` frames."""
    events = []
    for _ in range(1 if rng.random() < 0.7 else 2):
        kind = _pick(rng, list(_OCCLUDER_KINDS), list(_OCCLUDER_WEIGHTS))
        ev: dict[str, Any] = {"kind": kind}
        if kind == "passer-by":
            vel = float(rng.uniform(6.0, 14.0)) * (H / 256) * (1 if rng.random() < 0.5 else -1)
        else:
            vel = -walk_speed * float(rng.uniform(1.1, 1.6))  # closer than the person: parallax
            if abs(vel) < 3.0 * H / 256:
                vel = math.copysign(3.0 * H / 256, vel if vel else -1.0)
        ev["vel"] = vel
        ev["t_cross"] = float(rng.uniform(0.15, 0.85) * (n - 1))
        ev["x_cross"] = float(W / 2 + rng.uniform(-0.1, 0.1) * W)
        if kind == "pole":
            ev["width"] = float(rng.uniform(0.07, 0.16) * W if rng.random() < 0.6 else rng.uniform(0.3, 0.6) * W)
            ev["colour"] = _jitter(rng, (150, 150, 146) if rng.random() < 0.5 else (110, 100, 92), 20)
        elif kind == "passer-by":
            ev["look"] = _sample_look(rng)
            ev["scale"] = float(rng.uniform(1.05, 1.35))
            ev["feet"] = float(rng.uniform(1.02, 1.2))
            ev["phase"] = float(rng.uniform(0, 2 * math.pi))
        elif kind == "car":
            ev["width"] = float(rng.uniform(1.3, 2.0) * W)
            ev["top"] = float(rng.uniform(0.5, 0.64))
            ev["colour"] = _jitter(rng, _CAR_COLOURS[int(rng.integers(len(_CAR_COLOURS)))], 10)
            ev["vel"] *= 1.4  # a car passes in front of the pavement: closer, faster across
        elif kind == "box":
            ev["width"] = float(rng.uniform(0.5, 1.0) * W)
            ev["top"] = float(rng.uniform(0.55, 0.75))
            ev["colour"] = _jitter(rng, (160, 120, 80), 18)
        else:
            ev["what"] = "plant" if rng.random() < 0.5 else "sign"
            ev["width"] = float(rng.uniform(0.35, 0.6) * W)
            ev["colour"] = _jitter(rng, (60, 120, 60) if ev["what"] == "plant" else (200, 60, 40), 20)
        events.append(ev)
    return events


def _draw_occluder(img: np.ndarray, ev: dict, t: int, W: float, Hc: float, d: int) -> None:
    """Draw one event at frame ``t`` into the occluder layer (Hc = canvas height)."""
    x = ev["x_cross"] + (t - ev["t_cross"]) * ev["vel"]
    kind = ev["kind"]
    if kind == "pole":
        w = ev["width"]
        if x + w < -5 or x - w > W + 5:
            return
        c = ev["colour"]
        _poly(img, [(x - w / 2, -2), (x + w / 2, -2), (x + w / 2, Hc + 2), (x - w / 2, Hc + 2)], _rgba(c))
        _poly(img, [(x - w / 2, -2), (x - w / 6, -2), (x - w / 6, Hc + 2), (x - w / 2, Hc + 2)], _rgba(c, 0.8))
        _poly(img, [(x + w / 8, -2), (x + w / 4, -2), (x + w / 4, Hc + 2), (x + w / 8, Hc + 2)], _rgba(c, 1.2))
    elif kind == "passer-by":
        H = Hc * ev["scale"]
        if x + 0.3 * H < 0 or x - 0.3 * H > W:
            return
        phase = ev["phase"] + 2 * math.pi * t / ev["look"].period
        _draw_person(img, ev["look"], x, Hc * ev["feet"], H, 0.9, 1 if ev["vel"] > 0 else -1, phase, shadow=False)
    elif kind == "car":
        w, top = ev["width"], ev["top"] * Hc
        if x + w / 2 < 0 or x - w / 2 > W:
            return
        c = ev["colour"]
        body_top = top + 0.12 * Hc
        _poly(img, [(x - w / 2, Hc + 2), (x - w / 2, body_top + 0.05 * Hc), (x - w / 2 + 0.05 * Hc, body_top),
                    (x + w / 2 - 0.05 * Hc, body_top), (x + w / 2, body_top + 0.05 * Hc), (x + w / 2, Hc + 2)], _rgba(c))
        _poly(img, [(x - w * 0.3, body_top + 1), (x - w * 0.2, top), (x + w * 0.2, top), (x + w * 0.32, body_top + 1)],
              _rgba(c, 0.9))
        _poly(img, [(x - w * 0.26, body_top - 1), (x - w * 0.18, top + 0.02 * Hc), (x + w * 0.18, top + 0.02 * Hc),
                    (x + w * 0.28, body_top - 1)], (40, 48, 56, 255))
        for wx in (x - w * 0.32, x + w * 0.32):
            _ellipse(img, (wx, Hc - 0.02 * Hc), (0.09 * Hc, 0.09 * Hc), (22, 22, 22, 255))
        _line(img, (x - w / 2, body_top + 0.1 * Hc), (x + w / 2, body_top + 0.1 * Hc), _rgba(c, 0.7), 0.01 * Hc)
    elif kind == "box":
        w, top = ev["width"], ev["top"] * Hc
        if x + w / 2 < 0 or x - w / 2 > W:
            return
        c = ev["colour"]
        mid = (top + Hc) / 2
        _poly(img, [(x - w / 2, top), (x + w / 2, top), (x + w / 2, Hc + 2), (x - w / 2, Hc + 2)], _rgba(c))
        _line(img, (x - w / 2, mid), (x + w / 2, mid), _rgba(c, 0.7), 0.012 * Hc)
        _line(img, (x, top), (x, mid), _rgba(c, 0.8), 0.01 * Hc)
        _line(img, (x - w / 2, top), (x + w / 2, top), _rgba(c, 1.2), 0.012 * Hc)
    else:
        w = ev["width"]
        if x + w < 0 or x - w > W:
            return
        c = ev["colour"]
        if ev["what"] == "plant":
            pot_top = 0.82 * Hc
            _poly(img, [(x - w * 0.3, pot_top), (x + w * 0.3, pot_top), (x + w * 0.22, Hc + 2), (x - w * 0.22, Hc + 2)],
                  (120, 70, 48, 255))
            for i, (dx, dy, r) in enumerate(((0, 0.62, 0.34), (-0.25, 0.7, 0.28), (0.27, 0.68, 0.3), (0.05, 0.52, 0.26))):
                _ellipse(img, (x + dx * w, dy * Hc), (r * w, r * w * 1.25), _rgba(c, 0.8 + 0.12 * i))
        else:
            _line(img, (x, 0.45 * Hc), (x, Hc + 2), (90, 90, 90, 255), 0.02 * Hc)
            _poly(img, [(x - w / 2, 0.3 * Hc), (x + w / 2, 0.3 * Hc), (x + w / 2, 0.52 * Hc), (x - w / 2, 0.52 * Hc)],
                  _rgba(c))
            _poly(img, [(x - w * 0.35, 0.36 * Hc), (x + w * 0.35, 0.36 * Hc), (x + w * 0.35, 0.4 * Hc),
                        (x - w * 0.35, 0.4 * Hc)], (240, 240, 240, 255))


# --------------------------------------------------------------------------------------------
# One tracklet.


def _shrink(layer: np.ndarray, w: int, h: int) -> np.ndarray:
    """Area-downsample a premultiplied layer (averaging premultiplied values is exact)."""
    if layer.shape[1] == w and layer.shape[0] == h:
        return layer
    return cv2.resize(layer, (w, h), interpolation=cv2.INTER_AREA)


def _over(dst: np.ndarray, layer: np.ndarray) -> np.ndarray:
    """Composite a premultiplied RGBA ``layer`` over the RGB uint8 image ``dst``."""
    inv = 255 - layer[:, :, 3]
    under = cv2.multiply(dst, cv2.merge((inv, inv, inv)), scale=1.0 / 255.0)
    return cv2.add(under, cv2.cvtColor(layer, cv2.COLOR_RGBA2RGB))


@dataclass
class RenderedTracklet:
    """Frames of one tracklet and their ground truth.

    Attributes:
        frames: (n, height, width, 3) uint8 RGB.
        occlusion: (n,) float32 fraction of the person's pixels hidden by occluders.
        first_frame: the number of the first frame (file names count up from it).
        occluders: the occlusion events, as ``{"kind", "first", "last"}`` (frames where the
            event hides some of the person; ``first``/``last`` are -1 if it never does).
    """

    frames: np.ndarray
    occlusion: np.ndarray
    first_frame: int
    occluders: list[dict[str, Any]]
    # --- saliency (#20): per-frame masks, only when render_tracklet(masks=True) ---
    #: (n, height, width) bool: pixels of the person (alpha > 1/2 after downsampling), or None.
    person_masks: np.ndarray | None = None
    #: (n, height, width) bool: pixels of the occluders, or None.
    occluder_masks: np.ndarray | None = None
    # --- end saliency ---


#: Kinds of tracklet ``render_tracklet`` draws.
TRACKLET_KINDS = ("person", "junk")


def _draw_length(rng: np.random.Generator, config: SynthConfig) -> int:
    """A tracklet length: uniform in [min_len, max_len], or log-normal with mean ``mean_len``."""
    if not config.mean_len:
        return int(rng.integers(config.min_len, config.max_len + 1))
    sigma = 0.8
    mu = math.log(config.mean_len) - sigma * sigma / 2
    return int(np.clip(round(rng.lognormal(mu, sigma)), config.min_len, config.max_len))


def render_tracklet(config: SynthConfig, pid: int, cam: int, index: int = 0, kind: str = "person",
                    masks: bool = False) -> RenderedTracklet:
    """Render tracklet ``index`` of person ``pid`` (1-based) in camera ``cam`` (1-based).

    Deterministic: depends only on ``config`` (seed, sizes) and ``(pid, cam, index, kind)``.
    Tracklet 0 of a person in a camera is the demo's tracklet; later ones (sets with several
    tracklets per person and camera) draw from generators of their own. ``kind="junk"`` draws
    a bad detection: the box cuts the person off at its edge. ``masks=True`` also records each
    frame's person and occluder masks (same pixels; used by the saliency audit).
    """
    if pid < 1 or (kind == "person" and pid > config.ids and not (config.distractors or config.junk)):
        raise ValueError(f"person {pid} is outside 1..{config.ids}")
    if not 1 <= cam <= config.cameras:
        raise ValueError(f"camera {cam} is not one of 1..{config.cameras}")
    if kind not in TRACKLET_KINDS:
        raise ValueError(f"kind must be one of {TRACKLET_KINDS}, not {kind!r}")
    look = _sample_look(np.random.default_rng([config.seed, pid]))
    style = _camera_style(config.seed, cam)
    first_of_camera = index == 0 and kind == "person"
    rng = np.random.default_rng([config.seed, pid, cam] if first_of_camera else [config.seed, pid, cam, 2, index])
    n = _draw_length(rng, config)
    first = int(rng.integers(1, 600))
    # Low-resolution look: draw small, scale up at the end (as a far camera's upsampled crop).
    h = max(16, round(config.height * config.render_scale))
    w = max(8, round(config.width * config.render_scale))
    s = config.supersample
    Hc, Wc = h * s, w * s

    view = float(np.clip(style["view"] + rng.uniform(-0.12, 0.12), 0.2, 1.0))
    facing = style["facing"] if rng.random() < 0.85 else -style["facing"]
    fig_h = Hc * style["scale"] * config.person_scale * look.height * float(rng.uniform(0.96, 1.04))
    feet = Hc * (style["feet"] + float(rng.uniform(-0.015, 0.015)))
    cx0 = Wc / 2 + float(rng.uniform(-0.04, 0.04)) * Wc
    if kind == "junk":  # a bad box: the person half outside it, too big or too small
        cx0 = Wc * float(rng.choice([0.05, 0.95]))
        fig_h *= float(rng.uniform(0.5, 1.5))
    gain = style["gain"] * float(rng.uniform(0.9, 1.1))
    phase0 = float(rng.uniform(0, 2 * math.pi))
    # Ground speed: about 0.76 body heights per gait cycle, seen foreshortened by the view.
    walk = 0.76 * fig_h / look.period * view
    bg_speed = walk * float(rng.uniform(0.45, 0.7)) / s  # background is farther: slower
    span = int(math.ceil(bg_speed * (n - 1))) + 2
    bg = _background(rng, style, h, w + span)
    # Occluders draw from their own generator, so a tracklet renders the same pixels with and
    # without them wherever they are not (and occluded_fraction changes nothing else).
    rng_occ = np.random.default_rng([config.seed, pid, cam, 1] if first_of_camera else [config.seed, pid, cam, 1, index])
    occluded = rng_occ.random() < config.occluded_fraction
    events = _plan_occluders(rng_occ, n, walk * facing, Wc, Hc) if occluded else []
    for ev in events:  # static objects move against the walking direction
        if ev["kind"] != "passer-by":
            ev["vel"] = -abs(ev["vel"]) * facing
    jit = rng.normal(0.0, 1.0, (n, 3)).astype(np.float64)

    # The camera's response: gain and colour cast per channel, clipping, then gamma; one
    # 3-channel lookup table applied to the composited frame.
    levels = np.arange(256, dtype=np.float64)[:, None] * (gain * np.asarray(style["cast"]))[None, :]
    lut = np.clip(255.0 * (np.clip(levels, 0, 255) / 255.0) ** style["gamma"] + 0.5, 0, 255)
    lut = lut.astype(np.uint8).reshape(256, 1, 3)
    blur = (5, 5) if style["blur"] <= 1.0 else (0, 0)  # 5 taps cover 2.8 sigma; OpenCV picks 7
    # Sensor noise: a small bank of integer noise fields, each frame taking a randomly shifted
    # window of one (fresh normals for every pixel of every frame took a quarter of the time).
    # Positive and negative parts are kept apart so two saturating adds apply them.
    pad = 8
    bank = np.rint(rng.standard_normal((4, h + pad, w + pad, 3), dtype=np.float32) * np.float32(style["noise"]))
    bank_pos = np.clip(bank, 0, 255).astype(np.uint8)
    bank_neg = np.clip(-bank, 0, 255).astype(np.uint8)
    pick = rng.integers(0, [4, pad + 1, pad + 1], size=(n, 3))
    frames = np.empty((n, h, w, 3), np.uint8)
    occl = np.zeros(n, np.float32)
    hit: list[list[int]] = [[] for _ in events]  # frames where each event hides some of the person
    person = np.zeros((Hc, Wc, 4), np.uint8)
    occ = np.zeros((Hc, Wc, 4), np.uint8)
    pmasks = np.zeros((n, h, w), bool) if masks else None  # saliency (#20)
    omasks = np.zeros((n, h, w), bool) if masks else None
    for t in range(n):
        person[:] = 0
        phase = phase0 + 2 * math.pi * t / look.period
        _draw_person(person, look, cx0 + jit[t, 0] * 0.5 * s, feet + jit[t, 1] * 0.4 * s,
                     fig_h * (1 + 0.012 * jit[t, 2]), view, facing, phase)
        x0 = int(round(bg_speed * t)) if facing > 0 else span - 2 - int(round(bg_speed * t))
        img = _over(np.ascontiguousarray(bg[:, x0:x0 + w]), _shrink(person, w, h))
        if pmasks is not None:  # saliency (#20)
            pmasks[t] = _shrink(person, w, h)[:, :, 3] > 127
        if events:
            occ[:] = 0
            # Masks at the drawing resolution: a pixel belongs to a layer when its alpha > 1/2.
            pmask = cv2.compare(person[:, :, 3], 127, cv2.CMP_GT)
            total = cv2.countNonZero(pmask)
            covered = 0
            for i, ev in enumerate(events):
                _draw_occluder(occ, ev, t, Wc, Hc, facing)
                now = cv2.countNonZero(cv2.bitwise_and(pmask, cv2.compare(occ[:, :, 3], 127, cv2.CMP_GT)))
                if now > covered:  # this event hides pixels the earlier ones did not
                    hit[i].append(t)
                covered = now
            occl[t] = covered / total if total else 0.0
            img = _over(img, _shrink(occ, w, h))
            if omasks is not None:  # saliency (#20)
                omasks[t] = _shrink(occ, w, h)[:, :, 3] > 127
        out = cv2.GaussianBlur(cv2.LUT(img, lut), blur, style["blur"])
        b, dy, dx = pick[t]
        out = cv2.add(out, np.ascontiguousarray(bank_pos[b, dy:dy + h, dx:dx + w]))
        frames[t] = cv2.subtract(out, np.ascontiguousarray(bank_neg[b, dy:dy + h, dx:dx + w]))
    occluders = [{"kind": ev["kind"], "first": hit[i][0] if hit[i] else -1, "last": hit[i][-1] if hit[i] else -1}
                 for i, ev in enumerate(events)]
    if (h, w) != (config.height, config.width):
        frames = np.stack([cv2.resize(f, (config.width, config.height), interpolation=cv2.INTER_LINEAR)
                           for f in frames])
        if pmasks is not None:  # saliency (#20)
            pmasks, omasks = ([cv2.resize(m.astype(np.uint8), (config.width, config.height),
                                          interpolation=cv2.INTER_NEAREST).astype(bool) for m in ms]
                              for ms in (pmasks, omasks))
            pmasks, omasks = np.stack(pmasks), np.stack(omasks)
    return RenderedTracklet(frames=frames, occlusion=occl, first_frame=first, occluders=occluders,
                            person_masks=pmasks, occluder_masks=omasks)


def describe_identity(config: SynthConfig, pid: int) -> dict[str, str]:
    """Plain-words attributes of person ``pid`` (top colour, pattern, lower garment, ...)."""
    return dict(_sample_look(np.random.default_rng([config.seed, pid])).names)


# --------------------------------------------------------------------------------------------
# Writing the dataset.


def tracklet_key(pid: int, cam: int) -> str:
    """The demo tracklet's key: its folder relative to the dataset root, as the readers name it."""
    return f"{SEQUENCES.as_posix()}/cam{cam}/person{pid:03d}"


def _encode(frame: np.ndarray, ext: str, quality: int) -> bytes:
    """One RGB frame as PNG or JPEG bytes."""
    bgr = np.ascontiguousarray(frame[:, :, ::-1])
    if ext == "png":
        ok, buf = cv2.imencode(".png", bgr, _PNG_PARAMS)
    else:
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:  # pragma: no cover - OpenCV always encodes a uint8 image
        raise ReidViewerError(f"{ext.upper()} encoding failed")
    return buf.tobytes()


def _write_group(config_dict: dict[str, Any], plans: list, root: str) -> dict[str, Any]:
    """Render and write one group of planned tracklets (one identity); return their sidecar entries."""
    from reidviewer.data.synthwalk_layouts import frame_name

    config = SynthConfig.from_dict(config_dict)
    ext = config.image_format
    entries: dict[str, Any] = {}
    for p in plans:
        tr = render_tracklet(config, p.look, p.cam, p.index, p.kind)
        folder = Path(root) / p.folder
        folder.mkdir(parents=True, exist_ok=True)
        # Each tracklet its own JPEG quality around the configured one (sources differ).
        quality = int(np.clip(config.jpeg_quality + np.random.default_rng([config.seed, p.look, p.cam, 6, p.index])
                              .integers(-10, 11), 1, 100))
        for i, frame in enumerate(tr.frames):
            (folder / frame_name(p, i, tr.first_frame, ext)).write_bytes(_encode(frame, ext, quality))
        entries[p.key] = {
            "first_frame": tr.first_frame,
            "frames": int(len(tr.frames)),
            "occlusion": [round(float(r), 4) for r in tr.occlusion],
            "occluders": tr.occluders,
        }
    return entries


# Sensor noise makes LZ77 matching useless: Huffman coding after the Paeth filter gives files
# as small as zlib's default and encodes about twice as fast.
_PNG_PARAMS = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_HUFFMAN_ONLY,
               cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_PAETH]


def _init_worker() -> None:
    cv2.setNumThreads(1)  # one process per core already; threads would only contend


def _sidecar_text(config: SynthConfig, entries: dict[str, Any], people: dict[str, Any]) -> str:
    # One tracklet per line: readable, and small (most ratios are 0).
    from reidviewer.data.synthwalk_layouts import camera_names

    head = {"format": "synthwalk", "version": VERSION, "config": config.to_dict(),
            "identities": config.ids, "cameras": camera_names(config)}
    if config.layout != "ilidsvid":
        head["layout"] = config.layout
    lines = ["{"]
    for k, v in head.items():
        lines.append(f"  {json.dumps(k)}: {json.dumps(v, sort_keys=True)},")
    lines.append('  "people": {')
    lines.append(",\n".join(f"    {json.dumps(k)}: {json.dumps(v, sort_keys=True)}" for k, v in people.items()))
    lines.append("  },")
    lines.append('  "tracklets": {')
    body = []
    for key in sorted(entries):
        e = entries[key]
        occ = ",".join("0" if r == 0 else repr(r) for r in e["occlusion"])
        body.append(f"    {json.dumps(key)}: {{\"first_frame\": {e['first_frame']}, \"frames\": {e['frames']}, "
                    f"\"occluders\": {json.dumps(e['occluders'])}, \"occlusion\": [{occ}]}}")
    lines.append(",\n".join(body))
    lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def read_sidecar(root: str | Path) -> dict[str, Any]:
    """The parsed ``synthwalk.json`` of a generated set.

    Raises:
        DatasetError: if it is missing or not valid SynthWalk JSON.
    """
    path = Path(root) / SIDECAR
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError(path, "missing (not a SynthWalk dataset)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(path, f"unreadable SynthWalk sidecar ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != "synthwalk" or not isinstance(data.get("tracklets"), dict):
        raise DatasetError(path, "not a SynthWalk sidecar (no 'format': 'synthwalk' or no 'tracklets')")
    return data


def is_complete(out: str | Path, config: SynthConfig | None = None) -> bool:
    """True if ``out`` holds a finished SynthWalk set written by this generator version.

    The sidecar is written last (and the whole set is renamed into place at the end), so an
    interrupted run is never taken as complete. With ``config``, the set must also have been
    generated from that config.
    """
    out = Path(out)
    try:
        data = read_sidecar(out)
    except DatasetError:
        return False
    from reidviewer.data.synthwalk_layouts import layout_complete

    try:
        written = SynthConfig.from_dict(data.get("config") or {})
    except (TypeError, ValueError):
        return False
    if data.get("version") != VERSION or not layout_complete(out, written):
        return False
    return config is None or written == config


def _remove_stale_partials(out: Path) -> None:
    """Remove ``.OUT.partial-PID`` folders left by generator processes that were killed."""
    for folder in out.parent.glob(f".{out.name}.partial-*"):
        try:
            pid = int(folder.name.rsplit("-", 1)[1])
            os.kill(pid, 0)  # still running (another generate into the same place): leave it
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except (ValueError, PermissionError, OSError):
            continue


def _default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


def generate(
    out: str | Path,
    config: SynthConfig,
    workers: int | None = None,
    progress: Callable[..., None] | None = None,
    overwrite: bool = False,
) -> Path:
    """Generate a SynthWalk dataset into ``out`` (iLIDS-VID layout plus ``synthwalk.json``).

    Everything is written into a hidden folder beside ``out`` that is renamed to ``out`` only
    when complete; if the run fails or is interrupted, the partial folder is removed.

    Args:
        out: the folder to create. It must not exist or be empty, unless ``overwrite``.
        config: what to generate.
        workers: processes to use (``None``: all cores; 1: in this process). The files are
            byte-identical whatever the value.
        progress: called as ``progress(groups_done, groups_total, text)`` (a group is one
            identity's tracklets); raising from it (``Cancelled``) cancels the run.
        overwrite: replace ``out`` if it exists and is not empty.

    Returns:
        ``out`` as a resolved path.

    Raises:
        DatasetError: if ``out`` is a file, or a non-empty folder and ``overwrite`` is False.
        ReidViewerError: if the worker processes could not run (see ``workers``).
    """
    out = Path(out).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise DatasetError(out, "exists and is a file; SynthWalk needs a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise DatasetError(out, "folder is not empty; choose a new or empty folder (or overwrite it)")
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_partials(out)
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    workers = _default_workers() if workers is None else max(1, int(workers))
    from reidviewer.data.synthwalk_layouts import plan, write_index

    groups = plan(config)
    total = len(groups)
    entries: dict[str, Any] = {}
    try:
        tmp.mkdir()
        if progress:
            progress(0, total, PROGRESS_TEXT)
        cfg = config.to_dict()
        if workers == 1 or total == 1:
            for done, group in enumerate(groups, 1):
                entries.update(_write_group(cfg, group, str(tmp)))
                if progress:
                    progress(done, total, PROGRESS_TEXT)
        else:
            import multiprocessing

            # "spawn": safe when the caller has threads (the Qt app), unlike fork.
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=min(workers, total), mp_context=ctx,
                                     initializer=_init_worker) as pool:
                todo = iter(groups)
                pending: set = set()
                done = 0
                try:
                    # A bounded window: MARS-size sets have thousands of groups.
                    while True:
                        while len(pending) < 4 * workers:
                            group = next(todo, None)
                            if group is None:
                                break
                            pending.add(pool.submit(_write_group, cfg, group, str(tmp)))
                        if not pending:
                            break
                        finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                        for fut in finished:
                            entries.update(fut.result())
                        done += len(finished)
                        if progress:
                            progress(done, total, PROGRESS_TEXT)
                except BrokenProcessPool as exc:
                    raise ReidViewerError(
                        "SynthWalk worker processes died; a script that calls generate() must "
                        "guard its entry point with `if __name__ == \"__main__\":` (or pass workers=1)"
                    ) from exc
                except BaseException:
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise
        write_index(tmp, config, groups, {k: e["frames"] for k, e in entries.items()})
        people = {f"person{pid:03d}": describe_identity(config, pid) for pid in range(1, config.ids + 1)}
        # The sidecar last: its presence marks a complete set.
        (tmp / SIDECAR).write_text(_sidecar_text(config, entries, people), encoding="utf-8")
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
