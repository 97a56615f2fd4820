"""The saliency overlay of both players (#20): *where* the model looks, over the frame, synced to
the playhead; the attention strips (*when*) stay underneath.

``SaliencyOverlay`` owns the controls (toggle, method, colour map, opacity, legend) and a worker
pool of one thread. When the overlay is on and the probe/gallery pair changes, it starts a
``tasks.Job`` computing ``engine.saliency.SaliencyEngine.pair`` (cached in the workspace): the GUI
never waits, a new pair cancels the job of the old one. The players draw what
``overlay_image`` returns for their current frame (``Player.overlay_for``).

The overlay's alpha follows the map: opacity × saliency, so where the model does not look the
frame shows unchanged and the overlay never hides what it explains (``engine.saliency.overlay_alpha``).
"""
from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QRectF, QSize, Qt, QThreadPool, Signal
from PySide6.QtGui import QColor, QImage, QLinearGradient, QPainter, QPaintEvent
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QHBoxLayout, QLabel, QSizePolicy, QSlider,
                               QToolButton, QWidget)

from reidviewer.app.tasks import Job, start_job

#: Colour maps (matplotlib's values at 9 stops, so figures draw the same with matplotlib).
COLORMAPS: dict[str, np.ndarray] = {
    "inferno": np.array([[0, 0, 4], [31, 12, 72], [85, 15, 109], [136, 34, 106], [186, 54, 85],
                         [227, 89, 51], [249, 140, 10], [249, 201, 50], [252, 255, 164]], np.float64),
    "viridis": np.array([[68, 1, 84], [71, 44, 122], [59, 81, 139], [44, 113, 142], [33, 144, 141],
                         [39, 173, 129], [92, 200, 99], [170, 220, 50], [253, 231, 37]], np.float64),
    "jet": np.array([[0, 0, 128], [0, 0, 255], [0, 128, 255], [0, 255, 255], [128, 255, 128],
                     [255, 255, 0], [255, 128, 0], [255, 0, 0], [128, 0, 0]], np.float64),
}
DEFAULT_COLORMAP = "inferno"
DEFAULT_OPACITY = 0.6
METHOD_LABELS = {"gradcam": "Grad-CAM", "energy": "energy"}


def colormap_lut(name: str) -> np.ndarray:
    """(256, 3) uint8 lookup table of colour map ``name``."""
    stops = COLORMAPS[name]
    v = np.linspace(0, len(stops) - 1, 256)
    lo = np.floor(v).astype(int)
    hi = np.minimum(lo + 1, len(stops) - 1)
    t = (v - lo)[:, None]
    return (stops[lo] * (1 - t) + stops[hi] * t).round().astype(np.uint8)


def overlay_rgba(m: np.ndarray, colormap: str, opacity: float) -> np.ndarray:
    """(H, W, 4) uint8 RGBA of a [0, 1] map: colour from the map, alpha from ``engine.saliency.overlay_alpha``."""
    from reidviewer.engine.saliency import overlay_alpha

    m = np.clip(np.nan_to_num(m), 0, 1)
    idx = (m * 255 + 0.5).astype(np.uint8)
    out = np.empty(m.shape + (4,), np.uint8)
    out[..., :3] = colormap_lut(colormap)[idx]
    out[..., 3] = (overlay_alpha(m, opacity) * 255 + 0.5).astype(np.uint8)
    return out


class Legend(QWidget):
    """A small horizontal colour bar: low … high saliency."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.colormap = DEFAULT_COLORMAP
        self.setFixedSize(QSize(76, 18))
        self.setToolTip("Saliency colour scale: 0 (left) to the tracklet's maximum (right; the frame's with "
                        "'per frame'); weak saliency is also more transparent")

    def set_colormap(self, name: str) -> None:
        self.colormap = name
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        p = QPainter(self)
        bar = QRectF(12, 3, self.width() - 36, self.height() - 6)
        grad = QLinearGradient(bar.left(), 0, bar.right(), 0)
        for i, c in enumerate(COLORMAPS[self.colormap]):
            grad.setColorAt(i / (len(COLORMAPS[self.colormap]) - 1), QColor(int(c[0]), int(c[1]), int(c[2])))
        p.fillRect(bar, grad)
        p.setPen(self.palette().windowText().color())
        f = p.font()
        f.setPointSizeF(max(6.0, f.pointSizeF() * 0.8))
        p.setFont(f)
        p.drawText(QRectF(0, 0, 10, self.height()), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, "0")
        p.drawText(QRectF(bar.right() + 2, 0, 24, self.height()), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                   "max")
        p.end()


class SaliencyOverlay(QObject):
    """Controls and maps of the saliency overlay of the probe and gallery players.

    Args:
        workspace: the workspace (maps are cached in it).
        state: the ``ViewerState``.
        players: ``{"probe": Player, "gallery": Player}``.

    Signals:
        maps_ready(): maps for the pair in view arrived (tests wait on it).
        failed(str): the job failed, in words.
    """

    maps_ready = Signal()
    failed = Signal(str)
    exported = Signal(str)

    def __init__(self, workspace: Any, state: Any, players: dict[str, Any], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.workspace = workspace
        self.state = state
        self.players = players
        self.engine: Any = None
        self.reason: str | None = "nothing is open"
        self.maps: dict[str, Any] = {}
        self.maps_key: tuple | None = None
        self.job: Job | None = None
        self._job_key: tuple | None = None
        self._images: dict[tuple, QImage] = {}
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)

        self.controls = QWidget()
        self.toggle_box = QCheckBox("Saliency (S)")
        self.method = QComboBox()
        for key, label in METHOD_LABELS.items():
            self.method.addItem(label, key)
        self.method.setToolTip("Grad-CAM w.r.t. the pair's distance: what made this probe and this gallery "
                               "tracklet close (default); "
                               "activation energy: where the last conv stage responds, whatever the pair")
        self.colormap = QComboBox()
        for name in COLORMAPS:
            self.colormap.addItem(name, name)
        self.colormap.setToolTip("Colour map of the overlay")
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(int(DEFAULT_OPACITY * 100))
        self.opacity.setFixedWidth(64)
        self.opacity.setToolTip("Overlay opacity (at the strongest saliency; weak saliency is more transparent)")
        self.per_frame = QCheckBox("per frame")
        self.per_frame.setToolTip("Stretch each frame's map to its own maximum. Off: one scale per tracklet, "
                                  "so a frame the model hardly uses stays faint")
        self.legend = Legend()
        self.export_button = QToolButton()
        self.export_button.setText("Export…")
        self.export_button.setToolTip("Export the \u201cwhen and where\u201d figure of this pair: frames with their "
                                      "saliency, attention of every iteration under them (PDF, SVG or PNG)")
        self.export_button.clicked.connect(self._ask_export)
        self.status = QLabel("")
        self.status.setMinimumWidth(10)
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        row = QHBoxLayout(self.controls)
        row.setContentsMargins(0, 0, 0, 0)
        for w in (self.toggle_box, self.method, self.colormap, self.opacity, self.per_frame, self.legend,
                  self.export_button):
            row.addWidget(w)
        row.addWidget(self.status, 1)
        self.toggle_box.toggled.connect(self._on_toggled)
        self.method.currentIndexChanged.connect(lambda _i: self._request())
        self.colormap.currentIndexChanged.connect(self._on_style)
        self.opacity.valueChanged.connect(self._on_style)
        self.per_frame.toggled.connect(self._on_style)
        for which, player in players.items():
            player.overlay_for = (lambda i, image, w=which: self.overlay_image(w, i, image))
        state.session_changed.connect(self._on_session)
        state.query_changed.connect(lambda _r: self._request())
        state.gallery_changed.connect(lambda _r: self._request())
        self._set_available(None if state.session is None else state.session)

    # -- availability -------------------------------------------------------------------------
    def _set_available(self, session: Any) -> None:
        from reidviewer.engine.saliency import SaliencyEngine  # torch is imported on first use only

        self.engine = None
        if session is None:
            self.reason = "nothing is open"
        else:
            self.engine = SaliencyEngine(session.dataset, session.results, self.workspace,
                                         checkpoint=getattr(session, "checkpoint", None))
            self.reason = self.engine.unavailable
            if self.reason:
                self.engine = None
        enabled = self.engine is not None
        for w in (self.toggle_box, self.method, self.colormap, self.opacity, self.per_frame, self.export_button):
            w.setEnabled(enabled)
        tip = ("Show where the network looks, over both players (S)" if enabled
               else f"Saliency unavailable: {self.reason}")
        self.toggle_box.setToolTip(tip)
        if not enabled:
            self.toggle_box.blockSignals(True)
            self.toggle_box.setChecked(False)
            self.toggle_box.blockSignals(False)
            self.status.setText("" if session is None else "unavailable")
        else:
            self.status.setText("")

    def _on_session(self, session: Any) -> None:
        self.cancel()
        self.maps, self.maps_key = {}, None
        self._images.clear()
        self._set_available(session)
        self._refresh_players()
        self._request()

    # -- user actions -------------------------------------------------------------------------
    @property
    def enabled(self) -> bool:
        return self.toggle_box.isChecked()

    def toggle(self) -> None:
        """Turn the overlay on or off (the S key); does nothing when unavailable."""
        if self.toggle_box.isEnabled():
            self.toggle_box.toggle()

    def set_enabled(self, on: bool) -> None:
        if self.toggle_box.isEnabled():
            self.toggle_box.setChecked(bool(on))

    def _on_toggled(self, on: bool) -> None:
        if on:
            self._request()
        self._refresh_players()

    def _on_style(self, *_a) -> None:
        self.legend.set_colormap(self.colormap.currentData())
        self._images.clear()
        self._refresh_players()

    # -- the job ------------------------------------------------------------------------------
    def _pair(self) -> tuple | None:
        s = self.state
        if s.session is None:
            return None
        p, g = s.tracklet("probe"), s.tracklet("gallery")
        if p is None or g is None:
            return None
        return int(p.index), int(g.index), self.method.currentData()

    def _request(self) -> None:
        """Compute (or read) the maps of the pair in view, in the background, when the overlay is on."""
        key = self._pair()
        if key != self.maps_key:
            self.maps, self.maps_key = {}, None
            self._images.clear()
            self._refresh_players()
        if not self.enabled or self.engine is None or key is None or key == self.maps_key or key == self._job_key:
            return
        self.cancel()
        engine = self.engine
        qi, gi, method = key

        def work(progress, cancel):
            q, g = engine.pair(qi, gi, method, progress=progress, cancel=cancel)
            return key, q, g

        job = Job(work)
        job.signals.finished.connect(self._on_done)
        job.signals.failed.connect(self._on_failed)
        job.signals.cancelled.connect(lambda j=job: self._on_job_over(j))
        self.job, self._job_key = job, key
        self.status.setText("computing…")
        start_job(job, self.pool)

    def _on_job_over(self, job: Job) -> None:
        if self.job is job:
            self.job, self._job_key = None, None

    def _on_done(self, result: Any) -> None:
        key, q, g = result
        if self.job is not None and self._job_key == key:
            self.job, self._job_key = None, None
        if key != self._pair():
            return  # the user moved on; the maps are cached for when they come back
        self.maps, self.maps_key = {"probe": q, "gallery": g}, key
        self._images.clear()
        d = "" if np.isnan(q.distance) else f" · d = {q.distance:.3g}"
        self.status.setText(f"{METHOD_LABELS[key[2]]}{d}")
        self.status.setToolTip(f"{METHOD_LABELS[key[2]]} maps of this pair{d}")
        self._refresh_players()
        self.maps_ready.emit()

    def _on_failed(self, message: str) -> None:
        self.job, self._job_key = None, None
        self.status.setText("failed")
        self.status.setToolTip(message)
        self.failed.emit(message)

    # -- the figure ---------------------------------------------------------------------------
    def _ask_export(self) -> None:
        s = self.state
        if s.session is None or s.query is None or s.gallery is None:
            return
        path, _ = QFileDialog.getSaveFileName(self.controls, "Export saliency figure", "saliency.pdf",
                                              "Figures (*.pdf *.svg *.png)")
        if path:
            self.export_to(path)

    def export_to(self, path: str) -> Job | None:
        """Write the figure of the pair in view to ``path`` in the background (``exported`` on success)."""
        s = self.state
        if self.engine is None or s.session is None or s.query is None or s.gallery is None:
            return None
        if s.session.is_training_row(s.gallery):
            self.status.setText("the figure pairs a query with a gallery tracklet: pick one (not a training tracklet)")
            return None
        from reidviewer.figures.saliency import export_saliency

        engine, dataset, results = self.engine, s.session.dataset, s.session.results
        q, g, method = int(s.query), int(s.gallery), self.method.currentData()
        cmap, opacity, per_frame = self.colormap.currentData(), self.opacity.value() / 100, self.per_frame.isChecked()

        def work(progress, cancel):
            return str(export_saliency(path, dataset, results, self.workspace, q, g, method=method, colormap=cmap,
                                       opacity=opacity, engine=engine, progress=progress, per_frame=per_frame))

        job = Job(work)
        job.signals.finished.connect(lambda p: (self.status.setText(f"wrote {p}"), self.exported.emit(p)))
        job.signals.failed.connect(self._on_failed)
        self.status.setText("exporting…")
        return start_job(job, self.pool)

    def cancel(self) -> None:
        """Cancel the job in flight (a new pair, a new session, closing)."""
        if self.job is not None:
            self.job.cancel()
        self.job, self._job_key = None, None

    def shutdown(self, msecs: int = 3000) -> None:
        self.cancel()
        self.pool.waitForDone(msecs)

    # -- drawing ------------------------------------------------------------------------------
    def _refresh_players(self) -> None:
        for player in self.players.values():
            player._show()

    def overlay_image(self, which: str, frame: int, image: QImage | None) -> QImage | None:
        """The RGBA overlay of ``which``'s frame ``frame`` at ``image``'s size, or None."""
        if not self.enabled or image is None or image.isNull() or which not in self.maps:
            return None
        w, h = image.width(), image.height()
        cmap, opacity, per_frame = self.colormap.currentData(), self.opacity.value() / 100, self.per_frame.isChecked()
        key = (which, int(frame), w, h, cmap, opacity, per_frame)
        got = self._images.get(key)
        if got is None:
            m = self.maps[which].frame_map(int(frame), h, w, per_frame)
            if m is None:
                return None  # a frame beyond the evaluated clip
            rgba = np.ascontiguousarray(overlay_rgba(m, cmap, opacity))
            got = QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888).copy()
            if len(self._images) > 512:
                self._images.clear()
            self._images[key] = got
        return got
