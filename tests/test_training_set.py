"""Training tracklets on the map: features from the checkpoint, cached, appended to the whole set."""
from __future__ import annotations

import json

import numpy as np
import pytest

from reidviewer.engine import embedding_map as em
from reidviewer.engine.training_set import compute_training_set


@pytest.fixture(scope="module")
def opened(synth_root, random_checkpoint, tmp_path_factory):
    from reidviewer.data.registry import open_dataset
    from reidviewer.engine.evaluate import compute_results
    from reidviewer.workspace import Workspace

    ws = Workspace(tmp_path_factory.mktemp("ws-train"))
    ds = open_dataset(synth_root, "synthwalk", None, ws)
    results = compute_results(ds, 0, random_checkpoint, ws)
    return ds, results, ws


def test_training_features_equal_the_results_features_of_the_same_tracklet(opened, random_checkpoint):
    from reidviewer.engine.evaluate import EvalSettings, extract
    from reidviewer.model.checkpoint import load_checkpoint

    ds, results, ws = opened
    ts = compute_training_set(ds, 0, random_checkpoint, ws)
    train = ds.split(0).train
    assert list(ts.dataset_indices) == list(train) and ts.features.shape == (len(train), results.query_features.shape[1])
    assert [ds.tracklets[int(i)].key for i in train] == ts.keys
    assert list(ts.pids) == [ds.tracklets[int(i)].pid for i in train]
    # The same model on the same tracklets by hand.
    model, _c, _m = load_checkpoint(random_checkpoint, map_location="cpu")
    model.eval()
    ref, att = extract(ds, np.asarray(train[:3]), model, ws, EvalSettings())
    assert np.allclose(ts.features[:3], ref, atol=1e-5)
    assert np.allclose(ts.attention[int(train[0])], att[int(train[0])])
    assert np.isfinite(ts.spreads).all()
    # Second call: read from the cache (the file exists), same numbers.
    files = list((ws.cache_dir / "training_features").glob("*.npz"))
    assert len(files) == 1
    again = compute_training_set(ds, 0, random_checkpoint, ws)
    assert np.array_equal(again.features, ts.features)
    assert np.allclose(again.attention[int(train[1])], ts.attention[int(train[1])])
    # A damaged cache file is recomputed, never trusted.
    files[0].write_bytes(b"not an npz")
    third = compute_training_set(ds, 0, random_checkpoint, ws)
    assert np.allclose(third.features, ts.features, atol=1e-6)


def test_whole_set_appends_training_points_and_find_similar_searches_them(opened, random_checkpoint):
    ds, results, ws = opened
    ts = compute_training_set(ds, 0, random_checkpoint, ws)
    plain = em.whole_set(results)
    ms = em.whole_set(results, ts)
    n0 = len(plain)
    assert len(ms) == n0 + len(ts) and ms.num_training == len(ts)
    assert np.array_equal(ms.features[:n0], plain.features) and np.array_equal(ms.features[n0:], ts.features)
    assert ms.role(n0) == "training" and ms.role(0) == "query"
    assert ms.is_training.sum() == len(ts) and not ms.is_training[:n0].any()
    assert ms.find(ts.keys[0]) == n0
    # Brute force over query + gallery + training.
    a = n0 + 1
    d = np.linalg.norm(ms.features - ms.features[a], axis=1)
    d[a] = np.inf
    sim = em.find_similar(ms.features, a, 5, ms.pids)
    assert list(sim.points) == list(np.argsort(d, kind="stable")[:5])
    # Spread colours reach the training points.
    spread = em.colour_values(results, ms, "spread")
    assert np.allclose(spread[n0:], ts.spreads)


def test_training_needs_a_checkpoint(opened):
    from reidviewer.errors import UsageError

    ds, _results, ws = opened
    with pytest.raises(UsageError, match="model reference"):
        compute_training_set(ds, 0, "model:imported:foo", ws)


def test_similar_cli_with_training(opened, random_checkpoint, tmp_path):
    from reidviewer.cli import main

    ds, results, ws = opened
    train_key = ds.tracklets[int(ds.split(0).train[0])].key
    js = tmp_path / "sim.json"
    assert main(["similar", "--root", str(ds.root), "--dataset", "synthwalk", "--checkpoint", str(random_checkpoint),
                 "--workspace", str(ws.root), "--tracklet", train_key, "--training", "--top", "4",
                 "--json", str(js)]) == 0
    data = json.loads(js.read_text())
    assert data["anchor"]["role"] == "training" and data["anchor"]["key"] == train_key
    assert data["whole_set"] == len(em.whole_set(results)) + len(ds.split(0).train)
    out = tmp_path / "map.svg"
    assert main(["export", "map", "--root", str(ds.root), "--dataset", "synthwalk", "--checkpoint",
                 str(random_checkpoint), "--workspace", str(ws.root), "--training", "--out", str(out)]) == 0
    assert "training" in out.read_text()
