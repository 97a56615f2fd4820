"""The Map tab: every query and gallery tracklet as a point of a 2-D projection of its feature.

PCA is shown at once; UMAP (``umap-learn``, ``pip install "reidviewer[map]"``) runs in a
background job with progress and cancel and is cached per results file in the workspace.
Colour by identity, camera, hit/miss at rank 1, AP, annotation flag or attention spread, with a
legend. Hover names the tracklet (with its thumbnail); a click opens it in the players through
the ``ViewerState`` (as the query when it is one, else in the gallery player). With *Lasso* on,
dragging draws a lasso whose points go into the selection list, which can be opened, flagged
(junk, distractor, exclude: one undoable edit) and exported as CSV. The current query is a star
and its true matches are ringed. *Training* adds the split's training tracklets (squares): their
features are extracted with the session's checkpoint in the background (progress, Cancel) and
cached in the workspace; find-similar then searches them too.
"""
from __future__ import annotations

import html
import threading
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, QThreadPool, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QProgressBar,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from reidviewer.annotations.edits import TRACKLET_FLAGS
from reidviewer.app.similar import load_training, player_row, session_map, set_training
from reidviewer.app.state import ViewerState
from reidviewer.app.tasks import Job, start_job
from reidviewer.engine import embedding_map as em

#: Hover and click pick the nearest point within this many pixels.
PICK_PIXELS = 8.0



def alive(widget) -> bool:
    """Whether ``widget``'s C++ object still exists (a late job result must not touch a dead one)."""
    from shiboken6 import isValid

    return isValid(widget)

class _MapViewBox(pg.ViewBox):
    """A view box that hands left drags to the map in lasso mode (clicks: the scene's signal)."""

    def __init__(self, owner: MapView) -> None:
        super().__init__()
        self.owner = owner
        self.lasso_mode = False

    def mouseDragEvent(self, ev, axis=None) -> None:  # noqa: N802
        if self.lasso_mode and ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            p = self.mapSceneToView(ev.scenePos())
            if ev.isStart():
                self.owner.lasso_start((p.x(), p.y()))
            else:
                self.owner.lasso_add((p.x(), p.y()))
            if ev.isFinish():
                self.owner.lasso_finish()
            return
        super().mouseDragEvent(ev, axis)



class MapView(QWidget):
    """The Map tab (see the module docstring).

    Signals:
        coords_shown(str): a projection (``pca`` or ``umap``) is on screen.
        selection_changed(int): how many points are selected.
    """

    coords_shown = Signal(str)
    selection_changed = Signal(int)
    #: ``flag_requested(keys, flag, clear)``: flag (or unflag) the selected tracklets; the
    #: annotation controller acts (views do not call each other).
    flag_requested = Signal(list, str, bool)

    def __init__(self, state: ViewerState, loader=None, workspace=None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.loader = loader
        self.workspace = workspace
        # UMAP runs in a daemon thread, not a pool: it cannot be interrupted, and closing the
        # window must not wait for it (a thread pool waits for its jobs when destroyed).
        self._thread: threading.Thread | None = None
        self.job: Job | None = None
        self.training_job: Job | None = None
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        self.method = "pca"
        self.coords: np.ndarray | None = None
        self.selected: np.ndarray = np.zeros(0, dtype=np.int64)
        self._lasso: list[tuple[float, float]] = []
        self._hover: int | None = None

        self.method_box = QComboBox()
        self.method_box.addItem("PCA", "pca")
        self.method_box.addItem("UMAP", "umap")
        self.method_box.setToolTip("Projection: PCA is instant; UMAP runs in the background and is cached")
        if not em.umap_available():
            item = self.method_box.model().item(1)
            item.setEnabled(False)
            item.setToolTip(f"UMAP needs umap-learn: {em.UMAP_HINT}")
        self.method_box.currentIndexChanged.connect(lambda _i: self.set_method(self.method_box.currentData()))
        self.color_box = QComboBox()
        for key in em.COLOR_BY:
            self.color_box.addItem(em.COLOR_BY_NAMES[key], key)
        self.color_box.setToolTip("What colours the points")
        # Sized by what fits, not by its longest item: the Analysis dock keeps its width.
        self.color_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.color_box.setMinimumContentsLength(8)
        self.color_box.currentIndexChanged.connect(lambda _i: self.recolour())
        self.lasso_button = QPushButton("Lasso")
        self.lasso_button.setCheckable(True)
        self.lasso_button.setToolTip("Drag to draw a lasso: the points inside go into the list below "
                                     "(off: drag pans, wheel zooms)")
        self.lasso_button.toggled.connect(self._set_lasso)
        self.training_box = QCheckBox("Training")
        self.training_box.setToolTip("Add the split's training tracklets (squares): their features are extracted "
                                     "with this checkpoint in the background and cached; find similar searches "
                                     "them too")
        self.training_box.toggled.connect(self._on_training_toggled)
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(90)
        self.progress.setVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setVisible(False)
        self.cancel_button.clicked.connect(self._cancel_clicked)
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.method_box)
        top.addWidget(self.color_box, 1)
        top.addWidget(self.lasso_button)
        self.figure_button = QPushButton("Figure…")
        self.figure_button.setToolTip("Export the map as a paper figure (PDF, SVG or PNG), coloured as shown")
        self.figure_button.clicked.connect(self._ask_figure)
        top.addWidget(self.figure_button)
        top.addWidget(self.progress)
        top.addWidget(self.cancel_button)

        self.vb = _MapViewBox(self)
        self.plot = pg.PlotWidget(viewBox=self.vb, background="w")
        self.plot.hideAxis("left")
        self.plot.hideAxis("bottom")
        self.plot.hideButtons()
        self.plot.setMinimumHeight(200)
        self.scatter = pg.ScatterPlotItem(size=6, pen=None, pxMode=True)
        self.plot.addItem(self.scatter)
        self.marks = pg.ScatterPlotItem(pxMode=True)
        self.marks.setZValue(10)
        self.plot.addItem(self.marks)
        self.sel_mark = pg.ScatterPlotItem(pxMode=True, size=10, pen=pg.mkPen((90, 90, 90), width=1.2), brush=None)
        self.sel_mark.setZValue(9)
        self.plot.addItem(self.sel_mark)
        self.hover_mark = pg.ScatterPlotItem(pxMode=True, size=13, pen=pg.mkPen((20, 20, 20), width=1.5),
                                             brush=None)
        self.hover_mark.setZValue(11)
        self.plot.addItem(self.hover_mark)
        self.lasso_curve = pg.PlotCurveItem(pen=pg.mkPen((40, 40, 40), width=1.2, style=Qt.PenStyle.DashLine))
        self.lasso_curve.setZValue(12)
        self.plot.addItem(self.lasso_curve)
        for item in (self.scatter, self.marks, self.sel_mark, self.hover_mark, self.lasso_curve):
            item.setAcceptedMouseButtons(Qt.MouseButton.NoButton)  # the view box picks (fast at 20k)
        self.plot.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.plot.scene().sigMouseClicked.connect(self._on_mouse_clicked)

        self.legend = QLabel("")
        self.legend.setObjectName("map_legend")
        self.legend.setWordWrap(True)
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.info = QLabel("")
        self.info.setObjectName("map_info")
        self.info.setWordWrap(True)
        self.info.setStyleSheet("color: #555;")
        self.hover_thumb = QLabel()
        self.hover_thumb.setFixedSize(32, 64)
        self.hover_thumb.setScaledContents(True)
        self.hover_text = QLabel("Hover a point to name it; click to open it")
        self.hover_text.setWordWrap(True)
        self.hover_text.setMinimumWidth(10)
        hover = QHBoxLayout()
        hover.setContentsMargins(0, 0, 0, 0)
        hover.addWidget(self.hover_thumb)
        hover.addWidget(self.hover_text, 1)
        hover.addWidget(self.training_box)  # here, not in the top row: the Analysis dock keeps its width

        self.list = QListWidget()
        self.list.setObjectName("map_selection")
        self.list.itemDoubleClicked.connect(lambda item: self.open_point(int(item.data(Qt.ItemDataRole.UserRole))))
        self.list_label = QLabel("Selection: none (turn Lasso on and drag around points)")
        self.list_label.setWordWrap(True)
        self.open_button = QPushButton("Open")
        self.open_button.setToolTip("Open the selected tracklet of the list in the players")
        self.open_button.clicked.connect(self.open_current)
        self.flag_button = QPushButton("Flag ▾")
        self.flag_button.setToolTip("Flag the selected tracklets (junk, distractor, exclude): one edit, undoable")
        flag_menu = QMenu(self.flag_button)
        for flag in TRACKLET_FLAGS:
            flag_menu.addAction(f"as {flag}", lambda fl=flag: self.flag_selection(fl))
            flag_menu.addAction(f"clear {flag}", lambda fl=flag: self.flag_selection(fl, clear=True))
        self.flag_button.setMenu(flag_menu)
        self.export_button = QPushButton("Export CSV…")
        self.export_button.clicked.connect(self._ask_export)
        self.clear_button = QPushButton("Clear")
        self.clear_button.clicked.connect(lambda: self.set_selection([]))
        buttons = QHBoxLayout()
        buttons.setContentsMargins(0, 0, 0, 0)
        buttons.addWidget(self.open_button)
        buttons.addWidget(self.flag_button)
        buttons.addWidget(self.export_button)
        buttons.addWidget(self.clear_button)
        lower = QWidget()
        low = QVBoxLayout(lower)
        low.setContentsMargins(0, 0, 0, 0)
        low.addWidget(self.list_label)
        low.addWidget(self.list, 1)
        low.addLayout(buttons)

        upper = QWidget()
        up = QVBoxLayout(upper)
        up.setContentsMargins(0, 0, 0, 0)
        up.addLayout(top)
        up.addWidget(self.plot, 1)
        up.addWidget(self.legend)
        up.addLayout(hover)
        up.addWidget(self.info)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(upper)
        split.addWidget(lower)
        split.setStretchFactor(0, 4)
        split.setStretchFactor(1, 1)
        split.setSizes([520, 160])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(split)
        self._update_buttons()

        state.session_changed.connect(lambda _s: self.refresh())
        state.query_changed.connect(lambda _r: self.update_marks())
        state.annotations_changed.connect(lambda _i: self.refresh() if _i else self.recolour())
        if loader is not None:
            loader.frame_ready.connect(self._on_frame)

    # ------------------------------------------------------------------ data
    @property
    def map(self):
        s = self.state.session
        return None if s is None else session_map(s)

    @property
    def color_by(self) -> str:
        return str(self.color_box.currentData())

    def refresh(self) -> None:
        """Show the state's session: PCA at once, or UMAP (from the cache or in the background)."""
        self.cancel()
        self.set_selection([])
        self.coords = None
        if self.state.session is None:
            self.scatter.clear()
            return
        if not self.isVisible():
            # The whole-set map is built when the tab is first shown (showEvent), not at every
            # launch and session change while another tab is in front.
            self._stale = True
            return
        self._stale = False
        if self.training_box.isChecked() and getattr(self.state.session, "training", None) is None:
            self._start_training()
        self.set_method(self.method, force=True)

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        if getattr(self, "_stale", False):
            self.refresh()
        else:
            self.update_marks()

    def set_method(self, method: str, force: bool = False) -> None:
        """Show the ``pca`` or ``umap`` projection (UMAP computed in the background if needed)."""
        if method == self.method and not force and self.coords is not None:
            return
        self.method = method
        i = self.method_box.findData(method)
        if self.method_box.currentIndex() != i:
            self.method_box.blockSignals(True)
            self.method_box.setCurrentIndex(i)
            self.method_box.blockSignals(False)
        m = self.map
        if m is None:
            return
        if method in m.coords:
            self._show(m.coords[method])
            return
        if method == "umap":
            if not em.umap_available():
                self.info.setText(f"UMAP needs umap-learn: {em.UMAP_HINT}. Showing PCA.")
                self.set_method("pca")
                return
            self._start_umap()

    def _start_umap(self) -> None:
        session = self.state.session
        results = session.results
        ms = self.map.ms
        workspace = self.workspace

        def work(progress, cancel):
            return em.projection(results, "umap", 0, workspace, ms, progress=progress, cancel=cancel)

        job = Job(work)
        job.signals.progress.connect(self._on_progress)
        job.signals.finished.connect(lambda coords, s=session: alive(self) and self._umap_done(s, coords))
        job.signals.failed.connect(lambda msg: alive(self) and self._job_over(f"UMAP failed: {msg.splitlines()[0]}"))
        job.signals.cancelled.connect(lambda: alive(self) and self._job_over("UMAP cancelled; showing PCA"))
        self.job = job
        self.progress.setRange(0, 0)
        self.progress.setVisible(True)
        self.cancel_button.setVisible(True)
        self.info.setText(f"Computing UMAP of {len(ms)} tracklets in the background (PCA meanwhile)…")
        if self.coords is None and "pca" in self.map.coords:
            self._show(self.map.coords["pca"], announce=False)
        self._thread = threading.Thread(target=job.run, name="reidviewer-umap", daemon=True)
        self._thread.start()

    def _on_progress(self, done: int, total: int, text: str) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        if text:
            self.info.setText(f"{text}…")

    def _umap_done(self, session, coords) -> None:
        self._job_over("")
        if session is not self.state.session:
            return
        session_map(session).coords["umap"] = np.asarray(coords, dtype=np.float32)
        if self.method == "umap":
            self._show(session_map(session).coords["umap"])

    def _job_over(self, message: str) -> None:
        self.job = None
        self.progress.setVisible(False)
        self.cancel_button.setVisible(False)
        if message:
            self.info.setText(message)
            if self.method == "umap" and self.map is not None and "umap" not in self.map.coords:
                self.method = "pca"
                self.method_box.blockSignals(True)
                self.method_box.setCurrentIndex(0)
                self.method_box.blockSignals(False)
                self._show(self.map.coords["pca"], announce=False)

    def cancel(self) -> None:
        """Cancel a running UMAP or training-feature job (the result, when it arrives, is dropped)."""
        if self.job is not None:
            self.job.cancel()
            self.info.setText("Cancelling UMAP…")
        if self.training_job is not None:
            self.training_job.cancel()
            self.training_job = None

    # ------------------------------------------------------------------ training tracklets
    def _on_training_toggled(self, on: bool) -> None:
        s = self.state.session
        if s is None:
            return
        if not on:
            if self.training_job is not None:
                self.training_job.cancel()
                self._training_over("")
            if getattr(s, "training", None) is not None:
                set_training(s, None)
                self.refresh()
            return
        if getattr(s, "training", None) is None:
            self._start_training()

    def _start_training(self) -> None:
        session, workspace = self.state.session, self.workspace
        if session is None or self.training_job is not None:
            return

        def work(progress, cancel):
            return load_training(session, workspace, progress=progress, cancel=cancel)

        job = Job(work)
        job.signals.progress.connect(self._on_progress)
        job.signals.finished.connect(lambda ts, s=session, j=job: alive(self) and self._training_done(s, j, ts))
        job.signals.failed.connect(lambda msg, j=job: alive(self) and self._training_failed(j, msg))
        job.signals.cancelled.connect(lambda j=job: alive(self) and self.training_job is j and self._training_over(
            "Training tracklets cancelled"))
        self.training_job = job
        self.progress.setRange(0, 0)
        self.progress.setVisible(True)
        self.cancel_button.setVisible(True)
        n = len(session.dataset.split(int(session.results.split)).train)
        self.info.setText(f"Extracting the features of {n} training tracklets in the background…")
        start_job(job, self.pool)

    def _training_done(self, session, job, training) -> None:
        if job is not self.training_job:
            return  # cancelled or superseded
        self._training_over("")
        if session is not self.state.session or not self.training_box.isChecked():
            return
        set_training(session, training)
        self.refresh()

    def _training_failed(self, job, message: str) -> None:
        if job is not self.training_job:
            return
        self._training_over(f"Training tracklets: {message.splitlines()[0]}")
        self.training_box.blockSignals(True)
        self.training_box.setChecked(False)
        self.training_box.blockSignals(False)

    def _training_over(self, message: str) -> None:
        self.training_job = None
        if self.job is None:
            self.progress.setVisible(False)
            self.cancel_button.setVisible(False)
        if message:
            self.info.setText(message)

    def wait_training(self, ms: int = 120_000) -> bool:
        """Wait for the training-feature job (tests); True when it is over."""
        return self.pool.waitForDone(ms)

    def shutdown(self, ms: int = 3000) -> None:
        """Cancel the background jobs and wait a little for the pool (closing the window)."""
        self.cancel()
        self.pool.waitForDone(ms)

    def _cancel_clicked(self) -> None:
        job = self.training_job
        self.cancel()
        if job is not None:
            self._training_over("Training tracklets cancelled")
            self.training_box.blockSignals(True)
            self.training_box.setChecked(False)
            self.training_box.blockSignals(False)

    def wait(self, ms: int = 120_000) -> bool:
        """Wait for the background UMAP thread (tests); True when it is over."""
        if self._thread is not None:
            self._thread.join(ms / 1000)
            return not self._thread.is_alive()
        return True

    # ------------------------------------------------------------------ drawing
    def _show(self, coords: np.ndarray, announce: bool = True) -> None:
        self.coords = np.asarray(coords, dtype=np.float64)
        self.recolour()
        self.update_marks()
        self.vb.autoRange(padding=0.04)
        m = self.map
        if m is not None and announce:
            nq = int(np.count_nonzero(m.ms.query_rows >= 0))
            nt = m.ms.num_training
            name = "PCA" if self.method == "pca" else "UMAP"
            extra = "" if em.umap_available() else f" · UMAP: {em.UMAP_HINT}"
            train = f", {nt} training ■" if nt else " (tick Training to add the training tracklets)"
            self.info.setText(f"{name} of {len(m.ms)} tracklets ({nq} queries ●, {len(m.ms) - nq - nt} gallery ▲"
                              f"{train}){extra}")
        self.coords_shown.emit(self.method)

    def recolour(self) -> None:
        """Draw the points in the colours of the chosen colour-by, and its legend."""
        m = self.map
        if m is None or self.coords is None:
            return
        s = self.state.session
        flagged = [i for i, f in (getattr(s, "frame_flag_map", {}) or {}).items() if f]
        values = em.colour_values(s.results, m.ms, self.color_by, flagged)
        pc = em.point_colours(values, self.color_by, em.category_names(m.ms, self.color_by, s.dataset),
                              max_legend=6 if self.color_by == "identity" else 12)
        # Few distinct colours → few brushes: pyqtgraph draws each (symbol, brush) once and blits it.
        uniq, inv = np.unique(pc.rgb, axis=0, return_inverse=True)
        brushes = [pg.mkBrush(int(r), int(g), int(b), 210) for r, g, b in uniq]
        brush = [brushes[j] for j in inv.ravel()]
        symbols = np.where(m.ms.query_rows >= 0, "o", np.where(m.ms.gallery_rows >= 0, "t", "s")).tolist()
        self.scatter.setData(x=self.coords[:, 0], y=self.coords[:, 1], brush=brush, symbol=symbols, pen=None,
                             size=6)
        self.colours = pc
        parts = [f'<span style="color: rgb{c}; font-size: 12pt;">■</span>&nbsp;{html.escape(label)}'
                 for label, c in pc.legend]
        text = " &nbsp; ".join(parts)
        if pc.note:
            text += f'<br><span style="color:#666">{html.escape(pc.note)}</span>'
        text += ('<br><span style="color:#666">★&nbsp;current&nbsp;query &nbsp; <span style="color:#1a9641">◯</span>'
                 '&nbsp;its&nbsp;true&nbsp;matches &nbsp; ◯&nbsp;selected &nbsp; ●&nbsp;query &nbsp; ▲&nbsp;gallery'
                 + (' &nbsp; ■&nbsp;training' if m.ms.num_training else '') + '</span>')
        self.legend.setText(text)

    def update_marks(self) -> None:
        """Star the current query and ring its true matches."""
        q = self.state.query
        if self.coords is None or q is None or not self.isVisible():
            if self.coords is None or q is None:
                self.marks.clear()
            return  # a hidden map is marked when shown (showEvent)
        m = self.map
        p = m.ms.point_of_query(q)
        pid = m.ms.pids[p]
        matches = np.flatnonzero((m.ms.pids == pid) & (np.arange(len(m.ms)) != p)) if pid >= 0 else np.zeros(0, int)
        spots = [{"pos": self.coords[i], "size": 13, "symbol": "o", "brush": None,
                  "pen": pg.mkPen((26, 150, 65), width=2.2)} for i in matches]
        spots.append({"pos": self.coords[p], "size": 20, "symbol": "star", "brush": pg.mkBrush(20, 20, 20),
                      "pen": pg.mkPen("w", width=1)})
        self.marks.setData(spots)

    # ------------------------------------------------------------------ picking
    def point_at(self, xy: tuple[float, float], pixels: float = PICK_PIXELS) -> int | None:
        """The point nearest to view position ``xy`` within ``pixels`` screen pixels, or None."""
        if self.coords is None or not len(self.coords):
            return None
        px, py = self.vb.viewPixelSize()
        px, py = px or 1.0, py or 1.0
        d2 = ((self.coords[:, 0] - xy[0]) / px) ** 2 + ((self.coords[:, 1] - xy[1]) / py) ** 2
        i = int(np.argmin(d2))
        return i if d2[i] <= pixels * pixels else None

    def view_pos(self, i: int) -> QPointF:
        """Where point ``i`` is, in view coordinates (tests click there)."""
        return QPointF(float(self.coords[i, 0]), float(self.coords[i, 1]))

    def open_point(self, i: int) -> None:
        """Open a point in the players: as the query when it is one, else in the gallery player."""
        m = self.map
        if m is None:
            return
        player, row = player_row(self.state.session, i)
        if player == "query":
            self.state.select_query(row)
        else:
            self.state.select_gallery(row)
        self.state.set_status(f"Map: opened {m.names[i]} ({m.ms.role(i)})")

    def _on_mouse_clicked(self, ev) -> None:
        if ev.button() != Qt.MouseButton.LeftButton or ev.double() or self.coords is None:
            return
        if not self.vb.sceneBoundingRect().contains(ev.scenePos()):
            return
        p = self.vb.mapSceneToView(ev.scenePos())
        i = self.point_at((p.x(), p.y()))
        if i is not None:
            self.open_point(i)

    def _on_mouse_moved(self, scene_pos) -> None:
        if self.coords is None or not self.vb.sceneBoundingRect().contains(scene_pos):
            return
        p = self.vb.mapSceneToView(scene_pos)
        i = self.point_at((p.x(), p.y()))
        self.set_hover(i)

    def set_hover(self, i: int | None) -> None:
        """Name (and show the thumbnail of) the point under the mouse."""
        if i == self._hover:
            return
        self._hover = i
        m = self.map
        if i is None or m is None:
            self.hover_mark.clear()
            return
        self.hover_mark.setData(pos=[self.coords[i]])
        s = self.state.session
        extra = ""
        q = int(m.ms.query_rows[i])
        if q >= 0 and s.results.valid[q]:
            extra = f" · AP {s.results.ap[q]:.3f}, first true match #{int(s.results.first_rank[q])}"
        text = f"{m.names[i]} · {m.ms.role(i)}{extra}"
        self.hover_text.setText(text)
        self.plot.setToolTip(text)
        self._hover_thumb = m.thumb(s, i)
        if self.loader is not None:
            self.loader.request([self._hover_thumb])
            self._on_frame(self._hover_thumb)

    def _on_frame(self, path: str) -> None:
        if getattr(self, "_hover_thumb", None) == path and self.loader is not None:
            image = self.loader.get(path)
            if image is not None:
                self.hover_thumb.setPixmap(QPixmap.fromImage(image))

    # ------------------------------------------------------------------ selection
    def _set_lasso(self, on: bool) -> None:
        self.vb.lasso_mode = bool(on)  # left drag draws the lasso; the wheel still zooms

    def lasso_start(self, xy: tuple[float, float]) -> None:
        self._lasso = [xy]
        self.lasso_curve.setData([xy[0]], [xy[1]])

    def lasso_add(self, xy: tuple[float, float]) -> None:
        self._lasso.append(xy)
        pts = np.array(self._lasso + [self._lasso[0]])
        self.lasso_curve.setData(pts[:, 0], pts[:, 1])

    def lasso_finish(self) -> None:
        """Select the points inside the lasso drawn."""
        poly = list(self._lasso)
        self._lasso = []
        self.lasso_curve.setData([], [])
        self.select_polygon(poly)

    def select_polygon(self, polygon) -> np.ndarray:
        """Select the points inside ``polygon`` (view coordinates); returns them."""
        if self.coords is None:
            return np.zeros(0, dtype=np.int64)
        pts = em.points_in_polygon(self.coords, polygon)
        self.set_selection(pts)
        return pts

    def set_selection(self, points) -> None:
        """Put ``points`` in the selection list (and ring them on the map)."""
        self.selected = np.asarray(points, dtype=np.int64)
        self.list.clear()
        if self.coords is not None and len(self.selected):
            self.sel_mark.setData(pos=self.coords[self.selected])
        else:
            self.sel_mark.clear()
        # An empty selection needs no map (and must not build one while the tab is hidden).
        m = self.map if len(self.selected) else None
        if m is not None:
            for i in self.selected[:5000]:
                item = QListWidgetItem(f"{m.names[int(i)]} · {m.ms.role(int(i))}")
                item.setData(Qt.ItemDataRole.UserRole, int(i))
                self.list.addItem(item)
        n = len(self.selected)
        if n == 0:
            self.list_label.setText("Selection: none (turn Lasso on and drag around points)")
        else:
            ids = len(set(m.ms.pids[self.selected].tolist())) if m is not None else 0
            cams = len(set(m.ms.camids[self.selected].tolist())) if m is not None else 0
            more = " (first 5000 listed)" if n > 5000 else ""
            self.list_label.setText(f"Selection: {n} tracklets, {ids} identities, {cams} cameras{more} — "
                                    "double-click one to open it")
        self._update_buttons()
        self.selection_changed.emit(n)

    def _update_buttons(self) -> None:
        on = len(self.selected) > 0
        self.open_button.setEnabled(on)
        self.flag_button.setEnabled(on)
        self.export_button.setEnabled(on)
        self.clear_button.setEnabled(on)

    def open_current(self) -> None:
        """Open the list's current item (the first when none is current)."""
        item = self.list.currentItem() or self.list.item(0)
        if item is not None:
            self.open_point(int(item.data(Qt.ItemDataRole.UserRole)))

    def flag_selection(self, flag: str, clear: bool = False) -> list[str]:
        """Ask to flag (or unflag) every selected tracklet as ``flag``; returns their keys."""
        m = self.map
        if m is None or not len(self.selected):
            return []
        keys = [m.ms.keys[int(i)] for i in self.selected]
        self.flag_requested.emit(keys, flag, bool(clear))
        return keys

    def selection_csv(self) -> str:
        m = self.map
        return em.selection_csv(m.ms, self.selected, self.coords, m.names) if m is not None else ""

    def export_csv(self, path: str | Path) -> Path:
        """Write the selection as CSV (key, name, pid, camid, role, rows, x, y)."""
        from reidviewer.workspace import atomic_write_text

        atomic_write_text(path, self.selection_csv())
        self.state.set_status(f"Map: wrote {len(self.selected)} tracklets to {path}")
        return Path(path)

    def export_figure(self, path: str | Path) -> Path:
        """The map as a paper figure (``reidviewer.figures.map``): this projection and colouring,
        the current query starred."""
        from reidviewer.figures.map import export_map

        m, s = self.map, self.state.session
        flagged = [i for i, f in (getattr(s, "frame_flag_map", {}) or {}).items() if f]
        out = export_map(path, s.results, m.coords[self.method], m.ms, color_by=self.color_by, dataset=s.dataset,
                         size="double", flagged=flagged, highlight_query=self.state.query, method=self.method)
        self.state.set_status(f"Map: wrote {out}")
        return out

    def _ask_figure(self) -> None:
        s = self.state.session
        if s is None or self.map is None or self.method not in self.map.coords:
            return
        start = str(self.workspace.figures_dir / f"map-{s.dataset.name}.pdf") if self.workspace is not None else "map.pdf"
        path, _ = QFileDialog.getSaveFileName(self, "Export the map", start, "Figures (*.pdf *.svg *.png)")
        if path:
            self.export_figure(path)

    def _ask_export(self) -> None:
        start = str(self.workspace.root / "map-selection.csv") if self.workspace is not None else "map-selection.csv"
        path, _ = QFileDialog.getSaveFileName(self, "Export the selection", start, "CSV (*.csv)")
        if path:
            self.export_csv(path)


class CameraBiasLabel(QLabel):
    """The camera-bias number of the session's whole set, for the Metrics panel (computed in the
    background: on MARS it measures 4,000 tracklets against 20,000)."""

    def __init__(self, state: ViewerState, parent: QWidget | None = None) -> None:
        super().__init__("", parent)
        self.setObjectName("camera_bias")
        self.setWordWrap(True)
        self.setTextFormat(Qt.TextFormat.RichText)
        self.state = state
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        self.job: Job | None = None
        self.setToolTip(em.CAMERA_BIAS_EXPLANATION)
        state.session_changed.connect(lambda _s: self.refresh())
        state.annotations_changed.connect(lambda identity: self.refresh() if identity else None)

    def refresh(self) -> None:
        from reidviewer.app.similar import camera_bias_of

        if self.job is not None:
            self.job.cancel()
            self.job = None
        session = self.state.session
        if session is None:
            self.setText("")
            return
        if not self.isVisible():
            # Computed when Metrics is first shown: at MARS size it is seconds of CPU that
            # would otherwise compete with the launch (and with every session change).
            self._stale = True
            self.setText("Camera bias: computed when shown")
            return
        self._stale = False
        self.setText("Camera bias: computing…")
        job = Job(lambda progress, cancel: camera_bias_of(session, progress, cancel))
        # The job can end after this label is gone (the window closed meanwhile): the
        # callbacks check first (a lambda connection is not cut when its widget dies).
        job.signals.finished.connect(lambda bias, s=session: alive(self) and self._done(s, bias))
        job.signals.failed.connect(lambda msg: alive(self) and self.setText(f"Camera bias: n/a ({msg.splitlines()[0]})"))
        self.job = job
        start_job(job, self.pool)

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        if getattr(self, "_stale", False):
            self.refresh()

    def _done(self, session, bias) -> None:
        if session is not self.state.session:
            return
        self.job = None
        self.bias = bias
        self.setText(f"{html.escape(bias.text())}<br><span style='color:#666'>"
                     f"{html.escape(em.CAMERA_BIAS_EXPLANATION)}</span>")
