"""The generic folder reader: any tracklets laid out as person / camera / tracklet folders.

Layout::

    ROOT/{train,query,gallery}/<person>/<camera>/<tracklet>/<frames .png/.jpg/.jpeg>

``train/`` is optional. Person and camera names are free text: pid is the position of the
person's name among all person names of the three parts (natural order), so one name in
query and gallery is one identity; camid likewise among camera names. A camera folder named
``unknown`` (or ``unk``, ``none``, ``-1``, ``?``) holds tracklets whose camera is not known:
their camid is ``UNKNOWN_CAMERA`` (-1), which evaluation never treats as "the same camera".
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from reidviewer.data.dataset import VideoDataset
from reidviewer.data.readers._common import (
    EMPTY_FOLDERS,
    check_name,
    check_protocol,
    is_image_name,
    list_frames,
    parts_dataset,
    rel_posix,
    skipped_notice,
)
from reidviewer.data.registry import register_reader
from reidviewer.data.tracklet import UNKNOWN_CAMERA, UNKNOWN_CAMERA_NAMES, natural_key
from reidviewer.errors import DatasetError

if TYPE_CHECKING:
    from reidviewer.workspace import Workspace

PARTS = ("train", "query", "gallery")
LAYOUT = "ROOT/{train,query,gallery}/<person>/<camera>/<tracklet>/<frames .png/.jpg>"


def _subdirs_no_frames(folder: Path, level: str) -> list[str]:
    """Sub-folders of ``folder`` (natural order); frames found at this level are a layout error."""
    try:
        with os.scandir(folder) as it:
            entries = [(check_name(folder, e.name), e.is_dir()) for e in it if not e.name.startswith(".")]
    except OSError as exc:
        raise DatasetError(folder, f"cannot be listed ({exc.strerror or exc})") from None
    stray = [n for n, is_dir in entries if not is_dir and is_image_name(n)]
    if stray:
        raise DatasetError(
            folder,
            f"holds frame files ({stray[0]}) where {level} folders were expected; layout is {LAYOUT}",
        )
    return sorted((n for n, is_dir in entries if is_dir), key=natural_key)


def _natural_index(names: set[str]) -> dict[str, int]:
    return {n: i for i, n in enumerate(sorted(names, key=lambda s: (natural_key(s), s)))}


def open_folder(root: Path, protocol: str = "standard") -> VideoDataset:
    """Index a person/camera/tracklet folder tree.

    Raises:
        DatasetError: naming the folder at fault.
    """
    root = Path(root)
    for part in ("query", "gallery"):
        if not (root / part).is_dir():
            raise DatasetError(root / part, f"folder is missing; expected {LAYOUT} (train/ optional)")
    found: list[tuple[int, str, str, str, list[str]]] = []  # part, person, camera, key, frames
    empty: list[str] = []
    parts_present = [p for p in PARTS if (root / p).is_dir()]
    for part in parts_present:
        p = PARTS.index(part)
        for person in _subdirs_no_frames(root / part, "<person>"):
            for camera in _subdirs_no_frames(root / part / person, "<camera>"):
                for tracklet in _subdirs_no_frames(root / part / person / camera, "<tracklet>"):
                    folder = root / part / person / camera / tracklet
                    key = rel_posix(folder, root)
                    names = list_frames(folder)
                    if names:
                        found.append((p, person, camera, key, names))
                    else:
                        empty.append(key)
    notices: list[str] = []
    if "train" not in parts_present:
        notices.append("no train/ folder: the split has no training tracklets")
    if empty:
        notices.append(skipped_notice(len(empty), EMPTY_FOLDERS, empty))
    for p in (1, 2):
        if not any(f[0] == p for f in found):
            raise DatasetError(root / PARTS[p], f"holds no tracklet with frames; expected {LAYOUT}")

    pid_of = _natural_index({f[1] for f in found})
    camid_of = _natural_index({f[2] for f in found if f[2].lower() not in UNKNOWN_CAMERA_NAMES})
    camid_of.update({f[2]: UNKNOWN_CAMERA for f in found if f[2].lower() in UNKNOWN_CAMERA_NAMES})
    rows = [(pid_of[person], camid_of[camera], person, camera, key, names) for _, person, camera, key, names in found]
    return parts_dataset(FolderReader, root, protocol, rows, [f[0] for f in found], notices)


@register_reader
class FolderReader:
    """Generic ``{train,query,gallery}/<person>/<camera>/<tracklet>/`` folders of frames."""

    name = "folder"
    protocols = ("standard",)
    description = LAYOUT + " (train/ optional)"
    priority = -10

    def detect(self, root: Path) -> bool:
        """True if ``root`` has ``query/`` and ``gallery/`` sub-folders."""
        root = Path(root)
        return (root / "query").is_dir() and (root / "gallery").is_dir()

    def open(self, root: Path, protocol: str, workspace: Workspace | None) -> VideoDataset:
        """Index the folders; ``workspace`` is unused."""
        check_protocol(self, protocol)
        return open_folder(Path(root), protocol)
