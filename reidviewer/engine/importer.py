"""Import another model's output (features or distances) as an ordinary results file.

A model trained elsewhere (torchreid, fast-reid-style code, a paper's repository) is known here
by what it produced: query and gallery features, or a query x gallery distance matrix, and
optionally per-frame weights. ``results_from_arrays`` matches those rows to the dataset's
tracklets and ranks them exactly as ``compute_results`` ranks a RAN checkpoint's features;
``import_features`` reads the arrays from an ``.npz`` and saves the results into the workspace,
where the viewer, ``evaluate``, metrics, figures and annotations read them unchanged
(``--model imported:NAME``).

Rows are matched to tracklets either

* by identifier: ``q_ids`` / ``g_ids``, the tracklets' keys (``Tracklet.key``: the tracklet
  folder relative to the dataset root, for example ``i-LIDS-VID/sequences/cam1/person001`` or
  MARS's ``bbox_test/0002/0002C1T0001``), in any order; or
* by position: the rows are in the split's standard order, ``Split.query`` / ``Split.gallery``.
  For MARS (protocol ``torchreid``) that is torchreid's order: queries in ``query_IDX`` order,
  gallery = the other test tracklets without junk (pid -1) in ``tracks_test_info`` order. For
  iLIDS-VID and PRID-2011 it is the test persons in ascending order, camera 1 (``cam1`` /
  ``cam_a``) the queries and camera 2 the gallery, as torchreid's ``process_data`` lists them
  (for PRID-2011 torchreid follows the test list of its ``splits_prid2011.json``: when that is
  not ascending, give ids).

Per-frame weights (``weights``, ``weights_index``) are one or K + 1 rows per tracklet, shown in
the attention plot like RAN's refinement iterations.

Every ``.npz`` is read with ``allow_pickle=False``: an object array inside is refused, never
unpickled, so a file from a stranger can hold data but never run code.
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from reidviewer.data.array_files import DAMAGED_FILE_ERRORS, open_npz
from reidviewer.data.dataset import VideoDataset
from reidviewer.errors import ReidViewerError
from reidviewer.workspace import Workspace

#: The arrays an import ``.npz`` may hold.
NPZ_ARRAYS = ("qf", "gf", "distmat", "q_ids", "g_ids", "weights", "weights_index")
#: How imported features are compared: Euclidean (torchreid's default) or cosine (features are
#: L2-normalised first, which ranks by cosine similarity).
METRICS = ("euclidean", "cosine")
#: Name of the built-in "model" whose argument names an import: ``--model imported:NAME``.
IMPORTED = "imported"


class ImportFileError(ReidViewerError):
    """An import ``.npz`` (or the arrays given to ``results_from_arrays``) does not fit the dataset.

    Args:
        path: the file at fault (or a short description of in-memory arrays).
        problem: what is wrong, in plain words.
    """

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


# ---------------------------------------------------------------------- reading the .npz


def load_npz(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of an import ``.npz``, never unpickling anything.

    Raises:
        ImportFileError: missing, not an ``.npz``, unknown array names, or an object array.
    """
    path = Path(path)
    if not path.is_file():
        raise ImportFileError(path, "file does not exist")
    with open(path, "rb") as fh:
        head = fh.read(6)
    if not head.startswith(b"PK"):
        if head.startswith(b"\x93NUMPY"):
            raise ImportFileError(path, "is a single .npy array; save the arrays with np.savez(FILE, qf=..., gf=...)")
        if head.startswith(b"\x80") or head[:1] in (b"(", b"c", b"]", b"}"):
            raise ImportFileError(path, "is a Python pickle, which reidviewer never loads; save plain arrays with np.savez")
        raise ImportFileError(path, "is empty" if not head else "is not an .npz archive (np.savez writes one)")
    out: dict[str, np.ndarray] = {}
    try:
        with open_npz(path) as npz:
            names = list(npz.files)
            unknown = [n for n in names if n not in NPZ_ARRAYS]
            if unknown:
                raise ImportFileError(path, f"unexpected array {unknown[0]!r}; an import file holds only "
                                            f"{', '.join(NPZ_ARRAYS)}")
            for name in names:
                try:
                    out[name] = npz[name]
                except ValueError as exc:
                    if "pickle" in str(exc).lower() or "object" in str(exc).lower():
                        raise ImportFileError(path, f"array {name!r} holds pickled Python objects (an object array), "
                                                    "which reidviewer never unpickles; save numbers, or ids as a "
                                                    "string array (np.array(ids, dtype=str))") from None
                    raise
    except ImportFileError:
        raise
    except DAMAGED_FILE_ERRORS as exc:
        raise ImportFileError(path, f"corrupt or unreadable .npz ({type(exc).__name__}: {exc})") from None
    return out


# ---------------------------------------------------------------------- checking the arrays


def _numeric(src: Path, name: str, arr: Any, ndim: int) -> np.ndarray:
    a = np.asarray(arr)
    if a.dtype.kind == "O":
        raise ImportFileError(src, f"{name} is an object array; give plain numbers")
    if a.dtype.kind not in "fiu":
        raise ImportFileError(src, f"{name} has dtype {a.dtype}, expected numbers (float)")
    if a.ndim != ndim:
        shape = "(rows, dims)" if ndim == 2 else "a flat array"
        raise ImportFileError(src, f"{name} has shape {a.shape}, expected {shape}")
    if a.size == 0:
        raise ImportFileError(src, f"{name} is empty (shape {a.shape})")
    if a.dtype.kind == "f":
        bad = ~np.isfinite(a)
        if bad.any():
            where = np.argwhere(bad)[0]
            raise ImportFileError(src, f"{name} holds {int(bad.sum())} NaN or infinite value(s), the first at "
                                       f"{tuple(int(i) for i in where)}")
    return a


def _normalise_key(text: str) -> str:
    key = text.replace("\\", "/").strip()
    while key.startswith("./"):
        key = key[2:]
    return key.rstrip("/")


def _match_ids(src: Path, name: str, ids: Any, wanted: np.ndarray, dataset: VideoDataset, part: str,
               split: int) -> np.ndarray:
    """For each tracklet of ``wanted`` (the split's order), the row of ``ids`` that names it."""
    a = np.asarray(ids)
    if a.dtype.kind == "O":
        raise ImportFileError(src, f"{name} is an object array; give the keys as a string array")
    if a.dtype.kind not in "US" or a.ndim != 1:
        raise ImportFileError(src, f"{name} must be a 1-D string array of tracklet keys (relative tracklet folders, "
                                   f"e.g. {dataset.tracklets[int(wanted[0])].key!r}), got dtype {a.dtype}, shape {a.shape}")
    keys = [_normalise_key(x.decode("utf-8", "replace") if isinstance(x, bytes) else str(x)) for x in a.tolist()]
    index_of = {t.key: t.index for t in dataset.tracklets}
    row_of: dict[int, int] = {}
    for row, key in enumerate(keys):
        idx = index_of.get(key)
        if idx is None:
            raise ImportFileError(src, f"{name}[{row}] = {key!r} is not a tracklet of {dataset.name} at "
                                       f"{dataset.root} (keys are tracklet folders relative to the root, e.g. "
                                       f"{dataset.tracklets[int(wanted[0])].key!r})")
        if idx in row_of:
            raise ImportFileError(src, f"{name} names tracklet {key!r} twice (rows {row_of[idx]} and {row})")
        row_of[idx] = row
    wanted_set = set(int(i) for i in wanted)
    extra = [k for k in row_of if k not in wanted_set]
    if extra:
        raise ImportFileError(src, f"{name} names {len(extra)} tracklet(s) that are not {part} tracklets of split "
                                   f"{split}, e.g. {dataset.tracklets[extra[0]].key!r}")
    missing = [int(i) for i in wanted if int(i) not in row_of]
    if missing:
        raise ImportFileError(src, f"{name} lacks {len(missing)} of the {len(wanted)} {part} tracklets of split "
                              f"{split}, e.g. {dataset.tracklets[missing[0]].key!r}")
    return np.array([row_of[int(i)] for i in wanted], dtype=np.int64)


def _weights(src: Path, weights: Any, index: Any, tracklets: Sequence[int], dataset: VideoDataset
             ) -> dict[int, np.ndarray]:
    """Per-tracklet ``(R, T)`` weights from a flat ``weights`` (or ``(R, sum T)``) and offsets."""
    if weights is None and index is None:
        return {}
    if weights is None or index is None:
        raise ImportFileError(src, "weights and weights_index go together: give both or neither")
    wa = np.asarray(weights)
    if wa.ndim not in (1, 2):
        raise ImportFileError(src, f"weights has shape {wa.shape}, expected a flat array or (rows, frames)")
    w = _numeric(src, "weights", wa, wa.ndim)
    w = w.astype(np.float32)[None, :] if w.ndim == 1 else w.astype(np.float32)
    off = np.asarray(index)
    if off.dtype.kind not in "iu" or off.ndim != 1:
        raise ImportFileError(src, f"weights_index must be 1-D integer offsets, got dtype {off.dtype}, shape {off.shape}")
    n = len(tracklets)
    if off.shape != (n + 1,):
        raise ImportFileError(src, f"weights_index has {len(off)} entries, expected {n + 1} (one offset per "
                                   f"tracklet, queries then gallery, and the end)")
    off = off.astype(np.int64)
    if off[0] != 0 or off[-1] != w.shape[1] or np.any(np.diff(off) < 0):
        raise ImportFileError(src, f"weights_index must rise from 0 to {w.shape[1]} (the number of weight columns)")
    out: dict[int, np.ndarray] = {}
    for i, idx in enumerate(tracklets):
        a, b = int(off[i]), int(off[i + 1])
        if a == b or idx in out:
            continue
        t = dataset.tracklets[int(idx)]
        if b - a > len(t):
            raise ImportFileError(src, f"weights for tracklet {t.key!r} have {b - a} frames, but it has {len(t)}")
        out[int(idx)] = w[:, a:b]
    return out


def _split_of(dataset: VideoDataset, split: int):
    return dataset.split(split)


def results_from_arrays(
    dataset: VideoDataset,
    split: int = 0,
    *,
    qf: Any = None,
    gf: Any = None,
    distmat: Any = None,
    q_ids: Any = None,
    g_ids: Any = None,
    weights: Any = None,
    weights_index: Any = None,
    name: str = "imported",
    metric: str = "euclidean",
    source: str | Path = "<arrays>",
    annotation_version: str | None = None,
):
    """An ordinary ``Results`` from another model's features or distances.

    Args:
        dataset: the dataset the arrays belong to (``reidviewer.open_dataset(...)``).
        split: the split whose query and gallery the arrays hold.
        qf, gf: ``(Nq, D)`` / ``(Ng, D)`` query and gallery features; or
        distmat: an ``(Nq, Ng)`` query x gallery distance matrix (smaller is closer).
        q_ids, g_ids: string arrays of tracklet keys (``Tracklet.key``) naming the rows; without
            them the rows are in the split's order (``Split.query`` / ``Split.gallery``, torchreid's
            order for MARS, iLIDS-VID and PRID-2011; see the module doc).
        weights, weights_index: optional per-frame weights: ``weights`` is flat (one row per
            tracklet) or ``(R, sum T)`` (R rows, e.g. K + 1 refinement iterations), and
            ``weights_index`` the ``N + 1`` column offsets of the tracklets, queries first then
            gallery, in the row order of the features (or of distmat's rows and columns). A
            tracklet with no columns has no weights; ``T`` may be at most its frame count (weight
            ``i`` belongs to frame ``i``).
        name: the model's name (the results' "checkpoint" label in the viewer and figures).
        metric: ``euclidean`` or ``cosine`` (features only).
        source: what to name in error messages (the ``.npz``).
        annotation_version: the annotation version of ``dataset`` when it is an annotated view.

    Raises:
        ImportFileError: naming ``source`` and what does not fit.
    """
    from reidviewer.engine.results import build_split_results

    src = Path(source)
    if metric not in METRICS:
        raise ImportFileError(src, f"unknown metric {metric!r}; use one of {', '.join(METRICS)}")
    have_f = qf is not None or gf is not None
    if have_f and distmat is not None:
        raise ImportFileError(src, "holds both features (qf, gf) and a distance matrix (distmat); give one of them")
    if not have_f and distmat is None:
        raise ImportFileError(src, "holds neither features (qf and gf) nor a distance matrix (distmat)")
    if have_f and (qf is None or gf is None):
        raise ImportFileError(src, f"has {'qf' if qf is not None else 'gf'} but not {'gf' if qf is not None else 'qf'}; "
                                   "give both query and gallery features")
    if (q_ids is None) != (g_ids is None):
        raise ImportFileError(src, "q_ids and g_ids go together: give both or neither")
    sp = _split_of(dataset, split)
    nq, ng = len(sp.query), len(sp.gallery)
    if have_f:
        q = _numeric(src, "qf", qf, 2)
        g = _numeric(src, "gf", gf, 2)
        if q.shape[1] != g.shape[1]:
            raise ImportFileError(src, f"qf has {q.shape[1]} dimensions but gf has {g.shape[1]}")
        rows_q, rows_g = len(q), len(g)
    else:
        d = _numeric(src, "distmat", distmat, 2)
        rows_q, rows_g = d.shape
    what = "qf" if have_f else "distmat rows"
    whatg = "gf" if have_f else "distmat columns"
    if q_ids is None:
        if rows_q != nq:
            raise ImportFileError(src, f"{what}: {rows_q} query rows, but split {split} of {dataset.name} has {nq} "
                                       "queries (rows without q_ids must follow the split's query order)")
        if rows_g != ng:
            raise ImportFileError(src, f"{whatg}: {rows_g} gallery rows, but split {split} of {dataset.name} has {ng} "
                                       "gallery tracklets (rows without g_ids must follow the split's gallery order)")
        perm_q = perm_g = None
    else:
        if len(np.asarray(q_ids)) != rows_q:
            raise ImportFileError(src, f"q_ids has {len(np.asarray(q_ids))} entries but there are {rows_q} query rows")
        if len(np.asarray(g_ids)) != rows_g:
            raise ImportFileError(src, f"g_ids has {len(np.asarray(g_ids))} entries but there are {rows_g} gallery rows")
        perm_q = _match_ids(src, "q_ids", q_ids, sp.query, dataset, "query", split)
        perm_g = _match_ids(src, "g_ids", g_ids, sp.gallery, dataset, "gallery", split)

    # Weights are given in the file's row order; map them to dataset tracklets first.
    file_q = sp.query if perm_q is None else sp.query[np.argsort(perm_q)]
    file_g = sp.gallery if perm_g is None else sp.gallery[np.argsort(perm_g)]
    attention = _weights(src, weights, weights_index, [int(i) for i in np.concatenate([file_q, file_g])], dataset)

    if have_f:
        q = q.astype(np.float32, copy=False)
        g = g.astype(np.float32, copy=False)
        if perm_q is not None:
            q, g = q[perm_q], g[perm_g]
        if metric == "cosine":
            q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
            g = g / np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-12)
        distances = None
        dims = q.shape[1]
    else:
        distances = d.astype(np.float32, copy=False)
        if perm_q is not None:
            distances = distances[perm_q][:, perm_g]
        q, g = np.zeros((nq, 0), np.float32), np.zeros((ng, 0), np.float32)
        dims = 0
    settings = {"imported": name, "protocol": dataset.protocol, "annotations": annotation_version,
                "checkpoint": name, "metric": metric if have_f else "distances", "dims": int(dims),
                "model": {"head": IMPORTED, "name": name}}
    try:
        return build_split_results(
            dataset, split, q, g, attention=attention or None, distances=distances,
            checkpoint_fingerprint=imported_fingerprint(name), settings=settings,
            annotation_version=annotation_version,
        )
    except ValueError as exc:  # e.g. weights with different numbers of rows per tracklet
        raise ImportFileError(src, f"weights: {exc}" if "attention" in str(exc) else str(exc)) from None


# ---------------------------------------------------------------------- the workspace


def imported_fingerprint(name: str) -> str:
    """The "checkpoint fingerprint" of an imported model: stable for its name."""
    return "imported-" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:16]


def imported_results_path(workspace: Workspace | str | Path, dataset: VideoDataset, split: int, name: str) -> Path:
    """Where ``reidviewer import --name NAME`` keeps the results of ``dataset``'s ``split``."""
    from reidviewer.engine.results import results_path

    key = {"imported": name, "protocol": dataset.protocol, "annotations": None}
    return results_path(workspace, imported_fingerprint(name), dataset.fingerprint, split, key)


def import_features(
    dataset: VideoDataset,
    split: int,
    path: str | Path,
    workspace: Workspace | str | Path,
    name: str | None = None,
    metric: str = "euclidean",
):
    """Read an import ``.npz``, build the results and save them into the workspace.

    Returns:
        ``(results, saved_path)``.
    """
    path = Path(path)
    arrays = load_npz(path)
    name = name or path.stem
    results = results_from_arrays(dataset, split, name=name, metric=metric, source=path, **arrays)
    results.settings["source"] = str(path)
    out = imported_results_path(workspace, dataset, split, name)
    results.save(out)
    return results, out


def load_imported(dataset: VideoDataset, split: int, name: str, workspace, annotation_version: str | None = None):
    """The results ``reidviewer import --name NAME`` saved for ``dataset``'s ``split``.

    When ``dataset`` is an annotated view (``annotation_version`` set), the identities are
    corrected and the imported distances re-ranked (``relabel_results``).

    Raises:
        ImportFileError: nothing was imported under that name for this dataset and split.
    """
    from reidviewer.engine.results import Results, relabel_results

    path = imported_results_path(workspace, dataset, split, name)
    if not path.is_file():
        raise ImportFileError(path, f"no model imported as {name!r} for {dataset.name} at {dataset.root} "
                                    f"(protocol {dataset.protocol}, split {split}); run reidviewer import "
                                    f"--features FILE.npz --name {name} first")
    results = Results.load(path)
    if annotation_version is None:
        return results
    sp = dataset.split(split)
    if not (np.array_equal(sp.query, results.query_indices) and np.array_equal(sp.gallery, results.gallery_indices)):
        raise ImportFileError(path, "the annotations moved tracklets between query, gallery and junk since the "
                                    "import; import the model again")
    return relabel_results(results, dataset, annotation_version)

