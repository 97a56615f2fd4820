"""The map of the whole set as the views see it, and "find similar": Qt-free, so it is tested
without a window.

``session_map(session)`` builds (once per results, again when the training tracklets arrive)
the whole set of query and gallery tracklets — and the split's training tracklets once
``session.training`` holds them (``load_training``) — as an ``engine.embedding_map.MapSet``,
with their names, squared norms for find-similar and the PCA projection.
``similar_for(session, point, k)`` answers "find similar" as a ``SimilarView`` the ranked view
shows: tiles whose ``gallery_row`` is the gallery-player row (the gallery's rows, then the
training tracklets' from ``session.num_gallery``), or ``-(query row + 1)`` for a query that is
not in the gallery (``tile_target`` decodes it).
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from reidviewer.app.viewmodel import TileData, thumb_path
from reidviewer.engine import embedding_map as em


@dataclass(eq=False)
class SessionMap:
    """The whole set of one session's results, with what the map and find-similar need."""

    ms: em.MapSet
    names: list[str]
    norms: np.ndarray
    coords: dict[str, np.ndarray] = field(default_factory=dict)
    bias: em.CameraBias | None = None
    training: Any = None  # the session.training this map was built with

    def thumb(self, session: Any, point: int) -> str:
        return thumb_path(session.dataset.tracklets[int(self.ms.dataset_indices[point])])


_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def session_map(session: Any) -> SessionMap:
    """The ``SessionMap`` of ``session.results`` (built once, then cached with the results)."""
    r = session.results
    training = getattr(session, "training", None)
    m = _CACHE.get(r)
    if m is None or m.training is not training:
        ms = em.whole_set(r, training)
        m = SessionMap(ms, em.point_names(ms, session.dataset), em.squared_norms(ms.features), training=training)
        m.coords["pca"] = em.pca_2d(ms.features)
        _CACHE[r] = m
    return m


def load_training(session: Any, workspace: Any, progress=None, cancel=None):
    """The split's training tracklets with features from the session's checkpoint (computed in the
    caller's thread, or read from the workspace cache): a ``TrainingSet`` for ``set_training``."""
    from reidviewer.engine.training_set import compute_training_set, settings_of

    return compute_training_set(session.dataset, int(session.results.split), session.checkpoint, workspace,
                                settings_of(session.results), progress=progress, cancel=cancel)


def set_training(session: Any, training: Any) -> SessionMap:
    """Put ``training`` (a ``TrainingSet``, or None to take them off) on the session's map."""
    session.training = training
    return session_map(session)


def point_of(session: Any, query_row: int | None = None, gallery_row: int | None = None) -> int:
    """The map point of a query row or a gallery-player row (a training tracklet's too)."""
    ms = session_map(session).ms
    if query_row is not None:
        return ms.point_of_query(query_row)
    g = int(gallery_row)
    if g >= session.num_gallery:
        return len(ms) - ms.num_training + (g - session.num_gallery)
    return ms.point_of_gallery(g)


def player_row(session: Any, point: int) -> tuple[str, int]:
    """Where a map point opens: ``("query", row)`` for a query, else ``("gallery", row)`` — a
    gallery row, or a training tracklet's row after the gallery's."""
    ms = session_map(session).ms
    if ms.query_rows[point] >= 0:
        return "query", int(ms.query_rows[point])
    if ms.gallery_rows[point] >= 0:
        return "gallery", int(ms.gallery_rows[point])
    return "gallery", session.training_row(point - (len(ms) - ms.num_training))


def tile_target(row: int) -> tuple[str, int]:
    """What a find-similar tile opens: ``("gallery", row)`` or ``("query", row)``."""
    return ("gallery", int(row)) if row >= 0 else ("query", -int(row) - 1)


@dataclass(frozen=True)
class SimilarView:
    """What the ranked view shows in find-similar mode."""

    session: Any
    anchor: int
    header: str
    tiles: list[TileData]


def similar_for(session: Any, point: int, k: int = 10) -> SimilarView:
    """The ``k`` nearest tracklets of the whole set to ``point``, as tiles with ✓/✗."""
    m = session_map(session)
    ms = m.ms
    sim = em.find_similar(ms.features, point, k, ms.pids, m.norms)
    tiles = []
    flags = getattr(session, "frame_flag_map", {}) or {}
    for rank, (p, d, match) in enumerate(zip(sim.points, sim.distances, sim.is_match), start=1):
        p = int(p)
        g = int(ms.gallery_rows[p])
        if g >= 0 or ms.query_rows[p] < 0:
            row = player_row(session, p)[1]  # a gallery row, or a training tracklet's
        else:
            row = -int(ms.query_rows[p]) - 1
        label = f"{m.names[p]} · {ms.role(p)}"
        tiles.append(TileData(row, rank, float(d), bool(match), m.thumb(session, p), label,
                              bool(flags.get(int(ms.dataset_indices[p])))))
    hits = int(np.count_nonzero(sim.is_match))
    what = " (training included)" if ms.num_training else ""
    header = f"Nearest to {m.names[point]} among all {len(ms)}{what}: {hits}/{len(tiles)} ✓"
    return SimilarView(session, point, header, tiles)


def camera_bias_of(session: Any, progress=None, cancel=None) -> em.CameraBias:
    """The camera-bias number of the session's whole set (computed once)."""
    m = session_map(session)
    if m.bias is None:
        m.bias = em.camera_bias(m.ms.features, m.ms.camids, m.ms.pids, progress=progress, cancel=cancel)
    return m.bias
