"""Benchmark: importing MARS-scale arrays (1,980 queries x 9,330 gallery, 2,048-d features).

Builds full-scale MARS metadata from the real split metadata (``/work/shared/data/mars-info`` or
``--info DIR``; the name lists are generated, no frame files are needed, as in ``bench/index.py``),
opens it (protocol ``torchreid``: 1,980 queries, 9,330 gallery), writes random 2,048-d float32
features to an ``.npz`` in torchreid's order (no ids), then times ``import_features``: reading the
``.npz`` (``allow_pickle=False``), checking it, the distances, ranks and metrics, and writing the
results file into a workspace. ``--ids`` adds ``q_ids``/``g_ids`` (in shuffled order);
``--distmat`` imports a 1,980 x 9,330 distance matrix instead of features.

Peak extra memory is the peak resident set size (RSS, sampled every 5 ms in a thread) above
the RSS just before the import, with the dataset open and the arrays on disk only.

    python bench/import_results.py [--ids] [--distmat] [--repeat 3] [--json]
"""
from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))  # the fixture builders write the exact MARS layout

import fixtures_datasets  # noqa: E402

from reidviewer.data.registry import open_dataset  # noqa: E402
from reidviewer.engine.importer import import_features  # noqa: E402
from reidviewer.workspace import Workspace  # noqa: E402

DIMS = 2048


class PeakRSS:
    """Samples the process's RSS in a thread; ``peak`` is the largest value seen."""

    def __init__(self, interval: float = 0.005) -> None:
        self.proc = psutil.Process()
        self.interval = interval
        self.peak = self.proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(self.interval)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--info", type=Path, default=fixtures_datasets.MARS_INFO, help="folder of the real MARS .mat files")
    parser.add_argument("--ids", action="store_true", help="give q_ids / g_ids, rows shuffled")
    parser.add_argument("--distmat", action="store_true", help="import a distance matrix instead of features")
    parser.add_argument("--repeat", type=int, default=3, help="timed imports (the minimum and median are printed)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    fixtures_datasets.MARS_INFO = args.info

    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        root = fixtures_datasets.make_mars_full(Path(tmp) / "mars")
        ws = Workspace(Path(tmp) / "workspace")
        ds = open_dataset(root, "mars", workspace=ws)
        sp = ds.splits[0]
        nq, ng = len(sp.query), len(sp.gallery)
        rng = np.random.default_rng(0)
        arrays: dict[str, np.ndarray] = {}
        if args.distmat:
            arrays["distmat"] = rng.random((nq, ng), dtype=np.float32)
        else:
            arrays["qf"] = rng.standard_normal((nq, DIMS), dtype=np.float32)
            arrays["gf"] = rng.standard_normal((ng, DIMS), dtype=np.float32)
        if args.ids:
            pq, pg = rng.permutation(nq), rng.permutation(ng)
            arrays["q_ids"] = np.array([ds.tracklets[int(i)].key for i in sp.query[pq]])
            arrays["g_ids"] = np.array([ds.tracklets[int(i)].key for i in sp.gallery[pg]])
            if args.distmat:
                arrays["distmat"] = arrays["distmat"][pq][:, pg]
            else:
                arrays["qf"], arrays["gf"] = arrays["qf"][pq], arrays["gf"][pg]
        npz = Path(tmp) / "features.npz"
        np.savez(npz, **arrays)
        npz_bytes = npz.stat().st_size
        del arrays
        gc.collect()

        times, peaks = [], []
        for _ in range(args.repeat):
            gc.collect()
            before = psutil.Process().memory_info().rss
            with PeakRSS() as peak:
                t0 = time.perf_counter()
                results, path = import_features(ds, 0, npz, ws, name="bench")
                times.append(time.perf_counter() - t0)
            peaks.append(peak.peak - before)
            m = results.metrics()
            del results
        out = {
            "benchmark": "import_results",
            "queries": nq,
            "gallery": ng,
            "input": "distmat" if args.distmat else f"features {DIMS}-d",
            "ids": args.ids,
            "npz_mb": round(npz_bytes / 2**20, 1),
            "results_mb": round(path.stat().st_size / 2**20, 1),
            "seconds_min": round(min(times), 2),
            "seconds_median": round(float(np.median(times)), 2),
            "peak_extra_mb": round(max(peaks) / 2**20, 1),
            "rank1": round(m["rank1"], 4),
            "threads": int(__import__("os").environ.get("OMP_NUM_THREADS", "0") or 0) or "default",
        }
    if args.json:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print(f"{k:>16}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
