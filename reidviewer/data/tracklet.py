"""The tracklet: one person seen by one camera, an ordered list of frame files."""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_DIGITS = re.compile(r"(\d+)")

#: ``Tracklet.camid`` of a tracklet whose camera is not known. Evaluation never counts two
#: such tracklets as "the same camera" (which would remove true matches); the training
#: sampler treats each as a camera of its own.
UNKNOWN_CAMERA = -1
#: Camera folder names that mean "camera not known" (compared lower-case).
UNKNOWN_CAMERA_NAMES = frozenset({"unknown", "unk", "none", "-1", "?", "n/a", "na", "unknown_camera"})


def natural_key(name: str) -> tuple:
    """Sort key that orders ``f2.png`` before ``f10.png`` (frame numbers, not characters)."""
    return tuple(int(part) if part.isdigit() else part.lower() for part in _DIGITS.split(name))


def sort_frames(names: Sequence[str]) -> list[str]:
    """Order frame file names by frame number (natural sort), never by directory order."""
    return sorted(names, key=natural_key)


class PackedNames(Sequence[str]):
    """A read-only sequence of frame names stored as one fixed-width byte array.

    MARS has 1.19 M frame names; Python strings would cost ~120 MB, this costs ~25 MB.
    Each item is ``prefix + name``.

    Args:
        names: a numpy ``S``-dtype array holding every name of a whole name list.
        start: first index (inclusive) of this tracklet's slice.
        stop: last index (exclusive).
        prefix: relative folder prepended to each name (ends with ``/`` or is empty).
    """

    __slots__ = ("_names", "_start", "_stop", "_prefix")

    def __init__(self, names: np.ndarray, start: int, stop: int, prefix: str = "") -> None:
        self._names = names
        self._start = int(start)
        self._stop = int(stop)
        self._prefix = prefix

    def __len__(self) -> int:
        return self._stop - self._start

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(i)
        return self._prefix + self._names[self._start + i].decode("ascii")


@dataclass(frozen=True, eq=False)
class Tracklet:
    """One person seen by one camera: an ordered list of frames.

    Attributes:
        index: position of the tracklet in its dataset's ``tracklets`` list.
        pid: dataset-wide integer identity. MARS keeps its raw ids (0 = distractor, -1 = junk);
            other readers number persons as the dataset names them (``person007`` → 7).
        camid: 0-based camera index, or ``UNKNOWN_CAMERA`` (-1) when the camera is not known.
        frames: frame file paths relative to ``root``, ordered by frame number.
        root: the dataset root the frame paths are relative to.
        person: the person's name as the dataset writes it (folder name or id string).
        camera: the camera's name as the dataset writes it.
        key: a stable key, unique in the dataset (the tracklet folder relative to the root, or
            for datasets without one folder per tracklet, a name built from its first frame).
            Annotations and caches are keyed by it.
    """

    index: int
    pid: int
    camid: int
    frames: Sequence[str]
    root: Path
    person: str
    camera: str
    key: str

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def num_frames(self) -> int:
        """Number of frames in the tracklet."""
        return len(self.frames)

    def frame_path(self, i: int) -> Path:
        """Absolute path of frame ``i``."""
        return self.root / self.frames[i]

    def frame_paths(self) -> list[Path]:
        """Absolute paths of every frame, in temporal order."""
        return [self.root / f for f in self.frames]

    def __repr__(self) -> str:
        return (
            f"Tracklet(index={self.index}, pid={self.pid}, camid={self.camid}, "
            f"frames={len(self.frames)}, key={self.key!r})"
        )
