"""Export and import annotations: the whole store as JSON, frame flags as CSV.

**JSON** holds everything: the dataset's labels as the store recorded them, the annotation
state, and the full history (every edit with its row changes, status and time; every
apply/undo/redo event; the revision). Importing it into a fresh store reproduces the store
exactly, so export -> import -> export gives the identical file, and undo/redo still work on
the imported history. The state hash is recomputed on import, never trusted from the file.

**CSV** (``tracklet_key,frame,flag``) holds frame flags only, sorted, for spreadsheets and
other tools. Importing it applies one :class:`BulkFrameFlags` edit (one undo step). A CSV
round trip keeps the flags, not the history.

Exports are written atomically (temporary file + rename); nothing is ever written into a
dataset folder.
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from reidviewer.annotations.edits import BulkFrameFlags, AnnotationError
from reidviewer.annotations.schema import FORMAT, SCHEMA_VERSION
from reidviewer.annotations.store import AnnotationStore
from reidviewer.workspace import atomic_write_text

#: Version of the JSON exchange format (independent of the SQLite schema version).
EXCHANGE_VERSION = 1
#: Header of the frame-flag CSV.
CSV_HEADER = ("tracklet_key", "frame", "flag")


def to_json(store: AnnotationStore) -> str:
    """The store as JSON text (deterministic: the same store gives the same bytes)."""
    doc: dict[str, Any] = {"format": FORMAT, "exchange_version": EXCHANGE_VERSION, "schema_version": SCHEMA_VERSION}
    doc.update(store.dump(history=True))
    return json.dumps(doc, indent=1, ensure_ascii=False, sort_keys=False) + "\n"


def export_json(store: AnnotationStore, path: str | Path) -> Path:
    """Write the whole store (state and history) as JSON to ``path``, atomically."""
    path = Path(path)
    atomic_write_text(path, to_json(store))
    return path


def from_json(store: AnnotationStore, text: str, source: str | Path = "<json>") -> None:
    """Fill an empty, writable store from :func:`to_json` text.

    Raises:
        AnnotationError: not an export, a newer exchange version, another dataset, or the
            store is not empty.
    """
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AnnotationError(source, f"is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise AnnotationError(source, "is not a reidviewer annotation export (no 'format' tag)")
    version = doc.get("exchange_version")
    if not isinstance(version, int) or version > EXCHANGE_VERSION:
        raise AnnotationError(source, f"has exchange version {version!r}; this reidviewer reads up to {EXCHANGE_VERSION}")
    store.load_dump(doc, source)


def import_json(store: AnnotationStore, path: str | Path) -> None:
    """Read a JSON export into an empty, writable store (see :func:`from_json`)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AnnotationError(path, f"cannot be read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise AnnotationError(path, "is not UTF-8 text") from None
    from_json(store, text, path)


def frame_flags_csv(store: AnnotationStore) -> str:
    """The store's frame flags as CSV text, sorted by key, frame and flag."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    writer.writerows(store.dump()["frame_flags"])
    return buf.getvalue()


def export_frame_flags_csv(store: AnnotationStore, path: str | Path) -> Path:
    """Write the frame flags as CSV (``tracklet_key,frame,flag``) to ``path``, atomically."""
    path = Path(path)
    atomic_write_text(path, frame_flags_csv(store))
    return path


def import_frame_flags_csv(store: AnnotationStore, path: str | Path) -> int | None:
    """Set the frame flags listed in a CSV file, as one undoable edit.

    Returns:
        The edit id, or ``None`` when the file lists no flags.

    Raises:
        AnnotationError: the file cannot be read, a row is malformed (its line is named),
            or it names a tracklet or frame the dataset does not have.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # -sig: spreadsheets often add a BOM
    except OSError as exc:
        raise AnnotationError(path, f"cannot be read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise AnnotationError(path, "is not UTF-8 text") from None
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None or tuple(h.strip() for h in header) != CSV_HEADER:
        raise AnnotationError(path, f"line 1: expected the header {','.join(CSV_HEADER)}, got {header!r}")
    rows: list[tuple[str, int, str]] = []
    for line, row in enumerate(reader, start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != 3:
            raise AnnotationError(path, f"line {line}: expected 3 columns (tracklet_key,frame,flag), got {len(row)}")
        key, frame, flag = (c.strip() for c in row)
        try:
            index = int(frame)
        except ValueError:
            raise AnnotationError(path, f"line {line}: frame {frame!r} is not an integer") from None
        try:
            rows.append(BulkFrameFlags(rows=((key, index, flag),)).rows[0])
        except AnnotationError as exc:
            raise AnnotationError(path, f"line {line}: {exc.problem}") from None
    if not rows:
        return None
    try:
        return store.apply(BulkFrameFlags(rows=tuple(rows)))
    except AnnotationError as exc:
        if exc.path == store.path:
            raise AnnotationError(path, exc.problem) from None
        raise
