"""Compare-mode benchmark (issue 18): two MARS-scale results (1,980 queries × 9,330 gallery).

    OMP_NUM_THREADS=1 .venv/bin/python bench/compare.py [--json] [--base DIR]

Builds two results files once (random features around one centre per identity, MARS's sizes
and its ``mars_official`` rule with junk gallery items; model B's features a little less
noisy than A's), saves both, then measures:

* opening a comparison with both results cached: loading both files, pairing them
  (``Comparison``: checks, ΔAP, fixed / broken), the McNemar test, the paired bootstrap CI
  of ΔmAP (2,000 resamples) and both ROC curves (exact, 18.5 M pairs each), and the query
  list rows of compare mode — everything the app computes before it shows compare mode;
  target ≤ 2 s;
* a query switch in compare mode: for one query, A's and B's top-10 tiles, both true-match
  lists, ΔAP and the first-match ranks, and both models' attention traces of the probe and
  its rank-1 — median over 200 queries; target ≤ 100 ms. (What the widgets then paint is the
  same as in single-model mode; ``bench/viewer.py`` measures that part.)

The random data stands in for two models: only sizes matter for the timings.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

NQ, NG, DIM = 1980, 9330, 128


def mars_like(seed: int, noise: float, dim: int = DIM):
    """Results with MARS's sizes: 625 test identities, junk gallery items, 6 cameras."""
    from reidviewer.engine.results import build_results

    rng = np.random.default_rng(0)  # the same people and cameras for both models
    n_ids = 625
    q_pids = rng.integers(0, n_ids, NQ)
    g_pids = np.concatenate([rng.integers(0, n_ids, NG - 600), np.full(600, -1)])
    g_pids[:n_ids] = np.arange(n_ids)  # every identity has gallery items
    q_cams = rng.integers(0, 6, NQ)
    g_cams = rng.integers(0, 6, NG)
    centres = rng.normal(size=(n_ids + 1, dim)).astype(np.float32)
    mrng = np.random.default_rng(seed)
    qf = centres[q_pids] + noise * mrng.normal(size=(NQ, dim)).astype(np.float32)
    gf = centres[g_pids] + noise * mrng.normal(size=(NG, dim)).astype(np.float32)
    att = {int(i): mrng.random((4, 24)).astype(np.float32) for i in range(NQ + NG)}
    return build_results(qf, gf, q_pids, g_pids, q_cams, g_cams,
                         query_indices=np.arange(NQ), gallery_indices=np.arange(NQ, NQ + NG),
                         query_keys=[f"q{i:05d}" for i in range(NQ)], gallery_keys=[f"g{i:05d}" for i in range(NG)],
                         attention=att, eval_rule="mars_official", dataset_name="mars-like",
                         dataset_fingerprint="mars-like", split=0,
                         settings={"checkpoint": f"/models/model-{'ab'[seed]}.safetensors"})


def prepare(base: Path) -> tuple[Path, Path]:
    paths = base / "a.npz", base / "b.npz"
    for seed, (noise, path) in enumerate(zip((1.6, 1.45), paths)):
        if not path.is_file():
            mars_like(seed, noise).save(path)
    return paths


def open_comparison(pa: Path, pb: Path):
    from reidviewer.engine.compare import Comparison
    from reidviewer.engine.results import Results

    a, b = Results.load(pa), Results.load(pb)
    c = Comparison(a, b)
    c.mcnemar_p
    c.bootstrap_delta_map()
    c.roc("a"), c.roc("b")
    rows = [(int(r), float(c.delta_ap[r]), int(c.first_rank_a[r]), int(c.first_rank_b[r]))
            for r in range(c.num_queries)]
    for key in ("fixed", "broken", "delta"):
        c.positions(key)
    return c, rows


def query_switch(c, q: int) -> None:
    a, b = c.a, c.b
    for r in (a, b):
        rows, dist, match = r.ranked(q, 10)
        r.true_matches(q)
        for t in (int(a.query_indices[q]), int(r.gallery_indices[rows[0]])):
            r.attention(t)
    float(c.delta_ap[q]), int(c.first_rank_a[q]), int(c.first_rank_b[q])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--base", default=None, help="folder for the two results files (default: a temp folder)")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    base = Path(args.base) if args.base else Path(tempfile.mkdtemp(prefix="rv-bench-compare-"))
    base.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    pa, pb = prepare(base)
    build_s = time.perf_counter() - t0

    opens = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        c, _rows = open_comparison(pa, pb)
        opens.append(time.perf_counter() - t0)
    # The parts, once (the ROC and the bootstrap dominate).
    from reidviewer.engine.compare import Comparison, compute_roc
    from reidviewer.engine.results import Results

    t0 = time.perf_counter()
    a, b = Results.load(pa), Results.load(pb)
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    c2 = Comparison(a, b)
    t_pair = time.perf_counter() - t0
    t0 = time.perf_counter()
    c2.bootstrap_delta_map()
    t_boot = time.perf_counter() - t0
    t0 = time.perf_counter()
    compute_roc(a)
    t_roc = time.perf_counter() - t0

    rng = np.random.default_rng(1)
    switch = []
    for q in rng.integers(0, NQ, 200):
        t0 = time.perf_counter()
        query_switch(c, int(q))
        switch.append((time.perf_counter() - t0) * 1000)

    res = {
        "queries": NQ, "gallery": NG,
        "build_s": build_s,
        "open_comparison_s": statistics.median(opens),
        "open_runs_s": opens,
        "load_both_s": t_load, "pair_s": t_pair, "bootstrap_s": t_boot, "roc_one_model_s": t_roc,
        "query_switch_median_ms": statistics.median(switch),
        "query_switch_p95_ms": sorted(switch)[int(0.95 * (len(switch) - 1))],
        "fixed": c.fixed, "broken": c.broken, "mcnemar_p": c.mcnemar_p,
    }
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        print(f"two MARS-scale results ({NQ} × {NG}), built in {build_s:.1f} s (once)")
        print(f"open a comparison, both cached: median {res['open_comparison_s']:.2f} s (target ≤ 2 s)  "
              f"runs {', '.join(f'{x:.2f}' for x in opens)}")
        print(f"  parts: load both {t_load:.2f} s · pair {t_pair * 1000:.0f} ms · bootstrap {t_boot * 1000:.0f} ms · "
              f"ROC of one model {t_roc:.2f} s")
        print(f"query switch in compare mode: median {res['query_switch_median_ms']:.1f} ms, "
              f"p95 {res['query_switch_p95_ms']:.1f} ms (target median ≤ 100 ms)")
        print(f"(B fixed {c.fixed}, broke {c.broken}; McNemar p = {c.mcnemar_p:.3g})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
