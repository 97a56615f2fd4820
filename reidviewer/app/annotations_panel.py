"""Annotations in the viewer: flag frames and tracklets, merge and relabel identities, undo/redo.

``AnnotationController`` owns the dataset's ``AnnotationStore`` while a session is shown, the
``QUndoStack`` (every edit is a ``QUndoCommand`` that calls ``store.apply`` on its first redo,
``store.reapply`` on later redos and ``store.revert`` on undo), the keyboard actions (Q, O, M,
Ctrl+Z, Ctrl+Shift+Z), the context menus of the players, the query list and the ranked tiles,
and the Annotations tab (``AnnotationsPanel``: history, read-only state, export/import).

After each edit, undo or redo the session is updated from the store — its frame flags; for
identity edits (merge, relabel, split, tracklet flags) the shown results re-ranked from their
stored features with the corrected pids (``relabel_results``) — and the ``ViewerState`` says
``annotations_changed``: every view refreshes itself, so true-match marks and metrics change
at once without re-running the network. Tracklets flagged junk/exclude leave the evaluation the next time results are
computed (re-open), since that changes which rows exist.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QAction, QUndoCommand, QUndoStack
from PySide6.QtWidgets import (
    QCheckBox,
    QGridLayout,
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from reidviewer.annotations import (
    FRAME_FLAGS, TRACKLET_FLAGS, AnnotationError, AnnotationStore, Edit, FlagFrames, FlagTracklets, Merge, Relabel,
    SetNote, Split, apply_annotations,
)
from reidviewer.annotations import exchange
from reidviewer.annotations.store import _ZERO_HASH
from reidviewer.app.state import ViewerState
from reidviewer.app.tasks import describe_failure
from reidviewer.data.tracklet import Tracklet
from reidviewer.engine.results import relabel_results
from reidviewer.errors import ReidViewerError

#: How frame flags read in the player band.
FLAG_LABELS = {"occluded": "occluded", "bad_crop": "bad crop", "wrong_person": "wrong person"}
#: Edits that change identities or split membership (the shown results are re-ranked).
IDENTITY_EDITS = (Relabel, Merge, Split, FlagTracklets)
#: QSettings key: ask before M merges.
CONFIRM_MERGE_KEY = "annotations/confirm_merge"


def flag_label(flags: frozenset[str] | set[str]) -> str:
    """``{"occluded", "bad_crop"}`` -> ``"bad crop, occluded"`` (stable order)."""
    return ", ".join(FLAG_LABELS.get(f, f) for f in sorted(flags))


class EditCommand(QUndoCommand):
    """One annotation edit on the undo stack."""

    def __init__(self, controller: AnnotationController, edit: Edit) -> None:
        super().__init__(edit.describe())
        self.controller = controller
        self.edit = edit
        self.edit_id: int | None = None

    def redo(self) -> None:
        c = self.controller
        try:
            if self.edit_id is None:
                self.edit_id = c.store.apply(self.edit)
            else:
                c.store.reapply(self.edit_id)
        except AnnotationError as exc:
            # A refused first apply never enters the stack (Qt deletes obsolete commands).
            c.report_error(str(exc))
            if self.edit_id is None:
                self.setObsolete(True)
            return
        c.after_change(self.edit)

    def undo(self) -> None:
        c = self.controller
        try:
            c.store.revert(self.edit_id)
        except AnnotationError as exc:
            c.report_error(str(exc))
            return
        c.after_change(self.edit)


class AnnotationsPanel(QWidget):
    """The Annotations tab: the store's mode, the edit history and exchange buttons."""

    def __init__(self, controller: AnnotationController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.mode = QLabel("No dataset open.")
        self.mode.setWordWrap(True)
        self.history = QListWidget()
        self.history.setWordWrap(True)  # long keys wrap instead of being cut off
        self.history.setTextElideMode(Qt.TextElideMode.ElideNone)
        self.undo_button = QPushButton("Undo")
        self.redo_button = QPushButton("Redo")
        self.undo_button.clicked.connect(controller.stack.undo)
        self.redo_button.clicked.connect(controller.stack.redo)
        controller.stack.canUndoChanged.connect(self.undo_button.setEnabled)
        controller.stack.canRedoChanged.connect(self.redo_button.setEnabled)
        self.undo_button.setEnabled(False)
        self.redo_button.setEnabled(False)
        self.export_json_button = QPushButton("Export JSON…")
        self.import_json_button = QPushButton("Import JSON…")
        self.export_csv_button = QPushButton("Export frame-flags CSV…")
        self.export_json_button.clicked.connect(self._ask_export_json)
        self.import_json_button.clicked.connect(self._ask_import_json)
        self.export_csv_button.clicked.connect(self._ask_export_csv)
        self.export_csv_button.setText("Export frame flags (CSV)…")
        row = QHBoxLayout()
        row.addWidget(self.undo_button)
        row.addWidget(self.redo_button)
        row.addStretch(1)
        # Two rows: three buttons side by side do not fit the side dock.
        exchange_row = QGridLayout()
        exchange_row.addWidget(self.export_json_button, 0, 0)
        exchange_row.addWidget(self.import_json_button, 0, 1)
        exchange_row.addWidget(self.export_csv_button, 1, 0, 1, 2)
        layout = QVBoxLayout(self)
        layout.addWidget(self.mode)
        layout.addLayout(row)
        layout.addWidget(QLabel("Edit history (oldest first):"))
        layout.addWidget(self.history, 1)
        layout.addLayout(exchange_row)
        help_text = QLabel("Q: flag probe frame occluded · O: bad crop · M: merge the selected retrieval into the "
                           "query's identity · right-click a player, query or tile for more · Ctrl+Z / Ctrl+Shift+Z")
        help_text.setWordWrap(True)
        help_text.setStyleSheet("color: #555;")
        layout.addWidget(help_text)
        self.refresh()

    def refresh(self) -> None:
        """Re-read the store's mode and history."""
        c = self.controller
        store = c.store
        self.history.clear()
        if store is None:
            self.mode.setText(c.problem or "No dataset open.")
            for b in (self.export_json_button, self.import_json_button, self.export_csv_button):
                b.setEnabled(False)
            return
        if store.read_only:
            self.mode.setText(f"Annotations of {store.path.name} are READ-ONLY — {store.mode_reason}")
        else:
            n = sum(1 for rec in store.history() if rec.status == "applied")
            self.mode.setText(f"Annotations: {n} edit{'s' if n != 1 else ''} applied, saved in {store.path.name}")
            self.mode.setToolTip(f"{store.path} · version {store.version()}")
        for rec in store.history():
            item = QListWidgetItem(f"#{rec.id} [{rec.status}] {rec.summary}")
            item.setToolTip(f"#{rec.id} [{rec.status}] {rec.summary}")
            item.setToolTip(f"{item.toolTip()}\n{rec.created_at:%Y-%m-%d %H:%M:%S} UTC · {rec.kind}")
            if rec.status != "applied":
                item.setForeground(Qt.GlobalColor.gray)
            self.history.addItem(item)
        self.export_json_button.setEnabled(True)
        self.export_csv_button.setEnabled(True)
        self.import_json_button.setEnabled(not store.read_only)

    def _ask_export_json(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export annotations", "annotations.json", "JSON (*.json)")
        if path:
            self.controller.export_json(path)

    def _ask_import_json(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import annotations", "", "JSON (*.json)")
        if path:
            self.controller.import_json(path)

    def _ask_export_csv(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export frame flags", "frame_flags.csv", "CSV (*.csv)")
        if path:
            self.controller.export_frame_flags_csv(path)


class AnnotationController(QObject):
    """Annotation editing on a ``ViewerState`` (see the module docstring).

    It reads the selection from the state (the query, the gallery tracklet, the probe's
    playhead) and, after an edit, undo or redo, updates the session (frame flags; for
    identity edits the re-ranked results) and tells the state, whose views refresh themselves.

    Args:
        state: the viewer state.
        workspace: where the annotation stores live.
        settings: returns the app's ``QSettings`` (remembers "don't ask before merging").
        parent: the Qt parent (the main window), for dialogs and menus.

    Signals:
        changed(): an edit, undo or redo was applied and the views refreshed.
    """

    changed = Signal()

    def __init__(self, state: ViewerState, workspace: Any, settings: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.workspace = workspace
        self.settings = settings
        self.parent_widget = parent
        self.store: AnnotationStore | None = None
        self.base_dataset = None
        self.problem = ""
        self.stack = QUndoStack(self)
        self.panel = AnnotationsPanel(self)

    # ------------------------------------------------------------------ opening
    def shortcut_handlers(self) -> dict[str, Any]:
        """Handlers for the registry's annotation actions (``shortcuts.py``)."""
        return {
            "flag_occluded": lambda: self.flag_probe_frame("occluded"),
            "flag_bad": lambda: self.flag_probe_frame("bad_crop"),
            "merge_identity": self.merge_selected,
            "undo": self.stack.undo,
            "redo": self.stack.redo,
        }

    def open_for(self, session: Any) -> None:
        """Open the store of the session's dataset and show its flags (call before filling views)."""
        self.close()
        self.stack.clear()
        self.base_dataset = getattr(session, "base_dataset", None) or session.dataset
        self.problem = ""
        try:
            self.store = AnnotationStore.for_dataset(self.workspace, self.base_dataset)
        except AnnotationError as exc:
            self.store = None
            self.problem = f"Annotations unavailable: {exc}"
        self._sync_flags(session)
        self.panel.refresh()

    def status_suffix(self) -> str:
        """What the status bar adds about the annotations (read-only, unavailable), or ``""``."""
        if self.store is not None and self.store.read_only:
            return f" · annotations read-only — {self.store.mode_reason}"
        return f" · {self.problem}" if self.problem else ""

    def close(self) -> None:
        """Close the store (releases the writer lock for another instance)."""
        if self.store is not None:
            self.store.close()
            self.store = None

    # ------------------------------------------------------------------ helpers
    def _status(self, text: str) -> None:
        self.state.set_status(text)

    def report_error(self, message: str) -> None:
        """Show an edit that the store refused."""
        self._status(f"annotation not applied: {message}")

    def _writable(self) -> bool:
        if self.state.session is None:
            return False
        if self.store is None:
            self._status(self.problem or "no annotation store open")
            return False
        if self.store.read_only:
            self._status(f"annotations are read-only — {self.store.mode_reason}")
            return False
        return True

    def push(self, edit: Edit) -> bool:
        """Apply an edit through the undo stack. Returns False when it was refused."""
        if not self._writable():
            return False
        before = self.stack.count()
        self.stack.push(EditCommand(self, edit))
        return self.stack.count() > before

    def version(self) -> str | None:
        """The store's version, or ``None`` when it holds no annotations (as ``open_annotated``)."""
        if self.store is None or self.store.content_hash() == _ZERO_HASH:
            return None
        return self.store.version()

    def probe_tracklet(self) -> Tracklet | None:
        return self.state.tracklet("probe")

    def gallery_tracklet(self) -> Tracklet | None:
        return self.state.tracklet("gallery")

    # ------------------------------------------------------------------ actions
    def flag_probe_frame(self, flag: str) -> bool:
        """Q / O: toggle ``flag`` on the probe player's current frame."""
        t = self.probe_tracklet()
        return t is not None and self.toggle_frame_flag(t, self.state.frames["probe"], flag)

    def toggle_frame_flag(self, t: Tracklet, frame: int, flag: str) -> bool:
        """Set ``flag`` on a frame (0-based), or clear it if it is set."""
        if self.store is None:
            return self._writable()
        on = flag in self.store.frame_flags_of(t.key).get(frame, frozenset())
        return self.push(FlagFrames(t.key, (int(frame),), flag, clear=on))

    def toggle_tracklet_flag(self, t: Tracklet, flag: str) -> bool:
        """Set or clear a tracklet flag (junk, distractor, exclude)."""
        if self.store is None:
            return self._writable()
        on = flag in self.store.tracklet_flags_of(t.key)
        return self.push(FlagTracklets((t.key,), flag, clear=on))

    def flag_tracklets(self, keys: list[str], flag: str, clear: bool = False) -> bool:
        """Set (or clear) a tracklet flag on many tracklets at once: one undoable edit (the map's lasso)."""
        if self.store is None:
            return self._writable()
        if not keys:
            return False
        return self.push(FlagTracklets(tuple(keys), flag, clear=clear))

    def confirm_merge_enabled(self) -> bool:
        value = self.settings().value(CONFIRM_MERGE_KEY, True)
        return value not in (False, "false", "0", 0)

    def set_confirm_merge(self, on: bool) -> None:
        """Ask (or not) before M merges; remembered in the workspace's ``reidviewer.ini``."""
        self.settings().setValue(CONFIRM_MERGE_KEY, bool(on))

    def merge_selected(self) -> bool:
        """M: merge the selected retrieval's identity into the query's (after a confirm)."""
        q, g = self.probe_tracklet(), self.gallery_tracklet()
        if q is None or g is None:
            self._status("select a query and a retrieval to merge")
            return False
        return self.merge_into_query(g)

    def merge_into_query(self, g: Tracklet) -> bool:
        q = self.probe_tracklet()
        if q is None or not self._writable():
            return False
        keep, absorb = self.store.pid_of(q.key), self.store.pid_of(g.key)
        if keep == absorb:
            self._status(f"{g.person} ({g.camera}) is already identity {keep}")
            return False
        if self.confirm_merge_enabled():
            box = QMessageBox(QMessageBox.Icon.Question, "Merge identities",
                              f"Merge identity {absorb} (every tracklet of it, incl. {g.person} {g.camera}) "
                              f"into the query's identity {keep}?",
                              QMessageBox.StandardButton.Ok | QMessageBox.StandardButton.Cancel, self.parent_widget)
            dont_ask = QCheckBox("Don't ask again")
            box.setCheckBox(dont_ask)
            if box.exec() != QMessageBox.StandardButton.Ok:
                return False
            if dont_ask.isChecked():
                self.set_confirm_merge(False)
        return self.push(Merge(keep=keep, absorb=absorb))

    def relabel(self, t: Tracklet) -> bool:
        if not self._writable():
            return False
        pid, ok = QInputDialog.getInt(self.parent_widget, "Relabel", f"New identity for {t.key}:",
                                      self.store.pid_of(t.key), -(2**31), 2**31 - 1)
        return ok and self.push(Relabel((t.key,), pid))

    def note(self, t: Tracklet) -> bool:
        if not self._writable():
            return False
        text, ok = QInputDialog.getMultiLineText(self.parent_widget, "Note", f"Note on {t.key} (empty deletes it):",
                                                 self.store.note("tracklet", t.key))
        return ok and self.push(SetNote("tracklet", t.key, text))

    # ------------------------------------------------------------------ exchange
    def export_json(self, path: str | Path) -> None:
        if self.store is not None:
            self._write(lambda: exchange.export_json(self.store, path), f"annotations exported to {path}")

    def export_frame_flags_csv(self, path: str | Path) -> None:
        if self.store is not None:
            self._write(lambda: exchange.export_frame_flags_csv(self.store, path), f"frame flags exported to {path}")

    def _write(self, fn, done: str) -> None:
        try:
            fn()
        except (OSError, ReidViewerError) as exc:
            QMessageBox.warning(self.parent_widget, "reidviewer", describe_failure(exc))
            return
        self._status(done)

    def import_json(self, path: str | Path) -> None:
        if not self._writable():
            return
        try:
            exchange.import_json(self.store, path)
            self.store.attach(self.base_dataset)
        except AnnotationError as exc:
            QMessageBox.warning(self.parent_widget, "reidviewer", str(exc))
            return
        self.stack.clear()  # imported history is in the store, not on this session's undo stack
        self.refresh(identity=True)
        self._status(f"annotations imported from {path}")

    # ------------------------------------------------------------------ refreshing
    def _sync_flags(self, session: Any) -> None:
        flags: dict[int, dict[int, str]] = {}
        if self.store is not None:
            index_of = {t.key: t.index for t in self.base_dataset.tracklets}
            for key, frames in self.store.frame_flags().items():
                i = index_of.get(key)
                if i is not None:
                    flags[i] = {f: flag_label(fl) for f, fl in frames.items()}
        session.frame_flag_map = flags

    def after_change(self, edit: Edit) -> None:
        """Refresh every view after an edit, undo or redo."""
        self.refresh(identity=isinstance(edit, IDENTITY_EDITS))

    def refresh(self, identity: bool = True) -> None:
        """Update the session from the store and tell the state; ``identity``: re-rank the
        results with the corrected pids too."""
        s = self.state.session
        if s is None or self.store is None:
            return
        self._sync_flags(s)
        version = self.version()
        if identity:
            s.dataset = apply_annotations(self.base_dataset, self.store)
            s.results = relabel_results(s.results, s.dataset, version)
            s.invalidate()
        self.panel.refresh()
        self.state.annotations_updated(identity, version)
        self.changed.emit()

    # ------------------------------------------------------------------ context menus
    def tracklet_menu(self, t: Tracklet, frame: int | None = None, merge: bool = False) -> QMenu:
        """The context menu of a tracklet (with a frame, 0-based: its frame flags too)."""
        menu = QMenu(self.parent_widget)
        store = self.store
        enabled = store is not None and not store.read_only
        if frame is not None:
            have = store.frame_flags_of(t.key).get(frame, frozenset()) if store else frozenset()
            for flag in FRAME_FLAGS:
                a = QAction(f"Frame {frame + 1}: {FLAG_LABELS[flag]}", menu)
                a.setCheckable(True)
                a.setChecked(flag in have)
                a.setEnabled(enabled)
                a.triggered.connect(lambda _=False, fl=flag: self.toggle_frame_flag(t, frame, fl))
                menu.addAction(a)
            menu.addSeparator()
        have_t = store.tracklet_flags_of(t.key) if store else frozenset()
        for flag in TRACKLET_FLAGS:
            a = QAction(f"Tracklet: {flag}", menu)
            a.setCheckable(True)
            a.setChecked(flag in have_t)
            a.setEnabled(enabled)
            a.triggered.connect(lambda _=False, fl=flag: self.toggle_tracklet_flag(t, fl))
            menu.addAction(a)
        menu.addSeparator()
        if merge:
            a = QAction("Merge into the query's identity (M)", menu)
            a.setEnabled(enabled)
            a.triggered.connect(lambda: self.merge_into_query(t))
            menu.addAction(a)
        for text, fn in (
            ("Relabel identity…", lambda: self.relabel(t)),
            ("Split off as a new identity", lambda: self.push(Split((t.key,)))),
            ("Note…", lambda: self.note(t)),
        ):
            a = QAction(text, menu)
            a.setEnabled(enabled)
            a.triggered.connect(fn)
            menu.addAction(a)
        return menu

    def show_player_menu(self, player: str, global_pos: Any) -> None:
        """The menu of the probe's or the gallery player's tracklet and current frame."""
        t = self.state.tracklet(player)
        if t is not None:
            self.tracklet_menu(t, self.state.frames[player], merge=player == "gallery").exec(global_pos)

    def show_gallery_menu(self, gallery_row: int, global_pos: Any) -> None:
        """The menu of a gallery tracklet (a ranked tile)."""
        if self.state.session is not None:
            self.tracklet_menu(self.state.session.gallery_tracklet(gallery_row), merge=True).exec(global_pos)

    def show_query_menu(self, query_row: int, global_pos: Any) -> None:
        """The menu of a query tracklet (the query list)."""
        if self.state.session is not None:
            self.tracklet_menu(self.state.session.query_tracklet(query_row)).exec(global_pos)
