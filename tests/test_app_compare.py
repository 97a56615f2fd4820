"""Compare mode, driven like a user: open B, sort by fixed, click a query, both rows and curves, Ctrl+B."""
from __future__ import annotations

import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import Qt  # noqa: E402


@pytest.fixture(scope="session")
def second_checkpoint(tmp_path_factory):
    """Model B: a RAN with other seeded random weights (so some queries change at rank 1)."""
    import torch

    from reidviewer.model.checkpoint import save_checkpoint
    from reidviewer.model.config import ModelConfig
    from reidviewer.model.network import build_model

    torch.manual_seed(7)
    config = ModelConfig(head="ran", iterations=2, num_classes=3)
    path = tmp_path_factory.mktemp("ckpt-b") / "other-ran.safetensors"
    save_checkpoint(path, build_model(config), config, {"note": "random weights for compare tests"})
    return path


@pytest.fixture
def comparing(open_viewer, shared_workspace, second_checkpoint, qtbot):
    w = open_viewer(shared_workspace)
    w.compare_with(second_checkpoint)
    qtbot.waitUntil(lambda: w.state.comparison is not None, timeout=120_000)
    return w


def test_compare_mode_columns_sorts_rows_curves_and_swap(comparing, qtbot):
    w = comparing
    c = w.state.comparison.comparison
    assert c.name_a == "random-ran" and c.name_b == "other-ran"
    # The query list gains ΔAP and A→B columns.
    headers = [w.queries.model.headerData(i, Qt.Orientation.Horizontal) for i in range(w.queries.model.columnCount())]
    assert headers[-2:] == ["ΔAP", "1st A→B"]
    # Sort by "fixed by B": the fixed queries come first.
    w.queries.sort_by("fixed")
    visible = w.queries.visible_rows()
    assert visible[: c.fixed] == [int(r) for r in c.order("fixed")[: c.fixed]]
    assert set(visible[: c.fixed]) == set(int(r) for r in c.fixed_rows())
    w.queries.sort_by("broken")
    assert set(w.queries.visible_rows()[: c.broken]) == set(int(r) for r in c.broken_rows())
    w.queries.sort_by("delta")
    import numpy as np

    d = np.abs(np.nan_to_num(c.delta_ap[w.queries.visible_rows()], nan=-1.0))
    assert np.all(np.diff(d[d >= 0]) <= 1e-12)
    # Click a query: both ranked rows and both sets of curves are shown.
    w.queries.sort_by("fixed")
    pos = 0 if w.queries.visible_rows()[0] != w.queries.current_row() else 1
    with qtbot.waitSignal(w.query_shown, timeout=5000):
        w.queries.select_position(pos)
    q = w.queries.current_row()
    assert q == w.queries.visible_rows()[pos] == w.state.query
    a_tiles = [t.data.gallery_row for t in w.ranked.ranked.tiles if t.data is not None]
    b_tiles = [t.data.gallery_row for t in w.ranked.ranked_b.tiles if t.data is not None]
    assert w.ranked.b_area.isVisibleTo(w) and len(b_tiles) == len(a_tiles) > 0
    assert a_tiles == [int(g) for g in w.session.results.ranked(q, len(a_tiles))[0]]
    assert b_tiles == [int(g) for g in c.b.ranked(q, len(b_tiles))[0]]
    assert w.probe_plot.iterations == 4 and w.probe_plot.iterations_b == 3
    assert all(cv.opts["pen"].style() == Qt.PenStyle.DashLine for cv in w.probe_plot.curves_b)
    assert all(cv.opts["pen"].style() == Qt.PenStyle.SolidLine for cv in w.probe_plot.curves)
    # Status bar and Metrics name both models; Metrics has both CMC curves and the tests.
    assert "random-ran" in w.status_text.text() and "other-ran" in w.status_text.text()
    text = w.metrics.compare_text.text()
    assert "McNemar" in text and "CI" in text and "random-ran" in text and "other-ran" in text
    assert len(w.metrics.cmc_curve_b.getData()[0]) > 0
    # The AP scatter opens a query when a point is clicked.
    pts = w.metrics.scatter.points()
    target = int(pts[-1].data())
    w.metrics._on_scatter_click(w.metrics.scatter, [pts[-1]])
    assert w.state.query == target
    # Ctrl+B swaps A and B, keeping the query.
    fixed, broken = c.fixed, c.broken
    qtbot.keyClick(w, Qt.Key.Key_B, Qt.KeyboardModifier.ControlModifier)
    c2 = w.state.comparison.comparison
    assert c2.name_a == "other-ran" and (c2.fixed, c2.broken) == (broken, fixed)
    assert w.state.query == target
    assert w.probe_plot.iterations == 3 and w.probe_plot.iterations_b == 4
    # Ending compare mode removes the extra columns and rows.
    w.end_compare_action.trigger()
    assert w.queries.model.columnCount() == 5 and not w.ranked.b_area.isVisibleTo(w)
    assert w.probe_plot.iterations_b == 0


def test_comparing_with_results_of_another_split_fails_with_one_clear_message(open_viewer, shared_workspace,
                                                                              qtbot, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    from reidviewer.engine.results import build_results

    w = open_viewer(shared_workspace)
    other = build_results([[0.0]], [[0.0], [1.0]], [1], [1, 2], [0], [1, 1]).save(tmp_path / "other.npz")
    shown = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: shown.append(a[2]))
    w.compare_with(other)
    qtbot.waitUntil(lambda: bool(shown), timeout=30_000)
    assert "cannot compare" in shown[0] and w.state.comparison is None


def test_swap_key_is_registered_and_harmless_without_a_comparison(open_viewer, shared_workspace, qtbot):
    from reidviewer.app.shortcuts import BY_ACTION

    assert BY_ACTION["swap_models"].keys == ("Ctrl+B",)
    w = open_viewer(shared_workspace)
    qtbot.keyClick(w, Qt.Key.Key_B, Qt.KeyboardModifier.ControlModifier)
    assert "Compare with" in w.status_text.text()
