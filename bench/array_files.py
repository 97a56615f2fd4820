"""Benchmark: reading a MARS-size results archive with ``open_npz`` against ``np.load``.

reidviewer reads every ``.npz`` through ``data.array_files.open_npz``, which parses headers without
``ast`` (numpy's ``literal_eval`` is not thread-safe on CPython 3.11) and reads data in 256 KB pieces. This
checks that it costs nothing against numpy's own reader, in the same run: an archive shaped like
a MARS results file (1,980 x 9,330 float32 distances, 11,310 x 512 float32 features, text
metadata), about 97 MB, uncompressed as ``Results.save`` writes it. Best of ``--repeat`` reads
of every array, the file in the page cache.

Usage: ``python bench/array_files.py [--repeat 5]``
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from _common import best_rate

from reidviewer.data.array_files import open_npz


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "results.npz"
        np.savez(path, distmat=rng.random((1980, 9330), dtype=np.float32),
                 features=rng.random((11310, 512), dtype=np.float32), meta=np.array("{}" * 500))
        size_mb = path.stat().st_size / 1e6

        def with_numpy() -> None:
            with np.load(path, allow_pickle=False) as z:
                for name in z.files:
                    z[name]

        def with_open_npz() -> None:
            with open_npz(path) as z:
                for name in z.files:
                    z[name]

        base = 1 / best_rate(with_numpy, 1, args.repeat)  # best seconds of a read
        ours = 1 / best_rate(with_open_npz, 1, args.repeat)
    print(f"archive {size_mb:.0f} MB: open_npz {ours * 1000:.0f} ms, np.load {base * 1000:.0f} ms "
          f"(ratio {ours / base:.2f}; baseline np.load, same run)")


if __name__ == "__main__":
    main()
