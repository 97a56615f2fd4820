"""The viewer, driven like a user: real window (offscreen), real dataset, real checkpoint."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import Qt  # noqa: E402



@pytest.fixture
def window(open_viewer, shared_workspace):
    return open_viewer(shared_workspace)


def test_opens_on_the_dataset_and_selecting_a_query_fills_the_ranked_list(window, qtbot):
    n_gallery = window.session.results.num_gallery
    assert window.queries.model.rowCount() == window.session.num_queries > 0
    with qtbot.waitSignal(window.query_shown, timeout=5000):
        window.queries.select_position(1)
    tiles = [t for t in window.ranked.ranked.tiles if t.isVisibleTo(window) and t.data is not None]
    assert len(tiles) == min(window.ranked.top_k.value(), n_gallery)
    assert [t.data.rank for t in tiles] == list(range(1, len(tiles) + 1))
    # The probe player shows the selected query's tracklet.
    q = window.queries.current_row()
    assert window.probe.paths == [str(p) for p in window.session.query_tracklet(q).frame_paths()]


def test_space_plays_and_moves_the_counter_and_playhead(window, qtbot):
    window.probe.set_frame(0)
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert window.probe.playing
    qtbot.waitUntil(lambda: window.probe.index >= 3, timeout=3000)
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert not window.probe.playing
    i = window.probe.index
    # One numbering for people: the counter and the plot's axis both say frame i + 1.
    assert window.probe.counter.text() == f"{i + 1} / {window.probe.length}"
    assert window.probe_plot.playhead.value() == i + 1
    assert window.state.frames["probe"] == i


def test_arrows_step_and_home_end(window, qtbot):
    window.probe.set_frame(2)
    qtbot.keyClick(window, Qt.Key.Key_Right)
    assert window.probe.index == 3
    qtbot.keyClick(window, Qt.Key.Key_Left)
    qtbot.keyClick(window, Qt.Key.Key_Left)
    assert window.probe.index == 1
    qtbot.keyClick(window, Qt.Key.Key_End)
    assert window.probe.index == window.probe.length - 1
    qtbot.keyClick(window, Qt.Key.Key_Home)
    assert window.probe.index == 0


def test_alt_arrows_change_the_highlighted_iteration(window, qtbot):
    k_final = window.session.num_iterations - 1
    assert k_final == 3
    assert window.iteration == k_final
    qtbot.keyClick(window, Qt.Key.Key_Up, Qt.KeyboardModifier.AltModifier)
    assert window.iteration == k_final - 1
    assert window.probe_plot.highlight == k_final - 1
    assert window.probe_plot.curves[k_final - 1].opts["pen"].widthF() > window.probe_plot.curves[k_final].opts["pen"].widthF()
    qtbot.keyClick(window, Qt.Key.Key_Down, Qt.KeyboardModifier.AltModifier)
    assert window.iteration == k_final
    assert "k = 3" in window.iteration_label.text()
    # At the last iteration (where the view opens) Alt+↓ wraps around to k = 0: a key always acts.
    qtbot.keyClick(window, Qt.Key.Key_Down, Qt.KeyboardModifier.AltModifier)
    assert window.iteration == 0 and window.gallery_plot.highlight == 0


def test_pgdown_moves_to_the_next_query(window, qtbot):
    window.queries.select_position(0)
    first = window.queries.current_row()
    with qtbot.waitSignal(window.query_shown, timeout=5000):
        qtbot.keyClick(window, Qt.Key.Key_PageDown)
    assert window.queries.current_row() != first
    assert window.queries.visible_rows()[1] == window.queries.current_row()


def test_clicking_a_retrieval_loads_it_in_the_gallery_player(window, qtbot):
    window.queries.select_position(0)
    tile = window.ranked.ranked.tiles[2]
    row = tile.data.gallery_row
    qtbot.mouseClick(tile, Qt.MouseButton.LeftButton)
    assert window.current_gallery == row
    expected = [str(p) for p in window.session.gallery_tracklet(row).frame_paths()]
    assert window.gallery.paths == expected
    assert "rank 3" in window.gallery.title.text()


def test_sorting_by_ap_puts_a_failing_query_first(window):
    results = window.session.results
    assert len(results.failures()) > 0, "a random model should fail on some query"
    window.queries.sort_by("identity")
    window.queries.sort_by("ap")
    first = window.queries.visible_rows()[0]
    assert results.first_rank[first] != 1
    assert "failures first" in window.queries.sort_label.text()


def test_metrics_panel_shows_the_same_rank1_as_the_cli(window, synth_root, random_checkpoint, shared_workspace, tmp_path):
    from reidviewer.cli import main

    out = tmp_path / "m.json"
    rc = main(["evaluate", "--root", str(synth_root), "--checkpoint", str(random_checkpoint),
               "--workspace", str(shared_workspace.root), "--json", str(out)])
    assert rc == 0
    rank1 = json.loads(out.read_text())["rank1"]
    assert window.metrics.values["rank1"].text() == f"{100 * rank1:.1f}%"


def test_failures_view_lists_wrong_rank1_queries_and_opens_one(window, qtbot):
    cases = window.failures.model.cases
    assert len(cases) == len(window.session.results.failures())
    index = window.failures.model.index(0)
    window.failures.view.clicked.emit(index)
    assert window.current_query == cases[0].query_row
    assert window.current_gallery == (cases[0].true_row if cases[0].true_row is not None else cases[0].wrong_row)


def test_help_dialog_lists_every_shortcut():
    from reidviewer.app.shortcuts import SHORTCUTS, help_rows

    rows = help_rows()
    assert len(rows) == len(SHORTCUTS)
    keys = " ".join(r[1] for r in rows)
    for k in ("Space", "Left", "Right", "Home", "End", "PgUp", "PgDown", "Alt+Up", "Alt+Down", "F1"):
        assert k in keys


def test_ctrl_e_opens_the_export_dialog_for_the_current_view(window, qtbot):
    from reidviewer.app.export_dialog import ExportDialog

    window.queries.select_position(0)
    window.tabs.setCurrentWidget(window.failures)
    qtbot.keyClick(window, Qt.Key.Key_E, Qt.KeyboardModifier.ControlModifier)
    dialog = window.export_dialog
    assert isinstance(dialog, ExportDialog)
    assert dialog.options() is not None
    assert "failures" in dialog.windowTitle().lower() or dialog.kind == "failures"
    dialog.close()
