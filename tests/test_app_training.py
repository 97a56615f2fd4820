"""The Training panel, driven like a user: real window (offscreen), real engine on the CPU,
a tiny SynthWalk set."""
from __future__ import annotations

import json
import shutil
import time

import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import Qt, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication, QMessageBox  # noqa: E402

from reidviewer.app.main_window import MainWindow  # noqa: E402
from reidviewer.app.viewmodel import OpenRequest  # noqa: E402


def tiny(panel, run_name: str, epochs: int = 3) -> None:
    """A run of a few seconds (the paper's recipe): 3 steps an epoch on the 6-identity set,
    validation every epoch."""
    panel.list_devices()
    panel.set_device("cpu")
    panel.recipe_combo.setCurrentIndex(panel.recipe_combo.findData("paper"))
    panel.epochs_spin.setValue(epochs)
    panel.eval_spin.setValue(1)
    panel.pairs_spin.setValue(2)
    panel.milestones_edit.setText("2")
    panel.run_edit.setText(run_name)


def loss_points(panel) -> int:
    curve = panel.curves.get("total")  # made when the first loss arrives
    xs = curve.getData()[0] if curve is not None else None
    return 0 if xs is None else len(xs)


@pytest.fixture
def window(qtbot, synth_root, random_checkpoint, shared_workspace):
    w = MainWindow(shared_workspace, OpenRequest(root=synth_root, name="synthwalk", checkpoint=random_checkpoint))
    with qtbot.waitSignal(w.results_shown, timeout=120_000):
        w.show()
    qtbot.waitExposed(w)
    yield w
    # Stop a run a failed test left going before the window closes (closing asks otherwise).
    w.training.stop()
    w.training.wait(60_000)
    w.close()
    w.deleteLater()


def test_train_stop_resume_finish_compare_and_open_in_viewer(window, qtbot, synth_root, shared_workspace):
    panel = window.training
    window.show_tab(panel)
    # The dataset defaults to what the viewer has open.
    assert panel.root_edit.text() == str(synth_root)
    assert panel.name_edit.currentText() == "synthwalk"
    assert [panel.device_combo.itemData(i) for i in (0, panel.device_combo.count() - 1)] == ["auto", "cpu"]
    # Recipes: the form offers each one's own settings with its defaults (from TrainConfig).
    from reidviewer.engine.recipes import TrainConfig

    panel.recipe_combo.setCurrentIndex(panel.recipe_combo.findData("fast"))
    assert panel.ids_spin.isVisibleTo(panel) and not panel.pairs_spin.isVisibleTo(panel)
    assert panel.lr_spin.value() == TrainConfig(recipe="fast").lr
    panel.recipe_combo.setCurrentIndex(panel.recipe_combo.findData("paper"))
    assert panel.pairs_spin.isVisibleTo(panel) and not panel.ids_spin.isVisibleTo(panel)
    assert panel.epochs_spin.value() == TrainConfig(recipe="paper").epochs == 1000
    name = f"gui-{time.strftime('%H%M%S')}"
    tiny(panel, name)
    run_dir = shared_workspace.runs_dir / name
    # Pooling is a RAN setting: offered for RAN, greyed out for mean pooling, saved with the run.
    panel.head_combo.setCurrentIndex(panel.head_combo.findData("mean"))
    assert not panel.pooling_combo.isEnabled()
    panel.head_combo.setCurrentIndex(panel.head_combo.findData("ran"))
    assert panel.pooling_combo.isEnabled()
    panel.pooling_combo.setCurrentIndex(panel.pooling_combo.findData("l1"))

    with qtbot.waitSignal(panel.state_changed, timeout=5000) as st:
        qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    assert st.args == ["running"]
    assert not panel.start_button.isEnabled() and panel.stop_button.isEnabled()
    assert not panel.epochs_spin.isEnabled() and not panel.pooling_combo.isEnabled()
    qtbot.waitUntil(lambda: loss_points(panel) >= 1, timeout=120_000)
    assert json.loads((run_dir / "config.json").read_text())["model"] == {"pooling": "l1"}

    t0 = time.monotonic()
    with qtbot.waitSignal(panel.run_finished, timeout=30_000) as fin:
        qtbot.mouseClick(panel.stop_button, Qt.MouseButton.LeftButton)
    stop_s = time.monotonic() - t0
    outcome = fin.args[0]
    assert outcome.stopped and outcome.global_step < 9
    assert stop_s < 6, f"stop took {stop_s:.1f} s"  # ≈ 2 s target; this 2-core machine is shared
    assert (run_dir / "last.safetensors").is_file() and (run_dir / "state.json").is_file()
    assert panel.state == "stopped"
    assert panel.start_button.isEnabled() and panel.resume_button.isEnabled() and panel.open_button.isEnabled()
    assert not panel.stop_button.isEnabled()
    assert "stopped" in panel.status.text()

    points_before = loss_points(panel)
    with qtbot.waitSignal(panel.run_finished, timeout=180_000) as fin:
        qtbot.mouseClick(panel.resume_button, Qt.MouseButton.LeftButton)
        # Resume continues the curves from the run's metrics log.
        assert loss_points(panel) >= points_before
    outcome = fin.args[0]
    assert not outcome.stopped and outcome.epochs_done == 3 and outcome.global_step == 9
    assert panel.state == "finished"
    xs, ys = panel.curves["val_rank1"].getData()
    assert len(xs) >= 2 and all(0 <= y <= 1 for y in ys)
    assert max(panel.curves["total"].getData()[0]) == 9
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert any("loss_total" in r for r in records) and any("val_rank1" in r for r in records)

    # Compare: the finished run's log overlaid (dashed) on the same curves.
    shown = panel.add_comparison(run_dir)
    assert shown == name
    cmp_items = panel.comparisons[name]
    assert len(cmp_items) == 2 and len(cmp_items[1].getData()[0]) == len(xs)
    assert cmp_items[0] in panel.loss_plot.listDataItems()

    with qtbot.waitSignal(window.results_shown, timeout=120_000):
        qtbot.mouseClick(panel.open_button, Qt.MouseButton.LeftButton)
    assert window.session.request.checkpoint == run_dir / "last.safetensors"
    rank1 = window.session.metrics()["rank1"]
    assert window.metrics.values["rank1"].text() == f"{100 * rank1:.1f}%"
    assert run_dir.is_dir() and (run_dir / "metrics.jsonl").is_file()


def test_an_unreadable_frame_shows_an_error_and_the_app_goes_on(qtbot, synth_root, tmp_path):
    from reidviewer.workspace import Workspace

    broken = tmp_path / "broken"
    shutil.copytree(synth_root, broken)
    victim = sorted(broken.rglob("*.png"))[5]
    victim.write_bytes(b"this is not a PNG \x00\x01\x02" * 10)
    workspace = Workspace(tmp_path / "ws")
    w = MainWindow(workspace, None)
    qtbot.addWidget(w)
    w.show()
    panel = w.training
    w.show_tab(panel)
    panel.root_edit.setText(str(broken))
    panel.name_edit.setCurrentText("synthwalk")
    tiny(panel, "broken-run", epochs=1)
    with qtbot.waitSignal(panel.run_failed, timeout=120_000) as failed:
        panel.start()
    message = failed.args[0]
    assert victim.name in message and "cannot be read" in message
    assert panel.error.isVisible() and victim.name in panel.error.text()
    assert w.isVisible() and panel.state == "failed"
    assert panel.start_button.isEnabled() and not panel.stop_button.isEnabled()
    assert (workspace.runs_dir / "broken-run").is_dir()  # the run folder is kept
    # The app still works: the settings can be changed and a bad setting is reported too.
    panel.milestones_edit.setText("ten")
    panel.start()
    assert "Milestones" in panel.error.text() and panel.state == "failed"


def test_closing_during_training_asks_and_stop_saves_a_checkpoint(window, qtbot, shared_workspace):
    panel = window.training
    name = f"close-{time.strftime('%H%M%S')}"
    tiny(panel, name, epochs=20)
    panel.start()
    qtbot.waitUntil(lambda: loss_points(panel) >= 1, timeout=120_000)

    def answer(text: str) -> None:
        box = QApplication.activeModalWidget()
        assert isinstance(box, QMessageBox), box
        button = next(b for b in box.buttons() if b.text() == text)
        button.click()

    QTimer.singleShot(200, lambda: answer("Keep waiting"))
    window.close()
    assert window.isVisible() and panel.is_running()

    QTimer.singleShot(200, lambda: answer("Stop and close"))
    window.close()
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=30_000)
    assert not panel.is_running() and panel.state == "stopped"
    assert (shared_workspace.runs_dir / name / "last.safetensors").is_file()
