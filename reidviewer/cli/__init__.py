"""The ``reidviewer`` command.

Subcommands share one vocabulary: ``--dataset NAME --root DIR --protocol NAME
--checkpoint FILE --split N --workspace DIR`` (``reidviewer.vocabulary``). With no subcommand
it opens the demo (the SynthWalk set generated once into the workspace, and the shipped
checkpoint). Errors the user can act on are printed as one line (``reidviewer: error: ...``)
with exit status 2, never as a traceback; ``--debug`` shows the traceback too. Anything else
is a bug and keeps its traceback.

Modules: ``common`` (shared options and helpers), ``data`` (``info``, ``synth``), ``view``
(``open`` and the default), ``train``, ``evaluate`` (``evaluate``, ``audit``), ``compare``, ``importing``
(``import``), ``export``, ``similar`` (``similar``; ``export map``).
"""
from __future__ import annotations

import argparse
import sys
import traceback

from reidviewer import __version__
from reidviewer.errors import ReidViewerError

#: Exit status of a run stopped by Ctrl+C (SIGINT) and by SIGTERM, after saving (128 + signal).
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``reidviewer`` command."""
    from reidviewer.cli import common, compare, data, evaluate, export, importing, train, view
    from reidviewer.cli import similar  # map of the whole set (issue 21)

    parser = argparse.ArgumentParser(
        prog="reidviewer",
        description="Video person re-identification with Refined Attention Networks: "
        "viewer, training, evaluation and figures. With no command it opens the viewer on the demo.",
    )
    parser.add_argument("--version", action="version", version=f"reidviewer {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    common.add_workspace(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in (data, view, train, evaluate, compare, importing, export, similar):
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``reidviewer`` console script."""
    from reidviewer.cli.view import cmd_default

    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", cmd_default)
    try:
        return int(func(args) or 0)
    except ReidViewerError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"reidviewer: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("reidviewer: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
