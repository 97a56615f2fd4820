"""A player decodes the first frames of a tracklet at once and the rest once the switch has painted."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

import reidviewer.app.player as player_mod
from reidviewer.app.frame_loader import FrameLoader
from reidviewer.app.player import FIRST_FRAMES, Player


def _frames(folder, name: str, n: int) -> list[str]:
    folder = folder / name
    folder.mkdir()
    rng = np.random.default_rng(len(name))
    paths = []
    for i in range(n):
        path = folder / f"{i:04d}.jpg"
        cv2.imwrite(str(path), rng.integers(0, 255, (64, 32, 3), dtype=np.uint8))
        paths.append(str(path))
    return paths


@pytest.fixture()
def player(qtbot):
    loader = FrameLoader()
    p = Player("Probe", loader)
    qtbot.addWidget(p)
    p.show()
    yield p
    loader.clear_queue()
    loader.wait_idle()


def test_the_first_frames_come_at_once_and_the_rest_after_the_delay(player, qtbot, tmp_path, monkeypatch):
    monkeypatch.setattr(player_mod, "PREFETCH_DELAY_MS", 1500)  # long enough to look in between
    paths = _frames(tmp_path, "long", 100)
    player.set_tracklet(paths)
    qtbot.waitUntil(lambda: all(player.loader.is_cached(p) for p in paths[:FIRST_FRAMES]), timeout=5_000)
    qtbot.wait(100)
    assert not any(player.loader.is_cached(p) for p in paths[FIRST_FRAMES:])
    assert player.view.image is not None  # the first frame is on screen
    qtbot.waitUntil(lambda: all(player.loader.is_cached(p) for p in paths), timeout=10_000)


def test_a_tracklet_passed_over_quickly_is_not_decoded_beyond_its_first_frames(player, qtbot, tmp_path,
                                                                               monkeypatch):
    monkeypatch.setattr(player_mod, "PREFETCH_DELAY_MS", 300)
    passed = _frames(tmp_path, "passed", 60)
    watched = _frames(tmp_path, "watched", 60)
    player.set_tracklet(passed)
    player.set_tracklet(watched)  # the user moved on before the delay
    qtbot.waitUntil(lambda: all(player.loader.is_cached(p) for p in watched), timeout=10_000)
    player.loader.wait_idle()
    qtbot.wait(50)
    assert not any(player.loader.is_cached(p) for p in passed[FIRST_FRAMES:])


def test_playing_from_the_start_never_waits_for_the_delay(player, qtbot, tmp_path, monkeypatch):
    monkeypatch.setattr(player_mod, "PREFETCH_DELAY_MS", 60_000)  # the deferred decode never comes
    paths = _frames(tmp_path, "play", 40)
    player.set_tracklet(paths)
    qtbot.waitUntil(lambda: player.loader.is_cached(paths[0]), timeout=5_000)
    shown: list[int] = []
    player.frame_changed.connect(shown.append)
    player.play()
    qtbot.waitUntil(lambda: len(shown) >= 30, timeout=5_000)
    player.pause()
    # every move decodes the frames ahead of the playhead, so the frames played were decoded
    assert all(player.loader.is_cached(paths[i]) for i in shown[:-1])
