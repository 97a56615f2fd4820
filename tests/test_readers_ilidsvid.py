"""The iLIDS-VID reader on small fixtures in the real on-disk layout."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.io
from fixtures_datasets import ilidsvid_ls_set, make_ilidsvid

from reidviewer.data.frames import read_frame
from reidviewer.data.registry import detect_dataset, get_reader, open_dataset
from reidviewer.errors import DatasetError

PERSONS = [1, 2, 5, 7, 19, 100, 101, 230, 300, 319]


def _mat(root):
    return root / "train-test people splits" / "train_test_splits_ilidsvid.mat"


def test_identities_cameras_and_keys(tmp_path):
    root = make_ilidsvid(tmp_path / "ilids-vid", PERSONS, lengths=lambda p, c: 3 + p % 4 + c)
    assert detect_dataset(root) == "ilidsvid"
    ds = open_dataset(root)
    assert ds.name == "ilidsvid" and ds.protocol == "standard" and ds.eval_rule == "market1501"
    assert ds.identities == 10 and len(ds.tracklets) == 20 and ds.cameras == 2
    assert sorted({t.pid for t in ds.tracklets}) == PERSONS  # person007 → 7
    for i, t in enumerate(ds.tracklets):
        assert t.index == i
        cam = t.camid + 1
        assert t.camera == f"cam{cam}" and t.person == f"person{t.pid:03d}"
        assert t.key == f"i-LIDS-VID/sequences/cam{cam}/person{t.pid:03d}"
        assert len(t) == 3 + t.pid % 4 + cam
    assert ds.notices == []
    assert len(ds.fingerprint) == 16


def test_frames_in_frame_number_order(tmp_path):
    # Frames 98, 99, 100, ... were written last-first, so directory order is not frame order.
    root = make_ilidsvid(tmp_path / "d", [3, 4], lengths=5, first_frame=98)
    ds = open_dataset(root)
    t = next(t for t in ds.tracklets if t.pid == 4 and t.camid == 1)
    numbers = [int(f.rsplit("_", 1)[1].split(".")[0]) for f in t.frames]
    assert numbers == [98, 99, 100, 101, 102]
    # The pixels confirm the path order is the temporal order the fixture wrote (blue = 40 + 6 + i).
    assert [int(read_frame(p)[0, 0, 2]) for p in t.frame_paths()] == [46, 47, 48, 49, 50]


def test_splits_follow_ls_set_first_half_test(tmp_path):
    ls = ilidsvid_ls_set(10, seed=5)
    root = make_ilidsvid(tmp_path / "d", PERSONS, ls_set=ls)
    ds = open_dataset(root)
    assert len(ds.splits) == 10
    for row, split in zip(ls, ds.splits):
        test = sorted(PERSONS[i - 1] for i in row[:5])
        train = sorted(PERSONS[i - 1] for i in row[5:])
        tr = ds.tracklets
        assert sorted(tr[i].pid for i in split.query) == test
        assert all(tr[i].camid == 0 for i in split.query)
        assert sorted(tr[i].pid for i in split.gallery) == test
        assert all(tr[i].camid == 1 for i in split.gallery)
        assert sorted({tr[i].pid for i in split.train}) == train
        assert len(split.train) == 10  # both cameras of 5 persons
        assert list(split.train_labels(tr)) == sorted([0, 1, 2, 3, 4] * 2)


def test_float_ls_set_with_whole_numbers_is_accepted(tmp_path):
    ls = ilidsvid_ls_set(6)
    root = make_ilidsvid(tmp_path / "d", range(1, 7), ls_set=ls.astype(np.float64))
    ds = open_dataset(root)
    assert sorted(ds.tracklets[i].pid for i in ds.splits[0].query) == sorted(ls[0, :3].tolist())


@pytest.mark.parametrize(
    "mutate, words",
    [
        (lambda ls: ls.astype(np.float64) + 0.5, "whole numbers"),
        (lambda ls: np.where(ls == 1, 99, ls), "unknown person"),
        (lambda ls: np.where(ls == 1, 2, ls), "not a permutation"),
        (lambda ls: ls[:, :5], "columns"),
    ],
)
def test_bad_split_file_names_the_mat(tmp_path, mutate, words):
    root = make_ilidsvid(tmp_path / "d", range(1, 7), ls_set=mutate(ilidsvid_ls_set(6)))
    with pytest.raises(DatasetError) as err:
        open_dataset(root)
    assert err.value.path == _mat(root)
    assert "train_test_splits_ilidsvid.mat" in str(err.value) and words in str(err.value)


def test_split_file_without_ls_set_variable(tmp_path):
    root = make_ilidsvid(tmp_path / "d", range(1, 5), with_splits=False)
    _mat(root).parent.mkdir()
    scipy.io.savemat(str(_mat(root)), {"splits": np.eye(2)})
    with pytest.raises(DatasetError, match="ls_set"):
        open_dataset(root)


def test_without_split_file_random_seeded_splits_and_notice(tmp_path):
    root = make_ilidsvid(tmp_path / "d", range(1, 8), with_splits=False)  # odd count: 3 test, 4 train
    a, b = open_dataset(root), open_dataset(root)
    assert any("random" in n and "seed" in n for n in a.notices)
    assert len(a.splits) == 10
    for sa, sb in zip(a.splits, b.splits):
        assert np.array_equal(sa.query, sb.query) and np.array_equal(sa.train, sb.train)
        test = {a.tracklets[i].pid for i in sa.query}
        train = {a.tracklets[i].pid for i in sa.train}
        assert len(test) == 3 and len(train) == 4 and not test & train
    assert len({tuple(s.query) for s in a.splits}) > 1  # the splits differ from each other


def test_person_in_one_camera_is_skipped_with_notice(tmp_path):
    root = make_ilidsvid(tmp_path / "d", range(1, 5), one_cam={9: 2, 12: 1})
    ds = open_dataset(root)
    assert {t.pid for t in ds.tracklets} == {1, 2, 3, 4}
    assert any("2 person folder(s) present in one camera only" in n for n in ds.notices)


def test_empty_tracklet_is_skipped_and_counted(tmp_path):
    root = make_ilidsvid(tmp_path / "d", range(1, 5), with_splits=False)
    for f in (root / "i-LIDS-VID/sequences/cam2/person003").iterdir():
        f.unlink()
    ds = open_dataset(root)
    assert {t.pid for t in ds.tracklets} == {1, 2, 4}
    assert any("1 empty tracklet" in n and "person003" in n for n in ds.notices)


def test_all_empty_is_an_error(tmp_path):
    root = make_ilidsvid(tmp_path / "d", [1], lengths=0, with_splits=False)
    with pytest.raises(DatasetError, match="no person has frames"):
        open_dataset(root)


def test_root_may_be_the_i_lids_vid_folder_itself(tmp_path):
    outer = make_ilidsvid(tmp_path / "d", range(1, 5))
    ds = open_dataset(outer / "i-LIDS-VID")
    assert len(ds.tracklets) == 8
    assert ds.tracklets[0].key == "sequences/cam1/person001"
    assert not any("random" in n for n in ds.notices)  # the splits beside it were found
    assert ds.tracklets[0].frame_path(0).is_file()


def test_any_number_of_persons_for_synthwalk(tmp_path):
    root = make_ilidsvid(tmp_path / "d", range(1, 4), lengths=2)
    ds = get_reader("ilidsvid").open(root, "standard", None)
    assert len(ds.tracklets) == 6 and len(ds.splits) == 10
    assert all(len(s.query) == 1 and len(s.train) == 4 for s in ds.splits)


def test_misnamed_person_folder(tmp_path):
    root = make_ilidsvid(tmp_path / "d", range(1, 3))
    bad = root / "i-LIDS-VID/sequences/cam1/subject5"
    bad.mkdir()
    with pytest.raises(DatasetError) as err:
        open_dataset(root)
    assert err.value.path == bad and "personNNN" in str(err.value)


def test_missing_camera_folder(tmp_path):
    root = make_ilidsvid(tmp_path / "d", range(1, 3))
    cam2 = root / "i-LIDS-VID/sequences/cam2"
    cam2.rename(root / "i-LIDS-VID/sequences/camera2")
    with pytest.raises(DatasetError) as err:
        open_dataset(root, "ilidsvid")
    assert err.value.path == cam2 and "missing" in str(err.value)


def test_fingerprint_changes_with_content_and_dataset_is_read_only(tmp_path):
    root = make_ilidsvid(tmp_path / "d", range(1, 5))
    before = sorted(p for p in root.rglob("*"))
    fp = open_dataset(root).fingerprint
    assert open_dataset(root).fingerprint == fp
    assert sorted(p for p in root.rglob("*")) == before  # nothing written into the dataset
    extra = root / "i-LIDS-VID/sequences/cam1/person002/cam1_person002_00500.png"
    extra.write_bytes((root / "i-LIDS-VID/sequences/cam1/person002/cam1_person002_00098.png").read_bytes())
    assert open_dataset(root).fingerprint != fp
