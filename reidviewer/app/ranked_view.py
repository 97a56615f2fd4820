"""The ranked retrievals of the selected query: top-k tiles and where the true matches landed.

Bound to a ``ViewerState``: it shows the state's query, marks the state's gallery tracklet,
refreshes when annotations change, and clicking a tile shows that tracklet in the gallery
player (through the state). Right-clicking a tile asks for its context menu.
"""
from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QHBoxLayout, QLabel, QScrollArea, QSpinBox, QVBoxLayout, QWidget

from reidviewer.app.colors import FLAG, MATCH, NON_MATCH
from reidviewer.app.frame_loader import FrameLoader
from reidviewer.app.state import ViewerState
from reidviewer.app.viewmodel import TileData  # noqa: F401  (re-exported: a tile's record)


class RetrievalTile(QWidget):
    """A gallery thumbnail with its rank, distance and a true/false mark.

    True matches: green solid border and ✓. False: red dashed border and ✗ — shape and
    glyph as well as colour, for colour-blind users.
    """

    clicked = Signal(int)
    menu_requested = Signal(int, object)

    W, H = 70, 158

    def __init__(self, loader: FrameLoader, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.loader = loader
        self.data: TileData | None = None
        self.selected = False
        self.setFixedSize(self.W, self.H)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        loader.frame_ready.connect(self._on_frame)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(
            lambda pos: self.menu_requested.emit(self.data.gallery_row, self.mapToGlobal(pos)) if self.data else None)

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(self.W, self.H)

    def set_data(self, data: TileData | None) -> None:
        self.data = data
        self.setVisible(data is not None)
        if data is not None:
            tip = f"rank {data.rank} · distance {data.distance:.3f} · {'true match' if data.is_match else 'false match'}"
            if data.label:
                tip += f"\n{data.label}"
            self.setToolTip(tip)
            self.loader.request([data.thumb])
        self.update()

    def _on_frame(self, path: str) -> None:
        if self.data is not None and self.data.thumb == path:
            self.update()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        if self.data is None:
            return
        d = self.data
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(250, 250, 250) if not self.selected else QColor(220, 232, 250))
        img_rect = QRectF(6, 6, self.W - 12, self.H - 44)
        image = self.loader.get(d.thumb)
        if image is not None:
            p.drawImage(img_rect, image)
        else:
            p.fillRect(img_rect, QColor(200, 200, 200))
        color = MATCH if d.is_match else NON_MATCH
        pen = QPen(color, 4)
        pen.setStyle(Qt.PenStyle.SolidLine if d.is_match else Qt.PenStyle.DashLine)
        p.setPen(pen)
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawRect(img_rect.adjusted(-2, -2, 2, 2))
        # Glyph badge in the corner.
        badge = QRectF(self.W - 26, 8, 18, 18)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(color)
        p.drawEllipse(badge)
        f = QFont(p.font())
        f.setBold(True)
        p.setFont(f)
        p.setPen(QColor(255, 255, 255))
        p.drawText(badge, Qt.AlignmentFlag.AlignCenter, "✓" if d.is_match else "✗")
        if d.flagged:
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(FLAG)
            p.drawRect(QRectF(6, 6, 10, 10))
        p.setPen(QColor(20, 20, 20))
        p.drawText(QRectF(0, self.H - 37, self.W, 17), Qt.AlignmentFlag.AlignCenter, f"#{d.rank}")
        f.setBold(False)
        p.setFont(f)
        p.setPen(QColor(80, 80, 80))
        p.drawText(QRectF(0, self.H - 20, self.W, 17), Qt.AlignmentFlag.AlignCenter, f"{d.distance:.3f}")
        p.end()

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self.data is not None and event.button() == Qt.MouseButton.LeftButton:
            self.clicked.emit(self.data.gallery_row)


class TileRow(QWidget):
    """A horizontal row of reusable tiles."""

    clicked = Signal(int)
    menu_requested = Signal(int, object)

    def __init__(self, loader: FrameLoader, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.loader = loader
        self.tiles: list[RetrievalTile] = []
        self.box = QHBoxLayout(self)
        self.box.setContentsMargins(0, 0, 0, 0)
        self.box.setSpacing(4)
        self.box.addStretch(1)

    def set_tiles(self, items: list[TileData], selected_row: int | None = None) -> None:
        while len(self.tiles) < len(items):
            tile = RetrievalTile(self.loader)
            tile.clicked.connect(self.clicked)
            tile.menu_requested.connect(self.menu_requested)
            self.box.insertWidget(len(self.tiles), tile)
            self.tiles.append(tile)
        for i, tile in enumerate(self.tiles):
            data = items[i] if i < len(items) else None
            tile.selected = data is not None and data.gallery_row == selected_row
            tile.set_data(data)


class RankedView(QWidget):
    """Top-k retrievals of the selected query, and a row with the true matches and their ranks.

    Args:
        loader: the frame loader (thumbnails).
        state: the viewer state (``None``: a stand-alone view fed by ``show_ranking``).

    Signals:
        retrieval_clicked(int): a gallery row was clicked (load it in the gallery player).
        top_k_changed(int)
        tile_menu_requested(int, QPoint): right-click on a tile (gallery row, global position).
    """

    retrieval_clicked = Signal(int)
    top_k_changed = Signal(int)
    tile_menu_requested = Signal(int, object)

    def __init__(self, loader: FrameLoader, state: ViewerState | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.loader = loader
        self.state = state
        self.header = QLabel("Ranked gallery")
        self.top_k = QSpinBox()
        self.top_k.setRange(1, 50)
        self.top_k.setValue(10)
        self.top_k.setPrefix("top ")
        self.top_k.setToolTip("How many retrievals to show")
        self.top_k.valueChanged.connect(self.top_k_changed)
        self.ranked = TileRow(loader)
        self.ranked.clicked.connect(self.retrieval_clicked)
        self.truth_label = QLabel("True matches")
        self.truth = TileRow(loader)
        self.truth.clicked.connect(self.retrieval_clicked)
        self.ranked.menu_requested.connect(self.tile_menu_requested)
        self.truth.menu_requested.connect(self.tile_menu_requested)

        self.header.setMinimumWidth(10)
        self.truth_label.setMinimumWidth(10)
        head = QHBoxLayout()
        head.addWidget(self.header, 1)
        head.addWidget(self.top_k)
        # --- find similar (issue 21): the way back to the query's ranked gallery ---
        from PySide6.QtWidgets import QPushButton

        self.back_button = QPushButton("◀ Back")
        self.back_button.setObjectName("similar_back")
        self.back_button.setToolTip("Leave find-similar and show the query's ranked gallery again")
        self.back_button.setVisible(False)
        head.insertWidget(0, self.back_button)
        # --- end find similar ---

        def scrolled(w: QWidget) -> QScrollArea:
            area = QScrollArea()
            area.setWidget(w)
            area.setWidgetResizable(True)
            area.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
            area.setFrameShape(QScrollArea.Shape.NoFrame)
            area.setMinimumHeight(RetrievalTile.H + 18)
            return area

        # Top-k on the left, the true matches (wherever they landed) on the right: one row,
        # so both stay visible without scrolling down.
        left = QVBoxLayout()
        left.addLayout(head)
        left.addWidget(scrolled(self.ranked), 1)
        # Compare mode: model B's top-k under A's, for the same query.
        self.b_label = QLabel("")
        self.b_label.setMinimumWidth(10)
        self.ranked_b = TileRow(loader)
        self.ranked_b.clicked.connect(self.retrieval_clicked)
        self.ranked_b.menu_requested.connect(self.tile_menu_requested)
        self.b_area = scrolled(self.ranked_b)
        left.addWidget(self.b_label)
        left.addWidget(self.b_area, 1)
        self.b_label.setVisible(False)
        self.b_area.setVisible(False)
        right = QVBoxLayout()
        right.addWidget(self.truth_label)
        right.addWidget(scrolled(self.truth), 1)
        self.truth_box = QWidget()
        self.truth_box.setLayout(right)
        self.truth_box.setMaximumWidth(3 * RetrievalTile.W + 40)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        layout.addLayout(left, 1)
        layout.addWidget(self.truth_box)
        if state is not None:
            state.session_changed.connect(lambda _s: self.show_ranking("Ranked gallery", [], []))
            state.comparison_changed.connect(lambda _c: self.refresh())
            state.query_changed.connect(lambda _r: self.refresh())
            state.gallery_changed.connect(lambda _r: self.refresh())
            state.annotations_changed.connect(lambda _i: self.refresh())
            self.top_k_changed.connect(lambda _k: self.refresh())
            # --- find similar (issue 21) ---
            self.retrieval_clicked.connect(self._open_tile)
            self.back_button.clicked.connect(lambda: state.show_similar(None))
            state.similar_changed.connect(lambda _v: self.refresh())
            state.query_changed.connect(lambda _r: state.show_similar(None) if state.similar is not None else None)
            # --- end find similar ---

    def refresh(self) -> None:
        """Show the state's query (its top-k and true matches), marking its gallery tracklet."""
        s = self.state
        if self._show_similar():  # find similar (issue 21)
            return
        if s is None or s.session is None or s.query is None:
            return
        session = s.session
        comparing = s.comparison
        header = session.ranking_header(s.query)
        if comparing is not None:
            r = session.results
            ap = "n/a" if not r.valid[s.query] else f"{r.ap[s.query]:.3f}"
            header = f"A · {comparing.name_a}: AP {ap}, first true match #{int(r.first_rank[s.query])}"
        self.show_ranking(header, session.ranked_tiles(s.query, self.top_k.value()),
                          session.truth_tiles(s.query), s.gallery)
        self.show_b(comparing, s.query, s.gallery)

    def show_b(self, comparing, query_row: int | None, selected_row: int | None = None) -> None:
        """Model B's top-k of the same query under A's (compare mode), or hide the row."""
        on = comparing is not None and query_row is not None
        self.b_label.setVisible(on)
        self.b_area.setVisible(on)
        if not on:
            self.ranked_b.set_tiles([])
            return
        b = comparing.session
        c = comparing.comparison
        change = "  ▲ fixed by B" if c.fixed_mask[query_row] else ("  ▼ broken by B" if c.broken_mask[query_row] else "")
        ap = "n/a" if not b.results.valid[query_row] else f"{b.results.ap[query_row]:.3f}"
        text = (f"B · {comparing.name_b}: AP {ap}, first true match #{int(c.first_rank_b[query_row])}"
                f" (A: #{int(c.first_rank_a[query_row])}){change}")
        self.b_label.setText(text)
        self.b_label.setToolTip(text)
        self.ranked_b.set_tiles(b.ranked_tiles(query_row, self.top_k.value()), selected_row)

    def show_ranking(
        self, header: str, ranked: list[TileData], truth: list[TileData], selected_row: int | None = None
    ) -> None:
        """Fill both rows."""
        self.header.setText(header)
        self.header.setToolTip(header)
        self.ranked.set_tiles(ranked, selected_row)
        ranks = ", ".join(f"#{t.rank}" for t in truth) or "none in the gallery"
        if not truth:
            short = "True matches: none in the gallery"
        elif len(truth) == 1:
            short = f"True match at #{truth[0].rank}"
        else:
            short = f"{len(truth)} true matches, first at #{truth[0].rank}"
        self.truth_label.setText(short)
        self.truth_label.setToolTip(f"Every true match of this query and the rank it landed at: {ranks}")
        self.truth.set_tiles(truth, selected_row)

    # --- find similar (issue 21) ----------------------------------------------------------------
    def _show_similar(self) -> bool:
        """Show the state's find-similar answer, if any (True when shown)."""
        s = self.state
        view = getattr(s, "similar", None) if s is not None else None
        on = view is not None and s.session is not None and view.session is s.session
        self.back_button.setVisible(on)
        self.top_k.setEnabled(not on)
        self.truth_box.setVisible(not on)  # the true-match row belongs to the query's ranking
        if not on:
            return False
        self.show_b(None, None)
        self.show_ranking(view.header, view.tiles, [], s.gallery)
        self.header.setToolTip(f"{view.header}\nFind similar searches every query and gallery tracklet, not only "
                               "the query's gallery; ✓ the anchor's identity, ✗ another. ◀ Back returns.")
        return True

    def _open_tile(self, row: int) -> None:
        """A tile was clicked: a gallery row opens in the gallery player; in find-similar mode a
        query that is not in the gallery (row ``-(query + 1)``) opens as the query."""
        if self.state is None:
            return
        if row >= 0:
            self.state.select_gallery(row)
        else:
            self.state.select_query(-row - 1)
    # --- end find similar ---
