"""Helpers shared by the dataset readers: listing frames, packing names, splits, fingerprints.

Everything here reads only; readers never write into a dataset folder.
"""
from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from reidviewer.data.dataset import Split, VideoDataset
from reidviewer.data.tracklet import PackedNames, Tracklet, natural_key, sort_frames
from reidviewer.errors import DatasetError, UsageError

#: Frame file extensions the readers accept (compared lower-case).
IMAGE_EXTS = (".png", ".jpg", ".jpeg")

#: What a reader's notice calls the tracklet folders it skipped for holding no frame.
EMPTY_FOLDERS = "empty tracklet folder(s) (no .png/.jpg frames)"

#: Seed of the random splits made when a dataset ships no split file (fixed: same splits every run).
SPLIT_SEED = 0

#: Number of random splits made when a dataset ships no split file (the papers' 10 trials).
NUM_RANDOM_SPLITS = 10


def check_protocol(reader: object, protocol: str) -> None:
    """Raise ``ValueError`` naming the choices if ``reader`` has no protocol ``protocol``."""
    protocols = reader.protocols  # type: ignore[attr-defined]
    if protocol not in protocols:
        name = reader.name  # type: ignore[attr-defined]
        raise UsageError(f"dataset {name!r} has no protocol {protocol!r}; choose one of {', '.join(protocols)}")


def is_image_name(name: str) -> bool:
    """True for a frame file name we read (``.png``/``.jpg``/``.jpeg``, any case, not hidden)."""
    return not name.startswith(".") and name.lower().endswith(IMAGE_EXTS)


def check_name(folder: Path, name: str) -> str:
    """``name`` if it is valid text; a file or folder name that is not valid UTF-8 (it
    reaches Python as surrogate escapes) is an error naming where it is."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        shown = name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        raise DatasetError(folder, f"holds a file or folder whose name is not valid UTF-8 ({shown!r}); "
                                   "rename it") from None
    return name


def list_subdirs(folder: Path) -> list[str]:
    """Names of the visible sub-folders of ``folder``, in natural order.

    Raises:
        DatasetError: if ``folder`` is missing or unreadable.
    """
    try:
        with os.scandir(folder) as it:
            names = [check_name(folder, e.name) for e in it if not e.name.startswith(".") and e.is_dir()]
    except FileNotFoundError:
        raise DatasetError(folder, "folder is missing") from None
    except NotADirectoryError:
        raise DatasetError(folder, "is a file where a folder was expected") from None
    except OSError as exc:
        raise DatasetError(folder, f"cannot be listed ({exc.strerror or exc})") from None
    return sorted(names, key=natural_key)


def list_frames(folder: Path) -> list[str]:
    """Frame file names in ``folder`` ordered by frame number (natural sort, not directory order)."""
    try:
        with os.scandir(folder) as it:
            names = [check_name(folder, e.name) for e in it if is_image_name(e.name)]
    except FileNotFoundError:
        raise DatasetError(folder, "folder is missing") from None
    except OSError as exc:
        raise DatasetError(folder, f"cannot be listed ({exc.strerror or exc})") from None
    return sort_frames(names)


def scan_person_folders(cam_dir: Path, pattern: re.Pattern[str], expected: str) -> dict[int, str]:
    """Person number → folder name for one camera folder.

    Args:
        cam_dir: the camera folder holding one folder per person.
        pattern: a regular expression whose group 1 is the person number.
        expected: how the names should look, for the error (e.g. ``personNNN (for example person001)``).

    Raises:
        DatasetError: a misnamed folder, or two folders with the same person number.
    """
    persons: dict[int, str] = {}
    for name in list_subdirs(cam_dir):
        m = pattern.match(name)
        if not m:
            raise DatasetError(cam_dir / name, f"misnamed person folder; expected {expected}")
        pid = int(m.group(1))
        if pid in persons:
            raise DatasetError(cam_dir / name, f"same person number as {persons[pid]!r}")
        persons[pid] = name
    return persons


def require_dir(path: Path, expected: str) -> Path:
    """Return ``path`` if it is a folder, else raise a DatasetError saying what was expected."""
    if not path.is_dir():
        what = "is a file" if path.exists() else "is missing"
        raise DatasetError(path, f"folder {what}; expected {expected}")
    return path


def rel_posix(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` with forward slashes (stable keys on every OS)."""
    return path.relative_to(root).as_posix()


class FramePacker:
    """Collects the frame names of many tracklets into one compact byte array.

    A dataset with hundreds of thousands of frames would otherwise hold one Python string per
    frame. Each tracklet gets a ``PackedNames`` view (``prefix + name``) into the shared array.
    Non-ASCII frame names fall back to plain lists (``PackedNames`` decodes ASCII).
    """

    def __init__(self) -> None:
        self._names: list[str] = []
        self._slices: list[tuple[int, int, str]] = []
        self._ascii = True

    def add(self, prefix: str, names: Sequence[str]) -> int:
        """Register one tracklet's ordered frame names; returns its slot number."""
        start = len(self._names)
        self._names.extend(names)
        if self._ascii and not all(n.isascii() for n in names):
            self._ascii = False
        self._slices.append((start, len(self._names), prefix))
        return len(self._slices) - 1

    def build(self) -> list[Sequence[str]]:
        """The frame sequences, one per registered tracklet, in registration order."""
        if not self._ascii:
            return [[p + n for n in self._names[a:b]] for a, b, p in self._slices]
        arr = np.array([n.encode("ascii") for n in self._names], dtype="S") if self._names else np.zeros(0, "S1")
        return [PackedNames(arr, a, b, p) for a, b, p in self._slices]


def pack_tracklets(root: Path, rows: Sequence[tuple[int, int, str, str, str, Sequence[str]]]) -> list[Tracklet]:
    """The tracklets of ``(pid, camid, person, camera, key, frame names)`` rows, in their order.

    ``key`` is the tracklet folder relative to ``root`` (forward slashes) and the frame names
    are the files in it; they are packed into one array (``FramePacker``).
    """
    packer = FramePacker()
    for *_, key, names in rows:
        packer.add(key + "/", names)
    seqs = packer.build()
    return [
        Tracklet(index=i, pid=pid, camid=camid, frames=seqs[i], root=root, person=person, camera=camera, key=key)
        for i, (pid, camid, person, camera, key, _) in enumerate(rows)
    ]


def part_split(parts: Sequence[int]) -> Split:
    """The one split of a dataset laid out as fixed parts: ``parts[i]`` is tracklet ``i``'s
    part, 0 for train, 1 for query, 2 for gallery."""
    part_of = np.asarray(parts, dtype=np.int64)
    return Split(
        name="split 0",
        train=np.nonzero(part_of == 0)[0].astype(np.int64),
        query=np.nonzero(part_of == 1)[0].astype(np.int64),
        gallery=np.nonzero(part_of == 2)[0].astype(np.int64),
    )


def parts_dataset(
    reader: object,
    root: Path,
    protocol: str,
    rows: Sequence[tuple[int, int, str, str, str, Sequence[str]]],
    parts: Sequence[int],
    notices: list[str],
) -> VideoDataset:
    """A dataset of fixed train / query / gallery folders (DukeMTMC-VideoReID, generic folders).

    Args:
        reader: the reader (its ``name`` and ``protocols`` are recorded).
        root: the dataset root.
        protocol: the protocol name to record.
        rows: the tracklets, as for ``pack_tracklets``.
        parts: each row's part (0 train, 1 query, 2 gallery): the one split.
        notices: what the reader skipped, for the user.
    """
    name = reader.name  # type: ignore[attr-defined]
    tracklets = pack_tracklets(root, rows)
    return VideoDataset(
        name=name,
        root=root,
        protocol=protocol,
        tracklets=tracklets,
        splits=[part_split(parts)],
        protocols=reader.protocols,  # type: ignore[attr-defined]
        eval_rule="market1501",
        fingerprint=fingerprint(name, protocol, ((t.key, len(t.frames)) for t in tracklets)),
        notices=notices,
    )


def random_splits(
    ids: Sequence[int],
    n_splits: int = NUM_RANDOM_SPLITS,
    seed: int = SPLIT_SEED,
    test_first: bool = True,
) -> list[tuple[list[int], list[int]]]:
    """Seeded random 50/50 person splits.

    Args:
        ids: the identities to split.
        n_splits: how many splits.
        seed: ``numpy.random.default_rng`` seed; fixed so every run gets the same splits.
        test_first: the first half of each permutation is the test half (Wang et al. / torchreid)
            rather than the training half (RCN).

    Returns:
        ``(train_ids, test_ids)`` per split, each sorted.
    """
    rng = np.random.default_rng(seed)
    ids = list(ids)
    half = len(ids) // 2
    out = []
    for _ in range(n_splits):
        perm = [ids[i] for i in rng.permutation(len(ids))]
        first, second = perm[:half], perm[half:]
        test, train = (first, second) if test_first else (second, first)
        out.append((sorted(train), sorted(test)))
    return out


def fingerprint(name: str, protocol: str, entries: Iterable[tuple[str, int]], files: Iterable[Path] = ()) -> str:
    """A short content hash of a dataset: its tracklet folders with their frame counts, plus
    the bytes of small side files (split files). Cheap — no frame is opened.
    """
    h = hashlib.sha1(f"{name}\0{protocol}\n".encode())
    for key, count in sorted(entries):
        h.update(f"{key}\t{count}\n".encode("utf-8", "surrogateescape"))
    for f in files:
        h.update(f"{Path(f).name}\n".encode())
        try:
            h.update(Path(f).read_bytes())
        except OSError:
            h.update(b"<missing>")
    return h.hexdigest()[:16]


def skipped_notice(count: int, what: str, examples: Sequence[str]) -> str:
    """One notice line for ``count`` skipped items, with up to three examples."""
    shown = ", ".join(examples[:3]) + (", ..." if len(examples) > 3 else "")
    return f"{count} {what} skipped ({shown})"


def load_mat_int(path: Path, var: str, *, ndim: int = 2, columns: int | None = None) -> np.ndarray:
    """Load an integer matrix from a MATLAB ``.mat`` file, validated.

    MATLAB writes "double" matrices; scipy may give int32/uint16 or float64. Float values
    that are whole numbers are accepted; anything else is an error naming the file.

    Args:
        path: the ``.mat`` file.
        var: the variable to read.
        ndim: 2 for a matrix; 1 to flatten a vector (1×N or N×1).
        columns: required number of columns (matrices only).

    Returns:
        An int64 array.

    Raises:
        DatasetError: missing/unreadable file, missing variable, wrong shape, non-integer values.
    """
    import scipy.io  # lazy: scipy is slow to import and most commands never need it

    if not path.is_file():
        raise DatasetError(path, f"file is missing (expected a MATLAB file with variable {var!r})")
    try:
        mat = scipy.io.loadmat(str(path))
    except Exception as exc:  # scipy raises ValueError, TypeError, MatReadError... for bad files
        raise DatasetError(path, f"cannot be read as a MATLAB .mat file ({exc})") from None
    if var not in mat:
        found = ", ".join(k for k in mat if not k.startswith("__")) or "none"
        raise DatasetError(path, f"has no variable {var!r} (variables found: {found})")
    arr = np.asarray(mat[var])
    if arr.dtype.kind not in "iuf" or arr.size == 0:
        raise DatasetError(path, f"variable {var!r} is not a non-empty numeric matrix (dtype {arr.dtype})")
    if ndim == 1:
        if arr.ndim > 2 or (arr.ndim == 2 and min(arr.shape) != 1):
            raise DatasetError(path, f"variable {var!r} should be a vector, has shape {arr.shape}")
        arr = arr.reshape(-1)
    elif arr.ndim != 2 or (columns is not None and arr.shape[1] != columns):
        want = f"N×{columns}" if columns else "a matrix"
        raise DatasetError(path, f"variable {var!r} should be {want}, has shape {arr.shape}")
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr) | (arr != np.round(arr))
        if bad.any():
            where = np.argwhere(bad)[0]
            pos = ", ".join(str(int(i) + 1) for i in where)
            raise DatasetError(
                path,
                f"variable {var!r} must hold whole numbers (indices), but element ({pos}) is {arr[tuple(where)]!r}",
            )
    # Indices and ids are small numbers; 1e300 would wrap to a negative int64.
    too_big = np.abs(arr.astype(np.float64)) >= 2**31
    if too_big.any():
        where = np.argwhere(too_big)[0]
        pos = ", ".join(str(int(i) + 1) for i in where)
        raise DatasetError(path, f"variable {var!r} holds an out-of-range number at element ({pos}): "
                                 f"{arr[tuple(where)]!r}")
    return arr.astype(np.int64)
