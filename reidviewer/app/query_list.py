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
from PySide6.QtGui import QBrush, QFont, QFontMetrics
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
#: Extra columns in compare mode: AP(B) − AP(A), and the first-true-match rank A → B.
COMPARE_COLUMNS = ("ΔAP", "1st A→B")
SORTS = {
    "identity": (1, Qt.SortOrder.AscendingOrder, "identity"),
    "ap": (3, Qt.SortOrder.AscendingOrder, "AP ascending — failures first"),
    "rank": (4, Qt.SortOrder.DescendingOrder, "first-true-match rank, worst first"),
}
#: Compare mode's sorts (orders from ``engine.compare.Comparison.order``): key -> (combo text, label).
COMPARE_SORTS = {
    "fixed": ("sort: fixed by B first", "queries model B fixed at rank 1 first (largest AP gain first)"),
    "broken": ("sort: broken by B first", "queries model B broke at rank 1 first (largest AP loss first)"),
    "delta": ("sort: largest |ΔAP| first", "largest change of AP between A and B first"),
}


class QueryTableModel(QAbstractTableModel):
    """Rows of ``QueryRow``; ``Qt.UserRole`` gives the numeric sort key of a cell."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.rows: list[QueryRow] = []
        self.compare = False

    def set_compare(self, on: bool) -> None:
        """Show (or hide) the compare-mode columns."""
        if on != self.compare:
            self.beginResetModel()
            self.compare = on
            self.endResetModel()

    def set_rows(self, rows: list[QueryRow]) -> None:
        self.beginResetModel()
        self.rows = list(rows)
        self.endResetModel()

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: N802
        return len(COLUMNS) + (len(COMPARE_COLUMNS) if self.compare else 0)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return (COLUMNS + COMPARE_COLUMNS)[section]
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.ToolTipRole and section >= len(COLUMNS):
            return ("AP of model B minus AP of model A" if section == len(COLUMNS) else
                    "rank of the first true match with A → with B; ▲ fixed by B at rank 1, ▼ broken by B")
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
            if c == 5:
                d = r.delta_ap
                return "n/a" if d != d else f"{d:+.3f}"
            if c == 6:
                if r.first_rank_b < 0 or r.first_rank == 0:
                    return "–"
                mark = " ▲" if r.change > 0 else (" ▼" if r.change < 0 else "")
                return f"#{r.first_rank}→#{r.first_rank_b}{mark}"
        if role == Qt.ItemDataRole.UserRole:
            return sort_key(r, c)
        if role == Qt.ItemDataRole.ForegroundRole and c == 0:
            return QBrush(MATCH if hit else NON_MATCH)
        if role == Qt.ItemDataRole.ForegroundRole and c in (5, 6) and r.change:
            return QBrush(MATCH if r.change > 0 else NON_MATCH)
        if role == Qt.ItemDataRole.ToolTipRole:
            tip = (
                f"query row {r.row}: person {r.person}, camera {r.camera}, {r.frames} frames\n"
                f"AP {r.ap:.3f}, first true match at rank {r.first_rank}"
            )
            if r.first_rank_b >= 0:
                what = {1: " — fixed by B", -1: " — broken by B"}.get(r.change, "")
                tip += f"\nmodel B: AP {r.ap_b:.3f}, first true match at rank {r.first_rank_b}{what}"
            return tip
        if role == Qt.ItemDataRole.TextAlignmentRole and c in (0, 3, 4, 5, 6):
            return int(Qt.AlignmentFlag.AlignCenter)
        return None


def sort_key(r: QueryRow, c: int):
    """A query's sort key in column ``c``; skipped queries (NaN AP / no match) sort last."""
    if c == 0:
        return 0 if r.first_rank == 1 else 1
    if c == 1:
        return (r.pid, r.person)
    if c == 2:
        return r.camera
    if c == 3:
        return 2.0 if r.ap != r.ap else r.ap
    if c == 4:
        return r.first_rank if r.first_rank > 0 else -1
    if c == 5:
        return -2.0 if r.delta_ap != r.delta_ap else r.delta_ap
    if c == 6:
        return (r.change, -r.first_rank_b)
    return r.row


class _Proxy(QSortFilterProxyModel):
    """Filters the queries; sorting puts the source model's rows in order instead.

    Qt's proxy sort calls a Python ``lessThan`` N log N times through the model's ``data``:
    at MARS's 2,315 queries the first sort of a session took 1.1 s of a 4.6 s launch. One
    Python ``sorted`` over precomputed keys takes milliseconds.
    """

    #: A compare sort's ``[results row] -> place``; ``None``: sort by the column's keys.
    positions = None
    #: ``around_sort(fn)``: runs the sort ``fn`` (the list keeps its selection across it).
    around_sort = None

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        if column < 0:
            return
        model = self.sourceModel()

        def run() -> None:
            rows = model.rows
            if self.positions is not None:
                key = (lambda r: self.positions[r.row])
            else:
                key = (lambda r: sort_key(r, column))
            try:
                ordered = sorted(rows, key=key, reverse=order == Qt.SortOrder.DescendingOrder)
            except TypeError:  # keys of mixed types: compare as text
                ordered = sorted(rows, key=lambda r: str(key(r)), reverse=order == Qt.SortOrder.DescendingOrder)
            model.set_rows(ordered)

        if self.around_sort is not None:
            self.around_sort(run)
        else:
            run()

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
        self.proxy.around_sort = self._keeping_selection
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
        hh.setMinimumSectionSize(18)
        self._fit_columns([])
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
        self._sorting = False
        if state is not None:
            state.comparison_changed.connect(self._on_comparison)
            state.session_changed.connect(self._on_session)
            state.annotations_changed.connect(lambda _i: self.update_rows())
            state.query_changed.connect(self._on_state_query)
            self.query_selected.connect(state.select_query)

    def _rows(self) -> list[QueryRow]:
        s = self.state
        if s is None or s.session is None:
            return []
        rows = s.session.query_rows()
        return s.comparison.query_rows(rows) if s.comparison is not None else rows

    def _on_session(self, session) -> None:
        self.set_rows(self._rows() if session is not None else [])

    def _on_comparison(self, comparing) -> None:
        """Compare mode on or off: the ΔAP and A→B columns and the compare sorts come and go."""
        on = comparing is not None
        self.sort_box.blockSignals(True)
        try:
            for key, (text, _label) in COMPARE_SORTS.items():
                i = self.sort_box.findData(key)
                if on and i < 0:
                    self.sort_box.addItem(text, key)
                elif not on and i >= 0:
                    self.sort_box.removeItem(i)
        finally:
            self.sort_box.blockSignals(False)
        current = self.current_row()
        self.model.set_compare(on)
        # Room for ΔAP and A→B: the camera stays in the tooltip, A's rank is in "1st A→B".
        self.view.setColumnHidden(2, on)
        self.view.setColumnHidden(4, on)
        if not on and self._sort_key in COMPARE_SORTS:
            self._sort_key = "identity"
        self.set_rows(self._rows())
        if current is not None:
            self._on_state_query(current)

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
        rows = self._rows()
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
        text = f"{len(rows)} queries · {hits} hit at rank 1 · {len(rows) - hits} miss"
        if rows and rows[0].first_rank_b >= 0:
            fixed = sum(r.change > 0 for r in rows)
            broken = sum(r.change < 0 for r in rows)
            text += f"\nB: ▲ {fixed} fixed · ▼ {broken} broken"
        self.summary.setText(text)

    def _fit_columns(self, rows: list[QueryRow]) -> None:
        """Fixed widths that fit the widest text any row can show (the person column stretches).

        ResizeToContents measured every row through the model at each reset and selection:
        64,000 ``data`` calls and 1.6 s at MARS's 2,315 queries. The widest texts are known
        from the rows' numbers, so the widths are computed here at once, and never clip.
        """
        fm = self.view.fontMetrics()
        hh = self.view.horizontalHeader()
        bold = QFont(self.view.font())
        bold.setBold(True)
        header = QFontMetrics(bold)
        rank = max((r.first_rank for r in rows), default=0)
        rank_b = max((r.first_rank_b for r in rows), default=0)
        cams = {r.camera for r in rows} or {"c0"}
        widest = {
            0: ["✓", "✗", "–"],
            2: list(cams),
            3: ["0.000", "n/a"],
            4: [f"#{'9' * len(str(max(rank, 1)))}", "–"],
            5: ["+0.000", "n/a"],
            6: [f"#{'9' * len(str(max(rank, 1)))}→#{'9' * len(str(max(rank_b, 1)))} ▲"],
        }
        for c in range(self.model.columnCount()):
            if c == 1:
                hh.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
                continue
            text_w = max(fm.horizontalAdvance(t) for t in widest[c])
            head_w = header.horizontalAdvance((COLUMNS + COMPARE_COLUMNS)[c]) + 14  # room for the sort arrow
            hh.setSectionResizeMode(c, QHeaderView.ResizeMode.Fixed)
            hh.resizeSection(c, max(text_w + 12, head_w, hh.minimumSectionSize()))

    def set_rows(self, rows: list[QueryRow]) -> None:
        """Replace the queries; keeps the current sort."""
        self.model.set_rows(rows)
        self._fit_columns(rows)
        self.sort_by(self._sort_key)
        self._summarise(rows)

    def sort_by(self, key: str) -> None:
        """Sort by ``identity``, ``ap`` (ascending, failures first) or ``rank`` (worst first); in
        compare mode also ``fixed`` / ``broken`` (by B, first) or ``delta`` (largest |ΔAP| first)."""
        if key in COMPARE_SORTS:
            comparing = self.state.comparison if self.state is not None else None
            if comparing is None:
                raise ValueError(f"sort {key!r} needs compare mode (File ▸ Compare with…)")
            column, order, text = 0, Qt.SortOrder.AscendingOrder, COMPARE_SORTS[key][1]
            positions = comparing.sort_positions(key)
        else:
            column, order, text = SORTS[key]
            positions = None
        self._sort_key = key
        i = self.sort_box.findData(key)
        if i != self.sort_box.currentIndex():
            self.sort_box.blockSignals(True)
            self.sort_box.setCurrentIndex(i)
            self.sort_box.blockSignals(False)
        self._sorting = True
        try:
            self.proxy.positions = positions
            self.view.sortByColumn(column, order)
        finally:
            self._sorting = False
        self.sort_label.setText(f"Sorted by {text}")

    def _on_header_sort(self, column: int, order: Qt.SortOrder) -> None:
        if self._sorting:
            return
        if self.proxy.positions is not None:  # a header click leaves the compare sort
            self.proxy.positions = None
            self.proxy.sort(column, order)
        name = (COLUMNS + COMPARE_COLUMNS)[column] or "hit/miss"
        direction = "ascending" if order == Qt.SortOrder.AscendingOrder else "descending"
        self.sort_label.setText(f"Sorted by {name}, {direction}")

    def _keeping_selection(self, sort) -> None:
        """Run ``sort`` (which resets the model) and select the same query again, quietly."""
        current = self.current_row()
        sort()
        if current is not None:
            self._quiet = True
            try:
                self.select_row(current)
            finally:
                self._quiet = False

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
