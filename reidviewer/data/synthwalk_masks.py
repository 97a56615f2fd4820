"""SynthWalk's per-frame person and occluder masks, re-rendered on demand (saliency audit, #20).

The generator is deterministic: a tracklet's pixels depend only on the config in
``synthwalk.json`` and the tracklet's plan (identity, camera, index, kind). So the masks are not
stored with the dataset; ``tracklet_masks`` renders the tracklet again with
``render_tracklet(masks=True)`` and returns the masks the generator used for its pixels.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from reidviewer.errors import DatasetError


@lru_cache(maxsize=4)
def _plans(root: str) -> tuple[Any, dict[str, Any]]:
    from reidviewer.data.synthwalk import SynthConfig, read_sidecar
    from reidviewer.data.synthwalk_layouts import plan

    doc = read_sidecar(root)
    config = SynthConfig.from_dict(doc["config"])
    return config, {p.key: p for group in plan(config) for p in group}


def tracklet_masks(root: str | Path, key: str) -> tuple[np.ndarray, np.ndarray]:
    """``(person, occluder)`` masks, (n, height, width) bool each, of tracklet ``key`` of the set at ``root``.

    ``person`` is every pixel of the person, hidden or not; ``person & ~occluder`` is what shows.

    Raises:
        DatasetError: ``root`` is not a SynthWalk set or has no tracklet ``key``.
    """
    from reidviewer.data.synthwalk import render_tracklet

    try:
        config, plans = _plans(str(Path(root)))
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise DatasetError(root, f"not a SynthWalk set with a readable synthwalk.json ({exc})") from None
    p = plans.get(key)
    if p is None:
        raise DatasetError(root, f"SynthWalk has no tracklet {key!r}")
    tr = render_tracklet(config, p.look, p.cam, p.index, p.kind, masks=True)
    return tr.person_masks, tr.occluder_masks
