"""The main window opened for a screenshot script: shown at 1280×800, results loaded."""
from __future__ import annotations

import sys


def open_window(workspace, request, timeout_ms: int = 1_200_000):
    """``(app, window, settle)`` once the results are shown, or None (said on stderr).

    ``settle(ms)`` runs the event loop for ``ms`` milliseconds (paint, decode frames).
    """
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from reidviewer.app.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    w = MainWindow(workspace, request)
    w.resize(1280, 800)
    w.show()
    loop = QEventLoop()
    w.results_shown.connect(loop.quit)
    QTimer.singleShot(timeout_ms, loop.quit)
    loop.exec()
    if w.session is None:
        print("no session", file=sys.stderr)
        return None

    def settle(ms: int = 800) -> None:
        QTimer.singleShot(ms, loop.quit)
        loop.exec()

    return app, w, settle


def save_window(window, out) -> None:
    """Grab the whole window into ``out`` (a PNG path; its folder is made) and close it."""
    from pathlib import Path

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    window.grab().save(str(out))
    window.close()
