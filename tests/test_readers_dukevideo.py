"""The DukeMTMC-VideoReID reader: both frame-name styles, fixed train/query/gallery."""
from __future__ import annotations

import pytest
from fixtures_datasets import make_duke

from reidviewer.data.registry import detect_dataset, open_dataset
from reidviewer.errors import DatasetError


@pytest.mark.parametrize("style", ["new", "old"])
def test_identities_cameras_split_and_order(tmp_path, style):
    root = make_duke(tmp_path / "dukemtmc-vidreid", style=style)
    assert detect_dataset(root) == "dukevideo"
    ds = open_dataset(root)
    assert ds.name == "dukevideo" and len(ds.splits) == 1 and ds.notices == []
    split, tr = ds.splits[0], ds.tracklets
    assert [(tr[i].pid, tr[i].camid) for i in split.train] == [(1, 0), (1, 1), (3, 2)]
    assert [(tr[i].pid, tr[i].camid) for i in split.query] == [(5, 0), (6, 1)]
    assert [(tr[i].pid, tr[i].camid) for i in split.gallery] == [(5, 5), (6, 3), (9, 7)]
    for i, t in enumerate(tr):
        assert t.index == i and t.camera == f"C{t.camid + 1}" and t.person == f"{t.pid:04d}"
        assert t.frame_path(0).is_file()
    g = tr[split.gallery[0]]
    assert g.key == "DukeMTMC-VideoReID/gallery/0005/0002"
    assert [int(f.split("F")[-1][:4]) for f in g.frames] == [8, 9, 10, 11, 12]


def test_root_may_be_the_inner_folder(tmp_path):
    base = make_duke(tmp_path / "DukeMTMC-VideoReID", container=False)
    assert detect_dataset(base) == "dukevideo"
    ds = open_dataset(base)
    assert ds.tracklets[0].key == "train/0001/0001"


def test_empty_tracklet_skipped_with_notice(tmp_path):
    root = make_duke(tmp_path / "d")
    (root / "DukeMTMC-VideoReID/gallery/0009/0002").mkdir()
    ds = open_dataset(root)
    assert len(ds.tracklets) == 8
    assert any("1 empty tracklet" in n and "gallery/0009/0002" in n for n in ds.notices)


def test_misnamed_frame_names_the_file(tmp_path):
    root = make_duke(tmp_path / "d")
    folder = root / "DukeMTMC-VideoReID/query/0006/0001"
    for f in folder.iterdir():
        f.rename(folder / f"frame_{f.name[-9:]}")
    with pytest.raises(DatasetError) as err:
        open_dataset(root)
    assert err.value.path.parent == folder and "0001_C6_F0099_X30823.jpg" in str(err.value)


def test_misnamed_person_folder(tmp_path):
    root = make_duke(tmp_path / "d")
    bad = root / "DukeMTMC-VideoReID/train/person1"
    bad.mkdir()
    with pytest.raises(DatasetError) as err:
        open_dataset(root)
    assert err.value.path == bad


def test_missing_gallery_folder(tmp_path):
    root = make_duke(tmp_path / "d")
    gallery = root / "DukeMTMC-VideoReID/gallery"
    gallery.rename(gallery.with_name("galery"))
    with pytest.raises(DatasetError) as err:
        open_dataset(root, "dukevideo")
    assert err.value.path == gallery and "missing" in str(err.value)
