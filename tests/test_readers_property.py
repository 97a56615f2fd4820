"""Property-based: any folder tree is a valid dataset or a ``ReidViewerError``, never another exception.

Hypothesis generates trees under the generic folder layout and the iLIDS-VID layout, with odd
names at every level, stray files where folders belong, and frame files that are valid small
PNGs and JPEGs (grey, RGB, RGBA, 16-bit, 1×1 to 12×12), truncated ones, random bytes or empty
files; iLIDS-VID trees may carry a split file that is valid, garbage, or numbers out of range.
``open_dataset`` must give a consistent ``VideoDataset`` or a ``ReidViewerError``, and
``read_frame`` on every frame of the result an RGB uint8 array or a ``FrameError``.
"""
from __future__ import annotations

import io
import shutil
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import scipy.io

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from reidviewer.data.dataset import VideoDataset  # noqa: E402
from reidviewer.data.frames import read_frame  # noqa: E402
from reidviewer.data.registry import open_dataset  # noqa: E402
from reidviewer.errors import FrameError, ReidViewerError  # noqa: E402
from reidviewer.workspace import Workspace  # noqa: E402

SETTINGS = settings(max_examples=50, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])

# ------------------------------------------------------------------------ frame contents


def rarely(draw, n: int) -> bool:
    """True about once in ``n`` draws. Hypothesis starts from (and shrinks towards) the first
    choice, so the first choice is the ordinary case and the odd one is the exception."""
    return draw(st.sampled_from([False] * (n - 1) + [True]))



@st.composite
def image_bytes(draw) -> bytes:
    h = draw(st.integers(1, 12))
    w = draw(st.integers(1, 12))
    channels = draw(st.sampled_from([1, 3, 4]))
    depth = draw(st.sampled_from([np.uint8, np.uint16]))
    ext = draw(st.sampled_from([".png", ".jpg"]))
    if ext == ".jpg":
        depth = np.uint8
        channels = 3 if channels == 4 else channels
    seed = draw(st.integers(0, 2**16))
    img = np.random.default_rng(seed).integers(0, np.iinfo(depth).max, (h, w, channels), dtype=depth)
    ok, buf = cv2.imencode(ext, img if channels > 1 else img[:, :, 0])
    assert ok
    return buf.tobytes()


@st.composite
def frame_content(draw) -> bytes:
    kind = draw(st.sampled_from(["image", "image", "truncated", "random", "empty", "padded"]))
    if kind == "empty":
        return b""
    if kind == "random":
        return draw(st.binary(min_size=1, max_size=64))
    data = draw(image_bytes())
    if kind == "truncated":
        return data[: draw(st.integers(1, max(1, len(data) - 1)))]
    if kind == "padded":
        return data + b"\x00" * draw(st.integers(1, 16))
    return data


#: Names a user's folder may hold: mostly ordinary, some odd, hidden, spaced, non-ASCII, misleading.
ODD_NAMES = ["0", "-1", "unknown", "?", " x ", ".hidden", "ü", "名前", "a.png", "x" * 60]
NAMES = ["a", "b", "c", "p1", "p2"] * 3 + ODD_NAMES
ODD_FRAME_NAMES = ["1.jpg", "frame.jpeg", "F.PNG", ".0003.png", "a b.png", "ü.png", "0004.png.txt", "notes.txt",
                   "0005.bmp"]
FRAME_NAMES = [f"{i:04d}.png" for i in range(1, 7)] * 2 + ODD_FRAME_NAMES


@st.composite
def files(draw, min_files: int = 1, max_files: int = 4) -> dict[str, bytes]:
    names = draw(st.lists(st.sampled_from(FRAME_NAMES), min_size=min_files, max_size=max_files, unique=True))
    return {n: draw(frame_content()) for n in names}


def write_tree(folder: Path, tree: dict) -> None:
    """``tree``: name -> bytes (a file) or dict (a folder)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, value in tree.items():
        if isinstance(value, dict):
            write_tree(folder / name, value)
        else:
            (folder / name).write_bytes(value)


# ------------------------------------------------------------------------ folder layout


@st.composite
def folder_tree(draw) -> dict:
    def level(inner) -> dict:
        keys = draw(st.lists(st.sampled_from(NAMES), min_size=0 if rarely(draw, 10) else 1,
                             max_size=2, unique=True))
        out: dict = {}
        for k in keys:
            # Now and then a stray file where a folder belongs.
            out[k] = draw(frame_content()) if rarely(draw, 15) else inner()
        return out

    def tracklet() -> dict:
        return draw(files(min_files=0 if rarely(draw, 10) else 1))

    def camera() -> dict:
        return level(tracklet)

    def person() -> dict:
        return level(camera)

    if rarely(draw, 6):  # any parts at all
        parts = draw(st.lists(st.sampled_from(["train", "query", "gallery", "junk"]), max_size=4, unique=True))
    else:
        parts = ["query", "gallery"] + (["train"] if draw(st.booleans()) else [])
    tree = {part: level(person) for part in parts}
    if rarely(draw, 6):
        tree.update(draw(files(max_files=2)))  # stray frames at the top
    return tree


# ---------------------------------------------------------------------- iLIDS-VID layout

PERSON_NAMES = ["person001", "person002", "person003", "person004"] * 3 + [
    "person1", "person0004", "personX", "person 005", "p006", "person-1"]


@st.composite
def split_file(draw) -> bytes | None:
    kind = draw(st.sampled_from(["none", "none", "valid", "valid", "garbage", "empty", "odd numbers", "wrong variable"]))
    if kind == "none":
        return None
    if kind == "garbage":
        return draw(st.binary(min_size=1, max_size=128))
    if kind == "empty":
        return b""
    n = draw(st.integers(1, 5))
    rows = draw(st.integers(1, 3))
    seed = draw(st.integers(0, 1000))
    rng = np.random.default_rng(seed)
    mat = np.stack([rng.permutation(n) + 1 for _ in range(rows)]).astype(np.float64)
    if kind == "odd numbers":
        mat.flat[draw(st.integers(0, mat.size - 1))] = draw(
            st.sampled_from([1e300, -1.0, 0.0, 0.5, float("nan"), float("inf"), 2.0**63]))
    buf = io.BytesIO()
    scipy.io.savemat(buf, {"ls_set" if kind != "wrong variable" else "other": mat})
    return buf.getvalue()


@st.composite
def ilids_tree(draw) -> dict:
    cams: dict = {}
    if rarely(draw, 6):
        names = draw(st.lists(st.sampled_from(["cam1", "cam2", "cam3", "Cam1"]), max_size=3, unique=True))
    else:
        names = ["cam1", "cam2"]
    everyone = draw(st.lists(st.sampled_from(PERSON_NAMES), min_size=2, max_size=5, unique=True))
    for cam in names:
        persons = [p for p in everyone if not rarely(draw, 8)]  # now and then seen by one camera only
        cams[cam] = {p: (draw(frame_content()) if rarely(draw, 15) else draw(files())) for p in persons}
    tree: dict = {"i-LIDS-VID": {"sequences": cams}}
    split = draw(split_file())
    if split is not None:
        tree["train-test people splits"] = {"train_test_splits_ilidsvid.mat": split}
    return tree


# ------------------------------------------------------------------------------ the checks


def check_dataset(ds: VideoDataset) -> None:
    n = len(ds.tracklets)
    assert n > 0
    for i, t in enumerate(ds.tracklets):
        assert t.index == i and len(t.frames) > 0
    assert ds.splits
    for s in ds.splits:
        for part in (s.train, s.query, s.gallery):
            part = np.asarray(part)
            assert part.dtype.kind == "i" and ((part >= 0) & (part < n)).all()
        assert len(s.query) > 0 and len(s.gallery) > 0


def check_frames(ds: VideoDataset) -> None:
    for t in ds.tracklets:
        for path in t.frame_paths():
            try:
                img = read_frame(path)
            except FrameError:
                continue
            assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3


def open_or_refuse(tree: dict, name: str) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="rv-prop-"))
    try:
        root = tmp / "root"
        write_tree(root, tree)
        try:
            ds = open_dataset(root, name, workspace=Workspace(tmp / "ws"))
        except ReidViewerError:
            return
        check_dataset(ds)
        check_frames(ds)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@SETTINGS
@given(tree=folder_tree())
def test_any_folder_layout_tree_is_a_dataset_or_a_clear_error(tree):
    open_or_refuse(tree, "folder")


@SETTINGS
@given(tree=folder_tree())
def test_any_tree_is_recognised_or_refused_clearly(tree):
    open_or_refuse(tree, "auto")


@SETTINGS
@given(tree=ilids_tree())
def test_any_ilidsvid_layout_tree_is_a_dataset_or_a_clear_error(tree):
    open_or_refuse(tree, "ilidsvid")


@SETTINGS
@given(data=frame_content())
def test_any_frame_file_is_an_rgb_image_or_a_frame_error(tmp_path, data):
    path = tmp_path / "0001.png"
    path.write_bytes(data)
    try:
        img = read_frame(path)
    except FrameError:
        return
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3 and min(img.shape[:2]) >= 4
