"""The layering rules (docs/architecture.md): arrows only point down, only reidviewer/app
imports Qt, `import reidviewer` is cheap, and the app's state and view-model need no Qt."""
from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import reidviewer

QT_MODULES = ("PySide6", "pyqtgraph", "pytestqt")
PACKAGE = Path(reidviewer.__file__).parent

#: The layers, lowest first. A module may import its own layer and the layers before it.
#: ``base`` (errors, workspace, the vocabulary, the progress protocol, the config dict policy,
#: giving freed memory back, the measured-rates files, the lazy package ``__init__``) stands below all. ``model`` and ``annotations`` are one level: neither imports
#: the other.
LAYERS: list[tuple[str, ...]] = [
    ("base",),
    ("data",),
    ("model", "annotations"),
    ("engine",),
    ("figures",),
    ("app",),
    ("cli",),
]
BASE_MODULES = {"reidviewer", "reidviewer.errors", "reidviewer.workspace", "reidviewer.vocabulary",
                "reidviewer.progress", "reidviewer.configs", "reidviewer.memory", "reidviewer.rates"}
#: Top-level modules that belong to a layer by what they hold.
MODULE_LAYER = {"reidviewer.demo": "data", "reidviewer.__main__": "cli"}


def layer_of(module: str) -> str:
    if module in BASE_MODULES:
        return "base"
    if module in MODULE_LAYER:
        return MODULE_LAYER[module]
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "base"


def level_of(layer: str) -> int:
    for i, group in enumerate(LAYERS):
        if layer in group:
            return i
    raise AssertionError(f"module layer {layer!r} is in no layer of LAYERS")


def module_files() -> dict[str, Path]:
    files = {"reidviewer": PACKAGE / "__init__.py"}
    for info in pkgutil.walk_packages(reidviewer.__path__, prefix="reidviewer."):
        spec = info.module_finder.find_spec(info.name)  # type: ignore[union-attr]
        if spec is not None and spec.origin and spec.origin.endswith(".py"):
            files[info.name] = Path(spec.origin)
    return files


def imports_of(name: str, path: Path) -> set[str]:
    """Every ``reidviewer`` module a file imports, at the top or inside functions (lazy)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("reidviewer")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.startswith("reidviewer"):
                out.add(mod)
                # "from reidviewer.app import viewmodel" imports a submodule.
                out |= {f"{mod}.{a.name}" for a in node.names if f"{mod}.{a.name}" in FILES}
    return {m for m in out if m in FILES or any(f.startswith(m + ".") for f in FILES)}


FILES = module_files()
GRAPH = {name: imports_of(name, path) for name, path in FILES.items()}


def upward_arrows(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for src, targets in graph.items():
        if src == "reidviewer":
            continue  # the package's lazy re-exports (PEP 562 __getattr__) stand below all by design
        for dst in targets:
            if level_of(layer_of(dst)) > level_of(layer_of(src)):
                bad.append(f"{src} ({layer_of(src)}) imports {dst} ({layer_of(dst)})")
            elif layer_of(src) != layer_of(dst) and level_of(layer_of(src)) == level_of(layer_of(dst)):
                bad.append(f"{src} ({layer_of(src)}) imports {dst} ({layer_of(dst)}), a layer beside it")
    return sorted(bad)


def layer_cycles(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    """Pairs of top-level packages that import each other."""
    edges = {(layer_of(a), layer_of(b)) for a, ts in graph.items() for b in ts
             if layer_of(a) != layer_of(b) and a != "reidviewer"}
    return sorted((a, b) for a, b in edges if (b, a) in edges and a < b)


def test_every_module_belongs_to_a_layer():
    for name in FILES:
        level_of(layer_of(name))


def test_imports_only_point_down_the_layers_and_never_form_a_cycle():
    assert "reidviewer.engine.train" in GRAPH and GRAPH["reidviewer.cli.train"]
    assert upward_arrows(GRAPH) == []
    assert layer_cycles(GRAPH) == []


def test_the_layer_check_would_catch_an_upward_import():
    # The check itself: a data module importing the engine, a lazy import inside a function.
    code = "def f():\n    from reidviewer.engine.train import train\n    return train\n"
    fake = PACKAGE / "data" / "_layer_probe.py"
    tree = ast.parse(code)
    found = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    graph = dict(GRAPH)
    graph["reidviewer.data._layer_probe"] = found
    assert not fake.exists()
    assert upward_arrows(graph) == ["reidviewer.data._layer_probe (data) imports reidviewer.engine.train (engine)"]
    graph2 = dict(GRAPH)
    graph2["reidviewer.model._probe"] = {"reidviewer.annotations.store"}
    assert any("a layer beside it" in b for b in upward_arrows(graph2))


def test_non_app_modules_do_not_import_qt():
    modules = [m for m in FILES if not m.startswith("reidviewer.app") and m != "reidviewer.__main__"]
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


def test_the_app_state_and_view_model_need_no_qt():
    code = ("import sys, reidviewer.app.state, reidviewer.app.viewmodel\n"
            f"print(','.join(m for m in sys.modules if m.split('.')[0] in {QT_MODULES!r}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_importing_the_package_and_cli_does_not_import_torch():
    code = "import sys, reidviewer, reidviewer.cli, reidviewer.data.registry; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("name", sorted(FILES))
def test_no_module_refers_to_documents_outside_the_repository(name):
    text = FILES[name].read_text(encoding="utf-8")
    assert "SPEC.md" not in text and "DESIGN.md" not in text and "../shared" not in text
