"""The results file: built from features, consistent with the metrics, saved and loaded safely."""
from __future__ import annotations

import dataclasses
import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from reidviewer.engine.metrics import evaluate_rank
from reidviewer.engine.results import (
    Results,
    ResultsError,
    build_results,
    is_stale,
    results_path,
)
from reidviewer.errors import ReidViewerError
from reidviewer.workspace import Workspace


def make_inputs(seed=0, nq=12, ng=40, dim=8, k_plus_1=3):
    """Queries in camera 0, gallery in cameras 0-2, a few identities, attention for every tracklet."""
    rng = np.random.default_rng(seed)
    q_pids = np.arange(nq) % 6 + 1
    g_pids = rng.integers(0, 8, ng)  # pid 0: distractors; some query pids have few or no matches
    g_pids[:nq] = q_pids  # every query pid has at least one gallery item ...
    q_cams = np.zeros(nq, dtype=np.int64)
    g_cams = rng.integers(0, 3, ng)
    g_cams[0] = 0  # ... but query 0's (pid 1) forced item shares its camera
    g_pids[6] = 99  # and pid 1 gets no other items except where rng put them
    centres = rng.normal(size=(100, dim))
    qf = centres[q_pids] + 0.9 * rng.normal(size=(nq, dim))
    gf = centres[g_pids] + 0.9 * rng.normal(size=(ng, dim))
    q_idx = np.arange(nq) * 2
    g_idx = np.arange(ng) * 2 + 1
    attention = {int(i): rng.random((k_plus_1, 3 + int(i) % 5)).astype(np.float32) for i in np.concatenate([q_idx, g_idx])}
    return dict(
        query_features=qf,
        gallery_features=gf,
        query_pids=q_pids,
        gallery_pids=g_pids,
        query_camids=q_cams,
        gallery_camids=g_cams,
        query_indices=q_idx,
        gallery_indices=g_idx,
        query_keys=[f"q{i:03d}" for i in range(nq)],
        gallery_keys=[f"g{i:03d}" for i in range(ng)],
        attention=attention,
    )


META = dict(
    checkpoint_fingerprint="ckpt-abc123",
    dataset_name="synthwalk",
    dataset_root="/data/synthwalk",
    dataset_fingerprint="ds-42",
    protocol="ran",
    split=3,
    settings={"seq_len": 16, "frames": "first128"},
)


@pytest.fixture
def inputs():
    return make_inputs()


@pytest.fixture
def results(inputs):
    return build_results(**inputs, **META)


def assert_same_results(a: Results, b: Results) -> None:
    for f in dataclasses.fields(Results):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            np.testing.assert_array_equal(x, y, err_msg=f.name)
            assert np.asarray(x).dtype == np.asarray(y).dtype, f.name
        else:
            assert x == y, f.name


# ----------------------------------------------------------------------------- building


def test_distances_are_euclidean_and_metrics_match_evaluate_rank(inputs, results):
    expected = cdist(inputs["query_features"], inputs["gallery_features"])
    assert results.distmat.dtype == np.float32
    np.testing.assert_allclose(results.distmat, expected, rtol=1e-6, atol=1e-6)
    cmc, mAP = evaluate_rank(
        results.distmat, inputs["query_pids"], inputs["gallery_pids"], inputs["query_camids"], inputs["gallery_camids"]
    )
    m = results.metrics()
    assert m["mAP"] == mAP
    assert m["cmc"] == [float(x) for x in cmc]
    assert m["rank1"] == float(cmc[0]) and m["rank5"] == float(cmc[4])
    assert m["queries"] == 12 and m["valid_queries"] + m["skipped_queries"] == 12
    assert results.mAP == mAP


def test_ranked_list_agrees_with_the_stored_ranks(inputs, results):
    for row in range(results.num_queries):
        rows, dist, is_match = results.ranked(row)
        assert np.all(np.diff(dist) >= 0)
        # Removed items (same pid and camera) never appear.
        assert not results.removed_mask(row)[rows].any()
        ranks = np.flatnonzero(is_match) + 1
        np.testing.assert_array_equal(ranks, results.true_match_ranks(row))
        m_rows, m_ranks, m_dist = results.true_matches(row)
        np.testing.assert_array_equal(m_rows, rows[is_match])
        np.testing.assert_array_equal(m_dist, dist[is_match])
        if results.valid[row]:
            assert results.first_rank[row] == ranks[0]
        else:
            assert results.first_rank[row] == 0 and len(ranks) == 0
        top_rows, top_dist, _ = results.ranked(row, k=5)
        np.testing.assert_array_equal(top_rows, rows[:5])
        np.testing.assert_array_equal(top_dist, dist[:5])


def test_a_query_without_any_match_is_skipped(results):
    # Query 0 (pid 1, camera 0): see make_inputs; check the fixture really produced a skip.
    skipped = np.flatnonzero(~results.valid)
    assert len(skipped) >= 1
    row = skipped[0]
    assert np.isnan(results.ap[row]) and results.first_rank[row] == 0
    assert results.metrics()["skipped_queries"] == len(skipped)
    assert row not in results.failures()


def test_failures_are_wrong_rank1_worst_ap_first(results):
    fails = results.failures()
    assert len(fails) > 0
    assert np.all(results.first_rank[fails] > 1)
    assert np.all(np.diff(results.ap[fails]) >= 0)
    hits = np.flatnonzero(results.valid & (results.first_rank == 1))
    assert len(fails) + len(hits) == results.valid.sum()


def test_attention_by_dataset_tracklet(inputs, results):
    for idx, trace in inputs["attention"].items():
        got = results.attention(idx)
        assert got.shape == trace.shape
        np.testing.assert_array_equal(got, trace)
    assert results.attention_iterations == 3
    with pytest.raises(KeyError):
        results.attention(10_000)


def test_top_k_mode_for_huge_galleries(inputs, results):
    small = build_results(**inputs, **META, full_matrix_limit=100, topk=7)
    assert small.distmat is None and small.topk_rows.shape == (12, 7)
    assert small.metrics() == results.metrics()
    for row in range(12):
        np.testing.assert_array_equal(small.true_match_ranks(row), results.true_match_ranks(row))
        for k in (3, 7, None):
            a, b = small.ranked(row, k=k), results.ranked(row, k=7 if k is None else k)
            for x, y in zip(a, b):
                np.testing.assert_array_equal(x, y)


def test_non_finite_features_are_refused(inputs):
    inputs["query_features"][2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        build_results(**inputs)


# ----------------------------------------------------------------------------- files


def test_save_load_round_trip(tmp_path, inputs, results):
    path = results.save(tmp_path / "r.npz")
    loaded = Results.load(path)
    assert_same_results(results, loaded)
    assert loaded.metrics() == results.metrics()
    assert loaded.settings == META["settings"] and loaded.split == 3
    small = build_results(**inputs, **META, full_matrix_limit=100, topk=5)
    small.save(tmp_path / "s.npz")
    assert_same_results(small, Results.load(tmp_path / "s.npz"))


def test_save_is_atomic_and_replaces(tmp_path, results):
    path = tmp_path / "res" / "r.results"  # any suffix: np.savez must not append ".npz"
    results.save(path)
    results.split = 7
    results.save(path)
    assert Results.load(path).split == 7
    assert sorted(p.name for p in path.parent.iterdir()) == ["r.results"]


def test_corrupt_or_foreign_files_are_refused_naming_the_file(tmp_path, results):
    path = results.save(tmp_path / "r.npz")
    data = path.read_bytes()
    cases = {
        "truncated.npz": data[: len(data) // 2],
        "garbage.npz": os.urandom(3000),
        "empty.npz": b"",
    }
    for name, blob in cases.items():
        (tmp_path / name).write_bytes(blob)
    with open(tmp_path / "foreign.npz", "wb") as fh:
        np.savez(fh, weights=np.ones(3))
    with open(tmp_path / "wrongtag.npz", "wb") as fh:
        np.savez(fh, meta=np.frombuffer(json.dumps({"format": "other"}).encode(), dtype=np.uint8))
    np.save(tmp_path / "bare.npy", np.ones(3))
    for name in [*cases, "foreign.npz", "wrongtag.npz", "bare.npy", "missing.npz"]:
        with pytest.raises(ResultsError) as err:
            Results.load(tmp_path / name)
        assert isinstance(err.value, ReidViewerError)
        assert name in str(err.value)


def test_inconsistent_arrays_are_refused(tmp_path, results):
    results.match_offsets = results.match_offsets.copy()
    results.match_offsets[-1] += 1
    with open(tmp_path / "bad.npz", "wb") as fh:  # bypass build-time checks, as a tampered file would
        arrays = {f.name: getattr(results, f.name) for f in dataclasses.fields(Results)
                  if isinstance(getattr(results, f.name), np.ndarray)}
        arrays["query_keys"] = np.array(results.query_keys)
        arrays["gallery_keys"] = np.array(results.gallery_keys)
        arrays["meta"] = np.frombuffer(json.dumps(results._meta(), default=str).encode(), dtype=np.uint8)
        np.savez(fh, **arrays)
    with pytest.raises(ResultsError, match="match_offsets"):
        Results.load(tmp_path / "bad.npz")


class _Planted:
    """Unpickling this creates a folder: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def test_planted_pickle_is_refused_without_running(tmp_path, results):
    # The payload is live: unpickling it does run code.
    probe = tmp_path / "probe"
    pickle.loads(pickle.dumps(_Planted(probe)))
    assert probe.is_dir()

    marker = tmp_path / "pwned"
    (tmp_path / "plain.npz").write_bytes(pickle.dumps(_Planted(marker)))
    with pytest.raises(ResultsError, match=r"plain\.npz: .*pickle"):
        Results.load(tmp_path / "plain.npz")
    # A pickle hidden as an object array inside an otherwise well-formed results file.
    with open(tmp_path / "inner.npz", "wb") as fh:
        meta = np.frombuffer(json.dumps(results._meta(), default=str).encode(), dtype=np.uint8)
        np.savez(fh, meta=meta, query_indices=np.array([_Planted(marker)], dtype=object))
    with pytest.raises(ResultsError, match=r"inner\.npz: .*pickle"):
        Results.load(tmp_path / "inner.npz")
    assert not marker.exists()


# ----------------------------------------------------------------------------- where and whether


def test_results_path_and_staleness(tmp_path, results):
    ws = Workspace(tmp_path / "ws")
    p = results_path(ws, "ckpt-abc123", "ds-42", 3, {"seq_len": 16})
    assert p.parent == ws.results_dir and p.suffix == ".npz"
    assert p == results_path(tmp_path / "ws", "ckpt-abc123", "ds-42", 3, {"seq_len": 16})
    others = {
        results_path(ws, "ckpt-other", "ds-42", 3, {"seq_len": 16}),
        results_path(ws, "ckpt-abc123", "ds-43", 3, {"seq_len": 16}),
        results_path(ws, "ckpt-abc123", "ds-42", 4, {"seq_len": 16}),
        results_path(ws, "ckpt-abc123", "ds-42", 3, {"seq_len": 8}),
    }
    assert p not in others and len(others) == 4
    odd = results_path(ws, "../../etc/passwd", "a b/c", 0, "x")
    assert odd.parent == ws.results_dir and "/" not in odd.name and ".." not in odd.name

    assert not is_stale(results, "ckpt-abc123", "ds-42", None)
    assert is_stale(results, "ckpt-new", "ds-42", None)
    assert is_stale(results, "ckpt-abc123", "ds-changed", None)
    assert is_stale(results, "ckpt-abc123", "ds-42", "annotations-v2")
