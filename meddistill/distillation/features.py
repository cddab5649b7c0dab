"""Distillation methods with a feature term on the last convolutional block (the teacher runs every batch)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from meddistill.distillation.base import METHODS, Distiller


def pooled_like(teacher_features: torch.Tensor, student_features: torch.Tensor) -> torch.Tensor:
    """The teacher's maps (B, C_t, H, W) or (B, C_t, D, H, W) average-pooled to the student's resolution."""
    size = student_features.shape[2:]
    if teacher_features.shape[2:] == size:
        return teacher_features
    pool = F.adaptive_avg_pool3d if teacher_features.dim() == 5 else F.adaptive_avg_pool2d
    return pool(teacher_features, size)


def attention_map(features: torch.Tensor) -> torch.Tensor:
    """Spatial attention of Zagoruyko & Komodakis: L2-normalised mean of squared activations.

    Args:
        features: (B, C, H, W), or (B, C, D, H, W) for volumes.

    Returns:
        (B, H*W) (or (B, D*H*W)) unit-norm attention vectors.
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
        teacher_features = pooled_like(teacher_features, student_features)
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
        teacher_features = pooled_like(teacher_features, student_features)
        if student_features.dim() == 5:  # a volume's maps: the 1x1 regressor is pointwise, so fold D into H
            b, c, d, h, w = student_features.shape
            hinted = self.regressor(student_features.reshape(b, c, d * h, w)).reshape(b, -1, d, h, w)
        else:
            hinted = self.regressor(student_features)
        return F.mse_loss(hinted.float(), teacher_features.float()) / 100.0
