"""Apply an annotation store to a dataset: the corrected view that training and evaluation use.

What changes (and what does not):

- **Identities.** A tracklet's ``pid`` becomes its corrected pid: relabels, merges (merged
  identities share the kept pid) and splits (a fresh pid, above every pid in use).
- **Tracklet flags.** ``junk`` and ``exclude`` tracklets leave train, query and gallery.
  ``distractor`` tracklets leave train and query and stay in the gallery as pid 0, the MARS
  convention for "a person who matches no query", so they count as negatives only. If some
  query of the dataset has a real identity 0 (possible in a folder dataset), pid 0 would make
  distractors match it; then each distractor gets its own fresh pid instead, and a notice says so.
- **Frame flags** (by option). Frames flagged ``occluded``, ``bad_crop`` or ``wrong_person``
  (or the kinds you name) are dropped from ``Tracklet.frames``. A tracklet keeps at least one
  frame: when every frame is flagged, it keeps the one with the fewest flags, nearest the
  middle on ties (trackers fail most at the ends), so no tracklet becomes empty. The
  ``occlusion`` ground truth is cut the same way so it stays aligned with the frames.
- **Indices are stable.** ``tracklets`` has the same length and order (``tracklets[i].index
  == i``); only the split index arrays are filtered, so rows of a results file computed on the
  view map back to the dataset's tracklets. The fingerprint stays the dataset's (frame caches
  stay valid); results record ``store.version()`` beside it.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from reidviewer.annotations.edits import FRAME_FLAGS, AnnotationError
from reidviewer.annotations.store import AnnotationStore
from reidviewer.data.dataset import Split, VideoDataset

#: The pid distractor-flagged tracklets take (MARS's distractor id).
DISTRACTOR_PID = 0
#: Tracklet flags that take a tracklet out of every split.
REMOVING_FLAGS = frozenset({"junk", "exclude"})


def _kinds(option: bool | Iterable[str]) -> frozenset[str]:
    if option is True:
        return frozenset(FRAME_FLAGS)
    if option is False or option is None:
        return frozenset()
    kinds = frozenset(option)
    unknown = kinds - set(FRAME_FLAGS)
    if unknown:
        raise AnnotationError(None, f"unknown frame flag(s) {sorted(unknown)}; expected {', '.join(FRAME_FLAGS)}")
    return kinds


def kept_frames(num_frames: int, flags: Mapping[int, Iterable[str]], kinds: Iterable[str] = FRAME_FLAGS) -> np.ndarray:
    """Indices of the frames a tracklet keeps when frames flagged with ``kinds`` are dropped.

    Args:
        num_frames: the tracklet's frame count.
        flags: frame index -> its flags (``store.frame_flags_of(key)``).
        kinds: which flags drop a frame.

    Returns:
        Sorted original frame indices; never empty for a non-empty tracklet.
    """
    kinds = frozenset(kinds)
    count = np.zeros(num_frames, dtype=np.int64)
    for frame, fl in flags.items():
        if 0 <= frame < num_frames:
            count[frame] = len(kinds.intersection(fl))
    keep = np.flatnonzero(count == 0)
    if len(keep) == 0 and num_frames > 0:
        # Every frame is flagged: keep the least-flagged one, nearest the middle on ties.
        middle = (num_frames - 1) / 2
        order = np.lexsort((np.abs(np.arange(num_frames) - middle), count))
        keep = order[:1]
    return keep


def frame_selection(
    dataset: VideoDataset, store: AnnotationStore, kinds: Iterable[str] = FRAME_FLAGS
) -> dict[int, np.ndarray]:
    """For every tracklet that loses frames: tracklet index -> original indices of its kept frames.

    Use it to map a frame of the annotated view back to the dataset's frame (and the attention
    audit's ``frame_indices``).
    """
    kinds = _kinds(kinds)
    by_key = {t.key: t for t in dataset.tracklets}
    out: dict[int, np.ndarray] = {}
    for key, flags in store.frame_flags().items():
        t = by_key.get(key)
        if t is None:
            continue
        keep = kept_frames(len(t.frames), flags, kinds)
        if len(keep) < len(t.frames):
            out[t.index] = keep
    return out


def apply_annotations(
    dataset: VideoDataset, store: AnnotationStore, exclude_flagged_frames: bool | Iterable[str] = False
) -> VideoDataset:
    """The dataset as corrected by the store's annotations (a new view; ``dataset`` is untouched).

    Args:
        dataset: the dataset as its reader opened it.
        store: its annotation store.
        exclude_flagged_frames: drop flagged frames from ``Tracklet.frames``: ``True`` for
            every frame flag, or an iterable of flag names (``{"occluded"}``).

    Returns:
        A ``VideoDataset`` with the same tracklet list (order and indices), corrected pids,
        filtered splits, and a notice that records the store version applied.

    Raises:
        AnnotationError: the store belongs to another dataset.
    """
    if store.dataset_fingerprint and dataset.fingerprint and store.dataset_fingerprint != dataset.fingerprint:
        raise AnnotationError(
            store.path,
            f"holds annotations of dataset fingerprint {store.dataset_fingerprint}, not {dataset.fingerprint} ({dataset.name})",
        )
    kinds = _kinds(exclude_flagged_frames)
    labels = store.labels()
    tflags = store.tracklet_flags()
    index_of = {t.key: t.index for t in dataset.tracklets}
    n = len(dataset.tracklets)

    pids = np.array([t.pid for t in dataset.tracklets], dtype=np.int64)
    unknown = 0
    relabelled = 0
    for key, pid in labels.items():
        i = index_of.get(key)
        if i is None:
            unknown += 1
        elif pids[i] != pid:
            pids[i] = pid
            relabelled += 1

    removed = np.zeros(n, dtype=bool)
    distractor = np.zeros(n, dtype=bool)
    for key, flags in tflags.items():
        i = index_of.get(key)
        if i is None:
            unknown += 1
            continue
        if flags & REMOVING_FLAGS:
            removed[i] = True
        elif "distractor" in flags:
            distractor[i] = True

    notices = list(dataset.notices)
    if distractor.any():
        query_pids = set()
        for s in dataset.splits:
            q = np.asarray(s.query, dtype=np.int64)
            q = q[~removed[q] & ~distractor[q]]
            query_pids.update(pids[q].tolist())
        if DISTRACTOR_PID in query_pids:
            fresh = max(int(pids.max()), 0) + 1
            idx = np.flatnonzero(distractor)
            pids[idx] = np.arange(fresh, fresh + len(idx))
            notices.append(
                f"identity {DISTRACTOR_PID} is a real person in this dataset's queries, so each of the "
                f"{len(idx)} distractor-flagged tracklets got its own fresh identity instead of {DISTRACTOR_PID}"
            )
        else:
            pids[distractor] = DISTRACTOR_PID

    selection = frame_selection(dataset, store, kinds) if kinds else {}
    dropped = 0
    occlusion = dict(dataset.occlusion) if dataset.occlusion is not None else None
    tracklets = list(dataset.tracklets)
    for i, t in enumerate(dataset.tracklets):
        changes: dict = {}
        if pids[i] != t.pid:
            changes["pid"] = int(pids[i])
        keep = selection.get(i)
        if keep is not None:
            changes["frames"] = [t.frames[j] for j in keep]
            dropped += len(t.frames) - len(keep)
            if occlusion is not None and t.key in occlusion and len(occlusion[t.key]) == len(t.frames):
                occlusion[t.key] = np.asarray(occlusion[t.key])[keep]
        if changes:
            tracklets[i] = dataclasses.replace(t, **changes)

    out_train = ~removed & ~distractor
    out_gallery = ~removed

    def keep_only(indices: np.ndarray, mask: np.ndarray) -> np.ndarray:
        indices = np.asarray(indices)
        return indices[mask[indices.astype(np.int64)]] if len(indices) else indices

    splits = [
        Split(
            name=s.name,
            train=keep_only(s.train, out_train),
            query=keep_only(s.query, out_train),
            gallery=keep_only(s.gallery, out_gallery),
        )
        for s in dataset.splits
    ]
    summary = (
        f"annotations {store.version()} applied: {relabelled} tracklet(s) relabelled, "
        f"{int(removed.sum())} excluded, {int(distractor.sum())} distractor(s)"
    )
    if kinds:
        summary += f", {dropped} flagged frame(s) dropped"
    notices.append(summary)
    if unknown:
        notices.append(f"{unknown} annotation(s) name tracklets this dataset does not have; ignored")
    return dataclasses.replace(dataset, tracklets=tracklets, splits=splits, notices=notices, occlusion=occlusion)


def open_annotated(
    dataset: VideoDataset, workspace: Any, exclude_flagged_frames: bool | Iterable[str] = False
) -> tuple[VideoDataset, str | None]:
    """The dataset as its workspace's annotation store corrects it, and the store's version.

    The store is opened read-only (it never takes the writer lock, so this works while the app
    edits the same store) and closed again. Results computed on the view record the version
    (``compute_results(..., annotation_version=version)``), so they are recomputed when the
    annotations change.

    Args:
        dataset: the dataset as its reader opened it.
        workspace: the workspace whose ``annotations/`` folder may hold the store.
        exclude_flagged_frames: see :func:`apply_annotations`.

    Returns:
        ``(view, version)``; ``(dataset, None)`` when there is no store or it holds no
        annotations (an empty state, e.g. every edit undone), so results stay shared with the
        un-annotated dataset.

    Raises:
        AnnotationError: the store file is damaged or belongs to another dataset.
    """
    from reidviewer.annotations.store import _ZERO_HASH, store_filename

    if not dataset.fingerprint:
        return dataset, None
    path = workspace.annotations_dir / store_filename(dataset.name, dataset.fingerprint)
    if not path.is_file():
        return dataset, None
    with AnnotationStore(path, dataset.fingerprint, dataset.name, mode="read") as store:
        if store.content_hash() == _ZERO_HASH:
            return dataset, None
        return apply_annotations(dataset, store, exclude_flagged_frames), store.version()
