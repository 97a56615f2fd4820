"""A video re-ID dataset: tracklets plus the split protocol(s) that make train/query/gallery."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from reidviewer.data.tracklet import Tracklet
from reidviewer.errors import UsageError


class SplitError(UsageError, IndexError):
    """A split number that the dataset does not have."""

#: Evaluation rules a split can ask for (see ``reidviewer.engine.metrics``).
#: ``market1501``: torchreid — remove same pid+camid gallery items, skip queries without a match.
#: ``mars_official``: as ``market1501``, and gallery items with pid -1 (junk) are ignored too.
EVAL_RULES = ("market1501", "mars_official")


@dataclass(frozen=True)
class Split:
    """One train/query/gallery partition, as arrays of tracklet indices into the dataset.

    Attributes:
        name: a short label such as ``"split 0"``.
        train: indices of training tracklets.
        query: indices of query (probe) tracklets.
        gallery: indices of gallery tracklets.
    """

    name: str
    train: np.ndarray
    query: np.ndarray
    gallery: np.ndarray

    def train_labels(self, tracklets: list[Tracklet]) -> np.ndarray:
        """Training identity labels 0..N-1 (index of the pid in the sorted training pids)."""
        pids = np.array([tracklets[i].pid for i in self.train], dtype=np.int64)
        _, labels = np.unique(pids, return_inverse=True)
        return labels.astype(np.int64)

    def num_train_ids(self, tracklets: list[Tracklet]) -> int:
        """Number of distinct identities in the training part."""
        return len({tracklets[i].pid for i in self.train})


@dataclass
class VideoDataset:
    """A dataset opened by a reader.

    Attributes:
        name: the reader's registry name (``ilidsvid``, ``prid2011``, ``mars``, ...).
        root: the folder the user opened (read-only).
        protocol: the split protocol in force (for example ``ran`` or ``wang`` for PRID).
        tracklets: every tracklet of the protocol, ``tracklets[i].index == i``.
        splits: the train/query/gallery partitions (10 for iLIDS-VID and PRID, 1 for MARS).
        protocols: every protocol the reader offers; the first is the default.
        eval_rule: which ranking rule evaluation uses (one of ``EVAL_RULES``).
        fingerprint: a short hash that changes when the dataset's content changes.
        notices: things the user should know (random splits because no split file, skipped
            tracklets, ...), shown by the CLI and the app.
        occlusion: optional ground-truth occlusion ratio per frame, keyed by tracklet key
            (SynthWalk records it).
    """

    name: str
    root: Path
    protocol: str
    tracklets: list[Tracklet]
    splits: list[Split]
    protocols: tuple[str, ...] = ()
    eval_rule: str = "market1501"
    fingerprint: str = ""
    notices: list[str] = field(default_factory=list)
    occlusion: dict[str, np.ndarray] | None = None

    @property
    def num_frames(self) -> int:
        """Total frame count over all tracklets."""
        return int(sum(len(t) for t in self.tracklets))

    @property
    def identities(self) -> int:
        """Number of distinct identities (pid values) among the tracklets."""
        return len({t.pid for t in self.tracklets})

    @property
    def cameras(self) -> int:
        """Number of distinct cameras."""
        return len({t.camid for t in self.tracklets})

    def split(self, n: int) -> Split:
        """The n-th split.

        Raises:
            SplitError: (a ``UsageError`` and an ``IndexError``) naming how many splits there are.
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 0 <= n < len(self.splits):
            raise SplitError(f"{self.name} has {len(self.splits)} split(s) (0..{len(self.splits) - 1}); "
                             f"--split {n} does not exist")
        return self.splits[n]

    def sequence_lengths(self) -> np.ndarray:
        """Frame count of every tracklet."""
        return np.array([len(t) for t in self.tracklets], dtype=np.int64)

    def summary(self) -> dict:
        """The facts ``reidviewer info --json`` prints (integers only, one entry per split)."""
        lengths = self.sequence_lengths()

        def part(indices: np.ndarray) -> dict:
            return {
                "identities": len({self.tracklets[i].pid for i in indices}),
                "tracklets": int(len(indices)),
            }

        return {
            "dataset": self.name,
            "root": str(self.root),
            "protocol": self.protocol,
            "protocols": list(self.protocols),
            "identities": self.identities,
            "tracklets": len(self.tracklets),
            "frames": int(lengths.sum()),
            "cameras": self.cameras,
            "length": {
                "min": int(lengths.min()) if len(lengths) else 0,
                "max": int(lengths.max()) if len(lengths) else 0,
                "mean": float(lengths.mean()) if len(lengths) else 0.0,
                "median": float(np.median(lengths)) if len(lengths) else 0.0,
            },
            "splits": [
                {"split": i, "train": part(s.train), "query": part(s.query), "gallery": part(s.gallery)}
                for i, s in enumerate(self.splits)
            ],
            "notices": list(self.notices),
        }
