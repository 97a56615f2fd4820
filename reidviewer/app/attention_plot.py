"""The attention plot: one curve per refinement iteration, a playhead, click to seek."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from reidviewer.app.colors import FLAG, iteration_color

#: Below this spread (max − min over frames) attention is "nearly uniform": it weights every
#: frame alike, so it cannot be what singles out occluded frames. Users of other tools
#: missed exactly this, so the plot says it in words.
UNIFORM_SPREAD = 0.05


def attention_spread(attention: np.ndarray) -> float:
    """Max − min of the final iteration's attention over frames (0 for ≤ 1 frame)."""
    a = np.asarray(attention)
    if a.ndim != 2 or a.shape[1] < 2:
        return 0.0
    return float(a[-1].max() - a[-1].min())


class AttentionPlot(QWidget):
    """Per-frame attention α⁽⁰⁾..α⁽ᴷ⁾ of one tracklet, synced to a player.

    Signals:
        seek(int): the user clicked the plot at a frame.
    """

    seek = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
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
        self.playhead = pg.InfiniteLine(pos=0, angle=90, pen=pg.mkPen((40, 40, 40), width=1.5))
        self.plot.addItem(self.playhead, ignoreBounds=True)
        self.notice = QLabel("")
        self.notice.setStyleSheet("color: #a33a00; font-weight: bold;")
        self.notice.setMinimumWidth(10)
        self.notice.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.notice.setVisible(False)
        self.flag_items: list[pg.InfiniteLine] = []
        self.plot.scene().sigMouseClicked.connect(self._on_click)

        self.toggles_box = QHBoxLayout()
        self.toggles_box.setContentsMargins(4, 0, 4, 0)
        self.toggles_box.addWidget(QLabel("k:"))
        self.toggles: list[QCheckBox] = []
        self.toggles_box.addStretch(1)
        self.title = QLabel("")
        # Long titles must not widen the window: let them be cut instead.
        self.title.setMinimumWidth(10)
        self.title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

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
        self.attention = np.zeros((0, 0))
        self.highlight = 0

    def set_attention(self, attention: np.ndarray | None, title: str = "", flags: set[int] | None = None) -> None:
        """Plot ``attention`` of shape (K+1, T); ``None`` clears the plot.

        Curves, legend entries and toggles are reused when the number of iterations does not
        change (the usual case when switching queries): rebuilding them cost ~25 ms a plot.
        """
        self.title.setText(title)
        self.attention = np.zeros((0, 0)) if attention is None else np.asarray(attention, dtype=np.float64)
        if self.attention.size == 0:
            for c in self.curves:
                c.setData([], [])
            self.notice.setText("no attention for this tracklet")
            self.notice.setVisible(True)
            self.set_flags(set())
            return
        k1, t = self.attention.shape
        if len(self.curves) != k1:
            self._build_curves(k1)
        x = np.arange(t)
        for k, curve in enumerate(self.curves):
            curve.setData(x, self.attention[k])
        self.plot.setXRange(-0.5, max(t - 0.5, 0.5), padding=0)
        spread = attention_spread(self.attention)
        if spread < UNIFORM_SPREAD:
            self.notice.setText(f"⚠ nearly uniform attention (spread {spread:.3f})")
            self.notice.setToolTip(
                "All frames are weighted alike: the final iteration's attention varies by less than "
                f"{UNIFORM_SPREAD} across frames, so it does not single out any frame (occluded or not)."
            )
        else:
            self.notice.setText("")
        self.notice.setVisible(bool(self.notice.text()))
        self.set_flags(flags or set())
        self.set_highlight(min(self.highlight, k1 - 1))

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
            self.toggles_box.insertWidget(self.toggles_box.count() - 1, box)
            self.toggles.append(box)

    def set_flags(self, flags: set[int]) -> None:
        """Mark annotated frames with orange dashed lines."""
        if not flags and not self.flag_items:
            return
        for item in self.flag_items:
            self.plot.removeItem(item)
        self.flag_items = []
        for i in sorted(flags):
            line = pg.InfiniteLine(pos=i, angle=90, pen=pg.mkPen(FLAG, width=2, style=Qt.PenStyle.DashLine))
            self.plot.addItem(line, ignoreBounds=True)
            self.flag_items.append(line)

    def set_highlight(self, k: int) -> None:
        """Draw iteration ``k`` thicker than the others."""
        self.highlight = max(0, k)
        for i, c in enumerate(self.curves):
            c.setPen(pg.mkPen(iteration_color(i), width=3.2 if i == self.highlight else 1.2))
            c.setZValue(10 if i == self.highlight else 0)

    @property
    def iterations(self) -> int:
        """K+1, the number of curves."""
        return len(self.curves)

    def set_playhead(self, frame: int) -> None:
        """Move the playhead line to ``frame``."""
        self.playhead.setValue(frame)

    def _on_click(self, event) -> None:
        if self.attention.size == 0:
            return
        vb = self.plot.getPlotItem().vb
        if not vb.sceneBoundingRect().contains(event.scenePos()):
            return
        x = vb.mapSceneToView(event.scenePos()).x()
        self.seek.emit(int(max(0, min(self.attention.shape[1] - 1, round(x)))))
