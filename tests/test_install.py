"""Installed as Python users install it: a wheel in a clean virtual environment, without the
app extra. The shipped checkpoint comes with the wheel, and `reidviewer` without the GUI says
in one line what to install."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: Distributions of the app extra: hidden from the clean environment.
APP_ONLY = ("PySide6", "shiboken6", "pyqtgraph", "psygnal")


@pytest.fixture(scope="module")
def wheel_env(tmp_path_factory) -> Path:
    """A fresh venv with the project's wheel installed (no dependencies downloaded: the
    dependencies already installed here are made visible, the app extra's left out)."""
    base = tmp_path_factory.mktemp("wheel")
    dist = base / "dist"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation",
                            "-w", str(dist), "-q"], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-3000:]
    wheel = next(dist.glob("reidviewer-*.whl"))
    env_dir = base / "venv"
    venv.create(env_dir, with_pip=False)
    py = env_dir / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    # The dependencies (torch, numpy, …) of this environment, one link each, minus the app
    # extra and minus the editable reidviewer.
    here = Path(sysconfig.get_paths()["purelib"])
    shared = base / "deps"
    shared.mkdir()
    for entry in here.iterdir():
        name = entry.name
        if name.startswith(APP_ONLY) or "reidviewer" in name.lower() or name.endswith(".pth"):
            continue
        (shared / name).symlink_to(entry)
    (site / "deps.pth").write_text(str(shared) + "\n")
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q",
                              str(wheel)], capture_output=True, text=True, timeout=600)
    if install.returncode != 0 and "no such option: --python" in install.stderr:
        pytest.skip("pip too old for --python")
    assert install.returncode == 0, install.stderr[-3000:]
    return env_dir


def _run(env_dir: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "REIDVIEWER_CHECKPOINT")}
    env["DISPLAY"] = ""
    env.pop("QT_QPA_PLATFORM", None)
    return subprocess.run([str(env_dir / "bin" / "reidviewer"), *args], capture_output=True, text=True,
                          timeout=600, cwd=cwd, env=env)


@pytest.mark.slow
def test_a_wheel_install_evaluates_with_the_shipped_checkpoint(wheel_env, synth_root, tmp_path):
    # Run from elsewhere than the clone, so nothing is found through the working directory.
    out = _run(wheel_env, "evaluate", "--root", str(synth_root), "--workspace", str(tmp_path / "ws"), cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "synthwalk-ran-k3" in out.stdout and "R1" in out.stdout
    where = subprocess.run([str(wheel_env / "bin" / "python"), "-c",
                            "import reidviewer, reidviewer.demo as d; print(reidviewer.__file__); "
                            "print(d.default_checkpoint())"], capture_output=True, text=True, cwd=tmp_path)
    assert str(REPO) not in where.stdout  # the wheel's copy, not the clone
    assert "site-packages" in where.stdout


@pytest.mark.slow
def test_without_the_app_extra_the_viewer_says_what_to_install(wheel_env, tmp_path):
    out = _run(wheel_env, cwd=tmp_path)
    assert out.returncode == 2
    assert 'pip install "reidviewer[app]"' in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1
    # The headless commands still work.
    assert _run(wheel_env, "--help", cwd=tmp_path).returncode == 0
    shutil.rmtree(tmp_path, ignore_errors=True)
