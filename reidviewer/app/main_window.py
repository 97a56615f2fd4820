"""The main window: it composes the views around one ``ViewerState`` and runs the long jobs.

Layout: the query list (left dock) | the Viewer page — probe and gallery players with their
attention plots, the ranked gallery under them — or the Training page, full size | the
Analysis dock (Failures, Metrics, Annotations). Every view reads what it shows from the state
and subscribes to it (``state.py``); the window wires views to the state once and then only
handles window-level things: menus, the keyboard, the status bar, opening and exporting.
Decoding and computing run in workers (``tasks.py``, ``frame_loader.py``).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QSettings, Qt, QThreadPool, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QProgressBar,
    QProgressDialog,
    QPushButton,
    QScrollArea,
    QSizePolicy,
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
from reidviewer.app.player import Player
from reidviewer.app.query_list import QueryList
from reidviewer.app.ranked_view import RankedView
from reidviewer.app.saliency_overlay import SaliencyOverlay  # saliency (#20)
from reidviewer.app.shortcuts import SHORTCUTS, help_rows
from reidviewer.app.state import ViewerState
from reidviewer.app.tasks import Job, start_job

if TYPE_CHECKING:  # built lazily (MainWindow.training)
    from reidviewer.app.training_panel import TrainingPanel


def _scrollable(widget: QWidget) -> QScrollArea:
    """``widget`` in a frameless, resizable scroll area."""
    area = QScrollArea()
    area.setWidget(widget)
    area.setWidgetResizable(True)
    area.setFrameShape(QScrollArea.Shape.NoFrame)
    return area


class ShortcutHelp(QDialog):
    """The list of keyboard shortcuts (? or F1), with a Close button."""

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
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        buttons.button(QDialogButtonBox.StandardButton.Close).clicked.connect(self.accept)
        layout = QVBoxLayout(self)
        layout.addWidget(table)
        layout.addWidget(buttons)
        self.resize(560, 560)


class MainWindow(QMainWindow):
    """The reidviewer main window.

    Args:
        workspace: the workspace (caches, results).
        open_request: what to open once shown: ``viewmodel.OpenRequest`` (dataset root, name,
            protocol, checkpoint, split) or ``None`` for an empty window.

    Attributes:
        state: the ``ViewerState`` every view shows.

    Signals:
        results_shown(): results were loaded into every view (tests wait on it).
        query_shown(int): the ranked list of a query was painted.
    """

    results_shown = Signal()
    query_shown = Signal(int)

    def __init__(self, workspace, open_request: viewmodel.OpenRequest | None = None,
                 prefetch: viewmodel.Prefetch | None = None) -> None:
        super().__init__()
        self.workspace = workspace
        self.state = ViewerState()
        self.setWindowTitle("reidviewer")
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)  # one heavy job at a time; frame decoding has its own pool
        self.loader = FrameLoader(parent=self)
        self.job: Job | None = None
        self.cost_box = None  # the question before an expensive open (request_open)
        self.last_query_switch_ms = 0.0
        self._switch_started = 0.0
        self._demo_dialog: QProgressDialog | None = None

        self._build_viewer_page()
        self._build_docks()
        self._build_menus()
        self._build_shortcuts()
        self._build_status()
        self._connect_state()
        self.pages.currentChanged.connect(self._on_page)
        self.resize(1280, 800)
        if open_request is not None:
            QTimer.singleShot(0, lambda: self.open(open_request, prefetch))

    # ------------------------------------------------------------------ compatibility
    @property
    def session(self) -> viewmodel.Session | None:
        """The open session (``state.session``)."""
        return self.state.session

    @property
    def current_query(self) -> int | None:
        """The selected query's results row (``state.query``)."""
        return self.state.query

    @property
    def current_gallery(self) -> int | None:
        """The gallery row in the gallery player (``state.gallery``)."""
        return self.state.gallery

    @property
    def iteration(self) -> int:
        """The highlighted refinement iteration (``state.iteration``)."""
        return self.state.iteration

    # ------------------------------------------------------------------ layout
    def _build_viewer_page(self) -> None:
        s = self.state
        self.probe = Player("Probe (query)", self.loader, s, "probe")
        self.gallery = Player("Gallery", self.loader, s, "gallery")
        self.probe_plot = AttentionPlot(s, "probe")
        self.gallery_plot = AttentionPlot(s, "gallery")
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
        self.iteration_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        row.addWidget(self.sync)
        row.addWidget(self.iteration_label, 1)
        col.addLayout(row)
        # --- saliency (#20): overlay controls for both players, a row of their own ---
        self.saliency = SaliencyOverlay(self.workspace, s, {"probe": self.probe, "gallery": self.gallery}, self)
        col.addWidget(self.saliency.controls)
        # --- end saliency ---

        self.ranked = RankedView(self.loader, s)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(top)
        split.addWidget(self.ranked)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        split.setSizes([560, 240])
        self.viewer_split = split

        # The Training page takes the whole centre: its form and curves need the room. It is
        # built when first shown (``training``): a launch that only views skips its cost.
        self._training: TrainingPanel | None = None
        self._training_page = QWidget()
        QVBoxLayout(self._training_page).setContentsMargins(0, 0, 0, 0)
        self.pages = QTabWidget()
        self.pages.setObjectName("pages")
        self.pages.addTab(split, "Viewer")
        self.pages.addTab(self._training_page, "Training")
        self.setCentralWidget(self.pages)

    @property
    def training(self) -> TrainingPanel:
        """The Training page's panel (built on first use)."""
        if self._training is None:
            from reidviewer.app.training_panel import TrainingPanel

            self._training = TrainingPanel(self.workspace)
            self._training.open_requested.connect(self.open)
            self._training_page.layout().addWidget(self._training)
            if self.state.session is not None:
                self._training.set_viewer_dataset(self.state.session.request, self.state.session.dataset)
        return self._training

    def _build_docks(self) -> None:
        self.queries = QueryList(self.state)
        dock = QDockWidget("Queries", self)
        dock.setObjectName("queries")
        dock.setMinimumWidth(255)  # room for every column of the list
        dock.setWidget(self.queries)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, dock)
        self.queries_dock = dock

        self.tabs = QTabWidget()
        self.failures = FailuresView(self.loader, self.state)
        self.failures.export_requested.connect(self.export_failures_batch)
        self.metrics = MetricsPanel(self.state)
        self.tabs.addTab(self.failures, "Failures")
        self.tabs.addTab(self.metrics, "Metrics")
        self.annotations = AnnotationController(self.state, self.workspace, self._settings, parent=self)
        self.tabs.addTab(_scrollable(self.annotations.panel), "Annotations")
        # --- map of the whole set (issue 21) ---
        from reidviewer.app.map_view import MapView

        self.map_view = MapView(self.state, self.loader, self.workspace)
        self.tabs.addTab(self.map_view, "Map")
        self.map_view.flag_requested.connect(self.annotations.flag_tracklets)
        # --- end map ---
        side = QDockWidget("Analysis", self)
        side.setObjectName("analysis")
        side.setWidget(self.tabs)
        side.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, side)
        self.resizeDocks([dock, side], [265, 372], Qt.Orientation.Horizontal)
        self.analysis_dock = side
        # Context menus: the views ask, the annotation controller answers.
        # --- find similar (issue 21): each tracklet menu gains "Find similar" ---
        self.probe.context_menu_requested.connect(
            lambda pos: self._player_menu("probe", self.probe.mapToGlobal(pos)))
        self.gallery.context_menu_requested.connect(
            lambda pos: self._player_menu("gallery", self.gallery.mapToGlobal(pos)))
        self.ranked.tile_menu_requested.connect(self._tile_menu)
        self.queries.menu_requested.connect(self._query_menu)
        # --- end find similar ---

    def _build_menus(self) -> None:
        m = self.menuBar().addMenu("&File")
        a = QAction("Open &dataset…", self)
        a.triggered.connect(self._ask_open_dataset)
        m.addAction(a)
        a = QAction("Open &checkpoint…", self)
        a.triggered.connect(self._ask_open_checkpoint)
        m.addAction(a)
        a = QAction("Open &model plugin or imported model…", self)
        a.triggered.connect(self._ask_open_model)
        m.addAction(a)
        self.recent_menu = m.addMenu("Open &recent")
        self._fill_recent()
        cmp = m.addMenu("Compare &with…")
        self.compare_menu = cmp
        for text, fn in (("A &checkpoint…", self._ask_compare_checkpoint),
                         ("A &model plugin or imported model…", self._ask_compare_model),
                         ("A saved &results file…", self._ask_compare_results)):
            a = QAction(text, self)
            a.triggered.connect(fn)
            cmp.addAction(a)
        cmp.addSeparator()
        self.swap_action = QAction("&Swap A and B\tCtrl+B", self)
        self.swap_action.triggered.connect(self.swap_models)
        cmp.addAction(self.swap_action)
        self.end_compare_action = QAction("&End compare mode", self)
        self.end_compare_action.triggered.connect(lambda: self.state.set_comparison(None))
        cmp.addAction(self.end_compare_action)
        self.swap_action.setEnabled(False)
        self.end_compare_action.setEnabled(False)
        m.addSeparator()
        exp = m.addMenu("&Export figure")
        for kind, text in (("auto", "From the current view…\tCtrl+E"), ("ranking", "Ranked retrievals…"),
                           ("failures", "Failure cases…"), ("attention", "Attention strip…"), ("cmc", "CMC curve…")):
            a = QAction(text, self)
            a.triggered.connect(lambda _=False, k=kind: self.export_figure(k))
            exp.addAction(a)
        m.addSeparator()
        a = QAction("&Quit", self)
        a.setShortcut(QKeySequence("Ctrl+Q"))
        a.triggered.connect(self.close)
        m.addAction(a)
        v = self.menuBar().addMenu("&View")
        for i, text in enumerate(("&Viewer", "&Training")):
            a = QAction(text, self)
            a.triggered.connect(lambda _=False, i=i: self.pages.setCurrentIndex(i))
            v.addAction(a)
        h = self.menuBar().addMenu("&Help")
        a = QAction("&Keyboard shortcuts", self)
        a.triggered.connect(self.show_help)
        h.addAction(a)

    def _build_shortcuts(self) -> None:
        s = self.state
        handlers = {
            "play_pause": self.toggle_play,
            "step_back": lambda: self.step(-1),
            "step_forward": lambda: self.step(1),
            "first_frame": lambda: self.seek_both(0),
            "last_frame": lambda: self.seek_both(10**9),
            "prev_query": lambda: self.queries.move(-1),
            "next_query": lambda: self.queries.move(1),
            "prev_iteration": lambda: s.step_iteration(-1),
            "next_iteration": lambda: s.step_iteration(1),
            "help": self.show_help,
            "export_figure": self.export_figure,
            "open_dataset": self._ask_open_dataset,
            "swap_models": self.swap_models,
            "toggle_saliency": self.saliency.toggle,  # saliency (#20)
            "find_similar": lambda: self.find_similar_player("probe"),  # find similar (issue 21)
            "find_similar_gallery": lambda: self.find_similar_player("gallery"),  # find similar (issue 21)
            "show_viewer": lambda: self.pages.setCurrentIndex(0),
            "show_training": lambda: self.pages.setCurrentIndex(1),
            **self.annotations.shortcut_handlers(),
        }
        self.shortcuts: dict[str, list[QShortcut]] = {}
        for sc_def in SHORTCUTS:
            fn = handlers.get(sc_def.action)
            if fn is None:
                continue  # a menu action owns it (Quit)
            for key in sc_def.keys:
                sc = QShortcut(QKeySequence(key), self)
                sc.setContext(Qt.ShortcutContext.WindowShortcut)
                sc.activated.connect(fn)
                self.shortcuts.setdefault(sc_def.action, []).append(sc)

    def _build_status(self) -> None:
        self.status_text = QLabel("")
        self.status_text.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
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

    def _connect_state(self) -> None:
        s = self.state
        s.status_changed.connect(self._set_status_text)
        s.iteration_changed.connect(lambda _k: self._update_iteration_label())
        s.query_changed.connect(self._on_query)
        s.gallery_changed.connect(self._on_gallery)
        s.annotations_changed.connect(self._on_annotations)
        s.comparison_changed.connect(self._on_comparison_changed)

    def _set_status_text(self, text: str) -> None:
        self.status_text.setText(text)
        self.status_text.setToolTip(text)

    # ------------------------------------------------------------------ opening
    def open(self, request: viewmodel.OpenRequest, prefetch: viewmodel.Prefetch | None = None) -> None:
        """Open a dataset + checkpoint in the background (progress and cancel in the status bar).

        ``prefetch``: the same request already loading since launch (``application.run_app``).
        """
        self.state.set_status(f"Opening {request.describe()} …")
        self._remember_recent(request)
        workspace = self.workspace
        self._demo_dialog = None
        if request.root is None:
            from reidviewer.demo import demo_is_ready

            if not demo_is_ready(workspace):
                # First launch: the demo is generated (≈ 30 s); say so in a dialog that can cancel.
                dialog = QProgressDialog("Generating the SynthWalk demo dataset (first launch only)…", "Cancel", 0, 0,
                                         self)
                dialog.setWindowTitle("reidviewer — first launch")
                dialog.setMinimumDuration(0)
                dialog.canceled.connect(self.cancel_job)
                self._demo_dialog = dialog

        def work(progress, cancel):
            if prefetch is not None and prefetch.request == request:
                return prefetch.wait(progress, cancel)
            return viewmodel.load_session(request, workspace, progress, cancel)

        self._run(work, self._on_session, "Opening")

    def request_open(self, request: viewmodel.OpenRequest) -> None:
        """Open what the user picked; first say what it costs when that is minutes of preprocessing.

        A quick background check (the dataset's index, the checkpoint's JSON, the frame
        cache's files) decides; a large cost is put as a question (``cost_box``), anything
        else opens straight away.
        """
        workspace = self.workspace

        def check(progress, cancel):
            progress(0, 0, "estimating what opening it costs")
            return viewmodel.open_cost(request, workspace)

        self._run(check, lambda cost: self._confirm_open(request, cost), "Checking")

    def _confirm_open(self, request: viewmodel.OpenRequest, cost: dict | None) -> None:
        self._job_over()
        if cost is None:
            self.open(request)
            return
        from PySide6.QtWidgets import QMessageBox

        from reidviewer.data.cache import format_minutes

        box = QMessageBox(QMessageBox.Icon.Question, "reidviewer — computing first",
                          viewmodel.describe_open_cost(cost),
                          QMessageBox.StandardButton.Open | QMessageBox.StandardButton.Cancel, self)
        box.setDefaultButton(QMessageBox.StandardButton.Open)

        def answered(_result: int) -> None:
            # Cancel, Escape and the title bar's close button all end here without Open.
            self.cost_box = None
            if box.standardButton(box.clickedButton()) == QMessageBox.StandardButton.Open:
                self.open(request)
            else:
                self.state.set_status(f"Not opened: {cost['dataset']}")

        box.finished.connect(answered)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        work = "preprocessing and feature extraction" if cost["test_frames_missing"] > 0 else "feature extraction"
        self.state.set_status(f"{cost['dataset']} needs {format_minutes(cost['minutes'])} of {work} first: open it?")
        self.cost_box = box
        box.open()  # window-modal, not a nested event loop: the window keeps painting

    def _run(self, fn, on_done, label: str) -> None:
        if self.job is not None:
            self.job.cancel()
        job = Job(fn)
        job.signals.progress.connect(lambda d, t, text: self._on_progress(label, d, t, text))
        if self._demo_dialog is not None:
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
        # A job replaced by a newer one (cancelled when that started) ends quietly: the status,
        # the progress bar and ``self.job`` belong to the newer job.
        job.signals.cancelled.connect(lambda j=job: self._on_cancelled() if self.job is j else None)
        self.job = job
        self.progress.setVisible(True)
        self.progress.setRange(0, 0)
        self.cancel_button.setVisible(True)
        start_job(job, self.pool)

    def _on_progress(self, label: str, done: int, total: int, text: str) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self.state.set_status(f"{label}: {text}" if text else label)

    def _job_over(self) -> None:
        self.job = None
        self.progress.setVisible(False)
        self.cancel_button.setVisible(False)

    def cancel_job(self) -> None:
        """Cancel the running background job."""
        if self.job is not None:
            self.job.cancel()
            self.state.set_status("Cancelling…")

    def _on_failed(self, message: str) -> None:
        from PySide6.QtWidgets import QMessageBox

        self._job_over()
        self.state.set_status("Failed — see the message")
        QMessageBox.warning(self, "reidviewer", message)

    def _on_cancelled(self) -> None:
        self._job_over()
        self.state.set_status("Cancelled")

    def _on_session(self, session: viewmodel.Session) -> None:
        self._job_over()
        self.set_session(session)

    def set_session(self, session: viewmodel.Session) -> None:
        """Show a loaded dataset + results in every view."""
        self.annotations.open_for(session)  # fills session.frame_flag_map before the views read it
        self.state.set_session(session)
        self.setWindowTitle(f"reidviewer — {session.title}")
        self.state.set_status(session.status + self.annotations.status_suffix())
        if self._training is not None:
            self._training.set_viewer_dataset(session.request, session.dataset)
        self._update_iteration_label()
        self.results_shown.emit()
        # The first query in the list's order opens (after every view has taken the session).
        self.queries.select_position(0)

    # ------------------------------------------------------------------ selection
    def show_query(self, query_row: int) -> None:
        """Select a query (its probe, attention, ranked list and rank-1 retrieval)."""
        self.state.select_query(query_row)

    def show_gallery(self, gallery_row: int) -> None:
        """Show a gallery tracklet (a retrieval) in the gallery player."""
        self.state.select_gallery(gallery_row)

    def _on_query(self, row) -> None:
        self._switch_started = time.perf_counter()
        self.loader.clear_queue()

    def _on_gallery(self, row) -> None:
        # The last step of a query switch: every view has refreshed itself by now.
        if self._switch_started and self.state.query is not None:
            self.last_query_switch_ms = (time.perf_counter() - self._switch_started) * 1000
            self._switch_started = 0.0
            self.query_shown.emit(self.state.query)

    def _on_annotations(self, identity: bool) -> None:
        s = self.state.session
        if s is not None and identity and self.state.comparison is not None:
            # B's results were ranked with the old identities: compare again to see both anew.
            self.state.set_comparison(None)
            self.state.set_status("Compare mode ended: the annotations changed identities — compare again")
            return
        if s is not None and identity:
            self.state.set_status(s.status + self.annotations.status_suffix())

    # ------------------------------------------------------------------ compare mode
    def compare_with(self, source: Path | str) -> None:
        """Compare mode: evaluate (or load) model B — a checkpoint, ``model:NAME`` reference or a
        results file — on the open dataset and split, in the background, then show both."""
        session = self.state.session
        if session is None:
            self.state.set_status("Open a dataset and model first, then compare with another")
            return
        workspace = self.workspace
        self.state.set_status(f"Comparing with {viewmodel.model_name(source)} …")
        self._demo_dialog = None

        def work(progress, cancel):
            return viewmodel.load_comparison(session, source, workspace, progress, cancel)

        def done(comparing) -> None:
            self._job_over()
            if self.state.session is session:  # still the session B was paired with
                self.state.set_comparison(comparing)

        self._run(work, done, "Comparing")

    def swap_models(self) -> None:
        """Ctrl+B: exchange models A and B (compare mode)."""
        if not self.state.swap_comparison():
            self.state.set_status("Ctrl+B swaps the two models of compare mode: File ▸ Compare with… first")

    def _on_comparison_changed(self, comparing) -> None:
        s = self.state.session
        on = comparing is not None
        self.swap_action.setEnabled(on)
        self.end_compare_action.setEnabled(on)
        total = sum(self.viewer_split.sizes()) or 800
        if on and s is not None:
            self.setWindowTitle(f"reidviewer — {s.title} · compared with {comparing.name_b}")
            self.state.set_status(comparing.status(s) + self.annotations.status_suffix())
            self.viewer_split.setSizes([max(200, total - 390), 390])  # room for A's and B's rows
            # Room for the ΔAP and A→B columns, taken from the Analysis side so the window
            # keeps its width (the players need theirs).
            self.queries_dock.setMinimumWidth(300)
            self.resizeDocks([self.queries_dock, self.analysis_dock], [300, 340], Qt.Orientation.Horizontal)
        elif s is not None:
            self.setWindowTitle(f"reidviewer — {s.title}")
            self.state.set_status(s.status + self.annotations.status_suffix())
            self.viewer_split.setSizes([int(total * 0.7), total - int(total * 0.7)])
            self.queries_dock.setMinimumWidth(255)
            self.resizeDocks([self.queries_dock, self.analysis_dock], [265, 372], Qt.Orientation.Horizontal)
        self._update_iteration_label()

    def _ask_compare_checkpoint(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Compare with checkpoint", "", "Checkpoints (*.safetensors)")
        if path:
            self.compare_with(Path(path))

    def _ask_compare_model(self) -> None:
        from PySide6.QtWidgets import QInputDialog

        from reidviewer.engine.models import model_ref
        from reidviewer.model.plugins import available_models

        items = [*available_models(), "imported:NAME"]
        text, ok = QInputDialog.getItem(self, "Compare with model", "Model B (NAME or NAME:ARG; imported:NAME for a "
                                        "model saved by reidviewer import):", items, 0, True)
        if ok and text.strip():
            self.compare_with(model_ref(text.strip()))

    def _ask_compare_results(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Compare with results file", str(self.workspace.results_dir),
                                              "Results files (*.npz)")
        if path:
            self.compare_with(Path(path))

    # ------------------------------------------------------------------ playback
    def toggle_play(self) -> None:
        """Space: play/pause (both players when synced)."""
        playing = self.probe.playing or self.gallery.playing
        for p in self._players():
            p.pause() if playing else p.play()

    def step(self, delta: int) -> None:
        """←/→: step one frame (both players when synced)."""
        for p in self._players():
            p.pause()
            p.step(delta)

    def seek_both(self, frame: int) -> None:
        """Home/End."""
        for p in self._players():
            p.set_frame(frame)

    def _players(self) -> list[Player]:
        return [self.probe, self.gallery] if self.sync.isChecked() else [self._focused_player()]

    def _focused_player(self) -> Player:
        w = self.focusWidget()
        while w is not None:
            if w is self.gallery or w is self.gallery_plot:
                return self.gallery
            w = w.parentWidget()
        return self.probe

    def set_iteration(self, k: int) -> None:
        """Highlight refinement iteration k in plots and strips."""
        self.state.set_iteration(k)

    def _update_iteration_label(self) -> None:
        s = self.state
        if s.session is None:
            self.iteration_label.setText("")
        elif not s.session.has_attention:
            self.iteration_label.setText("this model pools frames uniformly: it has no attention to show")
        else:
            n = s.num_iterations
            self.iteration_label.setText(
                f"highlighted iteration k = {s.iteration} (of 0..{n - 1}; k = {n - 1} pools the feature)   Alt+↑/↓"
            )
        self.iteration_label.setToolTip(self.iteration_label.text())

    def _on_page(self, index: int) -> None:
        # The Training page gets the whole window: the docks belong to the viewer.
        viewer = index == 0
        if not viewer:
            self.training  # noqa: B018 (builds the panel on first show)
        self.queries_dock.setVisible(viewer)
        self.analysis_dock.setVisible(viewer)

    def show_tab(self, widget: QWidget) -> None:
        """Bring the page or Analysis tab holding ``widget`` to the front."""
        if widget is self._training:
            self.pages.setCurrentIndex(1)
            return
        for tabs in (self.pages, self.tabs):
            for i in range(tabs.count()):
                page = tabs.widget(i)
                if page is widget or page.isAncestorOf(widget):
                    tabs.setCurrentIndex(i)
                    return

    # ------------------------------------------------------------------ export
    def export_figure(self, kind: str = "auto") -> None:
        """Ctrl+E: export what the current view shows (Failures tab → failure cases, Metrics →
        CMC, otherwise the selected query's ranking), with a preview and options."""
        s = self.state
        if s.session is None:
            s.set_status("Nothing to export yet: open a dataset and checkpoint first")
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
        self.export_dialog = open_export_dialog(self, kind, s.session.dataset, s.session.results,
                                                s.query, None if s.session.is_training_row(s.gallery) else s.gallery,
                                                self.workspace)

    def export_failures_batch(self) -> None:
        """The Failures view's batch export: the worst failure cases in one figure."""
        s = self.state
        if s.session is None:
            return
        from reidviewer.app.export_dialog import failures_batch_dialog

        self.export_dialog = failures_batch_dialog(self, s.session.dataset, s.session.results, self.workspace)
        self.export_dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.export_dialog.show()

    # ------------------------------------------------------------------ menus
    def show_help(self) -> None:
        ShortcutHelp(self).exec()

    def _ask_open_dataset(self) -> None:
        root = QFileDialog.getExistingDirectory(self, "Open dataset folder")
        if root:
            ckpt = self.state.session.request.checkpoint if self.state.session else None
            self.request_open(viewmodel.OpenRequest(root=Path(root), checkpoint=ckpt))

    def _ask_open_checkpoint(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open checkpoint", "", "Checkpoints (*.safetensors)")
        if path and self.state.session is not None:
            r = self.state.session.request
            self.request_open(viewmodel.OpenRequest(root=r.root, name=r.name, protocol=r.protocol, checkpoint=Path(path),
                                            split=r.split))

    def _ask_open_model(self) -> None:
        """A model plugin (``NAME[:ARG]``) or ``imported:NAME``, on the dataset shown now."""
        from PySide6.QtWidgets import QInputDialog

        from reidviewer.engine.models import model_ref
        from reidviewer.model.plugins import available_models

        items = [*available_models(), "imported:NAME"]
        text, ok = QInputDialog.getItem(self, "Open model", "Model (NAME or NAME:ARG; imported:NAME for a model "
                                        "saved by reidviewer import):", items, 0, True)
        if ok and text.strip():
            r = self.state.session.request if self.state.session else viewmodel.OpenRequest()
            self.open(viewmodel.OpenRequest(root=r.root, name=r.name, protocol=r.protocol,
                                            checkpoint=Path(model_ref(text.strip())), split=r.split))

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
            a.triggered.connect(lambda _=False, r=req: self.request_open(r))
            self.recent_menu.addAction(a)
        self.recent_menu.setEnabled(not self.recent_menu.isEmpty())

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        # During training: ask to stop (checkpoint saved, then close) or keep waiting.
        if self._training is not None and not self._training.confirm_close(self, self.close):
            event.ignore()
            return
        if self.job is not None:
            self.job.cancel()
        self.probe.pause()
        self.gallery.pause()
        self.saliency.shutdown()  # saliency (#20)
        self.map_view.shutdown(1000)  # map (issue 21)
        self.loader.clear_queue()
        self.pool.waitForDone(3000)
        self.loader.wait_idle(3000)
        self.annotations.close()
        super().closeEvent(event)

    # --- find similar (issue 21) ------------------------------------------------------------
    def find_similar(self, query_row: int | None = None, gallery_row: int | None = None) -> None:
        """Show the nearest tracklets of the whole set (query + gallery) to a query or gallery
        tracklet in the ranked view, with distances and ✓/✗ (◀ Back returns)."""
        from reidviewer.app.similar import point_of, similar_for

        s = self.state.session
        if s is None or (query_row is None and gallery_row is None):
            self.state.set_status("Find similar: open a dataset and select a tracklet first")
            return
        view = similar_for(s, point_of(s, query_row, gallery_row), self.ranked.top_k.value())
        self.pages.setCurrentIndex(0)
        self.state.show_similar(view)
        self.state.set_status(f"{view.header} — ◀ Back returns to the ranked gallery")

    def find_similar_player(self, player: str) -> None:
        """F / Shift+F: find similar to the probe's / the gallery player's tracklet."""
        if player == "probe":
            self.find_similar(query_row=self.state.query)
        else:
            self.find_similar(gallery_row=self.state.gallery)

    def _with_find_similar(self, menu, **rows):
        menu.addSeparator()
        action = menu.addAction("Find similar (whole set)")
        action.triggered.connect(lambda: self.find_similar(**rows))
        return menu

    def _tile_menu(self, row: int, global_pos) -> None:
        from reidviewer.app.similar import tile_target

        s = self.state.session
        if s is None:
            return
        kind, r = tile_target(row)
        t = s.gallery_tracklet(r) if kind == "gallery" else s.query_tracklet(r)
        menu = self.annotations.tracklet_menu(t, merge=kind == "gallery")
        self._with_find_similar(menu, **{f"{kind}_row": r}).exec(global_pos)

    def _query_menu(self, query_row: int, global_pos) -> None:
        s = self.state.session
        if s is not None:
            menu = self.annotations.tracklet_menu(s.query_tracklet(query_row))
            self._with_find_similar(menu, query_row=query_row).exec(global_pos)

    def _player_menu(self, player: str, global_pos) -> None:
        t = self.state.tracklet(player)
        if t is None:
            return
        menu = self.annotations.tracklet_menu(t, self.state.frames[player], merge=player == "gallery")
        rows = {"query_row": self.state.query} if player == "probe" else {"gallery_row": self.state.gallery}
        self._with_find_similar(menu, **rows).exec(global_pos)
    # --- end find similar ---
