"""The registry of dataset readers and ``open_dataset``, which recognises a layout.

A reader is a class with a ``name``, its ``protocols`` (first = default), a ``detect(root)``
that answers whether a folder has its layout, and ``open(root, protocol, workspace)``.
Readers register themselves with ``@register_reader``; importing
``reidviewer.data.readers`` loads all built-in ones.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from reidviewer.errors import DatasetError, UsageError

if TYPE_CHECKING:
    from reidviewer.data.dataset import VideoDataset
    from reidviewer.workspace import Workspace


class DatasetReader(Protocol):
    """What every reader provides."""

    name: str
    protocols: tuple[str, ...]
    description: str
    priority: int  # detection order, higher first (synthwalk 10, folder -10, others 0)

    def detect(self, root: Path) -> bool:
        """True if ``root`` has this reader's layout (cheap: a few stat calls)."""

    def open(self, root: Path, protocol: str, workspace: Workspace | None) -> VideoDataset:
        """Index the dataset at ``root`` under ``protocol``; caches go to ``workspace``."""


READERS: dict[str, DatasetReader] = {}


def register_reader(cls: type) -> type:
    """Class decorator: instantiate the reader and add it to ``READERS`` under ``cls.name``."""
    READERS[cls.name] = cls()
    return cls


def _load_builtin_readers() -> None:
    import reidviewer.data.readers  # noqa: F401  (registers the built-in readers)


def available_readers() -> list[str]:
    """Names of all registered readers."""
    _load_builtin_readers()
    return list(READERS)


def get_reader(name: str) -> DatasetReader:
    """The reader registered as ``name``; a clear error lists the known names otherwise."""
    _load_builtin_readers()
    try:
        return READERS[name]
    except KeyError:
        raise UsageError(f"unknown dataset {name!r}; known: {', '.join(READERS)}") from None


def detect_dataset(root: str | Path) -> str:
    """Name of the reader whose layout ``root`` has.

    Raises:
        DatasetError: if the folder is missing or no reader recognises it.
    """
    _load_builtin_readers()
    root = Path(root)
    if not root.exists():
        raise DatasetError(root, "no such folder")
    if not root.is_dir():
        raise DatasetError(root, "is a file, not a dataset folder")
    # Higher priority first: SynthWalk (an iLIDS-VID layout plus a sidecar) before iLIDS-VID,
    # and the generic folder layout, which matches almost anything, last.
    order = sorted(READERS.values(), key=lambda r: -getattr(r, "priority", 0))
    for reader in order:
        if reader.detect(root):
            return reader.name
    expected = "; ".join(f"{r.name}: {r.description}" for r in READERS.values())
    raise DatasetError(root, f"unrecognised dataset layout. Expected one of — {expected}")


def open_dataset(
    root: str | Path,
    name: str = "auto",
    protocol: str | None = None,
    workspace: Workspace | None = None,
) -> VideoDataset:
    """Open a video re-ID dataset read-only.

    Args:
        root: the dataset folder.
        name: a reader name (``ilidsvid``, ``prid2011``, ``mars``, ``dukevideo``, ``folder``,
            ``synthwalk``) or ``"auto"`` to recognise the layout.
        protocol: the split protocol; ``None`` picks the reader's default.
        workspace: where index caches are kept; ``None`` for no caching.

    Returns:
        The indexed dataset with its splits.

    Raises:
        DatasetError: naming the file or folder at fault.
        ValueError: for an unknown reader or protocol name.
    """
    root = Path(root).expanduser().resolve()
    if not root.exists():
        raise DatasetError(root, "no such folder")
    reader = get_reader(detect_dataset(root) if name == "auto" else name)
    protocol = protocol or reader.protocols[0]
    if protocol not in reader.protocols:
        raise UsageError(
            f"dataset {reader.name!r} has no protocol {protocol!r}; choose one of {', '.join(reader.protocols)}"
        )
    return reader.open(root, protocol, workspace)
