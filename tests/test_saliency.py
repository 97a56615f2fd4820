"""Spatial saliency (#20): Grad-CAM against a hand-computed case, the randomised-weights check,
the workspace cache, the frame geometry, SynthWalk's masks and the audit's saliency section."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from reidviewer.engine import saliency as sal
from reidviewer.engine.saliency import (NetStages, SaliencyEngine, SaliencyMaps, pair_gradcam, randomised_copy,
                                        saliency_unavailable, spearman)

SHIPPED = Path(__file__).resolve().parents[1] / "reidviewer" / "checkpoints" / "synthwalk-ran-k3.safetensors"


class MeanStages:
    """A hand-built two-channel "network": the activations are the input, the video feature the
    mean of each channel over frames and pixels."""

    def activations(self, frames):
        return frames * 1.0

    def video_feature(self, activations):
        return activations.mean((0, 2, 3))


def test_gradcam_matches_the_hand_computed_case():
    # Query: channel 0 lights the top-left pixel, channel 1 the bottom-right (value 2);
    # gallery: channel 1 everywhere. f_q = (1/4, 1/2), f_g = (0, 1), d = √(1/16 + 1/4).
    q = torch.zeros(1, 2, 2, 2)
    q[0, 0, 0, 0] = 1
    q[0, 1, 1, 1] = 2
    g = torch.zeros(1, 2, 2, 2)
    g[0, 1] = 1
    d = math.sqrt(1 / 16 + 1 / 4)
    mq, mg, dist = pair_gradcam(MeanStages(), q, g)
    assert dist == pytest.approx(d, rel=1e-6)
    # ∂(−d)/∂A_q,c = −(f_q − f_g)_c / (4d): w_q = (−1/(16d), 1/(8d)); ReLU(Σ w_c A_c) is
    # 0 except at the bottom-right, 2/(8d) = 1/(4d) → normalised to 1.
    assert np.allclose(mq, [[[0, 0], [0, 1]]])
    # Gallery: w_g = (1/(16d), −1/(8d)); ReLU(−1/(8d) · 1) = 0 everywhere.
    assert np.allclose(mg, 0)
    # The unnormalised map, by hand.
    grads = torch.zeros_like(q)
    grads[0, 0], grads[0, 1] = -0.25 / (4 * d), 0.5 / (4 * d)
    raw = sal.cam_from(q, grads)
    assert raw[0, 1, 1].item() == pytest.approx(1 / (4 * d), rel=1e-6)
    assert raw[0, 0, 0].item() == 0


def test_energy_is_the_sum_of_squared_activations():
    a = torch.tensor([[[[1.0, 2.0]], [[3.0, 0.0]]]])  # (1, 2, 1, 2)
    assert np.allclose(sal.energy_from(a).numpy(), [[[10.0, 4.0]]])
    assert np.allclose(sal.tracklet_energy(MeanStages(), a), [[[1.0, 0.4]]])


def _shipped_model():
    from reidviewer.model.checkpoint import load_checkpoint

    model, _, _ = load_checkpoint(SHIPPED)
    return model.eval()


def test_the_split_network_is_the_network():
    model = _shipped_model()
    torch.manual_seed(1)
    frames = torch.randn(6, 5, 56, 40)
    stages = NetStages(model)
    with torch.no_grad():
        want = model(frames[None]).feature[0]
        got = stages.video_feature(stages.activations(frames))
    assert torch.allclose(want, got, atol=1e-5)


def test_randomised_weights_give_clearly_different_maps(synth_root, workspace):
    from reidviewer.data.cache import FrameCache
    from reidviewer.data.registry import open_dataset
    from reidviewer.data.transforms import test_transform

    ds = open_dataset(synth_root, "synthwalk", None, workspace)
    cache = FrameCache(workspace, ds)
    clips = [torch.from_numpy(np.ascontiguousarray(test_transform(cache.network_input(i)))) for i in (0, 1)]
    model = _shipped_model()
    mq, mg, _ = pair_gradcam(NetStages(model), *clips)
    rq, rg, _ = pair_gradcam(NetStages(randomised_copy(model, seed=0)), *clips)
    again, _, _ = pair_gradcam(NetStages(model), *clips)
    assert np.allclose(mq, again)  # deterministic
    corr = np.nanmean([spearman(a, b) for a, b in zip(np.concatenate([mq, mg]), np.concatenate([rq, rg]))])
    assert corr < 0.5, corr
    # ... while the randomised network's weights really differ and the trained model is untouched.
    assert not torch.equal(model.cnn.convs[2].weight, randomised_copy(model).cnn.convs[2].weight)
    assert np.allclose(pair_gradcam(NetStages(model), *clips)[0], mq)


def _results(synth_root, workspace):
    from reidviewer.data.registry import open_dataset
    from reidviewer.engine.evaluate import compute_results

    ds = open_dataset(synth_root, "synthwalk", None, workspace)
    return ds, compute_results(ds, 0, SHIPPED, workspace)


def test_pair_maps_are_cached_and_read_back(synth_root, workspace, monkeypatch):
    ds, res = _results(synth_root, workspace)
    qi, gi = int(res.query_indices[0]), int(res.gallery_indices[0])
    eng = SaliencyEngine(ds, res, workspace)
    assert eng.unavailable is None
    q, g = eng.pair(qi, gi)
    assert q.maps.shape == (len(q.frames), 56, 40) and g.maps.shape[1:] == (56, 40)
    assert q.maps.max() == pytest.approx(1.0) and q.maps.min() >= 0
    assert q.distance == pytest.approx(float(res.distmat[0, 0]), rel=1e-4)
    files = sorted((workspace.cache_dir / "saliency").rglob("*.npz"))
    assert len(files) == 2
    mtimes = [f.stat().st_mtime_ns for f in files]

    def boom(*_a, **_k):
        raise AssertionError("recomputed instead of read from the workspace")

    monkeypatch.setattr(sal, "pair_gradcam", boom)
    eng2 = SaliencyEngine(ds, res, workspace)
    q2, g2 = eng2.pair(qi, gi)
    assert eng2.reads == 2
    assert np.allclose(q2.maps, q.maps, atol=1e-4) and np.array_equal(q2.frames, q.frames)
    assert [f.stat().st_mtime_ns for f in files] == mtimes
    with np.load(files[0], allow_pickle=False) as z:  # plain arrays only
        assert set(z.files) == {"maps", "frames", "meta"}
    # A damaged file is recomputed, never shown.
    monkeypatch.undo()
    for f in files:
        f.write_bytes(b"not an npz")
    q3, _ = SaliencyEngine(ds, res, workspace).pair(qi, gi)
    assert np.allclose(q3.maps, q.maps, atol=1e-4)
    # The energy option is target-free and cached too.
    e1 = eng.tracklet(qi)
    assert e1.method == "energy" and e1.target == sal.NO_TARGET
    assert SaliencyEngine(ds, res, workspace).tracklet(qi).maps.shape == e1.maps.shape


def test_frame_map_undoes_the_test_crop():
    maps = SaliencyMaps(np.ones((2, 56, 40), np.float32), np.array([5, 6]), (64, 48), (4, 4), "gradcam", "x")
    stored = maps.stored_map(0)
    assert stored[:4].sum() == 0 and stored[60:].sum() == 0 and stored[:, :4].sum() == 0 and stored[:, 44:].sum() == 0
    assert stored[4:60, 4:44].min() == 1
    full = maps.frame_map(6, 128, 96)
    assert full.shape == (128, 96)
    assert full[:6].max() == 0 and full[20:100, 20:80].min() == pytest.approx(1)
    assert maps.frame_map(4, 128, 96) is None and maps.index_of(5) == 0


def test_models_without_gradients_are_refused_with_a_reason():
    assert "gradients" in saliency_unavailable("model:pixels")
    assert saliency_unavailable(str(SHIPPED)) is None
    assert saliency_unavailable(None)


def test_synthwalk_masks_are_the_rendered_pixels(synth_root):
    from reidviewer.data.synthwalk import SynthConfig, read_sidecar, render_tracklet
    from reidviewer.data.synthwalk_masks import tracklet_masks

    doc = read_sidecar(synth_root)
    config = SynthConfig.from_dict(doc["config"])
    plain = render_tracklet(config, 2, 1)
    masked = render_tracklet(config, 2, 1, masks=True)
    assert np.array_equal(plain.frames, masked.frames) and plain.person_masks is None
    n = len(masked.frames)
    assert masked.person_masks.shape == masked.occluder_masks.shape == (n, config.height, config.width)
    assert masked.person_masks.any(axis=(1, 2)).all()
    # The re-rendered masks of an occluded tracklet overlap the person where occlusion was recorded.
    key, entry = next((k, e) for k, e in doc["tracklets"].items() if max(e["occlusion"]) > 0.2)
    person, occluder = tracklet_masks(synth_root, key)
    t = int(np.argmax(entry["occlusion"]))
    hidden = (person[t] & occluder[t]).sum() / person[t].sum()
    assert hidden == pytest.approx(entry["occlusion"][t], abs=0.15)


def test_audit_reports_saliency_shares(synth_root, workspace):
    from reidviewer.engine.saliency_audit import format_saliency, saliency_audit

    ds, res = _results(synth_root, workspace)
    rep = saliency_audit(ds, res, workspace, pairs=2)
    for k in ("person_share", "occluder_share", "person_share_random", "rank_correlation"):
        assert 0 <= rep[k] <= 1 or k == "rank_correlation", (k, rep)
    assert rep["rank_correlation"] < 0.5
    assert rep["person_share"] + rep["occluder_share"] + rep["background_share"] == pytest.approx(1, abs=1e-3)
    assert "share on the person" in format_saliency(rep)


@pytest.mark.parametrize("suffix", ["pdf", "svg", "png"])
def test_the_when_and_where_figure_exports(synth_root, shared_workspace, tmp_path, suffix):
    from reidviewer.figures.saliency import export_saliency

    ds, res = _results(synth_root, shared_workspace)
    out = export_saliency(tmp_path / f"fig.{suffix}", ds, res, shared_workspace, 0, frames=3, dpi=80)
    data = out.read_bytes()
    assert data[:4] in (b"%PDF", b"\x89PNG") or b"<svg" in data[:400]
    if suffix == "svg":
        text = data.decode("utf-8")
        assert "Probe" in text and "Gallery" in text and "saliency" in text  # editable text


def test_export_saliency_from_the_command_line(synth_root, shared_workspace, tmp_path, capsys):
    from reidviewer.cli import main

    out = tmp_path / "s.png"
    rc = main(["export", "saliency", "--root", str(synth_root), "--checkpoint", str(SHIPPED), "--workspace",
               str(shared_workspace.root), "--queries", "1", "--compare", "match", "--frames", "2", "--dpi", "60",
               "--saliency-method", "energy", "--per-frame", "--out", str(out)])
    assert rc == 0 and out.read_bytes()[:4] == b"\x89PNG"
    assert "wrote" in capsys.readouterr().out


@pytest.mark.parametrize("head,extra", [("ran", {}), ("softmax", {}), ("mean", {}), ("rnn", {}),
                                        ("ran", {"batchnorm": True, "conv_activation": "relu", "trunk_pool": "avg"})])
def test_gradcam_works_for_every_head(head, extra):
    from reidviewer.model.config import ModelConfig
    from reidviewer.model.network import build_model

    torch.manual_seed(0)
    model = build_model(ModelConfig(head=head, num_classes=0, hidden_dim=32, embedding_dim=16, **extra)).eval()
    q, g = torch.randn(5, 5, 56, 40), torch.randn(3, 5, 56, 40)
    with torch.no_grad():
        want = torch.linalg.vector_norm(model(q[None]).feature[0] - model(g[None]).feature[0]).item()
    mq, mg, d = pair_gradcam(NetStages(model), q, g)
    assert d == pytest.approx(want, rel=1e-4)
    assert mq.shape == (5, 56, 40) and mg.shape == (3, 56, 40)
    assert np.isfinite(mq).all() and 0 <= mq.min() and mq.max() <= 1


def test_reidviewer_audit_writes_the_saliency_section(synth_root, shared_workspace, tmp_path):
    import json

    from reidviewer.cli import main

    out = tmp_path / "audit.json"
    rc = main(["audit", "--root", str(synth_root), "--checkpoint", str(SHIPPED), "--workspace",
               str(shared_workspace.root), "--saliency-pairs", "1", "--json", str(out)])
    assert rc == 0
    sec = json.loads(out.read_text())["saliency"]
    assert {"person_share", "occluder_share", "person_share_random"} <= set(sec)
    assert sec["pairs"] == 1


def test_maps_use_the_clip_the_results_were_computed_on(synth_root, workspace):
    from reidviewer.data.registry import open_dataset
    from reidviewer.engine.evaluate import EvalSettings, compute_results

    ds = open_dataset(synth_root, "synthwalk", None, workspace)
    res = compute_results(ds, 0, SHIPPED, workspace, settings=EvalSettings(max_frames=8, gallery_tail=True))
    eng = SaliencyEngine(ds, res, workspace)
    for q, g in ((0, 0), (1, 2)):
        qm, gm = eng.pair(int(res.query_indices[q]), int(res.gallery_indices[g]))
        assert qm.distance == pytest.approx(float(res.distmat[q, g]), rel=1e-4)
        n = len(ds.tracklets[int(res.gallery_indices[g])])
        assert list(gm.frames) == list(range(n - 8, n)) and len(qm.frames) == 8


def test_a_checkpoint_changed_since_the_results_is_refused(synth_root, workspace, tmp_path):
    import shutil

    from reidviewer.engine.saliency import SaliencyError

    ds, res = _results(synth_root, workspace)
    copy = tmp_path / SHIPPED.name
    shutil.copy(SHIPPED, copy)
    shutil.copy(SHIPPED.with_suffix(".json"), copy.with_suffix(".json"))
    res.checkpoint_fingerprint = "0" * 64  # as if computed from other weights
    with pytest.raises(SaliencyError, match="changed"):
        SaliencyEngine(ds, res, workspace, checkpoint=copy).pair(int(res.query_indices[0]), int(res.gallery_indices[0]))
