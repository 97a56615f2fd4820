"""The fast training recipe: its sampler, clips, losses, schedule, budget, SIGTERM and validation."""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from reidviewer.engine.clips import random_erase, restricted_random_frames
from reidviewer.engine.recipes import RECIPE_DEFAULTS, SettingsError, TrainConfig
from reidviewer.engine.sampler import UNKNOWN_CAMERA, IdentitySampler
from reidviewer.engine.train import train
from reidviewer.model.losses import batch_hard_triplet_loss, identity_loss


@pytest.fixture(scope="module")
def folder_root(tmp_path_factory) -> Path:
    """A small folder-layout SynthWalk set: 10 people, 3–5 short tracklets each, 4 cameras."""
    from reidviewer.data.synthwalk import SynthConfig, generate

    out = tmp_path_factory.mktemp("folder") / "set"
    generate(out, SynthConfig(ids=10, seed=4, layout="folder", cameras=4, min_tracklets=3, max_tracklets=5,
                              min_len=6, max_len=9, height=64, width=32, image_format="jpg",
                              unknown_camera=0.3), workers=1)
    return out


def tiny_fast(root, **kw) -> TrainConfig:
    base = dict(recipe="fast", root=str(root), epochs=3, ids_per_batch=3, tracklets_per_id=2, seq_len=4,
                eval_every=0, checkpoint_every=0, seed=3, lr=3e-3,
                model={"conv_channels": [8, 16, 16], "hidden_dim": 64, "embedding_dim": 32})
    base.update(kw)
    return TrainConfig(**base)


# ------------------------------------------------------------------------------ the sampler


def test_identity_batches_hold_p_identities_times_k_tracklets_spread_over_cameras():
    # 6 identities; identity 0 has tracklets in 3 cameras, identity 5 only one tracklet.
    idx, labels, cams = [], [], []
    for lab, n in enumerate([6, 4, 4, 3, 2, 1]):
        for j in range(n):
            idx.append(100 + len(idx))
            labels.append(lab)
            cams.append(j % 3)
    s = IdentitySampler(np.array(idx), np.array(labels), np.array(cams), ids_per_batch=3, tracklets_per_id=4)
    batches = s.epoch(np.random.default_rng(0))
    assert len(batches) == s.steps_per_epoch == math.ceil(20 / 12)
    seen = []
    for b in batches:
        assert len(b) == 12
        ids = [lab for _, lab in b]
        assert sorted(set(ids)) == sorted(set(ids)) and len(set(ids)) == 3  # P identities
        assert all(ids.count(i) == 4 for i in set(ids))                      # K each
        seen += list(set(ids))
    cam_of = dict(zip(idx, cams))
    label_of = dict(zip(idx, labels))
    # Identity 0 has 3 cameras: its 4 tracklets cover all 3 (round-robin over cameras).
    for _ in range(20):
        picked = s.tracklets_for(0, np.random.default_rng(_))
        assert len(set(picked)) == 4 and {cam_of[t] for t in picked} == {0, 1, 2}
        assert all(label_of[t] == 0 for t in picked)
    # Identity 5 has one tracklet: drawn with replacement.
    assert s.tracklets_for(5, np.random.default_rng(1)) == [idx[-1]] * 4
    # Every identity gets its turn before one comes twice.
    first_pass = seen[:6]
    assert sorted(first_pass) == list(range(6))


def test_identity_batches_are_reproducible_by_seed_and_differ_between_seeds():
    labels = np.repeat(np.arange(10), 4)
    s = IdentitySampler(np.arange(40), labels, np.tile(np.arange(4), 10), 4, 4)
    a = s.epoch(np.random.default_rng(7))
    assert a == s.epoch(np.random.default_rng(7))
    assert a != s.epoch(np.random.default_rng(8))


def test_unknown_cameras_count_as_cameras_of_their_own():
    labels = np.zeros(4, dtype=int)
    labels = np.concatenate([labels, np.ones(4, dtype=int)])
    cams = np.array([UNKNOWN_CAMERA] * 4 + [0, 0, 0, 1])
    s = IdentitySampler(np.arange(8), labels, cams, 2, 2)
    # Two unknown-camera tracklets are two "cameras": never refused as a same-camera pair.
    assert len(set(s.tracklets_for(0, np.random.default_rng(0)))) == 2
    # Identity 1: two cameras, so its two tracklets come from different ones.
    for seed in range(10):
        picked = s.tracklets_for(1, np.random.default_rng(seed))
        assert {int(cams[t]) for t in picked} == {0, 1}


# ------------------------------------------------------------------------------ clips


def test_restricted_random_sampling_takes_one_frame_from_each_equal_chunk():
    rng = np.random.default_rng(0)
    for _ in range(50):
        f = restricted_random_frames(24, 4, rng)
        assert len(f) == 4 and all(6 * i <= f[i] < 6 * (i + 1) for i in range(4))
    hits = np.zeros(24, dtype=int)
    for _ in range(2000):
        hits[restricted_random_frames(24, 4, rng)] += 1
    assert (hits > 0).all()  # every frame can be drawn
    short = restricted_random_frames(3, 8, rng)  # shorter than the clip: frames repeat, in order
    assert len(short) == 8 and set(short) <= {0, 1, 2} and (np.diff(short) >= 0).all()


def test_random_erasing_changes_a_rectangle_of_some_frames_only():
    clip = np.zeros((40, 5, 56, 40), dtype=np.float32)
    random_erase(clip, np.random.default_rng(0), 0.5)
    erased = [(np.abs(f) > 0).any() for f in clip]
    assert 8 < sum(erased) < 32
    f = clip[int(np.flatnonzero(erased)[0])]
    rows, cols = np.flatnonzero((f != 0).any((0, 2))), np.flatnonzero((f != 0).any((0, 1)))
    area = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
    assert 0.02 * 56 * 40 * 0.8 <= area <= 0.4 * 56 * 40 * 1.2
    untouched = np.zeros((4, 5, 56, 40), dtype=np.float32)
    random_erase(untouched, np.random.default_rng(0), 0.0)
    assert not untouched.any()


# ------------------------------------------------------------------------------ losses


def test_batch_hard_triplet_loss_matches_a_hand_computed_case():
    f = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [3.0, 0.0]])
    labels = torch.tensor([0, 0, 1, 1])
    # Anchors 0, 1: hardest positive 1, hardest negative 2 -> 0. Anchors 2, 3: hardest positive
    # d(2, 3) = √13, hardest negatives 2 -> 0.3 + √13 − 2 each.
    expected = (0 + 0 + 2 * (0.3 + math.sqrt(13) - 2)) / 4
    assert float(batch_hard_triplet_loss(f, labels, 0.3)) == pytest.approx(expected, abs=1e-5)
    f.requires_grad_(True)
    batch_hard_triplet_loss(f, labels, 0.3).backward()
    assert torch.isfinite(f.grad).all()
    # No anchor with both a positive and a negative: 0, not NaN.
    assert float(batch_hard_triplet_loss(f[:2], labels[:2], 0.3)) == 0.0


def test_label_smoothed_cross_entropy_matches_a_hand_computed_case():
    logits = torch.tensor([[2.0, 0.0, 0.0]])
    label = torch.tensor([0])
    logp = torch.log_softmax(logits, 1)[0]
    eps = 0.1
    target = torch.tensor([1 - eps + eps / 3, eps / 3, eps / 3])
    assert float(identity_loss(logits, label, eps)) == pytest.approx(float(-(target * logp).sum()), abs=1e-6)
    assert float(identity_loss(logits, label, 0.0)) == pytest.approx(float(-logp[0]), abs=1e-6)


# ------------------------------------------------------------------------------ settings


def test_recipes_fill_their_defaults_and_old_configs_read_as_paper_runs():
    fast, paper = TrainConfig(recipe="fast"), TrainConfig(recipe="paper")
    assert fast.optimizer == "adam" and fast.schedule == "cosine" and fast.model["dropout"] == 0.0
    assert fast.attention_lr_scale == 100.0 and fast.loss["weight_attention_level"] == 1.0 and fast.seq_len == 2 and fast.clip_sampling == "restricted"
    assert paper.optimizer == "sgd" and paper.epochs == 1000 and paper.milestones == (300, 600)
    assert paper.model == {} and paper.loss == {} and paper.attention_lr_scale == 1.0 and paper.seq_len == 16
    mine = TrainConfig(recipe="fast", model={"pooling": "l1"}, attention_lr_scale=1.0)
    assert mine.model["pooling"] == "l1" and mine.model["dropout"] == 0.0  # merged, mine wins
    assert mine.attention_lr_scale == 1.0
    again = TrainConfig.from_dict(json.loads(json.dumps(fast.to_dict())))
    assert again == fast
    old = {k: v for k, v in paper.to_dict().items() if k not in ("recipe", "minutes", "optimizer")}
    assert TrainConfig.from_dict(old).recipe == "paper"  # a config.json from before recipes


@pytest.mark.parametrize("bad, name", [({"epochs": -1}, "epochs"), ({"lr": float("nan")}, "lr"),
                                      ({"pairs_per_step": 0}, "pairs_per_step"), ({"minutes": -2}, "minutes"),
                                      ({"warmup": 1.5}, "warmup"), ({"epochs": 10**12}, "epochs"),
                                      ({"recipe": "quick"}, "recipe"), ({"milestones": ("a",)}, "milestones")])
def test_bad_settings_are_refused_naming_the_setting(bad, name):
    with pytest.raises(SettingsError, match=name):
        TrainConfig(**bad)


def test_cosine_schedule_warms_up_then_anneals_to_one_percent():
    c = TrainConfig(recipe="fast", lr=1e-3, warmup=0.1)
    assert c.lr_at(0, 0.0) == pytest.approx(1e-4)
    assert c.lr_at(0, 0.05) == pytest.approx(0.55e-3 * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * 0.05))), rel=1e-6)
    assert c.lr_at(0, 0.1) == pytest.approx(1e-3 * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * 0.1))))
    assert c.lr_at(0, 1.0) == pytest.approx(1e-5)
    lrs = [c.lr_at(0, p) for p in np.linspace(0.1, 1, 20)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))


# ------------------------------------------------------------------------------ training


def test_a_tiny_fast_run_lowers_the_loss(folder_root, shared_workspace):
    reports = []
    out = train(tiny_fast(folder_root, epochs=12, run_name="f-learn", eval_every=6), shared_workspace,
                progress=reports.append)
    log = [json.loads(line) for line in (out.run_dir / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss_total"] for r in log if "loss_total" in r]
    assert len(losses) >= 4
    k = max(1, len(losses) // 4)
    assert np.mean(losses[-k:]) < np.mean(losses[:k])
    assert {"total", "id", "triplet"} <= set(next(r.losses for r in reports if r.losses))
    vals = [r for r in log if "val_rank1" in r]
    assert vals and all(0 <= r["val_rank1"] <= 1 and 0 <= r["val_map"] <= 1 for r in vals)
    meta = json.loads((out.run_dir / "last.json").read_text())
    assert meta["recipe"] == "fast" and meta["training"]["recipe"] == "fast"
    assert meta["architecture"]["dropout"] == 0.0 and meta["architecture"]["bnneck"] is True
    assert json.loads((out.run_dir / "config.json").read_text())["recipe"] == "fast"


@pytest.mark.parametrize("head", ["ran", "mean", "rnn", "softmax"])
@pytest.mark.parametrize("recipe", ["fast", "paper"])
def test_every_head_trains_under_either_recipe(head, recipe, folder_root, shared_workspace):
    kw = dict(epochs=1, run_name=f"heads-{recipe}-{head}", head=head, iterations=2 if head in ("ran", "softmax") else 0)
    if recipe == "paper":
        cfg = TrainConfig(recipe="paper", root=str(folder_root), epochs=1, pairs_per_step=4, eval_every=0,
                          checkpoint_every=0, run_name=kw["run_name"], head=head, iterations=kw["iterations"])
    else:
        cfg = tiny_fast(folder_root, **kw)
    out = train(cfg, shared_workspace)
    assert out.checkpoint.is_file() and out.global_step > 0 and out.reason == "finished"


def test_a_time_budget_stops_the_run_with_a_checkpoint_and_an_annealed_schedule(folder_root, shared_workspace):
    cfg = tiny_fast(folder_root, epochs=10_000, minutes=0.25, run_name="f-budget", eval_every=0)
    reports = []
    t0 = time.monotonic()
    out = train(cfg, shared_workspace, progress=reports.append)
    took = time.monotonic() - t0
    assert out.reason == "budget" and not out.stopped and out.checkpoint.is_file()
    assert 0.25 * 60 * 0.8 < took < 0.25 * 60 + 20
    assert reports[-1].lr == pytest.approx(cfg.lr * 0.01, rel=0.2)  # the cosine ended with the budget


def test_checkpoint_minutes_keeps_the_weights_at_each_mark_of_training_time(folder_root, shared_workspace):
    from reidviewer.model.checkpoint import load_checkpoint

    cfg = tiny_fast(folder_root, epochs=10_000, run_name="f-marks", checkpoint_minutes=0.02)  # every 1.2 s
    run_dir = shared_workspace.runs_dir / "f-marks"
    out = train(cfg, shared_workspace, should_stop=lambda: len(list(run_dir.glob("minute_*.safetensors"))) >= 2)
    kept = sorted(out.run_dir.glob("minute_*.safetensors"))
    assert [p.stem for p in kept] == ["minute_0.02", "minute_0.04"]
    seconds = [json.loads(p.with_suffix(".json").read_text())["elapsed_s"] for p in kept]
    assert 1.2 <= seconds[0] < seconds[1] and seconds[1] >= 2.4
    model, _, meta = load_checkpoint(kept[1])
    assert meta["global_step"] > 0 and meta["global_step"] <= out.global_step


def test_sigterm_stops_with_a_checkpoint_and_resume_equals_an_uninterrupted_run(folder_root, tmp_path):
    from safetensors.torch import load_file

    ws = tmp_path / "ws"
    common = [sys.executable, "-m", "reidviewer", "train", "--root", str(folder_root), "--workspace", str(ws),
              "--epochs", "4", "--ids-per-batch", "3", "--tracklets-per-id", "2", "--seq-len", "4", "--seed", "3",
              "--eval-every", "0", "--lr", "0.003", "--threads", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    full = subprocess.run([*common, "--out", "full"], capture_output=True, text=True, env=env, timeout=600)
    assert full.returncode == 0, full.stderr[-2000:]
    proc = subprocess.Popen([*common, "--out", "part"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    log = ws / "runs" / "part" / "metrics.jsonl"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not (log.is_file() and "loss_total" in log.read_text()):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 143, err[-2000:]
    assert "SIGTERM" in err
    state = json.loads((ws / "runs" / "part" / "state.json").read_text())
    assert state["position"]["global_step"] > 0
    resume = [sys.executable, "-m", "reidviewer", "train", "--root", str(folder_root), "--workspace", str(ws),
              "--out", "part", "--resume", "--threads", "1"]
    resumed = subprocess.run(resume, capture_output=True, text=True, env=env, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a = load_file(str(ws / "runs" / "full" / "last.safetensors"))
    b = load_file(str(ws / "runs" / "part" / "last.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_collapsing_run_is_said_and_stopped_with_the_weights_from_before(folder_root, shared_workspace):
    from safetensors.torch import load_file

    # lr 50 with SGD and no clipping drives every feature to the same point within a few steps.
    cfg = TrainConfig(recipe="paper", root=str(folder_root), epochs=40, pairs_per_step=2, lr=50.0, grad_clip=0.0,
                      eval_every=0, checkpoint_every=0, run_name="f-collapse", seed=2)
    reports = []
    try:
        out = train(cfg, shared_workspace, progress=reports.append)
    except Exception as exc:  # a diverging run may reach NaN first: that is said too
        assert "diverged" in str(exc)
        return
    assert out.reason == "collapsed" and out.stopped
    assert any("collapsed" in w for r in reports for w in r.health)
    log = [json.loads(line) for line in (out.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert any("collapse" in r.get("problems", []) for r in log)
    w = load_file(str(out.checkpoint))
    assert all(torch.isfinite(v).all() for v in w.values() if v.is_floating_point())


def test_validation_at_mars_size_stays_within_300_mb(tmp_path):
    """The ranking part of validation on 1,980 × 9,330 random 128-d features."""
    import tracemalloc

    from reidviewer.engine.metrics import rank_queries, summarize
    from reidviewer.engine.results import euclidean_rows

    rng = np.random.default_rng(0)
    qf = rng.standard_normal((1980, 128)).astype(np.float32)
    gf = rng.standard_normal((9330, 128)).astype(np.float32)
    qp, gp = rng.integers(0, 600, 1980), rng.integers(0, 600, 9330)
    qc, gc = rng.integers(0, 6, 1980), rng.integers(0, 6, 9330)
    tracemalloc.start()
    pq = rank_queries(lambda a, b: euclidean_rows(qf, gf, a, b), qp, gp, qc, gc)
    summarize(pq, 1)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 300e6, f"{peak / 1e6:.0f} MB"


def test_health_waits_before_calling_a_loss_stuck_and_does_not_recommend_the_recipe_in_use():
    from reidviewer.engine.health import SETTLE_STEPS, BatchStats, Health

    at_chance = BatchStats(spread=1.0, distance=1.0, total_loss=6.5, id_loss=6.5, attention_spread=0.2)
    for recipe, hint in (("fast", False), ("paper", True)):
        h = Health(num_classes=625, steps_per_epoch=128, recipe=recipe)
        early = [h.update(at_chance, progress=0.9) for _ in range(SETTLE_STEPS - 1)]
        assert not any("chance" in w for ws in early for w in ws)  # a one-epoch MARS run: too early to say
        late = h.update(at_chance, progress=0.9)
        said = [w for w in late if "chance" in w]
        assert said and ("--recipe fast" in said[0]) == hint
