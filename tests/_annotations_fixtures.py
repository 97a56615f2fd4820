"""Small datasets built directly from Tracklet/Split/VideoDataset for the annotation tests."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from reidviewer.data.dataset import Split, VideoDataset
from reidviewer.data.tracklet import Tracklet

#: Tracklet ``cam2/person006b`` shows person 5 but the dataset labels it 6 (a tracker mix-up).
MISLABELLED = "cam2/person006b"


def make_dataset(root: Path, fingerprint: str = "fp-test-0001", occlusion: bool = False) -> VideoDataset:
    """Persons 1..6 seen by two cameras (plus one mislabelled extra tracklet).

    Split 0: train = persons 1-3, query = cam1 of persons 4-6, gallery = cam2 of persons 4-6
    plus the mislabelled tracklet.
    """
    specs: list[tuple[int, int, str]] = []  # pid, camid, key
    for pid in range(1, 7):
        for cam in (0, 1):
            specs.append((pid, cam, f"cam{cam + 1}/person{pid:03d}"))
    specs.append((6, 1, MISLABELLED))
    tracklets = []
    occ = {}
    for i, (pid, cam, key) in enumerate(specs):
        n = 5 + i % 4
        frames = [f"{key}/cam{cam + 1}_person{pid:03d}_{j:05d}.png" for j in range(n)]
        tracklets.append(
            Tracklet(index=i, pid=pid, camid=cam, frames=frames, root=root, person=f"person{pid:03d}",
                     camera=f"cam{cam + 1}", key=key)
        )
        occ[key] = np.linspace(0.0, 0.8, n)
    train = np.array([t.index for t in tracklets if t.pid <= 3 and t.key != MISLABELLED], dtype=np.int64)
    query = np.array([t.index for t in tracklets if t.pid >= 4 and t.camid == 0], dtype=np.int64)
    gallery = np.array([t.index for t in tracklets if t.pid >= 4 and t.camid == 1], dtype=np.int64)
    return VideoDataset(
        name="toy",
        root=root,
        protocol="default",
        tracklets=tracklets,
        splits=[Split("split 0", train, query, gallery)],
        protocols=("default",),
        fingerprint=fingerprint,
        occlusion=occ if occlusion else None,
    )


def index_of(dataset: VideoDataset, key: str) -> int:
    return next(t.index for t in dataset.tracklets if t.key == key)
