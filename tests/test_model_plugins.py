"""Model plugins (``--model NAME[:ARG]``): the registry, entry points, the pixels baseline, CLI and viewer."""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

import reidviewer
from reidviewer.cli import main
from reidviewer.data.registry import open_dataset
from reidviewer.engine.evaluate import compute_results
from reidviewer.engine.models import model_ref
from reidviewer.model import plugins
from reidviewer.model.plugins import ModelPluginError, available_models, load_model, register_model, unregister_model

DOC = Path(__file__).resolve().parents[1] / "docs" / "inspect-your-model.md"


class Bright:
    """A toy model: mean colour per tracklet, one attention row (brighter frames weigh more)."""

    def __init__(self, arg=None) -> None:
        self.scale = float(arg or 1.0)
        self.cache_key = f"bright-{self.scale}"
        self.calls = 0

    def embed(self, frames):
        self.calls += 1
        per_frame = frames.astype(np.float32).mean(axis=(1, 2)) / 255.0
        w = per_frame.sum(axis=1)
        return per_frame.mean(axis=0) * self.scale, (w / w.sum())[None, :]


@pytest.fixture
def bright():
    made = []

    def factory(arg):
        made.append(Bright(arg))
        return made[-1]

    register_model("bright", factory)
    yield made
    unregister_model("bright")


def test_register_and_load(bright):
    name, arg, model = load_model("bright:2")
    assert (name, arg) == ("bright", "2") and model.scale == 2.0
    assert available_models()["bright"] == "registered" and available_models()["pixels"] == "built-in"
    assert reidviewer.register_model is register_model
    with pytest.raises(reidviewer.errors.UsageError, match="already registered"):
        register_model("bright", lambda a: Bright(a))
    with pytest.raises(reidviewer.errors.UsageError, match="reserved"):
        register_model("imported", lambda a: Bright(a))
    with pytest.raises(reidviewer.errors.UsageError, match="no ':'"):
        register_model("a:b", lambda a: Bright(a))
    with pytest.raises(ModelPluginError, match="no such model.*available: .*bright.*pixels"):
        load_model("nosuch")


def test_a_registered_plugin_evaluates_via_the_cli(bright, synth_root, workspace, tmp_path, capsys):
    out = tmp_path / "m.json"
    assert main(["evaluate", "--root", str(synth_root), "--workspace", str(workspace.root),
                 "--model", "bright", "--json", str(out)]) == 0
    summary = json.loads(out.read_text())
    assert summary["checkpoint"] == "model:bright" and 0 <= summary["mAP"] <= 1
    ds = open_dataset(synth_root, "synthwalk", None, workspace)
    r = compute_results(ds, 0, model_ref("bright"), workspace)
    assert r.metrics()["mAP"] == summary["mAP"]
    assert r.attention_iterations == 1 and r.settings["checkpoint"] == "bright"
    # The attention is the model's own, over the frames it was given.
    t = ds.tracklets[int(r.query_indices[0])]
    assert r.attention(t.index).shape == (1, min(len(t), 128))
    # Cached in the workspace under the model's cache key: a second call runs no model.
    calls = sum(m.calls for m in bright)
    compute_results(ds, 0, model_ref("bright"), workspace)
    assert sum(m.calls for m in bright) == calls
    # Another argument is another model, with its own results file.
    compute_results(ds, 0, model_ref("bright:3"), workspace)
    assert len(list(workspace.results_dir.glob("*.npz"))) == 2


def test_cli_errors_of_plugins_are_one_line(bright, synth_root, workspace, capsys, random_checkpoint):
    def run(*extra):
        capsys.readouterr()
        rc = main(["evaluate", "--root", str(synth_root), "--workspace", str(workspace.root), *extra])
        return rc, capsys.readouterr().err.strip()

    rc, err = run("--model", "nosuch")
    assert rc == 2 and "model 'nosuch': no such model" in err and "\n" not in err
    rc, err = run("--model", "bright", "--checkpoint", str(random_checkpoint))
    assert rc == 2 and "not both" in err

    class Broken:
        cache_key = "broken"

        def embed(self, frames):
            raise RuntimeError("CUDA out of memory")

    class WrongShape:
        cache_key = "wrong"

        def embed(self, frames):
            return np.zeros((2, 2)), None

    register_model("broken", lambda a: Broken())
    register_model("wrong", lambda a: WrongShape())
    register_model("nokey", lambda a: object())
    try:
        rc, err = run("--model", "broken")
        assert rc == 2 and re.search(r"model 'broken': embed failed on tracklet\(s\) .*CUDA out of memory", err)
        rc, err = run("--model", "wrong")
        assert rc == 2 and "expected a non-empty 1-D float array" in err
        rc, err = run("--model", "nokey")
        assert rc == 2 and "without an embed(frames) method" in err
        rc, err = run("--model", "pixels:many")
        assert rc == 2 and "pixels takes the number of stripes" in err
    finally:
        for n in ("broken", "wrong", "nokey"):
            unregister_model(n)


def test_an_entry_point_in_an_installed_distribution(tmp_path, monkeypatch):
    """A package that declares ``[project.entry-points."reidviewer.models"]`` is found without registering."""
    site = tmp_path / "site"
    (site / "epplug-0.1.dist-info").mkdir(parents=True)
    (site / "epplug-0.1.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: epplug\nVersion: 0.1\n")
    (site / "epplug-0.1.dist-info" / "entry_points.txt").write_text(
        "[reidviewer.models]\nepmodel = epplug_models:make\nepbroken = epplug_missing:make\n")
    (site / "epplug_models.py").write_text(
        "import numpy as np\n"
        "class M:\n"
        "    def __init__(self, arg):\n        self.cache_key = 'ep-' + str(arg)\n"
        "    def embed_batch(self, clips):\n"
        "        return [(c.reshape(len(c), -1, 3).mean(axis=(0, 1)), None) for c in clips]\n"
        "    def embed(self, frames):\n        return self.embed_batch([frames])[0]\n"
        "def make(arg=None):\n    return M(arg)\n")
    monkeypatch.syspath_prepend(str(site))
    assert available_models()["epmodel"] == "entry point epplug_models:make"
    name, arg, model = load_model("epmodel:x")
    assert model.cache_key == "ep-x"
    with pytest.raises(ModelPluginError, match=r"entry point 'epplug_missing:make' \(reidviewer.models\) cannot be "
                                              r"loaded: ModuleNotFoundError"):
        load_model("epbroken")


def test_entry_point_plugin_batched_evaluation(tmp_path, monkeypatch, synth_root, workspace):
    test_an_entry_point_in_an_installed_distribution(tmp_path, monkeypatch)
    ds = open_dataset(synth_root, "synthwalk", None, workspace)
    r = compute_results(ds, 0, model_ref("epmodel"), workspace)
    assert r.query_features.shape[1] == 3 and r.attention_iterations == 0


# ---------------------------------------------------------------------- the pixels baseline


def test_pixels_runs_on_the_demo_fixture(synth_root, workspace, tmp_path, capsys):
    out = tmp_path / "p.json"
    assert main(["evaluate", "--root", str(synth_root), "--workspace", str(workspace.root),
                 "--model", "pixels", "--json", str(out)]) == 0
    m = json.loads(out.read_text())
    assert 0 < m["rank1"] <= 1 and m["checkpoint"] == "model:pixels"
    model = plugins.load_model("pixels")[2]
    frames = np.random.default_rng(0).integers(0, 256, size=(5, 40, 20, 3), dtype=np.uint8)
    f, w = model.embed(frames)
    assert w is None and f.shape == (model.dims,) and abs(np.linalg.norm(f) - 1) < 1e-5


@pytest.fixture(scope="module")
def synth20(tmp_path_factory):
    from reidviewer.data.synthwalk import SynthConfig, generate

    root = tmp_path_factory.mktemp("synth20") / "s"
    generate(root, SynthConfig(ids=20, seed=3, min_len=8, max_len=16, height=64, width=32, supersample=1), workers=1)
    return root


def test_pixels_beats_chance_on_synthwalk(synth20, workspace):
    from reidviewer.engine.results import build_results

    ds = open_dataset(synth20, "synthwalk", None, workspace)
    rng = np.random.default_rng(0)
    pixels, chance = [], []
    for s in range(len(ds.splits)):
        r = compute_results(ds, s, model_ref("pixels"), workspace)
        pixels.append(r.mAP)
        for _ in range(5):  # random features: what chance gives on the same split
            q = rng.normal(size=r.query_features.shape)
            g = rng.normal(size=r.gallery_features.shape)
            chance.append(build_results(q, g, r.query_pids, r.gallery_pids, r.query_camids, r.gallery_camids).mAP)
    assert np.mean(pixels) > np.mean(chance) + 0.1, (np.mean(pixels), np.mean(chance))


# ---------------------------------------------------------------------- the docs' plugin example


def test_the_docs_plugin_example(synth_root, workspace):
    code = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)[1]
    ns: dict = {}
    exec(compile(code, str(DOC), "exec"), ns)  # noqa: S102 - our own documentation
    register_model("meancolour", ns["make_model"])
    try:
        ds = open_dataset(synth_root, "synthwalk", None, workspace)
        r = compute_results(ds, 0, model_ref("meancolour"), workspace)
        assert r.query_features.shape[1] == 3 and r.attention_iterations == 1
    finally:
        unregister_model("meancolour")
    toml = re.findall(r"```toml\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)[0]
    assert '[project.entry-points."reidviewer.models"]' in toml and plugins.ENTRY_POINT_GROUP == "reidviewer.models"


# ---------------------------------------------------------------------- the viewer


def test_open_model_argument_becomes_the_request():
    from argparse import Namespace

    from reidviewer.app.application import request_from_args

    req = request_from_args(Namespace(root="/data", dataset="auto", protocol=None, checkpoint=None,
                                      model="pixels:4", split=0))
    assert str(req.checkpoint) == "model:pixels:4"
    from reidviewer.app.viewmodel import OpenRequest

    assert OpenRequest.from_text(req.to_text()) == req


@pytest.mark.gui
def test_a_plugin_opens_in_the_viewer_with_its_attention_row(bright, open_viewer, workspace):
    w = open_viewer(workspace, checkpoint=model_ref("bright"))
    s = w.session
    assert s.results.settings["checkpoint"] == "bright" and s.has_attention and s.num_iterations == 1
    assert "bright" in w.windowTitle()
    assert w.probe_plot.iterations == 1 and w.gallery_plot.iterations == 1
    t = s.query_tracklet(w.current_query)
    np.testing.assert_allclose(w.probe_plot.attention, s.results.attention(t.index))


@pytest.mark.gui
def test_an_imported_model_opens_in_the_viewer(open_viewer, workspace, synth_root, tmp_path, random_checkpoint):
    ds = open_dataset(synth_root, "synthwalk", None, workspace)
    native = compute_results(ds, 0, random_checkpoint, workspace)
    order = list(native.query_indices) + list(native.gallery_indices)
    traces = [native.attention(int(i))[-1:] for i in order]
    npz = tmp_path / "ran.npz"
    np.savez(npz, qf=native.query_features, gf=native.gallery_features,
             weights=np.concatenate(traces, axis=1)[0],
             weights_index=np.concatenate([[0], np.cumsum([t.shape[1] for t in traces])]))
    assert main(["import", "--root", str(synth_root), "--workspace", str(workspace.root), "--features", str(npz),
                 "--name", "ran-imported"]) == 0
    w = open_viewer(workspace, checkpoint=model_ref("imported:ran-imported"))
    s = w.session
    assert s.results.metrics()["mAP"] == native.metrics()["mAP"]
    assert w.probe_plot.iterations == 1
    assert w.metrics.values["rank1"].text() == f"{100 * native.metrics()['rank1']:.1f}%"


@pytest.mark.gui
def test_the_open_model_menu_opens_pixels_on_the_shown_dataset(open_viewer, workspace, qtbot, monkeypatch):
    from PySide6.QtWidgets import QInputDialog

    w = open_viewer(workspace)
    offered = []

    def fake_get_item(parent, title, label, items, current, editable):
        offered.extend(items)
        return "pixels", True

    monkeypatch.setattr(QInputDialog, "getItem", staticmethod(fake_get_item))
    with qtbot.waitSignal(w.results_shown, timeout=120_000):
        w._ask_open_model()
    assert "pixels" in offered and "imported:NAME" in offered
    assert w.session.results.settings["checkpoint"] == "pixels" and not w.session.has_attention
    assert w.probe_plot.iterations == 0
