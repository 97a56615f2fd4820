"""Creating the QApplication and the main window for the command line."""
from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtWidgets import QApplication

from reidviewer.app import viewmodel
from reidviewer.app.main_window import MainWindow
from reidviewer.workspace import Workspace


def request_from_args(args) -> viewmodel.OpenRequest:
    """What to open: the dataset named on the command line, or the SynthWalk demo."""
    root = getattr(args, "root", None)
    checkpoint = getattr(args, "checkpoint", None)
    model = getattr(args, "model", None)
    if model and not checkpoint:
        from reidviewer.engine.models import model_ref

        checkpoint = model_ref(model)  # a model plugin or imported results, carried as the checkpoint
    return viewmodel.OpenRequest(
        root=Path(root) if root else None,
        name=getattr(args, "dataset", "auto") or "auto",
        protocol=getattr(args, "protocol", None),
        checkpoint=Path(checkpoint) if checkpoint else None,
        split=int(getattr(args, "split", 0) or 0),
    )


def run_app(args) -> int:
    """Show the main window and run the event loop."""
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("reidviewer")
    window = MainWindow(Workspace(getattr(args, "workspace", None)), request_from_args(args))
    window.show()
    return app.exec()
