"""Attention audit: AUROC of 1 - attention for flagged frames, per refinement iteration."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from _annotations_fixtures import make_dataset

from reidviewer.annotations import AnnotationError, AnnotationStore, FlagFrames
from reidviewer.engine.audit import (
    audit_attention,
    mann_whitney_auroc,
    occlusion_flags,
    store_flags,
)


def brute_force_auroc(scores, positive):
    """Probability that a positive outscores a negative, ties counting one half (pair by pair)."""
    pos = [s for s, p in zip(scores, positive) if p]
    neg = [s for s, p in zip(scores, positive) if not p]
    wins = sum((a > b) + 0.5 * (a == b) for a in pos for b in neg)
    return wins / (len(pos) * len(neg))


def test_attention_low_exactly_on_flagged_frames_gives_1_and_constant_attention_gives_half():
    flags = {
        "a": np.array([0, 1, 0, 0, 1, 0], dtype=bool),
        "b": np.array([1, 0, 0, 0, 0], dtype=bool),
        "c": np.array([0, 0, 0, 1], dtype=bool),
    }
    attention = {}
    for key, f in flags.items():
        constant = np.full(len(f), 0.5)
        informative = np.where(f, 0.1, 0.9)
        reversed_ = np.where(f, 0.95, 0.2)
        attention[key] = np.stack([constant, informative, reversed_, informative])  # K = 3
    audit = audit_attention(attention, flags, source="constructed")
    assert audit.auroc == [0.5, 1.0, 0.0, 1.0]
    assert audit.iterations == 4 and audit.tracklets == 3
    assert audit.frames == 15 and audit.flagged == 4
    for key in flags:
        assert audit.per_tracklet[key] == [0.5, 1.0, 0.0, 1.0]
    assert audit.mean_tracklet_auroc == [0.5, 1.0, 0.0, 1.0]


def test_pooled_auroc_compares_frames_across_tracklets():
    # Within each tracklet attention separates perfectly, but tracklet "b" has lower attention
    # overall, so pooled over frames its clear frames rank below "a"'s flagged ones.
    flags = {"a": np.array([1, 0, 0], dtype=bool), "b": np.array([1, 0, 0], dtype=bool)}
    attention = {"a": np.array([[0.6, 0.9, 0.9]]), "b": np.array([[0.1, 0.4, 0.4]])}
    audit = audit_attention(attention, flags)
    assert audit.per_tracklet == {"a": [1.0], "b": [1.0]}
    scores = np.concatenate([1 - attention["a"][0], 1 - attention["b"][0]])
    labels = np.concatenate([flags["a"], flags["b"]])
    assert audit.auroc[0] == pytest.approx(brute_force_auroc(scores, labels)) == pytest.approx(0.75)


def test_ties_are_counted_as_the_mann_whitney_statistic():
    rng = np.random.default_rng(7)
    for _ in range(20):
        n = int(rng.integers(4, 40))
        scores = rng.integers(0, 4, size=n).astype(float)  # many ties
        positive = rng.random(n) < 0.4
        if positive.all() or not positive.any():
            continue
        assert mann_whitney_auroc(scores, positive) == pytest.approx(brute_force_auroc(scores, positive))


def test_per_tracklet_auroc_is_nan_without_flagged_or_clear_frames():
    flags = {
        "mixed": np.array([1, 0, 0], dtype=bool),
        "all_clear": np.zeros(4, dtype=bool),
        "all_flagged": np.ones(2, dtype=bool),
    }
    attention = {k: np.vstack([np.linspace(0.2, 0.8, len(f))] * 2) for k, f in flags.items()}
    audit = audit_attention(attention, flags)
    assert audit.per_tracklet["mixed"] == [1.0, 1.0]
    assert all(math.isnan(x) for x in audit.per_tracklet["all_clear"] + audit.per_tracklet["all_flagged"])
    assert audit.mean_tracklet_auroc == [1.0, 1.0]  # the NaNs are left out of the mean
    doc = audit.to_json()
    json.dumps(doc, allow_nan=False)  # NaN becomes null, so this is strict JSON
    assert doc["per_tracklet"]["all_clear"] == [None, None]


def test_occlusion_ground_truth_flags_ratios_above_the_threshold(tmp_path):
    ds = make_dataset(tmp_path / "toy", occlusion=True)
    flags = occlusion_flags(ds.occlusion)
    key = "cam1/person001"  # occlusion 0, 0.2, 0.4, 0.6, 0.8
    assert flags[key].tolist() == [False, False, True, True, True]
    assert occlusion_flags({"x": np.array([0.3, 0.31])})["x"].tolist() == [False, True]  # strictly above
    attention = {t.index: np.vstack([1 - ds.occlusion[t.key], np.full(len(t), 0.5)]) for t in ds.tracklets}
    audit = audit_attention(attention, flags, dataset=ds, source="occlusion > 0.3")
    assert audit.auroc == [1.0, 0.5]
    assert set(audit.per_tracklet) == {t.key for t in ds.tracklets}
    with pytest.raises(AnnotationError, match="records no occlusion"):
        occlusion_flags(make_dataset(tmp_path / "toy").occlusion)


def test_traces_covering_part_of_a_tracklet_need_frame_indices():
    flags = {"a": np.array([0, 0, 1, 0, 1, 1, 0, 0], dtype=bool)}
    attention = {"a": np.array([[0.9, 0.1, 0.9, 0.2]])}  # the trace covers frames 0, 2, 4, 6 ... in this order
    with pytest.raises(AnnotationError, match="4 attention columns but 8"):
        audit_attention(attention, flags)
    audit = audit_attention(attention, flags, frame_indices={"a": np.array([0, 2, 4, 6])})
    # frames 0, 2, 4, 6 -> flags 0, 1, 1, 0; attention 0.9, 0.1, 0.9, 0.2
    assert audit.auroc[0] == pytest.approx(brute_force_auroc(1 - attention["a"][0], [0, 1, 1, 0]))
    assert audit.frames == 4 and audit.flagged == 2


def test_flags_from_the_store(tmp_path):
    ds = make_dataset(tmp_path / "toy")
    with AnnotationStore(tmp_path / "a.sqlite", synchronous="NORMAL") as store:
        store.attach(ds)
        store.apply(FlagFrames("cam1/person001", (1, 3), "occluded"))
        store.apply(FlagFrames("cam2/person001", 0, "bad_crop"))
        masks = store_flags(store)
        assert masks["cam1/person001"].tolist() == [False, True, False, True, False]
        assert masks["cam2/person001"].tolist() == [True] + [False] * 5
        assert set(store_flags(store, kinds={"occluded"})["cam2/person001"].tolist()) == {False}
        reviewed = store_flags(store, keys=["cam1/person002"])
        assert reviewed["cam1/person002"].tolist() == [False] * 7
    attention = {k: np.where(m, 0.2, 0.7)[None] for k, m in masks.items()}
    assert audit_attention(attention, masks).auroc == [1.0]


def test_bad_input_is_refused_with_the_reason():
    flags = {"a": np.array([0, 1, 0], dtype=bool), "b": np.array([0, 1], dtype=bool)}
    with pytest.raises(AnnotationError, match="none of the 1 traced tracklets has flags"):
        audit_attention({"z": np.ones((2, 3))}, flags)
    with pytest.raises(AnnotationError, match="'b' has 3 iterations, others 2"):
        audit_attention({"a": np.ones((2, 3)), "b": np.ones((3, 2))}, flags)
    with pytest.raises(AnnotationError, match="'a' holds NaN"):
        audit_attention({"a": np.array([[0.1, np.nan, 0.3]])}, flags)
    with pytest.raises(AnnotationError, match="no frame of the 1 audited tracklets is flagged"):
        audit_attention({"a": np.ones((1, 3))}, {"a": np.zeros(3, dtype=bool)})


@pytest.mark.parametrize("shape, levels", [((9,), 3), ((4, 12), 2), ((2, 3, 17), 5), ((1, 1), 1), ((3, 40), 1000)])
def test_average_ranks_equal_scipys_with_ties(shape, levels):
    from scipy.stats import rankdata

    from reidviewer.engine.audit import average_ranks

    x = np.random.default_rng(sum(shape)).integers(0, levels, size=shape).astype(float)
    assert np.array_equal(average_ranks(x), rankdata(x, method="average", axis=-1))
