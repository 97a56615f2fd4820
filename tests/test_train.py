"""Training by the RCN/RAN protocol: it learns, it stops and resumes exactly, it runs under torchrun."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from reidviewer.data.registry import open_dataset
from reidviewer.engine.sampler import PairSampler
from reidviewer.engine.train import TrainConfig, TrainingError, train


def tiny_config(root, **kw) -> TrainConfig:
    base = dict(recipe="paper", root=str(root), epochs=2, pairs_per_step=2, eval_every=0, checkpoint_every=0,
                milestones=(1,), seed=5, lr=0.01)
    base.update(kw)
    return TrainConfig(**base)


def fixed_batch_loss(checkpoint: Path, dataset, workspace) -> float:
    """Eval-mode loss of eq. 6 on a fixed set of pairs (no dropout, centre crops)."""
    from reidviewer.data.cache import FrameCache
    from reidviewer.data.preprocess import PreprocessConfig
    from reidviewer.data.transforms import test_transform
    from reidviewer.model.checkpoint import load_checkpoint
    from reidviewer.model.losses import pair_loss

    model, _, _ = load_checkpoint(checkpoint)
    split = dataset.split(0)
    labels = split.train_labels(dataset.tracklets)
    cache = FrameCache(workspace, dataset, PreprocessConfig())
    clips = [torch.from_numpy(np.array(test_transform(cache.network_input(int(i), slice(0, 12))), dtype=np.float32))
             for i in split.train]
    x = torch.stack(clips)
    with torch.no_grad():
        f = model(x).feature
        # every (a, b) pair of training tracklets
        a, b = np.triu_indices(len(clips), 1)
        la, lb = torch.tensor(labels[a]), torch.tensor(labels[b])
        return float(pair_loss(model, f[a], f[b], la, lb).total)


def test_pair_sampler_alternates_positive_and_negative_pairs():
    idx = np.arange(8)
    labels = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    cams = np.array([0, 1] * 4)
    s = PairSampler(idx, labels, cams)
    rng = np.random.default_rng(0)
    order = s.epoch_order(rng)
    pairs = [s.pair(order, i, rng) for i in range(s.pairs_per_epoch)]
    assert s.pairs_per_epoch == 8
    assert [p.same for p in pairs] == [True, False] * 4
    for p in pairs[::2]:
        assert cams[p.a] != cams[p.b] and labels[p.a] == labels[p.b]  # positives cross cameras
    for p in pairs[1::2]:
        assert p.label_a != p.label_b
    assert sorted(p.label_a for p in pairs[::2]) == [0, 1, 2, 3]  # each person once per epoch


def test_a_tiny_training_run_lowers_the_loss_and_writes_a_run_folder(synth_root, shared_workspace):
    dataset = open_dataset(synth_root, workspace=shared_workspace)
    untrained = train(tiny_config(synth_root, epochs=0, run_name="t-untrained"), shared_workspace, dataset=dataset)
    before = fixed_batch_loss(untrained.checkpoint, dataset, shared_workspace)
    reports = []
    out = train(tiny_config(synth_root, epochs=8, lr=0.02, run_name="t-learn", eval_every=4),
                shared_workspace, progress=reports.append, dataset=dataset)
    after = fixed_batch_loss(out.checkpoint, dataset, shared_workspace)
    assert after < before
    assert out.epochs_done == 8 and not out.stopped
    run = out.run_dir
    assert (run / "config.json").is_file() and (run / "last.safetensors").is_file()
    log = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("loss_total" in r for r in log)
    assert any("val_rank1" in r for r in log)
    assert reports and reports[-1].message == "finished"
    assert set(reports[0].losses) >= {"total", "hinge", "id1", "id2", "sim"} or reports[0].losses == {}


def test_stop_and_resume_gives_the_same_weights_as_an_uninterrupted_run(synth_root, shared_workspace):
    from safetensors.torch import load_file

    dataset = open_dataset(synth_root, workspace=shared_workspace)
    full = train(tiny_config(synth_root, run_name="t-full"), shared_workspace, dataset=dataset)
    polls = {"n": 0}

    def stop_after_two_steps() -> bool:
        polls["n"] += 1
        return polls["n"] > 2

    part = train(tiny_config(synth_root, run_name="t-part"), shared_workspace, should_stop=stop_after_two_steps,
                 dataset=dataset)
    assert part.stopped and part.global_step == 2
    assert (part.run_dir / "state.json").is_file()
    resumed = train(tiny_config(synth_root, run_name="t-part"), shared_workspace, resume=True, dataset=dataset)
    assert not resumed.stopped and resumed.global_step == full.global_step
    a, b = load_file(str(full.checkpoint)), load_file(str(resumed.checkpoint))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_attention_lr_scale_sets_how_fast_theta_learns(synth_root, shared_workspace):
    from safetensors.torch import load_file

    dataset = open_dataset(synth_root, workspace=shared_workspace)
    start = load_file(str(train(tiny_config(synth_root, epochs=0, run_name="t-a0"), shared_workspace,
                                dataset=dataset).checkpoint))

    def moved(scale: float, name: str) -> dict[str, float]:
        out = train(tiny_config(synth_root, epochs=1, attention_lr_scale=scale, run_name=name), shared_workspace,
                    dataset=dataset)
        end = load_file(str(out.checkpoint))
        return {k: float((end[k] - start[k]).abs().max()) for k in ("head.attention.weight", "head.refine.weight",
                                                                    "head.embed.fc2.weight")}

    frozen, normal, fast = moved(0.0, "t-a-frozen"), moved(1.0, "t-a-normal"), moved(20.0, "t-a-fast")
    assert frozen["head.attention.weight"] == 0 and frozen["head.refine.weight"] == 0
    assert frozen["head.embed.fc2.weight"] > 0  # the rest of the network still trains
    # θ′ is what moves: with K ≥ 1, α⁽⁰⁾ (θ) reaches the output only through the per-tracklet
    # offset θ′_fᵀf⁽⁰⁾, so its gradient is ~1e-9 here whatever the scale.
    assert fast["head.refine.weight"] > 10 * normal["head.refine.weight"] > 0


def test_a_run_can_start_from_a_trained_mean_pooling_trunk(synth_root, shared_workspace, tmp_path):
    from safetensors.torch import load_file

    dataset = open_dataset(synth_root, workspace=shared_workspace)
    trunk = train(tiny_config(synth_root, head="mean", iterations=0, epochs=1, run_name="t-trunk"), shared_workspace,
                  dataset=dataset).checkpoint
    ran = train(tiny_config(synth_root, epochs=0, init_from=str(trunk), run_name="t-from-trunk"), shared_workspace,
                dataset=dataset).checkpoint
    a, b = load_file(str(trunk)), load_file(str(ran))
    assert all(torch.equal(a[k], b[k]) for k in a)  # CNN, frame FCs, classifier, similarity head
    assert {"head.attention.weight", "head.refine.weight"} <= set(b) - set(a)

    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(TrainingError, match="bad.safetensors"):
        train(tiny_config(synth_root, epochs=0, init_from=str(bad), run_name="t-bad-init"), shared_workspace,
              dataset=dataset)
    assert not (shared_workspace.runs_dir / "t-bad-init").exists()  # a failed start leaves no run folder


def test_cli_resume_continues_with_the_runs_own_settings_and_can_train_longer(synth_root, tmp_path, capsys):
    from reidviewer.cli import main

    ws = tmp_path / "ws"
    common = ["--root", str(synth_root), "--workspace", str(ws), "--out", "cli-resume"]
    assert main(["train", *common, "--recipe", "paper", "--epochs", "1", "--lr", "0.02", "--pairs-per-step", "3",
                 "--eval-every", "0"]) == 0
    run = ws / "runs" / "cli-resume"
    # Resuming with no settings must not fall back to the command line's defaults (lr 1e-3,
    # 1 pair per step, 1000 epochs): the run's own settings continue, and --epochs extends it.
    assert main(["train", *common, "--resume", "--epochs", "2"]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["lr"] == 0.02 and config["pairs_per_step"] == 3 and config["epochs"] == 2
    state = json.loads((run / "state.json").read_text())
    assert state["position"]["epoch"] == 2
    assert main(["train", *common, "--resume", "--lr", "0.5"]) == 0  # already done: nothing more to train
    assert "--lr ignored with --resume" in capsys.readouterr().err
    assert json.loads((run / "state.json").read_text())["position"]["epoch"] == 2
    assert json.loads((run / "config.json").read_text())["lr"] == 0.02
    assert main(["train", *common, "--resume", "--epochs", "1"]) == 2  # would undo a finished epoch
    assert "already done 2 epochs" in capsys.readouterr().err


def test_invalid_loss_settings_are_refused_with_a_message(synth_root, shared_workspace):
    with pytest.raises(TrainingError, match="invalid loss settings"):
        train(tiny_config(synth_root, epochs=0, loss={"hinge": "cubic"}, run_name="t-bad-loss"), shared_workspace)
    assert not (shared_workspace.runs_dir / "t-bad-loss").exists()
    from reidviewer.engine.recipes import SettingsError

    with pytest.raises(SettingsError, match="attention_lr_scale"):  # refused where it is set
        tiny_config(synth_root, epochs=0, attention_lr_scale=-1.0, run_name="t-bad-scale")


def test_cli_refuses_pooling_for_a_head_without_attention_pooling(synth_root, tmp_path, capsys):
    from reidviewer.cli import main

    rc = main(["train", "--root", str(synth_root), "--head", "mean", "--pooling", "l1", "--epochs", "1",
               "--workspace", str(tmp_path / "ws")])
    assert rc == 2 and "--pooling is a setting of the RAN head" in capsys.readouterr().err


def test_resume_without_a_run_says_so(synth_root, shared_workspace):
    with pytest.raises(TrainingError, match="nothing to resume"):
        train(tiny_config(synth_root, run_name="t-none"), shared_workspace, resume=True)


def test_an_unreadable_frame_stops_training_with_a_message_naming_it(synth_root, tmp_path):
    from reidviewer.errors import FrameError
    from reidviewer.workspace import Workspace

    root = tmp_path / "synth"
    shutil.copytree(synth_root, root)
    bad = sorted((root / "i-LIDS-VID" / "sequences" / "cam1").rglob("*.png"))[3]
    bad.write_bytes(b"not a png at all")
    with pytest.raises(FrameError) as err:
        train(tiny_config(root, run_name="t-bad"), Workspace(tmp_path / "ws"))
    assert bad.name in str(err.value)


@pytest.mark.slow
def test_two_processes_under_torchrun_end_with_identical_weights(synth_root, tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        pytest.skip("torchrun not installed beside this Python")
    ws = tmp_path / "ws"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "reidviewer", "train",
           "--root", str(synth_root), "--recipe", "paper", "--epochs", "1", "--pairs-per-step", "1", "--eval-every", "0",
           "--device", "cpu", "--out", "ddp", "--workspace", str(ws)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = [json.loads(line) for line in (ws / "runs" / "ddp" / "metrics.jsonl").read_text().splitlines()]
    sums = [r["ddp_weight_checksums"] for r in log if "ddp_weight_checksums" in r]
    assert sums and len(sums[-1]) == 2 and sums[-1][0] == sums[-1][1]
    assert (ws / "runs" / "ddp" / "last.safetensors").is_file()
    # Each rank's crop stream is saved, so resuming under torchrun continues every one of them.
    rngs = json.loads((ws / "runs" / "ddp" / "state.json").read_text())["rngs"]
    assert {"pairs", "clips0", "clips1"} <= set(rngs) and rngs["clips0"] != rngs["clips1"]
    proc = subprocess.run([*cmd, "--resume", "--epochs", "2"], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((ws / "runs" / "ddp" / "state.json").read_text())["position"]["epoch"] == 2


def test_cli_train_then_evaluate_reports_the_trained_checkpoint(synth_root, tmp_path, capsys):
    from reidviewer.cli import main

    ws = tmp_path / "ws"
    rc = main(["train", "--root", str(synth_root), "--recipe", "paper", "--epochs", "1", "--pairs-per-step", "2",
               "--eval-every", "0", "--pooling", "l1", "--attention-lr-scale", "10", "--out", "cli-run",
               "--workspace", str(ws)])
    assert rc == 0
    run = ws / "runs" / "cli-run"
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["pooling"] == "l1" and config["attention_lr_scale"] == 10
    out = tmp_path / "metrics.json"
    rc = main(["evaluate", "--root", str(synth_root), "--checkpoint", str(run / "last.safetensors"),
               "--workspace", str(ws), "--json", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "R1" in printed and "mAP" in printed
    report = json.loads(out.read_text())
    assert {"rank1", "rank5", "rank10", "rank20", "mAP", "cmc"} <= set(report)
    assert all(0 <= report[k] <= 1 for k in ("rank1", "rank5", "rank10", "rank20", "mAP"))
    assert report["checkpoint"].endswith("last.safetensors")
