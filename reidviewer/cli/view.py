"""``reidviewer open`` and ``reidviewer`` with no command: the viewer."""
from __future__ import annotations

import argparse
import sys
from typing import Any

from reidviewer.cli.common import add_dataset, add_model, add_split, add_workspace
from reidviewer.vocabulary import OPTION_HELP

#: What to install when the viewer's extra is missing.
APP_EXTRA_HINT = 'the viewer needs the app extra: pip install "reidviewer[app]"'


def register(sub: Any) -> None:
    """Add ``open``."""
    p = sub.add_parser("open", help="open the viewer on a dataset and checkpoint",
                       description="Open the viewer on a dataset and a checkpoint (default: the demo and the "
                                   "shipped checkpoint).")
    add_dataset(p, required=False)
    add_workspace(p)
    p.add_argument("--checkpoint", metavar="FILE", help=OPTION_HELP["checkpoint"])
    add_model(p)
    add_split(p)
    p.set_defaults(func=cmd_open)


def _launch(args: argparse.Namespace) -> int:
    from importlib.util import find_spec

    # Looked up, not imported: the command line itself never imports Qt.
    if find_spec("PySide6") is None or find_spec("pyqtgraph") is None or find_spec("psygnal") is None:
        print(f"reidviewer: {APP_EXTRA_HINT} (headless commands work without it: reidviewer --help)",
              file=sys.stderr)
        return 2
    from reidviewer.app import launch

    return launch(args)


def cmd_open(args: argparse.Namespace) -> int:
    """``reidviewer open``: the viewer on a dataset."""
    if getattr(args, "model", None):
        from reidviewer.cli.common import model_or_checkpoint

        model_or_checkpoint(args)  # --model with --checkpoint, or a malformed name: one line, before Qt
    return _launch(args)


def cmd_default(args: argparse.Namespace) -> int:
    """No command: the viewer on the demo."""
    return _launch(args)
