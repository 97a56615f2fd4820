"""The saliency overlay in the app (#20): toggled with S, computed in the background, following
the playhead, greyed out (with the reason) for models without gradients."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("pytestqt")
from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtGui import QImage  # noqa: E402


def _pixels(image: QImage) -> np.ndarray:
    img = image.convertToFormat(QImage.Format.Format_RGBA8888)
    rows = np.frombuffer(img.constBits(), np.uint8).reshape(img.height(), img.bytesPerLine())
    return rows[:, :4 * img.width()].reshape(img.height(), img.width(), 4).copy()


def test_overlay_toggles_and_follows_the_playhead(open_viewer, workspace, qtbot):
    from reidviewer.app.saliency_overlay import overlay_rgba

    w = open_viewer(workspace)
    sal = w.saliency
    assert sal.toggle_box.isEnabled(), sal.toggle_box.toolTip()
    assert w.probe.view.overlay is None
    qtbot.waitUntil(lambda: w.probe.view.image is not None and w.gallery.view.image is not None, timeout=20_000)
    with qtbot.waitSignal(sal.maps_ready, timeout=60_000):
        qtbot.keyClick(w, Qt.Key.Key_S)
    assert sal.enabled
    for player in (w.probe, w.gallery):
        ov = player.view.overlay
        assert ov is not None
        assert (ov.width(), ov.height()) == (player.view.image.width(), player.view.image.height())
        assert player.strip.isVisible() and len(player.strip.values) == player.length  # "when" stays
    # The overlay is the map of the frame under the playhead, drawn with alpha = opacity × map.
    maps = sal.maps["probe"]
    first = _pixels(w.probe.view.overlay)
    w.seek_both(3)
    qtbot.waitUntil(lambda: w.probe.index == 3 and w.probe.view.image is not None)
    w.probe._show()
    img = w.probe.view.image
    want = overlay_rgba(maps.frame_map(3, img.height(), img.width()), sal.colormap.currentData(),
                        sal.opacity.value() / 100)
    got = _pixels(w.probe.view.overlay)
    assert np.array_equal(got, want)
    assert not np.array_equal(got, first)
    assert got[..., 3].max() > 0 and got[..., 3].min() == 0  # where the model does not look: transparent
    # Opacity and colour map restyle without a recomputation.
    sal.opacity.setValue(30)
    assert _pixels(w.probe.view.overlay)[..., 3].max() <= int(0.3 * 255) + 1
    sal.colormap.setCurrentIndex(2)
    assert sal.legend.colormap == sal.colormap.currentData()
    # S again: off.
    qtbot.keyClick(w, Qt.Key.Key_S)
    assert not sal.enabled and w.probe.view.overlay is None and w.gallery.view.overlay is None


def test_a_new_pair_gets_its_own_maps(open_viewer, workspace, qtbot):
    w = open_viewer(workspace)
    sal = w.saliency
    with qtbot.waitSignal(sal.maps_ready, timeout=60_000):
        sal.set_enabled(True)
    before = sal.maps_key
    with qtbot.waitSignal(sal.maps_ready, timeout=60_000):
        w.queries.move(1)
    assert sal.maps_key != before and sal.maps_key[:2] == (w.state.tracklet("probe").index,
                                                         w.state.tracklet("gallery").index)
    # The energy option.
    with qtbot.waitSignal(sal.maps_ready, timeout=60_000):
        sal.method.setCurrentIndex(1)
    assert sal.maps["probe"].method == "energy"


def test_models_without_gradients_grey_out_the_toggle(qtbot, workspace):
    from reidviewer.app.player import Player
    from reidviewer.app.frame_loader import FrameLoader
    from reidviewer.app.saliency_overlay import SaliencyOverlay
    from reidviewer.app.state import ViewerState

    state = ViewerState()
    loader = FrameLoader()
    players = {"probe": Player("Probe", loader), "gallery": Player("Gallery", loader)}
    for p in players.values():
        qtbot.addWidget(p)
    sal = SaliencyOverlay(workspace, state, players)
    qtbot.addWidget(sal.controls)
    assert not sal.toggle_box.isEnabled()
    session = SimpleNamespace(dataset=SimpleNamespace(fingerprint="x", tracklets=[]),
                              results=SimpleNamespace(settings={}, checkpoint_fingerprint="plugin-1"),
                              checkpoint="model:pixels")
    sal._set_available(session)
    assert not sal.toggle_box.isEnabled()
    assert "gradients" in sal.toggle_box.toolTip()
    sal.toggle()  # the S key does nothing
    assert not sal.enabled
    loader.shutdown() if hasattr(loader, "shutdown") else None


def test_the_shortcut_is_registered_once():
    from reidviewer.app.shortcuts import BY_ACTION, SHORTCUTS

    assert BY_ACTION["toggle_saliency"].keys == ("S",)
    keys = [k for s in SHORTCUTS for k in s.keys]
    assert len(keys) == len(set(keys))


def test_the_figure_exports_from_the_app(open_viewer, workspace, qtbot, tmp_path):
    w = open_viewer(workspace)
    out = tmp_path / "when-where.svg"
    with qtbot.waitSignal(w.saliency.exported, timeout=120_000) as blocker:
        w.saliency.export_to(str(out))
    assert blocker.args[0] == str(out) and b"<svg" in out.read_bytes()[:400]


def test_the_gui_never_waits_for_the_maps(open_viewer, workspace, qtbot, monkeypatch):
    import threading

    w = open_viewer(workspace)
    sal = w.saliency
    release = threading.Event()
    real = type(sal.engine).pair

    def slow(self, *a, **k):
        release.wait(30)
        return real(self, *a, **k)

    monkeypatch.setattr(type(sal.engine), "pair", slow)
    qtbot.keyClick(w, Qt.Key.Key_S)  # returns at once: the work is in the job
    assert sal.enabled and sal.job is not None and sal.status.text() == "computing…"
    assert w.probe.view.overlay is None
    w.step(1)  # the GUI still answers while the job waits
    assert w.probe.index == 1
    with qtbot.waitSignal(sal.maps_ready, timeout=60_000):
        release.set()
    assert w.probe.view.overlay is not None
