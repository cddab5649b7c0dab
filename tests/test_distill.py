"""Golden values for the distillation losses."""

import math

import pytest
import torch
import torch.nn.functional as F

from meddistill.distillation import available_methods, create_method, kd_loss


def test_identical_logits_soft_term_is_zero():
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.1, 0.2, 0.3]])
    labels = torch.tensor([0, 2])
    assert kd_loss(logits, logits, labels, temperature=4.0, alpha=1.0).item() == pytest.approx(0.0, abs=1e-7)


def test_alpha_zero_is_cross_entropy():
    student = torch.randn(5, 4, generator=torch.Generator().manual_seed(0))
    teacher = torch.randn(5, 4, generator=torch.Generator().manual_seed(1))
    labels = torch.tensor([0, 1, 2, 3, 0])
    assert kd_loss(student, teacher, labels, 3.0, 0.0).item() == pytest.approx(
        F.cross_entropy(student, labels).item(), abs=1e-7
    )


def test_hand_computed_case():
    # One image, two classes. Student logits (1, 0), teacher logits (0, 1), T = 2, alpha = 0.5, label 0.
    student, teacher, labels = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]]), torch.tensor([0])
    t = 2.0
    ps = [math.exp(0.5) / (math.exp(0.5) + 1), 1 / (math.exp(0.5) + 1)]  # softmax(s / T)
    pt = [1 / (1 + math.exp(0.5)), math.exp(0.5) / (1 + math.exp(0.5))]  # softmax(t / T)
    kl = sum(p * math.log(p / q) for p, q in zip(pt, ps))
    ce = -math.log(math.exp(1) / (math.exp(1) + 1))
    expected = 0.5 * t * t * kl + 0.5 * ce
    assert kd_loss(student, teacher, labels, t, 0.5).item() == pytest.approx(expected, abs=1e-6)


def test_gradient_flows_to_student_only():
    student = torch.randn(3, 2, requires_grad=True)
    teacher = torch.randn(3, 2, requires_grad=True)
    kd_loss(student, teacher, torch.tensor([0, 1, 0]), 4.0, 0.9).backward()
    assert student.grad is not None and teacher.grad is None


@pytest.mark.parametrize("name", available_methods())
def test_methods_by_name(name):
    method = create_method(name, temperature=4.0, alpha=0.9, student_channels=8, teacher_channels=16)
    s_logits, t_logits = torch.randn(4, 2), torch.randn(4, 2)
    s_feat, t_feat = torch.randn(4, 8, 4, 4, requires_grad=True), torch.randn(4, 16, 7, 7)
    loss = method(s_logits, t_logits, torch.tensor([0, 1, 1, 0]), s_feat, t_feat)
    assert loss.ndim == 0 and torch.isfinite(loss)
    if method.uses_features:
        loss.backward()
        assert s_feat.grad is not None and s_feat.grad.abs().sum() > 0


def test_attention_term_zero_for_same_maps():
    method = create_method("attention")
    features = torch.randn(2, 8, 5, 5)
    assert method.feature_term(features, features * 3).item() == pytest.approx(0.0, abs=1e-6)


def test_unknown_method():
    with pytest.raises(
        ValueError,
        match="unknown distillation method 'hinton'; choose one of: attention, dist, dkd, fitnet, kd, kd_ka, kd_ls",
    ):
        create_method("hinton")


def test_bad_temperature():
    with pytest.raises(ValueError, match="temperature must be > 0"):
        create_method("kd", temperature=0)
