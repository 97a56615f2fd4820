"""Annotation edits: small immutable value objects the store applies, undoes and redoes.

An edit says *what the user asked for* ("merge identity 12 into 7"); the store turns it into
row changes (before/after of each row it touched) and keeps those, so undo and redo restore
the exact previous state whatever the edit was. Edits name tracklets by ``Tracklet.key``
(a path relative to the dataset root), never by index, so they survive re-opening the dataset.

Kinds:

- :class:`Relabel` -- give tracklets another identity (pid).
- :class:`Merge` -- every tracklet of identity ``absorb`` takes identity ``keep``.
- :class:`Split` -- tracklets move to a new identity with a fresh pid, unused elsewhere.
- :class:`FlagFrames` / :class:`BulkFrameFlags` -- set or clear frame flags
  (``occluded``, ``bad_crop``, ``wrong_person``).
- :class:`FlagTracklets` -- set or clear tracklet flags (``junk``, ``distractor``, ``exclude``).
- :class:`SetNote` -- free-text note on a tracklet (by key) or an identity (by pid); empty
  text deletes it.
"""
from __future__ import annotations

import operator
from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from reidviewer.errors import ReidViewerError

#: Frame flags: the person is hidden in part, the crop is unusable, the crop shows someone else.
FRAME_FLAGS: tuple[str, ...] = ("occluded", "bad_crop", "wrong_person")
#: Tracklet flags. ``junk`` and ``exclude`` take the tracklet out of every split;
#: ``distractor`` keeps it in the gallery only, as pid 0 (see ``apply_annotations``).
TRACKLET_FLAGS: tuple[str, ...] = ("junk", "distractor", "exclude")
#: What a note can be attached to.
NOTE_TARGETS: tuple[str, ...] = ("tracklet", "identity")


class AnnotationError(ReidViewerError):
    """An annotation store, edit or exchange file problem the user can act on.

    Args:
        path: the store or exchange file at fault, or ``None`` when no file is involved
            (an invalid edit).
        problem: what is wrong, in plain words.
    """

    def __init__(self, path: str | Path | None, problem: str) -> None:
        self.path = Path(path) if path is not None else None
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path is not None else problem)


def _keys(value: str | Iterable[str], what: str) -> tuple[str, ...]:
    # Accept one key or any iterable of keys; a bare string is one key, not its characters.
    keys = (value,) if isinstance(value, str) else tuple(value)
    if not keys:
        raise AnnotationError(None, f"{what}: no tracklet keys given")
    for k in keys:
        if not isinstance(k, str) or not k:
            raise AnnotationError(None, f"{what}: tracklet keys must be non-empty strings, got {k!r}")
    # Keep the caller's order (history reads naturally) but drop repeats.
    return tuple(dict.fromkeys(keys))


def _pid(value: Any, what: str) -> int:
    # operator.index accepts int and numpy integers but not floats or strings; bool is refused
    # because True as a pid is always a bug.
    if isinstance(value, bool):
        raise AnnotationError(None, f"{what}: expected an integer, got {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise AnnotationError(None, f"{what}: expected an integer, got {value!r}") from None


def _flag(value: str, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise AnnotationError(None, f"{what}: unknown flag {value!r}; expected one of {', '.join(allowed)}")
    return value


@dataclass(frozen=True)
class Edit:
    """Base class of every edit. Subclasses are frozen dataclasses with a ``kind`` name."""

    kind: ClassVar[str] = ""

    def params(self) -> dict[str, Any]:
        """The edit's fields as JSON-ready values (tuples become lists)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, tuple):
                v = [list(x) if isinstance(x, tuple) else x for x in v]
            out[f.name] = v
        return out

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Edit:
        """Rebuild an edit from :meth:`params` output (used by history and import)."""
        return cls(**params)

    def describe(self) -> str:
        """One line for the history list."""
        raise NotImplementedError


@dataclass(frozen=True)
class Relabel(Edit):
    """Give tracklets identity ``pid`` (an existing identity, or any integer).

    Attributes:
        keys: tracklet keys (one key or several).
        pid: the identity they take.
    """

    kind: ClassVar[str] = "relabel"
    keys: tuple[str, ...]
    pid: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "keys", _keys(self.keys, "relabel"))
        object.__setattr__(self, "pid", _pid(self.pid, "relabel"))

    def describe(self) -> str:
        return f"Relabel {_count(self.keys)} as identity {self.pid}"


@dataclass(frozen=True)
class Merge(Edit):
    """Merge two identities: every tracklet that currently has pid ``absorb`` takes ``keep``.

    Attributes:
        keep: the identity that stays.
        absorb: the identity that disappears into ``keep``.
    """

    kind: ClassVar[str] = "merge"
    keep: int
    absorb: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "keep", _pid(self.keep, "merge"))
        object.__setattr__(self, "absorb", _pid(self.absorb, "merge"))
        if self.keep == self.absorb:
            raise AnnotationError(None, f"merge: identity {self.keep} cannot be merged with itself")

    def describe(self) -> str:
        return f"Merge identity {self.absorb} into {self.keep}"


@dataclass(frozen=True)
class Split(Edit):
    """Move tracklets to a new identity; the store picks a fresh pid (max pid in use + 1).

    Attributes:
        keys: tracklet keys to split off together.
    """

    kind: ClassVar[str] = "split"
    keys: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "keys", _keys(self.keys, "split"))

    def describe(self) -> str:
        return f"Split {_count(self.keys)} into a new identity"


@dataclass(frozen=True)
class FlagFrames(Edit):
    """Set (or with ``clear=True`` remove) one flag on frames of one tracklet.

    Attributes:
        key: the tracklet key.
        frames: frame indices (0-based positions in ``Tracklet.frames``).
        flag: one of :data:`FRAME_FLAGS`.
        clear: remove the flag instead of setting it.
    """

    kind: ClassVar[str] = "flag_frames"
    key: str
    frames: tuple[int, ...]
    flag: str
    clear: bool = False

    def __post_init__(self) -> None:
        (key,) = _keys(self.key, "flag frames")
        object.__setattr__(self, "key", key)
        frames = (self.frames,) if isinstance(self.frames, int) else tuple(self.frames)
        if not frames:
            raise AnnotationError(None, "flag frames: no frame indices given")
        object.__setattr__(self, "frames", tuple(sorted({_pid(f, "flag frames") for f in frames})))
        _flag(self.flag, FRAME_FLAGS, "flag frames")
        object.__setattr__(self, "clear", bool(self.clear))

    def describe(self) -> str:
        verb = "Unflag" if self.clear else "Flag"
        n = len(self.frames)
        what = f"frame {self.frames[0] + 1}" if n == 1 else f"{n} frames"  # people count frames from 1
        return f"{verb} {what} of {self.key} as {self.flag}"


@dataclass(frozen=True)
class BulkFrameFlags(Edit):
    """Set (or clear) many frame flags at once, as one undoable edit (CSV import).

    Attributes:
        rows: ``(tracklet key, frame index, flag)`` triples.
        clear: remove the flags instead of setting them.
    """

    kind: ClassVar[str] = "bulk_frame_flags"
    rows: tuple[tuple[str, int, str], ...]
    clear: bool = False

    def __post_init__(self) -> None:
        rows = []
        for row in self.rows:
            try:
                key, frame, flag = row
            except (TypeError, ValueError):
                raise AnnotationError(None, f"frame flags: expected (key, frame, flag), got {row!r}") from None
            (key,) = _keys(key, "frame flags")
            rows.append((key, _pid(frame, "frame flags"), _flag(flag, FRAME_FLAGS, "frame flags")))
        if not rows:
            raise AnnotationError(None, "frame flags: no rows given")
        object.__setattr__(self, "rows", tuple(sorted(set(rows))))
        object.__setattr__(self, "clear", bool(self.clear))

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Edit:
        return cls(rows=tuple(tuple(r) for r in params["rows"]), clear=params.get("clear", False))

    def describe(self) -> str:
        verb = "Unflag" if self.clear else "Flag"
        return f"{verb} {len(self.rows)} frame flag(s) in {len({r[0] for r in self.rows})} tracklet(s)"


@dataclass(frozen=True)
class FlagTracklets(Edit):
    """Set (or with ``clear=True`` remove) one flag on tracklets.

    Attributes:
        keys: tracklet keys.
        flag: one of :data:`TRACKLET_FLAGS`.
        clear: remove the flag instead of setting it.
    """

    kind: ClassVar[str] = "flag_tracklets"
    keys: tuple[str, ...]
    flag: str
    clear: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "keys", _keys(self.keys, "flag tracklets"))
        _flag(self.flag, TRACKLET_FLAGS, "flag tracklets")
        object.__setattr__(self, "clear", bool(self.clear))

    def describe(self) -> str:
        verb = "Unflag" if self.clear else "Flag"
        return f"{verb} {_count(self.keys)} as {self.flag}"


@dataclass(frozen=True)
class SetNote(Edit):
    """Write (replace) the note on a tracklet or an identity; empty text deletes the note.

    Attributes:
        target: ``"tracklet"`` or ``"identity"``.
        ref: the tracklet key, or the identity's pid.
        text: the note.
    """

    kind: ClassVar[str] = "note"
    target: str
    ref: str | int
    text: str

    def __post_init__(self) -> None:
        if self.target not in NOTE_TARGETS:
            raise AnnotationError(None, f"note: target must be one of {', '.join(NOTE_TARGETS)}, got {self.target!r}")
        if self.target == "identity":
            object.__setattr__(self, "ref", _pid(self.ref, "note"))
        else:
            (key,) = _keys(self.ref, "note")
            object.__setattr__(self, "ref", key)
        if not isinstance(self.text, str):
            raise AnnotationError(None, f"note: text must be a string, got {type(self.text).__name__}")

    def describe(self) -> str:
        what = f"identity {self.ref}" if self.target == "identity" else str(self.ref)
        return f"{'Delete note on' if not self.text else 'Note on'} {what}"


def _count(keys: tuple[str, ...]) -> str:
    return keys[0] if len(keys) == 1 else f"{len(keys)} tracklets"


#: Every edit class by its ``kind`` name (history and import rebuild edits through it).
EDIT_KINDS: dict[str, type[Edit]] = {
    cls.kind: cls for cls in (Relabel, Merge, Split, FlagFrames, BulkFrameFlags, FlagTracklets, SetNote)
}


def edit_from_params(kind: str, params: dict[str, Any]) -> Edit:
    """Rebuild an edit from its kind name and :meth:`Edit.params`."""
    try:
        cls = EDIT_KINDS[kind]
    except KeyError:
        raise AnnotationError(None, f"unknown edit kind {kind!r}") from None
    return cls.from_params(dict(params))


@dataclass(frozen=True)
class EditRecord:
    """An edit as the store recorded it (history rows, and what undo/redo return).

    Attributes:
        id: the edit id (increasing in the order edits were made).
        edit: the edit itself.
        created_at: when it was first applied (ISO 8601, UTC).
        status: ``"applied"``, ``"undone"`` (can be redone) or ``"dropped"`` (undone, then a
            new edit was made, so it can no longer be redone; kept for the record).
        summary: one line for the history list, with what it changed.
        result: what the store decided (``{"pid": 1234}`` for a split) and ``changed``, the
            number of rows it changed.
    """

    id: int
    edit: Edit
    created_at: datetime
    status: str
    summary: str
    result: dict[str, Any]

    @property
    def kind(self) -> str:
        """The edit's kind name."""
        return self.edit.kind
