"""apply_annotations: the corrected dataset view that training and evaluation see."""
from __future__ import annotations

import numpy as np
import pytest
from _annotations_fixtures import MISLABELLED, index_of, make_dataset

from reidviewer.annotations import (
    AnnotationError,
    AnnotationStore,
    FlagFrames,
    FlagTracklets,
    Merge,
    Relabel,
    Split,
    apply_annotations,
    frame_selection,
    kept_frames,
)


@pytest.fixture
def dataset(tmp_path):
    return make_dataset(tmp_path / "toy", occlusion=True)


@pytest.fixture
def store(tmp_path, dataset):
    s = AnnotationStore(tmp_path / "ann.sqlite", synchronous="NORMAL")
    s.attach(dataset)
    yield s
    s.close()


def pids_of(view, indices):
    return [view.tracklets[i].pid for i in indices]


def test_correcting_a_mislabelled_tracklet_changes_the_pid_every_split_part_sees(dataset, store):
    i = index_of(dataset, MISLABELLED)
    split = dataset.splits[0]
    assert i in split.gallery and dataset.tracklets[i].pid == 6
    store.apply(Relabel(MISLABELLED, 5))
    view = apply_annotations(dataset, store)
    assert view.tracklets[i].pid == 5
    gallery = dict(zip(view.splits[0].gallery.tolist(), pids_of(view, view.splits[0].gallery)))
    assert gallery[i] == 5
    # The dataset the reader gave is untouched.
    assert dataset.tracklets[i].pid == 6
    # In training too: person 3's tracklets are really person 2.
    assert dataset.splits[0].num_train_ids(dataset.tracklets) == 3
    store.apply(Relabel(["cam1/person003", "cam2/person003"], 2))
    view = apply_annotations(dataset, store)
    train = view.splits[0].train
    assert view.splits[0].num_train_ids(view.tracklets) == 2
    assert pids_of(view, train).count(2) == 4
    assert len(set(view.splits[0].train_labels(view.tracklets).tolist())) == 2
    # Query tracklets follow the corrected identity as well.
    store.apply(Relabel("cam1/person004", 5))
    view = apply_annotations(dataset, store)
    assert view.tracklets[index_of(dataset, "cam1/person004")].pid == 5
    assert sorted(pids_of(view, view.splits[0].query)) == [5, 5, 6]


def test_merged_identities_share_one_pid_and_a_split_gets_a_fresh_one(dataset, store):
    store.apply(Merge(keep=4, absorb=5))
    edit = store.apply(Split(["cam1/person006"]))
    fresh = store.record(edit).result["pid"]
    view = apply_annotations(dataset, store)
    pid = {t.key: t.pid for t in view.tracklets}
    assert pid["cam1/person004"] == pid["cam1/person005"] == pid["cam2/person005"] == 4
    assert pid["cam1/person006"] == fresh
    others = [t.pid for t in view.tracklets if t.key != "cam1/person006"]
    assert fresh not in others


def test_tracklet_indices_stay_stable_and_excluded_or_junk_tracklets_leave_every_split(dataset, store):
    junk = index_of(dataset, "cam2/person005")  # gallery
    excl = index_of(dataset, "cam1/person004")  # query
    trn = index_of(dataset, "cam1/person001")  # train
    store.apply(FlagTracklets("cam2/person005", "junk"))
    store.apply(FlagTracklets(["cam1/person004", "cam1/person001"], "exclude"))
    view = apply_annotations(dataset, store)
    assert len(view.tracklets) == len(dataset.tracklets)
    assert all(t.index == i for i, t in enumerate(view.tracklets))
    assert [t.key for t in view.tracklets] == [t.key for t in dataset.tracklets]
    s0, v0 = dataset.splits[0], view.splits[0]
    for i in (junk, excl, trn):
        assert i not in v0.train and i not in v0.query and i not in v0.gallery
    # Everything else is kept, in its order.
    assert v0.train.tolist() == [i for i in s0.train.tolist() if i != trn]
    assert v0.query.tolist() == [i for i in s0.query.tolist() if i != excl]
    assert v0.gallery.tolist() == [i for i in s0.gallery.tolist() if i != junk]
    assert v0.gallery.dtype == s0.gallery.dtype
    assert "3 excluded" in view.notices[-1]


def test_distractors_stay_in_the_gallery_as_pid_0_and_leave_train_and_query(dataset, store):
    g = index_of(dataset, "cam2/person006")
    q = index_of(dataset, "cam1/person006")
    t = index_of(dataset, "cam1/person002")
    store.apply(FlagTracklets(["cam2/person006", "cam1/person006", "cam1/person002"], "distractor"))
    view = apply_annotations(dataset, store)
    v0 = view.splits[0]
    assert g in v0.gallery and view.tracklets[g].pid == 0
    assert q not in v0.query and t not in v0.train
    assert q not in v0.gallery  # it was never in this split's gallery
    # junk wins over distractor
    store.apply(FlagTracklets("cam2/person006", "junk"))
    assert g not in apply_annotations(dataset, store).splits[0].gallery


def test_distractors_get_their_own_pids_when_0_is_a_real_query_identity(dataset, store):
    store.apply(Relabel("cam1/person004", 0))  # a dataset whose person 0 is a real query identity
    store.apply(FlagTracklets("cam2/person006", "distractor"))
    store.apply(FlagTracklets("cam2/person005", "distractor"))
    view = apply_annotations(dataset, store)
    d = [view.tracklets[index_of(dataset, k)].pid for k in ("cam2/person005", "cam2/person006")]
    assert 0 not in d and len(set(d)) == 2
    assert all(p not in {t.pid for t in view.tracklets if t.key not in ("cam2/person005", "cam2/person006")} for p in d)
    assert any("got its own fresh identity" in n for n in view.notices)


def test_flagged_frames_are_dropped_only_when_asked(dataset, store):
    key = "cam1/person002"  # 7 frames
    i = index_of(dataset, key)
    store.apply(FlagFrames(key, (1, 4), "occluded"))
    store.apply(FlagFrames(key, 2, "bad_crop"))
    assert list(apply_annotations(dataset, store).tracklets[i].frames) == list(dataset.tracklets[i].frames)

    view = apply_annotations(dataset, store, exclude_flagged_frames=True)
    original = dataset.tracklets[i].frames
    assert list(view.tracklets[i].frames) == [original[j] for j in (0, 3, 5, 6)]
    assert np.allclose(view.occlusion[key], dataset.occlusion[key][[0, 3, 5, 6]])
    assert "3 flagged frame(s) dropped" in view.notices[-1]

    only_occluded = apply_annotations(dataset, store, exclude_flagged_frames={"occluded"})
    assert list(only_occluded.tracklets[i].frames) == [original[j] for j in (0, 2, 3, 5, 6)]
    assert frame_selection(dataset, store)[i].tolist() == [0, 3, 5, 6]
    with pytest.raises(AnnotationError, match="unknown frame flag"):
        apply_annotations(dataset, store, exclude_flagged_frames={"smudged"})


def test_a_tracklet_with_every_frame_flagged_keeps_one_frame(dataset, store):
    key = "cam1/person001"  # 5 frames
    i = index_of(dataset, key)
    store.apply(FlagFrames(key, (0, 1, 2, 3, 4), "occluded"))
    store.apply(FlagFrames(key, (0, 1, 3, 4), "bad_crop"))
    view = apply_annotations(dataset, store, exclude_flagged_frames=True)
    assert list(view.tracklets[i].frames) == [dataset.tracklets[i].frames[2]]  # the least flagged
    assert i in view.splits[0].train
    # All equally flagged: the middle frame.
    assert kept_frames(6, {j: {"occluded"} for j in range(6)}).tolist() == [2]
    assert kept_frames(3, {}).tolist() == [0, 1, 2]


def test_a_store_of_another_dataset_is_refused(tmp_path, dataset, store):
    other = make_dataset(tmp_path / "toy", fingerprint="fp-other")
    with pytest.raises(AnnotationError, match="fingerprint fp-test-0001, not fp-other"):
        apply_annotations(other, store)


def test_the_view_records_the_store_version(dataset, store):
    store.apply(Relabel(MISLABELLED, 5))
    assert store.version() in apply_annotations(dataset, store).notices[-1]
