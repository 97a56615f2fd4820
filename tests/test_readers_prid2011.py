"""The PRID-2011 reader: the RAN (first 200) and Wang (≥ 27 frames) protocols."""
from __future__ import annotations

import json

import numpy as np
import pytest
from fixtures_datasets import make_prid

from reidviewer.cli import main
from reidviewer.data.registry import detect_dataset, open_dataset
from reidviewer.errors import DatasetError

# Persons 1..8 in both cameras with frame counts around the 27-frame rule, cam_b-only 201..204.
LENGTHS = {
    (1, "a"): 30, (1, "b"): 40,
    (2, "a"): 26, (2, "b"): 28,  # cam_a one short → out of wang
    (3, "a"): 27, (3, "b"): 27,  # exactly 27 in both → in
    (4, "a"): 28, (4, "b"): 26,  # cam_b one short → out
    (5, "a"): 26, (5, "b"): 26,  # out
    (6, "a"): 28, (6, "b"): 28,  # in
    (7, "a"): 5, (7, "b"): 40,  # out
    (8, "a"): 27, (8, "b"): 45,  # in
}
WANG = [1, 3, 6, 8]


def _lengths(pid, cam):
    return LENGTHS.get((pid, cam), 3)


@pytest.fixture
def prid(tmp_path):
    cam_b = [*range(1, 9), 201, 202, 203, 204]
    return make_prid(tmp_path / "prid2011", cam_a=range(1, 9), cam_b=cam_b, lengths=_lengths)


def test_ran_protocol_is_default(prid):
    assert detect_dataset(prid) == "prid2011"
    ds = open_dataset(prid)
    assert ds.protocol == "ran" and ds.protocols == ("ran", "wang")
    assert sorted({t.pid for t in ds.tracklets}) == list(range(1, 9))  # cam_b-only 201..204 are not identities
    assert any("4 person folder(s) seen by one camera only" in n for n in ds.notices)
    for i, t in enumerate(ds.tracklets):
        assert t.index == i
        assert t.camera == ("cam_a", "cam_b")[t.camid]
        assert t.key == f"prid_2011/multi_shot/{t.camera}/person_{t.pid:04d}"
        assert len(t) == LENGTHS[t.pid, t.camera[-1]]
        assert [int(f[-8:-4]) for f in t.frames] == list(range(1, len(t) + 1))
    assert len(ds.splits) == 10
    for s in ds.splits:
        assert len(s.query) == 4 and len(s.gallery) == 4 and len(s.train) == 8
        assert all(ds.tracklets[i].camid == 0 for i in s.query)
        assert all(ds.tracklets[i].camid == 1 for i in s.gallery)
        q = {ds.tracklets[i].pid for i in s.query}
        assert q == {ds.tracklets[i].pid for i in s.gallery}
        assert not q & {ds.tracklets[i].pid for i in s.train}


def test_wang_keeps_persons_with_27_frames_in_both_cameras(prid):
    ds = open_dataset(prid, protocol="wang")
    assert sorted({t.pid for t in ds.tracklets}) == WANG
    assert any("4 of 8 persons have fewer than 27 frames" in n for n in ds.notices)
    assert any("random" in n for n in ds.notices)  # no splits_prid2011.json here
    assert all(len(s.query) == 2 and len(s.train) == 4 for s in ds.splits)


def test_wang_uses_the_split_json(prid):
    splits = [{"train": ["person_0001", "person_0006"], "test": ["person_0003", "person_0008"]},
              {"train": ["person_0003", "person_0008"], "test": ["person_0001", "person_0006"]}]
    (prid / "splits_prid2011.json").write_text(json.dumps(splits))
    ds = open_dataset(prid, protocol="wang")
    assert not any("random" in n for n in ds.notices)
    assert len(ds.splits) == 2
    assert sorted(ds.tracklets[i].pid for i in ds.splits[0].query) == [3, 8]
    assert sorted({ds.tracklets[i].pid for i in ds.splits[1].train}) == [3, 8]
    # The json sits beside prid_2011/: opening prid_2011 itself finds it in the parent.
    inner = open_dataset(prid / "prid_2011", protocol="wang")
    assert len(inner.splits) == 2 and inner.tracklets[0].key == "multi_shot/cam_a/person_0001"


@pytest.mark.parametrize(
    "splits, words",
    [
        ([{"train": ["person_0001"], "test": ["person_0099"]}], "unknown person 'person_0099'"),
        ([{"train": ["person_0001"], "test": ["person_0002"]}], "unknown person 'person_0002'"),  # < 27 frames
        ([{"train": ["person_0001"], "test": ["person_0001"]}], "both train and test"),
        ([{"train": ["person_0001"]}], '"train" and "test"'),
        ({"train": []}, "list"),
    ],
)
def test_bad_split_json_names_the_file(prid, splits, words):
    path = prid / "splits_prid2011.json"
    path.write_text(json.dumps(splits))
    with pytest.raises(DatasetError) as err:
        open_dataset(prid, protocol="wang")
    assert err.value.path == path and words in str(err.value)


def test_split_json_that_is_not_json(prid):
    (prid / "splits_prid2011.json").write_text("[{oops")
    with pytest.raises(DatasetError, match="splits_prid2011.json: cannot be read as JSON"):
        open_dataset(prid, protocol="wang")


def test_first_200_persons_seen_by_both_cameras(tmp_path):
    # 203 persons in both cameras (2 frames each), cam_b-only persons above them, as in the real data.
    root = make_prid(tmp_path / "p", cam_a=range(1, 204), cam_b=range(1, 215), lengths=2)
    ds = open_dataset(root)
    assert sorted({t.pid for t in ds.tracklets}) == list(range(1, 201))
    assert any("3 person(s) seen by both cameras after the first 200" in n for n in ds.notices)
    assert any("11 person folder(s) seen by one camera only" in n for n in ds.notices)
    assert all(len(s.query) == 100 and len(s.train) == 200 for s in ds.splits)


def test_empty_sequence_person_is_skipped(prid):
    for f in (prid / "prid_2011/multi_shot/cam_b/person_0006").iterdir():
        f.unlink()
    ds = open_dataset(prid, protocol="wang")
    assert sorted({t.pid for t in ds.tracklets}) == [1, 3, 8]
    assert any("1 empty tracklet" in n and "person_0006" in n for n in ds.notices)


def test_misnamed_person_folder(prid):
    bad = prid / "prid_2011/multi_shot/cam_a/person1"
    bad.mkdir()
    with pytest.raises(DatasetError) as err:
        open_dataset(prid)
    assert err.value.path == bad and "person_NNNN" in str(err.value)


def test_missing_camera_folder(prid):
    cam_b = prid / "prid_2011/multi_shot/cam_b"
    cam_b.rename(prid / "prid_2011/multi_shot/camB")
    with pytest.raises(DatasetError) as err:
        open_dataset(prid)
    assert err.value.path == cam_b


def test_random_splits_are_seeded(prid):
    a, b = open_dataset(prid), open_dataset(prid)
    assert all(np.array_equal(x.query, y.query) for x, y in zip(a.splits, b.splits))
    assert a.fingerprint == b.fingerprint != open_dataset(prid, protocol="wang").fingerprint


def test_cli_info_json_wang(prid, capsys):
    ws = str(prid.parent / "ws")
    assert main(["info", "--root", str(prid), "--protocol", "wang", "--json", "--workspace", ws]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dataset"] == "prid2011" and out["protocol"] == "wang"
    assert out["identities"] == 4 and out["tracklets"] == 8 and out["cameras"] == 2
    assert len(out["splits"]) == 10 and out["splits"][0]["query"] == {"identities": 2, "tracklets": 2}


def test_cli_unknown_protocol_exits_2(prid, capsys):
    assert main(["info", "--root", str(prid), "--protocol", "nope", "--workspace", str(prid.parent / "ws")]) == 2
    assert "nope" in capsys.readouterr().err
