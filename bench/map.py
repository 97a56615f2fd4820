"""Map benchmark (issue 21): the map of the whole set at MARS scale (20,000 tracklets).

    OMP_NUM_THREADS=1 QT_QPA_PLATFORM=offscreen .venv/bin/python bench/map.py [--n 20000] [--dim 128] [--umap]

Random features around one centre per identity (625 identities, 6 cameras), D = 128 (the
shipped RAN's embedding; MARS-scale models use 128-2048). Measures:

* PCA to 2-D (target < 1 s);
* find-similar: the 10 nearest of one tracklet over all 20,000 (median of 200; target < 50 ms);
* the camera-bias number (4,000 sampled tracklets against all);
* the Map tab's scatter: colouring 20,000 points, then pan / zoom frames per second offscreen
  (each frame: move the view range and paint the widget into an image; target ≥ 30 /s; also
  from the median frame time, which a busy shared machine disturbs less);
* UMAP with ``--umap`` when umap-learn is installed (target < 60 s, in the background): the
  first run of a process (numba compiles UMAP's kernels) and a second one;
* memory: the process's peak resident set.

Only sizes matter for the timings.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time

import numpy as np


def make_features(n: int, dim: int, ids: int = 625, cams: int = 6, seed: int = 0):
    rng = np.random.default_rng(seed)
    pids = rng.integers(0, ids, size=n)
    camids = rng.integers(0, cams, size=n)
    centres = rng.normal(size=(ids, dim)).astype(np.float32)
    cam_shift = 0.3 * rng.normal(size=(cams, dim)).astype(np.float32)
    f = centres[pids] + cam_shift[camids] + 0.6 * rng.normal(size=(n, dim)).astype(np.float32)
    return f.astype(np.float32), pids, camids


def fake_results(f, pids, camids, nq: int):
    """A Results-like object with just what the map reads (no distance matrix needed)."""
    from types import SimpleNamespace

    n = len(f)
    q = np.arange(nq)
    g = np.arange(nq, n)
    return SimpleNamespace(
        query_indices=q, gallery_indices=g, query_pids=pids[q], gallery_pids=pids[g],
        query_camids=camids[q], gallery_camids=camids[g], query_keys=[f"t{i}" for i in q],
        gallery_keys=[f"t{i}" for i in g], query_features=f[q], gallery_features=f[g],
        valid=np.ones(nq, bool), first_rank=np.random.default_rng(1).integers(1, 5, nq),
        ap=np.random.default_rng(2).random(nq), attention_tracklets=np.zeros(0, np.int64),
        attention_values=np.zeros((0, 0), np.float32), attention_offsets=np.zeros(1, np.int64))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--umap", action="store_true", help="also time UMAP (needs umap-learn)")
    ap.add_argument("--frames", type=int, default=60, help="pan/zoom frames to paint")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    from reidviewer.engine import embedding_map as em

    out: dict = {"n": args.n, "dim": args.dim, "threads": os.environ.get("OMP_NUM_THREADS", "all")}
    f, pids, camids = make_features(args.n, args.dim)
    rss0 = peak_rss_mb()

    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        coords = em.pca_2d(f)
        times.append(time.perf_counter() - t0)
    out["pca_s"] = min(times)

    norms = em.squared_norms(f)
    rng = np.random.default_rng(3)
    ts = []
    for a in rng.integers(0, args.n, 200):
        t0 = time.perf_counter()
        em.find_similar(f, int(a), 10, pids, norms)
        ts.append(time.perf_counter() - t0)
    out["find_similar_ms_median"] = 1000 * statistics.median(ts)
    out["find_similar_ms_p95"] = 1000 * float(np.percentile(ts, 95))

    t0 = time.perf_counter()
    bias = em.camera_bias(f, camids, pids)
    out["camera_bias_s"] = time.perf_counter() - t0
    out["camera_bias"] = bias.text()

    # The scatter, as the Map tab draws it.
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import pyqtgraph as pg
    from PySide6.QtCore import QSize
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    from reidviewer.app.map_view import MapView
    from reidviewer.app.state import ViewerState

    view = MapView(ViewerState())
    view.resize(372, 700)
    view.show()
    app.processEvents()
    nq = args.n // 10
    r = fake_results(f, pids, camids, nq)
    ms = em.whole_set(r)
    view.coords = coords.astype(np.float64)

    class _Map:  # what MapView.map gives: the whole set, names
        pass

    fake = _Map()
    fake.ms, fake.names, fake.coords = ms, ms.keys, {"pca": coords}
    type(view).map = property(lambda self: fake)  # bench only: no session
    view.state.session = type("S", (), {"results": r, "dataset": None, "frame_flag_map": {}})()
    t0 = time.perf_counter()
    view.recolour()
    app.processEvents()
    out["colour_20k_s"] = time.perf_counter() - t0
    view.vb.autoRange(padding=0.04)
    img = QImage(QSize(view.plot.width(), view.plot.height()), QImage.Format.Format_ARGB32)
    (x0, x1), (y0, y1) = view.vb.viewRange()
    w, h = x1 - x0, y1 - y0

    def frame(i: int) -> None:
        z = 1.0 - 0.5 * (i % 20) / 20  # zoom in and out while panning
        cx = x0 + w / 2 + 0.2 * w * np.sin(i / 7)
        cy = y0 + h / 2 + 0.2 * h * np.cos(i / 9)
        view.vb.setRange(xRange=(cx - z * w / 2, cx + z * w / 2), yRange=(cy - z * h / 2, cy + z * h / 2), padding=0)
        p = QPainter(img)
        view.plot.render(p)
        p.end()

    frame(0)
    ft = []
    t0 = time.perf_counter()
    for i in range(args.frames):
        t1 = time.perf_counter()
        frame(i + 1)
        ft.append(time.perf_counter() - t1)
    out["pan_zoom_fps"] = args.frames / (time.perf_counter() - t0)
    out["pan_zoom_fps_median_frame"] = 1.0 / statistics.median(ft)
    t0 = time.perf_counter()
    for i in range(200):
        view.point_at((float(coords[i, 0]), float(coords[i, 1])))
    out["hover_pick_ms"] = 1000 * (time.perf_counter() - t0) / 200
    pg.QtWidgets.QApplication.processEvents()

    if args.umap:
        if em.umap_available():
            t0 = time.perf_counter()
            em.umap_2d(f, seed=0)
            out["umap_first_s"] = time.perf_counter() - t0  # includes numba's compile on first use
            t0 = time.perf_counter()
            em.umap_2d(f, seed=0)
            out["umap_s"] = time.perf_counter() - t0
        else:
            out["umap_s"] = None
    out["features_mb"] = f.nbytes / 2**20
    out["peak_rss_mb"] = peak_rss_mb()
    out["peak_rss_before_map_mb"] = rss0
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for k, v in out.items():
            print(f"{k:>24}: {v:.3f}" if isinstance(v, float) else f"{k:>24}: {v}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
