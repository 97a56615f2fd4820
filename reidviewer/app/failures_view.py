"""Failure cases: queries whose rank-1 is wrong — probe, the wrong top-1, and the true match.

A ``QListView`` with a painting delegate, so thousands of failures (MARS) cost no widgets.
Bound to a ``ViewerState``: it lists the session's failures (again after annotations change
identities) and clicking one selects that query and its true match.
"""
from __future__ import annotations

from PySide6.QtCore import QAbstractListModel, QModelIndex, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QPainter, QPen
from PySide6.QtWidgets import QLabel, QListView, QPushButton, QStyle, QStyledItemDelegate, QStyleOptionViewItem, QVBoxLayout, QWidget

from reidviewer.app.colors import MATCH, NON_MATCH
from reidviewer.app.frame_loader import FrameLoader
from reidviewer.app.state import ViewerState
from reidviewer.app.viewmodel import FailureCase


class FailureModel(QAbstractListModel):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.cases: list[FailureCase] = []

    def set_cases(self, cases: list[FailureCase]) -> None:
        self.beginResetModel()
        self.cases = list(cases)
        self.endResetModel()

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self.cases)

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        c = self.cases[index.row()]
        if role == Qt.ItemDataRole.UserRole:
            return c
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{c.probe_label}: wrong top-1 {c.wrong_label}; true match at rank {c.true_rank}. Click to open."
        if role == Qt.ItemDataRole.DisplayRole:
            return c.probe_label
        return None


class FailureDelegate(QStyledItemDelegate):
    """Paints probe | wrong top-1 | true match, with labels."""

    ROW_H = 142
    THUMB_W = 42

    def __init__(self, loader: FrameLoader, parent=None) -> None:
        super().__init__(parent)
        self.loader = loader

    def sizeHint(self, option, index) -> QSize:  # noqa: N802
        return QSize(300, self.ROW_H)

    def _thumb(self, p: QPainter, x: float, y: float, path: str | None, border: QColor | None, dashed: bool) -> None:
        rect = QRectF(x, y, self.THUMB_W, self.THUMB_W * 2)
        image = self.loader.get(path) if path else None
        if image is not None:
            p.drawImage(rect, image)
        else:
            p.fillRect(rect, QColor(200, 200, 200))
        if border is not None:
            pen = QPen(border, 3)
            pen.setStyle(Qt.PenStyle.DashLine if dashed else Qt.PenStyle.SolidLine)
            p.setPen(pen)
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRect(rect.adjusted(-1, -1, 1, 1))

    def paint(self, p: QPainter, option: QStyleOptionViewItem, index) -> None:
        c: FailureCase = index.data(Qt.ItemDataRole.UserRole)
        p.save()
        font = QFont(option.font)
        font.setPointSizeF(max(font.pointSizeF() - 1, 7))
        p.setFont(font)
        r = QRectF(option.rect)
        if option.state & QStyle.StateFlag.State_Selected:
            p.fillRect(r, QColor(220, 232, 250))
        elif index.row() % 2:
            p.fillRect(r, QColor(246, 246, 246))
        cols = [
            (c.probe_thumb, None, False, "probe", c.probe_label),
            (c.wrong_thumb, NON_MATCH, True, f"✗ top-1 d={c.wrong_distance:.2f}", c.wrong_label),
            (
                c.true_thumb,
                MATCH,
                False,
                f"✓ #{c.true_rank} d={c.true_distance:.2f}" if c.true_row is not None else "no true match",
                c.true_label,
            ),
        ]
        col_w = max((r.width() - 60) / 3, 60)
        y = r.top() + 6
        for i, (thumb, border, dashed, title, label) in enumerate(cols):
            x0 = r.left() + 6 + i * col_w
            self._thumb(p, x0 + (col_w - self.THUMB_W) / 2, y, thumb, border, dashed)
            p.setPen(QColor(30, 30, 30))
            fm = p.fontMetrics()
            # "person (camera)" breaks into two lines where the column is too narrow for one.
            person, _, camera = label.rpartition(" (")
            lines = (title, label) if fm.horizontalAdvance(label) <= col_w - 2 or not person else (
                title, person, "(" + camera)
            for j, line in enumerate(lines):
                text = QRectF(x0, y + self.THUMB_W * 2 + 3 + j * (fm.height() + 1), col_w, fm.height())
                elided = fm.elidedText(line, Qt.TextElideMode.ElideRight, int(col_w) - 2)
                p.drawText(text, int(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop), elided)
        p.setPen(QColor(90, 90, 90))
        p.drawText(QRectF(r.right() - 54, y, 50, self.THUMB_W * 2), int(Qt.AlignmentFlag.AlignCenter), f"AP\n{c.ap:.2f}")
        p.restore()


class FailuresView(QWidget):
    """The list of failure cases; clicking one opens it in the players.

    Signals:
        case_activated(int, int): (query row, gallery row to show — the true match if any).
    """

    case_activated = Signal(int, int)
    export_requested = Signal()

    def __init__(self, loader: FrameLoader, state: ViewerState | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.loader = loader
        self.state = state
        self.header = QLabel("No results yet")
        self.header.setWordWrap(True)
        self.model = FailureModel(self)
        self.view = QListView()
        self.view.setModel(self.model)
        self.view.setItemDelegate(FailureDelegate(loader, self.view))
        self.view.setUniformItemSizes(True)
        self.view.setMouseTracking(True)
        self.view.clicked.connect(self._on_clicked)
        self.view.activated.connect(self._on_clicked)
        # Thumbnails arrive one by one; repaint the list at most every 50 ms, not per frame.
        self._repaint = QTimer(self)
        self._repaint.setSingleShot(True)
        self._repaint.setInterval(50)
        self._repaint.timeout.connect(self.view.viewport().update)
        loader.frame_ready.connect(lambda _p: self._repaint.start() if not self._repaint.isActive() else None)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.export_button = QPushButton("Export figure of the worst failures…")
        self.export_button.setToolTip("Export the worst failure cases as one paper figure (PDF, SVG or PNG)")
        self.export_button.clicked.connect(self.export_requested)
        layout.addWidget(self.header)
        layout.addWidget(self.export_button)
        layout.addWidget(self.view, 1)
        if state is not None:
            state.session_changed.connect(lambda _s: self.refresh())
            state.annotations_changed.connect(lambda identity: self.refresh() if identity else None)
            self.case_activated.connect(lambda q, g: state.select_query(q, gallery=g))

    def refresh(self) -> None:
        """List the state's session's failure cases."""
        s = self.state
        if s is None or s.session is None:
            self.set_cases([], 0)
            return
        self.set_cases(s.session.failure_cases(), s.session.num_queries)

    def set_cases(self, cases: list[FailureCase], total_queries: int) -> None:
        self.model.set_cases(cases)
        self.header.setText(
            f"{len(cases)} of {total_queries} queries fail at rank 1 — sorted by AP, worst first. "
            "Columns: probe · wrong top-1 · true match. Click a row to open it."
        )
        # Thumbnails of the first screenfuls decode in the background.
        paths = []
        for c in cases[:60]:
            paths += [c.probe_thumb, c.wrong_thumb] + ([c.true_thumb] if c.true_thumb else [])
        self.loader.request(paths, priority=-2)

    def _on_clicked(self, index) -> None:
        c: FailureCase = index.data(Qt.ItemDataRole.UserRole)
        self.case_activated.emit(c.query_row, c.true_row if c.true_row is not None else c.wrong_row)
