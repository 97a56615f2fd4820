"""The query list: filter, sort (identity, AP ascending = failures first, first-match rank).

Bound to a ``ViewerState``: it lists the session's queries, keeps their marks current when
annotations change, selects the state's query, and selecting a row selects that query.
"""
from __future__ import annotations

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtGui import QBrush
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from reidviewer.app.colors import MATCH, NON_MATCH
from reidviewer.app.state import ViewerState
from reidviewer.app.viewmodel import QueryRow  # noqa: F401  (re-exported: the list's record)


COLUMNS = ("", "person", "cam", "AP", "1st")  # frame counts are in the tooltip
SORTS = {
    "identity": (1, Qt.SortOrder.AscendingOrder, "identity"),
    "ap": (3, Qt.SortOrder.AscendingOrder, "AP ascending — failures first"),
    "rank": (4, Qt.SortOrder.DescendingOrder, "first-true-match rank, worst first"),
}


class QueryTableModel(QAbstractTableModel):
    """Rows of ``QueryRow``; ``Qt.UserRole`` gives the numeric sort key of a cell."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.rows: list[QueryRow] = []

    def set_rows(self, rows: list[QueryRow]) -> None:
        self.beginResetModel()
        self.rows = list(rows)
        self.endResetModel()

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: N802
        return len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        r = self.rows[index.row()]
        c = index.column()
        hit = r.first_rank == 1
        if role == Qt.ItemDataRole.DisplayRole:
            if c == 0:
                return "✓" if hit else ("–" if r.first_rank == 0 else "✗")
            if c == 1:
                return r.person + (" ⚑" if r.flagged else "")
            if c == 2:
                return r.camera
            if c == 3:
                return "n/a" if r.ap != r.ap else f"{r.ap:.3f}"
            if c == 4:
                return "–" if r.first_rank == 0 else f"#{r.first_rank}"
        if role == Qt.ItemDataRole.UserRole:
            # Numeric sort keys; skipped queries (NaN AP / no match) sort last.
            if c == 0:
                return 0 if hit else 1
            if c == 1:
                return (r.pid, r.person)
            if c == 2:
                return r.camera
            if c == 3:
                return 2.0 if r.ap != r.ap else r.ap
            if c == 4:
                return r.first_rank if r.first_rank > 0 else -1
        if role == Qt.ItemDataRole.ForegroundRole and c == 0:
            return QBrush(MATCH if hit else NON_MATCH)
        if role == Qt.ItemDataRole.ToolTipRole:
            return (
                f"query row {r.row}: person {r.person}, camera {r.camera}, {r.frames} frames\n"
                f"AP {r.ap:.3f}, first true match at rank {r.first_rank}"
            )
        if role == Qt.ItemDataRole.TextAlignmentRole and c in (0, 3, 4):
            return int(Qt.AlignmentFlag.AlignCenter)
        return None


class _Proxy(QSortFilterProxyModel):
    def lessThan(self, left, right) -> bool:  # noqa: N802
        a = left.data(Qt.ItemDataRole.UserRole)
        b = right.data(Qt.ItemDataRole.UserRole)
        try:
            return a < b
        except TypeError:
            return str(a) < str(b)

    def filterAcceptsRow(self, source_row, source_parent) -> bool:  # noqa: N802
        text = self.filterRegularExpression().pattern().strip().lower()
        if not text:
            return True
        r = self.sourceModel().rows[source_row]
        return text in r.person.lower() or text == str(r.pid) or text in r.camera.lower()


class QueryList(QWidget):
    """Filterable, sortable list of queries with a visible sort order.

    Args:
        state: the viewer state (``None``: a stand-alone list fed by ``set_rows``).

    Signals:
        query_selected(int): the results row of the query the user picked.
        menu_requested(int, QPoint): right-click on a query (results row, global position).
    """

    query_selected = Signal(int)
    menu_requested = Signal(int, object)

    def __init__(self, state: ViewerState | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.model = QueryTableModel(self)
        self.proxy = _Proxy(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(Qt.ItemDataRole.UserRole)
        self.filter = QLineEdit()
        self.filter.setPlaceholderText("filter: person or camera")
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(self.proxy.setFilterFixedString)
        self.sort_box = QComboBox()
        self.sort_box.addItem("sort: identity", "identity")
        self.sort_box.addItem("sort: AP ↑ (failures first)", "ap")
        self.sort_box.addItem("sort: 1st-match rank ↓", "rank")
        self.sort_box.currentIndexChanged.connect(lambda _: self.sort_by(self.sort_box.currentData()))
        self.sort_label = QLabel("")
        self.sort_label.setWordWrap(True)
        self.sort_label.setStyleSheet("color: #555;")
        self.summary = QLabel("")

        self.view = QTableView()
        self.view.setModel(self.proxy)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setSortingEnabled(True)
        self.view.verticalHeader().setVisible(False)
        self.view.verticalHeader().setDefaultSectionSize(22)
        self.view.setAlternatingRowColors(True)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        hh = self.view.horizontalHeader()
        hh.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        hh.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        hh.setMinimumSectionSize(18)
        hh.sortIndicatorChanged.connect(self._on_header_sort)
        self.view.selectionModel().currentRowChanged.connect(self._on_current)

        top = QHBoxLayout()
        top.addWidget(self.filter, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addWidget(self.sort_box)
        layout.addWidget(self.sort_label)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.summary)
        self._sort_key = "identity"
        self._quiet = False
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._on_menu)
        if state is not None:
            state.session_changed.connect(self._on_session)
            state.annotations_changed.connect(lambda _i: self.update_rows())
            state.query_changed.connect(self._on_state_query)
            self.query_selected.connect(state.select_query)

    def _on_session(self, session) -> None:
        self.set_rows(session.query_rows() if session is not None else [])

    def _on_state_query(self, row) -> None:
        if row is not None and row != self.current_row():
            self._quiet = True  # the state already knows: do not select it again
            try:
                self.select_row(row)
            finally:
                self._quiet = False

    def _on_menu(self, pos) -> None:
        idx = self.view.indexAt(pos)
        if idx.isValid():
            row = self.model.rows[self.proxy.mapToSource(idx).row()].row
            self.menu_requested.emit(row, self.view.viewport().mapToGlobal(pos))

    def update_rows(self) -> None:
        """Refresh the marks (AP, rank, flags) in place, keeping the selection and the sort."""
        if self.state is None or self.state.session is None:
            return
        rows = self.state.session.query_rows()
        if len(rows) != len(self.model.rows):
            self.set_rows(rows)
            return
        self.model.rows = rows
        if rows:
            self.model.dataChanged.emit(self.model.index(0, 0),
                                        self.model.index(len(rows) - 1, self.model.columnCount() - 1))
        self._summarise(rows)

    def _summarise(self, rows: list[QueryRow]) -> None:
        hits = sum(r.first_rank == 1 for r in rows)
        self.summary.setText(f"{len(rows)} queries · {hits} hit at rank 1 · {len(rows) - hits} miss")

    def set_rows(self, rows: list[QueryRow]) -> None:
        """Replace the queries; keeps the current sort."""
        self.model.set_rows(rows)
        self.sort_by(self._sort_key)
        self._summarise(rows)

    def sort_by(self, key: str) -> None:
        """Sort by ``identity``, ``ap`` (ascending, failures first) or ``rank`` (worst first)."""
        column, order, text = SORTS[key]
        self._sort_key = key
        i = self.sort_box.findData(key)
        if i != self.sort_box.currentIndex():
            self.sort_box.blockSignals(True)
            self.sort_box.setCurrentIndex(i)
            self.sort_box.blockSignals(False)
        self.view.sortByColumn(column, order)
        self.sort_label.setText(f"Sorted by {text}")

    def _on_header_sort(self, column: int, order: Qt.SortOrder) -> None:
        name = COLUMNS[column] or "hit/miss"
        direction = "ascending" if order == Qt.SortOrder.AscendingOrder else "descending"
        self.sort_label.setText(f"Sorted by {name}, {direction}")

    def current_row(self) -> int | None:
        """Results row of the selected query."""
        idx = self.view.currentIndex()
        if not idx.isValid():
            return None
        return self.model.rows[self.proxy.mapToSource(idx).row()].row

    def select_position(self, position: int) -> None:
        """Select the query at a visible position (0 = top)."""
        n = self.proxy.rowCount()
        if n == 0:
            return
        position = max(0, min(n - 1, position))
        idx = self.proxy.index(position, 0)
        self.view.setCurrentIndex(idx)
        self.view.scrollTo(idx)  # column 0, so the list never scrolls sideways off the hit marks

    def select_row(self, results_row: int) -> None:
        """Select the query with this results row, if visible."""
        for pos in range(self.proxy.rowCount()):
            src = self.proxy.mapToSource(self.proxy.index(pos, 0)).row()
            if self.model.rows[src].row == results_row:
                self.select_position(pos)
                return

    def move(self, delta: int) -> None:
        """Select the previous (−1) or next (+1) query in the visible order."""
        idx = self.view.currentIndex()
        pos = idx.row() if idx.isValid() else -1
        self.select_position(pos + delta if pos >= 0 else 0)

    def visible_rows(self) -> list[int]:
        """Results rows in the visible (sorted, filtered) order."""
        return [
            self.model.rows[self.proxy.mapToSource(self.proxy.index(p, 0)).row()].row
            for p in range(self.proxy.rowCount())
        ]

    def _on_current(self, current: QModelIndex, previous: QModelIndex) -> None:
        if current.isValid() and not self._quiet:
            self.query_selected.emit(self.model.rows[self.proxy.mapToSource(current).row()].row)
