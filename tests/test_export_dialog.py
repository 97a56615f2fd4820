"""The app's Export figure dialog: live preview, Save, and the same drawing as the CLI."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QFileDialog  # noqa: E402

from figures_fixtures import make_saved, svg_normalised, svg_texts  # noqa: E402
from reidviewer.app.export_dialog import ExportDialog  # noqa: E402
from reidviewer.cli import main  # noqa: E402


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_saved(tmp_path_factory.mktemp("dlg"), "r.npz")


def open_dialog(qtbot, *args, **kwargs) -> ExportDialog:
    dialog = ExportDialog(*args, **kwargs)
    qtbot.addWidget(dialog)
    with qtbot.waitSignal(dialog.preview_ready, timeout=20_000):
        dialog.show()
    return dialog


def save_with_button(qtbot, dialog: ExportDialog, monkeypatch, path: Path) -> Path:
    """Click Save…; the file dialog (a native dialog a test cannot drive) answers ``path``."""
    asked = {}

    def answer(parent, caption, directory, filters, selected):
        asked["directory"] = directory
        return str(path), selected

    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(answer))
    with qtbot.waitSignal(dialog.saved, timeout=20_000) as blocker:
        qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert Path(blocker.args[0]) == path
    return Path(asked["directory"])


def test_preview_shows_the_figure_and_follows_the_options(qtbot, data):
    dataset, results, _, ws = data
    dialog = open_dialog(qtbot, "ranking", dataset, results, 2, None, ws)
    pix = dialog.preview.pixmap()
    assert pix is not None and not pix.isNull() and pix.width() > 100
    first = dialog.preview_png
    assert first.startswith(b"\x89PNG")
    with qtbot.waitSignal(dialog.preview_ready, timeout=20_000):
        dialog.topk_spin.setValue(2)
    assert dialog.preview_png != first
    img = cv2.imdecode(np.frombuffer(dialog.preview_png, np.uint8), cv2.IMREAD_COLOR)
    old = cv2.imdecode(np.frombuffer(first, np.uint8), cv2.IMREAD_COLOR)
    # Same width (single column); fewer columns make larger thumbnails, so a taller figure.
    assert img.shape[1] == old.shape[1] and img.shape[0] > old.shape[0]
    with qtbot.waitSignal(dialog.preview_ready, timeout=20_000):
        dialog.kind_box.setCurrentIndex(dialog.kind_box.findData("cmc"))
    assert not dialog.topk_spin.isEnabled() and dialog.add_curve.isVisibleTo(dialog)


@pytest.mark.parametrize("fmt", ["png", "svg"])
def test_app_and_cli_make_the_same_drawing(qtbot, data, tmp_path, monkeypatch, fmt):
    dataset, results, saved, ws = data
    dialog = open_dialog(qtbot, "ranking", dataset, results, 3, None, ws)
    dialog.dpi_spin.setValue(100)
    with qtbot.waitSignal(dialog.preview_ready, timeout=20_000):
        dialog.topk_spin.setValue(4)
    app_file = tmp_path / f"app.{fmt}"
    proposed = save_with_button(qtbot, dialog, monkeypatch, app_file)
    assert proposed.parent == ws.figures_dir

    cli_file = tmp_path / f"cli.{fmt}"
    assert main(["export", "ranking", "--results", str(saved), "--workspace", str(ws.root), "--queries", "3",
                 "--top-k", "4", "--dpi", "100", "--out", str(cli_file)]) == 0
    if fmt == "png":
        a, b = cv2.imread(str(app_file)), cv2.imread(str(cli_file))
        assert a.shape == b.shape and np.array_equal(a, b)
    else:
        assert svg_normalised(app_file) == svg_normalised(cli_file)
        person = dataset.tracklets[int(results.query_indices[3])].person
        assert any(t.startswith(person) for t in svg_texts(app_file))


def test_attention_compares_the_current_gallery_item(qtbot, data, tmp_path):
    dataset, results, _, ws = data
    g_row = int(results.ranked(0, 3)[0][2])  # the query's rank-3 item
    dialog = open_dialog(qtbot, "attention", dataset, results, 0, g_row, ws)
    assert dialog.compare_box.currentData() == "gallery"
    with qtbot.waitSignal(dialog.saved, timeout=20_000):
        dialog.save_to(tmp_path / "a.svg")
    texts = svg_texts(tmp_path / "a.svg")
    person = dataset.tracklets[int(results.gallery_indices[g_row])].person
    assert any(t.startswith(f"Gallery · rank 3 · {person}") for t in texts)


def test_failures_batch(qtbot, data, tmp_path):
    dataset, results, _, ws = data
    dialog = open_dialog(qtbot, "failures", dataset, results, None, None, ws, query_mode="failures", count=5)
    with qtbot.waitSignal(dialog.saved, timeout=20_000):
        dialog.save_to(tmp_path / "f.svg")
    texts = svg_texts(tmp_path / "f.svg")
    assert sum(t.startswith("rank 2") for t in texts) == len(results.failures()) == 2


def test_bad_options_are_reported_not_raised(qtbot, data):
    dataset, results, _, ws = data
    dialog = open_dialog(qtbot, "ranking", dataset, results, 1, None, ws)
    dialog.size_box.setCurrentIndex(dialog.size_box.findData("custom"))
    dialog.width_spin.setValue(1.0)
    with qtbot.waitSignal(dialog.failed, timeout=20_000):
        dialog.height_spin.setValue(1.0)
        dialog.queries_box.setCurrentIndex(dialog.queries_box.findData("first"))
        dialog.count_spin.setValue(6)
    assert "too small" in dialog.status.text()
    assert dialog.preview.pixmap() is None or dialog.preview.pixmap().isNull()
