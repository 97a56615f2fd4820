"""Viewer benchmarks (issue 5): cold start, query switch, playback, memory with a MARS-scale index.

    .venv/bin/python bench/viewer.py [--json]

Builds (once, into a temp folder) a 150-identity SynthWalk demo, a RAN checkpoint (the
shipped one when present, else random weights) and its cached results, then measures:

* cold start: a fresh process from ``python`` start to an interactive window showing the
  cached demo (results on screen, first query's ranked list painted) — target ≤ 2 s;
* query switch: selecting a query to its ranked list painted, median over 40 queries —
  target ≤ 100 ms;
* playback: both players playing (synced) with the attention plots following, frames/s
  over 3 s — target 30 frames/s (the player's rate at 1×); and the most it can do at 4×;
* resident memory of a process with the MARS-scale index (real metadata) opened.

Runs offscreen (QT_QPA_PLATFORM=offscreen); figures drift up to 1.7× on a shared machine.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def prepare(base: Path) -> tuple[Path, Path, Path]:
    """Demo data, checkpoint and a workspace with the results cached."""
    from reidviewer.data.registry import open_dataset
    from reidviewer.data.synthwalk import SynthConfig, generate, is_complete
    from reidviewer.demo import CHECKPOINT_DIR, SHIPPED_CHECKPOINT
    from reidviewer.engine.evaluate import compute_results
    from reidviewer.workspace import Workspace

    data = base / "synthwalk-150"
    if not is_complete(data):
        generate(data, SynthConfig(ids=150, seed=0), overwrite=True)
    ckpt = CHECKPOINT_DIR / SHIPPED_CHECKPOINT
    if not ckpt.is_file():
        import torch

        from reidviewer.model.checkpoint import save_checkpoint
        from reidviewer.model.config import ModelConfig
        from reidviewer.model.network import build_model

        torch.manual_seed(0)
        cfg = ModelConfig(num_classes=75)
        ckpt = base / "random.safetensors"
        save_checkpoint(ckpt, build_model(cfg), cfg, {})
    ws = Workspace(base / "ws")
    compute_results(open_dataset(data, workspace=ws), 0, ckpt, ws)
    return data, ckpt, ws.root


CHILD = r"""
import sys, time
T0 = float(sys.argv[1])
from pathlib import Path
# As reidviewer.app.application.run_app: the session starts loading before the GUI imports.
from reidviewer.app.viewmodel import OpenRequest, Prefetch
from reidviewer.workspace import Workspace
ws = Workspace(sys.argv[4])
req = OpenRequest(root=Path(sys.argv[2]), name="synthwalk", checkpoint=Path(sys.argv[3]))
pf = Prefetch(req, ws)
from PySide6.QtWidgets import QApplication
from reidviewer.app.main_window import MainWindow
app = QApplication([])
w = MainWindow(ws, req, pf)
def done(_row=None):
    app.processEvents()
    print(f"READY {time.time() - T0:.3f}", flush=True)
    app.quit()
w.query_shown.connect(done)
w.show()
app.exec()
"""


def cold_start(data: Path, ckpt: Path, ws: Path, runs: int = 3) -> list[float]:
    times = []
    for _ in range(runs):
        t0 = time.time()
        out = subprocess.run([sys.executable, "-c", CHILD, str(t0), str(data), str(ckpt), str(ws)],
                             capture_output=True, text=True, timeout=300,
                             env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
        line = [x for x in out.stdout.splitlines() if x.startswith("READY")]
        if not line:
            raise RuntimeError(out.stderr[-2000:])
        times.append(float(line[0].split()[1]))
    return times


def in_process(data: Path, ckpt: Path, ws: Path) -> dict:
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from reidviewer.app.main_window import MainWindow
    from reidviewer.app.viewmodel import OpenRequest
    from reidviewer.workspace import Workspace

    app = QApplication.instance() or QApplication([])
    w = MainWindow(Workspace(ws), OpenRequest(root=data, name="synthwalk", checkpoint=ckpt))
    w.resize(1280, 800)
    loop = QEventLoop()
    w.results_shown.connect(loop.quit)
    w.show()
    loop.exec()

    def wait(ms: int) -> None:
        QTimer.singleShot(ms, loop.quit)
        loop.exec()

    wait(500)
    n = min(40, w.queries.proxy.rowCount())
    switch = []
    for pos in range(n):
        t0 = time.perf_counter()
        w.queries.select_position(pos)
        w.ranked.repaint()  # paint the ranked list now, as the event loop would
        app.processEvents()
        switch.append((time.perf_counter() - t0) * 1000)
    w.queries.select_position(0)
    wait(1500)  # let the frames of the tracklets in view decode ahead

    def playback(speed_index: int, seconds: float = 3.0) -> float:
        for p in (w.probe, w.gallery):
            p.speed.setCurrentIndex(speed_index)
        count = {"n": 0}
        w.probe.frame_changed.connect(lambda _i: count.__setitem__("n", count["n"] + 1))
        w.toggle_play()
        wait(int(seconds * 1000))
        w.toggle_play()
        return count["n"] / seconds

    fps_1x = playback(2)
    fps_4x = playback(4)
    w.close()
    return {"query_switch_ms": switch, "playback_fps_1x": fps_1x, "playback_fps_4x": fps_4x}


MARS_CHILD = r"""
import sys, psutil, os
sys.path.insert(0, sys.argv[2])
from fixtures_datasets import make_mars_full
from pathlib import Path
import PySide6.QtWidgets, pyqtgraph  # the app's own libraries are resident too
from reidviewer.data.registry import open_dataset
from reidviewer.workspace import Workspace
base = psutil.Process().memory_info().rss
root = make_mars_full(Path(sys.argv[1]))
ds = open_dataset(root, "mars", workspace=Workspace(Path(sys.argv[1]) / "ws"))
print("RSS", base, psutil.Process().memory_info().rss, len(ds.tracklets), ds.num_frames, flush=True)
"""


def mars_memory(base: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", MARS_CHILD, str(base / "mars"), str(ROOT / "tests")],
                         capture_output=True, text=True, timeout=600)
    line = [x for x in out.stdout.splitlines() if x.startswith("RSS")]
    if not line:
        return {"error": out.stderr[-1000:]}
    _, before, after, n, frames = line[0].split()
    return {"rss_before_mb": int(before) / 2**20, "rss_with_mars_mb": int(after) / 2**20,
            "tracklets": int(n), "frames": int(frames)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--base", default=None, help="folder for the demo data (default: a temp folder)")
    args = ap.parse_args()
    base = Path(args.base) if args.base else Path(tempfile.mkdtemp(prefix="rv-bench-"))
    data, ckpt, ws = prepare(base)
    cold = cold_start(data, ckpt, ws)
    inproc = in_process(data, ckpt, ws)
    mem = mars_memory(base) if (Path("/work/shared/data/mars-info").exists()) else {}
    res = {
        "cold_start_s": statistics.median(cold),
        "cold_start_runs_s": cold,
        "query_switch_median_ms": statistics.median(inproc["query_switch_ms"]),
        "query_switch_p95_ms": sorted(inproc["query_switch_ms"])[int(0.95 * (len(inproc["query_switch_ms"]) - 1))],
        "playback_fps_1x": inproc["playback_fps_1x"],
        "playback_fps_4x": inproc["playback_fps_4x"],
        **{f"mars_{k}": v for k, v in mem.items()},
    }
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        print(f"cold start to interactive window (demo cached): {res['cold_start_s']:.2f} s (target ≤ 2 s)"
              f"  runs {', '.join(f'{x:.2f}' for x in cold)}")
        print(f"query switch to painted ranked list: median {res['query_switch_median_ms']:.1f} ms, "
              f"p95 {res['query_switch_p95_ms']:.1f} ms (target median ≤ 100 ms)")
        print(f"playback, both players + plots: {res['playback_fps_1x']:.1f} frames/s at 1× (target 30), "
              f"{res['playback_fps_4x']:.1f} frames/s asked 120 at 4×")
        if mem:
            print(f"resident memory with the MARS-scale index open: {mem.get('rss_with_mars_mb', float('nan')):.0f} MB "
                  f"(before opening: {mem.get('rss_before_mb', float('nan')):.0f} MB; {mem.get('tracklets')} tracklets, "
                  f"{mem.get('frames')} frames)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
