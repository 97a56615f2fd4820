"""The annotation store's SQLite schema and its migrations.

The schema version lives in ``PRAGMA user_version``. ``MIGRATIONS[v]`` upgrades a file from
version ``v`` to ``v + 1``; a new file runs them all from 0. Each migration runs inside one
transaction (SQLite DDL is transactional), and the store copies an existing file aside
(``*.v<old>.bak.sqlite``) before migrating it, so an upgrade can never lose annotations.
A file with a *newer* version than this code knows is refused, not guessed at.

Tables:

``meta``            key/value: format tag, dataset fingerprint and name, revision, state hash.
``base``            the dataset's own labels, copied once (``attach``): tracklet key, pid and
                    frame count. Merges and splits need them; foreign keys point here.
``labels``          identity overrides: a row only where the pid differs from ``base``.
``frame_flags``     (key, frame, flag) rows.
``tracklet_flags``  (key, flag) rows.
``notes``           (target, ref) -> text; ref is the key or the pid as text.
``edits``           one row per edit: kind, params (JSON), time, status, summary, result.
``changes``         the row changes of each edit, before and after (JSON), for undo/redo.
``events``          apply / undo / redo, each with a time stamp: the full history.
"""
from __future__ import annotations

#: The schema version this code writes.
SCHEMA_VERSION = 1

#: Format tag stored in ``meta`` so a stranger's SQLite file is not taken for a store.
FORMAT = "reidviewer-annotations"

_V1 = """
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE base (
    key        TEXT PRIMARY KEY,
    pid        INTEGER NOT NULL,
    num_frames INTEGER NOT NULL CHECK (num_frames >= 0)
);
CREATE INDEX base_pid ON base(pid);
CREATE TABLE labels (
    key TEXT PRIMARY KEY REFERENCES base(key),
    pid INTEGER NOT NULL
);
CREATE INDEX labels_pid ON labels(pid);
CREATE TABLE frame_flags (
    key   TEXT NOT NULL REFERENCES base(key),
    frame INTEGER NOT NULL CHECK (frame >= 0),
    flag  TEXT NOT NULL CHECK (flag IN ('occluded', 'bad_crop', 'wrong_person')),
    PRIMARY KEY (key, frame, flag)
) WITHOUT ROWID;
CREATE TABLE tracklet_flags (
    key  TEXT NOT NULL REFERENCES base(key),
    flag TEXT NOT NULL CHECK (flag IN ('junk', 'distractor', 'exclude')),
    PRIMARY KEY (key, flag)
) WITHOUT ROWID;
CREATE TABLE notes (
    target TEXT NOT NULL CHECK (target IN ('tracklet', 'identity')),
    ref    TEXT NOT NULL,
    text   TEXT NOT NULL,
    PRIMARY KEY (target, ref)
) WITHOUT ROWID;
CREATE TABLE edits (
    id         INTEGER PRIMARY KEY,
    kind       TEXT NOT NULL,
    params     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('applied', 'undone', 'dropped')),
    summary    TEXT NOT NULL,
    result     TEXT NOT NULL
);
CREATE INDEX edits_status ON edits(status, id);
CREATE TABLE changes (
    edit_id INTEGER NOT NULL REFERENCES edits(id),
    seq     INTEGER NOT NULL,
    tbl     TEXT NOT NULL,
    row_key TEXT NOT NULL,
    before  TEXT,
    after   TEXT,
    PRIMARY KEY (edit_id, seq)
) WITHOUT ROWID;
CREATE TABLE events (
    id      INTEGER PRIMARY KEY,
    edit_id INTEGER NOT NULL REFERENCES edits(id),
    action  TEXT NOT NULL CHECK (action IN ('apply', 'undo', 'redo')),
    at      TEXT NOT NULL
);
"""

#: ``MIGRATIONS[v]``: SQL script taking a file from schema version ``v`` to ``v + 1``.
MIGRATIONS: dict[int, str] = {0: _V1}

#: State tables: name -> (key columns, value columns). A row's presence is the state for the
#: flag tables (no value columns). Undo/redo and the state hash work on these generically.
STATE_TABLES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "labels": (("key",), ("pid",)),
    "frame_flags": (("key", "frame", "flag"), ()),
    "tracklet_flags": (("key", "flag"), ()),
    "notes": (("target", "ref"), ("text",)),
}

assert sorted(MIGRATIONS) == list(range(SCHEMA_VERSION)), "one migration per schema version"
