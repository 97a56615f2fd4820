"""iLIDS-VID reader (docs/method.md §6.2): two cameras, one sequence per person per camera, 10 splits.

Layout (the root may be the folder holding ``i-LIDS-VID/`` — torchreid's ``ilids-vid/`` — or
``i-LIDS-VID`` itself)::

    i-LIDS-VID/sequences/cam1/person001/cam1_person001_00317.png
    i-LIDS-VID/sequences/cam2/person001/cam2_person001_00xxx.png
    train-test people splits/train_test_splits_ilidsvid.mat   # ls_set, 10×N, 1-based

The core accepts any number of persons, so SynthWalk (which writes this layout) reuses it.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from reidviewer.data.dataset import VideoDataset
from reidviewer.data.readers._common import (
    EMPTY_FOLDERS,
    NUM_RANDOM_SPLITS,
    SPLIT_SEED,
    check_protocol,
    fingerprint,
    load_mat_int,
    random_splits,
    skipped_notice,
)
from reidviewer.data.readers._two_camera import TwoCameraFolders, two_camera_splits
from reidviewer.data.registry import register_reader
from reidviewer.errors import DatasetError

if TYPE_CHECKING:
    from reidviewer.workspace import Workspace

SEQUENCES = "i-LIDS-VID"
SPLITS_DIR = "train-test people splits"
SPLITS_MAT = "train_test_splits_ilidsvid.mat"
CAMERAS = ("cam1", "cam2")
_PERSON = re.compile(r"^person(\d+)$")


def find_base(root: Path) -> Path | None:
    """The ``i-LIDS-VID`` folder (the one holding ``sequences/``) for ``root``, or None."""
    for base in (root / SEQUENCES, root):
        if (base / "sequences" / CAMERAS[0]).is_dir() or (base / "sequences" / CAMERAS[1]).is_dir():
            return base
    return None


def find_splits_file(root: Path, base: Path) -> Path | None:
    """The ``train_test_splits_ilidsvid.mat`` beside the sequences, if there is one."""
    for folder in (root, base, base.parent):
        candidate = folder / SPLITS_DIR / SPLITS_MAT
        if candidate.is_file():
            return candidate
    return None


def read_ls_set(path: Path, n_persons: int) -> list[np.ndarray]:
    """Rows of ``ls_set`` as 0-based permutations of ``range(n_persons)``, validated.

    Raises:
        DatasetError: naming ``path`` if the matrix is not whole numbers, has the wrong width,
            names a person that does not exist, or a row is not a permutation.
    """
    ls_set = load_mat_int(path, "ls_set")
    if ls_set.shape[1] != n_persons:
        # MATLAB may have saved the transpose; accept it when unambiguous.
        if ls_set.shape[0] == n_persons:
            ls_set = ls_set.T
        else:
            raise DatasetError(
                path,
                f"'ls_set' has {ls_set.shape[1]} columns but the dataset has {n_persons} persons "
                f"seen by both cameras",
            )
    rows = []
    for r, row in enumerate(ls_set):
        if row.min() < 1 or row.max() > n_persons:
            bad = int(row[(row < 1) | (row > n_persons)][0])
            raise DatasetError(
                path, f"'ls_set' row {r + 1} names person index {bad}, outside 1..{n_persons} (unknown person)"
            )
        if len(np.unique(row)) != n_persons:
            raise DatasetError(path, f"'ls_set' row {r + 1} is not a permutation of 1..{n_persons} (repeated index)")
        rows.append(row - 1)
    return rows


def open_ilidsvid(root: Path, name: str = "ilidsvid", protocol: str = "standard") -> VideoDataset:
    """Index an iLIDS-VID-layout folder (any number of persons).

    Args:
        root: the folder holding ``i-LIDS-VID/`` (or ``i-LIDS-VID`` itself).
        name: the dataset name to record.
        protocol: the protocol name to record.

    Raises:
        DatasetError: naming the folder or file at fault.
    """
    root = Path(root)
    base = find_base(root)
    if base is None:
        raise DatasetError(root, f"not an iLIDS-VID folder; expected {IlidsVidReader.description}")
    seq = base / "sequences"
    folders = TwoCameraFolders(root, seq, CAMERAS, _PERSON, "personNNN", "person001")
    notices: list[str] = []
    one_cam = [folders.where(p) for p in folders.in_one()]
    if one_cam:
        notices.append(skipped_notice(len(one_cam), "person folder(s) present in one camera only", one_cam))
    both = folders.in_both()
    if not both:
        raise DatasetError(seq, "no person folder is present in both sequences/cam1 and sequences/cam2")

    # Read every frame list first: a person with an empty sequence is not usable.
    usable = [p for p in both if folders.read(p)]
    if folders.empty:
        notices.append(skipped_notice(len(folders.empty), EMPTY_FOLDERS, folders.empty))
    if not usable:
        raise DatasetError(seq, "no person has frames in both cameras")
    dropped = [folders.persons[0][p] for p in both if p not in set(usable)]
    if dropped:
        notices.append(skipped_notice(len(dropped), "person(s) without frames in both cameras", dropped))
    tracklets, tracks_of = folders.tracklets(usable)

    split_file = find_splits_file(root, base)
    if split_file is not None:
        rows = read_ls_set(split_file, len(both))
        half = len(both) // 2
        usable_set = set(usable)
        person_splits = []
        for row in rows:
            # The first half is the test half (Wang et al. ECCV'14, as torchreid reads it).
            test = sorted(both[i] for i in row[:half] if both[i] in usable_set)
            train = sorted(both[i] for i in row[half:] if both[i] in usable_set)
            person_splits.append((train, test))
    else:
        person_splits = random_splits(usable, NUM_RANDOM_SPLITS, SPLIT_SEED)
        notices.append(
            f"no split file ({SPLITS_DIR}/{SPLITS_MAT}); using {NUM_RANDOM_SPLITS} random 50/50 "
            f"person splits (seed {SPLIT_SEED})"
        )
    if split_file is not None:
        fix = (f"the first half of its 'ls_set' row (split 0 is row 1), the test half, names only persons "
               f"without frames in both cameras ({len(usable)} of {len(both)} persons have them)")
    else:
        fix = f"the random 50/50 splits need at least 2 persons with frames in both cameras, there are {len(usable)}"
    splits = two_camera_splits(person_splits, tracks_of, source=split_file or seq, fix=fix)

    return VideoDataset(
        name=name,
        root=root,
        protocol=protocol,
        tracklets=tracklets,
        splits=splits,
        protocols=IlidsVidReader.protocols,
        eval_rule="market1501",
        fingerprint=fingerprint(
            name,
            protocol,
            ((t.key, len(t.frames)) for t in tracklets),
            [split_file] if split_file is not None else [],
        ),
        notices=notices,
    )


@register_reader
class IlidsVidReader:
    """iLIDS-VID: ``i-LIDS-VID/sequences/cam{1,2}/personNNN/`` with the 10 standard splits."""

    name = "ilidsvid"
    protocols = ("standard",)
    description = (
        "i-LIDS-VID/sequences/cam1|cam2/personNNN/*.png (optionally "
        "'train-test people splits/train_test_splits_ilidsvid.mat')"
    )
    priority = 0

    def detect(self, root: Path) -> bool:
        """True if ``root`` (or ``root/i-LIDS-VID``) has ``sequences/cam1`` or ``sequences/cam2``."""
        return find_base(Path(root)) is not None

    def open(self, root: Path, protocol: str, workspace: Workspace | None) -> VideoDataset:
        """Index the dataset; ``workspace`` is unused (scanning 600 folders is fast)."""
        check_protocol(self, protocol)
        return open_ilidsvid(Path(root), self.name, protocol)
