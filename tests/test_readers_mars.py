"""The MARS reader: a small fixture with frames, and the full-scale real metadata (no frames)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.io
from fixtures_datasets import MARS_INFO, MARS_SMALL_TEST, MARS_SMALL_TRAIN, make_mars_full, make_mars_small

from reidviewer.cli import main
from reidviewer.data.frames import read_frame
from reidviewer.data.readers import mars
from reidviewer.data.registry import detect_dataset, open_dataset
from reidviewer.errors import DatasetError
from reidviewer.workspace import Workspace


@pytest.fixture
def small(tmp_path):
    return make_mars_small(tmp_path / "mars")


def test_small_torchreid_protocol(small):
    assert detect_dataset(small) == "mars"
    ds = open_dataset(small)
    assert ds.protocol == "torchreid" and ds.eval_rule == "market1501"
    assert len(ds.tracklets) == len(MARS_SMALL_TRAIN) + len(MARS_SMALL_TEST)
    assert ds.notices == []
    split = ds.splits[0]
    tr = ds.tracklets
    assert [tr[i].pid for i in split.train] == [1, 1, 3, 3, 3]  # raw pids ...
    assert list(split.train_labels(tr)) == [0, 0, 1, 1, 1]  # ... relabelled for training
    assert [(tr[i].pid, tr[i].camid) for i in split.query] == [(2, 0), (4, 2)]
    # Gallery: every non-query test tracklet except junk; the 0000 distractors stay.
    assert sorted(tr[i].pid for i in split.gallery) == [0, 0, 2, 2, 4]
    junk = next(t for t in tr if t.pid == -1)
    assert junk.key == "bbox_test/00-1/00-1C1T0001" and junk.person == "00-1" and junk.camera == "C1"
    assert junk.index not in split.gallery


def test_small_official_protocol_keeps_queries_and_junk(small):
    ds = open_dataset(small, protocol="official")
    assert ds.eval_rule == "mars_official"
    split = ds.splits[0]
    assert len(split.gallery) == len(MARS_SMALL_TEST)
    assert set(split.query) <= set(split.gallery)
    assert -1 in {ds.tracklets[i].pid for i in split.gallery}


def test_small_frames_paths_and_order(small):
    ds = open_dataset(small)
    for t in ds.tracklets:
        assert t.camid == int(t.key.split("C")[1][0]) - 1
        assert [int(f[-7:-4]) for f in t.frames] == list(range(1, len(t) + 1))
        assert all(f.startswith(f"{t.key}F") for f in t.frames)
        assert t.frame_path(len(t) - 1).is_file()
    t = ds.tracklets[3]
    assert t.frames[0] == "bbox_train/0003/0003C3T0001F001.jpg"
    assert read_frame(t.frame_path(0)).shape == (16, 8, 3)


def test_cache_makes_the_same_dataset_and_writes_only_to_the_workspace(small, tmp_path):
    ws = Workspace(tmp_path / "ws")
    before = sorted(small.rglob("*"))
    cold = open_dataset(small, workspace=ws)
    files = list((ws.cache_dir / "index").glob("mars-*.npz"))
    assert len(files) == 1
    index, from_cache = mars.load_index(small, small / "info", ws)
    assert from_cache
    warm = open_dataset(small, workspace=ws)
    assert warm.fingerprint == cold.fingerprint == open_dataset(small).fingerprint
    assert [(t.pid, t.camid, t.key, list(t.frames)) for t in warm.tracklets] == [
        (t.pid, t.camid, t.key, list(t.frames)) for t in cold.tracklets
    ]
    assert sorted(small.rglob("*")) == before


def test_cache_is_rebuilt_when_info_changes_or_is_corrupt(small, tmp_path):
    ws = Workspace(tmp_path / "ws")
    open_dataset(small, workspace=ws)
    (cache,) = (ws.cache_dir / "index").glob("mars-*.npz")
    cache.write_bytes(b"not a zip")
    assert mars.load_index(small, small / "info", ws)[1] is False  # corrupt → parsed again
    assert mars.load_index(small, small / "info", ws)[1] is True
    # A readable cache whose tracks point past its names is not trusted either.
    with np.load(cache) as z:
        arrays = dict(z)
    arrays["track_test"] = arrays["track_test"] + 1000
    with open(cache, "wb") as fh:
        np.savez(fh, **arrays)
    index, from_cache = mars.load_index(small, small / "info", ws)
    assert not from_cache and index.tracks[1][-1, 1] == len(index.names[1])
    # A changed name list (one tracklet renamed) invalidates the cache.
    names = small / "info" / "train_name.txt"
    names.write_bytes(names.read_bytes().replace(b"0001C1T0001", b"0001C1T0009"))
    ds = open_dataset(small, workspace=ws)
    assert ds.tracklets[0].key == "bbox_train/0001/0001C1T0009"
    assert len(list((ws.cache_dir / "index").glob("mars-*.npz"))) == 1  # the stale cache is gone


def _first_end_plus_one(a):
    """Row 1 (pid 1, camera 1) swallows the first frame of row 2 (pid 1, camera 2)."""
    a = a.copy()
    a[0, 1] += 1
    return a


def _rewrite(small, var_file, var, fn):
    path = small / "info" / var_file
    arr = scipy.io.loadmat(str(path))[var]
    scipy.io.savemat(str(path), {var: fn(arr)})
    return path


def test_integer_valued_float_mat_is_accepted(small):
    _rewrite(small, "tracks_train_info.mat", "track_train_info", lambda a: a.astype(np.float64))
    _rewrite(small, "query_IDX.mat", "query_IDX", lambda a: a.astype(np.float64))
    assert len(open_dataset(small).splits[0].query) == 2


@pytest.mark.parametrize(
    "var_file, var, fn, words",
    [
        ("tracks_train_info.mat", "track_train_info", lambda a: a.astype(np.float64) / 2, "whole numbers"),
        ("tracks_test_info.mat", "track_test_info", lambda a: a[:, :3], "N×4"),
        ("tracks_test_info.mat", "track_test_info", lambda a: a + np.array([0, 100, 0, 0]), "not a range"),
        ("tracks_train_info.mat", "track_train_info", _first_end_plus_one, "row 1: train_name.txt line 4"),
        ("query_IDX.mat", "query_IDX", lambda a: a * 100, "outside"),
        ("query_IDX.mat", "query_IDX", lambda a: np.array([[4, 4]]), "twice"),
    ],
)
def test_bad_info_mat_names_the_file(small, var_file, var, fn, words):
    path = _rewrite(small, var_file, var, fn)
    with pytest.raises(DatasetError) as err:
        open_dataset(small)
    assert err.value.path == path and words in str(err.value)


def test_names_of_one_tracklet_must_share_pid_and_camera(small):
    names = small / "info" / "test_name.txt"
    lines = names.read_bytes().split(b"\r\n")
    lines[1] = lines[1].replace(b"00-1C1", b"00-1C4")  # second frame of the junk tracklet: camera 4
    names.write_bytes(b"\r\n".join(lines))
    with pytest.raises(DatasetError) as err:
        open_dataset(small)
    assert err.value.path == small / "info" / "tracks_test_info.mat"
    assert "row 1" in str(err.value) and "test_name.txt line 2" in str(err.value)


def test_missing_info_file_and_missing_variable(small):
    (small / "info" / "query_IDX.mat").unlink()
    with pytest.raises(DatasetError) as err:
        open_dataset(small, "mars")
    assert err.value.path == small / "info" / "query_IDX.mat" and "missing" in str(err.value)
    scipy.io.savemat(str(small / "info" / "query_IDX.mat"), {"query": np.array([[1]])})
    with pytest.raises(DatasetError, match="no variable 'query_IDX'"):
        open_dataset(small, "mars")


def test_lf_name_lists_and_missing_frames_notice(small):
    for f in ("train_name.txt", "test_name.txt"):
        p = small / "info" / f
        p.write_bytes(p.read_bytes().replace(b"\r\n", b"\n"))
    for d in ("bbox_train", "bbox_test"):
        (small / d).rename(small / f"{d}.off")
    ds = open_dataset(small)
    assert ds.tracklets[0].frames[0] == "bbox_train/0001/0001C1T0001F001.jpg"
    assert any("bbox_test/ is missing" in n for n in ds.notices)


# --------------------------------------------------------------------------- full scale


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    if not MARS_INFO.is_dir():
        pytest.skip("real MARS metadata not available")
    return make_mars_full(tmp_path_factory.mktemp("mars-full") / "mars")


def test_full_scale_torchreid_counts(full, tmp_path):
    ws = Workspace(tmp_path / "ws")
    for _ in range(2):  # cold (parses, caches), then warm (from the cache): the same numbers
        ds = open_dataset(full, workspace=ws)
        split = ds.splits[0]
        assert len(split.train) == 8298 and split.num_train_ids(ds.tracklets) == 625
        assert len(split.query) == 1980 and len(split.gallery) == 9330
        assert ds.num_frames == 509_914 + 681_089
    pid = np.array([t.pid for t in ds.tracklets])
    cam = np.array([t.camid for t in ds.tracklets])
    assert np.bincount(cam[split.train]).tolist() == [1816, 1957, 1321, 750, 1880, 574]
    assert np.bincount(cam[split.query]).tolist() == [524, 456, 319, 191, 384, 106]
    assert (pid[split.gallery] == 0).sum() == 3248 and -1 not in pid[split.gallery]
    # SPEC [DATA]: 140 of the 1,980 queries have no cross-camera match in the 9,330 gallery.
    gp, gc = pid[split.gallery], cam[split.gallery]
    has_match = [((gp == pid[q]) & (gc != cam[q])).any() for q in split.query]
    assert sum(has_match) == 1840


def test_full_scale_official_counts(full):
    ds = open_dataset(full, protocol="official")
    assert len(ds.splits[0].query) == 1980 and len(ds.splits[0].gallery) == 12180
    assert ds.eval_rule == "mars_official"


def test_cli_info_json_mars(full, capsys, tmp_path):
    assert main(["info", "--root", str(full), "--json", "--workspace", str(tmp_path / "ws")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dataset"] == "mars" and out["tracklets"] == 8298 + 12180
    assert out["splits"][0]["query"] == {"identities": 626, "tracklets": 1980}
    assert out["splits"][0]["gallery"]["tracklets"] == 9330
