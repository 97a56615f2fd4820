"""DukeMTMC-VideoReID reader (docs/method.md §6.2): fixed train / query / gallery folders.

Layout (the root may be torchreid's ``dukemtmc-vidreid/`` or ``DukeMTMC-VideoReID/`` itself)::

    DukeMTMC-VideoReID/{train,query,gallery}/<pid 4d>/<tracklet 4d>/0001_C6_F0099_X30823.jpg

The old frame naming ``0001C6F0099X30823.jpg`` is read too. camid = the digit after ``C`` − 1.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from reidviewer.data.dataset import VideoDataset
from reidviewer.data.readers._common import (
    EMPTY_FOLDERS,
    check_protocol,
    list_frames,
    list_subdirs,
    parts_dataset,
    rel_posix,
    require_dir,
    skipped_notice,
)
from reidviewer.data.registry import register_reader
from reidviewer.errors import DatasetError

if TYPE_CHECKING:
    from reidviewer.workspace import Workspace

BASE = "DukeMTMC-VideoReID"
PARTS = ("train", "query", "gallery")
_FRAME = re.compile(r"^(\d+)_?C(\d)_?F(\d+)", re.IGNORECASE)
_NUMBER = re.compile(r"^\d+$")


def find_base(root: Path) -> Path | None:
    """The ``DukeMTMC-VideoReID`` folder for ``root``, or None."""
    if (root / BASE).is_dir():
        return root / BASE
    if root.name.lower() == BASE.lower() and (root / "query").is_dir():
        return root
    return None


def open_dukevideo(root: Path, protocol: str = "standard") -> VideoDataset:
    """Index DukeMTMC-VideoReID.

    Raises:
        DatasetError: naming the folder or frame file at fault.
    """
    root = Path(root)
    base = find_base(root)
    if base is None:
        if all((root / p).is_dir() for p in PARTS):
            base = root  # chosen explicitly with --dataset dukevideo on a renamed folder
        else:
            raise DatasetError(root, f"not a DukeMTMC-VideoReID folder; expected {DukeVideoReader.description}")

    rows: list[tuple[int, int, str, str, str, list[str]]] = []  # pid, camid, person, camera, key, frames
    parts: list[int] = []
    empty: list[str] = []
    for p, part in enumerate(PARTS):
        part_dir = require_dir(base / part, f"{part}/<pid 4d>/<tracklet 4d>/ folders of frames")
        for person in list_subdirs(part_dir):
            if not _NUMBER.match(person):
                raise DatasetError(part_dir / person, "misnamed person folder; expected a 4-digit person id like 0001")
            for tid in list_subdirs(part_dir / person):
                folder = part_dir / person / tid
                if not _NUMBER.match(tid):
                    raise DatasetError(folder, "misnamed tracklet folder; expected a 4-digit tracklet id like 0001")
                names = list_frames(folder)
                key = rel_posix(folder, root)
                if not names:
                    empty.append(key)
                    continue
                m = _FRAME.match(names[0])
                if not m:
                    raise DatasetError(
                        folder / names[0],
                        "misnamed frame; expected <pid>_C<cam>_F<frame>_X<n>.jpg (0001_C6_F0099_X30823.jpg) "
                        "or 0001C6F0099X30823.jpg",
                    )
                cam = int(m.group(2))
                rows.append((int(person), cam - 1, person, f"C{cam}", key, names))
                parts.append(p)
    notices: list[str] = []
    if empty:
        notices.append(skipped_notice(len(empty), EMPTY_FOLDERS, empty))
    if not rows:
        raise DatasetError(base, "no tracklet with frames in train/, query/ or gallery/")
    for p, part in ((1, "query"), (2, "gallery")):
        if p not in parts:
            raise DatasetError(base / part, "holds no tracklet with frames")
    return parts_dataset(DukeVideoReader, root, protocol, rows, parts, notices)


@register_reader
class DukeVideoReader:
    """DukeMTMC-VideoReID: ``{train,query,gallery}/<pid>/<tracklet>/<frames>.jpg``."""

    name = "dukevideo"
    protocols = ("standard",)
    description = "DukeMTMC-VideoReID/{train,query,gallery}/<pid 4d>/<tracklet 4d>/0001_C6_F0099_X30823.jpg"
    priority = 0

    def detect(self, root: Path) -> bool:
        """True if ``root`` is, or holds, a ``DukeMTMC-VideoReID`` folder."""
        return find_base(Path(root)) is not None

    def open(self, root: Path, protocol: str, workspace: Workspace | None) -> VideoDataset:
        """Index the dataset (a folder listing; ``workspace`` is unused)."""
        check_protocol(self, protocol)
        return open_dukevideo(Path(root), protocol)
