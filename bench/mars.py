"""MARS at full scale, end to end (issue 19): evaluate cold and warm, the app on those results, validation memory.

    .venv/bin/python bench/mars.py --data DIR [--workspace DIR] [--generate] [--skip-cold] [--json FILE]

``DIR`` is a MARS-layout folder: the real dataset, or ``reidviewer synth DIR --layout mars``
(``--generate`` writes it when missing: 1.19 M JPEG frames, ~14 GB, 10–30 min on two cores).
Every step is a fresh process running what a user runs, timed from outside:

* ``reidviewer info`` — the cost estimate shown before paying it (compared with what preprocessing then took);
* ``reidviewer evaluate`` cold (empty workspace: index, preprocessing of the test split,
  features, ranking, results file) and warm (the results file reused); its own stage clock gives
  the preprocessing and feature rates and the cache's disk use; peak resident memory;
* the app opening those cached results (launch to the first query's ranked list shown, as
  ``bench/viewer.py`` measures the demo), a query switch (median over 40), playback frames/s
  and the app's resident memory;
* validation as training runs it (``engine.validation.validate``: every query and gallery
  tracklet, 16 frames each) — the extra resident memory it needs.

Targets (2-core CPU): cold ≤ 15 min (≥ 1,500 frames/s preprocessing, ≥ 2,500 frames/s
features), warm ≤ 2 s, results ≤ 300 MB; app open ≤ 3 s, switch ≤ 100 ms median, 30 frames/s,
< 1.5 GB; validation < 500 MB extra.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
RV = [sys.executable, "-m", "reidviewer"]


def run_measured(cmd: list[str], env: dict | None = None, timeout: float = 7200) -> dict:
    """Run ``cmd``; wall time, peak resident memory of it and its children, stdout and stderr."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env={**os.environ, **(env or {})})
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        p = psutil.Process(proc.pid)
        while not done.is_set():
            try:
                rss = p.memory_info().rss + sum(c.memory_info().rss for c in p.children(recursive=True))
                peak[0] = max(peak[0], rss)
            except psutil.Error:
                pass
            done.wait(0.2)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    out, err = proc.communicate(timeout=timeout)
    done.set()
    th.join()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err[-3000:]}")
    return {"seconds": time.perf_counter() - t0, "peak_rss_mb": peak[0] / 2**20, "stdout": out, "stderr": err}


def roofline_fps() -> float:
    """This machine's float32 roofline for the frame CNN right now (bench/model.py's measure).

    The feature target is absolute, but this shared machine's matmul peak drifts by up to 1.7×;
    the ratio of the feature rate to the roofline measured in the same run is the comparable figure.
    """
    import torch

    from model import macs_per_frame, matmul_peak  # bench/model.py

    from reidviewer.model import ModelConfig, build_model

    macs = macs_per_frame(build_model(ModelConfig()).eval())
    return max(matmul_peak() for _ in range(3)) / (2.0 * macs)


def stage_figures(stderr: str) -> dict:
    """The rates and sizes ``reidviewer evaluate`` prints at its end."""
    out: dict = {}
    if m := re.search(r"preprocessing: ([\d,]+) frames in ([\d.]+) s \(([\d,]+) frames/s\)", stderr):
        out.update(preprocess_frames=int(m[1].replace(",", "")), preprocess_s=float(m[2]),
                   preprocess_fps=int(m[3].replace(",", "")))
    if m := re.search(r"features: ([\d,]+) tracklets, ([\d,]+) frames in ([\d.]+) s \(([\d,]+) frames/s\)", stderr):
        out.update(feature_tracklets=int(m[1].replace(",", "")), feature_frames=int(m[2].replace(",", "")),
                   features_s=float(m[3]), features_fps=int(m[4].replace(",", "")))
    if m := re.search(r"embedding ([\d,]+) frames on [^:]*: [^,]* at ([\d,]+) frames/s \((measured|assumed)", stderr):
        frames, rate = int(m[1].replace(",", "")), int(m[2].replace(",", ""))
        out.update(features_estimate_min=frames / rate / 60, features_estimate_rate=rate,
                   features_rate_measured=m[3] == "measured")
    if m := re.search(r"frame cache: ([\d.]+) GB", stderr):
        out["cache_gb"] = float(m[1])
    if m := re.search(r"results file \(split \d+\): (\d+) MB", stderr):
        out["results_mb"] = int(m[1])
    return out


APP_CHILD = r"""
import sys, time, statistics
T0 = float(sys.argv[1])
from pathlib import Path
from reidviewer.app.viewmodel import OpenRequest, Prefetch
from reidviewer.workspace import Workspace
ws = Workspace(sys.argv[3])
req = OpenRequest(root=Path(sys.argv[2]), name="mars", checkpoint=Path(sys.argv[4]))
pf = Prefetch(req, ws)
from PySide6.QtCore import QEventLoop, QTimer
from PySide6.QtWidgets import QApplication
from reidviewer.app.main_window import MainWindow
import psutil
app = QApplication([])
w = MainWindow(ws, req, pf)
w.resize(1280, 800)
loop = QEventLoop()
w.query_shown.connect(lambda _r: loop.quit())
w.show()
loop.exec()
app.processEvents()
print(f"OPEN {time.time() - T0:.3f}", flush=True)
def wait(ms):
    QTimer.singleShot(ms, loop.quit)
    loop.exec()
wait(800)
n = min(40, w.queries.proxy.rowCount())
ts = []
step = max(1, w.queries.proxy.rowCount() // n)
for pos in range(0, n * step, step):
    t0 = time.perf_counter()
    w.queries.select_position(pos)
    app.processEvents()
    app.processEvents()
    ts.append((time.perf_counter() - t0) * 1000)
print(f"SWITCH {statistics.median(ts):.1f} {sorted(ts)[int(0.95 * (len(ts) - 1))]:.1f}", flush=True)
w.queries.select_position(0)
wait(1500)
count = {"n": 0}
w.probe.frame_changed.connect(lambda _i: count.__setitem__("n", count["n"] + 1))
w.toggle_play()
wait(3000)
w.toggle_play()
print(f"PLAY {count['n'] / 3.0:.1f}", flush=True)
print(f"RSS {psutil.Process().memory_info().rss / 2**20:.0f}", flush=True)
w.close()
"""

VALIDATION_CHILD = r"""
import sys, threading, time
from pathlib import Path
import psutil
from reidviewer.data.cache import FrameCache
from reidviewer.data.registry import open_dataset
from reidviewer.engine.evaluate import preprocess_config_of
from reidviewer.engine.validation import validate
from reidviewer.model.checkpoint import load_checkpoint
from reidviewer.workspace import Workspace
ws = Workspace(sys.argv[2])
ds = open_dataset(Path(sys.argv[1]), "mars", workspace=ws)
model, config, meta = load_checkpoint(Path(sys.argv[3]), map_location="cpu")
cache = FrameCache(ws, ds, preprocess_config_of(meta))
split = ds.split(0)
proc = psutil.Process()
base = proc.memory_info().rss
peak = [base]
stop = threading.Event()
def sample():
    while not stop.is_set():
        peak[0] = max(peak[0], proc.memory_info().rss)
        stop.wait(0.05)
th = threading.Thread(target=sample, daemon=True); th.start()
t0 = time.perf_counter()
v = validate(model, ds, split, cache, has_attention=True)
stop.set(); th.join()
print(f"VALID {time.perf_counter() - t0:.1f} {base / 2**20:.0f} {peak[0] / 2**20:.0f} {v.rank1:.4f} {v.mAP:.4f}", flush=True)
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="a MARS-layout folder")
    ap.add_argument("--workspace", default=None, help="workspace (default: DATA's sibling 'ws-bench')")
    ap.add_argument("--checkpoint", default=None, help="default: the shipped checkpoint")
    ap.add_argument("--generate", action="store_true", help="write a full-size MARS-layout SynthWalk when DATA is missing")
    ap.add_argument("--skip-cold", action="store_true", help="keep the workspace (measure warm, app, validation only)")
    ap.add_argument("--json", default=None, help="also write the figures here")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from reidviewer.demo import default_checkpoint

    data = Path(args.data)
    ws = Path(args.workspace) if args.workspace else data.parent / "ws-bench"
    ckpt = Path(args.checkpoint) if args.checkpoint else default_checkpoint()
    res: dict = {"data": str(data), "workspace": str(ws)}
    if not data.exists():
        if not args.generate:
            raise SystemExit(f"{data} does not exist (give --generate to write a MARS-layout SynthWalk there)")
        r = run_measured(RV + ["synth", str(data), "--layout", "mars"])
        res["synth_s"] = r["seconds"]
        print(f"synth (MARS layout, full size): {r['seconds'] / 60:.1f} min")

    if not args.skip_cold:
        # An empty workspace, except for the preprocessing and feature rates it measured on an
        # earlier run: what a user's workspace knows about their machine (the estimates use them).
        rate_files = [ws / "cache" / "frames" / "preprocess_rates.json", ws / "cache" / "feature_rates.json"]
        kept = {f: f.read_bytes() for f in rate_files if f.is_file()}
        shutil.rmtree(ws, ignore_errors=True)
        for f, content in kept.items():
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_bytes(content)
    r = run_measured(RV + ["info", "--root", str(data), "--dataset", "mars", "--workspace", str(ws), "--json"])
    info = json.loads(r["stdout"])
    res["info_s"] = r["seconds"]
    res["info"] = {k: info.get(k) for k in ("tracklets", "frames", "identities", "cost") if k in info}
    cost = info.get("cost", {})
    print(f"info: {r['seconds']:.1f} s; estimate for split 0: {cost.get('test_frames_missing', 0):,} frames to "
          f"preprocess, {cost.get('test_missing_gb', 0):.1f} GB, {cost.get('test_preprocess_minutes', 0):.1f} min at "
          f"{cost.get('frames_per_s')} frames/s ({'measured here' if cost.get('rate_measured') else 'assumed'})")

    eval_cmd = RV + ["evaluate", "--root", str(data), "--dataset", "mars", "--workspace", str(ws),
                     "--checkpoint", str(ckpt)]
    if not args.skip_cold:
        before = roofline_fps()
        r = run_measured(eval_cmd)
        after = roofline_fps()
        res["cold"] = {"seconds": r["seconds"], "peak_rss_mb": r["peak_rss_mb"], **stage_figures(r["stderr"]),
                       "roofline_fps_before": before, "roofline_fps_after": after}
        c = res["cold"]
        ratio = f" = {c['features_fps'] / max(before, after):.2f} of the CNN's roofline" if "features_fps" in c else ""
        print(f"evaluate cold: {c['seconds'] / 60:.1f} min (target ≤ 15), peak {c['peak_rss_mb']:.0f} MB; "
              f"preprocessing {c.get('preprocess_fps', '?')} frames/s (target ≥ 1,500), features "
              f"{c.get('features_fps', '?')} frames/s{ratio} (target ≥ 2,500; roofline measured before and "
              f"after: {before:.0f}, {after:.0f} frames/s); cache {c.get('cache_gb', '?')} GB; "
              f"results {c.get('results_mb', '?')} MB (target ≤ 300)")
        if "preprocess_s" in c and cost.get("test_preprocess_minutes"):
            print(f"preprocessing took {c['preprocess_s'] / 60:.1f} min against {cost['test_preprocess_minutes']:.1f} "
                  "min estimated beforehand")
        if "features_s" in c and "features_estimate_min" in c:
            print(f"features took {c['features_s'] / 60:.1f} min against {c['features_estimate_min']:.1f} min estimated "
                  f"beforehand at {c['features_estimate_rate']:,} frames/s "
                  f"({'measured here' if c['features_rate_measured'] else 'assumed'})")
    r = run_measured(eval_cmd)
    res["warm"] = {"seconds": r["seconds"], "peak_rss_mb": r["peak_rss_mb"], **stage_figures(r["stderr"])}
    print(f"evaluate warm: {r['seconds']:.2f} s (target ≤ 2), peak {r['peak_rss_mb']:.0f} MB; "
          f"results {res['warm'].get('results_mb', '?')} MB")

    t0 = time.time()
    r = run_measured([sys.executable, "-c", APP_CHILD, str(t0), str(data), str(ws), str(ckpt)],
                     env={"QT_QPA_PLATFORM": "offscreen"})
    app = {}
    for line in r["stdout"].splitlines():
        key, *vals = line.split()
        app[key] = [float(v) for v in vals]
    res["app"] = {"open_s": app["OPEN"][0], "switch_median_ms": app["SWITCH"][0], "switch_p95_ms": app["SWITCH"][1],
                  "playback_fps": app["PLAY"][0], "rss_mb": app["RSS"][0], "peak_rss_mb": r["peak_rss_mb"]}
    a = res["app"]
    print(f"app on the cached results: open {a['open_s']:.2f} s (target ≤ 3), switch median {a['switch_median_ms']:.0f} ms "
          f"p95 {a['switch_p95_ms']:.0f} (target ≤ 100), playback {a['playback_fps']:.1f} frames/s (target 30), "
          f"resident {a['rss_mb']:.0f} MB, peak {a['peak_rss_mb']:.0f} MB (target < 1,536)")

    r = run_measured([sys.executable, "-c", VALIDATION_CHILD, str(data), str(ws), str(ckpt)])
    line = next(x for x in r["stdout"].splitlines() if x.startswith("VALID"))
    secs, base, peak, r1, mAP = (float(x) for x in line.split()[1:])
    res["validation"] = {"seconds": secs, "rss_before_mb": base, "rss_peak_mb": peak, "extra_mb": peak - base,
                         "rank1": r1, "mAP": mAP}
    print(f"validation at this size: {secs:.0f} s, {peak - base:.0f} MB extra resident memory (target < 500; "
          f"{base:.0f} → {peak:.0f} MB)")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
