"""The map of the whole set as the views see it, and "find similar": Qt-free, so it is tested
without a window.

``session_map(session)`` builds (once per results) the whole set of query and gallery
tracklets (``engine.embedding_map.MapSet``), their names, squared norms for find-similar and the
PCA projection. ``similar_for(session, point, k)`` answers "find similar" as a ``SimilarView``
the ranked view shows: tiles whose ``gallery_row`` is the gallery row, or ``-(query row + 1)``
for a query that is not in the gallery (``tile_target`` decodes it).
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

    def thumb(self, session: Any, point: int) -> str:
        return thumb_path(session.dataset.tracklets[int(self.ms.dataset_indices[point])])


_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def session_map(session: Any) -> SessionMap:
    """The ``SessionMap`` of ``session.results`` (built once, then cached with the results)."""
    r = session.results
    m = _CACHE.get(r)
    if m is None:
        ms = em.whole_set(r)
        m = SessionMap(ms, em.point_names(ms, session.dataset), em.squared_norms(ms.features))
        m.coords["pca"] = em.pca_2d(ms.features)
        _CACHE[r] = m
    return m


def point_of(session: Any, query_row: int | None = None, gallery_row: int | None = None) -> int:
    """The map point of a query row or a gallery row."""
    ms = session_map(session).ms
    return ms.point_of_query(query_row) if query_row is not None else ms.point_of_gallery(int(gallery_row))


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
        row = g if g >= 0 else -int(ms.query_rows[p]) - 1
        label = f"{m.names[p]} · {ms.role(p)}"
        tiles.append(TileData(row, rank, float(d), bool(match), m.thumb(session, p), label,
                              bool(flags.get(int(ms.dataset_indices[p])))))
    hits = int(np.count_nonzero(sim.is_match))
    header = f"Nearest to {m.names[point]} among all {len(ms)}: {hits}/{len(tiles)} ✓"
    return SimilarView(session, point, header, tiles)


def camera_bias_of(session: Any, progress=None, cancel=None) -> em.CameraBias:
    """The camera-bias number of the session's whole set (computed once)."""
    m = session_map(session)
    if m.bias is None:
        m.bias = em.camera_bias(m.ms.features, m.ms.camids, m.ms.pids, progress=progress, cancel=cancel)
    return m.bias
