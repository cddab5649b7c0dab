"""Distillation methods, selectable by name: ``create_method("kd", ...)``.

Each method is a small ``nn.Module`` whose ``forward`` takes the student's and
the teacher's logits (and, for feature methods, one feature map of each) and
returns the scalar loss to minimise.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from meddistill.registry import Registry

METHODS = Registry("distillation method")


def available_methods() -> list[str]:
    """Registered distillation method names."""
    return METHODS.available()


def create_method(name: str, **kwargs) -> "Distiller":
    """Build a registered distillation method (see each class for its arguments)."""
    return METHODS.create(name, **kwargs)


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor, temperature: float, alpha: float, class_weights: torch.Tensor | None = None) -> torch.Tensor:
    """Hinton knowledge distillation loss.

    ``alpha * T^2 * KL(softmax(t / T) || softmax(s / T)) + (1 - alpha) * CE(s, y)``

    The ``T^2`` factor keeps the soft term's gradients on the scale of the hard
    term's when ``T`` changes. KL is averaged over the batch (``batchmean``).

    Reference: G. Hinton, O. Vinyals, J. Dean, "Distilling the Knowledge in a
    Neural Network", NIPS Deep Learning Workshop, 2015 (arXiv:1503.02531).

    Args:
        student_logits: (B, K) student outputs.
        teacher_logits: (B, K) teacher outputs (no gradient needed).
        labels: (B,) integer classes.
        temperature: Softmax temperature T > 0.
        alpha: Weight of the soft term in [0, 1].
        class_weights: Optional (K,) weights of the cross-entropy term.

    Returns:
        Scalar loss.
    """
    hard = F.cross_entropy(student_logits, labels, weight=class_weights)
    if alpha == 0:
        return hard
    t = float(temperature)
    soft = F.kl_div(
        F.log_softmax(student_logits / t, dim=1),
        F.log_softmax(teacher_logits.detach() / t, dim=1),
        reduction="batchmean",
        log_target=True,
    )
    return alpha * t * t * soft + (1 - alpha) * hard


class Distiller(nn.Module):
    """Base: Hinton KD on the logits, plus an optional feature term in subclasses.

    Args:
        temperature: KD temperature T.
        alpha: Weight of the soft term.
        feature_weight: Weight beta of the feature term (feature methods only).
        student_channels: Channels of the student's feature map (feature methods).
        teacher_channels: Channels of the teacher's feature map (feature methods).
    """

    uses_features = False

    def __init__(self, temperature: float = 4.0, alpha: float = 0.5, feature_weight: float = 100.0, student_channels: int = 0, teacher_channels: int = 0) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if not 0 <= alpha <= 1:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        self.temperature, self.alpha, self.feature_weight = temperature, alpha, feature_weight

    def feature_term(self, student_features: torch.Tensor, teacher_features: torch.Tensor) -> torch.Tensor:
        """Feature distance; (B, Cs, Hs, Ws) and (B, Ct, Ht, Wt) -> scalar."""
        raise NotImplementedError

    def forward(self, student_logits, teacher_logits, labels, student_features=None, teacher_features=None, class_weights=None) -> torch.Tensor:
        loss = kd_loss(student_logits, teacher_logits, labels, self.temperature, self.alpha, class_weights)
        if self.uses_features:
            loss = loss + self.feature_weight * self.feature_term(student_features, teacher_features.detach())
        return loss


@METHODS.register("kd")
class HintonKD(Distiller):
    """Plain Hinton KD (see ``kd_loss``); teacher logits can be cached."""


def attention_map(features: torch.Tensor) -> torch.Tensor:
    """Spatial attention of Zagoruyko & Komodakis: L2-normalised mean of squared activations.

    Args:
        features: (B, C, H, W).

    Returns:
        (B, H*W) unit-norm attention vectors.
    """
    return F.normalize(features.float().pow(2).mean(1).flatten(1), dim=1)


@METHODS.register("attention")
class AttentionTransfer(Distiller):
    """KD plus attention transfer on the last convolutional block.

    ``loss = KD + beta * mean_b || a_s / |a_s| - a_t / |a_t| ||^2`` with
    ``a = mean_c(F^2)``; the teacher's map is resized to the student's.

    Reference: S. Zagoruyko, N. Komodakis, "Paying More Attention to Attention",
    ICLR 2017 (arXiv:1612.03928).
    """

    uses_features = True

    def feature_term(self, student_features, teacher_features):
        if teacher_features.shape[-2:] != student_features.shape[-2:]:
            teacher_features = F.adaptive_avg_pool2d(teacher_features, student_features.shape[-2:])
        return (attention_map(student_features) - attention_map(teacher_features)).pow(2).sum(1).mean()


@METHODS.register("fitnet")
class FitNetHint(Distiller):
    """KD plus a FitNets hint: a 1x1 conv regressor maps the student's features to the teacher's.

    ``loss = KD + beta * MSE(r(F_s), F_t)``, the teacher's map pooled to the
    student's resolution. The regressor is trained with the student.

    Reference: A. Romero et al., "FitNets: Hints for Thin Deep Nets", ICLR 2015
    (arXiv:1412.6550).
    """

    uses_features = True

    def __init__(self, *args, student_channels: int = 0, teacher_channels: int = 0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if student_channels <= 0 or teacher_channels <= 0:
            raise ValueError("fitnet needs student_channels and teacher_channels")
        self.regressor = nn.Conv2d(student_channels, teacher_channels, kernel_size=1, bias=False)

    def feature_term(self, student_features, teacher_features):
        if teacher_features.shape[-2:] != student_features.shape[-2:]:
            teacher_features = F.adaptive_avg_pool2d(teacher_features, student_features.shape[-2:])
        return F.mse_loss(self.regressor(student_features).float(), teacher_features.float()) / 100.0
