"""Opening a dataset says what it will cost first, when that is minutes of preprocessing or features (#19)."""
from __future__ import annotations

import re

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from reidviewer.app import viewmodel
from reidviewer.app.main_window import MainWindow
from reidviewer.app.viewmodel import OpenRequest
from reidviewer.data.cache import FrameCache
from reidviewer.data.registry import open_dataset
from reidviewer.workspace import Workspace


@pytest.fixture()
def ask_always(monkeypatch):
    # The tiny test set costs seconds; lower the bar so that any preprocessing is asked about.
    monkeypatch.setattr(viewmodel, "ASK_MINUTES", 0.0)
    monkeypatch.setattr(viewmodel, "ASK_GB", 0.0)


def _window(qtbot, workspace):
    w = MainWindow(workspace, None)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    return w


def _cached_files(workspace, root):
    cache = FrameCache(workspace, open_dataset(root, "synthwalk", workspace=workspace))
    return [p for p in cache.dir.rglob("*.npy")] if cache.dir.is_dir() else []


def _click(qtbot, box, which):
    qtbot.mouseClick(box.button(which), Qt.MouseButton.LeftButton)


def test_the_question_names_the_cost_and_cancel_preprocesses_nothing(qtbot, ask_always, synth_root,
                                                                     random_checkpoint, tmp_path):
    ws = Workspace(tmp_path / "ws")
    w = _window(qtbot, ws)
    w.request_open(OpenRequest(root=synth_root, name="synthwalk", checkpoint=random_checkpoint))
    qtbot.waitUntil(lambda: w.cost_box is not None and w.cost_box.isVisible(), timeout=30_000)
    text = w.cost_box.text()
    ds = open_dataset(synth_root, "synthwalk", workspace=ws)
    sp = ds.split(0)
    frames = sum(len(ds.tracklets[int(i)]) for i in set(sp.query) | set(sp.gallery))
    assert f"• Preprocessing {frames:,} frames (" in text
    assert "split 0 of synthwalk" in text and "frames/s (assumed" in text
    assert "\n• Embedding " in text and " in all." in text
    assert w.job is None  # the check is over; nothing runs while the user decides
    assert w.status_text.text().startswith("synthwalk needs ") and "open it?" in w.status_text.text()

    _click(qtbot, w.cost_box, QMessageBox.StandardButton.Cancel)
    qtbot.wait(200)
    assert w.session is None and w.job is None and w.cost_box is None
    assert w.state.status == "Not opened: synthwalk"
    assert _cached_files(ws, synth_root) == []


@pytest.mark.parametrize("how", ["escape", "close button"])
def test_escape_or_closing_the_question_opens_nothing(qtbot, ask_always, synth_root, random_checkpoint, tmp_path,
                                                      how):
    ws = Workspace(tmp_path / "ws")
    w = _window(qtbot, ws)
    w.request_open(OpenRequest(root=synth_root, name="synthwalk", checkpoint=random_checkpoint))
    qtbot.waitUntil(lambda: w.cost_box is not None and w.cost_box.isVisible(), timeout=30_000)
    if how == "escape":
        qtbot.keyClick(w.cost_box, Qt.Key.Key_Escape)
    else:
        w.cost_box.close()  # what the title bar's close button does
    qtbot.waitUntil(lambda: w.cost_box is None, timeout=5_000)
    qtbot.wait(200)
    assert w.session is None and w.job is None
    assert w.state.status == "Not opened: synthwalk"
    assert _cached_files(ws, synth_root) == []


def test_open_goes_ahead_and_cached_results_open_without_asking(qtbot, ask_always, synth_root,
                                                                random_checkpoint, tmp_path):
    ws = Workspace(tmp_path / "ws")
    w = _window(qtbot, ws)
    request = OpenRequest(root=synth_root, name="synthwalk", checkpoint=random_checkpoint)
    w.request_open(request)
    qtbot.waitUntil(lambda: w.cost_box is not None and w.cost_box.isVisible(), timeout=30_000)
    with qtbot.waitSignal(w.results_shown, timeout=120_000):
        _click(qtbot, w.cost_box, QMessageBox.StandardButton.Open)
    assert w.session is not None and w.session.num_queries > 0
    assert _cached_files(ws, synth_root)

    assert w.cost_box is None  # answered and gone

    # The results file is in the workspace now: nothing to pay, so no question.
    with qtbot.waitSignal(w.results_shown, timeout=60_000):
        w.request_open(request)
    assert w.cost_box is None


def test_with_the_frames_cached_the_question_is_about_the_features(qtbot, ask_always, synth_root,
                                                                   random_checkpoint, tmp_path):
    """A checkpoint not evaluated yet on a cached dataset: minutes of features at MARS scale."""
    ws = Workspace(tmp_path / "ws")
    ds = open_dataset(synth_root, "synthwalk", workspace=ws)
    sp = ds.split(0)
    test = sorted(set(int(i) for i in sp.query) | set(int(i) for i in sp.gallery))
    FrameCache(ws, ds).ensure(test, workers=1)
    w = _window(qtbot, ws)
    w.request_open(OpenRequest(root=synth_root, name="synthwalk", checkpoint=random_checkpoint))
    qtbot.waitUntil(lambda: w.cost_box is not None and w.cost_box.isVisible(), timeout=30_000)
    text = w.cost_box.text()
    frames = sum(min(len(ds.tracklets[i]), 128) for i in test)
    # "the GPU" where torch sees one: the app evaluates on the best device there is
    assert re.search(rf"first means:\n• Embedding {frames:,} frames on the (CPU|GPU)", text), text
    assert "reprocessing" not in text.split("\n\n")[0]
    assert "The results stay in the workspace" in text
    assert w.status_text.text().startswith("synthwalk needs ") and "of feature extraction first" in w.status_text.text()
    with qtbot.waitSignal(w.results_shown, timeout=120_000):
        _click(qtbot, w.cost_box, QMessageBox.StandardButton.Open)
    assert w.session is not None and w.session.num_queries > 0


def test_a_small_cost_opens_straight_away(qtbot, synth_root, random_checkpoint, tmp_path):
    ws = Workspace(tmp_path / "ws")
    w = _window(qtbot, ws)
    with qtbot.waitSignal(w.results_shown, timeout=120_000):
        w.request_open(OpenRequest(root=synth_root, name="synthwalk", checkpoint=random_checkpoint))
    assert w.cost_box is None


def test_a_folder_that_is_no_dataset_fails_in_the_check_with_the_usual_message(qtbot, ask_always, tmp_path,
                                                                               random_checkpoint):
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    shown: list[str] = []

    def close_warnings() -> None:
        # The warning is modal (its own event loop): read and close it from a timer.
        for widget in QApplication.topLevelWidgets():
            if isinstance(widget, QMessageBox) and widget.isVisible():
                shown.append(widget.text())
                widget.close()

    watchdog = QTimer()
    watchdog.timeout.connect(close_warnings)
    watchdog.start(20)
    ws = Workspace(tmp_path / "ws")
    w = _window(qtbot, ws)
    (tmp_path / "plain").mkdir()
    w.request_open(OpenRequest(root=tmp_path / "plain", checkpoint=random_checkpoint))
    qtbot.waitUntil(lambda: bool(shown), timeout=30_000)
    watchdog.stop()
    assert str(tmp_path / "plain") in shown[0]
    assert w.cost_box is None and w.session is None and w.job is None
