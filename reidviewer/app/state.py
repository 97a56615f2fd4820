"""The viewer's one state: what is open and what is selected, Qt-free and evented.

Every view of the main window reads what it shows from a ``ViewerState`` and subscribes to
its signals (``psygnal``, the Qt-free evented model napari uses); a view that the user acts
on changes the state, never another view. The main window only composes views around one
state. No Qt here, so the state and its rules are tested without a window.

Signals (emitted after the change; the selection signals only when the value changed, the
others whenever called):

* ``session_changed(session)``: a dataset and results were opened (or ``None``).
* ``query_changed(row)``: the selected query (a results row, or ``None``).
* ``gallery_changed(row)``: the gallery tracklet in the gallery player (or ``None``).
* ``iteration_changed(k)``: the refinement iteration highlighted in plots and strips.
* ``frame_changed(player, frame)``: the playhead of ``"probe"`` or ``"gallery"`` (0-based).
* ``annotations_changed(identity)``: annotations changed; ``identity`` when identities or
  split membership changed too (the results were re-ranked).
* ``comparison_changed(comparing)``: the second model of compare mode (``viewmodel.Comparing``,
  or ``None``); after ``swap_comparison`` it follows ``session_changed``.
* ``status_changed(text)``: a one-line message for the status bar.
"""
from __future__ import annotations

from typing import Any

from psygnal import Signal

PLAYERS = ("probe", "gallery")


class ViewerState:
    """What the viewer has open and selected.

    Attributes:
        session: the open ``viewmodel.Session`` (dataset, split, results), or ``None``.
        query: the selected query's results row, or ``None``.
        gallery: the gallery row shown in the gallery player, or ``None``.
        iteration: the highlighted refinement iteration k (0..K).
        frames: the playhead of each player (``"probe"``, ``"gallery"``), 0-based.
        comparison: compare mode's second model (``viewmodel.Comparing``: B's session and the
            ``Comparison``), or ``None``.
        annotation_version: the annotation store's version the session shows.
    """

    session_changed = Signal(object)
    query_changed = Signal(object)
    gallery_changed = Signal(object)
    iteration_changed = Signal(int)
    frame_changed = Signal(str, int)
    annotations_changed = Signal(bool)
    comparison_changed = Signal(object)
    status_changed = Signal(str)

    def __init__(self) -> None:
        self.session: Any = None
        self.query: int | None = None
        self.gallery: int | None = None
        self.iteration = 0
        self.frames = {p: 0 for p in PLAYERS}
        self.comparison: Any = None
        self.annotation_version: str | None = None
        self.status = ""

    # ------------------------------------------------------------------ opening
    def set_session(self, session: Any) -> None:
        """Show a new session: no query selected yet, the final refinement iteration highlighted."""
        self.session = session
        comparing = self.comparison is not None
        self.comparison = None
        self.query = None
        self.gallery = None
        self.frames = {p: 0 for p in PLAYERS}
        self.iteration = self.final_iteration
        self.session_changed.emit(session)
        self.iteration_changed.emit(self.iteration)
        if comparing:
            self.comparison_changed.emit(None)

    def set_comparison(self, comparing: Any) -> None:
        """Compare mode: a second model on the same queries and gallery (``viewmodel.Comparing``,
        whose ``session`` is model B); ``None`` ends it."""
        self.comparison = comparing
        self.comparison_changed.emit(comparing)

    def swap_comparison(self) -> bool:
        """Exchange models A and B, keeping the selected query (False when not comparing).

        Views hear ``session_changed`` (the new A), then ``comparison_changed`` (the new B), then
        the query is selected again.
        """
        if self.comparison is None or self.session is None:
            return False
        query = self.query
        swapped = self.comparison.swapped(self.session)
        self.session = self.comparison.session
        self.comparison = swapped
        self.query = None
        self.gallery = None
        self.frames = {p: 0 for p in PLAYERS}
        self.iteration = min(self.iteration, self.final_iteration) if self.num_iterations > 1 else 0
        self.session_changed.emit(self.session)
        self.iteration_changed.emit(self.iteration)
        self.comparison_changed.emit(swapped)
        if query is not None:
            self.select_query(query)
        return True

    # ------------------------------------------------------------------ selection
    @property
    def num_iterations(self) -> int:
        """K + 1 of the open model (1 when it has no refinement)."""
        return self.session.num_iterations if self.session is not None else 1

    @property
    def final_iteration(self) -> int:
        """K: the iteration whose attention pools the video feature."""
        return self.num_iterations - 1

    def tracklet(self, player: str) -> Any:
        """The tracklet ``player`` shows: the selected query's (``"probe"``) or the gallery
        row's (``"gallery"``); ``None`` while nothing is open or selected there."""
        if player not in PLAYERS:
            raise ValueError(f"player must be one of {PLAYERS}, not {player!r}")
        if self.session is None:
            return None
        if player == "probe":
            return None if self.query is None else self.session.query_tracklet(self.query)
        return None if self.gallery is None else self.session.gallery_tracklet(self.gallery)

    def select_query(self, row: int | None, gallery: int | None = None) -> None:
        """Select a query; its gallery player shows ``gallery`` (default: the rank-1 retrieval)."""
        if self.session is None:
            return
        if row is not None and not 0 <= int(row) < self.session.num_queries:
            raise IndexError(f"query row {row} out of range (0..{self.session.num_queries - 1})")
        changed = row != self.query
        self.query = None if row is None else int(row)
        if changed:
            self.frames["probe"] = 0
            self.query_changed.emit(self.query)
        if gallery is None and self.query is not None:
            gallery = self.session.top_gallery_row(self.query)
        self.select_gallery(gallery, force=changed)

    def select_gallery(self, row: int | None, force: bool = False) -> None:
        """Show gallery row ``row`` in the gallery player."""
        if self.session is None:
            return
        # num_gallery_rows: the gallery's rows, then the training tracklets' when the map loaded them.
        n = getattr(self.session, "num_gallery_rows", self.session.num_gallery)
        if row is not None and not 0 <= int(row) < n:
            raise IndexError(f"gallery row {row} out of range (0..{n - 1})")
        row = None if row is None else int(row)
        if row == self.gallery and not force:
            return
        self.gallery = row
        self.frames["gallery"] = 0
        self.gallery_changed.emit(row)

    def set_iteration(self, k: int) -> None:
        """Highlight refinement iteration ``k`` (clamped to 0..K)."""
        k = max(0, min(self.num_iterations - 1, int(k)))
        if k != self.iteration:
            self.iteration = k
            self.iteration_changed.emit(k)

    def step_iteration(self, delta: int) -> None:
        """Alt+↑ / Alt+↓: the previous / next iteration, wrapping around (so a key always
        does something, also at k = K where the view opens)."""
        n = self.num_iterations
        if n > 1:
            self.set_iteration((self.iteration + delta) % n)

    def set_frame(self, player: str, frame: int) -> None:
        """Move ``player``'s playhead to ``frame`` (0-based; views clamp to the tracklet)."""
        if player not in PLAYERS:
            raise ValueError(f"player must be one of {PLAYERS}, not {player!r}")
        frame = max(0, int(frame))
        if frame != self.frames[player]:
            self.frames[player] = frame
            self.frame_changed.emit(player, frame)

    # ------------------------------------------------------------------ changes
    def annotations_updated(self, identity: bool, version: str | None = None) -> None:
        """Say that annotations changed (the session already holds the new flags / labels)."""
        self.annotation_version = version
        if identity and self.session is not None and self.gallery is not None \
                and self.gallery >= self.session.num_gallery:
            self.gallery = None
        self.annotations_changed.emit(bool(identity))

    def set_status(self, text: str) -> None:
        """A one-line message for the status bar."""
        self.status = text
        self.status_changed.emit(text)

    # --- find similar (issue 21) ------------------------------------------------------------
    #: ``similar_changed(view)``: the ranked view shows the nearest tracklets of the whole set
    #: to one tracklet (``app.similar.SimilarView``), or ``None``: back to the query's ranking.
    similar_changed = Signal(object)
    #: The find-similar answer shown, or ``None``.
    similar: Any = None

    def show_similar(self, view: Any) -> None:
        """Show a find-similar answer in the ranked view (``None``: back to the ranked gallery)."""
        self.similar = view
        self.similar_changed.emit(view)
    # --- end find similar ---
