"""A teacher made of several small CNNs trained side by side, their logits averaged.

An ensemble of independently trained networks is the teacher of Hinton et al. (2015): averaged logits are a
legitimate teacher, usually better calibrated and more accurate than any member. The members are trained in one
run, on the same batches, each with its own loss (``member_losses``: training the averaged output instead makes
the members collude, Jeffares et al. 2023), so they differ by their initialisation and dropout draws, the
diversity deep ensembles rely on (Fort et al. 2019). Not a default: on the blood cells (seed 0, 64 px, 2 cores
held to AVX2) four TinyCNNs trained so reached val AUC 0.9928 after 26 epochs against 0.9936 for one TinyCNN
trained alone in that run: no gain observed, for four times the compute (one seed; docs/benchmarks.md, section 11).

Grad-CAM and feature distillation hook ``features``: every member's last feature maps side by side,
(B, M x 96, h, w), so a map over them is the ensemble's: the gradient of the averaged logit weighs each member's
channels by 1/M, and the ReLU applies to the mean of the members' raw maps.
"""

from __future__ import annotations

import torch
from torch import nn

from meddistill.models.registry import MODELS
from meddistill.models.students import TinyCNN


class _SideBySide(nn.Module):
    """Runs each branch on the same input and concatenates their outputs along the channels."""

    def __init__(self, branches: list[nn.Module]) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, S, S) -> (B, M x F, h, w)."""
        return torch.cat([branch(images) for branch in self.branches], dim=1)


class CNNEnsemble(nn.Module):
    """``members`` TinyCNNs (``meddistill.models.students``) whose logits are averaged.

    In training mode the forward also keeps each member's logits, which ``member_losses`` hands to the loss (the
    training engine reads it), so every member learns from the labels alone.

    Args:
        num_classes: K outputs.
        in_channels: C input channels.
        image_size: S, the training side.
        members: M, how many CNNs.
    """

    def __init__(self, num_classes: int, in_channels: int, image_size: int, members: int = 4) -> None:
        super().__init__()
        cnns = [TinyCNN(num_classes, in_channels, image_size) for _ in range(members)]
        self.features = _SideBySide([cnn.features for cnn in cnns])
        self.heads = nn.ModuleList([nn.Sequential(cnn.pool, cnn.classifier) for cnn in cnns])
        self.width = cnns[0].classifier[-1].in_features
        self._members: list[torch.Tensor] | None = None

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Map images (B, C, S, S) to the members' averaged logits (B, K)."""
        maps = self.features(images).split(self.width, dim=1)
        logits = [head(part) for head, part in zip(self.heads, maps)]
        self._members = logits if self.training and torch.is_grad_enabled() else None  # only for a loss to read
        return torch.stack(logits).mean(dim=0)

    def member_losses(self, loss) -> torch.Tensor | None:
        """The mean of ``loss(member_logits)`` over the members of the last training forward (each (B, K)), or
        None when the last forward was in eval mode; the members' logits are released."""
        members, self._members = self._members, None
        return None if members is None else torch.stack([loss(logits) for logits in members]).mean()


@MODELS.register("tiny_cnn_x4", role="teacher", target_layer="features")
def _tiny_cnn_x4(num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    return CNNEnsemble(num_classes, in_channels, image_size, members=4)
