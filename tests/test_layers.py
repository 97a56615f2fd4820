"""The layering rule of DESIGN.md: only reidviewer/app imports Qt; `import reidviewer` is cheap."""
from __future__ import annotations

import pkgutil
import subprocess
import sys

import reidviewer

QT_MODULES = ("PySide6", "pyqtgraph", "pytestqt")


def _non_app_modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(reidviewer.__path__, prefix="reidviewer."):
        if info.name.startswith("reidviewer.app") or info.name == "reidviewer.__main__":
            continue
        names.append(info.name)
    return names


def test_non_app_modules_do_not_import_qt():
    modules = _non_app_modules()
    assert "reidviewer.data.registry" in modules
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}:\n"
        "    importlib.import_module(m)\n"
        f"bad = [m for m in sys.modules if m.split('.')[0] in {QT_MODULES!r}]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"Qt imported outside reidviewer.app: {out.stdout}"


def test_importing_the_package_and_cli_does_not_import_torch():
    code = "import sys, reidviewer, reidviewer.cli, reidviewer.data.registry; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

