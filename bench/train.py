"""Training throughput (issue 4): Siamese pairs per second on this machine.

    .venv/bin/python bench/train.py [--data DIR] [--device auto] [--json]

Trains RAN (K = 3) on a small SynthWalk set for a fixed number of steps at 1 and 8 pairs
per step and prints pairs/s (the preprocessing cache is filled first and not timed). On a
CUDA machine it also runs with mixed precision.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def measure(data: Path, ws, pairs_per_step: int, steps: int, device: str) -> float:
    from reidviewer.data.registry import open_dataset
    from reidviewer.engine.train import TrainConfig, train

    ds = open_dataset(data, workspace=ws)
    n_train = ds.split(0).num_train_ids(ds.tracklets)
    epochs = max(1, -(-steps * pairs_per_step // (2 * n_train)))
    cfg = TrainConfig(root=str(data), epochs=epochs, pairs_per_step=pairs_per_step, eval_every=0,
                      checkpoint_every=0, device=device, run_name=f"bench-p{pairs_per_step}")
    train(TrainConfig(**{**cfg.to_dict(), "epochs": 0, "run_name": "warm"}), ws, dataset=ds)  # fill the cache
    t0 = time.perf_counter()
    out = train(cfg, ws, dataset=ds)
    dt = time.perf_counter() - t0
    return out.global_step * pairs_per_step / dt


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=None)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    from reidviewer.data.synthwalk import SynthConfig, generate, is_complete
    from reidviewer.workspace import Workspace

    base = Path(tempfile.mkdtemp(prefix="rv-train-bench-"))
    data = Path(args.data) if args.data else base / "synth"
    if not is_complete(data):
        generate(data, SynthConfig(ids=40, seed=0), overwrite=True)
    ws = Workspace(base / "ws")
    res = {f"pairs_per_s_p{p}": measure(data, ws, p, max(args.steps // p, 4), args.device) for p in (1, 8)}
    import torch

    res["device"] = "cuda: " + torch.cuda.get_device_name() if torch.cuda.is_available() and args.device != "cpu" else "cpu"
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        print(f"training throughput on {res['device']}: {res['pairs_per_s_p1']:.1f} pairs/s at 1 pair/step, "
              f"{res['pairs_per_s_p8']:.1f} pairs/s at 8 pairs/step "
              f"(ratio {res['pairs_per_s_p8'] / res['pairs_per_s_p1']:.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
