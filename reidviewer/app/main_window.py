"""The main window: query list | probe and gallery players with attention plots | ranked list,
with Failures and Metrics tabs. It only draws and reacts; decoding and computing run in
workers (see ``workers.py`` and ``frame_loader.py``).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSettings, Qt, QThreadPool, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QProgressDialog,
    QScrollArea,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from reidviewer.app import viewmodel
from reidviewer.app.annotations_panel import AnnotationController
from reidviewer.app.attention_plot import AttentionPlot
from reidviewer.app.failures_view import FailuresView
from reidviewer.app.frame_loader import FrameLoader
from reidviewer.app.metrics_panel import MetricsPanel
from reidviewer.app.player import Player, match_border
from reidviewer.app.query_list import QueryList
from reidviewer.app.ranked_view import RankedView
from reidviewer.app.shortcuts import SHORTCUTS, help_rows
from reidviewer.app.training_panel import TrainingPanel
from reidviewer.app.workers import Job, start_job


def _scrollable(widget: QWidget) -> QScrollArea:
    """``widget`` in a frameless, resizable scroll area."""
    area = QScrollArea()
    area.setWidget(widget)
    area.setWidgetResizable(True)
    area.setFrameShape(QScrollArea.Shape.NoFrame)
    return area


class ShortcutHelp(QDialog):
    """The list of keyboard shortcuts (? or F1)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        rows = help_rows()
        table = QTableWidget(len(rows), 3)
        table.setHorizontalHeaderLabels(["", "keys", "action"])
        for i, (group, keys, text) in enumerate(rows):
            for j, v in enumerate((group, keys, text)):
                table.setItem(i, j, QTableWidgetItem(v))
        table.resizeColumnsToContents()
        table.verticalHeader().setVisible(False)
        table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        layout = QVBoxLayout(self)
        layout.addWidget(table)
        self.resize(520, 520)


class MainWindow(QMainWindow):
    """The reidviewer main window.

    Args:
        workspace: the workspace (caches, results).
        open_request: what to open once shown: ``viewmodel.OpenRequest`` (dataset root, name,
            protocol, checkpoint, split) or ``None`` for an empty window.

    Signals:
        results_shown(): results were loaded into every view (tests wait on it).
        query_shown(int): the ranked list of a query was painted.
    """

    results_shown = Signal()
    query_shown = Signal(int)

    def __init__(self, workspace, open_request: viewmodel.OpenRequest | None = None) -> None:
        super().__init__()
        self.workspace = workspace
        self.setWindowTitle("reidviewer")
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)  # one heavy job at a time; frame decoding has its own pool
        self.loader = FrameLoader(parent=self)
        self.session: viewmodel.Session | None = None
        self.current_query: int | None = None
        self.current_gallery: int | None = None
        self.iteration = 0
        self.job: Job | None = None
        self.last_query_switch_ms = 0.0

        self._build_players()
        self._build_docks()
        self._build_menus()
        self._build_shortcuts()
        self._build_status()
        self.resize(1280, 800)
        if open_request is not None:
            QTimer.singleShot(0, lambda: self.open(open_request))

    # ------------------------------------------------------------------ layout
    def _build_players(self) -> None:
        self.probe = Player("Probe (query)", self.loader)
        self.gallery = Player("Gallery", self.loader)
        self.probe_plot = AttentionPlot()
        self.gallery_plot = AttentionPlot()
        self.probe.frame_changed.connect(self._on_probe_frame)
        self.gallery.frame_changed.connect(self.gallery_plot.set_playhead)
        self.probe_plot.seek.connect(self.probe.set_frame)
        self.gallery_plot.seek.connect(self.gallery.set_frame)
        self.sync = QCheckBox("sync players")
        self.sync.setChecked(True)
        self.sync.setToolTip("Play, pause and step both players together")

        left = QVBoxLayout()
        left.addWidget(self.probe, 3)
        left.addWidget(self.probe_plot, 2)
        right = QVBoxLayout()
        right.addWidget(self.gallery, 3)
        right.addWidget(self.gallery_plot, 2)
        players = QHBoxLayout()
        players.addLayout(left, 1)
        players.addLayout(right, 1)
        top = QWidget()
        col = QVBoxLayout(top)
        col.setContentsMargins(2, 2, 2, 2)
        col.addLayout(players, 1)
        row = QHBoxLayout()
        self.iteration_label = QLabel("")
        self.iteration_label.setMinimumWidth(10)
        row.addWidget(self.sync)
        row.addStretch(1)
        row.addWidget(self.iteration_label)
        col.addLayout(row)

        self.ranked = RankedView(self.loader)
        self.ranked.retrieval_clicked.connect(self.show_gallery)
        self.ranked.top_k_changed.connect(lambda _k: self._refresh_ranked())
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(top)
        split.addWidget(self.ranked)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        split.setSizes([560, 240])
        self.setCentralWidget(split)

    def _build_docks(self) -> None:
        self.queries = QueryList()
        self.queries.query_selected.connect(self.show_query)
        dock = QDockWidget("Queries", self)
        dock.setObjectName("queries")
        dock.setMinimumWidth(255)  # room for every column of the list
        dock.setWidget(self.queries)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, dock)

        self.tabs = QTabWidget()
        self.failures = FailuresView(self.loader)
        self.failures.case_activated.connect(self._open_failure)
        self.failures.export_requested.connect(self.export_failures_batch)
        self.metrics = MetricsPanel()
        self.tabs.addTab(self.failures, "Failures")
        self.tabs.addTab(self.metrics, "Metrics")
        self.annotations = AnnotationController(self)
        self.tabs.addTab(_scrollable(self.annotations.panel), "Annotations")
        self.training = TrainingPanel(self.workspace)
        self.training.open_requested.connect(self.open)
        # Form-heavy panels scroll instead of widening the window past 1280 px.
        self.tabs.addTab(_scrollable(self.training), "Training")
        side = QDockWidget("Analysis", self)
        side.setObjectName("analysis")
        side.setWidget(self.tabs)
        side.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, side)
        self.resizeDocks([dock, side], [265, 372], Qt.Orientation.Horizontal)

    def _build_menus(self) -> None:
        m = self.menuBar().addMenu("&File")
        a = QAction("Open &dataset…", self)
        a.triggered.connect(self._ask_open_dataset)
        m.addAction(a)
        a = QAction("Open &checkpoint…", self)
        a.triggered.connect(self._ask_open_checkpoint)
        m.addAction(a)
        self.recent_menu = m.addMenu("Open &recent")
        self._fill_recent()
        m.addSeparator()
        exp = m.addMenu("&Export figure")
        for kind, text in (("auto", "From the current view…\tCtrl+E"), ("ranking", "Ranked retrievals…"),
                           ("failures", "Failure cases…"), ("attention", "Attention strip…"), ("cmc", "CMC curve…")):
            a = QAction(text, self)
            a.triggered.connect(lambda _=False, k=kind: self.export_figure(k))
            exp.addAction(a)
        m.addSeparator()
        a = QAction("&Quit", self)
        a.setShortcut(QKeySequence.StandardKey.Quit)
        a.triggered.connect(self.close)
        m.addAction(a)
        h = self.menuBar().addMenu("&Help")
        a = QAction("&Keyboard shortcuts", self)
        a.triggered.connect(self.show_help)
        h.addAction(a)

    def _build_shortcuts(self) -> None:
        handlers = {
            "play_pause": self.toggle_play,
            "step_back": lambda: self.step(-1),
            "step_forward": lambda: self.step(1),
            "first_frame": lambda: self.seek_both(0),
            "last_frame": lambda: self.seek_both(10**9),
            "prev_query": lambda: self.queries.move(-1),
            "next_query": lambda: self.queries.move(1),
            "prev_iteration": lambda: self.set_iteration(self.iteration - 1),
            "next_iteration": lambda: self.set_iteration(self.iteration + 1),
            "help": self.show_help,
            "export_figure": self.export_figure,
            "open_dataset": self._ask_open_dataset,
            **self.annotations.shortcut_handlers(),
        }
        self.shortcuts: dict[str, list[QShortcut]] = {}
        for s in SHORTCUTS:
            fn = handlers.get(s.action)
            if fn is None:
                continue  # bound by the panels that own them (annotation, export)
            for key in s.keys:
                sc = QShortcut(QKeySequence(key), self)
                sc.setContext(Qt.ShortcutContext.WindowShortcut)
                sc.activated.connect(fn)
                self.shortcuts.setdefault(s.action, []).append(sc)

    def _build_status(self) -> None:
        self.status_text = QLabel("")
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(240)
        self.progress.setVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setVisible(False)
        self.cancel_button.clicked.connect(self.cancel_job)
        sb = self.statusBar()
        sb.addWidget(self.status_text, 1)
        sb.addPermanentWidget(self.progress)
        sb.addPermanentWidget(self.cancel_button)

    # ------------------------------------------------------------------ opening
    def open(self, request: viewmodel.OpenRequest) -> None:
        """Open a dataset + checkpoint in the background (progress and cancel in the status bar)."""
        self.status_text.setText(f"Opening {request.describe()} …")
        self._remember_recent(request)
        workspace = self.workspace
        self._demo_dialog = None
        if request.root is None:
            from reidviewer.cli import demo_dataset_dir
            from reidviewer.data.synthwalk import is_complete

            if not is_complete(demo_dataset_dir(workspace)):
                # First launch: the demo is generated (≈ 30 s); say so in a dialog that can cancel.
                dialog = QProgressDialog("Generating the SynthWalk demo data set (first launch only)…", "Cancel", 0, 0, self)
                dialog.setWindowTitle("reidviewer — first launch")
                dialog.setMinimumDuration(0)
                dialog.canceled.connect(self.cancel_job)
                self._demo_dialog = dialog

        def work(progress, cancel):
            return viewmodel.load_session(request, workspace, progress, cancel)

        self._run(work, self._on_session, "Computing results")

    def _run(self, fn, on_done, label: str) -> None:
        if self.job is not None:
            self.job.cancel()
        job = Job(fn)
        job.signals.progress.connect(lambda d, t, text: self._on_progress(label, d, t, text))
        if getattr(self, "_demo_dialog", None) is not None:
            dialog = self._demo_dialog

            def to_dialog(d: int, t: int, text: str) -> None:
                if "SynthWalk" in text:
                    dialog.setRange(0, max(t, 1))
                    dialog.setValue(d)
                else:
                    dialog.reset()

            job.signals.progress.connect(to_dialog)
            for sig in (job.signals.finished, job.signals.failed, job.signals.cancelled):
                sig.connect(lambda *_a: dialog.reset())
        job.signals.finished.connect(on_done)
        job.signals.failed.connect(self._on_failed)
        job.signals.cancelled.connect(self._on_cancelled)
        self.job = job
        self.progress.setVisible(True)
        self.progress.setRange(0, 0)
        self.cancel_button.setVisible(True)
        start_job(job, self.pool)

    def _on_progress(self, label: str, done: int, total: int, text: str) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self.status_text.setText(f"{label}: {text}" if text else label)

    def _job_over(self) -> None:
        self.job = None
        self.progress.setVisible(False)
        self.cancel_button.setVisible(False)

    def cancel_job(self) -> None:
        """Cancel the running background job."""
        if self.job is not None:
            self.job.cancel()
            self.status_text.setText("Cancelling…")

    def _on_failed(self, message: str) -> None:
        self._job_over()
        self.status_text.setText("Failed — see the message")
        QMessageBox.warning(self, "reidviewer", message)

    def _on_cancelled(self) -> None:
        self._job_over()
        self.status_text.setText("Cancelled")

    def _on_session(self, session: viewmodel.Session) -> None:
        self._job_over()
        self.set_session(session)

    def set_session(self, session: viewmodel.Session) -> None:
        """Show a loaded dataset + results in every view."""
        self.session = session
        self.setWindowTitle(f"reidviewer — {session.title}")
        self.status_text.setText(session.status)
        self.annotations.open_for(session)  # fills session.frame_flag_map before the views read it
        self.queries.set_rows(session.query_rows())
        self.failures.set_cases(session.failure_cases(), session.num_queries)
        self.metrics.set_metrics(session.metrics(), session.per_query_ap(), session.metrics_source())
        self.metrics.set_audit(session.audit_text())
        self.training.set_viewer_dataset(session.request, session.dataset)
        self.iteration = session.num_iterations - 1
        self._update_iteration_label()
        self.results_shown.emit()
        self.queries.select_position(0)

    # ------------------------------------------------------------------ queries
    def show_query(self, query_row: int) -> None:
        """Load a query into the probe player and fill the ranked list."""
        if self.session is None:
            return
        t0 = time.perf_counter()
        s = self.session
        self.current_query = query_row
        self.loader.clear_queue()
        probe = s.query_tracklet(query_row)
        att = s.attention(probe.index)
        self.probe.set_tracklet(probe.frame_paths(), s.caption(probe), att, None, s.frame_flags(probe.index))
        self.probe_plot.set_attention(att, f"probe attention — {s.caption(probe)}", set(s.frame_flags(probe.index)))
        self.probe_plot.set_highlight(self.iteration)
        self.probe.set_iteration(self.iteration)
        rows, _, _ = s.results.ranked(query_row, 1)
        self.current_gallery = None
        if len(rows):
            self.show_gallery(int(rows[0]))  # fills the ranked list too
        else:
            self._refresh_ranked()
        self.last_query_switch_ms = (time.perf_counter() - t0) * 1000
        self.query_shown.emit(query_row)

    def _refresh_ranked(self) -> None:
        if self.session is None or self.current_query is None:
            return
        s = self.session
        ranked = s.ranked_tiles(self.current_query, self.ranked.top_k.value())
        truth = s.truth_tiles(self.current_query)
        self.ranked.show_ranking(s.ranking_header(self.current_query), ranked, truth, self.current_gallery)

    def show_gallery(self, gallery_row: int) -> None:
        """Load a gallery tracklet (a retrieval) into the gallery player."""
        if self.session is None or self.current_query is None:
            return
        s = self.session
        self.current_gallery = gallery_row
        tracklet = s.gallery_tracklet(gallery_row)
        att = s.attention(tracklet.index)
        is_match = s.is_match(self.current_query, gallery_row)
        rank = s.rank_of(self.current_query, gallery_row)
        caption = f"{s.caption(tracklet)} · rank {rank} · {'✓ true match' if is_match else '✗ false match'}"
        self.gallery.set_tracklet(tracklet.frame_paths(), caption, att, match_border(is_match), s.frame_flags(tracklet.index))
        self.gallery_plot.set_attention(att, f"gallery attention — {s.caption(tracklet)}", set(s.frame_flags(tracklet.index)))
        self.gallery_plot.set_highlight(self.iteration)
        self.gallery.set_iteration(self.iteration)
        self._refresh_ranked()

    def _open_failure(self, query_row: int, gallery_row: int) -> None:
        self.queries.select_row(query_row)
        if self.current_query != query_row:
            self.show_query(query_row)
        self.show_gallery(gallery_row)

    # ------------------------------------------------------------------ playback
    def _on_probe_frame(self, i: int) -> None:
        self.probe_plot.set_playhead(i)

    def toggle_play(self) -> None:
        """Space: play/pause (both players when synced)."""
        playing = self.probe.playing or self.gallery.playing
        players = [self.probe, self.gallery] if self.sync.isChecked() else [self._focused_player()]
        for p in players:
            p.pause() if playing else p.play()

    def step(self, delta: int) -> None:
        """←/→: step one frame (both players when synced)."""
        for p in [self.probe, self.gallery] if self.sync.isChecked() else [self._focused_player()]:
            p.pause()
            p.step(delta)

    def seek_both(self, frame: int) -> None:
        """Home/End."""
        for p in [self.probe, self.gallery] if self.sync.isChecked() else [self._focused_player()]:
            p.set_frame(frame)

    def _focused_player(self) -> Player:
        w = self.focusWidget()
        while w is not None:
            if w is self.gallery or w is self.gallery_plot:
                return self.gallery
            w = w.parentWidget()
        return self.probe

    def set_iteration(self, k: int) -> None:
        """Alt+↑/↓: highlight refinement iteration k in plots and strips."""
        n = self.session.num_iterations if self.session else 1
        self.iteration = max(0, min(n - 1, k))
        for plot in (self.probe_plot, self.gallery_plot):
            plot.set_highlight(self.iteration)
        for player in (self.probe, self.gallery):
            player.set_iteration(self.iteration)
        self._update_iteration_label()

    def _update_iteration_label(self) -> None:
        n = self.session.num_iterations if self.session else 1
        self.iteration_label.setText(
            f"highlighted refinement iteration: k = {self.iteration} of 0..{n - 1}   (Alt+↑/↓)"
        )

    def show_tab(self, widget: QWidget) -> None:
        """Bring the Analysis tab holding ``widget`` to the front."""
        for i in range(self.tabs.count()):
            page = self.tabs.widget(i)
            if page is widget or page.isAncestorOf(widget):
                self.tabs.setCurrentIndex(i)
                return

    def current_tab_holds(self, widget: QWidget) -> bool:
        """Whether the visible Analysis tab is (or contains) ``widget``."""
        page = self.tabs.currentWidget()
        return page is widget or (page is not None and page.isAncestorOf(widget))

    # ------------------------------------------------------------------ export
    def export_figure(self, kind: str = "auto") -> None:
        """Ctrl+E: export what the current view shows (Failures tab → failure cases, Metrics →
        CMC, otherwise the selected query's ranking), with a preview and options."""
        if self.session is None:
            self.status_text.setText("Nothing to export yet: open a dataset and checkpoint first")
            return
        from reidviewer.app.export_dialog import open_export_dialog

        if kind == "auto":
            current = self.tabs.currentWidget()
            if current is self.failures:
                kind = "failures"
            elif current is self.metrics:
                kind = "cmc"
            else:
                kind = "ranking"
        self.export_dialog = open_export_dialog(self, kind, self.session.dataset, self.session.results,
                                                self.current_query, self.current_gallery, self.workspace)

    def export_failures_batch(self) -> None:
        """The Failures view's batch export: the worst failure cases in one figure."""
        if self.session is None:
            return
        from reidviewer.app.export_dialog import failures_batch_dialog

        self.export_dialog = failures_batch_dialog(self, self.session.dataset, self.session.results, self.workspace)
        self.export_dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.export_dialog.show()

    # ------------------------------------------------------------------ menus
    def show_help(self) -> None:
        ShortcutHelp(self).exec()

    def _ask_open_dataset(self) -> None:
        root = QFileDialog.getExistingDirectory(self, "Open dataset folder")
        if root:
            ckpt = self.session.request.checkpoint if self.session else None
            self.open(viewmodel.OpenRequest(root=Path(root), checkpoint=ckpt))

    def _ask_open_checkpoint(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open checkpoint", "", "Checkpoints (*.safetensors)")
        if path and self.session is not None:
            r = self.session.request
            self.open(viewmodel.OpenRequest(root=r.root, name=r.name, protocol=r.protocol, checkpoint=Path(path), split=r.split))

    def _settings(self) -> QSettings:
        return QSettings(str(self.workspace.root / "reidviewer.ini"), QSettings.Format.IniFormat)

    def _recent(self) -> list[str]:
        value = self._settings().value("recent", [])
        # QSettings (INI) gives a one-item list back as a bare string.
        if isinstance(value, str):
            return [value]
        return [str(v) for v in (value or [])]

    def _remember_recent(self, request: viewmodel.OpenRequest) -> None:
        st = self._settings()
        items = [x for x in self._recent() if x != request.to_text()]
        items.insert(0, request.to_text())
        st.setValue("recent", items[:8])
        self._fill_recent()

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for text in self._recent():
            req = viewmodel.OpenRequest.from_text(text)
            if req is None:
                continue
            a = QAction(req.describe(), self)
            a.triggered.connect(lambda _=False, r=req: self.open(r))
            self.recent_menu.addAction(a)
        self.recent_menu.setEnabled(not self.recent_menu.isEmpty())

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        # During training: ask to stop (checkpoint saved, then close) or keep waiting.
        if not self.training.confirm_close(self, self.close):
            event.ignore()
            return
        if self.job is not None:
            self.job.cancel()
        self.probe.pause()
        self.gallery.pause()
        self.loader.clear_queue()
        self.pool.waitForDone(3000)
        self.loader.wait_idle(3000)
        self.annotations.close()
        super().closeEvent(event)
