"""The Qt application. The only package that imports Qt (PySide6, pyqtgraph).

``launch(args)`` is what ``reidviewer`` (no arguments) and ``reidviewer open`` call.
"""
from __future__ import annotations

import os
import sys


def display_problem() -> str | None:
    """Why no window can be shown here, or ``None`` if one can.

    Qt aborts the process (``qt.qpa.xcb: could not connect to display``) when there is no
    display; we say so in words instead.
    """
    if os.environ.get("QT_QPA_PLATFORM", "").split(":")[0] in ("offscreen", "minimal", "vnc", "eglfs", "linuxfb"):
        return None
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return (
            "no display: DISPLAY and WAYLAND_DISPLAY are not set, so the viewer cannot open a window. "
            "Run it on a desktop, under `xvfb-run reidviewer`, or use the headless commands "
            "(reidviewer info / evaluate / export)."
        )
    return None


def launch(args) -> int:
    """Open the main window for parsed CLI ``args`` (``root``, ``dataset``, ``protocol``,
    ``checkpoint``, ``split``, ``workspace``; missing ones mean the demo)."""
    problem = display_problem()
    if problem:
        print(f"reidviewer: {problem}", file=sys.stderr)
        return 2
    from reidviewer.app.application import run_app

    return run_app(args)
