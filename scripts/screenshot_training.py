"""Screenshot of the Training panel mid-run (run under ``xvfb-run`` for a real X display).

    xvfb-run -a -s "-screen 0 1280x800x24" .venv/bin/python scripts/screenshot_training.py \
        --out resources/screenshots

Generates a small SynthWalk set in a temporary workspace, trains a short run A to the end,
opens it in the viewer, then starts run B (another learning rate) with A overlaid for
comparison and grabs the window mid-run as ``training.png``.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="resources/screenshots")
    ap.add_argument("--ids", type=int, default=8)
    args = ap.parse_args()

    from PySide6.QtCore import QEventLoop, Qt, QTimer
    from PySide6.QtWidgets import QApplication, QDockWidget

    from reidviewer.app.main_window import MainWindow
    from reidviewer.data.synthwalk import SynthConfig, generate
    from reidviewer.workspace import Workspace

    tmp = Path(tempfile.mkdtemp(prefix="reidviewer-shot-"))
    root = tmp / "synthwalk"
    generate(root, SynthConfig(ids=args.ids, seed=7, min_len=16, max_len=32), workers=2)
    app = QApplication(sys.argv[:1])
    w = MainWindow(Workspace(tmp / "ws"), None)
    w.resize(1280, 800)
    w.show()
    side = next(d for d in w.findChildren(QDockWidget) if d.widget() is w.tabs)
    w.resizeDocks([side], [560], Qt.Orientation.Horizontal)
    panel = w.training
    w.show_tab(panel)
    loop = QEventLoop()

    def wait_for(signal, ms: int = 600_000) -> None:
        signal.connect(loop.quit)
        QTimer.singleShot(ms, loop.quit)
        loop.exec()
        signal.disconnect(loop.quit)

    panel.list_devices()
    panel.set_device("cpu")
    panel.root_edit.setText(str(root))
    panel.name_edit.setCurrentText("synthwalk")
    panel.epochs_spin.setValue(6)
    panel.eval_spin.setValue(1)
    panel.pairs_spin.setValue(2)
    panel.milestones_edit.setText("4")
    panel.lr_spin.setValue(0.001)
    panel.run_edit.setText("ran-k3-lr1e-3")
    panel.start()
    wait_for(panel.run_finished)
    run_a = panel.run_dir
    panel.open_in_viewer()
    wait_for(w.results_shown)
    w.show_tab(panel)

    panel.epochs_spin.setValue(12)
    panel.milestones_edit.setText("8")
    panel.lr_spin.setValue(0.003)
    panel.run_edit.setText("ran-k3-lr3e-3")
    panel.start()
    panel.add_comparison(run_a)
    # Mid-run: after a few validations.
    probe = QTimer()
    probe.timeout.connect(lambda: loop.quit() if len(getattr(panel.series.get("val_rank1"), "xs", [])) >= 4
                          or not panel.is_running() else None)
    probe.start(100)
    loop.exec()
    probe.stop()
    QTimer.singleShot(400, loop.quit)
    loop.exec()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    w.grab().save(str(out / "training.png"))
    print(f"wrote {out / 'training.png'}")
    panel.stop()
    if panel.is_running():
        wait_for(panel.run_finished, 60_000)
    w.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
