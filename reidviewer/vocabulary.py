"""One vocabulary: the words the command line, the app and the JSON files use for the same things.

``TERMS`` maps each concept to its command-line option, its label in the app and its key in
JSON output; the CLI's help, the app's forms and the JSON writers read it, and a test checks
that they agree. ``OPTION_HELP`` holds the help text of the shared options. This module
imports nothing of the package, so every layer may read it.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Term:
    """One concept's words.

    Attributes:
        option: the command-line option (``--dataset``).
        label: the app's label for it (``Dataset``).
        key: its key in JSON output (``dataset``).
    """

    option: str
    label: str
    key: str


TERMS: dict[str, Term] = {
    "dataset": Term("--dataset", "Dataset", "dataset"),
    "root": Term("--root", "Folder", "root"),
    "protocol": Term("--protocol", "Protocol", "protocol"),
    "split": Term("--split", "Split", "split"),
    "checkpoint": Term("--checkpoint", "Checkpoint", "checkpoint"),
    "workspace": Term("--workspace", "Workspace", "workspace"),
    "head": Term("--head", "Head", "head"),
    "iterations": Term("--iterations", "Refinement iterations K", "iterations"),
    "recipe": Term("--recipe", "Recipe", "recipe"),
    "epochs": Term("--epochs", "Epochs", "epochs"),
    "minutes": Term("--minutes", "Time budget (min)", "minutes"),
    "lr": Term("--lr", "Learning rate", "lr"),
    "pooling": Term("--pooling", "Pooling", "pooling"),
    "eval_every": Term("--eval-every", "Validate every (epochs)", "eval_every"),
    "device": Term("--device", "Device", "device"),
    "seed": Term("--seed", "Seed", "seed"),
    "rule": Term("--protocol", "Evaluation rule", "eval_rule"),
    "tracklets": Term("--tracklets", "Tracklets", "tracklets"),
    "identities": Term("--ids", "Identities", "identities"),
}

#: Help texts of the options every subcommand shares.
OPTION_HELP: dict[str, str] = {
    "workspace": "workspace folder for caches, results, runs, annotations and figures "
                 "(default: $REIDVIEWER_WORKSPACE or the user data folder)",
    "root": "dataset folder (opened read-only)",
    "dataset": "dataset reader: {names}, or auto (default: recognise the layout)",
    "protocol": "split protocol (PRID-2011: ran (default), wang; MARS: torchreid (default), official)",
    "split": "split number (default: 0)",
    "split_all": "split number, or all for the mean over every split (default: 0)",
    "checkpoint": "checkpoint (.safetensors with its .json; default: the shipped one)",
    "device": "auto (CUDA, then MPS, then the CPU; default), cpu, cuda, cuda:N or mps",
}
