"""The two-camera sequence-folder layout shared by iLIDS-VID and PRID-2011 (and SynthWalk).

One folder per camera, and in each one folder per person holding that person's one sequence of
frames; a person seen by both cameras is an identity with two tracklets (camera 0 and camera 1),
and every split takes camera 0 as the queries and camera 1 as the gallery. The readers decide
which persons to keep and where the splits come from; this module scans the folders, lists the
frames and builds the tracklets and splits. It reads only.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from reidviewer.data.dataset import Split
from reidviewer.data.readers._common import list_frames, pack_tracklets, rel_posix, require_dir, scan_person_folders
from reidviewer.data.tracklet import Tracklet
from reidviewer.errors import DatasetError


class TwoCameraFolders:
    """The camera folders of one dataset and the frames listed so far.

    Args:
        root: the dataset root (tracklet keys and the paths of empty folders are relative to it).
        folder: the folder holding the camera folders (``sequences``, ``multi_shot``).
        cameras: the two camera folder names, camera 0 first.
        pattern: a person folder name; group 1 is the person number.
        person_form: how a person folder is named, for messages (``personNNN``).
        example: an example person folder name, for messages (``person001``).

    Attributes:
        persons: per camera, person number → person folder name.
        frames: ``(pid, camera)`` → frame names, for the persons read so far.
        empty: the empty person folders met so far (relative to ``root``).

    Raises:
        DatasetError: a camera folder is missing, or a person folder is misnamed or repeated.
    """

    def __init__(self, root: Path, folder: Path, cameras: Sequence[str], pattern: re.Pattern[str],
                 person_form: str, example: str) -> None:
        self.root = root
        self.folder = folder
        self.cameras = tuple(cameras)
        self.persons: list[dict[int, str]] = []
        for cam in self.cameras:
            require_dir(folder / cam, f"{folder.name}/{cam}/{person_form}/ folders of frames")
            self.persons.append(scan_person_folders(folder / cam, pattern, f"{person_form} (for example {example})"))
        self.frames: dict[tuple[int, int], list[str]] = {}
        self.empty: list[str] = []

    def in_both(self) -> list[int]:
        """The person numbers with a folder in both cameras, ascending."""
        return sorted(set(self.persons[0]) & set(self.persons[1]))

    def in_one(self) -> list[int]:
        """The person numbers with a folder in one camera only, ascending."""
        return sorted(set(self.persons[0]) ^ set(self.persons[1]))

    def where(self, pid: int) -> str:
        """``camera/person folder`` of person ``pid`` in the first camera that has them."""
        c = 0 if pid in self.persons[0] else 1
        return f"{self.cameras[c]}/{self.persons[c][pid]}"

    def person_folder(self, pid: int, camera: int) -> Path:
        """The folder of person ``pid`` in camera ``camera`` (0 or 1)."""
        return self.folder / self.cameras[camera] / self.persons[camera][pid]

    def read(self, pid: int) -> bool:
        """List person ``pid``'s frames in both cameras (into ``frames``; an empty folder goes
        to ``empty``). True when both cameras have frames of them."""
        ok = True
        for c in range(2):
            folder = self.person_folder(pid, c)
            names = list_frames(folder)
            if names:
                self.frames[pid, c] = names
            else:
                self.empty.append(rel_posix(folder, self.root))
                ok = False
        return ok

    def tracklets(self, pids: Iterable[int]) -> tuple[list[Tracklet], dict[int, tuple[int, int]]]:
        """The tracklets of persons ``pids`` (read before), camera 0 then camera 1 for each, and
        pid → (its camera-0 tracklet index, its camera-1 tracklet index)."""
        rows = []
        tracks_of: dict[int, tuple[int, int]] = {}
        for pid in pids:
            tracks_of[pid] = (len(rows), len(rows) + 1)
            for c, cam in enumerate(self.cameras):
                key = rel_posix(self.person_folder(pid, c), self.root)
                rows.append((pid, c, self.persons[c][pid], cam, key, self.frames[pid, c]))
        return pack_tracklets(self.root, rows), tracks_of


def two_camera_splits(
    person_splits: Iterable[tuple[Iterable[int], Iterable[int]]],
    tracks_of: dict[int, tuple[int, int]],
    *,
    source: Path,
    fix: str,
) -> list[Split]:
    """Splits for a two-camera dataset: train = both cameras, query = camera 0, gallery = camera 1.

    Args:
        person_splits: ``(train_pids, test_pids)`` per split.
        tracks_of: pid → (tracklet index in camera 0, tracklet index in camera 1).
        source: where the splits came from (the split file, or the folder whose persons were
            split at random), named when a split has no test person.
        fix: what to do about such a split, for the message.

    Raises:
        DatasetError: a split has no test person: it would give 0 queries and an empty gallery.
    """
    splits = []
    for i, (train, test) in enumerate(person_splits):
        test = list(test)
        if not test:
            raise DatasetError(source, f"split {i} has no test persons, so it would give 0 queries; {fix}")
        train_idx = sorted(j for p in train for j in tracks_of[p])
        query = sorted(tracks_of[p][0] for p in test)
        gallery = sorted(tracks_of[p][1] for p in test)
        splits.append(
            Split(
                name=f"split {i}",
                train=np.asarray(train_idx, dtype=np.int64),
                query=np.asarray(query, dtype=np.int64),
                gallery=np.asarray(gallery, dtype=np.int64),
            )
        )
    return splits
