"""A tracklet player: the frame, an attention colour strip, and transport controls.

A ``Player`` shows the probe or the gallery tracklet of a ``ViewerState``: it loads the
tracklet when the selection changes, shows annotation flags when they change, colours its
strip by the highlighted iteration, and keeps its playhead and the state's in step (the
attention plot under it follows the same playhead). Frames are counted from 1 on screen.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QImage, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from reidviewer.app.colors import FLAG, MATCH, NON_MATCH, viridis
from reidviewer.app.frame_loader import FrameLoader
from reidviewer.app.state import ViewerState

#: Frames decoded ahead of the playhead on every move, so playback never waits on the disk.
DECODE_AHEAD = 32
#: Frames decoded at once when a tracklet is loaded; the rest of it follows after
#: ``PREFETCH_DELAY_MS``. A query switch loads two tracklets: decoding 64 frames of each at once
#: competed with painting the switch on two cores (switch median 97-118 ms against 76-100 with
#: this, same runs, MARS size), and browsing queries quickly decoded tracklets nobody watched.
FIRST_FRAMES = 8
PREFETCH_DELAY_MS = 150


class FrameView(QWidget):
    """Draws one frame scaled to fit (aspect kept, nearest-neighbour: re-ID crops are tiny)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.image: QImage | None = None
        self.message = ""
        self.border: QColor | None = None
        self.flag_text = ""
        self.overlay: QImage | None = None  # saliency (#20): RGBA drawn over the frame, same size
        self.setMinimumSize(96, 160)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt API)
        return QSize(160, 300)

    def set_image(self, image: QImage | None, message: str = "") -> None:
        """Show ``image`` (or ``message`` when there is none yet)."""
        self.image = image
        self.message = message
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(30, 30, 30))
        if self.image is not None and not self.image.isNull():
            iw, ih = self.image.width(), self.image.height()
            scale = min(self.width() / iw, self.height() / ih)
            w, h = iw * scale, ih * scale
            target = QRectF((self.width() - w) / 2, (self.height() - h) / 2, w, h)
            p.drawImage(target, self.image)
            if self.overlay is not None and not self.overlay.isNull():  # saliency (#20)
                p.save()
                p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
                p.drawImage(target, self.overlay)
                p.restore()
            if self.border is not None:
                p.setPen(QPen(self.border, 4))
                p.drawRect(target.adjusted(2, 2, -2, -2))
        if self.message:
            p.setPen(QColor(230, 230, 230))
            p.drawText(self.rect().adjusted(6, 6, -6, -6), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.message)
        if self.flag_text:
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(FLAG)
            band = QRectF(0, 0, self.width(), 22)
            p.drawRect(band)
            p.setPen(QColor(0, 0, 0))
            f = QFont(p.font())
            f.setBold(True)
            p.setFont(f)
            p.drawText(band, Qt.AlignmentFlag.AlignCenter, self.flag_text)
        p.end()


class AttentionStrip(QWidget):
    """One coloured cell per frame (viridis of the highlighted iteration's attention).

    Flagged frames carry an orange tick underneath; the current frame is outlined.
    Clicking a cell seeks there.
    """

    seek = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.values = np.zeros(0)
        self.current = 0
        self.flags: set[int] = set()
        self._cells: QImage | None = None
        self.setFixedHeight(22)
        self.setToolTip("Attention per frame (highlighted iteration); click to seek")

    def set_values(self, values: np.ndarray | None, length: int) -> None:
        """Attention of each frame (NaN where the frame was not evaluated)."""
        if values is None:
            values = np.full(length, np.nan)
        self.values = np.asarray(values, dtype=np.float64)
        self._cells = self._cells_image(self.values)
        self.update()

    @staticmethod
    def _cells_image(values: np.ndarray) -> QImage | None:
        """One pixel per frame (viridis, grey where not evaluated), drawn scaled: one drawImage
        per paint instead of a rectangle per frame (the strip repaints at every frame)."""
        n = len(values)
        if not n:
            return None
        finite = np.isfinite(values)
        rgb = np.asarray(viridis(np.where(finite, values, 0)), dtype=np.float64)[:, :3]
        rgb[~finite] = 70
        row = np.ascontiguousarray(np.clip(np.rint(rgb), 0, 255).astype(np.uint8).reshape(1, n, 3))
        return QImage(row.data, n, 1, 3 * n, QImage.Format.Format_RGB888).copy()

    def set_current(self, i: int) -> None:
        self.current = i
        self.update()

    def _cell(self, i: int) -> QRectF:
        n = max(len(self.values), 1)
        w = self.width() / n
        return QRectF(i * w, 0, w, self.height() - 5)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(45, 45, 45))
        n = len(self.values)
        if n:
            if self._cells is not None and self._cells.width() == n:
                p.drawImage(QRectF(0, 0, self.width(), self.height() - 5), self._cells)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(FLAG)
            for i in self.flags:
                if 0 <= i < n:
                    r = self._cell(i)
                    p.drawRect(QRectF(r.left(), self.height() - 4, max(r.width(), 2), 4))
            if 0 <= self.current < n:
                p.setBrush(Qt.BrushStyle.NoBrush)
                p.setPen(QPen(QColor(255, 255, 255), 2))
                p.drawRect(self._cell(self.current).adjusted(1, 1, -1, -1))
        p.end()

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        n = len(self.values)
        if n:
            i = int(event.position().x() / max(self.width(), 1) * n)
            self.seek.emit(max(0, min(n - 1, i)))


class Player(QWidget):
    """Plays one tracklet: frame view, attention strip, and play/step/scrub/speed/loop controls.

    Args:
        title: the heading (``Probe (query)``, ``Gallery``).
        loader: the frame loader.
        state: the viewer state to show (``None``: a stand-alone player fed by ``set_tracklet``).
        which: ``probe`` or ``gallery``: which of the state's tracklets it plays.

    Signals:
        frame_changed(int): the current frame index changed (by playback, step, scrub or seek).
        playing_changed(bool): playback started or stopped.
        context_menu_requested(QPoint): right-click (the annotation controller answers).
    """

    frame_changed = Signal(int)
    playing_changed = Signal(bool)
    context_menu_requested = Signal(object)

    SPEEDS = (0.25, 0.5, 1.0, 2.0, 4.0)

    def __init__(self, title: str, loader: FrameLoader, state: ViewerState | None = None, which: str = "probe",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.loader = loader
        self.state = state
        self.which = which
        self.paths: list[str] = []
        self.attention: np.ndarray | None = None  # (K+1, T_eval)
        self.iteration = 0
        self.index = 0
        self.base_fps = 30.0
        self.flags: dict[int, str] = {}
        #: saliency (#20): ``overlay_for(frame, image)`` → QImage drawn over the frame, or None.
        self.overlay_for = None

        self.heading = title
        self.title = QLabel(f"<b>{title}</b>")
        self.caption = QLabel("")
        self.caption.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        for label in (self.title, self.caption):
            label.setMinimumWidth(10)
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.view = FrameView()
        self.strip = AttentionStrip()
        self.strip.seek.connect(self.set_frame)

        self.play_button = QToolButton()
        self.play_button.setText("▶")
        self.play_button.setToolTip("Play / pause (Space)")
        self.play_button.clicked.connect(self.toggle)
        back = QToolButton()
        back.setText("◀|")
        back.setToolTip("Previous frame (←)")
        back.clicked.connect(lambda: self.step(-1))
        fwd = QToolButton()
        fwd.setText("|▶")
        fwd.setToolTip("Next frame (→)")
        fwd.clicked.connect(lambda: self.step(1))
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setMinimumWidth(24)
        self.slider.setToolTip("Scrub")
        self.slider.valueChanged.connect(self.set_frame)
        self.counter = QLabel("0 / 0")
        self.counter.setMinimumWidth(58)
        self.counter.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.speed = QComboBox()
        for s in self.SPEEDS:
            self.speed.addItem(f"{s:g}×", s)
        self.speed.setCurrentIndex(2)
        self.speed.setToolTip("Playback speed")
        self.speed.currentIndexChanged.connect(self._update_interval)
        self.loop = QCheckBox("⟲")
        self.loop.setToolTip("Loop: start again after the last frame")
        self.loop.setChecked(True)

        controls = QHBoxLayout()
        controls.setContentsMargins(0, 0, 0, 0)
        for w in (back, self.play_button, fwd):
            controls.addWidget(w)
        controls.addWidget(self.slider, 1)
        controls.addWidget(self.counter)
        controls.addWidget(self.speed)
        controls.addWidget(self.loop)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(3)
        layout.addWidget(self.title)
        layout.addWidget(self.caption)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.strip)
        layout.addLayout(controls)

        self._prefetch = QTimer(self)  # the rest of the tracklet, once the switch has painted
        self._prefetch.setSingleShot(True)
        self._prefetch.timeout.connect(self._decode_the_rest)
        self.timer = QTimer(self)
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.timeout.connect(self._advance)
        self._update_interval()
        loader.frame_ready.connect(self._on_frame_ready)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(lambda pos: self.context_menu_requested.emit(pos))
        if state is not None:
            self._bind(state)

    # -- the state ---------------------------------------------------------------
    def _bind(self, state: ViewerState) -> None:
        state.session_changed.connect(lambda _s: self.clear())
        (state.query_changed if self.which == "probe" else state.gallery_changed).connect(lambda _r: self.reload())
        state.annotations_changed.connect(self._on_annotations)
        state.iteration_changed.connect(self.set_iteration)
        state.frame_changed.connect(lambda who, i: self.set_frame(i) if who == self.which else None)
        self.frame_changed.connect(lambda i: state.set_frame(self.which, i))

    def _tracklet(self):
        return self.state.tracklet(self.which) if self.state is not None else None

    def reload(self) -> None:
        """Show the state's probe (or gallery) tracklet."""
        s = self.state
        t = self._tracklet()
        if t is None or s is None:
            self.clear()
            return
        session = s.session
        caption, border = session.caption(t), None
        if self.which == "gallery" and s.query is not None:
            # Rank and match on the title line, the tracklet on the caption line: both fit.
            self.set_title(f"Gallery · {session.match_text(s.query, s.gallery)}")
            border = match_border(session.is_match(s.query, s.gallery))
        self.set_tracklet(t.frame_paths(), caption, session.attention(t.index), border, session.frame_flags(t.index))
        self.set_iteration(s.iteration)

    def clear(self) -> None:
        """Show nothing."""
        self.pause()
        self.set_title(self.heading)
        self.set_tracklet([], "")

    def set_title(self, text: str) -> None:
        """The bold first line (``Probe (query)``, ``Gallery · rank 3 · ✓ true match``)."""
        self.title.setText(f"<b>{text}</b>")
        self.title.setToolTip(text)

    def _on_annotations(self, identity: bool) -> None:
        t = self._tracklet()
        if t is None:
            return
        if identity and self.which == "gallery":
            self.reload()  # the caption says true or false match, which may have changed
        else:
            self.set_flags(self.state.session.frame_flags(t.index))

    # -- content -----------------------------------------------------------------
    def set_tracklet(
        self,
        paths: list[str] | list[Path],
        caption: str = "",
        attention: np.ndarray | None = None,
        border: QColor | None = None,
        flags: dict[int, str] | None = None,
    ) -> None:
        """Load a tracklet: its frame paths, a caption, its attention (K+1, T) and frame flags."""
        self.paths = [str(p) for p in paths]
        self.caption.setText(caption)
        self.caption.setToolTip(caption)
        self.attention = None if attention is None else np.asarray(attention)
        self.view.border = border
        self.flags = dict(flags or {})
        self._prefetch.start(PREFETCH_DELAY_MS)  # the first frames: set_frame(0) below
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(len(self.paths) - 1, 0))
        self.slider.blockSignals(False)
        self._refresh_strip()
        self.index = -1
        self.set_frame(0, ahead=FIRST_FRAMES)

    def _decode_the_rest(self) -> None:
        self.loader.request(self.paths[:64])
        self.loader.request(self.paths[64:], priority=-1)

    def set_flags(self, flags: dict[int, str]) -> None:
        """Replace the frame flags shown (frame index → label)."""
        self.flags = dict(flags)
        self._refresh_strip()
        self._show()

    def set_iteration(self, k: int) -> None:
        """Colour the strip by refinement iteration ``k``."""
        self.iteration = k
        self._refresh_strip()

    def _refresh_strip(self) -> None:
        n = len(self.paths)
        values = np.full(n, np.nan)
        if self.attention is not None and self.attention.size:
            k = min(self.iteration, self.attention.shape[0] - 1)
            row = self.attention[k]
            m = min(len(row), n)
            values[:m] = row[:m]
        self.strip.set_values(values, n)
        self.strip.flags = set(self.flags)
        self.strip.set_current(self.index)

    # -- playback ----------------------------------------------------------------
    @property
    def length(self) -> int:
        return len(self.paths)

    @property
    def playing(self) -> bool:
        return self.timer.isActive()

    def set_frame(self, i: int, ahead: int = DECODE_AHEAD) -> None:
        """Show frame ``i`` (clamped), decoding the next ``ahead`` frames."""
        if not self.paths:
            self.index = 0
            self.view.set_image(None, "no tracklet")
            self.counter.setText("0 / 0")
            return
        i = max(0, min(int(i), len(self.paths) - 1))
        if i == self.index:
            return
        self.index = i
        self._show()
        self.slider.blockSignals(True)
        self.slider.setValue(i)
        self.slider.blockSignals(False)
        self.counter.setText(f"{i + 1} / {len(self.paths)}")
        self.strip.set_current(i)
        self.loader.request(self.paths[i : i + ahead])
        self.frame_changed.emit(i)

    def _show(self) -> None:
        if not self.paths:
            return
        path = self.paths[self.index]
        image = self.loader.get(path)
        error = self.loader.error(path)
        self.view.flag_text = self.flags.get(self.index, "")
        # saliency (#20): the overlay of the frame under the playhead
        self.view.overlay = self.overlay_for(self.index, image) if self.overlay_for is not None else None
        if error:
            self.view.set_image(image, f"cannot show this frame:\n{error}")
        else:
            self.view.set_image(image, "" if image is not None else "loading…")

    def _on_frame_ready(self, path: str) -> None:
        if self.paths and 0 <= self.index < len(self.paths) and self.paths[self.index] == path:
            self._show()

    def step(self, delta: int) -> None:
        """Move ``delta`` frames (wraps when looping)."""
        if not self.paths:
            return
        i = self.index + delta
        if self.loop.isChecked():
            i %= len(self.paths)
        self.set_frame(i)

    def play(self) -> None:
        if self.paths and not self.timer.isActive():
            self.timer.start()
            self.play_button.setText("❚❚")
            self.playing_changed.emit(True)

    def pause(self) -> None:
        if self.timer.isActive():
            self.timer.stop()
            self.play_button.setText("▶")
            self.playing_changed.emit(False)

    def toggle(self) -> None:
        """Play if paused, pause if playing."""
        self.pause() if self.playing else self.play()

    def _advance(self) -> None:
        if self.index + 1 >= len(self.paths) and not self.loop.isChecked():
            self.pause()
            return
        self.step(1)

    def _update_interval(self) -> None:
        speed = self.speed.currentData() or 1.0
        self.timer.setInterval(max(1, int(round(1000.0 / (self.base_fps * speed)))))


def match_border(is_match: bool | None) -> QColor | None:
    """Green for a true match, red for a false one, none when unknown."""
    if is_match is None:
        return None
    return MATCH if is_match else NON_MATCH
