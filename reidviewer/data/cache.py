"""The preprocessed-frames cache: each tracklet preprocessed once, then memory-mapped.

Layout: ``<workspace>/cache/frames/<dataset fingerprint>-<config key>/`` holds one ``.npy`` file
per tracklet (uint8 (T, 5, 64, 48), the stored form of ``reidviewer.data.preprocess``), named
by a hash of the tracklet's stable key and spread over 256 sub-folders, plus ``config.json``
saying what the folder holds.

* **Lazy**: only the tracklets asked for are preprocessed (evaluating one MARS split does not
  touch the training tracklets); ``get`` of a missing tracklet fills it on the spot.
* **Atomic**: a tracklet's file is written to a temporary name and renamed, so it becomes
  visible only when complete (no fsync: see ``_write_stored``; an exact size check catches
  what a power cut could leave). An interrupted fill leaves the finished tracklets valid
  and nothing half-written; readers (other processes included) never see partial data, and two
  writers of the same tracklet just replace identical content.
* **Parallel**: ``ensure`` spreads tracklets over a process pool (PNG decoding and flow cost
  about 0.25 ms of CPU per 128×64 frame each, largely under the GIL's control of Python glue,
  so threads would not use both cores). Workers write their files
  themselves; only small status tuples come back. A frame that cannot be decoded comes back as
  (path, problem) and is raised here as a ``FrameError`` naming the file.
"""
from __future__ import annotations

import hashlib
import math
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import numpy as np

from reidviewer import rates
from reidviewer.data.array_files import read_npy_header
from reidviewer.data.dataset import VideoDataset
from reidviewer.data.preprocess import NUM_CHANNELS, PreprocessConfig, preprocess_tracklet, to_network_input
from reidviewer.errors import DatasetError, FrameError, ReidViewerError
from reidviewer.progress import ProgressFn, is_cancelled
from reidviewer.workspace import Workspace, WorkspaceError, atomic_open, atomic_write_json

#: Below this many missing frames ``ensure`` works in-process: starting a pool costs ~0.3 s.
INLINE_FRAMES = 256

#: What ``ensure`` reports its progress as.
PROGRESS_TEXT = "preprocessing frames (cached for next time)"


def _write_stored(path: Path, stored: np.ndarray) -> None:
    """Write one tracklet's file atomically (temporary file, then rename), without fsync.

    fsync costs ~10 ms per tracklet here (minutes for MARS's 20 k tracklets) and a cache need
    not survive a power cut: after an OS crash a renamed file may come back short or empty,
    which ``is_cached`` detects by its exact size, so it is recomputed, never read as valid.
    """
    with atomic_open(path, "wb", durable=False) as fh:
        np.save(fh, stored, allow_pickle=False)


def _fill_job(root: str, frames: Sequence[str], out_path: str, config: dict) -> tuple:
    """Process-pool job: preprocess one tracklet and write its file.

    Returns ``("ok", num_frames, notices)`` or ``("error", kind, path, problem)``: our errors
    travel as plain strings (``DatasetError`` has a two-argument constructor that pickle
    cannot rebuild) and are re-raised in the parent.
    """
    try:
        cfg = PreprocessConfig.from_dict(config)
        notices: list[str] = []
        paths = [os.path.join(root, f) for f in frames]
        stored = preprocess_tracklet(paths, cfg, notices=notices)
        _write_stored(Path(out_path), stored)
        return ("ok", len(frames), notices)
    except FrameError as exc:
        return ("error", "frame", str(exc.path), exc.problem)
    except DatasetError as exc:
        return ("error", "dataset", str(exc.path), exc.problem)
    except WorkspaceError as exc:  # a full or read-only cache folder
        return ("error", "workspace", str(exc.path), exc.problem)


def _pool_context() -> multiprocessing.context.BaseContext:
    """The process start method for preprocessing pools.

    forkserver: children start from a clean server process, not a copy of the caller, which
    may hold Qt or torch's thread pools (fork would inherit them and can deadlock). The
    server imports this module (numpy, OpenCV) once, so a pool's workers start in
    milliseconds after the first pool of a session.
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():  # Windows
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([__name__])  # no effect once the server runs; harmless
    return ctx


class FrameCache:
    """Preprocessed frames of one dataset under one preprocessing config.

    Args:
        workspace: the workspace (its ``cache_dir`` holds the files).
        dataset: the opened dataset; tracklets are addressed by their index in it.
        config: preprocessing options; only those that change the stored form pick the folder.

    Attributes:
        dir: the cache folder of this (dataset, config).
        notices: harmless conditions met while filling (one-frame tracklets, resized frames).
    """

    def __init__(self, workspace: Workspace, dataset: VideoDataset, config: PreprocessConfig | None = None) -> None:
        self.workspace = workspace
        self.dataset = dataset
        self.config = config or PreprocessConfig()
        fingerprint = dataset.fingerprint or hashlib.sha1(
            f"{dataset.name}:{Path(dataset.root).resolve()}".encode()).hexdigest()[:16]
        self.dir = workspace.cache_dir / "frames" / f"{fingerprint}-{self.config.key()}"
        self.notices: list[str] = []
        self._described = False

    def __repr__(self) -> str:
        return f"FrameCache({str(self.dir)!r})"

    # -- where things are ---------------------------------------------------------------------

    def path(self, index: int) -> Path:
        """The file holding tracklet ``index`` (whether or not it exists yet)."""
        digest = hashlib.sha1(self.dataset.tracklets[index].key.encode("utf-8")).hexdigest()
        return self.dir / digest[:2] / f"{digest[2:20]}.npy"

    def _expected_shape(self, index: int) -> tuple[int, int, int, int]:
        return (len(self.dataset.tracklets[index]), NUM_CHANNELS, self.config.height, self.config.width)

    def _open_valid(self, index: int):
        """(open file positioned at the data, shape) of a complete file of the expected shape, else None."""
        try:
            fh = open(self.path(index), "rb")  # noqa: SIM115 - handed to the caller, who closes it
        except OSError:
            return None
        try:
            shape, fortran, dtype = read_npy_header(fh)
            complete = os.fstat(fh.fileno()).st_size == fh.tell() + math.prod(shape) * dtype.itemsize
        except (OSError, ValueError):
            fh.close()
            return None
        if complete and tuple(shape) == self._expected_shape(index) and not fortran and dtype == np.uint8:
            return fh, tuple(shape)
        fh.close()
        return None

    def _open_or_fill(self, index: int):
        """``_open_valid``'s (file, shape), preprocessing the tracklet in this process first if need be."""
        opened = self._open_valid(index)
        if opened is None:
            self._fill_inline(index)
            opened = self._open_valid(index)
            if opened is None:
                raise WorkspaceError(self.path(index), "the cache file is missing or damaged after writing it")
        return opened

    def is_cached(self, index: int) -> bool:
        """True if tracklet ``index`` has a complete file of the expected shape and type."""
        opened = self._open_valid(index)
        if opened is None:
            return False
        opened[0].close()
        return True

    def _describe(self) -> None:
        """Write ``config.json`` once, so a person can tell what a cache folder holds."""
        if self._described:
            return
        target = self.dir / "config.json"
        if not target.exists():
            atomic_write_json(target, {
                "dataset": self.dataset.name,
                "root": str(self.dataset.root),
                "fingerprint": self.dataset.fingerprint,
                "preprocess": self.config.to_dict(),
                "stored": "uint8 (T, 5, H, W): R, G, B, flow v + 127, flow u + 127",
            })
        self._described = True

    # -- filling -------------------------------------------------------------------------------

    def _fill_inline(self, index: int) -> None:
        t = self.dataset.tracklets[index]
        stored = preprocess_tracklet(t.frame_paths(), self.config, notices=self.notices)
        self._describe()
        _write_stored(self.path(index), stored)

    def ensure(
        self,
        tracklet_indices: Iterable[int],
        progress: ProgressFn | None = None,
        cancel: Any = None,
        workers: int = 2,
    ) -> int:
        """Preprocess the tracklets among ``tracklet_indices`` that are not cached yet.

        Args:
            tracklet_indices: dataset tracklet indices (duplicates are fine).
            progress: called as ``progress(done_frames, total_frames, text)`` over the missing
                frames (once at the start with 0, then after each tracklet).
            cancel: a callable returning True, or an object with ``is_set()``, to stop early;
                tracklets already being processed finish (and are valid), the rest are skipped.
            workers: processes to use (default 2: both cores). 1 works in this process.

        Returns:
            The number of tracklets preprocessed by this call (fewer if cancelled).

        Raises:
            FrameError: a frame cannot be decoded (or has an unusable size), naming the file.
                Tracklets finished before it stay cached.
        """
        wanted = sorted({int(i) for i in tracklet_indices})
        n = len(self.dataset.tracklets)
        for i in wanted:
            if not 0 <= i < n:
                raise IndexError(f"tracklet index {i} out of range (the dataset has {n} tracklets)")
        missing = [i for i in wanted if not self.is_cached(i)]
        if not missing:
            return 0
        lengths = {i: len(self.dataset.tracklets[i]) for i in missing}
        total = sum(lengths.values())
        done = 0
        if progress:
            progress(0, total, PROGRESS_TEXT)
        self._describe()

        started = time.perf_counter()
        if workers <= 1 or len(missing) == 1 or total < INLINE_FRAMES:
            count = 0
            for i in missing:
                if is_cancelled(cancel):
                    break
                self._fill_inline(i)
                count += 1
                done += lengths[i]
                if progress:
                    progress(done, total, PROGRESS_TEXT)
            return count
        count = self._ensure_pool(missing, lengths, total, progress, cancel, workers)
        if count == len(missing) and total >= RATE_MIN_FRAMES:
            record_rate(self.workspace, self.dir.name, total, time.perf_counter() - started)
        return count

    def _ensure_pool(self, missing: list[int], lengths: dict[int, int], total: int,
                     progress: ProgressFn | None, cancel: Any, workers: int) -> int:
        config = self.config.to_dict()
        ctx = _pool_context()
        count = 0
        finished_frames = [0]  # frames done by another process (counted in the progress)
        error: tuple | None = None
        pending: dict[Future, int] = {}
        # Start at a random place in the list and re-check each tracklet just before it is
        # sent: two processes filling the same cache (two trainings started side by side)
        # then share the work instead of each doing all of it.
        start = int.from_bytes(os.urandom(4), "little") % len(missing)
        todo = iter(missing[start:] + missing[:start])
        window = 4 * workers  # bounded, so cancel and errors take effect quickly
        try:
            with ProcessPoolExecutor(max_workers=min(workers, len(missing)), mp_context=ctx) as pool:
                def submit_more() -> None:
                    while len(pending) < window and error is None and not is_cancelled(cancel):
                        i = next(todo, None)
                        if i is None:
                            return
                        if self.is_cached(i):  # another process did it meanwhile
                            finished_frames[0] += lengths[i]
                            continue
                        t = self.dataset.tracklets[i]
                        fut = pool.submit(_fill_job, str(t.root), list(t.frames), str(self.path(i)), config)
                        pending[fut] = i

                submit_more()
                while pending:
                    finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in finished:
                        i = pending.pop(fut)
                        result = fut.result()
                        if result[0] == "ok":
                            count += 1
                            finished_frames[0] += result[1]
                            self.notices.extend(result[2])
                            if progress:
                                progress(finished_frames[0], total, PROGRESS_TEXT)
                        elif error is None:
                            error = result
                    if error is None:
                        submit_more()
        except BrokenProcessPool as exc:
            # The usual cause: a script that calls reidviewer at import time. Worker processes
            # import the caller's main script again (forkserver/spawn), so it must be guarded.
            raise ReidViewerError(
                f"preprocessing {self.dataset.root}: a worker process died ({exc}). If you call reidviewer "
                "from a Python script, put the calls under `if __name__ == \"__main__\":` (worker processes "
                "import the script again), or pass workers=1."
            ) from exc
        if error is not None:
            _, kind, path, problem = error
            if kind == "frame":
                raise FrameError(path, problem)
            if kind == "workspace":
                raise WorkspaceError(path, problem)
            raise DatasetError(path, problem)
        return count

    # -- reading -------------------------------------------------------------------------------

    def get(self, tracklet_index: int) -> np.ndarray:
        """The stored frames of a tracklet, uint8 (T, 5, H, W), memory-mapped read-only.

        A tracklet not cached yet is preprocessed first, in this process.
        """
        fh, shape = self._open_or_fill(tracklet_index)
        with fh:  # the map keeps its own handle on the file it validated, even if a writer replaces it
            return np.memmap(fh, dtype=np.uint8, mode="r", offset=fh.tell(), shape=shape)

    def read(self, tracklet_index: int, frames: slice | None = None) -> np.ndarray:
        """Stored frames of a tracklet, read into memory (not mapped): uint8 (T', 5, H, W).

        One positioned read of just ``frames`` (a slice with step 1; None for all). Where each
        frame is read once, as evaluation does, this beats ``get``'s memory map, whose page
        faults cost 44 µs a frame at MARS scale here (a read: a few µs). A tracklet not cached
        yet is preprocessed first, in this process.
        """
        fh, shape = self._open_or_fill(tracklet_index)
        with fh:
            start, stop, step = (frames or slice(None)).indices(shape[0])
            if step != 1:
                raise ValueError(f"frames must be a slice with step 1, got {frames}")
            out = np.empty((max(stop - start, 0), *shape[1:]), dtype=np.uint8)
            frame_bytes = int(np.prod(shape[1:]))
            fh.seek(start * frame_bytes, os.SEEK_CUR)
            got = fh.readinto(memoryview(out).cast("B")) if out.size else 0
        if got != out.size:
            raise WorkspaceError(self.path(tracklet_index), f"cache file ended early ({got} of {out.size} bytes)")
        return out

    def network_input(self, tracklet_index: int, frames: slice | Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """Network input of (some frames of) a tracklet: float32 (T', 5, H, W).

        Args:
            tracklet_index: the tracklet.
            frames: a slice or frame indices (e.g. from ``transforms.sample_train_clip``);
                None for every frame. Only those frames are read from disk.
        """
        stored = self.get(tracklet_index)
        if frames is not None:
            stored = stored[frames] if isinstance(frames, slice) else stored[np.asarray(frames, dtype=np.int64)]
        return to_network_input(np.asarray(stored), self.config)



#: Preprocessing throughput ``estimate_cost`` assumes until this workspace has measured one
#: (frames/s on two cores, 128×64 PNG frames; ``bench/pipeline.py`` measures it on a machine).
ESTIMATE_FRAMES_PER_S = 1500
#: Bytes in the "GB" of every size we print: 2³⁰, as ``du -h`` and ``reidviewer evaluate``'s
#: "frame cache: … GB" line count, so an estimate and the disk use it predicts compare as they are.
GB = 2**30
#: ``ensure`` records its rate only from runs at least this long (a short one is mostly start-up).
RATE_MIN_FRAMES = 2000
#: Where measured preprocessing rates are kept, under the workspace's ``cache/frames/``.
RATE_FILE = "preprocess_rates.json"


def _rates_path(workspace: Workspace) -> Path:
    return workspace.cache_dir / "frames" / RATE_FILE


def record_rate(workspace: Workspace, folder: str, frames: int, seconds: float) -> None:
    """Remember the preprocessing rate a run measured, for ``estimate_cost``'s next estimate.

    Kept per cache folder (the same dataset's frames cost about the same again: MARS's JPEGs
    and iLIDS-VID's PNGs differ by 1.5×) and as ``last`` for datasets not preprocessed yet.
    """
    rates.record_rate(_rates_path(workspace), folder, frames, seconds)


def measured_rate(workspace: Workspace | None, folder: str | None = None) -> float | None:
    """Frames/s this workspace measured preprocessing ``folder`` (else any dataset, last); None if never."""
    if workspace is None:
        return None
    return rates.measured_rate(_rates_path(workspace), folder)


def estimate_cost(dataset: VideoDataset, workspace: Workspace | None, config: PreprocessConfig | None = None,
                  split: int = 0) -> dict[str, Any]:
    """What preprocessing ``dataset`` would cost, before paying it.

    The rate is the one this workspace last measured on the same dataset and settings, else on
    any dataset, else the assumed ``ESTIMATE_FRAMES_PER_S``.

    Returns:
        ``cache_gb`` (every tracklet), ``test_cache_gb`` (split ``split``'s query and gallery,
        what an evaluation needs), ``preprocess_minutes`` (for every frame not cached yet),
        ``test_tracklets`` (the split's query and gallery tracklets), ``test_frames_missing``,
        ``test_missing_gb`` and ``test_preprocess_minutes`` (their frames not cached yet: what
        evaluating the split first costs), ``frames_per_s``
        (the rate), ``rate_measured`` (it was measured in this workspace) and
        ``cached_fraction`` (of the frames). Sizes are in ``GB`` (2³⁰ bytes).
    """
    config = config or PreprocessConfig()
    per_frame = NUM_CHANNELS * config.height * config.width
    lengths = dataset.sequence_lengths()
    total = int(lengths.sum())
    test = np.unique(np.concatenate([dataset.splits[split].query, dataset.splits[split].gallery])) \
        if dataset.splits else np.zeros(0, dtype=np.int64)
    cached_ids: set[int] = set()
    cache = FrameCache(workspace, dataset, config) if workspace is not None else None
    if cache is not None and total and cache.dir.is_dir():
        # Existence only (a stat per tracklet: 20 k for MARS in ~0.1 s); ``ensure`` checks sizes.
        cached_ids = {i for i in range(len(lengths)) if cache.path(i).is_file()}
    cached = sum(int(lengths[i]) for i in cached_ids)
    test_missing = sum(int(lengths[i]) for i in test if int(i) not in cached_ids)
    measured = measured_rate(workspace, cache.dir.name if cache is not None else None)
    rate = measured or ESTIMATE_FRAMES_PER_S
    return {
        "cache_gb": total * per_frame / GB,
        "test_cache_gb": int(lengths[test].sum()) * per_frame / GB if len(test) else 0.0,
        "preprocess_minutes": (total - cached) / rate / 60,
        "test_frames_missing": test_missing,
        "test_missing_gb": test_missing * per_frame / GB,
        "test_preprocess_minutes": test_missing / rate / 60,
        "test_tracklets": len(test),
        "frames_per_s": int(round(rate)),
        "rate_measured": measured is not None,
        "cached_fraction": cached / total if total else 1.0,
    }


def format_minutes(minutes: float) -> str:
    """``none`` (nothing to do), ``under a minute``, ``about 7 min`` or ``about 1.5 h``."""
    if minutes <= 0:
        return "none"
    if minutes < 1:
        return "under a minute"
    if minutes < 90:
        return f"about {minutes:.0f} min"
    return f"about {minutes / 60:.1f} h"


def describe_rate(cost: dict[str, Any]) -> str:
    """``2,492 frames/s (measured in this workspace)`` or ``(assumed …)``, from ``estimate_cost``."""
    how = "measured in this workspace" if cost.get("rate_measured") else "assumed: none measured here yet"
    return f"{cost['frames_per_s']:,} frames/s ({how})"


def describe_preprocessing_cost(cost: dict[str, Any]) -> str:
    """What evaluating a split first preprocesses, from ``estimate_cost``: "preprocessing N frames (…): about …"."""
    missing = int(cost.get("test_frames_missing", 0))
    return (f"preprocessing {missing:,} frames ({cost['test_missing_gb']:.1f} GB in the workspace's "
            f"frame cache): {format_minutes(cost['test_preprocess_minutes'])} at {describe_rate(cost)}")
