"""The annotation store: one SQLite file per dataset in the workspace, no Qt.

Every edit is one transaction with a time stamp; the history keeps every edit, its row
changes (before and after) and every apply/undo/redo event, so nothing is ever lost and undo
restores the exact previous state whatever the edit was.

**Undo model.** Edits form one linear stack, persisted in the file (undo works across
sessions). :meth:`AnnotationStore.undo` reverts the latest applied edit,
:meth:`AnnotationStore.redo` re-applies the earliest undone one, and a new edit drops the
undone ones from the redo stack (they stay in the history with status ``dropped``), exactly
as a ``QUndoStack`` does. :meth:`~AnnotationStore.revert` and :meth:`~AnnotationStore.reapply`
take an edit id so a ``QUndoCommand`` can drive the store: its ``redo()`` calls
``apply(edit)`` the first time and ``reapply(id)`` later, its ``undo()`` calls ``revert(id)``.
They only accept the edit at the top of the stack (LIFO); reverting an older edit whose rows a
later edit changed again could not restore a consistent state, so it is refused.

**Identities.** The store copies the dataset's own labels once (:meth:`attach`): merges
need to know which tracklets have a pid, and a split needs a pid used nowhere else. Label
overrides are rows only where the pid differs from the dataset's.

**Concurrency.** One writer per file: an exclusive lock (``fcntl.flock`` on
``<store>.lock``, ``msvcrt.locking`` on Windows), held as long as the store is open for
writing, with the holder's pid written in it. A second instance (another app, or the CLI)
falls back to read-only and says why (``read_only``, ``mode_reason``), or with
``mode="write"`` raises; ``wait`` seconds lets it wait for the lock first. The OS drops the
lock when the holder dies, so a crash never leaves the store locked. WAL mode gives readers a
consistent snapshot while the writer commits; ``busy_timeout`` covers WAL checkpoints and
recovery. (Locks on network file systems are only as good as the file system's ``flock``.)

**Durability.** WAL with ``synchronous=NORMAL``: a commit has written its WAL frames with
``write()`` before it returns, so the data is in the kernel's page cache and a process crash
or ``SIGKILL`` cannot lose it; only an OS crash or power loss can lose the last commits (the
WAL is fsync'ed at checkpoints), and never corrupts the file. ``synchronous="FULL"`` (the
default) also fsyncs the WAL on every commit, so a commit survives power loss too. It costs
1-5 ms per edit against ~0.55 ms (``bench/bench_annotations.py`` on the dev VM: 190-860
against 1,700-2,050 edits/s, depending on how busy the shared disk is); edits come at human
speed and bulk imports are one transaction, so the app takes FULL; pass
``synchronous="NORMAL"`` for scripted bulk editing.

**Version.** :meth:`version` is ``"<revision>-<state hash>"``: the revision counts every
apply, undo and redo; the state hash is an order-independent hash (sum of row hashes mod
2**256) of the annotation state, kept up to date row by row, so it costs nothing to read.
Results files record the version and are recomputed when it changes.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from reidviewer.annotations.edits import (
    AnnotationError, BulkFrameFlags, Edit, EditRecord, FlagFrames, FlagTracklets, Merge, Relabel, SetNote, Split,
    edit_from_params,
)
from reidviewer.annotations.schema import FORMAT, MIGRATIONS, SCHEMA_VERSION, STATE_TABLES
from reidviewer.annotations.validate import check_dump, frame_problem

if TYPE_CHECKING:
    from reidviewer.data.dataset import VideoDataset
    from reidviewer.workspace import Workspace

_MOD = 1 << 256
_ZERO_HASH = "0" * 64


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _dumps(obj: Any) -> str:
    # Compact and deterministic: these strings are hashed and compared byte for byte.
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def _row_digest(table: str, key: list, value: list) -> int:
    return int.from_bytes(hashlib.sha256(_dumps([table, key, value]).encode("utf-8")).digest(), "big")


def _write_problem(exc: sqlite3.OperationalError) -> str | None:
    """What a user can do about an SQLite error on a write; ``None`` for other errors (bugs)."""
    text = str(exc)
    low = text.lower()
    kept = "the change was not saved; every edit saved before is kept"
    if "full" in low:
        return f"cannot be written, the disk is full ({text}): free some space and try again; {kept}"
    if "readonly" in low or "read-only" in low:
        return (
            f"cannot be written, it is read-only ({text}): make the file and its folder writable "
            f"and reopen it; {kept}"
        )
    if "disk i/o" in low or "unable to open" in low:
        return f"cannot be written ({text}): check the disk and that the folder is writable; {kept}"
    if "locked" in low or "busy" in low:
        return f"cannot be written, another process keeps it locked ({text}): try again; {kept}"
    return None


def store_filename(dataset_name: str, dataset_fingerprint: str) -> str:
    """The store's file name for a dataset: ``<name>-<fingerprint>.sqlite``."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", dataset_name) or "dataset"
    return f"{safe}-{dataset_fingerprint}.sqlite"


class _WriterLock:
    """An exclusive, non-blocking lock on ``path`` that the OS releases if the holder dies."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: Any = None
        self.problem = ""

    def try_acquire(self) -> bool:
        try:
            fh = open(self.path, "a+b")
        except OSError as exc:
            # A read-only workspace or folder: no lock file, so no writing either.
            self.problem = f"cannot create the lock file {self.path.name} ({exc.strerror or exc})"
            return False
        try:
            if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
                import msvcrt

                # Windows locks are mandatory: lock a byte past the pid text so it stays readable.
                fh.seek(4096)
                msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            return False
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} on {_hostname()}\n".encode())
        fh.flush()
        self._fh = fh
        return True

    def acquire(self, wait: float) -> bool:
        deadline = time.monotonic() + max(0.0, wait)
        while True:
            if self.try_acquire():
                return True
            if self.problem or time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    def why(self) -> str:
        """Why the lock was not taken, for ``mode_reason``."""
        if self.problem:
            return self.problem
        return f"open for writing in another reidviewer ({self.holder()})"

    def holder(self) -> str:
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace").strip()
        except OSError:
            text = ""
        return text or "an unknown process"

    def release(self) -> None:
        if self._fh is not None:
            # Closing the descriptor releases flock/msvcrt locks; the file itself stays (removing
            # it would race with another process that has just opened it).
            self._fh.close()
            self._fh = None


def _hostname() -> str:
    import socket

    try:
        return socket.gethostname()
    except OSError:  # pragma: no cover
        return "unknown host"


class _Txn:
    """One write transaction: row changes with before/after, and the running state hash."""

    def __init__(self, store: AnnotationStore, cur: sqlite3.Cursor) -> None:
        self.store = store
        self.cur = cur
        meta = dict(cur.execute("SELECT key, value FROM meta WHERE key IN ('revision', 'state_hash')").fetchall())
        self.revision = int(meta.get("revision", "0"))
        self.hash = int(meta.get("state_hash", _ZERO_HASH), 16)
        self.changes: list[tuple[str, list, list | None, list | None]] = []
        self.bump = False

    def get(self, table: str, key: list) -> list | None:
        keys, values = STATE_TABLES[table]
        cols = ", ".join(values) if values else "1"
        where = " AND ".join(f"{c} = ?" for c in keys)
        row = self.cur.execute(f"SELECT {cols} FROM {table} WHERE {where}", key).fetchone()
        if row is None:
            return None
        return list(row) if values else []

    def set(self, table: str, key: list, value: list | None, record: bool = True) -> bool:
        """Make row ``key`` of ``table`` hold ``value`` (``None``: absent). True if it changed."""
        before = self.get(table, key)
        if before == value:
            return False
        keys, values = STATE_TABLES[table]
        if value is None:
            where = " AND ".join(f"{c} = ?" for c in keys)
            self.cur.execute(f"DELETE FROM {table} WHERE {where}", key)
        else:
            cols = keys + values
            marks = ", ".join("?" * len(cols))
            self.cur.execute(f"INSERT OR REPLACE INTO {table} ({', '.join(cols)}) VALUES ({marks})", key + value)
        if before is not None:
            self.hash = (self.hash - _row_digest(table, key, before)) % _MOD
        if value is not None:
            self.hash = (self.hash + _row_digest(table, key, value)) % _MOD
        if record:
            self.changes.append((table, key, before, value))
        return True

    def event(self, edit_id: int, action: str) -> None:
        self.cur.execute("INSERT INTO events (edit_id, action, at) VALUES (?, ?, ?)", (edit_id, action, _now()))
        self.bump = True

    def finish(self) -> None:
        if self.bump:
            self.revision += 1
            self.cur.executemany(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                [("revision", str(self.revision)), ("state_hash", f"{self.hash:064x}")],
            )


class AnnotationStore:
    """The annotations of one dataset, in one SQLite file.

    Args:
        path: the ``.sqlite`` file (created if missing, when opened for writing).
        dataset_fingerprint: the dataset's fingerprint; checked against (or recorded in) the file.
        dataset_name: the dataset's name, recorded in the file.
        mode: ``"auto"`` (write if no other process holds the writer lock, else read-only),
            ``"write"`` (raise :class:`AnnotationError` if the lock is held) or ``"read"``.
        wait: seconds to wait for the writer lock before falling back (or raising).
        synchronous: ``"FULL"`` (default: a commit survives power loss; fsync per commit)
            or ``"NORMAL"`` (survives a process crash; about twice the edit rate).
        busy_timeout: seconds SQLite waits on a locked database before failing.

    Attributes:
        path: the store file.
        read_only: True when this instance cannot edit.
        mode_reason: why it is writable or read-only, for the status bar.

    Raises:
        AnnotationError: the file is not an annotation store, belongs to another dataset, was
            written by a newer reidviewer, or is locked and ``mode="write"``.
    """

    def __init__(
        self,
        path: str | Path,
        dataset_fingerprint: str | None = None,
        dataset_name: str | None = None,
        *,
        mode: Literal["auto", "write", "read"] = "auto",
        wait: float = 0.0,
        synchronous: Literal["NORMAL", "FULL"] = "FULL",
        busy_timeout: float = 5.0,
    ) -> None:
        if mode not in ("auto", "write", "read"):
            raise ValueError(f"mode must be 'auto', 'write' or 'read', not {mode!r}")
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be 'NORMAL' or 'FULL', not {synchronous!r}")
        self.path = Path(path).expanduser().absolute()
        self._mode = mode
        self._synchronous = synchronous
        self._busy_timeout = float(busy_timeout)
        self._mutex = threading.RLock()
        self._lock: _WriterLock | None = None
        self._conn: sqlite3.Connection | None = None
        self._base: dict[str, tuple[int, int]] = {}
        self._fingerprint = dataset_fingerprint or None
        self._name = dataset_name or None
        self.read_only = True
        self.mode_reason = ""

        if mode == "read":
            self.mode_reason = "opened read-only on request"
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            lock = _WriterLock(self.path.with_name(self.path.name + ".lock"))
            if lock.acquire(wait):
                self._lock = lock
            else:
                if mode == "write":
                    raise AnnotationError(self.path, f"cannot be opened for writing: {lock.why()}")
                self.mode_reason = f"read-only: {lock.why()}; edits are disabled until it closes"
        try:
            if self._lock is not None:
                self._open_writable()
            else:
                self._open_read_only()
            self._check_meta()
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ opening

    @classmethod
    def open(
        cls, workspace: Workspace, dataset_fingerprint: str, dataset_name: str, **kwargs: Any
    ) -> AnnotationStore:
        """Open (or create) the store of a dataset in a workspace.

        The file is ``workspace.annotations_dir / f"{dataset_name}-{dataset_fingerprint}.sqlite"``.
        Keyword arguments go to the constructor (``mode``, ``wait``, ``synchronous``).
        """
        if not dataset_fingerprint:
            raise AnnotationError(workspace.annotations_dir, f"dataset {dataset_name!r} has no fingerprint to key annotations by")
        path = workspace.annotations_dir / store_filename(dataset_name, dataset_fingerprint)
        return cls(path, dataset_fingerprint, dataset_name, **kwargs)

    @classmethod
    def for_dataset(cls, workspace: Workspace, dataset: VideoDataset, **kwargs: Any) -> AnnotationStore:
        """:meth:`open` the store of ``dataset`` and :meth:`attach` it."""
        store = cls.open(workspace, dataset.fingerprint, dataset.name, **kwargs)
        try:
            store.attach(dataset)
        except BaseException:
            store.close()
            raise
        return store

    def _connect(self, read_only: bool) -> sqlite3.Connection:
        if read_only:
            conn = sqlite3.connect(
                self.path.as_uri() + "?mode=ro", uri=True, isolation_level=None,
                check_same_thread=False, timeout=self._busy_timeout,
            )
        else:
            conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=self._busy_timeout
            )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
            conn.execute("PRAGMA foreign_keys = ON")
            if not read_only:
                journal = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if journal.lower() != "wal":
                    # Some network file systems cannot do WAL; rollback journal still commits safely.
                    self.mode_reason += f" (journal mode {journal}: WAL not supported here)"
                conn.execute(f"PRAGMA synchronous = {self._synchronous}")
        except sqlite3.DatabaseError as exc:
            conn.close()
            if isinstance(exc, sqlite3.OperationalError) and "readonly" in str(exc).lower():
                raise AnnotationError(
                    self.path, f"cannot be opened for writing, it is read-only ({exc}): make it writable or open it read-only"
                ) from None
            raise AnnotationError(self.path, f"is not an annotation store ({exc})") from None
        return conn

    def _open_writable(self) -> None:
        existed = self.path.exists() and self.path.stat().st_size > 0
        self._conn = self._connect(read_only=False)
        try:
            version = self._conn.execute("PRAGMA user_version").fetchone()[0]
            tables = {r[0] for r in self._conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.DatabaseError as exc:
            raise AnnotationError(self.path, f"is not an annotation store ({exc})") from None
        if version > SCHEMA_VERSION:
            raise AnnotationError(
                self.path, f"was written by a newer reidviewer (schema {version}; this one knows up to {SCHEMA_VERSION})"
            )
        if version == 0 and tables:
            raise AnnotationError(self.path, "is a SQLite file but not a reidviewer annotation store")
        if version < SCHEMA_VERSION:
            if existed and version > 0:
                self._backup(self.path.with_name(f"{self.path.stem}.v{version}.bak.sqlite"))
            for v in range(version, SCHEMA_VERSION):
                self._migrate(v)
        with self._txn() as txn:
            cur = txn.cur
            cur.executemany(
                "INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)",
                [("format", FORMAT), ("created_at", _now()), ("revision", "0"), ("state_hash", _ZERO_HASH)],
            )
            for key, value in (("dataset_fingerprint", self._fingerprint), ("dataset_name", self._name)):
                if value:
                    cur.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", (key, value))
        self.read_only = False
        self.mode_reason = "writable: this reidviewer holds the writer lock" + self.mode_reason

    def _migrate(self, version: int) -> None:
        assert self._conn is not None
        script = f"BEGIN IMMEDIATE;\n{MIGRATIONS[version]}\nPRAGMA user_version = {version + 1};\nCOMMIT;"
        try:
            self._conn.executescript(script)
        except sqlite3.DatabaseError as exc:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise AnnotationError(self.path, f"migration from schema {version} to {version + 1} failed: {exc}") from None

    def _backup(self, target: Path) -> None:
        assert self._conn is not None
        dst = sqlite3.connect(target)
        try:
            self._conn.backup(dst)
        finally:
            dst.close()

    def _open_read_only(self) -> None:
        # A writer that holds the lock may be creating the file right now: give it busy_timeout
        # to finish its schema. Asked for read-only (no writer implied), do not wait.
        deadline = time.monotonic() + (self._busy_timeout if self._mode != "read" else 0.0)
        while True:
            version = -1
            if self.path.exists():
                conn = self._connect(read_only=True)
                try:
                    version = conn.execute("PRAGMA user_version").fetchone()[0]
                except sqlite3.DatabaseError as exc:
                    conn.close()
                    raise AnnotationError(self.path, f"is not an annotation store ({exc})") from None
                if version == SCHEMA_VERSION and conn.execute(
                    "SELECT 1 FROM meta WHERE key = 'format'"
                ).fetchone():
                    self._conn = conn
                    return
                conn.close()
                if version > SCHEMA_VERSION:
                    raise AnnotationError(
                        self.path, f"was written by a newer reidviewer (schema {version}; this one knows up to {SCHEMA_VERSION})"
                    )
            if time.monotonic() >= deadline:
                if version < 0:
                    raise AnnotationError(self.path, f"does not exist; {self.mode_reason or 'cannot open it for writing'}")
                raise AnnotationError(
                    self.path, f"has schema {version} and needs migrating to {SCHEMA_VERSION}, which a read-only store cannot do"
                )
            time.sleep(0.05)

    def _check_meta(self) -> None:
        meta = self._meta()
        if meta.get("format") != FORMAT:
            raise AnnotationError(self.path, "is a SQLite file but not a reidviewer annotation store")
        stored = meta.get("dataset_fingerprint")
        if self._fingerprint and stored and stored != self._fingerprint:
            raise AnnotationError(
                self.path, f"holds annotations of dataset fingerprint {stored}, not {self._fingerprint}"
            )
        self._fingerprint = self._fingerprint or stored
        self._name = self._name or meta.get("dataset_name")

    def reopen_for_writing(self, wait: float = 0.0) -> bool:
        """A read-only store tries to take the writer lock (the other instance may have closed).

        Returns:
            True if the store is now writable.
        """
        with self._mutex:
            if not self.read_only:
                return True
            if self._mode == "read":
                return False
            lock = _WriterLock(self.path.with_name(self.path.name + ".lock"))
            if not lock.acquire(wait):
                self.mode_reason = f"read-only: {lock.why()}; edits are disabled until it closes"
                return False
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            self._lock = lock
            self.mode_reason = ""
            try:
                self._open_writable()
                self._check_meta()
            except BaseException:
                self.close()
                raise
            self._base = {}
            return True

    def close(self) -> None:
        """Close the file and release the writer lock. Safe to call twice."""
        with self._mutex:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            if self._lock is not None:
                self._lock.release()
                self._lock = None
            self.read_only = True

    def __enter__(self) -> AnnotationStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"AnnotationStore({str(self.path)!r}, {'read-only' if self.read_only else 'writable'})"

    # ------------------------------------------------------------------ plumbing

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise AnnotationError(self.path, "is closed")
        return self._conn

    @property
    def dataset_fingerprint(self) -> str | None:
        """The fingerprint of the dataset these annotations belong to."""
        return self._fingerprint

    @property
    def dataset_name(self) -> str | None:
        """The name of the dataset these annotations belong to."""
        return self._name

    def _meta(self) -> dict[str, str]:
        with self._mutex:
            return dict(self.conn.execute("SELECT key, value FROM meta").fetchall())

    @contextmanager
    def _txn(self) -> Iterator[_Txn]:
        # BEGIN IMMEDIATE takes the database write lock at once, so a transaction never fails
        # half-way on a lock upgrade; busy_timeout makes it wait instead of failing.
        with self._mutex:
            if self._lock is None:
                raise AnnotationError(self.path, f"cannot be edited: {self.mode_reason}")
            cur = self.conn.cursor()
            try:
                cur.execute("BEGIN IMMEDIATE")
                try:
                    txn = _Txn(self, cur)
                    yield txn
                    txn.finish()
                    cur.execute("COMMIT")
                except BaseException:
                    if self.conn.in_transaction:
                        try:
                            cur.execute("ROLLBACK")
                        except sqlite3.Error:  # pragma: no cover - SQLite rolls back on its own then
                            pass
                    raise
            except sqlite3.OperationalError as exc:
                # Every write goes through here: a full disk or a read-only file is one line
                # about the store, and the transaction is rolled back, so every edit committed
                # before stays as it was.
                problem = _write_problem(exc)
                if problem is None:
                    raise
                raise AnnotationError(self.path, problem) from None

    @contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Cursor]:
        # A read transaction: several SELECTs see one consistent state even while the writer
        # (another process) commits, thanks to WAL.
        with self._mutex:
            cur = self.conn.cursor()
            cur.execute("BEGIN")
            try:
                yield cur
            finally:
                cur.execute("COMMIT")

    def _base_map(self) -> dict[str, tuple[int, int]]:
        if not self._base:
            with self._mutex:
                rows = self.conn.execute("SELECT key, pid, num_frames FROM base").fetchall()
            if rows:
                self._base = {k: (p, n) for k, p, n in rows}
        return self._base

    # ------------------------------------------------------------------ the dataset

    def attach(self, dataset: VideoDataset) -> None:
        """Record the dataset's own labels (once) or check they match the recorded ones.

        Merges, splits and key checks need them. A read-only store keeps them in memory when
        the writer has not recorded them yet.

        Raises:
            AnnotationError: the dataset is not the one the store belongs to.
        """
        if self._fingerprint and dataset.fingerprint and dataset.fingerprint != self._fingerprint:
            raise AnnotationError(
                self.path,
                f"holds annotations of dataset fingerprint {self._fingerprint}, not {dataset.fingerprint} ({dataset.name})",
            )
        rows: dict[str, tuple[int, int]] = {}
        for t in dataset.tracklets:
            if t.key in rows:
                raise AnnotationError(dataset.root, f"two tracklets share the key {t.key!r}; annotations need unique keys")
            rows[t.key] = (int(t.pid), len(t.frames))
        base = self._base_map()
        if base:
            if base != rows:
                missing = sorted(set(base) - set(rows))[:3]
                extra = sorted(set(rows) - set(base))[:3]
                differ = sorted(k for k in set(base) & set(rows) if base[k] != rows[k])[:3]
                raise AnnotationError(
                    self.path,
                    f"was made for a different version of dataset {dataset.name}: "
                    f"missing tracklets {missing}, new tracklets {extra}, changed pid/frame count {differ}",
                )
            return
        if self.read_only:
            self._base = rows
            return
        with self._txn() as txn:
            txn.cur.executemany(
                "INSERT INTO base (key, pid, num_frames) VALUES (?, ?, ?)", [(k, p, n) for k, (p, n) in rows.items()]
            )
            for key, value in (("dataset_fingerprint", dataset.fingerprint), ("dataset_name", dataset.name)):
                if value:
                    txn.cur.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", (key, value))
        self._base = rows
        self._fingerprint = self._fingerprint or dataset.fingerprint or None
        self._name = self._name or dataset.name

    @property
    def attached(self) -> bool:
        """True once the dataset's labels are known (see :meth:`attach`)."""
        return bool(self._base_map())

    def _require_keys(self, keys: Any, what: str) -> dict[str, tuple[int, int]]:
        base = self._base_map()
        if not base:
            raise AnnotationError(self.path, f"{what}: attach the dataset first (store.attach(dataset))")
        unknown = [k for k in keys if k not in base]
        if unknown:
            more = f" and {len(unknown) - 3} more" if len(unknown) > 3 else ""
            raise AnnotationError(
                self.path, f"{what}: tracklet(s) {', '.join(map(repr, unknown[:3]))}{more} not in dataset {self._name}"
            )
        return base

    # ------------------------------------------------------------------ edits

    def apply(self, edit: Edit) -> int:
        """Apply an edit as one transaction; drops the redo stack.

        Returns:
            The edit id (see :meth:`record` for what it changed, e.g. a split's new pid).

        Raises:
            AnnotationError: the store is read-only, or the edit names an unknown tracklet,
                a frame past a tracklet's end, or an identity with no tracklets.
        """
        if not isinstance(edit, Edit):
            raise TypeError(f"apply() takes an Edit, not {type(edit).__name__}")
        with self._txn() as txn:
            result = self._perform(txn, edit)
            result["changed"] = len(txn.changes)
            txn.cur.execute("UPDATE edits SET status = 'dropped' WHERE status = 'undone'")
            created = _now()
            summary = f"{edit.describe()} ({_changed(len(txn.changes))})"
            edit_id = txn.cur.execute(
                "INSERT INTO edits (kind, params, created_at, status, summary, result) VALUES (?, ?, ?, 'applied', ?, ?)",
                (edit.kind, _dumps(edit.params()), created, summary, _dumps(result)),
            ).lastrowid
            txn.cur.executemany(
                "INSERT INTO changes (edit_id, seq, tbl, row_key, before, after) VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (edit_id, seq, table, _dumps(key), None if b is None else _dumps(b), None if a is None else _dumps(a))
                    for seq, (table, key, b, a) in enumerate(txn.changes)
                ],
            )
            txn.event(edit_id, "apply")
        return int(edit_id)

    def _perform(self, txn: _Txn, edit: Edit) -> dict[str, Any]:
        if isinstance(edit, Relabel):
            base = self._require_keys(edit.keys, "relabel")
            self._relabel(txn, base, edit.keys, edit.pid)
            return {}
        if isinstance(edit, Merge):
            base = self._require_keys((), "merge")
            absorbed = self._members(txn.cur, edit.absorb)
            if not absorbed:
                raise AnnotationError(self.path, f"merge: identity {edit.absorb} has no tracklets")
            if not self._members(txn.cur, edit.keep):
                raise AnnotationError(self.path, f"merge: identity {edit.keep} has no tracklets")
            self._relabel(txn, base, absorbed, edit.keep)
            return {"tracklets": len(absorbed)}
        if isinstance(edit, Split):
            base = self._require_keys(edit.keys, "split")
            pid = self._fresh_pid(txn.cur)
            self._relabel(txn, base, edit.keys, pid)
            return {"pid": pid}
        if isinstance(edit, (FlagFrames, BulkFrameFlags)):
            rows = (
                [(edit.key, f, edit.flag) for f in edit.frames] if isinstance(edit, FlagFrames) else list(edit.rows)
            )
            base = self._require_keys(dict.fromkeys(r[0] for r in rows), "flag frames")
            for key, frame, flag in rows:
                problem = frame_problem(key, frame, base[key][1])
                if problem:
                    raise AnnotationError(self.path, f"flag frames: {problem}")
                txn.set("frame_flags", [key, frame, flag], None if edit.clear else [])
            return {}
        if isinstance(edit, FlagTracklets):
            self._require_keys(edit.keys, "flag tracklets")
            for key in edit.keys:
                txn.set("tracklet_flags", [key, edit.flag], None if edit.clear else [])
            return {}
        if isinstance(edit, SetNote):
            if edit.target == "tracklet":
                self._require_keys((edit.ref,), "note")
            txn.set("notes", [edit.target, str(edit.ref)], [edit.text] if edit.text else None)
            return {}
        raise AnnotationError(self.path, f"unknown edit kind {edit.kind!r}")  # pragma: no cover

    @staticmethod
    def _relabel(txn: _Txn, base: dict[str, tuple[int, int]], keys: Any, pid: int) -> None:
        for key in keys:
            # Only store a label where it differs from the dataset's: relabelling back removes it.
            txn.set("labels", [key], None if base[key][0] == pid else [pid])

    @staticmethod
    def _members(cur: sqlite3.Cursor, pid: int) -> list[str]:
        rows = cur.execute(
            "SELECT b.key FROM base b LEFT JOIN labels l ON l.key = b.key WHERE COALESCE(l.pid, b.pid) = ? ORDER BY b.key",
            (pid,),
        ).fetchall()
        return [r[0] for r in rows]

    @staticmethod
    def _fresh_pid(cur: sqlite3.Cursor) -> int:
        # Above every pid the dataset has, every pid the store assigns, and every identity that
        # carries a note, so a new identity never inherits someone else's note or label.
        row = cur.execute(
            "SELECT MAX(m) FROM (SELECT MAX(pid) AS m FROM base UNION ALL SELECT MAX(pid) FROM labels "
            "UNION ALL SELECT MAX(CAST(ref AS INTEGER)) FROM notes WHERE target = 'identity')"
        ).fetchone()
        return max(int(row[0] or 0), 0) + 1

    def _top(self, cur: sqlite3.Cursor) -> int | None:
        row = cur.execute("SELECT MAX(id) FROM edits WHERE status = 'applied'").fetchone()
        return row[0]

    def _next(self, cur: sqlite3.Cursor) -> int | None:
        row = cur.execute("SELECT MIN(id) FROM edits WHERE status = 'undone'").fetchone()
        return row[0]

    def _replay(self, txn: _Txn, edit_id: int, backwards: bool) -> None:
        rows = txn.cur.execute(
            f"SELECT tbl, row_key, before, after FROM changes WHERE edit_id = ? ORDER BY seq {'DESC' if backwards else 'ASC'}",
            (edit_id,),
        ).fetchall()
        for table, key, before, after in rows:
            value = before if backwards else after
            txn.set(table, json.loads(key), None if value is None else json.loads(value), record=False)
        txn.cur.execute(
            "UPDATE edits SET status = ? WHERE id = ?", ("undone" if backwards else "applied", edit_id)
        )
        txn.event(edit_id, "undo" if backwards else "redo")

    def undo(self) -> EditRecord | None:
        """Revert the latest applied edit. Returns it, or ``None`` when there is nothing to undo."""
        with self._txn() as txn:
            edit_id = self._top(txn.cur)
            if edit_id is None:
                return None
            self._replay(txn, edit_id, backwards=True)
        return self.record(edit_id)

    def redo(self) -> EditRecord | None:
        """Re-apply the earliest undone edit. Returns it, or ``None`` when there is nothing to redo."""
        with self._txn() as txn:
            edit_id = self._next(txn.cur)
            if edit_id is None:
                return None
            self._replay(txn, edit_id, backwards=False)
        return self.record(edit_id)

    def revert(self, edit_id: int) -> EditRecord:
        """Undo edit ``edit_id``, which must be the latest applied edit (``QUndoCommand.undo``).

        Raises:
            AnnotationError: it is not the latest applied edit.
        """
        with self._txn() as txn:
            top = self._top(txn.cur)
            if top != edit_id:
                raise AnnotationError(self.path, self._order_problem(txn.cur, edit_id, "undo", top))
            self._replay(txn, edit_id, backwards=True)
        return self.record(edit_id)

    def reapply(self, edit_id: int) -> EditRecord:
        """Redo edit ``edit_id``, which must be the next edit to redo (``QUndoCommand.redo``).

        Raises:
            AnnotationError: it is not the next undone edit.
        """
        with self._txn() as txn:
            nxt = self._next(txn.cur)
            if nxt != edit_id:
                raise AnnotationError(self.path, self._order_problem(txn.cur, edit_id, "redo", nxt))
            self._replay(txn, edit_id, backwards=False)
        return self.record(edit_id)

    @staticmethod
    def _order_problem(cur: sqlite3.Cursor, edit_id: int, action: str, expected: int | None) -> str:
        row = cur.execute("SELECT status FROM edits WHERE id = ?", (edit_id,)).fetchone()
        if row is None:
            return f"cannot {action} edit {edit_id}: no such edit"
        if expected is None:
            return f"cannot {action} edit {edit_id} (status {row[0]}): nothing to {action}"
        return f"cannot {action} edit {edit_id} (status {row[0]}): edit {expected} must be {action}ne first"

    def can_undo(self) -> bool:
        """True when there is an applied edit to undo."""
        with self._mutex:
            return self._top(self.conn.cursor()) is not None

    def can_redo(self) -> bool:
        """True when there is an undone edit to redo."""
        with self._mutex:
            return self._next(self.conn.cursor()) is not None

    # ------------------------------------------------------------------ history

    @staticmethod
    def _to_record(row: tuple) -> EditRecord:
        edit_id, kind, params, created, status, summary, result = row
        return EditRecord(
            id=int(edit_id),
            edit=edit_from_params(kind, json.loads(params)),
            created_at=datetime.fromisoformat(created),
            status=status,
            summary=summary,
            result=json.loads(result),
        )

    def record(self, edit_id: int) -> EditRecord:
        """The recorded edit ``edit_id``.

        Raises:
            AnnotationError: no such edit.
        """
        with self._mutex:
            row = self.conn.execute(
                "SELECT id, kind, params, created_at, status, summary, result FROM edits WHERE id = ?", (edit_id,)
            ).fetchone()
        if row is None:
            raise AnnotationError(self.path, f"has no edit {edit_id}")
        return self._to_record(row)

    def history(self, include_dropped: bool = True) -> list[EditRecord]:
        """Every edit, oldest first, with its status."""
        where = "" if include_dropped else "WHERE status != 'dropped'"
        with self._mutex:
            rows = self.conn.execute(
                f"SELECT id, kind, params, created_at, status, summary, result FROM edits {where} ORDER BY id"
            ).fetchall()
        return [self._to_record(r) for r in rows]

    def events(self) -> list[tuple[int, str, datetime]]:
        """Every apply/undo/redo as ``(edit id, action, time)``, oldest first."""
        with self._mutex:
            rows = self.conn.execute("SELECT edit_id, action, at FROM events ORDER BY id").fetchall()
        return [(int(e), a, datetime.fromisoformat(t)) for e, a, t in rows]

    @property
    def revision(self) -> int:
        """Number of applies, undos and redos so far."""
        return int(self._meta().get("revision", "0"))

    def content_hash(self) -> str:
        """Hash of the annotation state alone (equal states give equal hashes)."""
        return self._meta().get("state_hash", _ZERO_HASH)

    def version(self) -> str:
        """``"<revision>-<content hash prefix>"``: changes on every edit, undo and redo."""
        meta = self._meta()
        return f"{int(meta.get('revision', '0'))}-{meta.get('state_hash', _ZERO_HASH)[:16]}"

    def recompute_hash(self) -> str:
        """The state hash computed from scratch (a check on the incrementally kept one)."""
        total = 0
        with self._snapshot() as cur:
            for table, (keys, values) in STATE_TABLES.items():
                for row in cur.execute(f"SELECT {', '.join(keys + values)} FROM {table}"):
                    total = (total + _row_digest(table, list(row[: len(keys)]), list(row[len(keys):]))) % _MOD
        return f"{total:064x}"

    def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check`` result (``"ok"`` when the file is sound)."""
        with self._mutex:
            rows = self.conn.execute("PRAGMA integrity_check").fetchall()
        return "\n".join(r[0] for r in rows)

    # ------------------------------------------------------------------ state

    def labels(self) -> dict[str, int]:
        """Identity overrides: tracklet key -> corrected pid (only where it differs from the dataset)."""
        with self._mutex:
            return dict(self.conn.execute("SELECT key, pid FROM labels").fetchall())

    def pid_of(self, key: str) -> int:
        """The corrected pid of a tracklet."""
        base = self._require_keys((key,), "pid")
        with self._mutex:
            row = self.conn.execute("SELECT pid FROM labels WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row else base[key][0]

    def members(self, pid: int) -> list[str]:
        """Keys of the tracklets whose corrected pid is ``pid`` (sorted)."""
        # From the base map, not SQL: a read-only store may hold the dataset's labels in memory only.
        base = self._require_keys((), "members")
        labels = self.labels()
        return sorted(k for k, (p, _) in base.items() if labels.get(k, p) == pid)

    def num_frames(self, key: str) -> int:
        """Frame count of a tracklet, as the dataset had it."""
        return self._require_keys((key,), "frames")[key][1]

    def frame_flags(self) -> dict[str, dict[int, frozenset[str]]]:
        """Every frame flag: tracklet key -> frame index -> set of flags."""
        out: dict[str, dict[int, set[str]]] = {}
        with self._mutex:
            for key, frame, flag in self.conn.execute("SELECT key, frame, flag FROM frame_flags"):
                out.setdefault(key, {}).setdefault(frame, set()).add(flag)
        return {k: {f: frozenset(s) for f, s in v.items()} for k, v in out.items()}

    def frame_flags_of(self, key: str) -> dict[int, frozenset[str]]:
        """Flags of one tracklet's frames: frame index -> set of flags (unflagged frames absent)."""
        out: dict[int, set[str]] = {}
        with self._mutex:
            for frame, flag in self.conn.execute("SELECT frame, flag FROM frame_flags WHERE key = ?", (key,)):
                out.setdefault(frame, set()).add(flag)
        return {f: frozenset(s) for f, s in out.items()}

    def tracklet_flags(self) -> dict[str, frozenset[str]]:
        """Every tracklet flag: key -> set of flags."""
        out: dict[str, set[str]] = {}
        with self._mutex:
            for key, flag in self.conn.execute("SELECT key, flag FROM tracklet_flags"):
                out.setdefault(key, set()).add(flag)
        return {k: frozenset(v) for k, v in out.items()}

    def tracklet_flags_of(self, key: str) -> frozenset[str]:
        """Flags of one tracklet."""
        with self._mutex:
            return frozenset(r[0] for r in self.conn.execute("SELECT flag FROM tracklet_flags WHERE key = ?", (key,)))

    def note(self, target: str, ref: str | int) -> str:
        """The note on a tracklet (``target="tracklet"``, ref = key) or identity (ref = pid); ``""`` if none."""
        with self._mutex:
            row = self.conn.execute("SELECT text FROM notes WHERE target = ? AND ref = ?", (target, str(ref))).fetchone()
        return row[0] if row else ""

    def notes(self) -> dict[tuple[str, str | int], str]:
        """Every note: ``(target, ref) -> text``; identity refs are ints."""
        with self._mutex:
            rows = self.conn.execute("SELECT target, ref, text FROM notes").fetchall()
        return {(t, int(r) if t == "identity" else r): text for t, r, text in rows}

    def dump(self, history: bool = False) -> dict[str, Any]:
        """Everything in the store as plain, sorted JSON-ready data.

        Args:
            history: also the edits (with their row changes), the events, the revision, the
                state hash and the creation time. Without it, two stores in the same
                annotation state give equal dumps.
        """
        with self._snapshot() as cur:
            meta = dict(cur.execute("SELECT key, value FROM meta").fetchall())
            out: dict[str, Any] = {
                "dataset": {"name": meta.get("dataset_name"), "fingerprint": meta.get("dataset_fingerprint")},
                "base": [list(r) for r in cur.execute("SELECT key, pid, num_frames FROM base ORDER BY key")],
            }
            for table, (keys, values) in STATE_TABLES.items():
                cols = ", ".join(keys + values)
                out[table] = [list(r) for r in cur.execute(f"SELECT {cols} FROM {table} ORDER BY {', '.join(keys)}")]
            if history:
                out["created_at"] = meta.get("created_at")
                out["revision"] = int(meta.get("revision", "0"))
                out["state_hash"] = meta.get("state_hash", _ZERO_HASH)
                changes: dict[int, list] = {}
                for edit_id, table, key, before, after in cur.execute(
                    "SELECT edit_id, tbl, row_key, before, after FROM changes ORDER BY edit_id, seq"
                ):
                    changes.setdefault(edit_id, []).append(
                        {
                            "table": table,
                            "key": json.loads(key),
                            "before": None if before is None else json.loads(before),
                            "after": None if after is None else json.loads(after),
                        }
                    )
                out["edits"] = [
                    {
                        "id": i, "kind": k, "params": json.loads(p), "created_at": c, "status": s,
                        "summary": m, "result": json.loads(r), "changes": changes.get(i, []),
                    }
                    for i, k, p, c, s, m, r in cur.execute(
                        "SELECT id, kind, params, created_at, status, summary, result FROM edits ORDER BY id"
                    )
                ]
                out["events"] = [
                    {"id": i, "edit": e, "action": a, "at": t}
                    for i, e, a, t in cur.execute("SELECT id, edit_id, action, at FROM events ORDER BY id")
                ]
        return out

    def load_dump(self, data: dict[str, Any], source: str | Path) -> None:
        """Fill an empty store from :meth:`dump` ``(history=True)`` output, verbatim (import).

        Args:
            data: the dump.
            source: where it came from, for error messages.

        Raises:
            AnnotationError: the store already holds edits or annotations, the dump is for
                another dataset, or it is malformed.
        """
        src = Path(source)
        # Every value is checked before anything is written (numbers that fit, known kinds,
        # frame flags within their tracklet: the same check apply() makes).
        checked = check_dump(data, src)
        base_rows, fingerprint, name = checked["base"], checked["fingerprint"], checked["name"]
        state, edits, events = checked["state"], checked["edits"], checked["events"]
        if self._fingerprint and fingerprint and fingerprint != self._fingerprint:
            raise AnnotationError(src, f"holds annotations of dataset fingerprint {fingerprint}, not {self._fingerprint}")
        base = self._base_map()
        if base and base != {k: (p, n) for k, p, n in base_rows}:
            raise AnnotationError(src, f"was exported from a different version of dataset {name} than {self.path.name} holds")
        try:
            with self._txn() as txn:
                cur = txn.cur
                if cur.execute("SELECT 1 FROM edits LIMIT 1").fetchone() or any(
                    cur.execute(f"SELECT 1 FROM {t} LIMIT 1").fetchone() for t in STATE_TABLES
                ):
                    raise AnnotationError(self.path, "already holds annotations; import into a new, empty store")
                if not base:
                    cur.executemany("INSERT INTO base (key, pid, num_frames) VALUES (?, ?, ?)", base_rows)
                for table, (keys, values) in STATE_TABLES.items():
                    cols = keys + values
                    cur.executemany(
                        f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", state[table]
                    )
                for e in edits:
                    cur.execute(
                        "INSERT INTO edits (id, kind, params, created_at, status, summary, result) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (e["id"], e["kind"], _dumps(e["params"]), e["created_at"], e["status"], e["summary"], _dumps(e["result"])),
                    )
                    cur.executemany(
                        "INSERT INTO changes (edit_id, seq, tbl, row_key, before, after) VALUES (?, ?, ?, ?, ?, ?)",
                        [
                            (
                                e["id"], seq, c["table"], _dumps(c["key"]),
                                None if c["before"] is None else _dumps(c["before"]),
                                None if c["after"] is None else _dumps(c["after"]),
                            )
                            for seq, c in enumerate(e["changes"])
                        ],
                    )
                cur.executemany("INSERT INTO events (id, edit_id, action, at) VALUES (?, ?, ?, ?)", events)
                meta = [("revision", str(checked["revision"]))]
                if checked["created_at"]:
                    meta.append(("created_at", checked["created_at"]))
                for key, value in (("dataset_fingerprint", fingerprint), ("dataset_name", name)):
                    if value:
                        meta.append((key, str(value)))
                cur.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", meta)
                # The hash is recomputed from the rows, never trusted from the file.
                total = 0
                for table, (keys, values) in STATE_TABLES.items():
                    for row in state[table]:
                        total = (total + _row_digest(table, row[: len(keys)], row[len(keys):])) % _MOD
                cur.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('state_hash', ?)", (f"{total:064x}",))
        except sqlite3.IntegrityError as exc:
            raise AnnotationError(src, f"is inconsistent ({exc}): a row names an unknown tracklet, flag or edit") from None
        except (KeyError, TypeError, ValueError) as exc:
            raise AnnotationError(src, f"is not an annotation export (missing or malformed {exc})") from None
        self._base = {}
        self._fingerprint = self._fingerprint or fingerprint
        self._name = self._name or name


def _changed(n: int) -> str:
    return "no change" if n == 0 else f"{n} change{'s' if n != 1 else ''}"
