"""Exceptions shared by every layer. Each names the file at fault and what is wrong with it."""
from __future__ import annotations

from pathlib import Path


class ReidViewerError(Exception):
    """Base class: an error the user can act on, shown without a traceback by the CLI and app."""


class DatasetError(ReidViewerError):
    """A dataset folder or one of its files does not have the expected layout or content.

    Args:
        path: the file or folder at fault.
        problem: what is wrong, in plain words.
    """

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class FrameError(DatasetError):
    """A frame image cannot be decoded or has an unusable format."""


class CheckpointError(ReidViewerError):
    """A checkpoint is missing, unsafe, or does not fit the architecture it names."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class UsageError(ReidViewerError, ValueError):
    """The command line or a setting asks for something that cannot be (an unknown dataset
    name, a split that does not exist, a negative epoch count, ...). The message names the
    option or setting. A ``ValueError`` too, so library callers that catch those keep working."""


class Cancelled(ReidViewerError):
    """The user cancelled a long computation (raised by progress callbacks and workers)."""
