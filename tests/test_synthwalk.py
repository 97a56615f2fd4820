"""SynthWalk: determinism, the iLIDS-VID layout, the occlusion truth, the reader and the CLI."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from reidviewer.cli import main
from reidviewer.data.frames import read_frame
from reidviewer.data.registry import detect_dataset, open_dataset
from reidviewer.data.synthwalk import (
    SIDECAR,
    SPLITS_FILE,
    SynthConfig,
    generate,
    is_complete,
    read_sidecar,
    render_tracklet,
)
from reidviewer.errors import DatasetError

FRAME = re.compile(r"^i-LIDS-VID/sequences/cam([12])/person(\d{3})/cam\1_person\2_(\d{5})\.png$")

#: Small, default occluded share, tracklets long enough for runs of occluded frames.
OCCLUDED = SynthConfig(ids=6, seed=2, min_len=24, max_len=36)


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def occluded_set(tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("sw") / "synthwalk", OCCLUDED, workers=1)


def test_same_config_gives_identical_bytes_whatever_the_workers(tmp_path):
    config = SynthConfig(ids=3, seed=7, min_len=3, max_len=5)
    one = _files(generate(tmp_path / "one", config, workers=1))
    two = _files(generate(tmp_path / "two", config, workers=2))
    again = _files(generate(tmp_path / "again", config, workers=1))
    assert one.keys() == two.keys() == again.keys()
    assert one == two == again
    other = _files(generate(tmp_path / "other", SynthConfig(ids=3, seed=8, min_len=3, max_len=5), workers=1))
    pngs = [k for k in one if k.endswith(".png")]
    assert not any(one[k] == other.get(k) for k in pngs)  # another seed: other frames


def test_layout_is_ilidsvid(occluded_set):
    root = occluded_set
    frames = [p.relative_to(root).as_posix() for p in root.rglob("*.png")]
    assert frames and all(FRAME.match(f) for f in frames), [f for f in frames if not FRAME.match(f)][:3]
    by_tracklet: dict[tuple[str, str], list[int]] = {}
    for f in frames:
        cam, person, number = FRAME.match(f).groups()
        by_tracklet.setdefault((cam, person), []).append(int(number))
    assert set(by_tracklet) == {(c, f"{p:03d}") for c in "12" for p in range(1, OCCLUDED.ids + 1)}
    lengths = set()
    for numbers in by_tracklet.values():
        numbers.sort()
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))  # consecutive
        assert OCCLUDED.min_len <= len(numbers) <= OCCLUDED.max_len
        lengths.add(len(numbers))
    assert len(lengths) > 1  # lengths vary
    assert len({min(n) for n in by_tracklet.values()}) > 1  # numbering starts at varied offsets
    img = read_frame(root / frames[0])
    assert img.shape == (128, 64, 3) and img.dtype == np.uint8

    ls_set = scipy.io.loadmat(root / SPLITS_FILE)["ls_set"]
    assert ls_set.shape == (10, OCCLUDED.ids)
    assert np.issubdtype(ls_set.dtype, np.integer)
    for row in ls_set:
        assert sorted(row.tolist()) == list(range(1, OCCLUDED.ids + 1))
    assert len({tuple(r) for r in ls_set.tolist()}) > 1  # ten different splits, not one repeated


def test_occlusion_truth(occluded_set):
    data = read_sidecar(occluded_set)
    assert data["version"] >= 1 and data["config"] == OCCLUDED.to_dict()
    tracks = data["tracklets"]
    assert len(tracks) == 2 * OCCLUDED.ids
    ratios = []
    for key, entry in tracks.items():
        n = len(list((occluded_set / key).glob("*.png")))
        assert entry["frames"] == n == len(entry["occlusion"])
        r = np.asarray(entry["occlusion"])
        assert ((r >= 0) & (r <= 1)).all()
        for ev in entry["occluders"]:
            if ev["first"] >= 0:  # the event's recorded frames are occluded ones
                assert r[ev["first"]] > 0 and r[ev["last"]] > 0
        ratios.append(r)
    allr = np.concatenate(ratios)
    assert (allr > 0.3).sum() >= 5  # some frames heavily occluded
    assert (allr == 0).mean() > 0.5  # most frames clear
    # Occlusion comes in runs of frames, not isolated flickers.
    occluded_runs = [r for r in ratios if (r > 0).sum() >= 4]
    assert occluded_runs


def test_occluded_frames_differ_from_the_clear_render_in_the_person_region():
    # The same tracklet rendered with and without occluders: identical where nothing covers,
    # different in the middle of the frame (where the person is) when much of the person is hidden.
    with_occ = SynthConfig(ids=4, seed=2, min_len=24, max_len=36, occluded_fraction=1.0)
    without = SynthConfig(ids=4, seed=2, min_len=24, max_len=36, occluded_fraction=0.0)
    checked = 0
    for pid in range(1, 5):
        a = render_tracklet(with_occ, pid, 1)
        b = render_tracklet(without, pid, 1)
        assert a.frames.shape == b.frames.shape
        assert not b.occlusion.any() and b.occluders == []
        same = [t for t in range(len(a.frames)) if np.array_equal(a.frames[t], b.frames[t])]
        assert all(a.occlusion[t] == 0 for t in same)
        for t in np.flatnonzero(a.occlusion > 0.3):
            centre = (slice(20, 120), slice(16, 48))
            diff = np.abs(a.frames[t][centre].astype(int) - b.frames[t][centre].astype(int)).mean()
            assert diff > 8, (pid, t, float(a.occlusion[t]), diff)
            checked += 1
        if a.occlusion.max() == 0:
            assert len(same) == len(a.frames)
    assert checked >= 3


def test_frames_show_a_moving_figure_not_noise():
    tr = render_tracklet(SynthConfig(ids=2, seed=0, min_len=30, max_len=30, occluded_fraction=0.0), 1, 2)
    f = tr.frames.astype(np.float32)
    # The legs swing: the lower body changes across a gait half-cycle far more than noise would,
    # and consecutive frames are similar (smooth motion, not independent noise images).
    legs = (slice(80, 124), slice(8, 56))
    half_cycle = np.abs(f[0][legs] - f[6][legs]).mean()
    consecutive = np.mean([np.abs(f[t] - f[t + 1]).mean() for t in range(10)])
    assert half_cycle > 4
    assert consecutive < 20
    # Not noise: neighbouring pixels are strongly correlated.
    g = f[0].mean(axis=2)
    assert np.corrcoef(g[:, :-1].ravel(), g[:, 1:].ravel())[0, 1] > 0.8


def test_open_dataset_detects_synthwalk_with_occlusion(occluded_set):
    assert detect_dataset(occluded_set) == "synthwalk"
    ds = open_dataset(occluded_set)
    assert ds.name == "synthwalk" and ds.protocol == "standard"
    assert ds.identities == OCCLUDED.ids and len(ds.tracklets) == 2 * OCCLUDED.ids and ds.cameras == 2
    assert len(ds.splits) == 10 and ds.notices == []
    sidecar = read_sidecar(occluded_set)["tracklets"]
    assert set(ds.occlusion) == {t.key for t in ds.tracklets}
    for t in ds.tracklets:
        occ = ds.occlusion[t.key]
        assert occ.dtype == np.float32 and len(occ) == len(t.frames)
        np.testing.assert_allclose(occ, sidecar[t.key]["occlusion"], rtol=0, atol=1e-6)
    split = ds.splits[0]
    assert {ds.tracklets[i].camid for i in split.query} == {0}
    assert {ds.tracklets[i].camid for i in split.gallery} == {1}
    assert len(split.query) == OCCLUDED.ids // 2  # the first half of each ls_set row is test


def test_reader_notices_a_tracklet_changed_after_generation(tmp_path):
    root = generate(tmp_path / "sw", SynthConfig(ids=2, seed=1, min_len=4, max_len=6), workers=1)
    victim = sorted((root / "i-LIDS-VID/sequences/cam2/person002").glob("*.png"))[-1]
    victim.unlink()
    ds = open_dataset(root)
    assert "i-LIDS-VID/sequences/cam2/person002" not in ds.occlusion
    assert any("person002" in n and "synthwalk.json" in n for n in ds.notices)
    (root / SIDECAR).write_text("{not json")
    with pytest.raises(DatasetError, match="synthwalk.json"):
        open_dataset(root)


def test_cli_synth(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["synth", str(out), "--ids", "4", "--seed", "1"]) == 0
    assert "4 identities" in capsys.readouterr().out
    assert is_complete(out) and is_complete(out, SynthConfig(ids=4, seed=1))
    assert not is_complete(out, SynthConfig(ids=4, seed=2))
    ds = open_dataset(out)
    assert ds.name == "synthwalk" and ds.identities == 4
    assert all(24 <= len(t) <= 96 for t in ds.tracklets)
    # A second run into the same, now non-empty, folder is refused with the path named.
    assert main(["synth", str(out), "--ids", "4"]) == 2
    assert str(out) in capsys.readouterr().err


def test_refuses_non_empty_folder_unless_overwrite(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    config = SynthConfig(ids=2, seed=0, min_len=3, max_len=4)
    with pytest.raises(DatasetError) as err:
        generate(out, config, workers=1)
    assert str(out) in str(err.value) and "not empty" in str(err.value)
    assert (out / "notes.txt").read_text() == "keep me" and not is_complete(out)
    generate(out, config, workers=1, overwrite=True)
    assert is_complete(out) and not (out / "notes.txt").exists()
    # An existing empty folder is fine.
    (tmp_path / "empty").mkdir()
    assert is_complete(generate(tmp_path / "empty", config, workers=1))
    with pytest.raises(DatasetError, match="file"):
        generate(out / SIDECAR, config, workers=1)


def test_an_interrupted_run_leaves_nothing_that_looks_complete(tmp_path):
    out = tmp_path / "sw"

    def cancel(done: int, total: int, text: str = "") -> None:
        if done >= 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        generate(out, SynthConfig(ids=3, min_len=3, max_len=4), workers=1, progress=cancel)
    assert not out.exists() and not is_complete(out)
    assert list(tmp_path.iterdir()) == []  # the partial folder was removed
    # A folder with frames but no sidecar is not complete either.
    (out / "i-LIDS-VID/sequences/cam1/person001").mkdir(parents=True)
    assert not is_complete(out)


def test_config_validation_and_json():
    config = SynthConfig(ids=4, seed=3)
    assert SynthConfig.from_dict(json.loads(config.to_json())) == config
    for bad in (dict(ids=1), dict(min_len=10, max_len=5), dict(occluded_fraction=1.5), dict(min_len=1)):
        with pytest.raises(ValueError):
            SynthConfig(**bad)
