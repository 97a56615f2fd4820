"""Training losses (SPEC §d) against values computed by hand."""
from __future__ import annotations

import math

import pytest
import torch

from reidviewer.model import LossConfig, ModelConfig, build_model, contrastive_loss, pair_distance, pair_loss
from reidviewer.model.similarity import signed_sqrt_l2


def t(*v: float) -> torch.Tensor:
    return torch.tensor([list(v)])


def test_distance_is_euclidean_with_a_tiny_stabiliser():
    assert float(pair_distance(t(0.0, 0.0), t(3.0, 4.0))) == pytest.approx(5.0)
    d0 = pair_distance(t(1.0, 1.0).requires_grad_(), t(1.0, 1.0))
    d0.sum().backward()  # finite gradient at d = 0
    assert float(d0.detach()) == pytest.approx(1e-6)


@pytest.mark.parametrize(
    ("other", "same", "eq5", "rcn"),
    [
        ((3.0, 4.0), True, 0.5 * 25, 5.0),  # positive: ½d² / d
        ((0.6, 0.8), False, 0.5 * (2 - 1) ** 2, 1.0),  # negative inside the margin: ½(m−d)² / m−d
        ((3.0, 4.0), False, 0.0, 0.0),  # negative beyond the margin: 0
        ((0.0, 0.0), True, 0.0, 1e-6),  # identical positive
    ],
)
def test_contrastive_loss_by_hand(other, same, eq5, rcn):
    f1, f2 = t(0.0, 0.0), t(*other)
    y = torch.tensor([same])
    assert float(contrastive_loss(f1, f2, y, margin=2.0, form="eq5")) == pytest.approx(eq5, abs=1e-6)
    assert float(contrastive_loss(f1, f2, y, margin=2.0, form="rcn_code")) == pytest.approx(rcn, abs=1e-6)


def test_signed_sqrt_l2_by_hand():
    h = torch.tensor([[4.0, -9.0, 0.0]])
    s = torch.tensor([2.0, -3.0, 0.0])
    assert torch.allclose(signed_sqrt_l2(h, 1e-8)[0], s / math.sqrt(13), atol=1e-6)


def small_model(similarity: str = "A") -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(ModelConfig(embedding_dim=2, hidden_dim=4, num_classes=3, similarity=similarity))


def test_pair_loss_terms_by_hand():
    m = small_model("A")
    with torch.no_grad():
        m.classifier.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]))
        m.classifier.bias.zero_()
        m.similarity.linear.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, 1.0]]))
        m.similarity.linear.bias.zero_()
    f1, f2 = torch.tensor([[1.0, 4.0]]), torch.tensor([[1.0, 1.0]])
    y1, y2 = torch.tensor([1]), torch.tensor([1])
    terms = pair_loss(m, f1, f2, y1, y2)

    def ce(logits: list[float], k: int) -> float:
        return -logits[k] + math.log(sum(math.exp(v) for v in logits))

    id1 = ce([1.0, 4.0, 0.0], 1)
    id2 = ce([1.0, 1.0, 0.0], 1)
    hinge = 0.5 * 9.0  # same person, d = 3
    # h = f1⊙f2 = (1, 4); s = (1, 2); n = s/√5; logits = (0, 3/√5); y = 1
    sim = ce([0.0, 3 / math.sqrt(5)], 1)
    got = terms.as_floats()
    assert got["id1"] == pytest.approx(id1, rel=1e-5)
    assert got["id2"] == pytest.approx(id2, rel=1e-5)
    assert got["hinge"] == pytest.approx(hinge, rel=1e-5)
    assert got["sim"] == pytest.approx(sim, rel=1e-5)
    assert got["total"] == pytest.approx(id1 + id2 + hinge + sim, rel=1e-5)


def test_pair_loss_negative_pair_and_averaging_over_pairs():
    m = small_model("A")
    f1 = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    f2 = torch.tensor([[0.0, 1.0], [3.0, 4.0]])
    labels1, labels2 = torch.tensor([0, 0]), torch.tensor([1, 0])  # negative, positive
    terms = pair_loss(m, f1, f2, labels1, labels2)
    assert float(terms.hinge) == pytest.approx((0.5 * 1.0 + 0.5 * 25.0) / 2, rel=1e-5)
    rcn = pair_loss(m, f1, f2, labels1, labels2, LossConfig(hinge="rcn_code"))
    assert float(rcn.hinge) == pytest.approx((1.0 + 5.0) / 2, rel=1e-5)


def test_similarity_c_is_binary_cross_entropy_of_the_scalar_reading():
    m = small_model("C")
    with torch.no_grad():
        m.similarity.scale.fill_(2.0)
        m.similarity.offset.fill_(-1.0)
    f1, f2 = torch.tensor([[1.0, 3.0]]), torch.tensor([[1.0, 1.0]])  # I = 4, s = 2, z = 3
    logits = m.similarity_logits(f1, f2).detach()
    p = 1 / (1 + math.exp(-3.0))
    assert float(torch.nn.functional.cross_entropy(logits, torch.tensor([1]))) == pytest.approx(-math.log(p), rel=1e-5)
    assert float(torch.nn.functional.cross_entropy(logits, torch.tensor([0]))) == pytest.approx(-math.log(1 - p), rel=1e-5)


def test_similarity_b_symmetric_option_is_order_free():
    torch.manual_seed(0)
    m = build_model(ModelConfig(embedding_dim=4, hidden_dim=8, num_classes=2, similarity="B", similarity_symmetric=True))
    f1, f2 = torch.randn(3, 4), torch.randn(3, 4)
    assert m.similarity.linear.in_features == 16
    assert torch.allclose(m.similarity_logits(f1, f2), m.similarity_logits(f2, f1), atol=1e-6)


def test_losses_backpropagate_finitely_for_identical_features():
    m = small_model("A")
    f = torch.zeros(2, 2, requires_grad=True)
    terms = pair_loss(m, f, f.clone(), torch.tensor([0, 1]), torch.tensor([0, 2]))
    terms.total.backward()
    assert torch.isfinite(f.grad).all()


def test_loss_config_validation():
    with pytest.raises(ValueError, match="hinge must be one of"):
        LossConfig(hinge="squared")
    with pytest.raises(ValueError, match="unknown loss config key"):
        LossConfig.from_dict({"margin": 2.0, "bogus": 1})
    assert LossConfig.from_dict(LossConfig(margin=3.0).to_dict()).margin == 3.0
