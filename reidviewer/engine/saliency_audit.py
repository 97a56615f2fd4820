"""Sanity checks for the saliency maps (Adebayo et al. 2018), reported by ``reidviewer audit``.

* **Randomised weights**: the same network with every weight re-drawn must give clearly
  different maps; ``rank_correlation`` is the mean Spearman correlation, per frame, of the
  trained and randomised Grad-CAM maps (near 1 would mean the maps show the input, not the model).
* **Where the mass falls** (SynthWalk only): each frame's person and occluder masks are
  re-rendered (``data.synthwalk_masks``); ``person_share`` is the share of the saliency mass on
  the visible person (person pixels no occluder hides), ``occluder_share`` on occluders, the rest
  on the background. ``person_area`` is the share of the frame the visible person covers (what a
  uniform map would score). Each query is paired with its top-1 gallery tracklet; shares are
  mass-weighted over every frame of those pairs (query and gallery).
"""
from __future__ import annotations

import threading
from typing import Any

import numpy as np

from reidviewer.engine.saliency import (NetStages, SaliencyEngine, pair_gradcam, randomised_copy, spearman,
                                        tracklet_energy)
from reidviewer.progress import ProgressFn, check_cancelled

#: Queries audited by default (each with its top-1): enough for a stable share, quick on a CPU.
DEFAULT_PAIRS = 24


def _noop(*_a, **_k) -> None:
    return None


def _shares(maps, masks: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """(person mass, occluder mass, total mass, person area, frames) summed over a tracklet's frames."""
    person, occluder = masks
    acc = np.zeros(5, np.float64)
    h, w = person.shape[1:]
    for row, frame in enumerate(maps.frames):
        if int(frame) >= len(person):
            continue
        m = maps.frame_map(int(frame), h, w)
        visible = person[frame] & ~occluder[frame]
        acc += (float(m[visible].sum()), float(m[occluder[frame]].sum()), float(m.sum()),
                float(visible.mean()), 1.0)
    return acc


def saliency_audit(dataset: Any, results: Any, workspace: Any, pairs: int = DEFAULT_PAIRS, seed: int = 0,
                   progress: ProgressFn = _noop, cancel: threading.Event | None = None,
                   method: str = "gradcam", checkpoint: Any = None) -> dict[str, Any]:
    """The ``saliency`` section of the audit JSON.

    Returns:
        ``{"method", "pairs", "frames", "rank_correlation", and on SynthWalk "person_share",
        "occluder_share", "background_share", "person_area", "person_share_random",
        "occluder_share_random"}``; ``{"unavailable": reason}`` for a model without gradients.
    """
    engine = SaliencyEngine(dataset, results, workspace, checkpoint=checkpoint)
    reason = engine.unavailable
    if reason:
        return {"unavailable": reason}
    model, _cache = engine._load()
    random_stages = NetStages(randomised_copy(model, seed))
    synth = getattr(dataset, "occlusion", None) is not None
    if synth:
        from reidviewer.data.synthwalk_masks import tracklet_masks
    rows = [r for r in range(results.num_queries) if results.valid[r]][:max(1, int(pairs))]
    trained = np.zeros(5)
    randomised = np.zeros(5)
    corr: list[float] = []
    for n, row in enumerate(rows):
        check_cancelled(cancel)
        progress(n, len(rows), "saliency audit")
        top = int(results.ranked(row, 1)[0][0])
        qi, gi = int(results.query_indices[row]), int(results.gallery_indices[top])
        q, g = engine.pair(qi, gi, method, cancel=cancel)
        _, qin = engine.clip(qi, engine._is_tail(qi))
        _, gin = engine.clip(gi, engine._is_tail(gi))
        if method == "energy":
            rq, rg = tracklet_energy(random_stages, qin), tracklet_energy(random_stages, gin)
        else:
            rq, rg, _ = pair_gradcam(random_stages, qin, gin)
        for real, rand in ((q.maps, rq), (g.maps, rg)):
            corr.extend(spearman(a, b) for a, b in zip(real, rand))
        if synth:
            for maps, rand_maps, idx in ((q, rq, qi), (g, rg, gi)):
                masks = tracklet_masks(dataset.root, dataset.tracklets[idx].key)
                trained += _shares(maps, masks)
                rmaps = type(maps)(rand_maps, maps.frames, maps.stored_size, maps.offset, maps.method, maps.target)
                randomised += _shares(rmaps, masks)
    progress(len(rows), len(rows), "saliency audit")
    corr_arr = np.asarray([c for c in corr if np.isfinite(c)])
    out: dict[str, Any] = {"method": method, "pairs": len(rows), "frames": int(trained[4]) if synth else len(corr),
                           "rank_correlation": round(float(corr_arr.mean()), 4) if corr_arr.size else None}
    if synth and trained[2] > 0:
        out.update(person_share=round(float(trained[0] / trained[2]), 4), occluder_share=round(float(trained[1] / trained[2]), 4),
                   background_share=round(float(1 - (trained[0] + trained[1]) / trained[2]), 4),
                   person_area=round(float(trained[3] / max(trained[4], 1)), 4))
    if synth and randomised[2] > 0:
        out.update(person_share_random=round(float(randomised[0] / randomised[2]), 4),
                   occluder_share_random=round(float(randomised[1] / randomised[2]), 4))
    return out


def format_saliency(report: dict[str, Any]) -> str:
    """One or two lines for the audit's text output."""
    if "unavailable" in report:
        return f"saliency: unavailable ({report['unavailable']})"
    line = f"saliency ({report['method']}, {report['pairs']} pairs): rank correlation with randomised weights {report['rank_correlation']}"
    if "person_share" in report:
        line += (f"\n  share on the person {report['person_share']:.3f} (randomised "
                 f"{report.get('person_share_random', float('nan')):.3f}, person area {report['person_area']:.3f}), "
                 f"on occluders {report['occluder_share']:.3f} (randomised {report.get('occluder_share_random', float('nan')):.3f})")
    return line
