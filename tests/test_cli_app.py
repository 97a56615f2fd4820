"""The command line around the app: no display gives a clear message, not a Qt abort."""
from __future__ import annotations

import os
import subprocess
import sys


def _env_without_display(tmp_path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env["REIDVIEWER_WORKSPACE"] = str(tmp_path / "ws")
    return env


def test_reidviewer_without_a_display_says_so(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "reidviewer"], capture_output=True, text=True,
                          env=_env_without_display(tmp_path), timeout=120)
    assert proc.returncode == 2
    assert "no display" in proc.stderr
    assert "xvfb-run" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_open_without_a_display_says_so(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "reidviewer", "open", "--root", str(tmp_path)],
                          capture_output=True, text=True, env=_env_without_display(tmp_path), timeout=120)
    assert proc.returncode == 2
    assert "no display" in proc.stderr


def test_help_lists_every_subcommand():
    proc = subprocess.run([sys.executable, "-m", "reidviewer", "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    for cmd in ("info", "synth", "open", "train", "evaluate"):
        assert cmd in proc.stdout


def test_evaluate_with_a_missing_checkpoint_names_it(synth_root, tmp_path, capsys):
    from reidviewer.cli import main

    rc = main(["evaluate", "--root", str(synth_root), "--checkpoint", str(tmp_path / "nope.safetensors"),
               "--workspace", str(tmp_path / "ws")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "nope.safetensors" in err and "not found" in err
