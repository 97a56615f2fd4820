"""Checkpoints: safetensors + JSON round trip, and refusal of anything unsafe or ill-fitting."""
from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest
import torch

import reidviewer
from reidviewer.errors import CheckpointError
from reidviewer.model import ModelConfig, build_model, load_checkpoint, read_checkpoint_meta, save_checkpoint


def make_model(**kw) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(ModelConfig(num_classes=5, **kw))


META = {
    "training": {"lr": 1e-3, "epochs": 2},
    "dataset": {"name": "synthwalk", "split": 0},
    "metrics": {"rank1": 0.5},
}


def test_round_trip_is_bit_exact(tmp_path: Path):
    model = make_model(head="ran", share_refinement=False, attention_bias=True, similarity="B")
    weights = save_checkpoint(tmp_path / "run" / "best", model, model.config, META)
    assert weights == tmp_path / "run" / "best.safetensors"
    assert (tmp_path / "run" / "best.json").is_file()
    assert not [p for p in (tmp_path / "run").iterdir() if p.name.startswith(".")]  # no temp files left

    loaded, config, meta = load_checkpoint(weights)
    assert config == model.config
    assert not loaded.training
    a, b = model.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert meta["metrics"] == {"rank1": 0.5} and meta["dataset"]["name"] == "synthwalk"
    assert meta["reidviewer_version"] == reidviewer.__version__
    assert meta["tensors"]["cnn.convs.0.weight"]["shape"] == [16, 5, 5, 5]
    # the JSON path and the bare stem load the same checkpoint
    assert load_checkpoint(tmp_path / "run" / "best.json")[1] == config
    assert read_checkpoint_meta(tmp_path / "run" / "best")["architecture"]["head"] == "ran"


def test_loaded_model_gives_the_same_features(tmp_path: Path):
    model = make_model(head="rnn").eval()
    save_checkpoint(tmp_path / "m.safetensors", model, meta={})
    loaded = load_checkpoint(tmp_path / "m.safetensors")[0]
    x = torch.randn(2, 3, 5, 56, 40)
    with torch.no_grad():
        assert torch.equal(model(x).feature, loaded(x).feature)


def test_planted_pickle_is_refused_without_running_it(tmp_path: Path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    save_checkpoint(tmp_path / "m", make_model(), meta={})
    (tmp_path / "m.safetensors").write_bytes(pickle.dumps(Exploit()))
    with pytest.raises(CheckpointError, match=r"m\.safetensors.*pickle.*refusing"):
        load_checkpoint(tmp_path / "m.safetensors")
    assert not marker.exists()


def test_torch_save_zip_is_refused_without_running_it(tmp_path: Path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    save_checkpoint(tmp_path / "m", make_model(), meta={})
    torch.save({"x": Exploit()}, tmp_path / "m.safetensors")
    with pytest.raises(CheckpointError, match=r"m\.safetensors.*torch\.save"):
        load_checkpoint(tmp_path / "m.safetensors")
    assert not marker.exists()


def test_garbage_and_truncated_weights_are_refused(tmp_path: Path):
    save_checkpoint(tmp_path / "m", make_model(), meta={})
    good = (tmp_path / "m.safetensors").read_bytes()
    (tmp_path / "m.safetensors").write_bytes(good[: len(good) // 2])
    # the JSON's sha256 no longer matches, or the header points past the end
    with pytest.raises(CheckpointError, match=r"m\.safetensors"):
        load_checkpoint(tmp_path / "m")
    (tmp_path / "m.safetensors").write_bytes(b"hello world, not tensors")
    with pytest.raises(CheckpointError, match="not a safetensors file"):
        load_checkpoint(tmp_path / "m")


def test_missing_json_or_weights(tmp_path: Path):
    save_checkpoint(tmp_path / "m", make_model(), meta={})
    (tmp_path / "m.json").unlink()
    with pytest.raises(CheckpointError, match=r"m\.json: checkpoint metadata file is missing"):
        load_checkpoint(tmp_path / "m.safetensors")
    with pytest.raises(CheckpointError, match=r"nope\.safetensors: checkpoint weights file not found"):
        load_checkpoint(tmp_path / "nope.safetensors")


def _edit_json(path: Path, **changes) -> None:
    doc = json.loads(path.read_text())
    for k, v in changes.items():
        if k == "architecture":
            doc["architecture"].update(v)
        else:
            doc[k] = v
    path.write_text(json.dumps(doc))


def test_unknown_architecture_is_refused(tmp_path: Path):
    save_checkpoint(tmp_path / "m", make_model(), meta={})
    _edit_json(tmp_path / "m.json", architecture={"head": "transformer"})
    with pytest.raises(CheckpointError, match="unknown architecture.*'transformer'"):
        load_checkpoint(tmp_path / "m")
    _edit_json(tmp_path / "m.json", architecture={"head": "ran", "depth": 50})
    with pytest.raises(CheckpointError, match="invalid architecture.*depth"):
        load_checkpoint(tmp_path / "m")


def test_wrong_shapes_and_missing_tensors_are_named(tmp_path: Path):
    # weights of a 1024-hidden model, metadata claiming 512 hidden and no refinement
    save_checkpoint(tmp_path / "m", make_model(), meta={})
    _edit_json(tmp_path / "m.json", architecture={"hidden_dim": 512, "iterations": 0, "num_classes": 5})
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(tmp_path / "m")
    msg = str(err.value)
    assert "m.safetensors" in msg
    assert "head.embed.fc1.weight: expected [512, 2560] float32, found [1024, 2560] float32" in msg
    assert "unexpected tensors: head.refine.weight [1, 256]" in msg


def test_missing_tensor_is_named(tmp_path: Path):
    from safetensors.torch import load_file, save_file

    save_checkpoint(tmp_path / "m", make_model(), meta={})
    tensors = load_file(str(tmp_path / "m.safetensors"))
    del tensors["classifier.weight"]
    save_file(tensors, str(tmp_path / "m.safetensors"))
    _edit_json(tmp_path / "m.json", weights_sha256=None)
    with pytest.raises(CheckpointError, match=r"missing tensors: classifier\.weight \[5, 128\]"):
        load_checkpoint(tmp_path / "m")


def test_non_finite_weights_are_refused(tmp_path: Path):
    model = make_model()
    with torch.no_grad():
        model.head.attention.weight[0, 0] = float("nan")
    save_checkpoint(tmp_path / "m", model, meta={})
    with pytest.raises(CheckpointError, match=r"NaN/Inf.*head\.attention\.weight"):
        load_checkpoint(tmp_path / "m")


def test_meta_must_not_use_reserved_keys(tmp_path: Path):
    with pytest.raises(ValueError, match="reserved"):
        save_checkpoint(tmp_path / "m", make_model(), meta={"architecture": {}})


def test_a_file_that_is_not_a_checkpoint_is_named(tmp_path: Path):
    from reidviewer.errors import CheckpointError
    from reidviewer.model.checkpoint import load_checkpoint

    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    with pytest.raises(CheckpointError, match="notes.txt: not a checkpoint"):
        load_checkpoint(notes)
