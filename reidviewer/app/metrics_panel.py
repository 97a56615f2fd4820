"""The Metrics panel: R1/R5/R10/R20 and mAP, the CMC curve and the per-query AP histogram.

Everything here comes from the results file the ranked list and failures come from, so the
numbers can never disagree with the pictures.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGridLayout, QLabel, QVBoxLayout, QWidget

from reidviewer.app.colors import iteration_color
from reidviewer.app.state import ViewerState


class MetricsPanel(QWidget):
    """Metric numbers, CMC curve, AP histogram (and an attention-audit line when available)."""

    def __init__(self, state: ViewerState | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.values: dict[str, QLabel] = {}
        grid = QGridLayout()
        names = {"rank1": "R1", "rank5": "R5", "rank10": "R10", "rank20": "R20", "mAP": "mAP", "mINP": "mINP"}
        for i, key in enumerate(names):
            title = QLabel(names[key])
            title.setAlignment(Qt.AlignmentFlag.AlignCenter)
            title.setStyleSheet("color: #555;")
            value = QLabel("–")
            value.setObjectName(f"metric_{key}")
            value.setAlignment(Qt.AlignmentFlag.AlignCenter)
            value.setStyleSheet("font-size: 11pt; font-weight: bold;")
            grid.addWidget(title, 0, i)
            grid.addWidget(value, 1, i)
            self.values[key] = value
        self.source = QLabel("")
        self.source.setWordWrap(True)
        self.source.setStyleSheet("color: #555;")
        self.audit = QLabel("")
        self.audit.setWordWrap(True)

        self.cmc_plot = pg.PlotWidget(background="w", title="CMC")
        self.cmc_plot.setLabel("bottom", "rank")
        self.cmc_plot.setLabel("left", "matching rate")
        self.cmc_plot.setYRange(0, 1.0, padding=0.02)
        self.cmc_plot.showGrid(x=True, y=True, alpha=0.25)
        self.cmc_plot.setMouseEnabled(x=False, y=False)
        self.cmc_plot.hideButtons()
        self.cmc_curve = self.cmc_plot.plot([], [], pen=pg.mkPen(iteration_color(0), width=2), symbol="o", symbolSize=4)

        self.ap_plot = pg.PlotWidget(background="w", title="Per-query AP")
        self.ap_plot.setLabel("bottom", "AP")
        self.ap_plot.setLabel("left", "queries")
        self.ap_plot.setMouseEnabled(x=False, y=False)
        self.ap_plot.hideButtons()
        self.ap_bars: pg.BarGraphItem | None = None

        plots = QVBoxLayout()  # stacked: the panel is a narrow side dock
        plots.addWidget(self.cmc_plot, 1)
        plots.addWidget(self.ap_plot, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(grid)
        layout.addWidget(self.source)
        layout.addWidget(self.audit)
        layout.addLayout(plots, 1)
        if state is not None:
            state.session_changed.connect(lambda _s: self.refresh())
            state.annotations_changed.connect(lambda identity: self.refresh() if identity else None)

    def refresh(self) -> None:
        """Show the state's session's metrics."""
        s = self.state.session if self.state is not None else None
        if s is None:
            return
        self.set_metrics(s.metrics(), s.per_query_ap(), s.metrics_source())
        self.set_audit(s.audit_text())

    def set_metrics(self, metrics: dict, ap: np.ndarray, source: str = "") -> None:
        """Show ``metrics`` (rank1/5/10/20, mAP as fractions, cmc list) and per-query ``ap``."""
        for key, label in self.values.items():
            v = metrics.get(key)
            label.setText("–" if v is None or v != v else f"{100 * v:.1f}%")
        self.source.setText(source)
        cmc = np.asarray(metrics.get("cmc", []), dtype=float)
        self.cmc_curve.setData(np.arange(1, len(cmc) + 1), cmc)
        if self.ap_bars is not None:
            self.ap_plot.removeItem(self.ap_bars)
            self.ap_bars = None
        ap = np.asarray(ap, dtype=float)
        ap = ap[np.isfinite(ap)]
        if len(ap):
            counts, edges = np.histogram(ap, bins=20, range=(0, 1))
            self.ap_bars = pg.BarGraphItem(
                x0=edges[:-1], x1=edges[1:], height=counts, brush=pg.mkBrush(0, 114, 178, 180), pen=pg.mkPen("w")
            )
            self.ap_plot.addItem(self.ap_bars)

    def set_audit(self, text: str) -> None:
        """A line about the attention audit (AUROC per iteration)."""
        self.audit.setText(text)
