"""Annotation store edit throughput: synchronous=NORMAL (the default) against FULL.

FULL (the default) fsyncs the WAL on every commit (power-loss durable); NORMAL is durable against a process
crash (see ``reidviewer/annotations/store.py``). Also times ``apply_annotations`` on a
MARS-sized dataset (20,478 tracklets). Prints edits/s for each mode and the ratio, measured in
one run. Usage: ``python bench/bench_annotations.py [--edits N]``.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from reidviewer.annotations import AnnotationStore, FlagFrames, Relabel, SetNote, apply_annotations
from reidviewer.data.dataset import Split, VideoDataset
from reidviewer.data.tracklet import Tracklet


def make_dataset(root: Path, n: int) -> VideoDataset:
    tracklets = [
        Tracklet(index=i, pid=1 + i // 16, camid=i % 6, frames=[f"t{i:05d}/f{j:03d}.jpg" for j in range(60)],
                 root=root, person=str(1 + i // 16), camera=str(i % 6), key=f"t{i:05d}")
        for i in range(n)
    ]
    idx = np.arange(n)
    split = Split("split 0", idx[: n // 2], idx[n // 2:: 10], idx[n // 2:])
    return VideoDataset("bench", root, "default", tracklets, [split], fingerprint="bench0001")


def edit_rate(path: Path, dataset: VideoDataset, synchronous: str, edits: int) -> float:
    store = AnnotationStore(path, synchronous=synchronous)
    store.attach(dataset)
    keys = [t.key for t in dataset.tracklets]
    t0 = time.perf_counter()
    for i in range(edits):
        key = keys[(i * 7919) % len(keys)]
        kind = i % 3
        if kind == 0:
            store.apply(FlagFrames(key, (i % 60,), "occluded"))
        elif kind == 1:
            store.apply(Relabel(key, 100000 + i))
        else:
            store.apply(SetNote("tracklet", key, f"note {i}"))
    rate = edits / (time.perf_counter() - t0)
    store.close()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--edits", type=int, default=1000)
    parser.add_argument("--tracklets", type=int, default=20478)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ds = make_dataset(tmp / "ds", args.tracklets)
        normal = edit_rate(tmp / "normal.sqlite", ds, "NORMAL", args.edits)
        full = edit_rate(tmp / "full.sqlite", ds, "FULL", args.edits)
        print(f"edits/s  synchronous=NORMAL: {normal:8.0f}   ({1000 / normal:.2f} ms/edit)")
        print(f"edits/s  synchronous=FULL:   {full:8.0f}   ({1000 / full:.2f} ms/edit)")
        print(f"ratio NORMAL/FULL: {normal / full:.2f}x")
        store = AnnotationStore(tmp / "normal.sqlite")
        t0 = time.perf_counter()
        view = apply_annotations(ds, store, exclude_flagged_frames=True)
        dt = time.perf_counter() - t0
        t0 = time.perf_counter()
        store.version()
        dv = time.perf_counter() - t0
        print(f"apply_annotations on {len(ds.tracklets)} tracklets, {args.edits} edits: {dt * 1000:.1f} ms; "
              f"version(): {dv * 1e6:.0f} us")
        assert len(view.tracklets) == len(ds.tracklets)
        store.close()


if __name__ == "__main__":
    main()
