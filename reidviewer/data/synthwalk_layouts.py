"""Where SynthWalk's tracklets go on disk: the plan of every tracklet and the index files.

Three layouts, each exactly as the real dataset it imitates, so the real readers open them
without special cases:

``ilidsvid`` (the demo)
    ``i-LIDS-VID/sequences/cam{1,2}/personNNN/camC_personNNN_FFFFF.png`` and the split file
    ``train-test people splits/train_test_splits_ilidsvid.mat`` (``ls_set``, 10 × N).
``folder``
    ``{train,query,gallery}/<person>/<camera>/<tracklet>/NNNN.png|jpg``: one query tracklet per
    test identity, the rest of the test identities' tracklets in the gallery; camera folders
    ``c1``..``cN`` or ``unknown``.
``mars``
    ``bbox_{train,test}/<pid4>/<pid4>C<c>T<tttt>F<fff>.jpg`` with ``info/{train,test}_name.txt``
    (CRLF), ``info/tracks_{train,test}_info.mat`` (int32 [start, end, pid, camid], 1-based
    inclusive rows into the name lists, sorted by pid) and ``info/query_IDX.mat`` (1-based rows
    of the test tracks, one per test identity and camera); distractors are pid 0 (folder
    ``0000``), junk pid -1 (folder ``00-1``).

``plan`` decides every tracklet (which person, camera, folder, file names) from the config and
seed alone, so the files are the same whatever the number of worker processes.
"""
from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from reidviewer.data.synthwalk import SynthConfig

ILIDS_SEQUENCES = Path("i-LIDS-VID") / "sequences"
ILIDS_SPLITS = Path("train-test people splits") / "train_test_splits_ilidsvid.mat"
NUM_SPLITS = 10
MARS_HOMES = ("bbox_train", "bbox_test")
#: Camera folder name of the ``folder`` layout's tracklets whose camera is not known.
UNKNOWN_CAMERA = "unknown"
#: Distractor and junk tracklets rendered per worker job.
_EXTRA_GROUP = 16


@dataclass(frozen=True)
class TrackPlan:
    """One tracklet to render and write.

    Attributes:
        look: the identity whose appearance is drawn (distractors and junk have looks of their own).
        cam: camera number, 1-based.
        index: tracklet number of this look in this camera (0 for the first).
        kind: ``person`` or ``junk``.
        folder: the folder its frames go into, relative to the set's root.
        naming: how frames are named: ``ilidsvid``, ``numbered`` or ``mars``.
        stem: the file-name stem (``ilidsvid``: ``cam1_person001_``; ``mars``: ``0001C1T0001``).
        key: the tracklet's key as the readers give it.
        part: ``train``, ``query``, ``gallery`` or ``test`` (``mars``: the gallery is made by
            the protocol).
        pid: the identity number the layout writes (``mars``: 0 distractor, -1 junk).
    """

    look: int
    cam: int
    index: int
    kind: str
    folder: str
    naming: str
    stem: str
    key: str
    part: str
    pid: int


def frame_name(plan: TrackPlan, i: int, first_frame: int, ext: str) -> str:
    """File name of frame ``i`` (0-based) of a planned tracklet."""
    if plan.naming == "ilidsvid":
        return f"{plan.stem}{first_frame + i:05d}.{ext}"
    if plan.naming == "mars":
        return f"{plan.stem}F{i + 1:03d}.{ext}"
    return f"{i + 1:04d}.{ext}"


def _test_ids(config: SynthConfig) -> set[int]:
    rng = np.random.default_rng([config.seed, 0, 1])
    n_test = min(config.ids - 1, max(1, round(config.ids * config.test_fraction)))
    return {int(p) for p in rng.permutation(config.ids)[:n_test] + 1}


def _cameras_of(config: SynthConfig, pid: int) -> list[int]:
    """Cameras of every tracklet of identity ``pid``: at least two cameras, seeded."""
    if not config.max_tracklets:
        return list(range(1, config.cameras + 1))
    rng = np.random.default_rng([config.seed, pid, 0, 3])
    n = int(rng.integers(config.min_tracklets, config.max_tracklets + 1))
    k = int(rng.integers(2, min(config.cameras, n) + 1))
    seen = sorted(int(c) for c in rng.choice(config.cameras, size=k, replace=False) + 1)
    return seen + sorted(int(c) for c in rng.choice(seen, size=n - k))


def _plan_ilidsvid(config: SynthConfig) -> list[list[TrackPlan]]:
    groups = []
    for pid in range(1, config.ids + 1):
        group = []
        for cam in (1, 2):
            folder = f"{ILIDS_SEQUENCES.as_posix()}/cam{cam}/person{pid:03d}"
            group.append(TrackPlan(pid, cam, 0, "person", folder, "ilidsvid", f"cam{cam}_person{pid:03d}_",
                                   folder, "", pid))
        groups.append(group)
    return groups


def _plan_folder(config: SynthConfig) -> list[list[TrackPlan]]:
    test = _test_ids(config)
    groups = []
    for pid in range(1, config.ids + 1):
        cams = _cameras_of(config, pid)
        rng = np.random.default_rng([config.seed, pid, 0, 4])
        query = int(rng.integers(len(cams)))
        unknown = rng.random(len(cams)) < config.unknown_camera
        counts: dict[int, int] = {}
        group = []
        for j, cam in enumerate(cams):
            part = "train" if pid not in test else ("query" if j == query else "gallery")
            camera = UNKNOWN_CAMERA if unknown[j] else f"c{cam}"
            folder = f"{part}/{pid:04d}/{camera}/T{j + 1:04d}"
            group.append(TrackPlan(pid, cam, counts.get(cam, 0), "person", folder, "numbered", "", folder, part, pid))
            counts[cam] = counts.get(cam, 0) + 1
        groups.append(group)
    return groups


def _mars_pid_folder(pid: int) -> str:
    return "00-1" if pid == -1 else f"{pid:04d}"


def _plan_mars(config: SynthConfig) -> list[list[TrackPlan]]:
    test = _test_ids(config)
    groups = []

    def plan(look: int, cam: int, index: int, kind: str, pid: int, home: str, t: int, part: str) -> TrackPlan:
        folder = f"{home}/{_mars_pid_folder(pid)}"
        stem = f"{_mars_pid_folder(pid)}C{cam}T{t:04d}"
        return TrackPlan(look, cam, index, kind, folder, "mars", stem, f"{folder}/{stem}", part, pid)

    for pid in range(1, config.ids + 1):
        home, part = (MARS_HOMES[1], "test") if pid in test else (MARS_HOMES[0], "train")
        counts: dict[int, int] = {}
        group = []
        for cam in _cameras_of(config, pid):
            counts[cam] = counts.get(cam, 0) + 1
            group.append(plan(pid, cam, counts[cam] - 1, "person", pid, home, counts[cam], part))
        groups.append(group)
    rng = np.random.default_rng([config.seed, 0, 5])
    extra: list[TrackPlan] = []
    numbers: dict[tuple[int, int], int] = {}  # tracklet numbers of pid 0 and -1 per camera
    for j in range(config.distractors + config.junk):
        # Distractors are people seen once (a look of their own each); junk are bad boxes.
        pid, kind = (0, "person") if j < config.distractors else (-1, "junk")
        cam = int(rng.integers(1, config.cameras + 1))
        numbers[(pid, cam)] = numbers.get((pid, cam), 0) + 1
        extra.append(plan(config.ids + 1 + j, cam, 0, kind, pid, MARS_HOMES[1], numbers[(pid, cam)], "test"))
    groups += [extra[i:i + _EXTRA_GROUP] for i in range(0, len(extra), _EXTRA_GROUP)]
    return groups


def plan(config: SynthConfig) -> list[list[TrackPlan]]:
    """Every tracklet of the set, in groups that one worker job renders (one identity each)."""
    return {"ilidsvid": _plan_ilidsvid, "folder": _plan_folder, "mars": _plan_mars}[config.layout](config)


def camera_names(config: SynthConfig) -> list[str]:
    """The cameras as the layout names them (the sidecar lists them)."""
    if config.layout == "ilidsvid":
        return ["cam1", "cam2"]
    if config.layout == "mars":
        return [f"C{c}" for c in range(1, config.cameras + 1)]
    names = [f"c{c}" for c in range(1, config.cameras + 1)]
    return names + ([UNKNOWN_CAMERA] if config.unknown_camera else [])


def _savemat_bytes(variables: dict[str, np.ndarray], header: str) -> bytes:
    """A MAT-file with a fixed header text (scipy writes the creation time there), so the same
    config gives the same bytes."""
    import scipy.io

    buf = io.BytesIO()
    scipy.io.savemat(buf, variables)
    data = bytearray(buf.getvalue())
    data[:116] = header.encode("ascii").ljust(116)
    return bytes(data)


def _write_ilidsvid_splits(root: Path, config: SynthConfig) -> None:
    rng = np.random.default_rng([config.seed, 0, 0])
    ls_set = np.stack([rng.permutation(config.ids) + 1 for _ in range(NUM_SPLITS)]).astype(np.int32)
    path = root / ILIDS_SPLITS
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_savemat_bytes({"ls_set": ls_set}, "MATLAB 5.0 MAT-file, written by reidviewer SynthWalk"))
    (path.parent / "readme.txt").write_text(
        "SynthWalk splits in the iLIDS-VID format: ls_set is 10 x N; each row is a permutation of "
        "the person indices 1..N; the first half of a row is the test set.\n"
    )


def _write_mars_info(root: Path, config: SynthConfig, groups: Sequence[Sequence[TrackPlan]],
                     frames: dict[str, int]) -> None:
    info = root / "info"
    info.mkdir(parents=True, exist_ok=True)
    header = "MATLAB 5.0 MAT-file, written by reidviewer SynthWalk (MARS layout)"
    plans = [p for g in groups for p in g]
    for home, names_file, tracks_file, var in zip(MARS_HOMES, ("train_name.txt", "test_name.txt"),
                                                 ("tracks_train_info.mat", "tracks_test_info.mat"),
                                                 ("track_train_info", "track_test_info")):
        # The real lists: folders in ASCII order ("00-1" < "0000" < "0001"), files sorted.
        mine = sorted((p for p in plans if p.folder.startswith(home + "/")), key=lambda p: (p.folder, p.stem))
        names: list[str] = []
        rows = []
        for p in mine:
            n = frames[p.key]
            rows.append((len(names) + 1, len(names) + n, p.pid, p.cam))
            names.extend(frame_name(p, i, 0, "jpg") for i in range(n))
        (info / names_file).write_bytes("".join(f"{n}\r\n" for n in names).encode("ascii"))
        tracks = np.array(rows, dtype=np.int32).reshape(-1, 4)
        (info / tracks_file).write_bytes(_savemat_bytes({var: tracks}, header))
        if home == MARS_HOMES[1]:
            # One query per test identity and camera: its first tracklet there.
            query = [i + 1 for i, p in enumerate(mine) if p.pid > 0 and p.index == 0]
            dtype = np.uint16 if len(mine) < 65536 else np.uint32
            (info / "query_IDX.mat").write_bytes(
                _savemat_bytes({"query_IDX": np.array([query], dtype=dtype)}, header))


def write_index(root: Path, config: SynthConfig, groups: Sequence[Sequence[TrackPlan]], frames: dict[str, int]) -> None:
    """Write the layout's index files (splits, name lists, track tables) after the frames.

    Args:
        root: the set's folder.
        config: what was generated.
        groups: ``plan(config)``.
        frames: number of frames written for every tracklet key.
    """
    if config.layout == "ilidsvid":
        _write_ilidsvid_splits(root, config)
    elif config.layout == "mars":
        _write_mars_info(root, config, groups, frames)


def layout_complete(root: Path, config: Any) -> bool:
    """Whether the layout's index files and frame folders are all in place."""
    layout = getattr(config, "layout", "ilidsvid")
    if layout == "ilidsvid":
        return (root / ILIDS_SPLITS).is_file() and (root / ILIDS_SEQUENCES).is_dir()
    if layout == "mars":
        return all((root / "info" / f).is_file() for f in ("test_name.txt", "tracks_test_info.mat", "query_IDX.mat"))
    return (root / "query").is_dir() and (root / "gallery").is_dir()

