"""Shared fixtures: a tiny SynthWalk set, a real (untrained or briefly trained) checkpoint, a workspace."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory) -> Path:
    """A 6-identity SynthWalk set (iLIDS-VID layout + occlusion sidecar)."""
    from reidviewer.data.synthwalk import SynthConfig, generate

    out = tmp_path_factory.mktemp("synth") / "synthwalk"
    generate(out, SynthConfig(ids=6, seed=3, min_len=12, max_len=24), workers=1)
    return out


@pytest.fixture(scope="session")
def random_checkpoint(tmp_path_factory) -> Path:
    """A real RAN (K = 3) checkpoint with seeded random weights."""
    import torch

    from reidviewer.model.checkpoint import save_checkpoint
    from reidviewer.model.config import ModelConfig
    from reidviewer.model.network import build_model

    torch.manual_seed(0)
    config = ModelConfig(head="ran", iterations=3, num_classes=3)
    model = build_model(config)
    path = tmp_path_factory.mktemp("ckpt") / "random-ran.safetensors"
    save_checkpoint(path, model, config, {"note": "random weights for tests"})
    return path


@pytest.fixture
def workspace(tmp_path):
    from reidviewer.workspace import Workspace

    return Workspace(tmp_path / "workspace")


@pytest.fixture(scope="session")
def shared_workspace(tmp_path_factory):
    """A workspace shared by a test session (its caches make later tests fast)."""
    from reidviewer.workspace import Workspace

    return Workspace(tmp_path_factory.mktemp("ws"))


@pytest.fixture
def open_viewer(qtbot, synth_root, random_checkpoint):
    """Factory (napari style): ``open_viewer(workspace)`` shows a real main window on the tiny
    SynthWalk set and returns it once its results are on screen."""

    def make(workspace, root=None, checkpoint=None):
        from reidviewer.app.main_window import MainWindow
        from reidviewer.app.viewmodel import OpenRequest

        w = MainWindow(workspace, OpenRequest(root=root or synth_root, name="synthwalk",
                                              checkpoint=checkpoint or random_checkpoint))
        qtbot.addWidget(w)
        with qtbot.waitSignal(w.results_shown, timeout=120_000):
            w.show()
        qtbot.waitExposed(w)
        w.activateWindow()
        w.setFocus()
        return w

    return make
