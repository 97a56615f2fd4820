"""Annotations: the SQLite annotation store, its edits, and how they apply to datasets.

``AnnotationStore`` (``store.py``) holds one dataset's corrections with undo/redo and a full
history; ``apply_annotations`` (``apply.py``) gives the corrected dataset view that training and
evaluation use; ``exchange.py`` exports/imports JSON and CSV. How well attention singles out flagged frames
is evaluation work: ``reidviewer.engine.audit``. No Qt here.
"""
from __future__ import annotations

from reidviewer.annotations.apply import apply_annotations, frame_selection, kept_frames
from reidviewer.annotations.edits import (
    FRAME_FLAGS,
    NOTE_TARGETS,
    TRACKLET_FLAGS,
    AnnotationError,
    BulkFrameFlags,
    Edit,
    EditRecord,
    FlagFrames,
    FlagTracklets,
    Merge,
    Relabel,
    SetNote,
    Split,
)
from reidviewer.annotations.store import AnnotationStore

__all__ = [
    "FRAME_FLAGS",
    "NOTE_TARGETS",
    "TRACKLET_FLAGS",
    "AnnotationError",
    "AnnotationStore",
    "BulkFrameFlags",
    "Edit",
    "EditRecord",
    "FlagFrames",
    "FlagTracklets",
    "Merge",
    "Relabel",
    "SetNote",
    "Split",
    "apply_annotations",
    "frame_selection",
    "kept_frames",
]
