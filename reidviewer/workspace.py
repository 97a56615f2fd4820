"""The workspace: the one folder everything the app and CLI write lives in.

Default: the user data folder (``platformdirs``), overridden by ``REIDVIEWER_WORKSPACE`` or
``--workspace``. Sub-folders: ``cache/`` (dataset indexes, preprocessed frames),
``results/``, ``runs/`` (training), ``annotations/``, ``figures/``, ``datasets/`` (the
generated SynthWalk demo). Every write is atomic: a temporary file in the same folder,
flushed and fsync'ed, then renamed over the target, so a crash never leaves half a file.
"""
from __future__ import annotations

import errno
import json
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, overload

from reidviewer.errors import ReidViewerError

ENV_VAR = "REIDVIEWER_WORKSPACE"


def default_workspace_dir() -> Path:
    """``$REIDVIEWER_WORKSPACE`` if set, else the platform's user data folder for reidviewer."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("reidviewer", appauthor=False))


class WorkspaceError(ReidViewerError):
    """A file or folder in the workspace (or another place the user asked to write to) cannot be
    written: a read-only folder, a full disk, no permission. The message names the place and
    what to do; whatever was written before is left as it was."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


def write_failure(path: str | Path, exc: OSError) -> WorkspaceError:
    """The ``WorkspaceError`` for an ``OSError`` met while writing ``path``: in plain words."""
    code = getattr(exc, "errno", None)
    if code in (errno.ENOSPC, errno.EDQUOT):
        what = "the disk is full; free some space (or use another --workspace) and try again"
    elif code in (errno.EROFS, errno.EACCES, errno.EPERM):
        what = "cannot be written (read-only or no permission); choose another --workspace"
    elif code is None and "requested and" in str(exc) and "written" in str(exc):
        # numpy's tofile/np.save says "N requested and M written", with no errno, on a full disk.
        what = (f"cannot be written ({exc}): the disk is probably full; free some space (or use "
                "another --workspace) and try again")
    else:
        what = f"cannot be written ({exc.strerror or exc})"
    return WorkspaceError(path, what)


def _temporary_beside(path: Path, suffix: str) -> tuple[int, Path]:
    """Create ``path``'s folder and a new temporary file beside ``path``: ``(fd, its path)``.

    ``os.open`` with mode 0o666 lets the process umask decide the permissions, as for any file
    the user creates (``mkstemp``'s are 0600, and reading the umask means setting it, which is
    not thread-safe).

    Raises:
        WorkspaceError: the folder or the file cannot be created.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(100):
            tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}{suffix}"
            try:
                return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
            except FileExistsError:
                continue
        raise FileExistsError(f"no free temporary name beside {path}")
    except OSError as exc:
        raise write_failure(path, exc) from None


@contextmanager
def _replacing(path: Path, tmp: Path) -> Iterator[None]:
    """Rename ``tmp`` over ``path`` once the body (which writes ``tmp``) is done.

    On an exception ``tmp`` is removed and ``path`` is left as it was; an ``OSError`` becomes
    the ``WorkspaceError`` naming ``path``.
    """
    try:
        yield
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError):
            raise write_failure(path, exc) from None
        raise


@contextmanager
def atomic_open(path: str | Path, mode: str = "wb", durable: bool = True) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; on success it replaces ``path`` atomically.

    On an exception the temporary file is removed and ``path`` is left as it was. A write that
    fails for want of space or permission raises ``WorkspaceError`` naming ``path``.

    Args:
        path: the file to (re)place.
        mode: ``"wb"`` or ``"w"``.
        durable: fsync before the rename, so the file also survives a power cut. Caches that
            can be recomputed pass False (fsync costs ~10 ms a file here); a process crash can
            never expose a partial file either way, since the rename is atomic.
    """
    path = Path(path)
    fd, tmp = _temporary_beside(path, ".tmp")
    with _replacing(path, tmp), os.fdopen(fd, mode) as fh:
        yield fh
        fh.flush()
        if durable:
            os.fsync(fh.fileno())


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
    """Call ``writer(tmp_path)`` (for libraries that want a file name), then rename over ``path``.

    A failure to write (``OSError``, or a library's own error for a full disk) removes the
    temporary file and leaves ``path`` as it was; an ``OSError`` becomes a ``WorkspaceError``.
    """
    path = Path(path)
    fd, tmp = _temporary_beside(path, path.suffix)
    with _replacing(path, tmp):
        try:
            mode = os.fstat(fd).st_mode & 0o777  # what the umask allows, as for every other file
        finally:
            os.close(fd)
        writer(Path(tmp))
        # A library may replace the file with its own (safetensors 0.8 writes a 0600 temporary
        # and renames it): give it the mode our file had.
        if os.stat(tmp).st_mode & 0o777 != mode:
            os.chmod(tmp, mode)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())


class _SubFolder:
    """A ``Workspace`` attribute: the path of one of its sub-folders, created on first use."""

    def __init__(self, name: str, doc: str) -> None:
        self.name = name
        self.__doc__ = doc

    @overload
    def __get__(self, workspace: None, owner: type | None = None) -> _SubFolder: ...

    @overload
    def __get__(self, workspace: Workspace, owner: type | None = None) -> Path: ...

    def __get__(self, workspace: Workspace | None, owner: type | None = None) -> Path | _SubFolder:
        return self if workspace is None else workspace._sub(self.name)


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
        try:
            p.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise write_failure(p, exc) from None
        return p

    cache_dir = _SubFolder("cache", "Dataset index caches and preprocessed frames.")
    results_dir = _SubFolder("results", "Results files, one per (checkpoint, dataset, split).")
    runs_dir = _SubFolder("runs", "Training runs: config, metrics log, checkpoints.")
    annotations_dir = _SubFolder("annotations", "Annotation stores (SQLite).")
    figures_dir = _SubFolder("figures", "Exported figures.")
    datasets_dir = _SubFolder("datasets", "Data sets the app generates itself (the SynthWalk demo).")
