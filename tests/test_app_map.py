"""The Map tab and find-similar, driven like a user on the tiny SynthWalk set."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import QPoint, Qt  # noqa: E402


@pytest.fixture
def viewer(open_viewer, shared_workspace, qtbot):
    w = open_viewer(shared_workspace)
    w.tabs.setCurrentWidget(w.map_view)
    qtbot.waitUntil(lambda: w.map_view.coords is not None, timeout=10_000)
    return w


def _click_view_point(qtbot, mv, i):
    """Left-click point i where it is drawn."""
    scene = mv.vb.mapViewToScene(mv.view_pos(i))
    pos = mv.plot.mapFromScene(scene)
    qtbot.mouseClick(mv.plot.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(int(pos.x()), int(pos.y())))


def test_map_colours_click_and_lasso(viewer, qtbot, tmp_path):
    w = viewer
    mv = w.map_view
    m = mv.map
    n = len(m.ms)
    assert n == w.state.session.num_queries + len(set(w.state.session.results.gallery_indices)
                                                   - set(w.state.session.results.query_indices))
    assert mv.coords.shape == (n, 2)
    assert np.array_equal(mv.coords, m.coords["pca"])
    # Colour switch: camera colours follow the cameras, the legend names them.
    mv.color_box.setCurrentIndex(mv.color_box.findData("camera"))
    cams = m.ms.camids
    rgb = mv.colours.rgb
    for c in np.unique(cams):
        assert len(np.unique(rgb[cams == c], axis=0)) == 1
    assert "cam" in mv.legend.text().lower()
    mv.color_box.setCurrentIndex(mv.color_box.findData("rank1"))
    assert "hit at rank 1" in mv.legend.text()
    for key in ("ap", "flag", "spread", "identity"):
        mv.color_box.setCurrentIndex(mv.color_box.findData(key))
        assert len(mv.colours.rgb) == n

    # The current query is starred.
    assert len(mv.marks.data) >= 1
    # Click a gallery-only point: it opens in the gallery player.
    w.show_tab(mv)
    qtbot.waitExposed(mv.plot)
    g_points = np.flatnonzero(m.ms.query_rows < 0)
    # pick an isolated-enough gallery point: the one whose nearest neighbour on screen is farthest
    px, py = mv.vb.viewPixelSize()
    scr = mv.coords / np.array([px, py])
    d = np.sqrt(((scr[:, None, :] - scr[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    gi = int(g_points[np.argmax(d[g_points].min(1))])
    _click_view_point(qtbot, mv, gi)
    qtbot.waitUntil(lambda: w.state.gallery == int(m.ms.gallery_rows[gi]), timeout=3000)
    # Click a query point: it becomes the query.
    q_points = np.flatnonzero(m.ms.query_rows >= 0)
    qi = int(q_points[np.argmax(d[q_points].min(1))])
    _click_view_point(qtbot, mv, qi)
    qtbot.waitUntil(lambda: w.state.query == int(m.ms.query_rows[qi]), timeout=3000)

    # Lasso: a polygon around some points selects exactly those.
    c = mv.coords
    lo, hi = c.min(0), c.max(0)
    mid = (lo + hi) / 2
    poly = [(lo[0] - 1, lo[1] - 1), (mid[0], lo[1] - 1), (mid[0], mid[1]), (lo[0] - 1, mid[1])]
    expected = np.flatnonzero((c[:, 0] <= mid[0]) & (c[:, 1] <= mid[1]))
    with qtbot.waitSignal(mv.selection_changed, timeout=2000):
        got = mv.select_polygon(poly)
    assert sorted(got.tolist()) == sorted(expected.tolist())
    assert mv.list.count() == len(expected)
    # Lasso drawn with the mouse through the view box's lasso mode.
    mv.lasso_button.setChecked(True)
    mv.lasso_start(poly[0])
    for p in poly[1:]:
        mv.lasso_add(p)
    mv.lasso_finish()
    assert sorted(mv.selected.tolist()) == sorted(expected.tolist())
    if len(expected):
        mv.list.setCurrentRow(0)
        mv.open_current()
        i0 = int(mv.list.item(0).data(Qt.ItemDataRole.UserRole))
        if m.ms.query_rows[i0] >= 0:
            assert w.state.query == int(m.ms.query_rows[i0])
        else:
            assert w.state.gallery == int(m.ms.gallery_rows[i0])
        out = mv.export_csv(tmp_path / "sel.csv")
        lines = out.read_text().strip().splitlines()
        assert len(lines) == len(expected) + 1
        assert {ln.split(",")[0] for ln in lines[1:]} == {m.ms.keys[int(i)] for i in expected}
    # Camera bias in Metrics: computed when the tab is shown (not at launch).
    assert "when shown" in w.metrics.camera_bias.text()
    w.show_tab(w.metrics)
    qtbot.waitUntil(lambda: "×" in w.metrics.camera_bias.text() or "n/a" in w.metrics.camera_bias.text(),
                    timeout=10_000)


def test_find_similar_in_ranked_view_and_back(viewer, qtbot):
    w = viewer
    s = w.state.session
    q = w.state.query
    assert q is not None
    # The F key: the probe's nearest tracklets over the whole set.
    w.activateWindow()
    w.setFocus()
    qtbot.keyClick(w, Qt.Key.Key_F)
    qtbot.waitUntil(lambda: w.state.similar is not None, timeout=3000)
    view = w.state.similar
    from reidviewer.app.similar import session_map
    from reidviewer.engine.embedding_map import find_similar

    m = session_map(s)
    ref = find_similar(m.ms.features, m.ms.point_of_query(q), w.ranked.top_k.value(), m.ms.pids)
    assert [t.rank for t in view.tiles] == list(range(1, len(ref.points) + 1))
    assert np.allclose([t.distance for t in view.tiles], ref.distances)
    assert [t.is_match for t in view.tiles] == list(ref.is_match)
    assert w.ranked.back_button.isVisible()
    assert w.ranked.header.text() == view.header
    shown = [t.data.gallery_row for t in w.ranked.ranked.tiles if t.data is not None]
    assert shown == [t.gallery_row for t in view.tiles]
    # Clicking a gallery tile keeps find-similar and opens the tracklet in the gallery player.
    g_tiles = [t for t in view.tiles if t.gallery_row >= 0]
    if g_tiles:
        w.ranked.retrieval_clicked.emit(g_tiles[0].gallery_row)
        assert w.state.gallery == g_tiles[0].gallery_row and w.state.similar is view
    # Back.
    qtbot.mouseClick(w.ranked.back_button, Qt.MouseButton.LeftButton)
    assert w.state.similar is None and not w.ranked.back_button.isVisible()
    assert w.ranked.header.text() == s.ranking_header(q)
    # From a gallery tracklet (Shift+F) and via the method the menus call.
    w.find_similar(gallery_row=0)
    assert w.state.similar is not None and w.state.similar.anchor == m.ms.point_of_gallery(0)
    # Selecting another query leaves find-similar.
    w.state.select_query((q + 1) % s.num_queries)
    assert w.state.similar is None


def test_find_similar_keys_are_registered_once():
    from reidviewer.app.shortcuts import BY_ACTION, SHORTCUTS

    keys = [k for s in SHORTCUTS for k in s.keys]
    assert len(keys) == len(set(keys))
    assert BY_ACTION["find_similar"].keys == ("F",)
    assert BY_ACTION["find_similar_gallery"].keys == ("Shift+F",)


def test_umap_in_the_background_cancel_then_compute(viewer, qtbot):
    pytest.importorskip("umap")
    mv = viewer.map_view
    # Cancel: the answer is dropped, PCA stays.
    mv.set_method("umap")
    assert mv.job is not None and mv.cancel_button.isVisible()
    mv.cancel()
    qtbot.waitUntil(lambda: mv.job is None, timeout=180_000)
    assert mv.method == "pca" and "cancelled" in mv.info.text().lower()
    assert "umap" not in mv.map.coords
    # Compute: UMAP replaces PCA when done, and is cached in the workspace.
    with qtbot.waitSignal(mv.coords_shown, timeout=180_000, check_params_cb=lambda m: m == "umap"):
        mv.method_box.setCurrentIndex(mv.method_box.findData("umap"))
    assert np.array_equal(mv.coords, mv.map.coords["umap"])
    assert list((viewer.workspace.cache_dir / "maps").glob("*.npz"))


def test_without_umap_the_map_offers_pca_and_says_what_to_install(qtbot, monkeypatch):
    from reidviewer.app.map_view import MapView
    from reidviewer.app.state import ViewerState
    from reidviewer.engine import embedding_map as em

    monkeypatch.setattr(em, "umap_available", lambda: False)
    mv = MapView(ViewerState())
    qtbot.addWidget(mv)
    item = mv.method_box.model().item(mv.method_box.findData("umap"))
    assert not item.isEnabled() and 'reidviewer[map]' in item.toolTip()


def test_map_figure_from_the_tab(viewer, tmp_path):
    mv = viewer.map_view
    mv.color_box.setCurrentIndex(mv.color_box.findData("camera"))
    out = mv.export_figure(tmp_path / "map.svg")
    text = out.read_text()
    assert "<svg" in text[:500] and "camera" in text


def test_training_tracklets_on_the_map_open_in_the_gallery_player(viewer, qtbot):
    w = viewer
    mv = w.map_view
    s = w.state.session
    n0 = len(mv.map.ms)
    train = s.dataset.split(int(s.results.split)).train
    with qtbot.waitSignal(mv.coords_shown, timeout=120_000):
        mv.training_box.setChecked(True)
    m = mv.map
    assert m.ms.num_training == len(train) and len(m.ms) == n0 + len(train)
    assert mv.coords.shape == (n0 + len(train), 2)
    assert "training" in mv.info.text() and "■" in mv.legend.text()
    # Clicking a training point opens it in the gallery player, unranked.
    t_point = n0 + 2
    mv.open_point(t_point)
    assert w.state.gallery == s.num_gallery + 2
    assert w.state.tracklet("gallery").key == m.ms.keys[t_point]
    assert "training tracklet (not ranked)" in w.gallery.title.toolTip()
    assert "not ranked" in s.match_text(w.state.query, w.state.gallery)
    # Find similar from it searches query, gallery and training tracklets.
    w.find_similar(gallery_row=w.state.gallery)
    view = w.state.similar
    assert view is not None and view.anchor == t_point and "training included" in view.header
    from reidviewer.engine.embedding_map import find_similar

    ref = find_similar(m.ms.features, t_point, w.ranked.top_k.value(), m.ms.pids)
    assert [t.distance for t in view.tiles] == pytest.approx(list(ref.distances))
    # Unticking takes them off again.
    with qtbot.waitSignal(mv.coords_shown, timeout=10_000):
        mv.training_box.setChecked(False)
    assert len(mv.map.ms) == n0 and s.training is None


def test_lasso_selection_can_be_flagged_as_junk_in_one_undoable_edit(viewer, qtbot):
    w = viewer
    mv = w.map_view
    store = w.annotations.store
    assert store is not None
    mv.set_selection([0, 1, 2])
    keys = [mv.map.ms.keys[i] for i in (0, 1, 2)]
    assert mv.flag_button.isEnabled()
    with qtbot.waitSignal(mv.flag_requested, timeout=2000):
        mv.flag_button.menu().actions()[0].trigger()  # "as junk"
    for k in keys:
        assert "junk" in store.tracklet_flags_of(k)
    w.annotations.stack.undo()
    for k in keys:
        assert "junk" not in store.tracklet_flags_of(k)
