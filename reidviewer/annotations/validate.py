"""Checks on annotation data that comes from outside: a JSON export being imported.

An export is a file anyone can edit, so every value is checked before anything is written:
integers must be integers (not floats, not booleans) that fit SQLite's 64-bit ``INTEGER``,
strings must be strings, flags and edit kinds must be known, every row must name a tracklet of
the export's dataset, and a frame flag must lie within its tracklet's frames -- the check
:meth:`AnnotationStore.apply` makes for an edit (and so for a CSV import), made here through
the same :func:`frame_problem`. Errors name the file and the row or field
(``frame_flags[2]``, ``edits[0].params``), never ``OverflowError`` or ``TypeError``.
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from reidviewer.annotations.edits import (
    FRAME_FLAGS,
    NOTE_TARGETS,
    TRACKLET_FLAGS,
    AnnotationError,
    Edit,
    edit_from_params,
)
from reidviewer.annotations.schema import STATE_TABLES

#: SQLite stores integers in 64 bits.
INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1
#: Columns of the state tables that hold integers (every other column holds text).
INT_COLUMNS = frozenset({"pid", "frame"})
EDIT_STATUSES = ("applied", "undone", "dropped")
EVENT_ACTIONS = ("apply", "undo", "redo")


def frame_problem(key: str, frame: int, num_frames: int) -> str | None:
    """Why ``frame`` cannot be flagged on tracklet ``key`` of ``num_frames`` frames, or ``None``."""
    if not 0 <= frame < num_frames:
        return f"frame {frame} is out of range for {key!r} ({num_frames} frames)"
    return None


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class DumpChecker:
    """Checks one export's values; every error names ``src`` and the field."""

    def __init__(self, src: Path) -> None:
        self.src = src
        self.base: dict[str, tuple[int, int]] = {}

    def fail(self, where: str, problem: str) -> AnnotationError:
        return AnnotationError(self.src, f"{where}: {problem}")

    def integer(self, value: Any, where: str, minimum: int = INT64_MIN) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(where, f"expected an integer, got {_show(value)}")
        if not max(minimum, INT64_MIN) <= value <= INT64_MAX:
            low = "0" if minimum == 0 else ("1" if minimum == 1 else "-2**63")
            raise self.fail(where, f"{_show(value)} does not fit (expected {low} to 2**63-1)")
        return value

    def text(self, value: Any, where: str, allowed: tuple[str, ...] = (), empty: bool = True) -> str:
        if not isinstance(value, str):
            raise self.fail(where, f"expected a string, got {_show(value)}")
        if allowed and value not in allowed:
            raise self.fail(where, f"unknown value {value!r}; expected one of {', '.join(allowed)}")
        if not empty and not value:
            raise self.fail(where, "is empty")
        return value

    def listed(self, value: Any, where: str, length: int | None = None) -> list:
        if not isinstance(value, list):
            raise self.fail(where, f"expected a list, got {_show(value)}")
        if length is not None and len(value) != length:
            raise self.fail(where, f"expected {length} values, got {len(value)}")
        return value

    def time(self, value: Any, where: str) -> str:
        self.text(value, where)
        try:
            datetime.fromisoformat(value)
        except ValueError:
            raise self.fail(where, f"{_show(value)} is not an ISO 8601 time") from None
        return value

    def tracklet(self, key: str, where: str) -> None:
        if key not in self.base:
            raise self.fail(where, f"names tracklet {key!r}, which the export's dataset does not have")

    def ints_fit(self, value: Any, where: str) -> None:
        """Every integer nested in ``value`` (edit params, results) fits 64 bits; no NaN/inf."""
        if isinstance(value, bool) or value is None or isinstance(value, str):
            return
        if isinstance(value, int):
            self.integer(value, where)
        elif isinstance(value, float):
            if value != value or value in (float("inf"), float("-inf")):
                raise self.fail(where, f"{value!r} is not a finite number")
        elif isinstance(value, list):
            for v in value:
                self.ints_fit(v, where)
        elif isinstance(value, dict):
            for v in value.values():
                self.ints_fit(v, where)

    # ------------------------------------------------------------------ parts

    def base_rows(self, rows: Any) -> list[tuple[str, int, int]]:
        out = []
        for i, row in enumerate(self.listed(rows, "base")):
            where = f"base[{i}]"
            key, pid, n = self.listed(row, where, 3)
            key = self.text(key, f"{where} key", empty=False)
            if key in self.base:
                raise self.fail(where, f"tracklet {key!r} is listed twice")
            pid = self.integer(pid, f"{where} pid")
            n = self.integer(n, f"{where} num_frames", minimum=0)
            self.base[key] = (pid, n)
            out.append((key, pid, n))
        return out

    def state_row(self, table: str, key: Any, value: Any, where: str) -> None:
        """One row of a state table, split into its key and value parts (``value`` None: absent)."""
        keys, values = STATE_TABLES[table]
        key = self.listed(key, f"{where} key", len(keys))
        cols = dict(zip(keys, key))
        if value is not None:
            cols.update(zip(values, self.listed(value, f"{where} value", len(values))))
        for col, v in cols.items():
            if col in INT_COLUMNS:
                self.integer(v, f"{where} {col}", minimum=0 if col == "frame" else INT64_MIN)
            else:
                self.text(v, f"{where} {col}")
        if "key" in cols:
            self.tracklet(cols["key"], where)
        if table == "frame_flags":
            self.text(cols["flag"], f"{where} flag", FRAME_FLAGS)
            problem = frame_problem(cols["key"], cols["frame"], self.base[cols["key"]][1])
            if problem:
                raise self.fail(where, problem)
        elif table == "tracklet_flags":
            self.text(cols["flag"], f"{where} flag", TRACKLET_FLAGS)
        elif table == "notes":
            self.text(cols["target"], f"{where} target", NOTE_TARGETS)
            if cols["target"] == "tracklet":
                self.tracklet(cols["ref"], where)
            else:
                try:
                    pid = int(cols["ref"])
                except ValueError:
                    raise self.fail(where, f"identity {cols['ref']!r} is not an integer") from None
                self.integer(pid, f"{where} ref")

    def state(self, data: dict[str, Any]) -> dict[str, list[list]]:
        out = {}
        for table, (keys, values) in STATE_TABLES.items():
            rows = self.listed(data[table], table)
            for i, row in enumerate(rows):
                where = f"{table}[{i}]"
                row = self.listed(row, where, len(keys) + len(values))
                self.state_row(table, row[: len(keys)], row[len(keys):], where)
            out[table] = [list(r) for r in rows]
        return out

    def edit(self, e: Any, i: int) -> dict[str, Any]:
        where = f"edits[{i}]"
        if not isinstance(e, dict):
            raise self.fail(where, f"expected an object, got {_show(e)}")
        edit_id = self.integer(e["id"], f"{where} id", minimum=1)
        where = f"edits[{i}] (id {edit_id})"
        kind = self.text(e["kind"], f"{where} kind")
        params = e["params"]
        if not isinstance(params, dict):
            raise self.fail(f"{where} params", f"expected an object, got {_show(params)}")
        self.ints_fit(params, f"{where} params")
        try:
            edit = edit_from_params(kind, params)  # refuse kinds/params this version cannot replay
        except AnnotationError as exc:
            raise self.fail(where, exc.problem) from None
        except (KeyError, TypeError, ValueError) as exc:
            raise self.fail(f"{where} params", f"do not fit a {kind!r} edit ({exc})") from None
        self.edit_frames(edit, where)
        self.time(e["created_at"], f"{where} created_at")
        self.text(e["status"], f"{where} status", EDIT_STATUSES)
        self.text(e["summary"], f"{where} summary")
        if not isinstance(e["result"], dict):
            raise self.fail(f"{where} result", f"expected an object, got {_show(e['result'])}")
        self.ints_fit(e["result"], f"{where} result")
        for j, c in enumerate(self.listed(e["changes"], f"{where} changes")):
            cw = f"{where} changes[{j}]"
            if not isinstance(c, dict):
                raise self.fail(cw, f"expected an object, got {_show(c)}")
            table = self.text(c["table"], f"{cw} table", tuple(STATE_TABLES))
            for part in ("before", "after"):
                self.state_row(table, c["key"], c[part], f"{cw} {part}")
        return e

    def edit_frames(self, edit: Edit, where: str) -> None:
        # The same check apply() makes for a flag edit (the CSV import goes through it).
        rows = getattr(edit, "rows", None)
        if rows is None and hasattr(edit, "frames"):
            rows = [(edit.key, f, edit.flag) for f in edit.frames]  # type: ignore[attr-defined]
        for key, frame, _flag in rows or ():
            self.tracklet(key, f"{where} params")
            problem = frame_problem(key, frame, self.base[key][1])
            if problem:
                raise self.fail(f"{where} params", problem)

    def event(self, ev: Any, i: int) -> tuple[int, int, str, str]:
        where = f"events[{i}]"
        if not isinstance(ev, dict):
            raise self.fail(where, f"expected an object, got {_show(ev)}")
        return (
            self.integer(ev["id"], f"{where} id", minimum=1),
            self.integer(ev["edit"], f"{where} edit", minimum=1),
            self.text(ev["action"], f"{where} action", EVENT_ACTIONS),
            self.time(ev["at"], f"{where} at"),
        )


def check_dump(data: Any, src: Path) -> dict[str, Any]:
    """The parts of an export, every value checked (see the module docstring).

    Returns:
        ``base`` (rows), ``fingerprint``, ``name``, ``state`` (table -> rows), ``edits``,
        ``events`` (tuples), ``revision`` and ``created_at``.

    Raises:
        AnnotationError: naming ``src`` and the field at fault.
    """
    check = DumpChecker(src)
    if not isinstance(data, dict):
        raise AnnotationError(src, "is not an annotation export (not a JSON object)")
    try:
        dataset = data["dataset"]
        if not isinstance(dataset, dict):
            raise check.fail("dataset", f"expected an object, got {_show(dataset)}")
        fingerprint, name = dataset["fingerprint"], dataset["name"]
        for field, value in (("fingerprint", fingerprint), ("name", name)):
            if value is not None:
                check.text(value, f"dataset {field}")
        out: dict[str, Any] = {"fingerprint": fingerprint, "name": name}
        out["base"] = check.base_rows(data["base"])
        out["state"] = check.state(data)
        out["edits"] = [check.edit(e, i) for i, e in enumerate(check.listed(data["edits"], "edits"))]
        out["events"] = [check.event(ev, i) for i, ev in enumerate(check.listed(data["events"], "events"))]
        out["revision"] = check.integer(data.get("revision", 0), "revision", minimum=0)
        created = data.get("created_at")
        out["created_at"] = check.time(created, "created_at") if created else None
    except KeyError as exc:
        raise AnnotationError(src, f"is not an annotation export (missing {exc})") from None
    return out
