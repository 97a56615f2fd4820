"""Builders of tiny datasets in the exact on-disk layouts the readers parse (SPEC §e.6).

Import from any test (``from fixtures_datasets import make_ilidsvid``); pytest puts ``tests/``
on ``sys.path``. Every builder writes real image files (small PNG/JPEG, encoded with OpenCV)
and returns the root a user would open. Frame files are written in *reverse* frame order,
so a reader that trusted directory/creation order would get them wrong.
"""
from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import cv2
import numpy as np
import scipy.io

#: Real MARS split metadata (query_IDX.mat, tracks_{train,test}_info.mat).
MARS_INFO = Path("/work/shared/data/mars-info")

_ENCODED: dict[tuple, bytes] = {}


def frame_bytes(value: int, ext: str = ".png", size: tuple[int, int] = (16, 8)) -> bytes:
    """An encoded H×W colour image whose blue channel is ``value % 256`` (memoised: fixtures stay fast).

    ``read_frame`` returns RGB, so the value is at ``[..., 2]``.
    """
    key = (value % 256, ext, size)
    if key not in _ENCODED:
        img = np.zeros((size[0], size[1], 3), dtype=np.uint8)
        img[:, :, 0] = value % 256  # OpenCV order is BGR: channel 0 is blue
        img[:, :, 1] = (value * 7) % 256
        img[:, :, 2] = 255 - value % 256
        ok, buf = cv2.imencode(ext, img)
        assert ok
        _ENCODED[key] = buf.tobytes()
    return _ENCODED[key]


def write_frames(folder: Path, names: Sequence[str], values: Sequence[int] | None = None) -> None:
    """Write one small image per name into ``folder``, last name first."""
    folder.mkdir(parents=True, exist_ok=True)
    values = list(values) if values is not None else list(range(len(names)))
    for name, value in reversed(list(zip(names, values))):
        ext = Path(name).suffix.lower()
        (folder / name).write_bytes(frame_bytes(value, ".jpg" if ext in (".jpg", ".jpeg") else ".png"))


def _length(lengths: int | dict | Callable, pid: int, cam: int | str) -> int:
    """Frames of one sequence: an int, ``f(pid, cam)``, or a dict keyed ``(pid, cam)`` or ``pid`` (default 3)."""
    if isinstance(lengths, int):
        return lengths
    if callable(lengths):
        return int(lengths(pid, cam))
    return int(lengths.get((pid, cam), lengths.get(pid, 3)))


# --------------------------------------------------------------------------- iLIDS-VID


def ilidsvid_ls_set(n_persons: int, n_splits: int = 10, seed: int = 1) -> np.ndarray:
    """A valid ``ls_set``: ``n_splits`` rows, each a permutation of 1..n_persons (int32)."""
    rng = np.random.default_rng(seed)
    return np.stack([rng.permutation(n_persons) + 1 for _ in range(n_splits)]).astype(np.int32)


def make_ilidsvid(
    root: Path,
    persons: Iterable[int] = range(1, 11),
    lengths: int | dict | Callable = 4,
    with_splits: bool = True,
    ls_set: np.ndarray | None = None,
    one_cam: dict[int, int] | None = None,
    first_frame: int = 98,
) -> Path:
    """Write ``root/i-LIDS-VID/sequences/cam{1,2}/personNNN/camC_personNNN_FFFFF.png``.

    Args:
        root: the folder to create (the dataset root a user opens).
        persons: person numbers present in both cameras.
        lengths: frames per sequence: an int, ``{(pid, cam): n}`` / ``{pid: n}``, or ``f(pid, cam)``.
        with_splits: write ``train-test people splits/train_test_splits_ilidsvid.mat``.
        ls_set: the ``ls_set`` matrix to write (default: 10 valid random permutations).
        one_cam: extra persons present in one camera only, ``{pid: cam}`` with cam 1 or 2.
        first_frame: number of the first frame (frames cross 99→100 by default).
    """
    persons = sorted(persons)
    seq = root / "i-LIDS-VID" / "sequences"
    entries = [(p, c) for p in persons for c in (1, 2)] + [(p, c) for p, c in (one_cam or {}).items()]
    for pid, cam in entries:
        n = _length(lengths, pid, cam)
        names = [f"cam{cam}_person{pid:03d}_{first_frame + i:05d}.png" for i in range(n)]
        folder = seq / f"cam{cam}" / f"person{pid:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        write_frames(folder, names, [pid * 10 + cam * 3 + i for i in range(n)])
    for cam in (1, 2):
        (seq / f"cam{cam}").mkdir(parents=True, exist_ok=True)
    if with_splits:
        mat = ls_set if ls_set is not None else ilidsvid_ls_set(len(persons))
        out = root / "train-test people splits"
        out.mkdir(parents=True, exist_ok=True)
        scipy.io.savemat(str(out / "train_test_splits_ilidsvid.mat"), {"ls_set": mat})
    return root


# --------------------------------------------------------------------------- PRID-2011


def make_prid(
    root: Path,
    cam_a: Iterable[int] = range(1, 11),
    cam_b: Iterable[int] = range(1, 13),
    lengths: int | dict | Callable = 5,
    splits: list[dict] | None = None,
    splits_at: str = "root",
) -> Path:
    """Write ``root/prid_2011/multi_shot/cam_{a,b}/person_NNNN/NNNN.png``.

    Args:
        root: the ``prid2011`` folder to create.
        cam_a: person numbers seen by camera A.
        cam_b: person numbers seen by camera B (typically a superset, as in the real data).
        lengths: frames per sequence: an int, ``{(pid, cam): n}`` (cam "a"/"b") / ``{pid: n}``,
            or ``f(pid, cam)``.
        splits: if given, written as ``splits_prid2011.json``.
        splits_at: ``"root"`` (beside ``prid_2011/``).
    """
    ms = root / "prid_2011" / "multi_shot"
    for cam, pids in (("a", cam_a), ("b", cam_b)):
        (ms / f"cam_{cam}").mkdir(parents=True, exist_ok=True)
        for pid in pids:
            n = _length(lengths, pid, cam)
            names = [f"{i + 1:04d}.png" for i in range(n)]
            write_frames(ms / f"cam_{cam}" / f"person_{pid:04d}", names, [pid + i for i in range(n)])
    if splits is not None:
        (root / "splits_prid2011.json").write_text(json.dumps(splits))
    return root


# --------------------------------------------------------------------------- MARS


def mars_names(tracks: np.ndarray) -> list[str]:
    """Frame names ``<pid4>C<cam>T<tracklet4>F<frame3>.jpg`` consistent with a track-info matrix.

    Rows must tile the name list contiguously from line 1 (true of the real metadata, whose
    rows are sorted by pid with -1 first and by camera within a pid, so the names come out in
    the folders' ASCII order with files sorted). pid -1 is written ``00-1``. Tracklet numbers
    count up per (pid, camera).
    """
    out: list[str] = []
    counter: dict[tuple[int, int], int] = {}
    for start, end, pid, cam in np.asarray(tracks).tolist():
        assert start == len(out) + 1, "rows must tile the name list contiguously"
        t = counter[pid, cam] = counter.get((pid, cam), 0) + 1
        stem = f"{'00-1' if pid == -1 else f'{pid:04d}'}C{cam}T{t:04d}F"
        out.extend([f"{stem}{f:03d}.jpg" for f in range(1, end - start + 2)])
    return out


def write_mars_info(
    root: Path,
    track_train: np.ndarray,
    track_test: np.ndarray,
    query_idx: np.ndarray,
    names: tuple[list[str], list[str]] | None = None,
) -> Path:
    """Write ``root/info/`` (CRLF name lists, int32 track matrices, uint16 query_IDX)."""
    info = root / "info"
    info.mkdir(parents=True, exist_ok=True)
    if names is None:
        names = (mars_names(track_train), mars_names(track_test))
    for fname, lines in zip(("train_name.txt", "test_name.txt"), names):
        (info / fname).write_bytes(("\r\n".join(lines) + "\r\n").encode("ascii"))  # MATLAB '%s\r\n'
    scipy.io.savemat(str(info / "tracks_train_info.mat"), {"track_train_info": np.asarray(track_train, np.int32)})
    scipy.io.savemat(str(info / "tracks_test_info.mat"), {"track_test_info": np.asarray(track_test, np.int32)})
    scipy.io.savemat(str(info / "query_IDX.mat"), {"query_IDX": np.asarray(query_idx, np.uint16).reshape(1, -1)})
    return info


def _tracks(rows: list[tuple[int, int, int]]) -> np.ndarray:
    """(pid, cam, length) rows → contiguous [start, end, pid, cam] matrix."""
    out, pos = [], 1
    for pid, cam, n in rows:
        out.append((pos, pos + n - 1, pid, cam))
        pos += n
    return np.array(out, dtype=np.int32)


#: The small MARS fixture: train pids 1 and 3; test junk (-1), distractor (0), pids 2 and 4.
MARS_SMALL_TRAIN = [(1, 1, 3), (1, 2, 4), (3, 1, 2), (3, 3, 5), (3, 3, 3)]
MARS_SMALL_TEST = [(-1, 1, 2), (0, 2, 3), (0, 6, 2), (2, 1, 4), (2, 2, 3), (2, 2, 2), (4, 3, 3), (4, 5, 5)]
#: 1-based rows of MARS_SMALL_TEST that are queries (pid 2 cam 1, pid 4 cam 3).
MARS_SMALL_QUERY = [4, 7]


def make_mars_small(root: Path, with_frames: bool = True) -> Path:
    """A tiny MARS with a ``00-1`` junk tracklet and ``0000`` distractors, frames as JPEGs.

    5 train tracklets (pids 1, 3), 8 test tracklets, 2 queries; torchreid gallery = 5
    (8 − 2 queries − 1 junk), official gallery = 8.
    """
    track_train, track_test = _tracks(MARS_SMALL_TRAIN), _tracks(MARS_SMALL_TEST)
    names = (mars_names(track_train), mars_names(track_test))
    write_mars_info(root, track_train, track_test, np.array(MARS_SMALL_QUERY), names)
    if with_frames:
        for home, lines in zip(("bbox_train", "bbox_test"), names):
            by_dir: dict[str, list[str]] = {}
            for n in lines:
                by_dir.setdefault(n[:4], []).append(n)
            for d, files in by_dir.items():
                write_frames(root / home / d, files)
    return root


def make_mars_full(root: Path) -> Path:
    """Full-scale MARS metadata: the real ``.mat`` files plus generated name lists (no frames)."""
    info = root / "info"
    info.mkdir(parents=True, exist_ok=True)
    for f in ("query_IDX.mat", "tracks_train_info.mat", "tracks_test_info.mat"):
        shutil.copyfile(MARS_INFO / f, info / f)
    for var, mat, fname in (
        ("track_train_info", "tracks_train_info.mat", "train_name.txt"),
        ("track_test_info", "tracks_test_info.mat", "test_name.txt"),
    ):
        tracks = scipy.io.loadmat(str(info / mat))[var]
        (info / fname).write_bytes(("\r\n".join(mars_names(tracks)) + "\r\n").encode("ascii"))
    return root


# --------------------------------------------------------------------------- DukeMTMC-VideoReID


def make_duke(
    root: Path,
    tracklets: Sequence[tuple[str, int, int, int, int]] = (
        ("train", 1, 1, 1, 3),
        ("train", 1, 2, 2, 4),
        ("train", 3, 1, 3, 3),
        ("query", 5, 1, 1, 4),
        ("query", 6, 1, 2, 3),
        ("gallery", 5, 2, 6, 5),
        ("gallery", 6, 2, 4, 3),
        ("gallery", 9, 1, 8, 2),
    ),
    style: str = "new",
    container: bool = True,
    first_frame: int = 8,
) -> Path:
    """Write ``[root/]DukeMTMC-VideoReID/{train,query,gallery}/<pid4>/<tid4>/<frames>.jpg``.

    Args:
        root: the ``dukemtmc-vidreid`` folder (or, with ``container=False``, the
            ``DukeMTMC-VideoReID`` folder itself).
        tracklets: ``(part, pid, tracklet, cam, n_frames)``.
        style: ``"new"`` (``0001_C6_F0099_X30823.jpg``) or ``"old"`` (``0001C6F0099X30823.jpg``).
        first_frame: number of the first frame (frames cross 9→10 by default).
    """
    base = root / "DukeMTMC-VideoReID" if container else root
    for part in ("train", "query", "gallery"):
        (base / part).mkdir(parents=True, exist_ok=True)
    for part, pid, tid, cam, n in tracklets:
        sep = "_" if style == "new" else ""
        names = [f"{pid:04d}{sep}C{cam}{sep}F{first_frame + i:04d}{sep}X{30000 + i:05d}.jpg" for i in range(n)]
        write_frames(base / part / f"{pid:04d}" / f"{tid:04d}", names)
    return root


# --------------------------------------------------------------------------- generic folder


def make_folder(
    root: Path,
    tracklets: Sequence[tuple[str, str, str, str, int | Sequence[str]]] = (
        ("train", "alice", "door", "t1", 3),
        ("train", "bob", "lobby", "t1", 3),
        ("query", "carol", "door", "a", ["9.png", "10.png", "11.png"]),
        ("query", "dave", "lobby", "a", 2),
        ("gallery", "carol", "lobby", "b", 4),
        ("gallery", "dave", "door", "b", 3),
        ("gallery", "erin", "street", "x", 2),
    ),
) -> Path:
    """Write ``root/{train,query,gallery}/<person>/<camera>/<tracklet>/<frames>``.

    Args:
        tracklets: ``(part, person, camera, tracklet, frames)`` where frames is a count
            (unpadded names ``9.png, 10.png, ...`` starting at 9) or a list of file names.
    """
    for part, person, camera, tracklet, frames in tracklets:
        names = [f"{9 + i}.png" for i in range(frames)] if isinstance(frames, int) else list(frames)
        write_frames(root / part / person / camera / tracklet, names)
    return root
