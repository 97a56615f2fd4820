"""Evaluating a model plugin (``--model NAME[:ARG]``) exactly like a checkpoint.

``compute_results`` accepts, where it takes a checkpoint path, a *model reference*
``"model:NAME[:ARG]"`` (``model_ref("pixels")``); the CLI's ``--model`` and the app's open
request pass one. Two kinds of model are referred to this way:

* a plugin (``reidviewer.model.plugins``): the tracklets' frames are read with
  ``reidviewer.data.frames.read_frame`` (the first ``max_frames``, or the last for the gallery
  with ``gallery_tail``, like a checkpoint), embedded by the plugin, and ranked by
  ``build_split_results``; the results file is cached in the workspace under the plugin's name,
  argument and ``cache_key``;
* ``imported:NAME``: the results ``reidviewer import --name NAME`` saved for the dataset and
  split (``reidviewer.engine.importer``).
"""
from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any

import numpy as np

from reidviewer.data.dataset import VideoDataset
from reidviewer.errors import ReidViewerError
from reidviewer.progress import ProgressFn, check_cancelled

#: How a model reference is told from a checkpoint path.
MODEL_PREFIX = "model:"


def model_ref(spec: str) -> str:
    """The reference ``compute_results`` takes for ``--model spec``."""
    return spec if str(spec).startswith(MODEL_PREFIX) else MODEL_PREFIX + str(spec)


def model_spec_of(checkpoint: Any) -> str | None:
    """``NAME[:ARG]`` when ``checkpoint`` is a model reference, else None (a checkpoint path)."""
    if not isinstance(checkpoint, (str, Path)):
        return None
    text = str(checkpoint)
    if not text.startswith(MODEL_PREFIX) or Path(text).is_file():
        return None
    return text[len(MODEL_PREFIX):]


def model_fingerprint(name: str, arg: str | None, cache_key: str) -> str:
    """The "checkpoint fingerprint" of a plugin model: its name, argument and cache key."""
    text = f"{name}\0{arg or ''}\0{cache_key}"
    return "plugin-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _noop(*_a, **_k) -> None:
    return None


def read_clip(tracklet, max_frames: int, tail: bool) -> np.ndarray:
    """The test clip of a tracklet as uint8 ``(T, H, W, 3)`` RGB (frames resized to the first's size)."""
    import cv2

    from reidviewer.data.frames import read_frame

    n = len(tracklet)
    m = min(n, max_frames)
    sel = range(n - m, n) if tail else range(m)
    frames = [read_frame(tracklet.frame_path(i)) for i in sel]
    h, w = frames[0].shape[:2]
    frames = [f if f.shape[:2] == (h, w) else cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in frames]
    return np.stack(frames)


def _check_output(name: str, key: str, out: Any, length: int) -> tuple[np.ndarray, np.ndarray | None]:
    from reidviewer.model.plugins import ModelPluginError

    if not isinstance(out, tuple) or len(out) != 2:
        raise ModelPluginError(name, f"embed returned {type(out).__name__} for tracklet {key!r}; expected "
                                     "(feature, weights or None)")
    feat, weights = out
    f = np.asarray(feat)
    if f.ndim != 1 or f.size == 0 or f.dtype.kind not in "fiu":
        raise ModelPluginError(name, f"feature of tracklet {key!r} has shape {f.shape} and dtype {f.dtype}; "
                                     "expected a non-empty 1-D float array")
    if not np.isfinite(f).all():
        raise ModelPluginError(name, f"feature of tracklet {key!r} holds NaN or infinite values")
    if weights is None:
        return f.astype(np.float32), None
    w = np.asarray(weights, dtype=np.float32)
    if w.ndim == 1:
        w = w[None, :]
    if w.ndim != 2 or w.shape[1] != length:
        raise ModelPluginError(name, f"weights of tracklet {key!r} have shape {np.shape(weights)}; expected "
                                     f"(rows, {length}) for its {length} frames")
    if not np.isfinite(w).all():
        raise ModelPluginError(name, f"weights of tracklet {key!r} hold NaN or infinite values")
    return f.astype(np.float32), w


def embed_tracklets(
    dataset: VideoDataset,
    indices: np.ndarray,
    name: str,
    model: Any,
    max_frames: int = 128,
    tail_indices: set[int] | None = None,
    batch_frames: int = 1024,
    progress: ProgressFn = _noop,
    cancel: threading.Event | None = None,
) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """Features ``(N, D)`` and weights ``{tracklet index: (R, T)}`` of ``indices`` from a plugin."""
    from reidviewer.model.plugins import ModelPluginError

    tail_indices = tail_indices or set()
    batched = callable(getattr(model, "embed_batch", None))
    feats: list[np.ndarray] = []
    weights: dict[int, np.ndarray] = {}
    pending: list[tuple[int, np.ndarray]] = []
    total = len(indices)

    def run(batch: list[tuple[int, np.ndarray]]) -> None:
        try:
            outs = model.embed_batch([c for _, c in batch]) if batched else [model.embed(c) for _, c in batch]
        except ReidViewerError:
            raise
        except Exception as exc:  # noqa: BLE001 - a plugin's failure, as one line naming it
            keys = ", ".join(dataset.tracklets[i].key for i, _ in batch[:3])
            raise ModelPluginError(name, f"embed failed on tracklet(s) {keys}: {type(exc).__name__}: {exc}") from exc
        outs = list(outs)
        if len(outs) != len(batch):
            raise ModelPluginError(name, f"embed_batch returned {len(outs)} results for {len(batch)} tracklets")
        for (idx, clip), out in zip(batch, outs):
            f, w = _check_output(name, dataset.tracklets[idx].key, out, len(clip))
            if feats and f.shape != feats[0].shape:
                raise ModelPluginError(name, f"feature of tracklet {dataset.tracklets[idx].key!r} has "
                                             f"{f.size} dimensions, others {feats[0].size}")
            feats.append(f)
            if w is not None:
                weights[idx] = w
        progress(len(feats), total, "embedding tracklets")

    frames_pending = 0
    for idx in np.asarray(indices, dtype=np.int64).tolist():
        check_cancelled(cancel)
        clip = read_clip(dataset.tracklets[idx], max_frames, idx in tail_indices)
        pending.append((idx, clip))
        frames_pending += len(clip)
        if frames_pending >= batch_frames or not batched:
            run(pending)
            pending, frames_pending = [], 0
    if pending:
        run(pending)
    if weights and len(weights) != len(feats):
        raise ModelPluginError(name, "returned weights for some tracklets and None for others")
    if weights and len({w.shape[0] for w in weights.values()}) > 1:
        raise ModelPluginError(name, "returned weights with different numbers of rows for different tracklets")
    out = np.stack(feats) if feats else np.zeros((0, 1), np.float32)
    return out, weights


def compute_model_results(
    dataset: VideoDataset,
    split: int,
    spec: str,
    workspace,
    settings=None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    annotation_version: str | None = None,
    recompute: bool = False,
):
    """``compute_results`` for a model reference ``NAME[:ARG]`` (a plugin, or ``imported:NAME``)."""
    from reidviewer.engine.evaluate import EvalSettings
    from reidviewer.engine.importer import IMPORTED, load_imported
    from reidviewer.engine.results import Results, build_split_results, is_stale, results_path
    from reidviewer.model.plugins import load_model, parse_model_spec

    progress = progress or _noop
    settings = settings or EvalSettings()
    name, arg = parse_model_spec(spec)
    if name == IMPORTED:
        if not arg:
            from reidviewer.errors import UsageError

            raise UsageError("--model imported:NAME needs the name given to reidviewer import --name")
        results = load_imported(dataset, split, arg, workspace, annotation_version)
        progress(1, 1, "results loaded from the workspace")
        return results

    name, arg, model = load_model(spec)
    fp = model_fingerprint(name, arg, model.cache_key)
    sp = dataset.split(split)
    key = {"max_frames": settings.max_frames, "gallery_tail": settings.gallery_tail, "protocol": dataset.protocol,
           "annotations": annotation_version, "plugin": name, "arg": arg, "cache_key": model.cache_key}
    path = results_path(workspace, fp, dataset.fingerprint, split, key)
    if path.exists() and not recompute:
        try:
            cached = Results.load(path)
        except ReidViewerError:
            cached = None
        if cached is not None and not is_stale(cached, fp, dataset.fingerprint, annotation_version):
            progress(1, 1, "results loaded from the workspace")
            return cached

    needed = np.unique(np.concatenate([sp.query, sp.gallery]))
    tail = set(int(i) for i in sp.gallery) if settings.gallery_tail else set()
    feats, weights = embed_tracklets(dataset, needed, name, model, settings.max_frames, tail,
                                     settings.batch_frames, progress, cancel)
    row_of = {int(t): i for i, t in enumerate(needed)}
    qf = feats[[row_of[int(i)] for i in sp.query]]
    gf = feats[[row_of[int(i)] for i in sp.gallery]]
    progress(0, 1, "ranking")
    label = name if arg is None else f"{name}:{arg}"
    results = build_split_results(
        dataset, split, qf, gf, attention=weights or None, checkpoint_fingerprint=fp,
        settings={**key, "checkpoint": label, "model": {"head": "plugin", "name": name, "arg": arg}},
        annotation_version=annotation_version,
    )
    results.save(path)
    progress(1, 1, "results saved")
    return results
