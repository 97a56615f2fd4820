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

        # Compare mode: model B's CMC (dashed, square markers), a two-model table with the tests,
        # and the per-query AP scatter (A on x, B on y; click a point to open that query).
        self.cmc_curve_b = self.cmc_plot.plot([], [], pen=pg.mkPen(iteration_color(1), width=2,
                                                                    style=Qt.PenStyle.DashLine),
                                              symbol="s", symbolSize=4, symbolBrush=iteration_color(1))
        self.cmc_legend = self.cmc_plot.addLegend(offset=(-4, -4), labelTextColor="k")
        self.cmc_legend.setVisible(False)
        self.compare_text = QLabel("")
        self.compare_text.setObjectName("compare_text")
        self.compare_text.setWordWrap(True)
        self.compare_text.setTextFormat(Qt.TextFormat.RichText)
        self.compare_text.setVisible(False)
        self.scatter_plot = pg.PlotWidget(background="w", title="AP per query (click one)")
        self.scatter_plot.setMouseEnabled(x=False, y=False)
        self.scatter_plot.hideButtons()
        self.scatter_plot.setXRange(-0.02, 1.02, padding=0)
        self.scatter_plot.setYRange(-0.02, 1.02, padding=0)
        self.scatter_plot.plot([0, 1], [0, 1], pen=pg.mkPen((150, 150, 150), width=1, style=Qt.PenStyle.DotLine))
        self.scatter = pg.ScatterPlotItem(hoverable=True)
        self.scatter.sigClicked.connect(self._on_scatter_click)
        self.scatter_plot.addItem(self.scatter)
        self.scatter_plot.setVisible(False)
        self.scatter_rows = np.zeros(0, dtype=np.int64)

        self.ap_plot = pg.PlotWidget(background="w", title="Per-query AP")
        self.ap_plot.setLabel("bottom", "AP")
        self.ap_plot.setLabel("left", "queries")
        self.ap_plot.setMouseEnabled(x=False, y=False)
        self.ap_plot.hideButtons()
        self.ap_bars: pg.BarGraphItem | None = None

        plots = QVBoxLayout()  # stacked: the panel is a narrow side dock
        plots.addWidget(self.cmc_plot, 1)
        plots.addWidget(self.ap_plot, 1)
        plots.addWidget(self.scatter_plot, 1)
        layout = QVBoxLayout(self)
        # The big numbers of one model; compare mode's table holds both models' instead.
        self.numbers = QWidget()
        self.numbers.setLayout(grid)
        grid.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.numbers)
        layout.addWidget(self.compare_text)
        layout.addWidget(self.source)
        layout.addWidget(self.audit)
        # --- camera bias (issue 21): computed in the background by the label itself ---
        if state is not None:
            from reidviewer.app.map_view import CameraBiasLabel

            self.camera_bias = CameraBiasLabel(state)
            layout.addWidget(self.camera_bias)
        # --- end camera bias ---
        layout.addLayout(plots, 1)
        if state is not None:
            state.session_changed.connect(lambda _s: self.refresh())
            state.comparison_changed.connect(lambda _c: self.refresh())
            state.annotations_changed.connect(lambda identity: self.refresh() if identity else None)

    def refresh(self) -> None:
        """Show the state's session's metrics."""
        s = self.state.session if self.state is not None else None
        if s is None:
            return
        self.set_metrics(s.metrics(), s.per_query_ap(), s.metrics_source())
        self.set_audit(s.audit_text())
        self.set_comparison(self.state.comparison, s)

    def set_comparison(self, comparing, session_a=None) -> None:
        """Compare mode: both CMC curves, both models' numbers, McNemar, ΔmAP CI, AP scatter."""
        on = comparing is not None
        for w in (self.compare_text, self.scatter_plot):
            w.setVisible(on)
        self.ap_plot.setVisible(not on)
        self.numbers.setVisible(not on)
        self.cmc_legend.setVisible(on)
        self.cmc_legend.clear()
        if not on:
            self.cmc_curve_b.setData([], [])
            self.scatter.setData([])
            self.scatter_rows = np.zeros(0, dtype=np.int64)
            return
        c = comparing.comparison
        mb = comparing.session.metrics()
        cmc_b = np.asarray(mb.get("cmc", []), dtype=float)
        self.cmc_curve_b.setData(np.arange(1, len(cmc_b) + 1), cmc_b)
        self.cmc_legend.addItem(self.cmc_curve, f"A {comparing.name_a}")
        self.cmc_legend.addItem(self.cmc_curve_b, f"B {comparing.name_b}")
        ma = session_a.metrics() if session_a is not None else c.a.metrics()

        def pct(m: dict, k: str) -> str:
            v = m.get(k)
            return "–" if v is None or v != v else f"{100 * v:.1f}"

        head = "".join(f"<th align=right>&nbsp;{h}</th>" for h in ("R1", "R5", "mAP", "mINP"))
        rows = "".join(
            f"<tr><td><b>{tag}</b> {name}</td>" + "".join(f"<td align=right>&nbsp;{pct(m, k)}</td>"
                                                          for k in ("rank1", "rank5", "mAP", "mINP")) + "</tr>"
            for tag, name, m in (("A", comparing.name_a, ma), ("B", comparing.name_b, mb)))
        lines = "<br>".join(comparing.metrics_lines())
        self.compare_text.setText(f"<table cellspacing=0><tr><th></th>{head}</tr>{rows}</table>"
                                  f"<span style='color:#333'>{lines}</span>")
        valid = np.flatnonzero(c.valid)
        self.scatter_rows = valid
        brushes = [pg.mkBrush(0, 158, 115, 230) if c.fixed_mask[r] else
                   pg.mkBrush(213, 94, 0, 230) if c.broken_mask[r] else pg.mkBrush(120, 120, 120, 120)
                   for r in valid]
        symbols = ["t1" if c.fixed_mask[r] else "t" if c.broken_mask[r] else "o" for r in valid]
        sizes = [9 if (c.fixed_mask[r] or c.broken_mask[r]) else 5 for r in valid]
        self.scatter.setData(x=c.ap_a[valid], y=c.ap_b[valid], data=valid, brush=brushes, symbol=symbols,
                             size=sizes, pen=None)
        self.scatter_plot.setLabel("bottom", "AP of A")
        self.scatter_plot.setLabel("left", "AP of B")
        self.scatter_plot.setToolTip(f"x: AP with A ({comparing.name_a}); y: AP with B ({comparing.name_b}); "
                                     "▲ fixed by B at rank 1, ▼ broken by B; click a point to open that query")

    def _on_scatter_click(self, _item, points, *_args) -> None:
        if self.state is not None and len(points):
            self.state.select_query(int(points[0].data()))

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
