"""The map of the whole set: a 2-D projection of every tracklet's feature, find-similar, camera bias.

Input is one results file (``Results``): its query and gallery features, pids, camids and keys.
The *whole set* is the union of the query and gallery tracklets, each dataset tracklet once (on
MARS the query tracklets are in the gallery too). Training tracklets are not in a results file;
``engine.training_set`` extracts their features with the results' checkpoint, and
``whole_set(results, training)`` appends them after the query and gallery points.

* ``whole_set(results, training=None)``: the set as flat arrays (``MapSet``), queries first,
  training tracklets (when given) last.
* ``pca_2d(features)``: PCA in numpy (exact eigen-decomposition of the D × D covariance; a
  fixed-seed randomized range finder above ``EXACT_PCA_DIM``), signs fixed so that each
  component's largest loading is positive: the same features always give the same picture.
* ``umap_2d(features, seed)``: UMAP (``umap-learn``, ``pip install "reidviewer[map]"``),
  deterministic by ``random_state``; ``projection(...)`` caches either in the workspace
  (``cache/maps/*.npz``, read with ``allow_pickle=False``).
* ``colour_values(...)``: what a point can be coloured by (identity, camera, rank-1 hit/miss,
  AP, annotation flag, attention spread).
* ``find_similar(...)``: the nearest tracklets of the whole set to one tracklet (vectorised).
* ``camera_bias(...)``: the share of each tracklet's k nearest neighbours from its own camera
  against the share its camera has in the set; a ratio near 1 means no camera bias.
* ``points_in_polygon`` / ``points_in_rect``: lasso and rectangle selection on the map.
"""
from __future__ import annotations

import hashlib
import io
import json
import threading
import warnings
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from reidviewer.data.array_files import DAMAGED_FILE_ERRORS, open_npz
from reidviewer.data.tracklet import UNKNOWN_CAMERA
from reidviewer.errors import Cancelled, ReidViewerError

if TYPE_CHECKING:
    from reidviewer.engine.results import Results
    from reidviewer.engine.training_set import TrainingSet

#: Colour-by choices, in the order the app and ``export map`` offer them.
COLOR_BY = ("identity", "camera", "rank1", "ap", "flag", "spread")
COLOR_BY_NAMES = {
    "identity": "identity",
    "camera": "camera",
    "rank1": "hit / miss at rank 1",
    "ap": "AP (queries)",
    "flag": "annotation flag",
    "spread": "attention spread",
}
#: Projection methods.
METHODS = ("pca", "umap")
#: Above this feature dimension PCA uses a fixed-seed randomized range finder instead of the
#: exact D × D eigen-decomposition.
EXACT_PCA_DIM = 1024
#: What to install for UMAP.
UMAP_HINT = 'pip install "reidviewer[map]"'
#: One line on what the camera-bias number means.
CAMERA_BIAS_EXPLANATION = (
    "The share of each tracklet's nearest neighbours that come from its own camera, against the share "
    "expected from how many tracklets each camera has: near ×1 the features do not cluster by camera, "
    "well above ×1 they do.")

Progress = Callable[..., None]


class MapError(ReidViewerError):
    """The map cannot be computed or read (no features, UMAP not installed, a bad cache file)."""


# ---------------------------------------------------------------------------- the whole set
@dataclass(eq=False)
class MapSet:
    """Every query and gallery tracklet once, queries first; training tracklets (optional) last.

    Attributes:
        features: ``(N, D)`` float32.
        pids, camids: int64 labels.
        keys: tracklet keys.
        dataset_indices: the tracklets' indices in the dataset.
        query_rows: each point's query row, -1 when it is not a query.
        gallery_rows: each point's gallery row, -1 when it is not in the gallery.
        train_spreads: attention spreads of the training points (the last ``len(train_spreads)``
            points; a results file holds the others').
    """

    features: np.ndarray
    pids: np.ndarray
    camids: np.ndarray
    keys: list[str]
    dataset_indices: np.ndarray
    query_rows: np.ndarray
    gallery_rows: np.ndarray
    train_spreads: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __len__(self) -> int:
        return len(self.pids)

    @property
    def num_training(self) -> int:
        """How many training points the set ends with."""
        return len(self.train_spreads)

    @property
    def is_training(self) -> np.ndarray:
        """Boolean mask of the training points."""
        return (self.query_rows < 0) & (self.gallery_rows < 0)

    def role(self, i: int) -> str:
        """``query``, ``gallery``, ``query + gallery`` or ``training``."""
        q, g = self.query_rows[i] >= 0, self.gallery_rows[i] >= 0
        if not q and not g:
            return "training"
        return "query + gallery" if q and g else ("query" if q else "gallery")

    def point_of_query(self, row: int) -> int:
        """The point of a query row."""
        return int(np.flatnonzero(self.query_rows == int(row))[0])

    def point_of_gallery(self, row: int) -> int:
        """The point of a gallery row."""
        return int(np.flatnonzero(self.gallery_rows == int(row))[0])

    def find(self, text: str) -> int:
        """The point a user names: its key, or ``q:ROW`` / ``g:ROW``.

        Raises:
            MapError: no such tracklet.
        """
        text = text.strip()
        for prefix, rows in (("q:", self.query_rows), ("g:", self.gallery_rows)):
            if text.startswith(prefix) and text[2:].isdigit():
                hit = np.flatnonzero(rows == int(text[2:]))
                if len(hit):
                    return int(hit[0])
        try:
            return self.keys.index(text)
        except ValueError:
            raise MapError(f"no tracklet {text!r} among the {'query, gallery and training' if self.num_training else 'query and gallery'} tracklets") from None


def whole_set(results: Results, training: TrainingSet | None = None) -> MapSet:
    """The query and gallery tracklets of ``results``, each dataset tracklet once (queries first),
    then ``training``'s tracklets when given (``engine.training_set.compute_training_set``)."""
    qi = np.asarray(results.query_indices, dtype=np.int64)
    gi = np.asarray(results.gallery_indices, dtype=np.int64)
    extra = np.flatnonzero(~np.isin(gi, qi))
    nq = len(qi)
    n = nq + len(extra)
    query_rows = np.full(n, -1, dtype=np.int64)
    query_rows[:nq] = np.arange(nq)
    gallery_rows = np.full(n, -1, dtype=np.int64)
    gallery_rows[nq:] = extra
    # Queries that are also in the gallery (MARS): their gallery row.
    order = np.argsort(gi, kind="stable")
    pos = np.searchsorted(gi[order], qi)
    pos = np.minimum(pos, max(len(gi) - 1, 0))
    if len(gi):
        found = gi[order][pos] == qi
        gallery_rows[:nq][found] = order[pos[found]]
    feats = np.concatenate([np.asarray(results.query_features, dtype=np.float32),
                            np.asarray(results.gallery_features, dtype=np.float32)[extra]])
    ms = MapSet(
        features=np.ascontiguousarray(feats),
        pids=np.concatenate([results.query_pids, np.asarray(results.gallery_pids)[extra]]).astype(np.int64),
        camids=np.concatenate([results.query_camids, np.asarray(results.gallery_camids)[extra]]).astype(np.int64),
        keys=[str(k) for k in results.query_keys] + [str(results.gallery_keys[int(i)]) for i in extra],
        dataset_indices=np.concatenate([qi, gi[extra]]),
        query_rows=query_rows,
        gallery_rows=gallery_rows,
    )
    if training is None or not len(training):
        return ms
    if training.features.shape[1] != ms.features.shape[1]:
        raise MapError(f"training features have {training.features.shape[1]} dimensions, the results "
                       f"{ms.features.shape[1]}: not the same model")
    nt = len(training)
    return MapSet(
        features=np.ascontiguousarray(np.concatenate([ms.features, training.features]).astype(np.float32)),
        pids=np.concatenate([ms.pids, training.pids]).astype(np.int64),
        camids=np.concatenate([ms.camids, training.camids]).astype(np.int64),
        keys=ms.keys + [str(k) for k in training.keys],
        dataset_indices=np.concatenate([ms.dataset_indices, training.dataset_indices]).astype(np.int64),
        query_rows=np.concatenate([ms.query_rows, np.full(nt, -1, np.int64)]),
        gallery_rows=np.concatenate([ms.gallery_rows, np.full(nt, -1, np.int64)]),
        train_spreads=np.asarray(training.spreads, dtype=np.float64),
    )


# ---------------------------------------------------------------------------- projections
def _fix_signs(components: np.ndarray) -> np.ndarray:
    """Flip each row so its largest-magnitude entry is positive (a deterministic sign)."""
    idx = np.argmax(np.abs(components), axis=1)
    signs = np.sign(components[np.arange(len(components)), idx])
    signs[signs == 0] = 1.0
    return components * signs[:, None]


def pca_components(features: np.ndarray, n: int = 2, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(mean, components (n, D), explained variance ratio (n,))`` of ``features``."""
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise MapError("a projection needs the features of at least two tracklets")
    mean = x.mean(axis=0)
    xc = x - mean
    total = float((xc * xc).sum())
    d = x.shape[1]
    if d <= EXACT_PCA_DIM:
        cov = xc.T @ xc
        vals, vecs = np.linalg.eigh(cov)
        top = np.argsort(vals)[::-1][:n]
        comps = vecs[:, top].T
        var = vals[top]
    else:
        # Randomized range finder (Halko et al. 2011), fixed seed, 4 power iterations.
        rng = np.random.default_rng(seed)
        q = xc @ rng.standard_normal((d, n + 10))
        for _ in range(4):
            q, _ = np.linalg.qr(q)
            q, _ = np.linalg.qr(xc @ (xc.T @ q))
        b = q.T @ xc
        _, s, vt = np.linalg.svd(b, full_matrices=False)
        comps = vt[:n]
        var = s[:n] ** 2
    if comps.shape[0] < n:  # fewer dimensions than asked
        comps = np.vstack([comps, np.zeros((n - comps.shape[0], d))])
        var = np.concatenate([var, np.zeros(n - len(var))])
    comps = _fix_signs(comps)
    ratio = np.asarray(var, dtype=np.float64) / total if total > 0 else np.zeros(n)
    return mean, comps, ratio


def pca_2d(features: np.ndarray, seed: int = 0) -> np.ndarray:
    """The 2-D PCA projection of ``features``, ``(N, 2)`` float32 (deterministic)."""
    mean, comps, _ = pca_components(features, 2, seed)
    return ((np.asarray(features, dtype=np.float64) - mean) @ comps.T).astype(np.float32)


def umap_available() -> bool:
    """Whether ``umap-learn`` can be imported."""
    import importlib.util

    return importlib.util.find_spec("umap") is not None


def umap_2d(features: np.ndarray, seed: int = 0, n_neighbors: int = 15, min_dist: float = 0.1,
            progress: Progress | None = None, cancel: threading.Event | None = None) -> np.ndarray:
    """UMAP 2-D projection (``umap-learn``), deterministic for a given ``seed``.

    UMAP cannot be interrupted while it optimises; ``cancel`` is honoured before and after.

    Raises:
        MapError: ``umap-learn`` is not installed.
        Cancelled: ``cancel`` was set.
    """
    try:
        import umap  # noqa: PLC0415
    except ImportError:
        raise MapError(f"UMAP needs umap-learn: {UMAP_HINT}") from None
    x = np.asarray(features, dtype=np.float32)
    if len(x) < 3:
        raise MapError("UMAP needs the features of at least three tracklets")
    progress = progress or (lambda *a: None)
    if cancel is not None and cancel.is_set():
        raise Cancelled("cancelled")
    progress(0, 3, f"nearest neighbours of {len(x)} tracklets")
    k = min(n_neighbors, len(x) - 1)
    # The exact k-NN graph by brute force (BLAS), handed to UMAP: at 20,000 tracklets this takes
    # seconds, where UMAP's own NN-descent spends about half a minute compiling its numba
    # kernels on a first run (they are not cached between processes) — the bulk of the old 79 s.
    knn_indices, knn_dists = exact_knn(x, k + 1, cancel=cancel)
    progress(1, 3, f"UMAP of {len(x)} tracklets (the first run in a session also compiles UMAP)")
    # PCA initialisation: at 20,000 tracklets the spectral one takes ~8x longer (98 s against 12 s
    # here, one thread) for a layout of the same kind; both are deterministic for a seed.
    init = "pca" if len(x) > n_neighbors + 2 else "random"
    reducer = umap.UMAP(n_components=2, n_neighbors=k + 1, min_dist=min_dist, random_state=int(seed), n_jobs=1,
                        init=init, precomputed_knn=(knn_indices, knn_dists, None))
    with warnings.catch_warnings():
        # "precomputed_knn ... transform() will not be available": we never transform new points.
        warnings.simplefilter("ignore", UserWarning)
        coords = reducer.fit_transform(x)
    if cancel is not None and cancel.is_set():
        raise Cancelled("cancelled")
    progress(3, 3, "UMAP done")
    return np.asarray(coords, dtype=np.float32)


def iter_knn(features: np.ndarray, k: int, rows: np.ndarray | None = None, *, include_self: bool = True,
             chunk: int = 512, norms: np.ndarray | None = None, cancel: threading.Event | None = None):
    """The ``k`` nearest points of ``rows`` (default: every point), by brute force, a chunk at a time.

    Yields ``(start, indices (m, k) int64, squared distances (m, k) float32)`` for the rows
    ``rows[start:start + m]``, nearest first, ties broken by point index (deterministic). With
    ``include_self`` a row's own point leads at distance 0 (as UMAP's k-NN gives it); without,
    it is left out.
    """
    x = np.ascontiguousarray(features, dtype=np.float32)
    n = len(x)
    rows = np.arange(n) if rows is None else np.asarray(rows, dtype=np.int64)
    k = min(int(k), n if include_self else n - 1)
    sq = squared_norms(x) if norms is None else norms
    for start in range(0, len(rows), chunk):
        if cancel is not None and cancel.is_set():
            raise Cancelled("cancelled")
        r = rows[start:start + chunk]
        d = sq[r, None] + sq[None, :] - 2.0 * (x[r] @ x.T)
        np.maximum(d, 0.0, out=d)
        d[np.arange(len(r)), r] = -1.0 if include_self else np.inf
        part = np.argpartition(d, k - 1, axis=1)[:, :k] if k < n else np.tile(np.arange(n), (len(r), 1))
        pd = np.take_along_axis(d, part, 1)
        order = np.lexsort((part, pd), axis=1)  # by distance, ties by index
        yield start, np.take_along_axis(part, order, 1), np.maximum(np.take_along_axis(pd, order, 1), 0.0)


def exact_knn(features: np.ndarray, k: int, chunk: int = 512,
              cancel: threading.Event | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest points of every point (itself first), by brute force in chunks.

    Returns:
        ``(indices (N, k) int64, distances (N, k) float32)``, nearest first; each point's own
        index leads its row at distance 0 (as UMAP's own k-NN gives it).
    """
    n = len(features)
    k = min(int(k), n)
    indices = np.empty((n, k), dtype=np.int64)
    dists = np.empty((n, k), dtype=np.float32)
    for start, idx, d2 in iter_knn(features, k, chunk=chunk, cancel=cancel):
        indices[start:start + len(idx)] = idx
        dists[start:start + len(idx)] = np.sqrt(d2)
    return indices, dists


def cache_key(results: Results, method: str, seed: int, n: int) -> str:
    """What a cached projection depends on: the results' identity, the method, seed and size."""
    ident = {
        "checkpoint": results.checkpoint_fingerprint,
        "dataset": results.dataset_fingerprint,
        "split": results.split,
        "settings": results.settings,
        "annotations": results.annotation_version,
        "created": results.created,
        "method": method,
        "seed": int(seed),
        "n": int(n),
    }
    text = json.dumps(ident, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _features_digest(features: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(features, dtype=np.float32).tobytes()).hexdigest()[:24]


def projection(results: Results, method: str = "pca", seed: int = 0, workspace=None, mapset: MapSet | None = None,
               progress: Progress | None = None, cancel: threading.Event | None = None) -> np.ndarray:
    """The 2-D map of the whole set, ``(N, 2)`` float32, cached in ``workspace`` (UMAP only).

    Args:
        results: the results file.
        method: ``pca`` or ``umap``.
        seed: random seed (UMAP; PCA is exact for D ≤ ``EXACT_PCA_DIM``).
        workspace: a ``Workspace`` for the cache (``cache/maps``); None: no cache.
        mapset: ``whole_set(results)`` when already built.
    """
    if method not in METHODS:
        raise MapError(f"unknown projection {method!r} (choose from {', '.join(METHODS)})")
    ms = mapset if mapset is not None else whole_set(results)
    if method == "pca":
        return pca_2d(ms.features, seed)
    path = None
    digest = _features_digest(ms.features)
    if workspace is not None:
        try:
            path = Path(workspace.cache_dir) / "maps" / f"{cache_key(results, method, seed, len(ms))}.npz"
        except ReidViewerError:  # a read-only workspace: compute without a cache
            path = None
    if path is not None:
        coords = _read_cache(path, len(ms), digest)
        if coords is not None:
            return coords
    coords = umap_2d(ms.features, seed, progress=progress, cancel=cancel)
    if path is not None:
        _write_cache(path, coords, digest)
    return coords


def _read_cache(path: Path, n: int, digest: str) -> np.ndarray | None:
    try:
        with open_npz(path) as z:
            coords = np.asarray(z["coords"], dtype=np.float32)
            ok = str(z["digest"]) == digest
    except DAMAGED_FILE_ERRORS:
        return None
    if not ok or coords.shape != (n, 2) or not np.all(np.isfinite(coords)):
        return None
    return coords


def _write_cache(path: Path, coords: np.ndarray, digest: str) -> None:
    from reidviewer.workspace import atomic_write_bytes

    buf = io.BytesIO()
    np.savez(buf, coords=np.asarray(coords, dtype=np.float32), digest=np.asarray(digest))
    try:
        atomic_write_bytes(path, buf.getvalue())
    except ReidViewerError:
        pass  # a cache: failing to write it is not an error


# ---------------------------------------------------------------------------- colours
def attention_spreads(results: Results, dataset_indices: np.ndarray) -> np.ndarray:
    """Standard deviation over frames of the final iteration's attention, per tracklet (NaN when
    no trace is stored or the tracklet has one frame)."""
    out = np.full(len(dataset_indices), np.nan)
    tr = np.asarray(results.attention_tracklets, dtype=np.int64)
    if not len(tr) or results.attention_values.size == 0:
        return out
    final = np.asarray(results.attention_values[-1], dtype=np.float64)
    offs = np.asarray(results.attention_offsets, dtype=np.int64)
    lengths = np.diff(offs)
    seg = np.repeat(np.arange(len(tr)), lengths)
    s1 = np.bincount(seg, weights=final, minlength=len(tr))
    s2 = np.bincount(seg, weights=final * final, minlength=len(tr))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s1 / lengths
        std = np.sqrt(np.maximum(s2 / lengths - mean * mean, 0.0))
    std[lengths < 2] = np.nan
    pos = np.minimum(np.searchsorted(tr, dataset_indices), len(tr) - 1)
    hit = tr[pos] == dataset_indices
    out[hit] = std[pos[hit]]
    return out


def colour_values(results: Results, ms: MapSet, by: str,
                  flagged: Collection[int] | None = None) -> np.ndarray:
    """Per-point values to colour by.

    * ``identity``, ``camera``: the pid / camid (int64, categorical).
    * ``rank1``: 1 hit, 0 miss (queries), -1 not a query or skipped (int64).
    * ``ap``: the query's AP, NaN for the rest (float64).
    * ``flag``: 1 when the tracklet or one of its frames is flagged, else 0 (int64);
      ``flagged`` holds the flagged dataset indices.
    * ``spread``: attention spread (float64, NaN when unknown).
    """
    if by == "identity":
        return ms.pids.copy()
    if by == "camera":
        return ms.camids.copy()
    q = ms.query_rows
    isq = q >= 0
    if by == "rank1":
        out = np.full(len(ms), -1, dtype=np.int64)
        rows = q[isq]
        valid = np.asarray(results.valid)[rows]
        out[np.flatnonzero(isq)[valid]] = (np.asarray(results.first_rank)[rows][valid] == 1).astype(np.int64)
        return out
    if by == "ap":
        out = np.full(len(ms), np.nan)
        out[isq] = np.asarray(results.ap, dtype=np.float64)[q[isq]]
        return out
    if by == "flag":
        flags = np.fromiter((int(i) for i in (flagged or ())), dtype=np.int64)
        return np.isin(ms.dataset_indices, flags).astype(np.int64)
    if by == "spread":
        out = attention_spreads(results, ms.dataset_indices)
        if ms.num_training:
            out[len(ms) - ms.num_training:] = ms.train_spreads
        return out
    raise MapError(f"unknown colour {by!r} (choose from {', '.join(COLOR_BY)})")


# ---------------------------------------------------------------------------- find similar
@dataclass(frozen=True)
class Similar:
    """The nearest tracklets to one anchor point.

    Attributes:
        anchor: the anchor's point.
        points: the nearest points, nearest first (the anchor itself left out).
        distances: their Euclidean distances (float32).
        is_match: same identity as the anchor.
        known: whether both identities are known (pid ≥ 0), so ``is_match`` means something.
    """

    anchor: int
    points: np.ndarray
    distances: np.ndarray
    is_match: np.ndarray
    known: np.ndarray


def squared_norms(features: np.ndarray) -> np.ndarray:
    """Row-wise squared norms (float32), precomputed once for ``find_similar``."""
    f = np.asarray(features, dtype=np.float32)
    return np.einsum("ij,ij->i", f, f)


def find_similar(features: np.ndarray, anchor: int, top: int = 10, pids: np.ndarray | None = None,
                 norms: np.ndarray | None = None) -> Similar:
    """The ``top`` nearest points to point ``anchor`` (Euclidean, ties by point index).

    Args:
        features: ``(N, D)`` features of the whole set.
        anchor: the point to start from.
        top: how many to return.
        pids: identities (for ``is_match``); None: unknown.
        norms: ``squared_norms(features)``, to save recomputing it per call.
    """
    f = np.asarray(features, dtype=np.float32)
    n = len(f)
    a = int(anchor)
    if not 0 <= a < n:
        raise MapError(f"tracklet {anchor} out of range (0..{n - 1})")
    if norms is None:
        norms = squared_norms(f)
    d2 = norms - 2.0 * (f @ f[a]) + norms[a]
    np.maximum(d2, 0.0, out=d2)
    d2[a] = np.inf
    k = max(0, min(int(top), n - 1))
    if k == 0:
        pts = np.zeros(0, dtype=np.int64)
    elif k < n - 1:
        bound = np.partition(d2, k - 1)[k - 1]
        cand = np.flatnonzero(d2 <= bound)
        pts = cand[np.lexsort((cand, d2[cand]))][:k]
    else:
        pts = np.lexsort((np.arange(n), d2))[:k]
    dist = np.sqrt(d2[pts]).astype(np.float32)
    if pids is None:
        known = np.zeros(len(pts), dtype=bool)
        match = np.zeros(len(pts), dtype=bool)
    else:
        p = np.asarray(pids)
        known = (p[pts] >= 0) & (p[a] >= 0)
        match = known & (p[pts] == p[a])
    return Similar(a, pts.astype(np.int64), dist, match, known)


# ---------------------------------------------------------------------------- camera bias
@dataclass(frozen=True)
class CameraBias:
    """How much the features cluster by camera.

    Attributes:
        k: neighbours per tracklet.
        observed: mean share of each tracklet's k nearest neighbours from its own camera.
        expected: the share expected from the set's camera make-up alone (mean over tracklets
            of (tracklets of its camera − 1) / (N − 1)).
        ratio: observed / expected (1: no camera bias).
        observed_other, expected_other, ratio_other: the same over neighbours of *other*
            identities only, so that a person seen several times by one camera does not count
            (NaN when identities are unknown).
        anchors: how many tracklets were measured (a fixed-seed sample on large sets).
        cameras: how many cameras the set has.
    """

    k: int
    observed: float
    expected: float
    ratio: float
    observed_other: float
    expected_other: float
    ratio_other: float
    anchors: int
    cameras: int

    def text(self) -> str:
        """The numbers in one line."""
        if self.cameras < 2:
            return "Camera bias: n/a (one camera)"
        line = (f"Camera bias: {100 * self.observed:.0f}% of the {self.k} nearest neighbours share the "
                f"tracklet's camera, {100 * self.expected:.0f}% expected → ×{self.ratio:.2f}")
        if np.isfinite(self.ratio_other):
            line += (f"; other identities only: {100 * self.observed_other:.0f}% vs "
                     f"{100 * self.expected_other:.0f}% → ×{self.ratio_other:.2f}")
        return line

    def as_dict(self) -> dict:
        return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in self.__dict__.items()}


def camera_bias(features: np.ndarray, camids: np.ndarray, pids: np.ndarray | None = None, k: int = 10,
                max_anchors: int = 4000, seed: int = 0, chunk: int = 512,
                progress: Progress | None = None, cancel: threading.Event | None = None) -> CameraBias:
    """The camera-bias measure of ``CameraBias`` over a set of features.

    Tracklets of an unknown camera are neither measured nor counted as neighbours. Above
    ``max_anchors`` tracklets a fixed-seed sample of that many is measured (against all).
    """
    f = np.asarray(features, dtype=np.float32)
    cam = np.asarray(camids, dtype=np.int64)
    keep = np.flatnonzero(cam != UNKNOWN_CAMERA)
    f, cam = f[keep], cam[keep]
    pid = None if pids is None else np.asarray(pids, dtype=np.int64)[keep]
    n = len(f)
    cams, cam_idx = np.unique(cam, return_inverse=True)
    nan = float("nan")
    if n < 2 or len(cams) < 2:
        return CameraBias(k, nan, nan, nan, nan, nan, nan, 0, len(cams))
    k = max(1, min(int(k), n - 1))
    if n > max_anchors:
        anchors = np.sort(np.random.default_rng(seed).choice(n, max_anchors, replace=False))
    else:
        anchors = np.arange(n)
    counts = np.bincount(cam_idx, minlength=len(cams))
    expected = float(np.mean((counts[cam_idx[anchors]] - 1) / (n - 1)))
    norms = squared_norms(f)
    own = np.zeros(len(anchors))
    other_share = np.full(len(anchors), np.nan)
    # For the other-identity variant: neighbours beyond k may be needed; take k + extra and
    # use the first k of other identities (extra = the largest identity's size).
    extra = 0
    if pid is not None:
        _, pid_counts = np.unique(pid, return_counts=True)
        extra = int(pid_counts.max())
    kk = min(n - 1, k + extra)
    progress = progress or (lambda *a: None)
    for s, nn, _d2 in iter_knn(f, kk, anchors, include_self=False, chunk=chunk, norms=norms, cancel=cancel):
        rows = anchors[s:s + len(nn)]
        same_cam = cam_idx[nn] == cam_idx[rows][:, None]
        own[s:s + len(rows)] = same_cam[:, :k].mean(axis=1)
        if pid is not None:
            other = pid[nn] != pid[rows][:, None]
            # first k other-identity neighbours of each row
            rank = np.cumsum(other, axis=1)
            take = other & (rank <= k)
            n_take = take.sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                other_share[s:s + len(rows)] = (take & same_cam).sum(axis=1) / n_take
        progress(min(s + chunk, len(anchors)), len(anchors), "camera bias")
    observed = float(own.mean())
    obs_o = exp_o = nan
    if pid is not None:
        # Expected share among other identities: same camera & other pid / other pid.
        pair = np.unique(np.stack([cam_idx, pid], axis=1), axis=0, return_inverse=True)[1].ravel()
        pair_counts = np.bincount(pair)
        _, pid_idx = np.unique(pid, return_inverse=True)
        pid_counts = np.bincount(pid_idx.ravel())
        ra = anchors
        same_cam_other = counts[cam_idx[ra]] - pair_counts[pair[ra]]
        all_other = n - pid_counts[pid_idx.ravel()[ra]]
        with np.errstate(invalid="ignore", divide="ignore"):
            e = same_cam_other / all_other
        ok = np.isfinite(other_share) & np.isfinite(e)
        if ok.any():
            obs_o = float(other_share[ok].mean())
            exp_o = float(e[ok].mean())
    ratio = observed / expected if expected > 0 else nan
    ratio_o = obs_o / exp_o if np.isfinite(exp_o) and exp_o > 0 else nan
    return CameraBias(k, observed, expected, ratio, obs_o, exp_o, ratio_o, len(anchors), len(cams))


# ---------------------------------------------------------------------------- selection
def points_in_rect(points: np.ndarray, x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    """Indices of the points inside the rectangle spanned by two corners (edges included)."""
    p = np.asarray(points, dtype=np.float64)
    lo_x, hi_x = sorted((x0, x1))
    lo_y, hi_y = sorted((y0, y1))
    inside = (p[:, 0] >= lo_x) & (p[:, 0] <= hi_x) & (p[:, 1] >= lo_y) & (p[:, 1] <= hi_y)
    return np.flatnonzero(inside)


def points_in_polygon(points: np.ndarray, polygon: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """Indices of the points inside a closed polygon (a lasso), by the even-odd rule (vectorised
    ray casting; the polygon closes itself)."""
    p = np.asarray(points, dtype=np.float64)
    poly = np.asarray(polygon, dtype=np.float64)
    if len(poly) < 3 or not len(p):
        return np.zeros(0, dtype=np.int64)
    # Bounding box first: cheap, and most points of a big map are outside it.
    lo, hi = poly.min(axis=0), poly.max(axis=0)
    cand = np.flatnonzero((p[:, 0] >= lo[0]) & (p[:, 0] <= hi[0]) & (p[:, 1] >= lo[1]) & (p[:, 1] <= hi[1]))
    x, y = p[cand, 0], p[cand, 1]
    inside = np.zeros(len(cand), dtype=bool)
    xa, ya = poly[:, 0], poly[:, 1]
    xb, yb = np.roll(xa, -1), np.roll(ya, -1)
    for x1, y1, x2, y2 in zip(xa, ya, xb, yb):
        if y1 == y2:
            continue
        crosses = (y1 > y) != (y2 > y)
        xint = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
        inside ^= crosses & (x < xint)
    return cand[inside]


def selection_csv(ms: MapSet, points: Sequence[int], coords: np.ndarray | None = None,
                  names: Sequence[str] | None = None) -> str:
    """The selected tracklets as CSV text: key, name, pid, camid, role, query and gallery row, x, y."""
    import csv

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["key", "name", "pid", "camid", "role", "query_row", "gallery_row", "x", "y"])
    for i in points:
        i = int(i)
        x, y = (float(coords[i, 0]), float(coords[i, 1])) if coords is not None else ("", "")
        w.writerow([ms.keys[i], names[i] if names is not None else "", int(ms.pids[i]), int(ms.camids[i]), ms.role(i),
                    int(ms.query_rows[i]), int(ms.gallery_rows[i]), x, y])
    return buf.getvalue()


# ---------------------------------------------------------------------------- colours shown
#: Categorical colours (Okabe–Ito first, then a lighter set); identities cycle through them.
PALETTE = [
    (0, 114, 178), (230, 159, 0), (0, 158, 115), (204, 121, 167), (86, 180, 233), (213, 94, 0),
    (240, 228, 66), (0, 0, 0), (153, 153, 153), (117, 112, 179), (166, 118, 29), (102, 166, 30),
    (231, 41, 138), (27, 158, 119), (217, 95, 2), (141, 160, 203), (166, 216, 84), (229, 196, 148),
]
MISSING = (200, 200, 200)
HIT, MISS = (26, 150, 65), (215, 48, 39)
#: Viridis at 9 stops (a continuous scale readable in greyscale); interpolated linearly.
_VIRIDIS = np.array([
    (68, 1, 84), (71, 44, 122), (59, 81, 139), (44, 113, 142), (33, 144, 141),
    (39, 173, 129), (92, 200, 99), (170, 220, 50), (253, 231, 37)], dtype=np.float64)
#: Continuous values are drawn in this many colour steps (few distinct brushes: fast to draw).
CONTINUOUS_STEPS = 16


@dataclass(frozen=True)
class PointColours:
    """What each point is drawn in and the legend that explains it.

    Attributes:
        rgb: ``(N, 3)`` uint8.
        legend: ``(label, (r, g, b))`` entries, in order.
        note: a line under the legend (``""`` when none).
        continuous: ``(lo, hi)`` of a continuous scale, or None.
    """

    rgb: np.ndarray
    legend: list[tuple[str, tuple[int, int, int]]]
    note: str = ""
    continuous: tuple[float, float] | None = None


def viridis(t: np.ndarray) -> np.ndarray:
    """Viridis colours (uint8 ``(N, 3)``) of values in 0..1."""
    t = np.clip(np.asarray(t, dtype=np.float64), 0, 1) * (len(_VIRIDIS) - 1)
    i = np.minimum(t.astype(int), len(_VIRIDIS) - 2)
    f = (t - i)[:, None]
    return np.round(_VIRIDIS[i] * (1 - f) + _VIRIDIS[i + 1] * f).astype(np.uint8)


def point_colours(values: np.ndarray, by: str, names: dict[int, str] | None = None,
                  max_legend: int = 12) -> PointColours:
    """Colours for ``colour_values(..., by)`` (the same in the app and in ``export map``).

    Args:
        names: display names of the categories (camera names, person names), by value.
    """
    v = np.asarray(values)
    n = len(v)
    rgb = np.empty((n, 3), dtype=np.uint8)
    rgb[:] = MISSING
    pal = np.array(PALETTE, dtype=np.uint8)
    if by in ("identity", "camera"):
        cats, inv = np.unique(v, return_inverse=True)
        inv = inv.ravel()
        rgb[:] = pal[inv % len(pal)]
        unknown = v < 0
        rgb[unknown] = MISSING
        what = "identities" if by == "identity" else "cameras"
        legend = []
        for j, c in enumerate(cats[:max_legend]):
            label = (names or {}).get(int(c), f"{'pid' if by == 'identity' else 'camera'} {int(c)}")
            legend.append((label if c >= 0 else "unknown", MISSING if c < 0 else tuple(int(x) for x in pal[j % len(pal)])))
        note = ""
        if len(cats) > max_legend:
            note = f"{len(cats)} {what} ({max_legend} listed); colours repeat every {len(pal)}"
        return PointColours(rgb, legend, note)
    if by == "rank1":
        rgb[v == 1] = HIT
        rgb[v == 0] = MISS
        return PointColours(rgb, [("hit at rank 1", HIT), ("miss at rank 1", MISS),
                                  ("gallery / skipped", MISSING)])
    if by == "flag":
        rgb[v == 1] = MISS
        return PointColours(rgb, [("flagged", MISS), ("not flagged", MISSING)])
    if by in ("ap", "spread"):
        x = v.astype(np.float64)
        ok = np.isfinite(x)
        lo, hi = (0.0, 1.0) if by == "ap" else ((float(x[ok].min()), float(x[ok].max())) if ok.any() else (0.0, 1.0))
        span = hi - lo if hi > lo else 1.0
        t = np.floor((x[ok] - lo) / span * (CONTINUOUS_STEPS - 1) + 0.5) / (CONTINUOUS_STEPS - 1)
        rgb[ok] = viridis(t)
        label = "AP" if by == "ap" else "attention spread (std of final α)"
        legend = [(f"{label} {lo:.2f}", tuple(int(c) for c in viridis(np.array([0.0]))[0])),
                  (f"{hi:.2f}", tuple(int(c) for c in viridis(np.array([1.0]))[0])),
                  ("n/a" if by == "spread" else "gallery (no AP)", MISSING)]
        return PointColours(rgb, legend, "", (lo, hi))
    raise MapError(f"unknown colour {by!r} (choose from {', '.join(COLOR_BY)})")


def point_names(ms: MapSet, dataset=None) -> list[str]:
    """``person007 · cam2`` for each point (the key when the dataset is not at hand)."""
    if dataset is None:
        return list(ms.keys)
    tr = dataset.tracklets
    out = []
    for i in ms.dataset_indices:
        t = tr[int(i)]
        cam = "unknown camera" if t.camid == UNKNOWN_CAMERA else t.camera
        out.append(f"{t.person} · {cam}")
    return out


def category_names(ms: MapSet, by: str, dataset=None) -> dict[int, str]:
    """Display names of identities or cameras (from the dataset), by value."""
    if dataset is None or by not in ("identity", "camera"):
        return {}
    tr = dataset.tracklets
    out: dict[int, str] = {}
    for i in ms.dataset_indices:
        t = tr[int(i)]
        key = int(t.pid if by == "identity" else t.camid)
        if key not in out:
            out[key] = t.person if by == "identity" else t.camera
    return out
