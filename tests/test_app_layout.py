"""Every word and pixel in place: at 1280×800 no label, button, tab or plot title of the main
window, of any Analysis tab or of the Training page (also while a run is going) is cut off."""
from __future__ import annotations

import time

import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import (  # noqa: E402
    QAbstractButton,
    QCheckBox,
    QComboBox,
    QLabel,
    QPushButton,
    QTabBar,
    QToolButton,
    QWidget,
)

from reidviewer.app.main_window import MainWindow  # noqa: E402
from reidviewer.app.viewmodel import OpenRequest  # noqa: E402


def _visible(w: QWidget) -> bool:
    return w.isVisible() and w.width() > 0 and w.height() > 0


def _plain(text: str) -> str:
    import re

    return re.sub(r"<[^>]+>", "", text).replace("&nbsp;", " ")


def clipped(root: QWidget) -> list[str]:
    """Descriptions of the visible texts under ``root`` that do not fit their widget."""
    out = []
    for label in root.findChildren(QLabel):
        text = _plain(label.text())
        if not _visible(label) or not text.strip() or label.pixmap() is not None and not label.pixmap().isNull():
            continue
        fm = label.fontMetrics()
        rect = label.contentsRect()
        if label.wordWrap():
            need = label.heightForWidth(label.width()) if label.heightForWidth(label.width()) > 0 else 0
            if need > label.height() + 1:
                out.append(f"label {text[:60]!r}: needs {need} px high, has {label.height()}")
        else:
            widest = max(fm.horizontalAdvance(line) for line in text.splitlines() or [""])
            if widest > rect.width() + 1:
                out.append(f"label {text[:60]!r}: needs {widest} px, has {rect.width()}")
    for button in root.findChildren(QAbstractButton):
        if not _visible(button) or not button.text() or isinstance(button, QToolButton) and len(button.text()) <= 2:
            continue
        if isinstance(button, (QPushButton, QCheckBox)):
            need = button.sizeHint().width()
            if need > button.width() + 1:
                out.append(f"button {button.text()!r}: needs {need} px, has {button.width()}")
    for combo in root.findChildren(QComboBox):
        if not _visible(combo) or combo.isEditable():
            continue
        need = combo.fontMetrics().horizontalAdvance(combo.currentText()) + 28  # arrow and margins
        if need > combo.width() + 1:
            out.append(f"combo {combo.currentText()!r}: needs {need} px, has {combo.width()}")
    for bar in root.findChildren(QTabBar):
        if not _visible(bar):
            continue
        for i in range(bar.count()):
            if bar.tabSizeHint(i).width() > bar.tabRect(i).width() + 1:
                out.append(f"tab {bar.tabText(i)!r}: needs {bar.tabSizeHint(i).width()}, has {bar.tabRect(i).width()}")
    try:
        import pyqtgraph as pg
    except ImportError:  # pragma: no cover
        return out
    for plot in root.findChildren(pg.PlotWidget):
        if not _visible(plot):
            continue
        item = plot.getPlotItem()
        title = item.titleLabel
        if title.isVisible() and title.text:
            text_w = title.item.boundingRect().width()
            if text_w > item.width() + 1:
                out.append(f"plot title {_plain(title.text)!r}: needs {text_w:.0f} px, has {item.width():.0f}")
        if plot.height() < 60:
            out.append(f"plot {_plain(title.text or '')!r} squashed to {plot.height()} px")
    return out


@pytest.fixture
def window(qtbot, synth_root, random_checkpoint, shared_workspace):
    w = MainWindow(shared_workspace, OpenRequest(root=synth_root, name="synthwalk", checkpoint=random_checkpoint))
    w.resize(1280, 800)
    with qtbot.waitSignal(w.results_shown, timeout=120_000):
        w.show()
    qtbot.waitExposed(w)
    qtbot.wait(300)
    yield w
    w.training.stop()
    w.training.wait(60_000)
    w.close()
    w.deleteLater()


def test_the_viewer_and_every_analysis_tab_show_their_whole_text(window, qtbot):
    assert window.width() == 1280 and window.height() == 800
    problems = {}
    for i in range(window.tabs.count()):
        window.tabs.setCurrentIndex(i)
        qtbot.wait(150)
        problems[window.tabs.tabText(i)] = clipped(window)
    assert {k: v for k, v in problems.items() if v} == {}


def test_the_training_page_shows_its_whole_text_also_while_a_run_is_going(window, qtbot, shared_workspace):
    window.pages.setCurrentIndex(1)
    qtbot.wait(200)
    panel = window.training
    for recipe in ("fast", "paper"):
        panel.recipe_combo.setCurrentIndex(panel.recipe_combo.findData(recipe))
        qtbot.wait(50)
        assert clipped(window) == [], recipe
    panel.list_devices()
    panel.set_device("cpu")
    panel.epochs_spin.setValue(30)
    panel.eval_spin.setValue(1)
    panel.pairs_spin.setValue(2)
    panel.run_edit.setText(f"layout-{time.strftime('%H%M%S')}")
    panel.start()
    qtbot.waitUntil(lambda: len(getattr(panel.series.get("val_rank1"), "xs", [])) > 0, timeout=120_000)
    qtbot.wait(300)
    problems = clipped(window)
    panel.stop()
    assert problems == []
