"""What the distilled student learns from (``distil_from``): the teacher, or the teacher and the student trained
from scratch together, their logits averaged.

Averaged logits are a legitimate teacher (an ensemble's softmax is the normalised geometric mean of its members'
probabilities), and an ensemble of two different models is usually better than either (born-again networks,
Furlanello et al. 2018, distil a student from models of its own size). It pays where the teacher is only level with
the scratch student: the student then learns from what both know instead of from the teacher's mistakes alone. It is
used with the logit methods only (feature methods need one teacher's feature maps).
"""

from __future__ import annotations

import torch
from torch import nn

TEACHER = "teacher"  # the teacher alone
ENSEMBLE = "ensemble"  # the teacher and the scratch student, logits averaged
AUTO = "auto"  # the ensemble when the teacher is not better than the scratch student on val, else the teacher
DISTIL_FROM = (TEACHER, ENSEMBLE, AUTO)


class AveragedTeacher(nn.Module):
    """A teacher whose logits are the mean of its members' logits.

    Args:
        members: Trained models with the same input and the same K outputs.
    """

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.arch = " + ".join(str(getattr(m, "arch", type(m).__name__)) for m in members)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) images -> (B, K) averaged logits."""
        return torch.stack([member(images) for member in self.members]).mean(dim=0)


def mean_logits(logits: list[torch.Tensor]) -> torch.Tensor:
    """The ensemble's logits from its members' cached ones: each (N, K) -> (N, K)."""
    return torch.stack(logits).mean(dim=0)
