"""Training benchmark (issue 13): both recipes' throughput and held-out learning curves.

    .venv/bin/python bench/train.py                       # throughput only (a few minutes)
    .venv/bin/python bench/train.py --curves              # + learning curves (fast 30 min, paper 60 min)
    .venv/bin/python bench/train.py --curves --fast-minutes 30 --paper-minutes 30 --jobs 2

The data is the realistic SynthWalk proxy of a small real video set (``--root``, or generated
into the workspace): 600 identities (300 train), 8-frame tracklets, 116×52 JPEG (q 70) crops
rendered at 0.7 scale, six cameras with three quarters of the tracklets' camera unknown, the
generic folder layout.

**Throughput**: each recipe × head trains a fixed number of steps on one thread (the
preprocessing cache is filled first and not timed) and prints tracklets/s.

**Learning curves**: each recipe × head is one real ``reidviewer train --minutes M`` run on one
thread, ``--jobs`` of them side by side (as a user would train the two heads at once), keeping
a checkpoint every ``--mark`` minutes; every kept checkpoint is evaluated on the proxy's test
split (R1, mAP, and RAN's median within-tracklet spread of the final α). The fast recipe's
cosine schedule fits its budget, so its last mark is annealed and the earlier ones are not.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PROXY_ARGS = ["--layout", "folder", "--ids", "600", "--seed", "11", "--min-len", "8", "--max-len", "8",
              "--size", "116x52", "--jpeg", "70", "--render-scale", "0.7", "--unknown-camera", "0.75",
              "--person-scale", "1.2"]


def cli(*args: str, threads: int = 1, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "reidviewer", *args], env=env, cwd=ROOT, **kw)


def ensure_proxy(root: Path, ws: Path) -> None:
    if not (root / "synthwalk.json").is_file():
        print(f"generating the proxy in {root} …", flush=True)
        cli("--workspace", str(ws), "synth", str(root), *PROXY_ARGS, check=True, threads=2)


def throughput(root: Path, ws: Path, recipe: str, head: str, steps: int) -> float:
    """Tracklets per second over ``steps`` optimiser steps on one thread (cache already filled)."""
    import torch

    from reidviewer.data.registry import open_dataset
    from reidviewer.engine.train import TrainConfig, train

    torch.set_num_threads(1)
    ds = open_dataset(root, "folder", workspace=ws)
    probe = TrainConfig(recipe=recipe, root=str(root), dataset="folder", head=head, epochs=1, eval_every=0,
                        checkpoint_every=0, threads=1, run_name=f"bench-tp-{recipe}-{head}")
    per_step = 2 * probe.pairs_per_step if probe.uses_pairs else probe.ids_per_batch * probe.tracklets_per_id
    n_train = len(ds.split(0).train)
    per_epoch = n_train if not probe.uses_pairs else 2 * ds.split(0).num_train_ids(ds.tracklets)
    epochs = max(1, -(-steps * per_step // per_epoch))
    rates: list[float] = []
    cfg = TrainConfig(**{**probe.to_dict(), "epochs": epochs})
    done = {"steps": 0}

    def on_progress(p) -> None:
        done["steps"] = p.global_step
        if p.global_step and p.tracklets_per_s:
            rates.append(p.tracklets_per_s)

    train(cfg, ws, progress=on_progress, should_stop=lambda: done["steps"] >= steps, dataset=ds)
    return rates[-1] if rates else float("nan")


def evaluate(root: Path, ws: Path, checkpoint: Path) -> dict:
    """R1, mAP (in %) and RAN's median final-α spread on the proxy's test split."""
    import numpy as np

    from reidviewer.data.registry import open_dataset
    from reidviewer.engine.evaluate import compute_results

    ds = open_dataset(root, "folder", workspace=ws)
    res = compute_results(ds, 0, checkpoint, ws, device="cpu", recompute=True)
    m = res.metrics()
    spread = None
    if res.attention_iterations > 1:
        spread = float(np.median([res.attention(int(i))[-1].std() for i in res.attention_tracklets]))
    return {"R1": 100 * m["rank1"], "mAP": 100 * m["mAP"], "spread": spread}


def curve_run(root: Path, ws: Path, recipe: str, head: str, minutes: float, mark: float) -> subprocess.Popen:
    log = open(ws / f"bench-{recipe}-{head}.log", "w")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "reidviewer", "--workspace", str(ws), "train", "--root", str(root), "--dataset",
         "folder", "--recipe", recipe, "--head", head, "--minutes", f"{minutes:g}", "--threads", "1",
         "--checkpoint-minutes", f"{mark:g}", "--eval-every", "0", "--out", f"bench-{recipe}-{head}",
         "--overwrite"], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", type=Path, default=None, help="the proxy (default: generated in the workspace)")
    ap.add_argument("--workspace", type=Path, default=Path("/tmp/rv-train-bench"))
    ap.add_argument("--heads", default="ran,mean")
    ap.add_argument("--steps", type=int, default=40, help="throughput: optimiser steps per recipe × head")
    ap.add_argument("--curves", action="store_true", help="also run the learning curves (long)")
    ap.add_argument("--no-throughput", action="store_true", help="skip the throughput part")
    ap.add_argument("--fast-minutes", type=float, default=30.0)
    ap.add_argument("--paper-minutes", type=float, default=60.0)
    ap.add_argument("--mark", type=float, default=5.0, help="minutes between evaluated checkpoints")
    ap.add_argument("--jobs", type=int, default=2, help="curve runs side by side (one thread each)")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args()
    ws = args.workspace
    ws.mkdir(parents=True, exist_ok=True)
    root = args.root or ws / "proxy"
    ensure_proxy(root, ws)
    heads = args.heads.split(",")
    out: dict = {"throughput": {}, "curves": {}}

    # Fill the preprocessing cache once (not timed), then time each recipe × head.
    cli("--workspace", str(ws), "info", "--root", str(root), "--dataset", "folder", capture_output=True, threads=2)
    from reidviewer.data.registry import open_dataset
    from reidviewer.engine.train import TrainConfig, train
    from reidviewer.workspace import Workspace

    wsp = Workspace(ws)
    ds = open_dataset(root, "folder", workspace=wsp)
    train(TrainConfig(root=str(root), dataset="folder", epochs=0, run_name="bench-warm"), wsp, dataset=ds)
    print(f"{'recipe':7s} {'head':5s} {'tracklets/s':>12s}   (one thread, {args.steps} steps)")
    for recipe in ("fast", "paper") if not args.no_throughput else ():
        for head in heads:
            rate = throughput(root, wsp, recipe, head, args.steps)
            out["throughput"][f"{recipe}/{head}"] = rate
            print(f"{recipe:7s} {head:5s} {rate:12.1f}", flush=True)

    if args.curves:
        runs = [(r, h, args.fast_minutes if r == "fast" else args.paper_minutes) for r in ("fast", "paper") for h in heads]
        pending, active = list(runs), []
        t0 = time.time()
        while pending or active:
            while pending and len(active) < args.jobs:
                r, h, m = pending.pop(0)
                active.append(((r, h), curve_run(root, ws, r, h, m, args.mark)))
                print(f"[{time.time() - t0:6.0f} s] training {r}/{h} for {m:g} min", flush=True)
            time.sleep(5)
            for item in list(active):
                if item[1].poll() is not None:
                    active.remove(item)
                    print(f"[{time.time() - t0:6.0f} s] {item[0][0]}/{item[0][1]} ended ({item[1].returncode})", flush=True)
        for r, h, m in runs:
            run_dir = ws / "runs" / f"bench-{r}-{h}"
            points = {}
            for ck in sorted(run_dir.glob("minute_*.safetensors")):
                points[float(ck.stem.split("_", 1)[1])] = ck
            points[m] = run_dir / "last.safetensors"
            curve = {}
            for minute, ck in sorted(points.items()):
                curve[f"{minute:g}"] = evaluate(root, wsp, ck)
            out["curves"][f"{r}/{h}"] = curve
        marks = sorted({k for c in out["curves"].values() for k in c}, key=float)
        print("\nheld-out R1 / mAP (%) by training minutes (one thread each; spread: RAN's final α)")
        print(f"{'recipe/head':12s} " + " ".join(f"{m + ' min':>14s}" for m in marks) + "   spread")
        for key, c in out["curves"].items():
            cells = [f"{c[m]['R1']:5.1f} / {c[m]['mAP']:4.1f}" if m in c else "" for m in marks]
            last = c[max(c, key=float)]
            spread = f"{last['spread']:.3f}" if last["spread"] is not None else "—"
            print(f"{key:12s} " + " ".join(f"{x:>14s}" for x in cells) + f"   {spread}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
