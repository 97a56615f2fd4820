"""Re-ID metrics: hand-computed cases, the official MARS rule, and MARS scale against a plain loop."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.io

from fixtures_datasets import MARS_INFO
from reidviewer.data.dataset import EVAL_RULES
from reidviewer.engine.metrics import cmc_summary, evaluate_rank, per_query


def one_query(dists, g_pids, g_cams, q_pid=1, q_cam=0, **kw):
    d = np.array([dists], dtype=np.float32)
    return evaluate_rank(d, [q_pid], g_pids, [q_cam], g_cams, **kw)


# ----------------------------------------------------------------------------- references


def torchreid_loop(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=50):
    """torchreid's eval_market1501, row by row, with a *stable* argsort (our documented tie rule)."""
    all_cmc, all_ap, first = [], [], []
    for i in range(distmat.shape[0]):
        order = np.argsort(distmat[i], kind="stable")
        keep = ~((g_pids[order] == q_pids[i]) & (g_camids[order] == q_camids[i]))
        matches = (g_pids[order] == q_pids[i])[keep].astype(np.int32)
        if not matches.any():
            first.append(0)
            continue
        cmc = matches.cumsum()
        cmc[cmc > 1] = 1
        all_cmc.append(cmc[:max_rank])
        hit_positions = np.flatnonzero(matches) + 1  # 1-based rank of each hit
        precision_at_hits = np.arange(1, len(hit_positions) + 1) / hit_positions
        all_ap.append(precision_at_hits.mean())
        first.append(hit_positions[0])
    cmc = np.asarray(all_cmc).astype(np.float32).sum(0) / len(all_ap)
    return cmc, float(np.mean(all_ap)), np.array(first)


def compute_ap_m(good, junk, index):
    """Line-by-line port of MARS-evaluation compute_AP.m (0-based indices)."""
    cmc = np.zeros(len(index))
    ngood = len(good)
    old_recall, old_precision, ap, intersect_size, j, good_now, njunk = 0.0, 1.0, 0.0, 0, 0, 0, 0
    good, junk = set(good), set(junk)
    for n, item in enumerate(index):
        flag = 0
        if item in good:
            cmc[n - njunk :] = 1
            flag = 1
            good_now += 1
        if item in junk:
            njunk += 1
            continue
        if flag == 1:
            intersect_size += 1
        recall = intersect_size / ngood
        precision = intersect_size / (j + 1)
        ap += (recall - old_recall) * ((old_precision + precision) / 2)
        old_recall, old_precision = recall, precision
        j += 1
        if good_now == ngood:
            return ap, cmc
    return ap, cmc


def mars_official_query(d, q_pid, q_cam, g_pids, g_cams):
    good = np.flatnonzero((g_pids == q_pid) & (g_cams != q_cam))
    junk = np.concatenate([np.flatnonzero(g_pids == -1), np.flatnonzero((g_pids == q_pid) & (g_cams == q_cam))])
    return compute_ap_m(good, junk, np.argsort(d, kind="stable"))


# ----------------------------------------------------------------------------- small, by hand


def test_rules_are_the_datasets_rules():
    from reidviewer import evaluate_rank as exported

    assert exported is evaluate_rank
    assert EVAL_RULES == ("market1501", "mars_official")


def test_perfect_ranking():
    d = np.array([[0.1, 0.9, 0.8], [0.7, 0.2, 0.9], [0.9, 0.8, 0.3]], dtype=np.float32)
    cmc, mAP = evaluate_rank(d, [1, 2, 3], [1, 2, 3], [0, 0, 0], [1, 1, 1])
    assert mAP == 1.0
    assert len(cmc) == 3 and cmc.dtype == np.float32
    np.testing.assert_array_equal(cmc, [1, 1, 1])


def test_single_match_at_rank_three():
    cmc, mAP = one_query([0.1, 0.2, 0.3, 0.4], [5, 6, 1, 7], [1, 1, 1, 1])
    np.testing.assert_array_equal(cmc, [0, 0, 1, 1])
    assert mAP == pytest.approx(1 / 3)


def test_two_matches_known_ap():
    # matches at ranks 1 and 3: AP = (1/1 + 2/3) / 2
    cmc, mAP = one_query([0.1, 0.2, 0.3, 0.4, 0.5], [1, 6, 1, 7, 8], [1, 1, 2, 1, 1])
    assert mAP == pytest.approx(5 / 6)
    assert cmc[0] == 1.0
    pq = per_query(np.array([[0.1, 0.2, 0.3, 0.4, 0.5]]), [1], [1, 6, 1, 7, 8], [0], [1, 1, 2, 1, 1])
    np.testing.assert_array_equal(pq["match_ranks"], [1, 3])
    np.testing.assert_array_equal(pq["match_rows"], [0, 2])


def test_ties_are_broken_by_gallery_column():
    # All distances equal: the match's rank is its position among the kept columns.
    _, mAP = one_query([0.5, 0.5, 0.5], [6, 7, 1], [1, 1, 1])
    assert mAP == pytest.approx(1 / 3)
    _, mAP = one_query([0.5, 0.5, 0.5], [1, 7, 6], [1, 1, 1])
    assert mAP == 1.0
    # A removed same-camera item tying with the match does not push it down.
    pq = per_query(np.array([[0.5, 0.5, 0.2]]), [1], [1, 1, 9], [0], [0, 1, 1])
    assert pq["first_rank"][0] == 2
    # Two matches tying with a negative in the middle: columns 0 (match), 1 (neg), 2 (match).
    pq = per_query(np.array([[0.5, 0.5, 0.5]]), [1], [1, 4, 1], [0], [1, 1, 1])
    np.testing.assert_array_equal(pq["match_ranks"], [1, 3])


def test_query_without_match_is_skipped_and_left_out_of_the_mean():
    d = np.array([[0.1, 0.9, 0.5], [0.2, 0.3, 0.1]], dtype=np.float32)
    # query 1 (pid 2, cam 0): its only pid-2 gallery item is also cam 0 -> removed -> skipped.
    q_pids, q_cams = [1, 2], [0, 0]
    g_pids, g_cams = [1, 2, 3], [1, 0, 1]
    cmc, mAP = evaluate_rank(d, q_pids, g_pids, q_cams, g_cams)
    assert mAP == 1.0
    np.testing.assert_array_equal(cmc, [1, 1, 1])
    pq = per_query(d, q_pids, g_pids, q_cams, g_cams)
    np.testing.assert_array_equal(pq["valid"], [True, False])
    np.testing.assert_array_equal(pq["first_rank"], [1, 0])
    assert np.isnan(pq["ap"][1])


def test_all_queries_skipped_is_a_clear_error():
    with pytest.raises(ValueError, match="no query has a true match"):
        evaluate_rank(np.zeros((1, 2)), [1], [1, 2], [0], [0, 0])


def test_same_camera_removal_changes_the_result():
    dists = [0.1, 0.2, 0.3]
    # Closest pid-1 item is in the query's camera: removed, so the true match is rank 2.
    cmc, mAP = one_query(dists, [1, 2, 1], [0, 1, 1])
    np.testing.assert_array_equal(cmc, [0, 1, 1][: len(cmc)])
    assert mAP == pytest.approx(0.5)
    # Same gallery, that item in another camera: it counts, rank 1.
    cmc2, mAP2 = one_query(dists, [1, 2, 1], [1, 1, 1])
    assert cmc2[0] == 1.0
    assert mAP2 == pytest.approx((1 + 2 / 3) / 2)


def test_cmc_length_is_cut_to_the_gallery_and_summary():
    cmc, _ = one_query([0.1, 0.2, 0.3], [2, 1, 3], [1, 1, 1], max_rank=50)
    assert len(cmc) == 3
    s = cmc_summary(cmc)
    assert s == {"rank1": 0.0, "rank5": 1.0, "rank10": 1.0, "rank20": 1.0}


def test_nan_distance_and_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="NaN"):
        one_query([0.1, np.nan], [1, 2], [1, 1])
    with pytest.raises(ValueError, match="g_pids"):
        evaluate_rank(np.zeros((1, 3)), [1], [1, 2], [0], [1, 1])
    with pytest.raises(ValueError, match="unknown evaluation rule"):
        one_query([0.1], [1], [1], rule="cuhk")


# ----------------------------------------------------------------------------- official MARS rule


def test_mars_official_ignores_junk_and_uses_the_trapezoid():
    dists = [0.1, 0.2, 0.3, 0.4, 0.5]
    g_pids = [-1, 7, 1, 8, 1]  # junk, neg, match, neg, match
    g_cams = [1, 1, 1, 1, 1]
    # Junk ignored -> hits at ranks 2 and 4; trapezoid: 1/2 * ((0 + 1/2)/2 + (1/3 + 2/4)/2) = 1/3
    cmc, mAP = one_query(dists, g_pids, g_cams, rule="mars_official")
    assert mAP == pytest.approx(1 / 3)
    np.testing.assert_array_equal(cmc[:2], [0, 1])
    # torchreid's rule keeps pid -1 as a negative: hits at ranks 3 and 5.
    _, mAP_tr = one_query(dists, g_pids, g_cams)
    assert mAP_tr == pytest.approx((1 / 3 + 2 / 5) / 2)
    # A hit at rank 1 contributes (1 + 1) / 2.
    _, mAP1 = one_query([0.1, 0.2], [1, 2], [1, 1], rule="mars_official")
    assert mAP1 == 1.0


def test_mars_official_matches_compute_ap_m_on_random_cases():
    rng = np.random.default_rng(3)
    nq, ng = 40, 60
    g_pids = rng.integers(-1, 8, ng)
    g_cams = rng.integers(0, 3, ng)
    q_pids = rng.integers(1, 8, nq)
    q_cams = rng.integers(0, 3, nq)
    d = np.round(rng.random((nq, ng)), 1).astype(np.float32)  # rounding makes plenty of ties
    pq = per_query(d, q_pids, g_pids, q_cams, g_cams, rule="mars_official")
    aps, cmcs = [], []
    for i in range(nq):
        ap, cmc = mars_official_query(d[i], q_pids[i], q_cams[i], g_pids, g_cams)
        if pq["valid"][i]:
            assert pq["ap"][i] == pytest.approx(ap, abs=1e-12)
            assert pq["first_rank"][i] == np.argmax(cmc) + 1
            aps.append(ap)
            cmcs.append(cmc[:20])
    cmc, mAP = evaluate_rank(d, q_pids, g_pids, q_cams, g_cams, max_rank=20, rule="mars_official")
    assert mAP == pytest.approx(np.mean(aps), abs=1e-12)
    np.testing.assert_allclose(cmc, np.mean(cmcs, axis=0), atol=1e-6)


# ----------------------------------------------------------------------------- MARS scale


def mars_metadata():
    if not MARS_INFO.is_dir():
        pytest.skip("real MARS metadata not available")
    test = scipy.io.loadmat(MARS_INFO / "tracks_test_info.mat")["track_test_info"].astype(np.int64)
    query_idx = scipy.io.loadmat(MARS_INFO / "query_IDX.mat")["query_IDX"].ravel().astype(np.int64) - 1
    return test, query_idx


@pytest.fixture(scope="module")
def mars_torchreid():
    """torchreid's MARS setting: 1,980 queries; gallery = other test rows with pid != -1."""
    test, query_idx = mars_metadata()
    q = test[query_idx]
    rest = np.ones(len(test), dtype=bool)
    rest[query_idx] = False
    g = test[rest & (test[:, 2] != -1)]
    q_pids, q_cams, g_pids, g_cams = q[:, 2], q[:, 3] - 1, g[:, 2], g[:, 3] - 1
    # Random features with identity structure (a pid centre plus noise), seeded.
    rng = np.random.default_rng(0)
    pids = np.unique(np.concatenate([q_pids, g_pids]))
    centres = rng.normal(size=(len(pids), 32))
    qf = centres[np.searchsorted(pids, q_pids)] + 0.8 * rng.normal(size=(len(q_pids), 32))
    gf = centres[np.searchsorted(pids, g_pids)] + 0.8 * rng.normal(size=(len(g_pids), 32))
    d2 = (qf**2).sum(1)[:, None] + (gf**2).sum(1)[None, :] - 2 * qf @ gf.T
    distmat = np.sqrt(np.maximum(d2, 0)).astype(np.float32)
    return distmat, q_pids, g_pids, q_cams, g_cams


def test_mars_scale_equals_the_plain_torchreid_loop(mars_torchreid):
    distmat, q_pids, g_pids, q_cams, g_cams = mars_torchreid
    assert distmat.shape == (1980, 9330)
    ref_cmc, ref_map, ref_first = torchreid_loop(distmat, q_pids, g_pids, q_cams, g_cams)
    pq = per_query(distmat, q_pids, g_pids, q_cams, g_cams)
    cmc, mAP = evaluate_rank(distmat, q_pids, g_pids, q_cams, g_cams)
    np.testing.assert_array_equal(cmc, ref_cmc)
    assert mAP == pytest.approx(ref_map, abs=1e-9)
    np.testing.assert_array_equal(pq["first_rank"], ref_first)
    # SPEC [DATA]: 140 of the 1,980 queries have no cross-camera match in the 9,330 gallery.
    assert int((~pq["valid"]).sum()) == 140
    assert 0.05 < cmc[0] < 0.95  # the features carry identity: a real mix of hits and misses


def test_mars_scale_with_ties_equals_the_stable_loop(mars_torchreid):
    distmat, q_pids, g_pids, q_cams, g_cams = mars_torchreid
    rows = slice(0, 300)
    tied = np.round(distmat[rows], 0)  # a handful of distinct values: ties everywhere
    ref_cmc, ref_map, ref_first = torchreid_loop(tied, q_pids[rows], g_pids, q_cams[rows], g_cams)
    pq = per_query(tied, q_pids[rows], g_pids, q_cams[rows], g_cams)
    cmc, mAP = evaluate_rank(tied, q_pids[rows], g_pids, q_cams[rows], g_cams)
    np.testing.assert_array_equal(cmc, ref_cmc)
    assert mAP == pytest.approx(ref_map, abs=1e-9)
    np.testing.assert_array_equal(pq["first_rank"], ref_first)


def test_mars_official_setting_every_query_has_a_match():
    test, query_idx = mars_metadata()
    q = test[query_idx]
    q_pids, q_cams, g_pids, g_cams = q[:, 2], q[:, 3] - 1, test[:, 2], test[:, 3] - 1
    rng = np.random.default_rng(1)
    distmat = rng.random((len(q), len(test)), dtype=np.float32)
    # The query itself is in this gallery (same pid and camid): removed, never a hit.
    distmat[np.arange(len(q)), query_idx] = 0.0
    pq = per_query(distmat, q_pids, g_pids, q_cams, g_cams, rule="mars_official")
    assert pq["valid"].all()  # SPEC [DATA]: with all 12,180 test tracklets every query has a match
    off = pq["match_offsets"]
    assert not any(query_idx[i] in pq["match_rows"][off[i] : off[i + 1]] for i in range(len(q)))
    for i in range(0, 1980, 199):  # a few queries against the MATLAB port
        ap, cmc = mars_official_query(distmat[i], q_pids[i], q_cams[i], g_pids, g_cams)
        assert pq["ap"][i] == pytest.approx(ap, abs=1e-12)
        assert pq["first_rank"][i] == np.argmax(cmc) + 1
