"""What the subcommands share: the vocabulary of options, the workspace, progress bars.

Every subcommand says ``--dataset NAME --root DIR --protocol NAME --checkpoint FILE --split N
--workspace DIR`` for the same things; the help texts come from one place (``OPTION_HELP``).
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from reidviewer.errors import UsageError
from reidviewer.vocabulary import OPTION_HELP


def add_workspace(p: argparse.ArgumentParser, *, top: bool = False) -> None:
    """``--workspace DIR``. Accepted before the subcommand and after it alike.

    The subcommand's copy has no default of its own (``SUPPRESS``), so a ``--workspace`` given
    before the subcommand is not overwritten by the subcommand's default.
    """
    p.add_argument("--workspace", metavar="DIR", help=OPTION_HELP["workspace"],
                   **({} if top else {"default": argparse.SUPPRESS}))


def add_dataset(p: argparse.ArgumentParser, required: bool = True) -> None:
    """``--root``, ``--dataset`` and ``--protocol``."""
    from reidviewer.data.registry import available_readers

    p.add_argument("--root", metavar="DIR", required=required, help=OPTION_HELP["root"])
    p.add_argument("--dataset", metavar="NAME", default="auto",
                   help=OPTION_HELP["dataset"].format(names=", ".join(available_readers())))
    p.add_argument("--protocol", metavar="NAME", default=None, help=OPTION_HELP["protocol"])


def add_split(p: argparse.ArgumentParser, allow_all: bool = False) -> None:
    """``--split N`` (``all`` too where a mean over splits makes sense)."""
    if allow_all:
        p.add_argument("--split", default="0", metavar="N|all", help=OPTION_HELP["split_all"])
    else:
        p.add_argument("--split", type=int, default=0, metavar="N", help=OPTION_HELP["split"])


def add_device(p: argparse.ArgumentParser) -> None:
    """``--device``."""
    p.add_argument("--device", default="auto", help=OPTION_HELP["device"])


def workspace_of(args: argparse.Namespace):
    """The ``Workspace`` the command line names (or the default one)."""
    from reidviewer.workspace import Workspace

    return Workspace(getattr(args, "workspace", None))


def parse_split(value: str, num_splits: int) -> list[int]:
    """``--split`` as a list of split numbers (``all``: every split).

    Raises:
        UsageError: not a number or ``all``.
    """
    if value == "all":
        return list(range(num_splits))
    try:
        return [int(value)]
    except ValueError:
        raise UsageError(f"--split must be a number or 'all', not {value!r}") from None


def stderr_progress(label: str) -> Callable[..., None]:
    """A progress callback ``(done, total[, text])`` drawing a one-line bar on stderr when it is
    a terminal (nothing otherwise, so logs stay clean)."""
    tty = sys.stderr.isatty()

    def report(done: int, total: int, *_text: str) -> None:
        if not tty or total <= 0:
            return
        width = 30
        filled = int(width * min(done, total) / total)
        sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return report


MODEL_HELP = ("a model plugin instead of a checkpoint: NAME or NAME:ARG (built in: pixels, a colour-histogram "
              "baseline; imported:NAME for results saved by reidviewer import; installed packages add models "
              "under the entry-point group reidviewer.models)")


def add_model(p: argparse.ArgumentParser) -> None:
    """``--model NAME[:ARG]``: a model plugin, used in place of ``--checkpoint``."""
    p.add_argument("--model", metavar="NAME[:ARG]", default=None, help=MODEL_HELP)


def model_or_checkpoint(args: argparse.Namespace):
    """What to evaluate: the ``--model`` reference, the ``--checkpoint`` path, or the default checkpoint.

    Raises:
        UsageError: both ``--model`` and ``--checkpoint``.
    """
    from pathlib import Path

    model = getattr(args, "model", None)
    checkpoint = getattr(args, "checkpoint", None)
    if model and checkpoint:
        raise UsageError("give --checkpoint FILE or --model NAME, not both")
    if model:
        from reidviewer.engine.models import model_ref
        from reidviewer.model.plugins import parse_model_spec

        parse_model_spec(model)
        return model_ref(model)
    if checkpoint:
        return Path(checkpoint)
    from reidviewer.demo import default_checkpoint

    return default_checkpoint()
