"""The RAN network and its baselines (SPEC §a): shapes, masking, attention, fast inference."""
from __future__ import annotations

import subprocess
import sys
import warnings

import pytest
import torch
from torch import nn

from reidviewer.model import (
    HEADS,
    ModelConfig,
    build_model,
    embed_frames,
    extract_features,
    spec_reference_trunk,
)
from reidviewer.model.heads import attention_pool
from reidviewer.model.inference import compile_seconds

H, W = 56, 40


def frames(*shape: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, 5, H, W, generator=g)


def model_for(head: str = "ran", seed: int = 0, **kw) -> nn.Module:
    torch.manual_seed(seed)
    return build_model(ModelConfig(head=head, num_classes=7, **kw)).eval()


def test_trunk_shapes_and_parameter_count_match_spec():
    m = model_for()
    assert m.cnn.output_shape == (32, 10, 8) and m.cnn.flat_dim == 2560
    trunk = sum(p.numel() for p in m.cnn.parameters()) + sum(p.numel() for p in m.head.embed.parameters())
    assert [sum(p.numel() for p in c.parameters()) for c in m.cnn.convs] == [2016, 12832, 25632]
    assert trunk == 2_794_144  # SPEC: "2.79 M for the trunk and FCs"
    # + θ (128) + θ' (256) + classifier 128·7+7 + similarity A 2·128+2
    assert sum(p.numel() for p in m.parameters()) == trunk + 384 + 903 + 258


def test_cnn_rejects_frames_of_the_wrong_size():
    m = model_for()
    with pytest.raises(ValueError, match=r"\(N, 5, 56, 40\)"):
        m.cnn(torch.zeros(2, 5, 64, 48))
    with pytest.raises(ValueError, match=r"\(B, T, C, H, W\)"):
        m(torch.zeros(2, 5, 56, 40))


def test_pool_before_tanh_equals_the_literal_spec_layer_order():
    m = model_for()
    x = frames(6)
    with torch.no_grad():
        assert torch.allclose(m.cnn(x), spec_reference_trunk(m.cnn)(x), atol=1e-6)


@pytest.mark.parametrize("iterations", [0, 1, 3])
def test_ran_output_shapes_and_attention_range(iterations):
    m = model_for(iterations=iterations)
    out = m(frames(2, 5))
    assert out.feature.shape == (2, 128)
    assert out.attention.shape == (2, iterations + 1, 5)
    assert out.frame_features.shape == (2, 5, 128)
    assert bool(((out.attention > 0) & (out.attention < 1)).all())


@pytest.mark.parametrize("head", ["ran", "softmax", "mean", "rnn"])
def test_padding_gets_zero_weight_and_does_not_change_the_feature(head):
    m = model_for(head)
    a, b = frames(1, 6, seed=1), frames(1, 3, seed=2)
    batch = torch.cat([a, torch.cat([b, torch.full_like(a[:, :3], float("nan"))], 1)])  # NaN padding
    mask = torch.tensor([[True] * 6, [True] * 3 + [False] * 3])
    with torch.no_grad():
        out = m(batch, mask)
        alone = m(b)
    assert torch.isfinite(out.feature).all()
    assert torch.allclose(out.feature[1], alone.feature[0], atol=1e-6)
    assert torch.allclose(out.attention[1, :, :3], alone.attention[0], atol=1e-6)
    assert bool((out.attention[1, :, 3:] == 0).all())


def test_a_sequence_with_no_real_frame_is_an_error():
    m = model_for()
    with pytest.raises(ValueError, match="no real frame"):
        m(frames(2, 3), torch.tensor([[True, True, True], [False, False, False]]))


def test_mean_head_equals_ran_with_attention_one():
    ran = model_for("ran", attention_bias=True)
    mean = model_for("mean", seed=5)
    mean.head.embed.load_state_dict(ran.head.embed.state_dict())
    mean.cnn.load_state_dict(ran.cnn.state_dict())
    with torch.no_grad():  # σ(z) = 1.0 exactly in float32 for z ≥ 17
        for layer in (ran.head.attention, ran.head.refine):
            layer.weight.zero_()
            layer.bias.fill_(100.0)
    x = frames(2, 4)
    with torch.no_grad():
        r, mn = ran(x), mean(x)
    assert bool((r.attention == 1).all())
    assert torch.allclose(r.feature, mn.feature, atol=1e-6)
    assert torch.allclose(mn.feature, r.frame_features.mean(1), atol=1e-6)


def test_pooling_variants():
    x = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [9.0, 9.0]]])
    mask = torch.tensor([[True, True, False]])
    alpha = torch.tensor([[0.5, 0.25, 0.0]])
    s = torch.tensor([[0.5 * 1 + 0.25 * 3, 0.5 * 2 + 0.25 * 4]])
    assert torch.allclose(attention_pool(alpha, x, mask, "sum"), s)
    assert torch.allclose(attention_pool(alpha, x, mask, "mean"), s / 2)  # 2 real frames
    assert torch.allclose(attention_pool(alpha, x, mask, "l1"), s / 0.75)


def test_pooling_option_changes_the_feature_as_specified():
    outs = {p: model_for(pooling=p, iterations=0)(frames(1, 4)) for p in ("mean", "sum", "l1")}
    a = outs["sum"].attention[0, 0]
    assert torch.allclose(outs["mean"].feature * 4, outs["sum"].feature, atol=1e-5)
    assert torch.allclose(outs["l1"].feature * a.sum(), outs["sum"].feature, atol=1e-5)


def test_untied_refinement_has_one_theta_per_iteration_and_refines():
    m = model_for(share_refinement=False, iterations=3)
    assert len(m.head.refine) == 3
    with torch.no_grad():
        for k, layer in enumerate(m.head.refine):
            layer.weight.normal_(0, 1.0, generator=torch.Generator().manual_seed(k))
        out = m(frames(1, 5))
    # each iteration's attention depends on its own θ'_k and the previous feature
    assert not torch.allclose(out.attention[0, 1], out.attention[0, 2])
    d = m.config.embedding_dim
    f0 = (out.attention[0, 0].unsqueeze(1) * out.frame_features[0]).mean(0)
    w = m.head.refine[0].weight[0]
    expected = torch.sigmoid(out.frame_features[0] @ w[:d] + f0 @ w[d:])
    assert torch.allclose(out.attention[0, 1], expected, atol=1e-5)


def test_softmax_head_attention_sums_to_one_over_real_frames():
    m = model_for("softmax")
    out = m(frames(2, 4), torch.tensor([[True] * 4, [True, True, False, False]]))
    assert torch.allclose(out.attention.sum(-1), torch.ones(2, 4), atol=1e-6)


def test_rnn_head_follows_the_rcn_recurrence():
    m = model_for("rnn")
    x = frames(1, 3)
    with torch.no_grad():
        out = m(x)
        e = out.frame_features[0]
        o1 = e[0] + m.head.start
        o2 = e[1] + m.head.recurrent(torch.tanh(o1))
        o3 = e[2] + m.head.recurrent(torch.tanh(o2))
    assert torch.allclose(out.feature[0], (o1 + o2 + o3) / 3, atol=1e-6)


def test_he_init_zeroes_biases_and_scales_weights_by_fan_in():
    m = model_for(init="he")
    assert float(m.cnn.convs[0].bias.detach().abs().sum()) == 0.0
    std = float(m.head.embed.fc1.weight.detach().std())
    assert abs(std - (2 / 2560) ** 0.5) / (2 / 2560) ** 0.5 < 0.05


def test_registry_knows_the_heads_and_unknown_names_are_errors():
    assert {"ran", "softmax", "mean", "rnn"} <= set(HEADS)
    with pytest.raises(ValueError, match="unknown temporal head 'lstm'"):
        build_model(ModelConfig(head="lstm"))


@pytest.mark.parametrize("head", sorted(HEADS))
@pytest.mark.parametrize("similarity", ["A", "B", "C"])
def test_every_head_runs_forward_and_backward(head, similarity):
    m = model_for(head, similarity=similarity).train()
    x = frames(2, 3)
    out = m(x, torch.tensor([[True, True, True], [True, True, False]]))
    loss = out.feature.pow(2).sum() + m.classify(out.feature).sum() + m.similarity_logits(out.feature, out.feature.flip(0)).sum()
    loss.backward()
    grads = [p.grad for p in m.cnn.parameters()]
    assert all(g is not None and torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads)


def test_config_round_trips_and_rejects_unknown_keys():
    c = ModelConfig(head="softmax", iterations=2, conv_channels=(8, 16, 16), num_classes=3)
    assert ModelConfig.from_dict(c.to_dict()) == c
    assert isinstance(c.to_dict()["conv_channels"], list)
    with pytest.raises(ValueError, match="unknown model config key.*bogus"):
        ModelConfig.from_dict({**c.to_dict(), "bogus": 1})
    with pytest.raises(ValueError, match="pooling must be one of"):
        ModelConfig(pooling="max")


def test_config_import_does_not_import_torch():
    code = "import sys, reidviewer.model.config; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("head", ["ran", "rnn"])
def test_fast_inference_equals_the_eager_reference(head):
    m = model_for(head).train()  # the fast path must switch dropout off by itself
    tracks = [frames(1, n, seed=n)[0] for n in (3, 1, 7, 2)]
    fast = extract_features(m, tracks, chunk_size=4, group_frames=6, keep_frame_features=True)
    assert m.training  # mode restored
    m.eval()
    with torch.no_grad():
        for i, t in enumerate(tracks):
            ref = m(t.unsqueeze(0))
            assert torch.allclose(fast.features[i], ref.feature[0], atol=1e-5)
            assert torch.allclose(fast.attention[i], ref.attention[0], atol=1e-5)
            assert torch.allclose(fast.frame_features[i], ref.frame_features[0], atol=1e-5)
    assert fast.features.shape == (4, 128) and fast.attention[2].shape == (m.attention_rows, 7)


def test_embed_frames_matches_spec_reference_on_nchw_input():
    m = model_for()
    x = frames(10)
    fast = embed_frames(m, x, chunk_size=4)
    with torch.no_grad():
        ref = m.head.embed(spec_reference_trunk(m.cnn)(x))
    assert torch.allclose(fast, ref, atol=1e-5)


@pytest.mark.slow
def test_compiled_fast_path_equals_eager_or_falls_back():
    # torch.compile needs a C compiler; without one the fast path warns and runs eager.
    m = model_for()
    x = frames(9)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fast = embed_frames(m, x, chunk_size=8, compile=True)
    fell_back = any("torch.compile" in str(w.message) for w in caught)
    assert fell_back or compile_seconds(m) is not None  # the compiled graph really ran
    assert torch.allclose(fast, embed_frames(m, x, chunk_size=8), atol=1e-5)
