"""Evaluation: features of query and gallery tracklets, distances, ranks, CMC and mAP.

``compute_results`` is what the app, the CLI and figure export call. It loads the cached
results file when one exists for the same checkpoint, dataset, split, settings and
annotation version; otherwise it preprocesses the needed tracklets (cached in the
workspace), extracts features in batches with the fast inference path, and writes one
results file. Progress goes through ``progress(done, total, text)`` and ``cancel`` (a
``threading.Event``) stops it between batches with ``Cancelled`` (``reidviewer.progress``).
"""
from __future__ import annotations

import hashlib
import os
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from reidviewer.data.dataset import VideoDataset
from reidviewer.demo import default_checkpoint  # noqa: F401  (re-exported: the engine's default)
from reidviewer.errors import CheckpointError, ReidViewerError, UsageError
from reidviewer.progress import ProgressFn, check_cancelled

Progress = ProgressFn

#: ``extract`` compiles the frame encoder from this many frames on: torch.compile costs
#: ≈15–30 s once (a few s from Inductor's disk cache) and gains ~10 % (bench/model.py), so it
#: pays off on MARS-size splits, not on iLIDS-VID's 40 k frames.
COMPILE_MIN_FRAMES = 300_000
#: ``extract`` hands freed memory back to the OS every this many batches: after every batch,
#: the next one page-faulted all its buffers anew (an estimated 8 % of the time); never, and
#: glibc's arenas fragment by GBs over MARS.
TRIM_EVERY = 8
#: Feature-extraction throughput (frames/s over a whole ``extract``, cache reads included) that
#: ``evaluation_cost`` assumes until this workspace has measured one on the same kind of
#: device. On two CPU cores a MARS evaluation ran at 1,300 and 3,000 on two hosts; a GPU's
#: figure is a cautious guess (reading the cache and feeding the GPU bound it), none measured here.
ASSUMED_FEATURE_FRAMES_PER_S = {"cpu": 1500.0}
ASSUMED_GPU_FEATURE_FRAMES_PER_S = 10_000.0
#: ``extract`` records its rate only from runs embedding at least this many frames (fewer:
#: mostly start-up). The smallest real test split, PRID-2011's (89 persons, 178 tracklets of
#: 27-675 frames, 128 at most embedded), has roughly 15,000.
FEATURE_RATE_MIN_FRAMES = 10_000
#: Where measured feature rates are kept (by device kind: ``cpu``, ``cuda``, ``mps``), under the
#: workspace's ``cache/``.
FEATURE_RATE_FILE = "feature_rates.json"


@dataclass(frozen=True)
class EvalSettings:
    """How features are extracted.

    Attributes:
        max_frames: at most this many frames per tracklet (RCN and RAN: 128 at test).
        gallery_tail: take the *last* frames of gallery tracklets (RCN's code) instead of the first.
        tta: RCN's 16-view test-time augmentation (summed distances); default a single centre crop.
        batch_frames: frames per CNN batch.
    """

    max_frames: int = 128
    gallery_tail: bool = False
    tta: bool = False
    batch_frames: int = 1024

    def key(self) -> dict[str, Any]:
        return asdict(self)


def file_fingerprint(path: str | Path) -> str:
    """SHA-256 (first 16 hex digits) of a file's bytes: a checkpoint's identity."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def _noop(*_a, **_k) -> None:
    return None


def pick_device(name: str = "auto"):
    """``auto``: CUDA, then MPS, then CPU; or a device name torch understands."""
    import torch

    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as exc:
        raise UsageError(f"unknown device {name!r}: {exc}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"device {name!r} asked for, but torch sees no CUDA GPU here")
    return dev


def extract(
    dataset: VideoDataset,
    indices: np.ndarray,
    model,
    workspace,
    settings: EvalSettings = EvalSettings(),
    tail_indices: set[int] | None = None,
    device=None,
    progress: Progress = _noop,
    cancel: threading.Event | None = None,
    preprocess_config=None,
    crop=None,
    compile: bool | None = None,
) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """Features (N, D) and attention traces {tracklet index: (K+1, T)} for tracklets ``indices``.

    ``crop`` (a ``transforms.CropParams``) replaces the test-time centre crop (one TTA view).
    ``compile``: compile the CNN with ``torch.compile`` (same features within float32
    rounding); None compiles when at least ``COMPILE_MIN_FRAMES`` frames are to be embedded.
    """
    from reidviewer.data.cache import FrameCache
    from reidviewer.data.preprocess import PreprocessConfig
    from reidviewer.data.transforms import sample_test_clip
    from reidviewer.memory import release_free_memory
    from reidviewer.model.inference import extract_features

    indices = np.asarray(indices, dtype=np.int64)
    preprocess_config = preprocess_config or PreprocessConfig()
    cache = FrameCache(workspace, dataset, preprocess_config)
    total = len(indices)

    def prep_progress(done: int, n: int, text: str = "") -> None:
        check_cancelled(cancel)
        progress(done, n, text)

    cache.ensure(indices, progress=prep_progress, cancel=cancel)
    check_cancelled(cancel)  # ensure stops early, leaving what it finished: say it was cancelled
    tail_indices = tail_indices or set()
    if compile is None:
        lengths = dataset.sequence_lengths()
        compile = bool(total) and int(np.minimum(lengths[indices], settings.max_frames).sum()) >= COMPILE_MIN_FRAMES

    # Which frames of which tracklets, in batches of about ``batch_frames`` frames.
    plan: list[list[tuple[int, slice]]] = [[]]
    frames_in_batch = 0
    for idx in indices:
        sel = sample_test_clip(len(dataset.tracklets[int(idx)]), settings.max_frames, int(idx) in tail_indices)
        plan[-1].append((int(idx), slice(int(sel[0]), int(sel[-1]) + 1)))
        frames_in_batch += len(sel)
        if frames_in_batch >= settings.batch_frames:
            plan.append([])
            frames_in_batch = 0

    def read_batch(batch: list[tuple[int, slice]]) -> list[np.ndarray]:
        # A read, not a memory map: fewer page faults; from disk when the page cache lost it.
        return [cache.read(i, frames) for i, frames in batch]

    feats: list[np.ndarray] = []
    attention: dict[int, np.ndarray] = {}
    done = 0
    started = time.perf_counter()
    progress(0, total, "extracting features")  # the stage starts here (a compile counts in it)
    for number, (batch, clips) in enumerate(read_ahead(plan, read_batch), start=1):
        check_cancelled(cancel)
        if not batch:
            continue
        # The stored uint8 frames go to the model as they are: preprocessing runs there, in
        # torch, fused (data.network_batch) — numpy's float pipeline cost a third of the CNN.
        out = extract_features(model, clips, stored=True, preprocess=preprocess_config, crop=crop, compile=compile)
        for (idx, _), fi, ai in zip(batch, out.features.numpy(), out.attention):
            feats.append(fi)
            attention[idx] = ai.numpy()
        done += len(batch)
        progress(done, total, "extracting features")
        del out, clips
        if number % TRIM_EVERY == 0:
            release_free_memory()  # fragmented glibc arenas otherwise grow the process by GBs at MARS size
    release_free_memory()
    embedded = sum(frames.stop - frames.start for batch in plan for _, frames in batch)
    if embedded >= FEATURE_RATE_MIN_FRAMES:
        record_feature_rate(workspace, _device_kind(model, device), embedded, time.perf_counter() - started)
    return np.stack(feats).astype(np.float32) if feats else np.zeros((0, 128), np.float32), attention


def _device_kind(model, device) -> str:
    """``cpu``, ``cuda`` or ``mps``: the device ``extract`` ran the model on (where its weights are)."""
    import torch

    param = next(model.parameters(), None)
    if param is not None:
        return param.device.type
    return torch.device(device).type if device is not None else "cpu"


def _feature_rates_path(workspace) -> Path:
    return Path(workspace.cache_dir) / FEATURE_RATE_FILE


def record_feature_rate(workspace, device_kind: str, frames: int, seconds: float) -> None:
    """Remember the feature-extraction rate a run measured on ``device_kind``, for ``evaluation_cost``."""
    from reidviewer import rates

    rates.record_rate(_feature_rates_path(workspace), device_kind, frames, seconds, also_last=False)


def measured_feature_rate(workspace, device_kind: str) -> float | None:
    """Frames/s this workspace measured extracting features on ``device_kind``; None if never.

    No fallback to another kind of device: a CPU's rate says nothing of a GPU's.
    """
    from reidviewer import rates

    return rates.measured_rate(_feature_rates_path(workspace), device_kind, fall_back_to_last=False)


def frames_to_embed(dataset: VideoDataset, split: int, settings: EvalSettings = EvalSettings()) -> int:
    """How many frames evaluating ``split`` runs through the network (every test view counted)."""
    from reidviewer.data.transforms import tta_params

    sp = dataset.split(split)
    needed = np.unique(np.concatenate([sp.query, sp.gallery]))
    lengths = dataset.sequence_lengths()
    frames = int(np.minimum(lengths[needed], settings.max_frames).sum()) if len(needed) else 0
    return frames * (len(tta_params()) if settings.tta else 1)


def read_ahead(items: list, read, depth: int = 2):
    """Yield ``(item, read(item))`` in order, reading up to ``depth`` items ahead in a thread.

    Evaluation reads a batch's frames from the cache while the CNN embeds the one before: at
    MARS scale part of the 9 GB cache has left the page cache by then, and reading took 4 % of
    the feature stage (41 µs a frame from disk, 11 from the page cache). File reads release
    the GIL, so the thread costs the CNN nothing. An error in a read is raised here, at its
    item; stopping early (cancel) drops what was read ahead.
    """
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="read-ahead")
    pending: deque = deque()
    try:
        for item in items:
            pending.append((item, pool.submit(read, item)))
            if len(pending) > depth:
                first, future = pending.popleft()
                yield first, future.result()
        while pending:
            first, future = pending.popleft()
            yield first, future.result()
    finally:
        for _, future in pending:
            future.cancel()
        pool.shutdown(wait=True)


def _extract_tta(dataset, needed, model, workspace, settings, tail, dev, progress, cancel, preprocess,
                 q_rows, g_rows):
    """RCN's 16-view test-time augmentation: the Euclidean distances of the 16 views, summed.

    Returns the mean feature over the views (what the results file stores for the map and
    exports), the centre view's attention, and the summed (Nq, Ng) distances that rank.
    """
    from reidviewer.data.transforms import TEST_OFFSET, CropParams, tta_params

    views = tta_params()
    total = None
    feat_sum = None
    attention: dict[int, np.ndarray] = {}
    for v, crop in enumerate(views):
        def view_progress(done: int, n: int, text: str = "", v=v) -> None:
            progress(done, n, f"{text} (test view {v + 1} of {len(views)})")

        feats, att = extract(dataset, needed, model, workspace, settings, tail, dev, view_progress, cancel,
                             preprocess_config=preprocess, crop=crop)
        q, g = feats[q_rows].astype(np.float64), feats[g_rows].astype(np.float64)
        d2 = (q * q).sum(1)[:, None] + (g * g).sum(1)[None, :] - 2.0 * q @ g.T
        d = np.sqrt(np.maximum(d2, 0.0))
        total = d if total is None else total + d
        feat_sum = feats.astype(np.float64) if feat_sum is None else feat_sum + feats
        if crop == CropParams(TEST_OFFSET, TEST_OFFSET, False):
            attention = att
    return (feat_sum / len(views)).astype(np.float32), attention, total.astype(np.float32)


def preprocess_config_of(meta: dict):
    """The preprocessing a checkpoint was trained with (its JSON records it), else the default.

    Evaluating with other preprocessing than training used (say, without flow) would give
    numbers that belong to neither, so the checkpoint's own settings win.
    """
    from reidviewer.data.preprocess import PreprocessConfig

    recorded = meta.get("preprocess") if isinstance(meta, dict) else None
    if not recorded:
        return PreprocessConfig()
    try:
        return PreprocessConfig.from_dict(recorded)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(meta.get("weights_file", "checkpoint"), f"unusable preprocessing settings: {exc}") from None


def results_key(dataset: VideoDataset, settings: EvalSettings, annotation_version: str | None) -> dict[str, Any]:
    """What besides the checkpoint and the dataset picks a results file (and is recorded in it)."""
    return {**settings.key(), "protocol": dataset.protocol, "annotations": annotation_version}


def evaluation_cost(
    dataset: VideoDataset,
    split: int,
    checkpoint: str | Path,
    workspace,
    settings: EvalSettings = EvalSettings(),
    annotation_version: str | None = None,
    device: str = "auto",
) -> dict[str, Any] | None:
    """What ``compute_results`` would pay in preprocessing and feature extraction, told before it starts.

    Cheap: reads the checkpoint's JSON (its preprocessing settings pick the frame cache) and
    stats the cache's files; no image, no weights, and no torch import when the results file
    is there already (a warm ``evaluate`` takes under 1 s). None when there is nothing to
    compute: the results file is in the workspace already, or the model is a plugin or
    imported results (``engine.models``).

    Returns:
        ``data.cache.estimate_cost``'s figures for split ``split`` under the checkpoint's
        preprocessing, and ``feature_frames`` (frames the network embeds), ``device`` (its
        kind: ``cpu``, ``cuda``, ``mps``), ``feature_frames_per_s``, ``feature_rate_measured``
        (on this kind of device, in this workspace), ``feature_minutes`` and ``minutes`` (the
        split's preprocessing and feature extraction together).
    """
    from reidviewer.data.cache import estimate_cost
    from reidviewer.engine.models import model_spec_of

    if model_spec_of(checkpoint) is not None:
        return None
    dataset.split(split)  # a split the dataset does not have: SplitError, before any work
    weights, _, path = _results_file(dataset, split, checkpoint, workspace, settings, annotation_version)
    if path.exists():
        return None
    # Imported only now: it imports torch (~0.5 s, 230 MB), which a warm evaluate never needs.
    from reidviewer.model.checkpoint import read_checkpoint_meta

    cost = estimate_cost(dataset, workspace, preprocess_config_of(read_checkpoint_meta(weights)), split)
    kind = pick_device(device).type
    measured = measured_feature_rate(workspace, kind)
    rate = measured or ASSUMED_FEATURE_FRAMES_PER_S.get(kind, ASSUMED_GPU_FEATURE_FRAMES_PER_S)
    frames = frames_to_embed(dataset, split, settings)
    cost.update(feature_frames=frames, device=kind, feature_frames_per_s=int(round(rate)),
                feature_rate_measured=measured is not None, feature_minutes=frames / rate / 60)
    cost["minutes"] = cost["test_preprocess_minutes"] + cost["feature_minutes"]
    return cost


def evaluation_steps(cost: dict[str, Any]) -> list[str]:
    """The work ``evaluation_cost`` found, one phrase a step, for example "preprocessing 651,067
    frames (9.3 GB in the workspace's frame cache): about 4 min at 2,456 frames/s (measured in
    this workspace)" and "embedding 590,112 frames on the CPU: about 3 min at 3,100 frames/s
    (measured in this workspace)"."""
    from reidviewer.data.cache import describe_preprocessing_cost, describe_rate, format_minutes

    where = {"cpu": "the CPU", "cuda": "the GPU", "mps": "the GPU (MPS)"}.get(cost["device"], cost["device"])
    rate = describe_rate({"frames_per_s": cost["feature_frames_per_s"], "rate_measured": cost["feature_rate_measured"]})
    steps = [describe_preprocessing_cost(cost)] if cost["test_frames_missing"] > 0 else []
    steps.append(f"embedding {cost['feature_frames']:,} frames on {where}: {format_minutes(cost['feature_minutes'])} "
                 f"at {rate}")
    return steps


def describe_evaluation_cost(cost: dict[str, Any]) -> str:
    """``evaluation_steps`` in one line: "preprocessing …, then embedding …; about 7 min in all"."""
    from reidviewer.data.cache import format_minutes

    steps = evaluation_steps(cost)
    if len(steps) == 1:
        return steps[0]
    return f"{', then '.join(steps)}; {format_minutes(cost['minutes'])} in all"


def _results_file(dataset: VideoDataset, split: int, checkpoint: str | Path, workspace, settings: EvalSettings,
                  annotation_version: str | None) -> tuple[Path, str, Path]:
    """(weights file, its fingerprint, the results file's path) of a checkpoint on ``split``.

    Raises:
        CheckpointError: ``checkpoint`` is another kind of file, or its weights are missing.
    """
    from reidviewer.engine.results import results_path
    from reidviewer.model.checkpoint_files import WEIGHTS_SUFFIX, checkpoint_paths

    given = Path(checkpoint)
    if given.is_file() and given.suffix not in (WEIGHTS_SUFFIX, ".json"):
        raise CheckpointError(given, f"not a checkpoint: expected NAME{WEIGHTS_SUFFIX} with NAME.json beside it")
    weights = checkpoint_paths(given)[0]
    if not weights.is_file():
        raise CheckpointError(weights, "checkpoint weights file not found")
    fingerprint = file_fingerprint(weights)
    key = results_key(dataset, settings, annotation_version)
    return weights, fingerprint, results_path(workspace, fingerprint, dataset.fingerprint, split, key)


def compute_results(
    dataset: VideoDataset,
    split: int,
    checkpoint: str | Path,
    workspace,
    settings: EvalSettings = EvalSettings(),
    device: str = "auto",
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    annotation_version: str | None = None,
    recompute: bool = False,
):
    """The results file of (checkpoint, dataset, split): loaded when fresh, else computed and saved.

    ``checkpoint`` may also be a model reference ``"model:NAME[:ARG]"`` (``engine.models.model_ref``):
    a model plugin, or ``imported:NAME`` for results saved by ``reidviewer import``.
    """
    from reidviewer.engine.models import compute_model_results, model_spec_of

    spec = model_spec_of(checkpoint)
    if spec is not None:
        return compute_model_results(dataset, split, spec, workspace, settings, progress, cancel,
                                     annotation_version, recompute)
    from reidviewer.engine.results import Results, build_split_results, is_stale

    progress = progress or _noop
    checkpoint, ck_fp, path = _results_file(dataset, split, checkpoint, workspace, settings, annotation_version)
    sp = dataset.split(split)
    key = results_key(dataset, settings, annotation_version)
    if path.exists() and not recompute:
        try:
            cached = Results.load(path)
        except ReidViewerError:
            cached = None  # a damaged cache file is recomputed, never shown
        if cached is not None and not is_stale(cached, ck_fp, dataset.fingerprint, annotation_version):
            progress(1, 1, "results loaded from the workspace")
            return cached

    from reidviewer.model.checkpoint import load_checkpoint

    progress(0, 1, "loading the checkpoint")
    dev = pick_device(device)
    model, config, meta = load_checkpoint(checkpoint, map_location="cpu")
    preprocess = preprocess_config_of(meta)
    model.to(dev).eval()
    needed = np.unique(np.concatenate([sp.query, sp.gallery]))
    tail = set(int(i) for i in sp.gallery) if settings.gallery_tail else set()
    row_of = {int(t): i for i, t in enumerate(needed)}
    q_rows = [row_of[int(i)] for i in sp.query]
    g_rows = [row_of[int(i)] for i in sp.gallery]
    distances = None
    if not settings.tta:
        feats, attention = extract(dataset, needed, model, workspace, settings, tail, dev, progress, cancel,
                                   preprocess_config=preprocess)
    else:
        feats, attention, distances = _extract_tta(dataset, needed, model, workspace, settings, tail, dev, progress,
                                                   cancel, preprocess, q_rows, g_rows)
    qf = feats[q_rows]
    gf = feats[g_rows]
    progress(0, 1, "ranking")
    results = build_split_results(
        dataset, split, qf, gf, attention=attention, distances=distances, checkpoint_fingerprint=ck_fp,
        settings={**key, "checkpoint": str(checkpoint), "model": config.to_dict(),
                  "preprocess": preprocess.to_dict()},
        annotation_version=annotation_version,
    )
    results.save(path)
    progress(1, 1, "results saved")
    return results


def results_file_of(dataset: VideoDataset, split: int, checkpoint, workspace, settings: EvalSettings = EvalSettings(),
                    annotation_version: str | None = None) -> Path | None:
    """Where ``compute_results`` keeps the results of a checkpoint file (None for a model reference)."""
    from reidviewer.engine.models import model_spec_of

    if model_spec_of(checkpoint) is not None:
        return None
    try:
        return _results_file(dataset, split, checkpoint, workspace, settings, annotation_version)[2]
    except CheckpointError:
        return None


def evaluate_splits(
    dataset: VideoDataset,
    splits: list[int],
    checkpoint: str | Path,
    workspace,
    device: str = "auto",
    progress: Progress | None = None,
    settings: EvalSettings = EvalSettings(),
    annotation_version: str | None = None,
) -> dict[str, Any]:
    """Metrics of one or several splits and their mean, as ``reidviewer evaluate --json`` writes them.

    ``annotation_version``: the annotation store version ``dataset`` (an annotated view) carries.
    """
    per = []
    cmcs = []
    for s in splits:
        r = compute_results(dataset, s, checkpoint, workspace, settings, device, progress,
                            annotation_version=annotation_version)
        m = r.metrics()
        per.append({"split": s, **{k: m[k] for k in ("rank1", "rank5", "rank10", "rank20", "mAP", "mINP")},
                    "queries": m["queries"], "valid_queries": m["valid_queries"],
                    "results_file": str(results_file_of(dataset, s, checkpoint, workspace, settings,
                                                        annotation_version) or "")})
        cmcs.append(np.asarray(m["cmc"], dtype=np.float64))
    n = min(len(c) for c in cmcs)
    cmc = np.mean([c[:n] for c in cmcs], axis=0)
    out = {
        "dataset": dataset.name,
        "root": str(dataset.root),
        "protocol": dataset.protocol,
        "checkpoint": str(checkpoint),
        "split": splits[0] if len(splits) == 1 else "all",
        "splits": splits,
        **{k: float(np.mean([p[k] for p in per])) for k in ("rank1", "rank5", "rank10", "rank20", "mAP", "mINP")},
        "cmc": [float(x) for x in cmc],
        "per_split": per,
        "annotation_version": annotation_version,
    }
    return out


def occlusion_audit(dataset: VideoDataset, results, threshold: float = 0.3):
    """AUROC of low attention against SynthWalk's recorded occlusion, per iteration."""
    from reidviewer.engine.audit import audit_attention

    if not dataset.occlusion:
        raise ValueError("this dataset records no occlusion")
    traces = {}
    flags = {}
    for idx in results.attention_tracklets:
        t = dataset.tracklets[int(idx)]
        occ = dataset.occlusion.get(t.key)
        if occ is None:
            continue
        att = results.attention(int(idx))
        traces[t.key] = att
        flags[t.key] = np.asarray(occ[: att.shape[1]]) > threshold
    return audit_attention(traces, flags)
