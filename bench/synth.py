"""Benchmark: SynthWalk generation time (target: 150 identities well under a minute).

Generates the demo-sized set (150 identities by default) with one worker process and with all
cores, in the same run, and prints the time, frames per second and the speed-up of all cores
over one worker (the baseline). Files go to a temporary folder that is removed afterwards.

Usage::

    python bench/synth.py [--ids 150] [--seed 0] [--workers N] [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reidviewer.data.synthwalk import SynthConfig, generate, read_sidecar  # noqa: E402


def timed_generate(config: SynthConfig, workers: int, parent: Path) -> dict:
    """Generate once into ``parent`` and return seconds, frames and bytes written."""
    out = parent / f"synthwalk-w{workers}"
    start = time.perf_counter()
    generate(out, config, workers=workers)
    seconds = time.perf_counter() - start
    frames = sum(t["frames"] for t in read_sidecar(out)["tracklets"].values())
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    shutil.rmtree(out)
    return {"workers": workers, "seconds": round(seconds, 2), "frames": frames,
            "frames_per_s": round(frames / seconds, 1), "megabytes": round(size / 2**20, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ids", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=None, help="the parallel run's workers (default: all cores)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        cores = os.cpu_count() or 1
    workers = args.workers or cores
    config = SynthConfig(ids=args.ids, seed=args.seed)
    with tempfile.TemporaryDirectory(prefix="synthwalk-bench-") as tmp:
        parallel = timed_generate(config, workers, Path(tmp))
        single = timed_generate(config, 1, Path(tmp))
    result = {
        "benchmark": "synthwalk.generate",
        "ids": args.ids,
        "cores": cores,
        "parallel": parallel,
        "single": single,
        "speedup_vs_one_worker": round(single["seconds"] / parallel["seconds"], 2),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"SynthWalk, {args.ids} identities, {parallel['frames']} frames of "
              f"{config.height}x{config.width} ({parallel['megabytes']} MB)")
        for r in (single, parallel):
            print(f"  workers={r['workers']:<3} {r['seconds']:7.2f} s   {r['frames_per_s']:8.1f} frames/s")
        print(f"  speed-up of {workers} workers over 1 (baseline): x{result['speedup_vs_one_worker']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
