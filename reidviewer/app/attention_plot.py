"""The attention plot: one curve per refinement iteration, a playhead, click to seek.

Bound to a ``ViewerState``, it plots the attention of the probe (or the gallery tracklet),
marks flagged frames, highlights the state's iteration and follows its playhead; clicking
moves the playhead. Frames are numbered from 1 on the axis, as in the player. A model that
pools frames uniformly (mean pooling, RCN) has no attention: the plot says so instead of
drawing a flat line. Curves that lie on top of each other are named in words, so a user who
sees two curves for four iterations knows where the others went.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from reidviewer.app.colors import FLAG, iteration_color
from reidviewer.app.state import ViewerState
from reidviewer.app.viewmodel import UNIFORM_SPREAD, attention_spread, coinciding_iterations


def _ignored_width(label: QLabel) -> QLabel:
    """A label that never widens the window (its full text is in its tooltip)."""
    label.setMinimumWidth(10)
    label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
    return label


class AttentionPlot(QWidget):
    """Per-frame attention α⁽⁰⁾..α⁽ᴷ⁾ of one tracklet, synced to a player.

    Args:
        state: the viewer state (``None``: a stand-alone plot fed by ``set_attention``).
        which: ``probe`` or ``gallery``.

    Signals:
        seek(int): the user clicked the plot at a frame (0-based).
    """

    seek = Signal(int)

    def __init__(self, state: ViewerState | None = None, which: str = "probe", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.which = which
        pg.setConfigOptions(antialias=True)
        self.plot = pg.PlotWidget(background="w")
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.plot.setLabel("bottom", "frame")
        self.plot.setLabel("left", "attention α")
        self.plot.setYRange(0, 1.24, padding=0)  # headroom above α = 1 for the legend row
        self.plot.showGrid(x=False, y=True, alpha=0.25)
        self.legend = self.plot.addLegend(offset=(4, 1), labelTextColor="k", brush=pg.mkBrush(255, 255, 255, 150),
                                          colCount=4, verSpacing=-6, horSpacing=6)
        self.playhead = pg.InfiniteLine(pos=1, angle=90, pen=pg.mkPen((40, 40, 40), width=1.5))
        self.plot.addItem(self.playhead, ignoreBounds=True)
        self.notice = _ignored_width(QLabel(""))
        self.notice.setWordWrap(True)
        self.notice.setStyleSheet("color: #a33a00; font-weight: bold;")
        # Always shown, two lines high: a notice that came and went (or wrapped to another
        # height) re-laid out the whole viewer page at every query switch — the players, both
        # plots and every control under them repainted twice (a third of a switch's time).
        self.notice.setFixedHeight(2 * self.notice.fontMetrics().lineSpacing() + 2)
        self.notice.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.flag_items: list[pg.InfiniteLine] = []
        self.plot.scene().sigMouseClicked.connect(self._on_click)

        self.toggles_box = QHBoxLayout()
        self.toggles_box.setContentsMargins(4, 0, 4, 0)
        self.k_label = QLabel("k:")
        self.toggles_box.addWidget(self.k_label)
        self.toggles: list[QCheckBox] = []
        self.title = _ignored_width(QLabel(""))

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        head = QHBoxLayout()
        head.addWidget(self.title, 1)
        head.addLayout(self.toggles_box)
        layout.addLayout(head)
        layout.addWidget(self.notice)
        layout.addWidget(self.plot, 1)

        self.curves: list[pg.PlotDataItem] = []
        #: Compare mode: model B's curves, dashed (told apart without colour), same colours per k.
        self.curves_b: list[pg.PlotDataItem] = []
        self.attention_b = np.zeros((0, 0))
        self.attention = np.zeros((0, 0))
        self.highlight = 0
        self.length = 0
        if state is not None:
            self._bind(state)

    # ------------------------------------------------------------------ the state
    def _bind(self, state: ViewerState) -> None:
        state.session_changed.connect(lambda _s: (self.set_attention(None, ""), self.set_attention_b(None)))
        (state.query_changed if self.which == "probe" else state.gallery_changed).connect(lambda _r: self.reload())
        state.comparison_changed.connect(lambda _c: self.reload())
        state.annotations_changed.connect(lambda _i: self._refresh_flags())
        state.iteration_changed.connect(self.set_highlight)
        state.frame_changed.connect(lambda who, i: self.set_playhead(i) if who == self.which else None)
        self.seek.connect(lambda i: state.set_frame(self.which, i))

    def _tracklet(self):
        return self.state.tracklet(self.which) if self.state is not None else None

    def reload(self) -> None:
        """Plot the state's probe (or gallery) tracklet."""
        t = self._tracklet()
        if t is None:
            self.set_attention(None, "")
            self.set_attention_b(None)
            return
        session = self.state.session
        comparing = self.state.comparison
        # The tracklet is named in the player above; the plot's own title stays short.
        title = f"{'probe' if self.which == 'probe' else 'gallery'} attention"
        if comparing is not None:
            title = f"{'probe' if self.which == 'probe' else 'gallery'} · B dashed"
        self.length = len(t)
        if not session.has_attention:
            self.show_uniform(title, len(t), set(session.frame_flags(t.index)))
        else:
            self.set_attention(session.attention(t.index), title, set(session.frame_flags(t.index)))
        self.set_attention_b(comparing.session.attention(t.index) if comparing is not None else None)
        if comparing is not None and not comparing.session.has_attention:
            self.notice.setText((self.notice.text() + " · " if self.notice.text() else "")
                                + "B pools frames uniformly (no curve)")
        self.set_highlight(self.state.iteration)
        self.set_playhead(self.state.frames[self.which])

    def _refresh_flags(self) -> None:
        t = self._tracklet()
        if t is not None:
            self.set_flags(set(self.state.session.frame_flags(t.index)))

    # ------------------------------------------------------------------ drawing
    def _show_toggles(self, on: bool) -> None:
        self.k_label.setVisible(on)
        for box in self.toggles:
            box.setVisible(on)

    def show_uniform(self, title: str, length: int, flags: set[int] | None = None) -> None:
        """A model without attention: no curves, a sentence saying it weights frames alike."""
        self.title.setText(title)
        self.title.setToolTip(title)
        self.attention = np.zeros((0, 0))
        self.length = length
        for c in self.curves:
            c.setData([], [])
        self._show_toggles(False)
        self.legend.setVisible(False)
        self.notice.setText("This model pools frames uniformly (mean): every frame has the same weight.")
        self.notice.setToolTip(self.notice.text())
        self._notice_style("color: #555;")
        self.plot.setXRange(0.5, max(length, 1) + 0.5, padding=0)
        self.set_flags(flags or set())

    def set_attention(self, attention: np.ndarray | None, title: str = "", flags: set[int] | None = None) -> None:
        """Plot ``attention`` of shape (K+1, T); ``None`` clears the plot.

        Curves, legend entries and toggles are reused when the number of iterations does not
        change (the usual case when switching queries): rebuilding them cost ~25 ms a plot.
        """
        self.title.setText(title)
        self.title.setToolTip(title)
        self._notice_style("color: #a33a00; font-weight: bold;")
        self.attention = np.zeros((0, 0)) if attention is None else np.asarray(attention, dtype=np.float64)
        if self.attention.size == 0:
            for c in self.curves:
                c.setData([], [])
            self._show_toggles(False)
            self.legend.setVisible(False)
            self.notice.setText("no attention for this tracklet" if title else "")
            self.set_flags(set())
            return
        k1, t = self.attention.shape
        self.length = t
        if len(self.curves) != k1:
            self._build_curves(k1)
        self._show_toggles(k1 > 1)
        self.legend.setVisible(True)
        x = np.arange(1, t + 1)
        for k, curve in enumerate(self.curves):
            curve.setData(x, self.attention[k])
        self.plot.setXRange(0.5, max(t, 1) + 0.5, padding=0)
        notes = []
        spread = attention_spread(self.attention)
        if spread < UNIFORM_SPREAD:
            notes.append(f"⚠ nearly uniform (spread {spread:.3f})")
        same = coinciding_iterations(self.attention)
        if same:
            notes.append("; ".join("k = " + ", ".join(map(str, g)) for g in same) + " coincide")
        self.notice.setText(" · ".join(notes))
        self.notice.setToolTip(
            "Spread: the standard deviation of the final iteration's attention over the frames; below "
            f"{UNIFORM_SPREAD} every frame is weighted almost alike. Coinciding curves: iterations that weight "
            "the frames the same (with eq. 3's shared θ′ the refinement iterations often do)."
        )
        self.set_flags(flags or set())
        self.set_highlight(min(self.highlight, k1 - 1))

    def _notice_style(self, sheet: str) -> None:
        # Only when it changes: setting a style sheet re-polishes the label and lays it out again.
        if self.notice.styleSheet() != sheet:
            self.notice.setStyleSheet(sheet)

    def _build_curves(self, k1: int) -> None:
        """One curve, legend entry and toggle per iteration."""
        for c in self.curves:
            self.plot.removeItem(c)
        self.legend.clear()
        self.curves = []
        for box in self.toggles:
            self.toggles_box.removeWidget(box)
            box.deleteLater()
        self.toggles = []
        for k in range(k1):
            pen = pg.mkPen(iteration_color(k), width=1.6)
            curve = self.plot.plot([], [], pen=pen, name=f"k={k}")
            self.curves.append(curve)
            box = QCheckBox(str(k))
            box.setChecked(True)
            box.setToolTip(f"show refinement iteration {k}")
            box.toggled.connect(lambda on, c=curve: c.setVisible(on))
            self.toggles_box.addWidget(box)
            self.toggles.append(box)

    def set_attention_b(self, attention: np.ndarray | None) -> None:
        """Compare mode: model B's attention (K'+1, T) as dashed curves; ``None`` removes them."""
        self.attention_b = np.zeros((0, 0)) if attention is None else np.asarray(attention, dtype=np.float64)
        k1 = self.attention_b.shape[0] if self.attention_b.size else 0
        if len(self.curves_b) != k1:
            for c in self.curves_b:
                self.legend.removeItem(c)
                self.plot.removeItem(c)
            self.curves_b = []
            for k in range(k1):
                # One legend entry stands for all of B's curves (the colours say k, as for A).
                curve = self.plot.plot([], [], name="B (dashed)" if k == k1 - 1 else None)
                self.curves_b.append(curve)
        if k1:
            x = np.arange(1, self.attention_b.shape[1] + 1)
            for k, curve in enumerate(self.curves_b):
                curve.setData(x, self.attention_b[k])
            self.legend.setVisible(True)
            if not self.attention.size:
                self.plot.setXRange(0.5, max(self.attention_b.shape[1], 1) + 0.5, padding=0)
        self.set_highlight(self.highlight)

    @property
    def iterations_b(self) -> int:
        """Model B's curves shown (compare mode; 0 otherwise)."""
        return len(self.curves_b) if self.attention_b.size else 0

    def set_flags(self, flags: set[int]) -> None:
        """Mark annotated frames (0-based indices) with orange dashed lines."""
        if not flags and not self.flag_items:
            return
        for item in self.flag_items:
            self.plot.removeItem(item)
        self.flag_items = []
        for i in sorted(flags):
            line = pg.InfiniteLine(pos=i + 1, angle=90, pen=pg.mkPen(FLAG, width=2, style=Qt.PenStyle.DashLine))
            self.plot.addItem(line, ignoreBounds=True)
            self.flag_items.append(line)

    def set_highlight(self, k: int) -> None:
        """Draw iteration ``k`` thicker than the others."""
        self.highlight = max(0, k)
        # Pens change only when k or the curves do: a query switch keeps both, and re-setting
        # every pen (three times per switch and plot) was a tenth of the switch's time.
        key = (self.highlight, tuple(map(id, self.curves)), tuple(map(id, self.curves_b)))
        if key == getattr(self, "_highlight_key", None):
            return
        self._highlight_key = key
        for i, c in enumerate(self.curves):
            c.setPen(pg.mkPen(iteration_color(i), width=3.2 if i == self.highlight else 1.2))
            c.setZValue(10 if i == self.highlight else 0)
        for i, c in enumerate(self.curves_b):
            c.setPen(pg.mkPen(iteration_color(i), width=2.6 if i == self.highlight else 1.1,
                              style=Qt.PenStyle.DashLine))
            c.setZValue(9 if i == self.highlight else 0)

    @property
    def iterations(self) -> int:
        """K+1, the number of curves."""
        return len(self.curves) if self.attention.size else 0

    def set_playhead(self, frame: int) -> None:
        """Move the playhead line to ``frame`` (0-based; drawn at frame number ``frame + 1``)."""
        self.playhead.setValue(frame + 1)

    def _on_click(self, event) -> None:
        if not self.length:
            return
        vb = self.plot.getPlotItem().vb
        if not vb.sceneBoundingRect().contains(event.scenePos()):
            return
        x = vb.mapSceneToView(event.scenePos()).x()
        self.seek.emit(int(max(0, min(self.length - 1, round(x) - 1))))
