"""The workspace frame cache: lazy, atomic, memory-mapped, parallel, with named frame errors."""
from __future__ import annotations

import json
import threading

import cv2
import numpy as np
import pytest

import reidviewer.data.cache as cache_mod
from reidviewer.data.cache import FrameCache, estimate_cost, measured_rate
from reidviewer.data.dataset import Split
from reidviewer.data.preprocess import PreprocessConfig, preprocess_tracklet, to_network_input
from reidviewer.errors import FrameError
from reidviewer.workspace import Workspace
from pipeline_fixtures import make_dataset, moving_rgb


@pytest.fixture()
def dataset(tmp_path):
    specs = [
        ("cam1/person001", moving_rgb(6, 1.0, 0.0, seed=1)),
        ("cam2/person001", moving_rgb(5, -1.0, 0.5, seed=2)),
        ("cam1/person002", moving_rgb(7, 0.0, 1.0, seed=3)),
        ("cam2/person002", moving_rgb(1, seed=4)),  # one frame: no flow partner
    ]
    return make_dataset(tmp_path / "data", specs)


@pytest.fixture()
def workspace(tmp_path):
    return Workspace(tmp_path / "ws")


def _direct(ds, i, config=None):
    return preprocess_tracklet(ds.tracklets[i].frame_paths(), config or PreprocessConfig(), notices=[])


def _files(cache):
    return sorted(p for p in cache.dir.rglob("*") if p.is_file() and p.name != "config.json")


def test_folder_is_named_by_dataset_and_config(workspace, dataset):
    cache = FrameCache(workspace, dataset)
    assert cache.dir == workspace.cache_dir / "frames" / f"fixture01-{PreprocessConfig().key()}"
    # options that only act on the network input share the cache
    assert FrameCache(workspace, dataset, PreprocessConfig(use_flow=False)).dir == cache.dir
    assert FrameCache(workspace, dataset, PreprocessConfig(flow="dis")).dir != cache.dir


def test_memmap_equals_direct_preprocessing(workspace, dataset):
    cache = FrameCache(workspace, dataset)
    assert cache.ensure(range(4), workers=1) == 4
    for i in range(4):
        stored = cache.get(i)
        assert isinstance(stored, np.memmap) and not stored.flags.writeable
        assert stored.shape == (len(dataset.tracklets[i]), 5, 64, 48) and stored.dtype == np.uint8
        np.testing.assert_array_equal(stored, _direct(dataset, i))
    x = cache.network_input(2, frames=[1, 3, 4])
    np.testing.assert_array_equal(x, to_network_input(_direct(dataset, 2)[[1, 3, 4]]))
    np.testing.assert_array_equal(cache.network_input(0, slice(2, 5)), to_network_input(_direct(dataset, 0)[2:5]))
    assert cache.network_input(1).shape == (5, 5, 64, 48)
    assert (cache.dir / "config.json").exists()


def test_second_call_reads_without_recomputing(workspace, dataset):
    cache = FrameCache(workspace, dataset)
    assert cache.ensure([0, 1], workers=1) == 2
    stamps = {p: p.stat().st_mtime_ns for p in _files(cache)}
    assert len(stamps) == 2
    assert cache.ensure([0, 1], workers=1) == 0
    # another reader (a fresh object, as another process would build) finds them too
    other = FrameCache(workspace, dataset)
    assert other.ensure([1, 0, 0], workers=2) == 0
    other.get(0)
    assert {p: p.stat().st_mtime_ns for p in _files(cache)} == stamps


def test_only_the_tracklets_asked_for_are_preprocessed(workspace, dataset):
    cache = FrameCache(workspace, dataset)
    cache.ensure([2], workers=1)
    assert [cache.is_cached(i) for i in range(4)] == [False, False, True, False]
    assert len(_files(cache)) == 1
    cache.get(0)  # a missing tracklet is filled on demand
    assert cache.is_cached(0) and not cache.is_cached(1)


def test_process_pool_fills_in_parallel(workspace, dataset, monkeypatch):
    monkeypatch.setattr(cache_mod, "INLINE_FRAMES", 0)  # use the pool even for a tiny job
    cache = FrameCache(workspace, dataset)
    seen = []
    assert cache.ensure(range(4), progress=lambda d, t, text: seen.append((d, t)), workers=2) == 4
    total = sum(len(t) for t in dataset.tracklets)
    assert seen[0] == (0, total) and seen[-1] == (total, total)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    for i in range(4):
        np.testing.assert_array_equal(cache.get(i), _direct(dataset, i))
    assert any("one-frame" in n for n in cache.notices)  # notices travel back from the workers


@pytest.mark.parametrize("workers", [1, 2])
def test_interrupted_fill_keeps_finished_tracklets_and_names_the_bad_frame(workspace, dataset, monkeypatch, workers):
    monkeypatch.setattr(cache_mod, "INLINE_FRAMES", 0)
    bad = dataset.tracklets[2].frame_path(3)
    bad.write_bytes(b"this is not a PNG")
    cache = FrameCache(workspace, dataset)
    with pytest.raises(FrameError) as err:
        cache.ensure([0, 1, 2, 3], workers=workers)
    assert err.value.path == bad
    assert "cannot be decoded" in str(err.value)
    assert cache.is_cached(0) and cache.is_cached(1) and not cache.is_cached(2)
    np.testing.assert_array_equal(cache.get(1), _direct(dataset, 1))
    # nothing half-written is left behind to be read later
    assert not [p for p in cache.dir.rglob("*") if p.name.endswith(".tmp")]
    # once the frame is fixed, the fill completes
    rgb = moving_rgb(7, 0.0, 1.0, seed=3)[3]
    cv2.imwrite(str(bad), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    cache.ensure([0, 1, 2, 3], workers=workers)
    assert all(cache.is_cached(i) for i in range(4))


def test_corrupt_cache_file_is_recomputed_not_trusted(workspace, dataset):
    cache = FrameCache(workspace, dataset)
    cache.ensure([0], workers=1)
    path = cache.path(0)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # e.g. a file cut short by a crashed copy
    assert not cache.is_cached(0)
    np.testing.assert_array_equal(cache.get(0), _direct(dataset, 0))


def test_read_gives_the_frames_asked_for_and_refills_a_damaged_file(workspace, dataset):
    cache = FrameCache(workspace, dataset)
    cache.ensure(range(4), workers=1)
    full = _direct(dataset, 2)
    for frames in (None, slice(0, 7), slice(1, 4), slice(5, 99), slice(6, 6)):
        got = cache.read(2, frames)
        assert got.dtype == np.uint8 and got.flags.writeable and not isinstance(got, np.memmap)
        np.testing.assert_array_equal(got, full[frames or slice(None)])
    with pytest.raises(ValueError, match="step 1"):
        cache.read(2, slice(0, 6, 2))
    path = cache.path(0)
    path.write_bytes(path.read_bytes()[:300])  # cut short: recomputed, never read as valid
    np.testing.assert_array_equal(cache.read(0, slice(1, 3)), _direct(dataset, 0)[1:3])
    path.unlink()  # missing: filled on the spot
    np.testing.assert_array_equal(cache.read(0), _direct(dataset, 0))


def test_cancel_stops_the_fill(workspace, dataset, monkeypatch):
    cache = FrameCache(workspace, dataset)
    stop = threading.Event()
    stop.set()
    assert cache.ensure(range(4), cancel=stop, workers=1) == 0
    monkeypatch.setattr(cache_mod, "INLINE_FRAMES", 0)
    assert cache.ensure(range(4), cancel=lambda: True, workers=2) == 0
    assert not any(cache.is_cached(i) for i in range(4))


def test_one_frame_tracklet_and_mixed_sizes(tmp_path, workspace):
    frames = moving_rgb(4, 1.0, 0.0)
    frames[1] = cv2.resize(frames[1], (70, 140))
    ds = make_dataset(tmp_path / "mixed", [("a/one", moving_rgb(1)), ("a/mixed", frames)], fingerprint="mixed01")
    cache = FrameCache(workspace, ds)
    one = cache.get(0)
    assert one.shape == (1, 5, 64, 48) and np.all(one[0, 3:] == 127)
    mixed = cache.get(1)
    assert mixed.shape == (4, 5, 64, 48)
    assert any("70×140" in n for n in cache.notices)
    strict = FrameCache(workspace, ds, PreprocessConfig(mixed_sizes="error"))
    with pytest.raises(FrameError) as err:
        strict.get(1)
    assert err.value.path == ds.tracklets[1].frame_path(1)


def test_bad_index_is_refused(workspace, dataset):
    with pytest.raises(IndexError, match="out of range"):
        FrameCache(workspace, dataset).ensure([9])


def test_concurrent_fillers_and_readers_agree(workspace, dataset):
    expected = {i: _direct(dataset, i) for i in range(3)}
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            cache = FrameCache(workspace, dataset)
            for _ in range(3):
                for i in range(3):
                    np.testing.assert_array_equal(cache.get(i), expected[i])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    # a reader's memory map stays valid when a writer replaces the file under it
    cache = FrameCache(workspace, dataset)
    held = cache.get(0)
    cache.path(0).unlink()
    cache.get(0)
    np.testing.assert_array_equal(held, expected[0])


def test_an_unguarded_script_gets_a_message_instead_of_a_broken_pool(tmp_path):
    # Worker processes import the caller's main script again; without a __main__ guard they
    # die at start-up. The user must be told what to change, not shown a BrokenProcessPool.
    import subprocess
    import sys

    from reidviewer.data.cache import INLINE_FRAMES
    from reidviewer.data.synthwalk import SynthConfig, generate

    synth_root = tmp_path / "synth"
    generate(synth_root, SynthConfig(ids=4, seed=1, min_len=40, max_len=48), workers=1)
    assert 8 * 40 >= INLINE_FRAMES  # large enough to use the worker pool

    script = tmp_path / "unguarded.py"
    script.write_text(
        "import numpy as np\n"
        "from reidviewer.data.registry import open_dataset\n"
        "from reidviewer.data.cache import FrameCache\n"
        "from reidviewer.data.preprocess import PreprocessConfig\n"
        "from reidviewer.errors import ReidViewerError\n"
        "from reidviewer.workspace import Workspace\n"
        f"ws = Workspace({str(tmp_path / 'ws')!r})\n"
        f"ds = open_dataset({str(synth_root)!r}, workspace=ws)\n"
        "try:\n"
        "    FrameCache(ws, ds, PreprocessConfig()).ensure(np.arange(len(ds.tracklets)), workers=2)\n"
        "except ReidViewerError as exc:\n"
        "    print('MESSAGE:', exc)\n"
    )
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert "MESSAGE:" in out.stdout, out.stderr[-2000:]
    assert "__main__" in out.stdout and "workers=1" in out.stdout


# --------------------------------------------------------------------------- cost before paying it


def _with_split(dataset):
    # query: tracklet 0 (6 frames); gallery: 1 and 2 (5 + 7); tracklet 3 (1 frame) trains.
    dataset.splits = [Split("split 0", np.array([3]), np.array([0]), np.array([1, 2]))]
    return dataset


def test_estimate_counts_what_evaluating_still_needs_and_learns_this_machines_rate(workspace, dataset, monkeypatch):
    _with_split(dataset)
    before = estimate_cost(dataset, workspace)
    assert before["rate_measured"] is False and before["frames_per_s"] == cache_mod.ESTIMATE_FRAMES_PER_S
    assert before["test_frames_missing"] == 18 and before["cached_fraction"] == 0.0
    assert before["test_cache_gb"] == pytest.approx(18 * 5 * 64 * 48 / 2**30)
    assert before["test_missing_gb"] == before["test_cache_gb"]
    assert before["test_preprocess_minutes"] == pytest.approx(18 / cache_mod.ESTIMATE_FRAMES_PER_S / 60)

    monkeypatch.setattr(cache_mod, "INLINE_FRAMES", 0)  # a pool run, as a real dataset gets
    monkeypatch.setattr(cache_mod, "RATE_MIN_FRAMES", 1)
    cache = FrameCache(workspace, dataset)
    cache.ensure([1, 3], workers=2)  # part of the gallery and a training tracklet, measuring the rate
    after = estimate_cost(dataset, workspace)
    assert after["rate_measured"] is True and after["frames_per_s"] > 0
    assert after["frames_per_s"] != cache_mod.ESTIMATE_FRAMES_PER_S
    assert after["test_frames_missing"] == 13 and after["cached_fraction"] == pytest.approx(6 / 19)
    assert after["test_preprocess_minutes"] == pytest.approx(13 / measured_rate(workspace) / 60)
    assert after["frames_per_s"] == round(measured_rate(workspace))

    cache.ensure(range(4), workers=2)
    done = estimate_cost(dataset, workspace)
    assert done["test_frames_missing"] == 0 and done["preprocess_minutes"] == 0.0 and done["cached_fraction"] == 1.0


def test_a_damaged_rate_file_falls_back_to_the_assumed_rate(workspace, dataset):
    _with_split(dataset)
    path = workspace.cache_dir / "frames" / cache_mod.RATE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    for text in ("{not json", "[1, 2]", '{"last": -3, "x": "fast"}', '{"last": true}', '{"last": 1' + "0" * 400 + "}"):
        path.write_text(text)
        cost = estimate_cost(dataset, workspace)
        assert cost["rate_measured"] is False and cost["frames_per_s"] == cache_mod.ESTIMATE_FRAMES_PER_S
    # a rate measured on another dataset counts until this one has its own
    path.write_text('{"last": 3000, "otherdataset-key": 900}')
    assert estimate_cost(dataset, workspace)["frames_per_s"] == 3000
    path.write_text(json.dumps({"last": 3000, FrameCache(workspace, dataset).dir.name: 1200}))
    assert estimate_cost(dataset, workspace)["frames_per_s"] == 1200


def test_a_short_or_cancelled_fill_records_no_rate(workspace, dataset, monkeypatch):
    monkeypatch.setattr(cache_mod, "INLINE_FRAMES", 0)
    FrameCache(workspace, dataset).ensure(range(4), workers=2)  # 19 frames: below RATE_MIN_FRAMES
    assert measured_rate(workspace) is None
    monkeypatch.setattr(cache_mod, "RATE_MIN_FRAMES", 1)
    other = FrameCache(workspace, dataset, PreprocessConfig(flow="dis"))
    stop = threading.Event()
    stop.set()
    other.ensure(range(4), workers=2, cancel=stop)
    assert measured_rate(workspace) is None
