"""Annotating in the viewer, driven like a user: Q/O flags, M merges, undo/redo, the annotated results."""
from __future__ import annotations

import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import Qt  # noqa: E402

from reidviewer.app.viewmodel import load_session  # noqa: E402

CTRL = Qt.KeyboardModifier.ControlModifier
SHIFT = Qt.KeyboardModifier.ShiftModifier


@pytest.fixture
def window(open_viewer, workspace):
    # A fresh workspace per test, so the annotation store starts empty.
    w = open_viewer(workspace)
    yield w
    w.close()


def test_q_flags_the_probe_frame_and_undo_redo_follow(window, qtbot):
    assert window.annotations.store is not None and not window.annotations.store.read_only
    window.probe.set_frame(2)
    qtbot.keyClick(window, Qt.Key.Key_Q)
    assert window.probe.flags == {2: "occluded"}
    assert window.probe.view.flag_text == "occluded"
    assert [round(item.value()) for item in window.probe_plot.flag_items] == [3]  # frame 3 for people
    q = window.current_query
    assert [r for r in window.queries.model.rows if r.row == q][0].flagged
    assert window.annotations.panel.history.count() == 1

    qtbot.keyClick(window, Qt.Key.Key_Z, CTRL)
    assert window.probe.flags == {}
    assert window.probe.view.flag_text == ""
    assert window.probe_plot.flag_items == []
    assert not [r for r in window.queries.model.rows if r.row == q][0].flagged
    assert "[undone]" in window.annotations.panel.history.item(0).text()

    qtbot.keyClick(window, Qt.Key.Key_Z, CTRL | SHIFT)
    assert window.probe.flags == {2: "occluded"}
    assert len(window.probe_plot.flag_items) == 1

    # O adds "bad crop" to the same frame; Q again clears "occluded" (a toggle).
    qtbot.keyClick(window, Qt.Key.Key_O)
    assert window.probe.flags == {2: "bad crop, occluded"}
    qtbot.keyClick(window, Qt.Key.Key_Q)
    assert window.probe.flags == {2: "bad crop"}
    store = window.annotations.store
    key = window.session.query_tracklet(q).key
    assert store.frame_flags_of(key) == {2: frozenset({"bad_crop"})}


def test_m_merges_the_selected_retrieval_into_the_query_identity(window, qtbot):
    window.annotations.set_confirm_merge(False)
    s = window.session
    # A query with a false match among its top retrievals.
    for pos in range(window.queries.model.rowCount()):
        window.queries.select_position(pos)
        tiles = [t.data for t in window.ranked.ranked.tiles if t.isVisibleTo(window) and t.data is not None]
        wrong = [d for d in tiles if not d.is_match]
        if wrong:
            break
    target = wrong[0]
    q = window.current_query
    window.show_gallery(target.gallery_row)
    assert "false match" in window.gallery.title.text()
    before_truth = len(s.results.true_matches(q)[0])

    qtbot.keyClick(window, Qt.Key.Key_M)
    s = window.session
    assert s.is_match(q, target.gallery_row)
    assert "true match" in window.gallery.title.text()
    tile = [t.data for t in window.ranked.ranked.tiles if t.data is not None and t.data.gallery_row == target.gallery_row][0]
    assert tile.is_match
    assert len(s.results.true_matches(q)[0]) > before_truth
    assert target.gallery_row in [t.data.gallery_row for t in window.ranked.truth.tiles if t.data is not None]
    store = window.annotations.store
    assert store.pid_of(s.gallery_tracklet(target.gallery_row).key) == store.pid_of(s.query_tracklet(q).key)
    assert s.results.annotation_version == store.version()

    qtbot.keyClick(window, Qt.Key.Key_Z, CTRL)
    assert not window.session.is_match(q, target.gallery_row)
    assert "false match" in window.gallery.title.text()


def test_results_computed_after_an_edit_record_the_annotation_version(window, qtbot, workspace):
    window.probe.set_frame(1)
    qtbot.keyClick(window, Qt.Key.Key_O)
    version = window.annotations.store.version()
    assert window.session.results.annotation_version is None  # computed before any annotation

    session = load_session(window.session.request, workspace)  # the store stays open for writing here
    assert session.results.annotation_version == version
    assert session.base_dataset is not None
    # The app's path: the store is opened read-only by the loader, so the window keeps editing.
    assert not window.annotations.store.read_only


def test_a_second_window_opens_the_store_read_only_and_says_so(window, qtbot, workspace, open_viewer):
    other = open_viewer(workspace)
    try:
        store = other.annotations.store
        assert store is not None and store.read_only
        assert "read-only" in other.status_text.text()
        assert "READ-ONLY" in other.annotations.panel.mode.text()
        other.probe.set_frame(0)
        qtbot.keyClick(other, Qt.Key.Key_Q)
        assert other.probe.flags == {}  # refused, not applied
        assert "read-only" in other.status_text.text()
    finally:
        other.close()
