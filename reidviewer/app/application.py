"""Creating the QApplication and the main window for the command line."""
from __future__ import annotations

import sys
from pathlib import Path

from reidviewer.app import viewmodel
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


def _demo_ready(workspace) -> bool:
    from reidviewer.demo import demo_is_ready

    return demo_is_ready(workspace)


def run_app(args) -> int:
    """Show the main window and run the event loop."""
    workspace = Workspace(getattr(args, "workspace", None))
    request = request_from_args(args)
    prefetch = None
    if request.root is not None or _demo_ready(workspace):
        # Load while the GUI libraries import (a first launch generates the demo under the
        # window's progress dialog instead).
        prefetch = viewmodel.Prefetch(request, workspace)
    from PySide6.QtWidgets import QApplication

    from reidviewer.app.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("reidviewer")
    window = MainWindow(workspace, request, prefetch)
    window.show()
    return app.exec()
