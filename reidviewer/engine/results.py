"""The results file: everything one evaluation produced, for the app, the figures and the CLI.

One file per (checkpoint, dataset, split, evaluation settings) in ``workspace.results_dir``.
It holds the query and gallery tracklets (dataset indices, pids, camids, keys), their features,
the attention traces of every tracklet, the distances (the full float32 matrix, or for huge
galleries only each query's nearest ``topk``), the per-query AP, first-true-match rank and the
ranks of every true match, and the metadata that decides whether it is stale. CMC and mAP are
*derived* from the per-query arrays (``reidviewer.engine.metrics.summarize``), so the Metrics
panel, the failure list and a paper figure are computed from the very same numbers.

File format: an ``.npz`` (zip of ``.npy``) holding plain numeric and fixed-width string arrays
and one ``meta`` array (UTF-8 JSON bytes). It is always read with ``allow_pickle=False``: a
results file from a stranger can hold data, never code.
"""
from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from reidviewer.data.array_files import open_npz
from reidviewer import __version__
from reidviewer.data.tracklet import UNKNOWN_CAMERA
from reidviewer.engine.metrics import DEFAULT_CHUNK, JUNK_PID, cmc_summary, rank_queries, summarize
from reidviewer.errors import ReidViewerError
from reidviewer.workspace import Workspace, atomic_write_with

#: The ``format`` tag in every results file's metadata; other files are refused.
RESULTS_FORMAT = "reidviewer-results"
#: Version of the layout below; a newer file than this code understands is refused.
RESULTS_VERSION = 1
#: Above this many query x gallery pairs only each query's nearest ``DEFAULT_TOPK`` are kept
#: (50 M float32 = 200 MB; MARS, 1,980 x 9,330 = 18.5 M, keeps its full matrix).
FULL_MATRIX_LIMIT = 50_000_000
#: Nearest gallery items kept per query when the full matrix is not stored.
DEFAULT_TOPK = 100


class ResultsError(ReidViewerError):
    """A results file is missing, corrupt, unsafe, or not a reidviewer results file.

    Args:
        path: the file at fault.
        problem: what is wrong, in plain words.
    """

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


# Arrays of a results file: name -> (numpy kind codes allowed, required).
_ARRAYS: dict[str, tuple[str, bool]] = {
    "query_indices": ("iu", True),
    "gallery_indices": ("iu", True),
    "query_pids": ("iu", True),
    "gallery_pids": ("iu", True),
    "query_camids": ("iu", True),
    "gallery_camids": ("iu", True),
    "query_keys": ("U", True),
    "gallery_keys": ("U", True),
    "query_features": ("f", True),
    "gallery_features": ("f", True),
    "ap": ("f", True),
    "first_rank": ("iu", True),
    "valid": ("b", True),
    "num_valid_gallery": ("iu", True),
    "match_offsets": ("iu", True),
    "match_rows": ("iu", True),
    "match_ranks": ("iu", True),
    "match_distances": ("f", True),
    "distmat": ("f", False),
    "topk_rows": ("iu", False),
    "topk_distances": ("f", False),
    "attention_tracklets": ("iu", True),
    "attention_offsets": ("iu", True),
    "attention_values": ("f", True),
}

# Metadata fields stored in the ``meta`` JSON (besides format/version).
_META_FIELDS = (
    "eval_rule",
    "max_rank",
    "checkpoint_fingerprint",
    "dataset_name",
    "dataset_root",
    "dataset_fingerprint",
    "protocol",
    "split",
    "settings",
    "annotation_version",
    "created",
    "package_version",
)


def _empty_i() -> np.ndarray:
    return np.zeros(0, dtype=np.int64)


@dataclass(eq=False)
class Results:
    """One evaluation: query/gallery tracklets, features, attention, distances and ranks.

    Rows: a *query row* is ``0..Nq-1`` and a *gallery row* ``0..Ng-1``, positions in the query and
    gallery arrays; ``query_indices[row]`` / ``gallery_indices[row]`` are the tracklets' indices
    in the dataset. Ranks are 1-based positions among the gallery items the evaluation rule keeps
    (same pid and camid removed; pid -1 too under ``mars_official``), ties broken by gallery row.

    Attributes:
        query_indices, gallery_indices: dataset tracklet indices (int64).
        query_pids, gallery_pids, query_camids, gallery_camids: labels (int64).
        query_keys, gallery_keys: the tracklets' stable keys (``Tracklet.key``).
        query_features, gallery_features: ``(Nq, D)`` / ``(Ng, D)`` float32.
        ap: per-query AP (float64, NaN for skipped queries).
        first_rank: per-query rank of the first true match (0 for skipped queries).
        valid: per-query flag, False when no true match is left (skipped by every metric).
        num_valid_gallery: gallery items the rule keeps for each query.
        match_offsets, match_rows, match_ranks, match_distances: every true match of query
            ``r`` is ``match_rows[match_offsets[r]:match_offsets[r + 1]]``, best first.
        distmat: ``(Nq, Ng)`` float32 Euclidean distances, or None when only top-k is kept.
        topk_rows, topk_distances: ``(Nq, k)`` nearest valid gallery rows (-1 padded) and their
            distances (inf padded), or None when the full matrix is kept.
        attention_tracklets: sorted dataset indices of the tracklets with attention traces.
        attention_offsets: ``(n + 1,)`` column offsets into ``attention_values``.
        attention_values: ``(K + 1, sum T)`` float32: iteration ``i``'s per-frame attention.
        eval_rule: ``market1501`` or ``mars_official``.
        max_rank: CMC length asked for.
        checkpoint_fingerprint, dataset_name, dataset_root, dataset_fingerprint, protocol, split:
            what was evaluated.
        settings: preprocessing and evaluation settings (JSON-serialisable).
        annotation_version: version of the annotations applied, None when none.
        created: ISO-8601 UTC time of creation.
        package_version: reidviewer version that wrote it.
    """

    query_indices: np.ndarray
    gallery_indices: np.ndarray
    query_pids: np.ndarray
    gallery_pids: np.ndarray
    query_camids: np.ndarray
    gallery_camids: np.ndarray
    query_keys: list[str]
    gallery_keys: list[str]
    query_features: np.ndarray
    gallery_features: np.ndarray
    ap: np.ndarray
    first_rank: np.ndarray
    valid: np.ndarray
    num_valid_gallery: np.ndarray
    match_offsets: np.ndarray
    match_rows: np.ndarray
    match_ranks: np.ndarray
    match_distances: np.ndarray
    distmat: np.ndarray | None = None
    topk_rows: np.ndarray | None = None
    topk_distances: np.ndarray | None = None
    attention_tracklets: np.ndarray = field(default_factory=_empty_i)
    attention_offsets: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.int64))
    attention_values: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    eval_rule: str = "market1501"
    max_rank: int = 50
    checkpoint_fingerprint: str = ""
    dataset_name: str = ""
    dataset_root: str = ""
    dataset_fingerprint: str = ""
    protocol: str = ""
    split: int = 0
    settings: dict[str, Any] = field(default_factory=dict)
    annotation_version: str | int | None = None
    created: str = ""
    package_version: str = __version__

    # ------------------------------------------------------------------ sizes and metrics
    @property
    def num_queries(self) -> int:
        """Number of query tracklets."""
        return len(self.query_pids)

    @property
    def num_gallery(self) -> int:
        """Number of gallery tracklets."""
        return len(self.gallery_pids)

    def _per_query(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "first_rank": self.first_rank,
            "ap": self.ap,
            "num_gallery": self.num_gallery,
        }

    @property
    def cmc(self) -> np.ndarray:
        """CMC curve (float32, length ``min(max_rank, Ng)``), derived from ``first_rank``."""
        return summarize(self._per_query(), self.max_rank)[0]

    @property
    def mAP(self) -> float:  # noqa: N802 - the metric's usual name
        """Mean AP over the valid queries, derived from ``ap``."""
        return summarize(self._per_query(), self.max_rank)[1]

    @property
    def inp(self) -> np.ndarray:
        """Per-query inverse negative penalty (Ye et al. 2021): the number of true matches over
        the rank of the hardest (last) one; NaN for skipped queries. 1 when every true match
        precedes every false one."""
        counts = np.diff(self.match_offsets)
        out = np.full(self.num_queries, np.nan)
        last = self.match_offsets[1:][counts > 0] - 1
        out[counts > 0] = counts[counts > 0] / self.match_ranks[last]
        return out

    def metrics(self) -> dict[str, Any]:
        """Headline metrics: ``rank1/rank5/rank10/rank20``, ``mAP`` and ``mINP`` as fractions,
        ``cmc`` as a list, and the counts ``queries``, ``valid_queries``, ``skipped_queries``."""
        cmc, mAP = summarize(self._per_query(), self.max_rank)
        n_valid = int(np.count_nonzero(self.valid))
        return {
            **cmc_summary(cmc),
            "mAP": mAP,
            "mINP": float(np.nanmean(self.inp)) if n_valid else float("nan"),
            "cmc": [float(x) for x in cmc],
            "queries": self.num_queries,
            "valid_queries": n_valid,
            "skipped_queries": self.num_queries - n_valid,
        }

    def failures(self) -> np.ndarray:
        """Query rows whose rank-1 retrieval is wrong, worst AP first.

        Skipped queries (no true match in the gallery) are not failures and are left out.
        Ties in AP are ordered by first-true-match rank (deeper first), then by row.
        """
        rows = np.flatnonzero(self.valid & (self.first_rank != 1))
        order = np.lexsort((rows, -self.first_rank[rows], self.ap[rows]))
        return rows[order]

    # ------------------------------------------------------------------ one query
    def _check_query(self, query_row: int) -> int:
        row = int(query_row)
        if not 0 <= row < self.num_queries:
            raise IndexError(f"query row {query_row} out of range (0..{self.num_queries - 1})")
        return row

    def removed_mask(self, query_row: int) -> np.ndarray:
        """Gallery rows the evaluation rule removes for this query (bool, length Ng)."""
        row = self._check_query(query_row)
        same = self.gallery_pids == self.query_pids[row]
        removed = same & (self.gallery_camids == self.query_camids[row]) & (self.gallery_camids != UNKNOWN_CAMERA)
        if self.eval_rule == "mars_official":
            removed |= self.gallery_pids == JUNK_PID
        return removed

    def ranked(self, query_row: int, k: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The ranked gallery of one query, as the metrics see it.

        Args:
            query_row: the query's row.
            k: how many to return; None for all (all stored ones in top-k mode, where at most
                ``topk_rows.shape[1]`` are available).

        Returns:
            ``(gallery_rows, distances, is_match)``: int64 rows in rank order (position ``i`` is
            rank ``i + 1``), their float32 distances, and whether each is a true match.
        """
        row = self._check_query(query_row)
        if self.distmat is not None:
            cols = np.flatnonzero(~self.removed_mask(row))
            d = self.distmat[row, cols]
            if k is not None and k < len(cols):
                # The k-th smallest distance bounds the answer; ties at the boundary are then
                # ordered by row like everywhere else.
                bound = np.partition(d, k - 1)[k - 1]
                sel = np.flatnonzero(d <= bound)
                sel = sel[np.argsort(d[sel], kind="stable")][:k]
            else:
                sel = np.argsort(d, kind="stable")
            rows, dist = cols[sel], d[sel]
        else:
            assert self.topk_rows is not None and self.topk_distances is not None
            n = int(np.count_nonzero(self.topk_rows[row] >= 0))
            n = n if k is None else min(n, k)
            rows, dist = self.topk_rows[row, :n], self.topk_distances[row, :n]
        is_match = self.gallery_pids[rows] == self.query_pids[row]
        return rows.astype(np.int64), dist.astype(np.float32), is_match

    def true_matches(self, query_row: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every true match of one query: ``(gallery_rows, ranks, distances)``, best first."""
        row = self._check_query(query_row)
        a, b = self.match_offsets[row], self.match_offsets[row + 1]
        return self.match_rows[a:b], self.match_ranks[a:b], self.match_distances[a:b]

    def true_match_ranks(self, query_row: int) -> np.ndarray:
        """1-based ranks of all true matches of one query (empty for a skipped query)."""
        return self.true_matches(query_row)[1]

    # ------------------------------------------------------------------ attention
    @property
    def attention_iterations(self) -> int:
        """K + 1, the number of attention traces per tracklet (0 when none were stored)."""
        return int(self.attention_values.shape[0])

    def has_attention(self, tracklet_index: int) -> bool:
        """Whether attention traces are stored for this dataset tracklet."""
        i = np.searchsorted(self.attention_tracklets, tracklet_index)
        return bool(i < len(self.attention_tracklets) and self.attention_tracklets[i] == tracklet_index)

    def attention(self, tracklet_index: int) -> np.ndarray:
        """Attention of every refinement iteration for one tracklet, shape ``(K + 1, T)``.

        Args:
            tracklet_index: the tracklet's index in the dataset (not a query/gallery row).

        Raises:
            KeyError: no traces for this tracklet.
        """
        if not self.has_attention(tracklet_index):
            raise KeyError(f"no attention traces stored for tracklet {tracklet_index}")
        i = int(np.searchsorted(self.attention_tracklets, tracklet_index))
        a, b = self.attention_offsets[i], self.attention_offsets[i + 1]
        return self.attention_values[:, a:b]

    # ------------------------------------------------------------------ files
    def _meta(self) -> dict[str, Any]:
        meta: dict[str, Any] = {"format": RESULTS_FORMAT, "version": RESULTS_VERSION}
        meta.update({name: getattr(self, name) for name in _META_FIELDS})
        # For readers outside reidviewer; ignored on load (recomputed from the arrays).
        meta["metrics"] = self.metrics() if self.valid.any() and self.problem() is None else None
        return meta

    def save(self, path: str | Path) -> Path:
        """Write the results to ``path`` atomically (a crash leaves the old file or none)."""
        path = Path(path)
        arrays: dict[str, np.ndarray] = {}
        for name in _ARRAYS:
            value = getattr(self, name)
            if value is None:
                continue
            if name.endswith("_keys"):
                value = np.array(list(value), dtype=str) if len(value) else np.zeros(0, dtype="<U1")
            arrays[name] = np.asarray(value)
        meta = json.dumps(self._meta(), sort_keys=True).encode("utf-8")
        arrays["meta"] = np.frombuffer(meta, dtype=np.uint8)

        def write(tmp: Path) -> None:
            # A file object, not a name: np.savez would append ".npz" to a name lacking it.
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)

        atomic_write_with(path, write)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Results:
        """Read a results file written by ``save``, never unpickling anything.

        Raises:
            ResultsError: the file is missing, truncated, not a results file, holds pickled
                objects, or its arrays do not fit together.
        """
        path = Path(path)
        if not path.is_file():
            raise ResultsError(path, "results file does not exist")
        try:
            with open(path, "rb") as fh:
                head = fh.read(6)
        except OSError as exc:
            raise ResultsError(path, f"cannot read the results file ({exc.strerror or exc})") from None
        # Look before numpy does, to say what the file is; np.load(allow_pickle=False) would
        # refuse a pickle anyway, but call any non-archive "pickled data".
        if not head.startswith(b"PK"):
            if head.startswith(b"\x80") or head[:1] in (b"(", b"c", b"]", b"}"):
                raise ResultsError(path, "is a Python pickle, which reidviewer never loads")
            if head.startswith(b"\x93NUMPY"):
                raise ResultsError(path, "not a reidviewer results file (a bare .npy array)")
            what = "an empty file" if not head else "not an .npz archive"
            raise ResultsError(path, f"corrupt or not a reidviewer results file ({what})")
        try:
            with open_npz(path) as npz:
                names = set(npz.files)
                if "meta" not in names:
                    raise ResultsError(path, "not a reidviewer results file (no 'meta' entry)")
                meta = json.loads(bytes(npz["meta"].astype(np.uint8)).decode("utf-8"))
                if not isinstance(meta, dict) or meta.get("format") != RESULTS_FORMAT:
                    raise ResultsError(path, "not a reidviewer results file (wrong format tag)")
                version = meta.get("version")
                if not isinstance(version, int) or version > RESULTS_VERSION:
                    raise ResultsError(
                        path, f"results format version {version!r} is newer than this reidviewer reads ({RESULTS_VERSION})"
                    )
                arrays: dict[str, Any] = {}
                for name, (kinds, required) in _ARRAYS.items():
                    if name not in names:
                        if required:
                            raise ResultsError(path, f"results file lacks the array {name!r}")
                        arrays[name] = None
                        continue
                    arr = npz[name]
                    if arr.dtype.kind not in kinds:
                        raise ResultsError(path, f"array {name!r} has dtype {arr.dtype}, expected kind {kinds!r}")
                    arrays[name] = arr
        except ResultsError:
            raise
        except ValueError as exc:
            if "pickle" in str(exc).lower():
                raise ResultsError(path, "holds pickled Python objects, which reidviewer never loads") from None
            raise ResultsError(path, f"corrupt or unreadable results file ({exc})") from None
        except Exception as exc:  # zipfile.BadZipFile, OSError, EOFError, KeyError, ...
            raise ResultsError(path, f"corrupt or unreadable results file ({type(exc).__name__}: {exc})") from None

        kw: dict[str, Any] = {}
        for name, arr in arrays.items():
            if arr is None:
                kw[name] = None
            elif name.endswith("_keys"):
                kw[name] = [str(x) for x in arr]
            elif arr.dtype.kind in "iu":
                kw[name] = arr.astype(np.int64)
            else:
                kw[name] = arr
        for name in _META_FIELDS:
            if name in meta:
                kw[name] = meta[name]
        try:
            results = cls(**kw)
        except TypeError as exc:
            raise ResultsError(path, f"malformed metadata ({exc})") from None
        problem = results.problem()
        if problem:
            raise ResultsError(path, problem)
        return results

    def problem(self) -> str | None:
        """Why the arrays do not fit together, or None when they do (checked on load)."""
        for name, kind in (("max_rank", int), ("split", int), ("settings", dict), ("eval_rule", str),
                           ("checkpoint_fingerprint", str), ("dataset_fingerprint", str)):
            if not isinstance(getattr(self, name), kind):
                return f"metadata field {name!r} is not a {kind.__name__}"
        if self.annotation_version is not None and not isinstance(self.annotation_version, (str, int)):
            return "metadata field 'annotation_version' is not a string or integer"
        nq, ng = len(self.query_pids), len(self.gallery_pids)
        for name in ("query_indices", "query_camids", "ap", "first_rank", "valid", "num_valid_gallery"):
            if np.shape(getattr(self, name)) != (nq,):
                return f"{name} has shape {np.shape(getattr(self, name))}, expected ({nq},)"
        for name in ("gallery_indices", "gallery_camids"):
            if np.shape(getattr(self, name)) != (ng,):
                return f"{name} has shape {np.shape(getattr(self, name))}, expected ({ng},)"
        if len(self.query_keys) != nq or len(self.gallery_keys) != ng:
            return "the number of tracklet keys does not match the number of tracklets"
        qf, gf = self.query_features, self.gallery_features
        if qf.ndim != 2 or gf.ndim != 2 or len(qf) != nq or len(gf) != ng or qf.shape[1] != gf.shape[1]:
            return f"feature shapes {qf.shape} / {gf.shape} do not fit {nq} queries and {ng} gallery items"
        off = self.match_offsets
        m = len(self.match_rows)
        if off.shape != (nq + 1,) or off[0] != 0 or off[-1] != m or np.any(np.diff(off) < 0):
            return "match_offsets are inconsistent with match_rows"
        if len(self.match_ranks) != m or len(self.match_distances) != m:
            return "match_rows, match_ranks and match_distances differ in length"
        if m and (self.match_rows.min() < 0 or self.match_rows.max() >= ng):
            return "match_rows point outside the gallery"
        if not np.array_equal(self.valid, np.diff(off) > 0):
            return "the valid flags disagree with the stored true matches"
        if self.distmat is not None:
            if self.distmat.shape != (nq, ng):
                return f"distmat has shape {self.distmat.shape}, expected {(nq, ng)}"
        else:
            if self.topk_rows is None or self.topk_distances is None:
                return "neither a distance matrix nor top-k lists are stored"
            if self.topk_rows.ndim != 2 or len(self.topk_rows) != nq or self.topk_distances.shape != self.topk_rows.shape:
                return "top-k arrays do not fit the queries"
            if self.topk_rows.size and (self.topk_rows.max() >= ng or self.topk_rows.min() < -1):
                return "top-k rows point outside the gallery"
        at, ao, av = self.attention_tracklets, self.attention_offsets, self.attention_values
        if av.ndim != 2 or ao.shape != (len(at) + 1,) or ao[0] != 0 or ao[-1] != av.shape[1] or np.any(np.diff(ao) < 0):
            return "attention offsets are inconsistent with the attention values"
        if len(at) > 1 and np.any(np.diff(at) <= 0):
            return "attention tracklet indices are not sorted and unique"
        if self.eval_rule not in ("market1501", "mars_official"):
            return f"unknown evaluation rule {self.eval_rule!r}"
        return None


# ---------------------------------------------------------------------- building


def pack_attention(attention: Mapping[int, Any] | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pack per-tracklet ``(K + 1, T)`` traces into ``(tracklets, offsets, values)``.

    Args:
        attention: dataset tracklet index -> array of shape ``(K + 1, T)``; None or empty for no
            traces.

    Raises:
        ValueError: traces with different K + 1, or not 2-D.
    """
    if not attention:
        return _empty_i(), np.zeros(1, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
    ids = np.array(sorted(int(i) for i in attention), dtype=np.int64)
    parts = [np.asarray(attention[int(i)], dtype=np.float32) for i in ids]
    iters = {p.shape[0] if p.ndim == 2 else -1 for p in parts}
    if len(iters) != 1 or -1 in iters:
        raise ValueError(f"attention traces must all be 2-D (K+1, T) with the same K+1; got rows {sorted(iters)}")
    offsets = np.zeros(len(ids) + 1, dtype=np.int64)
    np.cumsum([p.shape[1] for p in parts], out=offsets[1:])
    return ids, offsets, np.concatenate(parts, axis=1)


def euclidean_rows(query_features: np.ndarray, gallery_features: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Euclidean distances of queries ``start:stop`` to every gallery item, float32.

    ``|q|^2 + |g|^2 - 2 q.g`` in float64 (float32 would lose the small distances of near
    duplicates to cancellation), clipped at 0, square-rooted, then stored as float32.
    torchreid's "euclidean" is the squared distance; both rank the gallery the same way, up to
    float32 rounding, and the metrics here are always computed from these stored float32 values.
    """
    q = np.asarray(query_features[start:stop], dtype=np.float64)
    g = np.asarray(gallery_features, dtype=np.float64)
    d2 = q @ g.T
    d2 *= -2.0
    d2 += np.einsum("ij,ij->i", q, q)[:, None]
    d2 += np.einsum("ij,ij->i", g, g)[None, :]
    np.maximum(d2, 0.0, out=d2)
    np.sqrt(d2, out=d2)
    return d2.astype(np.float32)


def build_split_results(dataset, split: int, query_features: Any, gallery_features: Any, *,
                        checkpoint_fingerprint: str, settings: Mapping[str, Any],
                        attention: Mapping[int, Any] | None = None, distances: Any = None,
                        annotation_version: str | int | None = None) -> Results:
    """``build_results`` for split ``split`` of ``dataset``: identities, cameras, keys and the
    dataset's identity filled in from its tracklets (features in ``split.query``/``gallery`` order)."""
    sp = dataset.split(split)
    tr = dataset.tracklets
    return build_results(
        query_features, gallery_features,
        [tr[i].pid for i in sp.query], [tr[i].pid for i in sp.gallery],
        [tr[i].camid for i in sp.query], [tr[i].camid for i in sp.gallery],
        query_indices=sp.query, gallery_indices=sp.gallery,
        query_keys=[tr[i].key for i in sp.query], gallery_keys=[tr[i].key for i in sp.gallery],
        attention=attention, distances=distances, eval_rule=dataset.eval_rule,
        checkpoint_fingerprint=checkpoint_fingerprint, dataset_name=dataset.name, dataset_root=dataset.root,
        dataset_fingerprint=dataset.fingerprint, protocol=dataset.protocol, split=split, settings=settings,
        annotation_version=annotation_version,
    )


def build_results(
    query_features: Any,
    gallery_features: Any,
    query_pids: Any,
    gallery_pids: Any,
    query_camids: Any,
    gallery_camids: Any,
    *,
    query_indices: Any = None,
    gallery_indices: Any = None,
    query_keys: Sequence[str] | None = None,
    gallery_keys: Sequence[str] | None = None,
    attention: Mapping[int, Any] | None = None,
    distances: Any = None,
    eval_rule: str = "market1501",
    max_rank: int = 50,
    topk: int = DEFAULT_TOPK,
    full_matrix_limit: int = FULL_MATRIX_LIMIT,
    chunk: int = DEFAULT_CHUNK,
    checkpoint_fingerprint: str = "",
    dataset_name: str = "",
    dataset_root: str | Path = "",
    dataset_fingerprint: str = "",
    protocol: str = "",
    split: int = 0,
    settings: Mapping[str, Any] | None = None,
    annotation_version: str | int | None = None,
) -> Results:
    """Distances, ranks and metrics from extracted features: the evaluation engine's last step.

    Args:
        query_features, gallery_features: ``(Nq, D)`` / ``(Ng, D)`` arrays (numpy, or CPU
            tensors); stored as float32.
        query_pids, gallery_pids, query_camids, gallery_camids: integer labels.
        query_indices, gallery_indices: dataset tracklet indices (default ``0..N-1``).
        query_keys, gallery_keys: tracklet keys (default: empty strings).
        attention: dataset tracklet index -> ``(K + 1, T)`` attention traces, for every query and
            gallery tracklet (None when the model has no attention).
        distances: an ``(Nq, Ng)`` query x gallery distance matrix (smaller is closer) to rank
            by instead of the Euclidean distances of the features; the features may then be
            ``(N, 0)`` (a model known only by its distances, see ``engine.importer``).
        eval_rule: ``market1501`` (torchreid) or ``mars_official``.
        max_rank: CMC length.
        topk: nearest gallery items kept per query when the full matrix is not stored.
        full_matrix_limit: store the full ``Nq x Ng`` matrix only up to this many entries.
        chunk: query rows per chunk of distance computation and ranking.
        checkpoint_fingerprint .. annotation_version: metadata (see ``Results``).

    Returns:
        The filled ``Results``; the ranks are computed from the stored float32 distances.
    """
    qf = np.ascontiguousarray(np.asarray(query_features, dtype=np.float32))
    gf = np.ascontiguousarray(np.asarray(gallery_features, dtype=np.float32))
    if qf.ndim != 2 or gf.ndim != 2 or qf.shape[1] != gf.shape[1]:
        raise ValueError(f"features must be (N, D) with the same D, got {qf.shape} and {gf.shape}")
    if not (np.isfinite(qf).all() and np.isfinite(gf).all()):
        raise ValueError("features hold NaN or infinite values (diverged model?)")
    nq, ng = len(qf), len(gf)

    full = nq * ng <= full_matrix_limit
    distmat: np.ndarray | None = None
    if distances is not None:
        given = np.asarray(distances)
        if given.shape != (nq, ng):
            raise ValueError(f"distance matrix has shape {given.shape}, expected {(nq, ng)}")
        if full:
            distmat = np.ascontiguousarray(given, dtype=np.float32)
            dm = distmat
            pq = rank_queries(lambda a, b: dm[a:b], query_pids, gallery_pids, query_camids, gallery_camids,
                              rule=eval_rule, chunk=chunk)
        else:
            pq = rank_queries(lambda a, b: np.asarray(given[a:b], dtype=np.float32), query_pids, gallery_pids,
                              query_camids, gallery_camids, rule=eval_rule, chunk=chunk, topk=topk)
    elif full:
        distmat = np.empty((nq, ng), dtype=np.float32)
        for a in range(0, nq, chunk):
            b = min(nq, a + chunk)
            distmat[a:b] = euclidean_rows(qf, gf, a, b)
        dm = distmat
        pq = rank_queries(lambda a, b: dm[a:b], query_pids, gallery_pids, query_camids, gallery_camids,
                          rule=eval_rule, chunk=chunk)
    else:
        pq = rank_queries(lambda a, b: euclidean_rows(qf, gf, a, b), query_pids, gallery_pids,
                          query_camids, gallery_camids, rule=eval_rule, chunk=chunk, topk=topk)

    def ints(values: Any, n: int) -> np.ndarray:
        return np.arange(n, dtype=np.int64) if values is None else np.asarray(values, dtype=np.int64)

    att_ids, att_off, att_val = pack_attention(attention)
    results = Results(
        query_indices=ints(query_indices, nq),
        gallery_indices=ints(gallery_indices, ng),
        query_pids=np.asarray(query_pids, dtype=np.int64),
        gallery_pids=np.asarray(gallery_pids, dtype=np.int64),
        query_camids=np.asarray(query_camids, dtype=np.int64),
        gallery_camids=np.asarray(gallery_camids, dtype=np.int64),
        query_keys=[str(k) for k in query_keys] if query_keys is not None else [""] * nq,
        gallery_keys=[str(k) for k in gallery_keys] if gallery_keys is not None else [""] * ng,
        query_features=qf,
        gallery_features=gf,
        ap=pq["ap"],
        first_rank=pq["first_rank"],
        valid=pq["valid"],
        num_valid_gallery=pq["num_valid_gallery"],
        match_offsets=pq["match_offsets"],
        match_rows=pq["match_rows"],
        match_ranks=pq["match_ranks"],
        match_distances=pq["match_distances"],
        distmat=distmat,
        topk_rows=None if full else pq["topk_rows"],
        topk_distances=None if full else pq["topk_distances"],
        attention_tracklets=att_ids,
        attention_offsets=att_off,
        attention_values=att_val,
        eval_rule=eval_rule,
        max_rank=int(max_rank),
        checkpoint_fingerprint=checkpoint_fingerprint,
        dataset_name=dataset_name,
        dataset_root=str(dataset_root),
        dataset_fingerprint=dataset_fingerprint,
        protocol=protocol,
        split=int(split),
        settings=dict(settings or {}),
        annotation_version=annotation_version,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        package_version=__version__,
    )
    problem = results.problem()
    if problem:
        raise ValueError(problem)
    return results


# ---------------------------------------------------------------------- where and whether


def _slug(text: str, n: int) -> str:
    """A file-name-safe prefix of a fingerprint (hashing it when it has odd characters)."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "", text)
    if not safe or safe != text:
        safe = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return safe[:n]


def settings_hash(settings_key: str | Mapping[str, Any]) -> str:
    """A short stable hash of evaluation settings (a dict is hashed as canonical JSON)."""
    text = settings_key if isinstance(settings_key, str) else json.dumps(settings_key, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def results_path(
    workspace: Workspace | str | Path,
    checkpoint_fp: str,
    dataset_fp: str,
    split: int,
    settings_key: str | Mapping[str, Any],
) -> Path:
    """Where the results of (checkpoint, dataset, split, settings) live in the workspace.

    Args:
        workspace: a ``Workspace`` or its folder.
        checkpoint_fp, dataset_fp: fingerprints of the checkpoint and the dataset.
        split: split number.
        settings_key: the evaluation settings (string or JSON-serialisable dict).
    """
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    name = f"{_slug(dataset_fp, 16)}_{_slug(checkpoint_fp, 16)}_split{int(split)}_{settings_hash(settings_key)}.npz"
    return ws.results_dir / name


def is_stale(
    results: Results, checkpoint_fp: str, dataset_fp: str, annotation_version: str | int | None = None
) -> bool:
    """True when ``results`` was computed from another checkpoint, dataset or annotation version."""
    return (
        results.checkpoint_fingerprint != checkpoint_fp
        or results.dataset_fingerprint != dataset_fp
        or results.annotation_version != annotation_version
    )


def relabel_results(results: Results, view: Any, annotation_version: str | None) -> Results:
    """Results with the identities of an annotated view, re-ranked from the stored features.

    Only the pids change (rows, features and attention are kept), so this is what evaluating
    the view gives when its frames are the dataset's (``exclude_flagged_frames=False``) and no
    tracklet left a split -- without running the network again. The app uses it to show a
    merge or relabel at once.

    Args:
        results: a ``reidviewer.engine.results.Results``.
        view: the annotated dataset (``apply_annotations``) the results' rows index into.
        annotation_version: the store version to record.
    """
    tr = view.tracklets
    attention = {int(i): results.attention(int(i)) for i in results.attention_tracklets}
    # A model imported as a distance matrix has no features to re-rank from: keep its distances.
    distances = results.distmat if results.query_features.shape[1] == 0 else None
    if distances is None and results.query_features.shape[1] == 0:
        raise ResultsError(results.dataset_root or "results", "an imported top-k-only distance list cannot be "
                           "re-ranked with corrected identities; import the features or a smaller distance matrix")
    return build_results(
        results.query_features,
        results.gallery_features,
        [tr[int(i)].pid for i in results.query_indices],
        [tr[int(i)].pid for i in results.gallery_indices],
        results.query_camids,
        results.gallery_camids,
        query_indices=results.query_indices,
        gallery_indices=results.gallery_indices,
        query_keys=results.query_keys,
        gallery_keys=results.gallery_keys,
        attention=attention or None,
        distances=distances,
        eval_rule=results.eval_rule,
        max_rank=results.max_rank,
        checkpoint_fingerprint=results.checkpoint_fingerprint,
        dataset_name=results.dataset_name,
        dataset_root=results.dataset_root,
        dataset_fingerprint=results.dataset_fingerprint,
        protocol=results.protocol,
        split=results.split,
        settings={**results.settings, "annotations": annotation_version},
        annotation_version=annotation_version,
    )
