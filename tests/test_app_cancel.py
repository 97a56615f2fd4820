"""Cancel while the viewer computes results: the status says "Cancelled", no dialog opens, and
the window stays usable (issue 15: one Cancel click used to end in a warning dialog)."""
from __future__ import annotations

import threading

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication, QDialog, QMessageBox  # noqa: E402

from reidviewer.app import viewmodel  # noqa: E402
from reidviewer.app.main_window import MainWindow  # noqa: E402
from reidviewer.app.viewmodel import OpenRequest  # noqa: E402
from reidviewer.workspace import Workspace  # noqa: E402


def open_dialogs() -> list[QDialog]:
    """The visible message boxes and other dialogs."""
    return [w for w in QApplication.topLevelWidgets() if isinstance(w, (QMessageBox, QDialog)) and w.isVisible()]


def test_cancel_while_computing_results_says_cancelled_without_a_dialog(qtbot, synth_root, random_checkpoint,
                                                                       tmp_path, monkeypatch):
    # The worker stops at the first progress report of the results computation (a fresh
    # workspace: nothing is cached) until Cancel has been clicked, so the click always lands
    # while the results are being computed, however fast this machine is.
    computing = threading.Event()
    real_load = viewmodel.load_session

    def load_session(request, workspace, progress=None, cancel=None):
        def gated(done, total, text=""):
            if text != "indexing the dataset" and not computing.is_set():
                computing.set()
                cancel.wait(60)  # the job's cancel event: set by the Cancel button
            progress(done, total, text)

        return real_load(request, workspace, gated, cancel)

    monkeypatch.setattr(viewmodel, "load_session", load_session)

    # Any dialog that opens is recorded and closed, so a regression fails here instead of
    # blocking the test in the dialog's own event loop.
    seen: list[str] = []

    def close_dialogs() -> None:
        for d in open_dialogs():
            seen.append(f"{type(d).__name__}: {d.text() if isinstance(d, QMessageBox) else d.windowTitle()}")
            d.close()

    watchdog = QTimer()
    watchdog.timeout.connect(close_dialogs)
    watchdog.start(20)

    w = MainWindow(Workspace(tmp_path / "ws"), OpenRequest(root=synth_root, name="synthwalk",
                                                           checkpoint=random_checkpoint))
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(computing.is_set, timeout=60_000)
    assert w.job is not None and w.cancel_button.isVisible()
    ended: list[str] = []
    for outcome in ("finished", "failed", "cancelled"):
        getattr(w.job.signals, outcome).connect(lambda *_a, o=outcome: ended.append(o))

    qtbot.mouseClick(w.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.job is None, timeout=60_000)  # the job is over, one way or another
    qtbot.wait(100)  # let anything queued after it (a dialog, a status) happen
    watchdog.stop()
    close_dialogs()

    assert seen == []
    assert ended == ["cancelled"]
    assert open_dialogs() == []
    assert w.status_text.text() == "Cancelled"
    assert w.state.status == "Cancelled"
    assert w.job is None
    assert not w.cancel_button.isVisible() and not w.progress.isVisible()
    assert w.session is None

    # Still usable: opening again (no Cancel this time) shows the results.
    with qtbot.waitSignal(w.results_shown, timeout=120_000):
        w.open(OpenRequest(root=synth_root, name="synthwalk", checkpoint=random_checkpoint))
    assert w.session is not None and w.session.num_queries > 0
    assert open_dialogs() == []
