"""The generic folder reader: free-text person and camera names, natural frame order."""
from __future__ import annotations

import pytest
from fixtures_datasets import make_folder, write_frames

from reidviewer.data.registry import detect_dataset, open_dataset
from reidviewer.errors import DatasetError


def test_identities_cameras_and_split(tmp_path):
    root = make_folder(tmp_path / "mine")
    assert detect_dataset(root) == "folder"
    ds = open_dataset(root)
    tr, split = ds.tracklets, ds.splits[0]
    # pid = position among all person names (alice, bob, carol, dave, erin); camid likewise.
    by_key = {t.key: (t.pid, t.camid) for t in tr}
    assert by_key["train/alice/door/t1"] == (0, 0)
    assert by_key["train/bob/lobby/t1"] == (1, 1)
    assert by_key["query/carol/door/a"] == (2, 0)
    assert by_key["gallery/carol/lobby/b"] == (2, 1)  # same name in query and gallery: same pid
    assert by_key["gallery/erin/street/x"] == (4, 2)
    assert len(split.train) == 2 and len(split.query) == 2 and len(split.gallery) == 3
    assert {tr[i].person for i in split.query} == {"carol", "dave"}
    assert all(t.index == i for i, t in enumerate(tr))


def test_unpadded_frame_numbers_in_numeric_order(tmp_path):
    root = make_folder(tmp_path / "d", [("query", "p", "c", "t", ["11.png", "9.png", "10.png", "100.jpg"]),
                                        ("gallery", "p", "c2", "t", 1)])
    ds = open_dataset(root)
    assert [f.rsplit("/", 1)[1] for f in ds.tracklets[0].frames] == ["9.png", "10.png", "11.png", "100.jpg"]


def test_train_is_optional(tmp_path):
    root = make_folder(tmp_path / "d", [("query", "a", "c1", "t", 2), ("gallery", "a", "c2", "t", 2)])
    ds = open_dataset(root)
    assert len(ds.splits[0].train) == 0 and any("no train/" in n for n in ds.notices)


def test_non_ascii_names(tmp_path):
    root = make_folder(tmp_path / "d", [("query", "Zoë", "caméra", "t", ["é1.png", "é2.png"]),
                                        ("gallery", "Zoë", "porte", "t", 1)])
    ds = open_dataset(root)
    assert ds.tracklets[0].person == "Zoë" and ds.tracklets[0].frame_path(1).is_file()


def test_empty_tracklet_skipped_and_all_empty_is_error(tmp_path):
    root = make_folder(tmp_path / "d")
    (root / "gallery/erin/street/y").mkdir()
    ds = open_dataset(root)
    assert any("1 empty tracklet" in n and "gallery/erin/street/y" in n for n in ds.notices)
    empty = make_folder(tmp_path / "e", [("query", "a", "c", "t", 1)])
    (empty / "gallery/a/c/t").mkdir(parents=True)
    with pytest.raises(DatasetError) as err:
        open_dataset(empty, "folder")
    assert err.value.path == empty / "gallery" and "no tracklet" in str(err.value)


def test_frames_at_the_wrong_depth(tmp_path):
    root = make_folder(tmp_path / "d")
    write_frames(root / "gallery" / "frank" / "door", ["1.png"])  # missing the <tracklet> level
    with pytest.raises(DatasetError) as err:
        open_dataset(root)
    assert err.value.path == root / "gallery/frank/door" and "<tracklet>" in str(err.value)


def test_missing_gallery(tmp_path):
    root = make_folder(tmp_path / "d", [("query", "a", "c", "t", 1)])
    with pytest.raises(DatasetError) as err:
        open_dataset(root, "folder")
    assert err.value.path == root / "gallery" and "missing" in str(err.value)
