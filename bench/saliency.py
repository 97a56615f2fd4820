"""Benchmark: Grad-CAM saliency of a 128-frame query–gallery pair with the shipped checkpoint.

Times ``engine.saliency.pair_gradcam`` (conv stages without a graph, gradient through the frame
FC layers and the temporal head, maps upsampled to 56×40 and normalised) on two 128-frame
clips of network input, best of ``--rounds``, after a warm-up; also the energy maps, and a
full ``SaliencyEngine.pair`` cache hit (what the app pays on a second look). Target: ≤ 500 ms
per pair on this CPU (2 cores). The app computes it in a background job, so the GUI never waits.

Usage: ``OMP_NUM_THREADS=1 python bench/saliency.py [--json] [--rounds N] [--threads N]``
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

SHIPPED = Path(__file__).resolve().parents[1] / "reidviewer" / "checkpoints" / "synthwalk-ran-k3.safetensors"


def best_seconds(fn, rounds: int) -> float:
    fn()
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--frames", type=int, default=128)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from reidviewer.engine.saliency import NetStages, SaliencyMaps, pair_gradcam, tracklet_energy
    from reidviewer.model.checkpoint import load_checkpoint

    model, _, _ = load_checkpoint(SHIPPED)
    stages = NetStages(model.eval())
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(args.frames, 5, 56, 40, generator=gen)
    g = torch.randn(args.frames, 5, 56, 40, generator=gen)
    gradcam = best_seconds(lambda: pair_gradcam(stages, q, g), args.rounds)
    energy = best_seconds(lambda: (tracklet_energy(stages, q), tracklet_energy(stages, g)), args.rounds)
    # A cache hit: reading both tracklets' files back.
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        mq, mg, d = pair_gradcam(stages, q, g)
        paths = [Path(tmp) / "q.npz", Path(tmp) / "g.npz"]
        for m, p in zip((mq, mg), paths):
            SaliencyMaps(m, np.arange(args.frames), (64, 48), (4, 4), "gradcam", "x", d).save(p)
        cached = best_seconds(lambda: [SaliencyMaps.load(p) for p in paths], args.rounds)
    out = {"saliency_pair_frames": args.frames, "saliency_gradcam_pair_ms": round(gradcam * 1000, 1),
           "saliency_energy_pair_ms": round(energy * 1000, 1), "saliency_cached_pair_ms": round(cached * 1000, 2),
           "torch_threads": torch.get_num_threads(), "target_ms": 500}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"Grad-CAM, {args.frames}-frame pair: {out['saliency_gradcam_pair_ms']} ms (target <= 500 ms)")
        print(f"energy maps, same pair:        {out['saliency_energy_pair_ms']} ms")
        print(f"cache hit (read both files):   {out['saliency_cached_pair_ms']} ms")
        print(f"torch threads: {out['torch_threads']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
