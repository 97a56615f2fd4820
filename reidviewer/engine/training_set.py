"""The training tracklets of a split, with their features: the map's and find-similar's optional third part.

A results file holds the query and gallery features only. To put the training tracklets on the
map (issue 21: "training tracklets as an option") their features are extracted with the same
checkpoint and settings as the results, in the background, and cached in the workspace
(``cache/training_features/*.npz``, read with ``allow_pickle=False``) so that a second look is
instant. Only a checkpoint can do it: results imported from another tool's features hold no
model to run.
"""
from __future__ import annotations

import hashlib
import io
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from reidviewer.data.array_files import DAMAGED_FILE_ERRORS, open_npz
from reidviewer.data.dataset import VideoDataset
from reidviewer.errors import CheckpointError, ReidViewerError, UsageError

Progress = Callable[..., None]


@dataclass(eq=False)
class TrainingSet:
    """The training tracklets of one split with their features.

    Attributes:
        features: ``(N, D)`` float32.
        pids, camids: int64 labels.
        keys: tracklet keys.
        dataset_indices: the tracklets' indices in the dataset.
        spreads: standard deviation over frames of the final iteration's attention (NaN when the
            model pools uniformly or the tracklet has one frame).
        attention: ``{dataset index: (K+1, T)}`` attention traces, for the players.
    """

    features: np.ndarray
    pids: np.ndarray
    camids: np.ndarray
    keys: list[str]
    dataset_indices: np.ndarray
    spreads: np.ndarray
    attention: dict[int, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.pids)


def _spread(trace: np.ndarray | None) -> float:
    if trace is None or trace.ndim != 2 or trace.shape[1] < 2:
        return float("nan")
    return float(np.std(np.asarray(trace[-1], dtype=np.float64)))


def training_set_from(dataset: VideoDataset, indices: np.ndarray, features: np.ndarray,
                      attention: dict[int, np.ndarray] | None = None) -> TrainingSet:
    """A ``TrainingSet`` of dataset tracklets ``indices`` with their ``features``."""
    indices = np.asarray(indices, dtype=np.int64)
    features = np.asarray(features, dtype=np.float32)
    if features.ndim != 2 or len(features) != len(indices):
        raise ValueError(f"features {features.shape} do not match {len(indices)} training tracklets")
    attention = attention or {}
    ts = [dataset.tracklets[int(i)] for i in indices]
    return TrainingSet(
        features=np.ascontiguousarray(features),
        pids=np.array([t.pid for t in ts], dtype=np.int64),
        camids=np.array([t.camid for t in ts], dtype=np.int64),
        keys=[t.key for t in ts],
        dataset_indices=indices,
        spreads=np.array([_spread(attention.get(int(i))) for i in indices], dtype=np.float64),
        attention={int(k): np.asarray(v, dtype=np.float32) for k, v in attention.items()},
    )


def cache_path(workspace, checkpoint_fingerprint: str, dataset_fingerprint: str, split: int, key: dict) -> Path:
    """Where the training features of (checkpoint, dataset, split, settings) are cached."""
    text = json.dumps({"checkpoint": checkpoint_fingerprint, "dataset": dataset_fingerprint, "split": int(split),
                       "settings": key}, sort_keys=True, default=str)
    digest = hashlib.sha256(text.encode()).hexdigest()[:24]
    return Path(workspace.cache_dir) / "training_features" / f"{digest}.npz"


def _read(path: Path, indices: np.ndarray) -> tuple[np.ndarray, dict[int, np.ndarray]] | None:
    """The cached features and attention, or None when absent, damaged or for other tracklets."""
    try:
        with open_npz(path) as z:
            idx = np.asarray(z["indices"], dtype=np.int64)
            feats = np.asarray(z["features"], dtype=np.float32)
            values = np.asarray(z["attention_values"], dtype=np.float32)
            offsets = np.asarray(z["attention_offsets"], dtype=np.int64)
    except DAMAGED_FILE_ERRORS:
        return None
    if not np.array_equal(idx, indices) or feats.shape[0] != len(indices) or not np.all(np.isfinite(feats)):
        return None
    if values.ndim != 2 or len(offsets) != len(indices) + 1 or offsets[-1] != values.shape[1]:
        return None
    attention = {int(i): values[:, offsets[j]:offsets[j + 1]] for j, i in enumerate(indices)
                 if offsets[j + 1] > offsets[j]}
    return feats, attention


def _write(path: Path, indices: np.ndarray, feats: np.ndarray, attention: dict[int, np.ndarray]) -> None:
    from reidviewer.workspace import atomic_write_bytes

    traces = [attention.get(int(i)) for i in indices]
    rows = max((t.shape[0] for t in traces if t is not None), default=1)
    lengths = [0 if t is None else t.shape[1] for t in traces]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    values = np.zeros((rows, int(offsets[-1])), dtype=np.float32)
    for j, t in enumerate(traces):
        if t is not None:
            values[:t.shape[0], offsets[j]:offsets[j + 1]] = t
    buf = io.BytesIO()
    np.savez(buf, indices=indices, features=feats, attention_values=values, attention_offsets=offsets)
    try:
        atomic_write_bytes(path, buf.getvalue())
    except ReidViewerError:
        pass  # a cache: a read-only workspace still gets its answer


def compute_training_set(dataset: VideoDataset, split: int, checkpoint: str | Path, workspace, settings=None,
                         device: str = "auto", progress: Progress | None = None,
                         cancel: threading.Event | None = None) -> TrainingSet:
    """The training tracklets of ``split`` with features from ``checkpoint`` (cached in ``workspace``).

    Args:
        dataset: the dataset the results were computed on.
        split: the split whose training tracklets to take.
        checkpoint: the checkpoint of the results (``NAME.safetensors``).
        workspace: a ``Workspace`` (its cache holds the preprocessed frames and the features).
        settings: the results' ``EvalSettings`` (default: the defaults).

    Raises:
        UsageError: ``checkpoint`` is a model reference (imported features, a plugin): there is no
            checkpoint to run on the training tracklets.
        CheckpointError: the checkpoint is missing or unreadable.
        Cancelled: ``cancel`` was set.
    """
    from reidviewer.engine.evaluate import EvalSettings, extract, file_fingerprint, pick_device, preprocess_config_of
    from reidviewer.engine.models import model_spec_of
    from reidviewer.model.checkpoint_files import checkpoint_paths

    def say(done: int, total: int, text: str = "") -> None:
        if progress is not None:
            progress(done, total, text)

    if model_spec_of(checkpoint) is not None:
        raise UsageError(f"training tracklets need a checkpoint to extract their features; {checkpoint} is "
                         "a model reference (imported features or a plugin)")
    # One centre view: the map compares features, and a results file's TTA sums distances only.
    settings = replace(settings or EvalSettings(), tta=False)
    weights = checkpoint_paths(Path(checkpoint))[0]
    if not weights.is_file():
        raise CheckpointError(weights, "checkpoint weights file not found")
    indices = np.asarray(dataset.split(split).train, dtype=np.int64)
    if not len(indices):
        return training_set_from(dataset, indices, np.zeros((0, 1), np.float32))
    key = {**settings.key(), "gallery_tail": False, "protocol": dataset.protocol}
    path = None
    try:
        path = cache_path(workspace, file_fingerprint(weights), dataset.fingerprint, split, key)
    except ReidViewerError:
        path = None
    if path is not None:
        cached = _read(path, indices)
        if cached is not None:
            say(1, 1, "training features loaded from the workspace")
            return training_set_from(dataset, indices, *cached)

    from reidviewer.model.checkpoint import load_checkpoint

    say(0, 1, "loading the checkpoint")
    dev = pick_device(device)
    model, _config, meta = load_checkpoint(weights, map_location="cpu")
    model.to(dev).eval()
    feats, attention = extract(dataset, indices, model, workspace, settings, set(), dev, progress or (lambda *a: None),
                               cancel, preprocess_config=preprocess_config_of(meta))
    if path is not None:
        _write(path, indices, feats, attention)
    return training_set_from(dataset, indices, feats, attention)


def settings_of(results: Any):
    """The ``EvalSettings`` a results file was computed with (defaults for what it does not say)."""
    from dataclasses import fields

    from reidviewer.engine.evaluate import EvalSettings

    recorded = results.settings if isinstance(getattr(results, "settings", None), dict) else {}
    names = {f.name for f in fields(EvalSettings)}
    return EvalSettings(**{k: v for k, v in recorded.items() if k in names})
