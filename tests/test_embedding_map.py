"""The map engine: projection determinism, selection, find-similar, camera bias, cache, CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest

from reidviewer.engine import embedding_map as em
from reidviewer.engine.results import build_results


def tiny_results(seed: int = 0, overlap: bool = False):
    """6 persons × 2 cameras; query = camera 0, gallery = camera 1 (plus the queries when
    ``overlap``, as on MARS)."""
    rng = np.random.default_rng(seed)
    pids = np.repeat(np.arange(6), 2)
    cams = np.tile([0, 1], 6)
    feats = np.eye(8)[pids] + 0.05 * rng.normal(size=(12, 8))
    q = np.flatnonzero(cams == 0)
    g = np.flatnonzero(cams == 1)
    if overlap:
        g = np.arange(12)
    att = {int(i): 0.1 + 0.8 * rng.random((2, 5)) for i in range(12)}
    return build_results(
        feats[q], feats[g], pids[q], pids[g], cams[q], cams[g],
        query_indices=q, gallery_indices=g,
        query_keys=[f"p{pids[i]}c{cams[i]}" for i in q], gallery_keys=[f"p{pids[i]}c{cams[i]}" for i in g],
        attention=att, split=0,
    )


def test_whole_set_dedupes_queries_in_gallery():
    r = tiny_results(overlap=True)
    ms = em.whole_set(r)
    assert len(ms) == 12
    assert list(ms.query_rows[:6]) == list(range(6)) and (ms.query_rows[6:] == -1).all()
    # every query is in the gallery too, with its gallery row
    for i in range(6):
        g = ms.gallery_rows[i]
        assert g >= 0 and r.gallery_keys[g] == ms.keys[i]
    assert len(set(ms.keys)) == 12
    assert ms.role(0) == "query + gallery" and ms.role(7) == "gallery"
    assert ms.find("q:2") == 2 and ms.find(ms.keys[9]) == 9
    with pytest.raises(em.MapError):
        ms.find("nobody")


def test_pca_matches_svd_and_is_deterministic():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 16)) * np.linspace(3, 0.1, 16)
    a = em.pca_2d(x, seed=0)
    b = em.pca_2d(x.copy(), seed=5)
    assert np.array_equal(a, b)
    xc = x - x.mean(0)
    _, _, vt = np.linalg.svd(xc, full_matrices=False)
    ref = xc @ vt[:2].T
    # same up to sign; our sign: largest loading positive
    for j in range(2):
        s = np.sign(vt[j][np.argmax(np.abs(vt[j]))])
        assert np.allclose(a[:, j], s * ref[:, j], atol=1e-4)


def test_pca_randomized_path_close_to_exact(monkeypatch):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(200, 40)) * np.r_[10.0, 5.0, np.linspace(1, 0.1, 38)]
    exact = em.pca_2d(x)
    monkeypatch.setattr(em, "EXACT_PCA_DIM", 10)
    approx = em.pca_2d(x)
    assert np.array_equal(approx, em.pca_2d(x))
    assert np.allclose(exact, approx, atol=1e-3)


def test_find_similar_matches_brute_force():
    rng = np.random.default_rng(3)
    f = rng.normal(size=(500, 12)).astype(np.float32)
    pids = rng.integers(-1, 40, size=500)
    norms = em.squared_norms(f)
    for a in (0, 17, 499):
        s = em.find_similar(f, a, top=25, pids=pids, norms=norms)
        d = np.sqrt(((f.astype(np.float64) - f[a]) ** 2).sum(1))
        d[a] = np.inf
        ref = np.argsort(d, kind="stable")[:25]
        assert list(s.points) == list(ref)
        assert np.allclose(s.distances, d[ref], atol=1e-3)
        assert a not in s.points
        known = (pids[ref] >= 0) & (pids[a] >= 0)
        assert list(s.known) == list(known)
        assert list(s.is_match) == list(known & (pids[ref] == pids[a]))
    assert len(em.find_similar(f[:3], 0, top=10).points) == 2


def test_camera_bias_known_answers():
    # 2 cameras × 10 tracklets. Features cluster perfectly by camera: every neighbour (k=3) is
    # from the tracklet's own camera → observed 1, expected 9/19, ratio 19/9.
    rng = np.random.default_rng(4)
    cams = np.repeat([0, 1], 10)
    f = np.eye(2)[cams] * 10 + 0.01 * rng.normal(size=(20, 2))
    b = em.camera_bias(f, cams, k=3)
    assert b.observed == pytest.approx(1.0)
    assert b.expected == pytest.approx(9 / 19)
    assert b.ratio == pytest.approx(19 / 9)
    # Features cluster by identity across cameras: person p seen once by each camera, nearest
    # neighbour (k=1) is the same person in the other camera → observed 0.
    pids = np.tile(np.arange(10), 2)
    cams2 = np.repeat([0, 1], 10)
    f2 = np.eye(10)[pids] * 10 + 0.01 * rng.normal(size=(20, 10))
    b2 = em.camera_bias(f2, cams2, pids, k=1)
    assert b2.observed == pytest.approx(0.0)
    assert b2.ratio == pytest.approx(0.0)
    assert "Camera bias" in b2.text() and em.CAMERA_BIAS_EXPLANATION
    # Other-identities variant: unknown cameras dropped; one camera → n/a.
    b3 = em.camera_bias(f, np.zeros(20, dtype=int), k=3)
    assert b3.cameras == 1 and "n/a" in b3.text()
    # Sampling anchors keeps the expected share exact in expectation and is seeded.
    b4 = em.camera_bias(f, cams, k=3, max_anchors=8, seed=1)
    assert b4.anchors == 8 and b4.observed == pytest.approx(1.0)
    assert b4.as_dict() == em.camera_bias(f, cams, k=3, max_anchors=8, seed=1).as_dict()


def test_camera_bias_other_identities():
    # Each person seen 3 times by one camera (p even → cam 0, odd → cam 1); neighbours of other
    # identities are placed uniformly: same person first, then random. Plain share is inflated
    # by the person's own tracklets; the other-identity share should be near its expectation.
    rng = np.random.default_rng(5)
    pids = np.repeat(np.arange(20), 3)
    cams = pids % 2
    f = np.eye(20)[pids] * 5 + 0.01 * rng.normal(size=(60, 20))
    b = em.camera_bias(f, cams, pids, k=2)
    assert b.observed == pytest.approx(1.0)  # 2 nearest = own person's other tracklets, same camera
    # other-identity neighbours are equidistant: the share is then about the expectation
    assert b.expected_other == pytest.approx(27 / 57)
    assert 0.0 <= b.observed_other <= 1.0


def test_lasso_and_rect_selection():
    pts = np.array([[0, 0], [1, 1], [2, 2], [0.5, 1.5], [3, 0], [1.5, 0.2]], dtype=float)
    tri = [(-0.1, -0.1), (2.5, -0.1), (-0.1, 2.5)]  # x + y < 2.4 roughly
    assert list(em.points_in_polygon(pts, tri)) == [0, 1, 3, 5]
    assert list(em.points_in_rect(pts, 2.5, -1, 0.9, 1.2)) == [1, 5]
    assert len(em.points_in_polygon(pts, tri[:2])) == 0


def test_colour_values():
    r = tiny_results()
    ms = em.whole_set(r)
    assert list(em.colour_values(r, ms, "identity")) == list(ms.pids)
    hit = em.colour_values(r, ms, "rank1")
    assert set(hit[:6]) <= {0, 1} and (hit[6:] == -1).all()
    assert (hit[:6] == (r.first_rank == 1)).all()
    ap = em.colour_values(r, ms, "ap")
    assert np.allclose(ap[:6], r.ap) and np.isnan(ap[6:]).all()
    flag = em.colour_values(r, ms, "flag", flagged={int(ms.dataset_indices[3])})
    assert list(np.flatnonzero(flag)) == [3]
    spread = em.colour_values(r, ms, "spread")
    for i in range(12):
        ref = r.attention(int(ms.dataset_indices[i]))[-1].std()
        assert spread[i] == pytest.approx(ref, rel=1e-5)
    with pytest.raises(em.MapError):
        em.colour_values(r, ms, "nope")


def test_csv(tmp_path):
    r = tiny_results()
    ms = em.whole_set(r)
    coords = em.pca_2d(ms.features)
    text = em.selection_csv(ms, [0, 7], coords)
    lines = text.strip().splitlines()
    assert lines[0].startswith("key,name,pid")
    assert lines[1].startswith(ms.keys[0]) and lines[2].startswith(ms.keys[7])


def test_umap_deterministic_and_cached(tmp_path):
    pytest.importorskip("umap")
    from reidviewer.workspace import Workspace

    r = tiny_results()
    ws = Workspace(tmp_path / "ws")
    a = em.projection(r, "umap", seed=3, workspace=ws)
    files = list((ws.cache_dir / "maps").glob("*.npz"))
    assert len(files) == 1
    b = em.projection(r, "umap", seed=3, workspace=ws)  # from the cache
    c = em.umap_2d(em.whole_set(r).features, seed=3)    # recomputed
    assert a.shape == (12, 2)
    assert np.array_equal(a, b) and np.allclose(a, c)
    with np.load(files[0], allow_pickle=False) as z:
        assert set(z.files) == {"coords", "digest"}


def test_umap_missing_says_what_to_install(monkeypatch):
    import builtins

    real = builtins.__import__

    def no_umap(name, *a, **k):
        if name == "umap":
            raise ImportError("no umap")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_umap)
    with pytest.raises(em.MapError, match=r"reidviewer\[map\]"):
        em.umap_2d(np.zeros((5, 3)))


def test_figure_and_similar_cli(tmp_path):
    from figures_fixtures import make_saved

    from reidviewer.cli import main

    dataset, results, path, ws = make_saved(tmp_path, "r.npz")
    out = tmp_path / "map.svg"
    assert main(["export", "map", "--results", str(path), "--root", str(dataset.root), "--workspace", str(ws.root),
                 "--out", str(out), "--color-by", "camera"]) == 0
    assert out.stat().st_size > 1000 and "<svg" in out.read_text()[:500]
    person = dataset.tracklets[int(results.query_indices[0])].person
    js = tmp_path / "sim.json"
    assert main(["similar", "--results", str(path), "--workspace", str(ws.root), "--tracklet", person,
                 "--top", "3", "--json", str(js)]) == 0
    data = json.loads(js.read_text())
    assert len(data["neighbours"]) == 3 and data["anchor"]["key"] == results.query_keys[0]
    assert {"key", "distance", "is_match", "camera_bias"} <= set(data["neighbours"][0]) | set(data)


def test_export_map_colours_flagged_tracklets_from_the_store(tmp_path):
    from figures_fixtures import make_saved

    from reidviewer.annotations.edits import FlagFrames
    from reidviewer.annotations.store import AnnotationStore
    from reidviewer.cli.similar import flagged_indices

    dataset, results, path, ws = make_saved(tmp_path, "r.npz")
    ms = em.whole_set(results)
    assert flagged_indices(ws, ms, dataset) == set()
    assert not list(ws.annotations_dir.glob("*.sqlite"))  # looking does not create a store
    key = ms.keys[2]
    store = AnnotationStore.for_dataset(ws, dataset)
    store.apply(FlagFrames(key, (0,), "occluded"))
    store.close()
    assert flagged_indices(ws, ms, dataset) == {int(ms.dataset_indices[2])}
