"""The workspace: the one folder everything the app and CLI write lives in.

Default: the user data folder (``platformdirs``), overridden by ``REIDVIEWER_WORKSPACE`` or
``--workspace``. Sub-folders: ``cache/`` (dataset indexes, preprocessed frames),
``results/``, ``runs/`` (training), ``annotations/``, ``figures/``, ``datasets/`` (the
generated SynthWalk demo). Every write is atomic: a temporary file in the same folder,
flushed and fsync'ed, then renamed over the target, so a crash never leaves half a file.
"""
from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

ENV_VAR = "REIDVIEWER_WORKSPACE"


def _default_mode() -> int:
    """Permissions a plain ``open()`` would give a new file (mkstemp's are 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def default_workspace_dir() -> Path:
    """``$REIDVIEWER_WORKSPACE`` if set, else the platform's user data folder for reidviewer."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("reidviewer", appauthor=False))


@contextmanager
def atomic_open(path: str | Path, mode: str = "wb", durable: bool = True) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; on success it replaces ``path`` atomically.

    On an exception the temporary file is removed and ``path`` is left as it was.

    Args:
        path: the file to (re)place.
        mode: ``"wb"`` or ``"w"``.
        durable: fsync before the rename, so the file also survives a power cut. Caches that
            can be recomputed pass False (fsync costs ~10 ms a file here); a process crash can
            never expose a partial file either way, since the rename is atomic.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, _default_mode())
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path, "wb") as fh:
        fh.write(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def atomic_write_with(path: str | Path, writer: Callable[[Path], None]) -> None:
    """Call ``writer(tmp_path)`` (for libraries that want a file name), then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.fchmod(fd, _default_mode())
    os.close(fd)
    try:
        writer(Path(tmp))
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


class Workspace:
    """A workspace folder and the places inside it.

    Args:
        root: the folder; ``None`` uses ``default_workspace_dir()``. Created on demand.
    """

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root).expanduser().resolve() if root is not None else default_workspace_dir()

    def __repr__(self) -> str:
        return f"Workspace({str(self.root)!r})"

    def _sub(self, *parts: str) -> Path:
        p = self.root.joinpath(*parts)
        p.mkdir(parents=True, exist_ok=True)
        return p

    @property
    def cache_dir(self) -> Path:
        """Dataset index caches and preprocessed frames."""
        return self._sub("cache")

    @property
    def results_dir(self) -> Path:
        """Results files, one per (checkpoint, dataset, split)."""
        return self._sub("results")

    @property
    def runs_dir(self) -> Path:
        """Training runs: config, metrics log, checkpoints."""
        return self._sub("runs")

    @property
    def annotations_dir(self) -> Path:
        """Annotation stores (SQLite)."""
        return self._sub("annotations")

    @property
    def figures_dir(self) -> Path:
        """Exported figures."""
        return self._sub("figures")

    @property
    def datasets_dir(self) -> Path:
        """Data sets the app generates itself (the SynthWalk demo)."""
        return self._sub("datasets")
