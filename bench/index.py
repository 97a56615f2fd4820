"""Benchmark: opening full-scale MARS (20,478 tracklets, 1.19 M frame names).

Builds the MARS name lists from the real split metadata (``/work/shared/data/mars-info`` or
``--info DIR``) into a temporary folder — frame files are not needed — then times
``open_dataset`` cold (no workspace: parse + validate the info files every time) and warm
(the index cached in a temporary workspace), and prints their ratio, the baseline being the
cold open measured in the same run. Resident memory (RSS) after opening is printed too.

    python bench/index.py [--repeat 7] [--json]
"""
from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))  # the fixture builders write the exact MARS layout

import fixtures_datasets  # noqa: E402

from reidviewer.data.registry import open_dataset  # noqa: E402
from reidviewer.workspace import Workspace  # noqa: E402


def _time(fn, repeat: int) -> tuple[float, float, object]:
    """(median, min) seconds of ``repeat`` calls, and the last result.

    The minimum is reported beside the median because this machine is shared: the minimum
    is the better estimate of the work itself, the median of what a user waits.
    """
    times, result = [], None
    for _ in range(repeat):
        result = None
        gc.collect()
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times), result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=7, help="timed opens per variant (median reported)")
    parser.add_argument(
        "--info", type=Path, default=fixtures_datasets.MARS_INFO, help="folder of the real MARS .mat files"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    fixtures_datasets.MARS_INFO = args.info

    proc = psutil.Process()
    with tempfile.TemporaryDirectory(prefix="bench-index-") as tmp:
        root = fixtures_datasets.make_mars_full(Path(tmp) / "mars")
        ws = Workspace(Path(tmp) / "workspace")
        rss_before = proc.memory_info().rss

        cold, cold_min, ds = _time(lambda: open_dataset(root, "mars", workspace=None), args.repeat)
        t0 = time.perf_counter()
        open_dataset(root, "mars", workspace=ws)  # parses and writes the cache
        first_with_cache = time.perf_counter() - t0
        warm, warm_min, ds = _time(lambda: open_dataset(root, "mars", workspace=ws), args.repeat)
        rss_after = proc.memory_info().rss
        cache_bytes = sum(p.stat().st_size for p in (ws.cache_dir / "index").glob("*.npz"))

        split = ds.splits[0]
        result = {
            "benchmark": "mars_index",
            "tracklets": len(ds.tracklets),
            "frames": ds.num_frames,
            "train": len(split.train),
            "query": len(split.query),
            "gallery": len(split.gallery),
            "repeat": args.repeat,
            "cold_s": round(cold, 4),
            "cold_min_s": round(cold_min, 4),
            "first_open_writing_cache_s": round(first_with_cache, 4),
            "warm_s": round(warm, 4),
            "warm_min_s": round(warm_min, 4),
            "speedup_warm_vs_cold": round(cold / warm, 2),
            "speedup_warm_vs_cold_min": round(cold_min / warm_min, 2),
            "cache_mb": round(cache_bytes / 1e6, 1),
            "rss_mb": round(rss_after / 1e6, 1),
            "rss_before_open_mb": round(rss_before / 1e6, 1),
        }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"MARS index: {result['tracklets']:,} tracklets, {result['frames']:,} frames "
              f"(train {result['train']:,}, query {result['query']:,}, gallery {result['gallery']:,})")
        print(f"  cold (no cache):           median {cold * 1e3:7.1f} ms, min {cold_min * 1e3:7.1f} ms  (baseline)")
        print(f"  first open, writing cache:        {first_with_cache * 1e3:7.1f} ms")
        print(f"  warm (cached):             median {warm * 1e3:7.1f} ms, min {warm_min * 1e3:7.1f} ms")
        print(f"  warm vs cold: {result['speedup_warm_vs_cold']:.2f}x faster (median), "
              f"{result['speedup_warm_vs_cold_min']:.2f}x (min); {args.repeat} opens each")
        print(f"  cache file: {result['cache_mb']} MB;  RSS after opening: {result['rss_mb']} MB "
              f"(before: {result['rss_before_open_mb']} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
