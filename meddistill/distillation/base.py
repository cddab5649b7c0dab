"""The distillation-method registry and the shared skeleton: Hinton KD plus an optional feature term.

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


def logit_methods() -> list[str]:
    """Registered methods that need only the teacher's outputs (no feature maps): the ones any teacher can teach."""
    return [name for name in available_methods() if not METHODS.entry(name).factory.uses_features]


def method_summary(name: str) -> str:
    """The first line of a registered method's docstring ("Plain Hinton KD ...")."""
    doc = METHODS.entry(name).factory.__doc__ or name
    return doc.strip().splitlines()[0]


def methods_for(task: str) -> list[str]:
    """The registered methods that work for ``task`` (``multi_label``: those whose ``multi_label`` is true)."""
    return [name for name in available_methods() if task != "multi_label" or METHODS.entry(name).factory.multi_label]


def create_method(name: str, **kwargs) -> "Distiller":
    """Build a registered distillation method (see each class for its arguments)."""
    return METHODS.create(name, **kwargs)


def label_loss(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """The loss on the labels: cross-entropy for (B,) classes (``weights``: (K,) class weights), or for (B, K)
    findings the binary cross-entropy of each finding averaged over the labels that count (NaN: ignored), with
    ``weights`` as the (K,) positive weights."""
    if labels.ndim == 1:
        return F.cross_entropy(logits, labels, weight=weights)
    known = ~torch.isnan(labels)
    targets = torch.where(known, labels, torch.zeros_like(labels))
    each = F.binary_cross_entropy_with_logits(logits, targets, pos_weight=weights, reduction="none")
    return (each * known).sum() / known.sum().clamp(min=1)


def bernoulli_kd(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Distillation per finding: ``T^2`` times the KL divergence between the teacher's and the student's tempered
    Bernoulli outputs, ``KL(Ber(sigmoid(t / T)) || Ber(sigmoid(s / T)))``, averaged over images and findings.

    Args:
        student_logits: (B, K) student outputs.
        teacher_logits: (B, K) teacher outputs (no gradient needed).
        temperature: T > 0.
    """
    t = float(temperature)
    s, q = student_logits / t, teacher_logits.detach() / t
    p = torch.sigmoid(q)
    # KL = p (log p - log s') + (1 - p) (log(1 - p) - log(1 - s')), with log-sigmoids for stability
    kl = p * (F.logsigmoid(q) - F.logsigmoid(s)) + (1 - p) * (F.logsigmoid(-q) - F.logsigmoid(-s))
    return t * t * kl.mean()


def kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    temperature: float,
    alpha: float,
    class_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Hinton knowledge distillation loss.

    ``alpha * T^2 * KL(softmax(t / T) || softmax(s / T)) + (1 - alpha) * CE(s, y)``

    The ``T^2`` factor keeps the soft term's gradients on the scale of the hard
    term's when ``T`` changes. KL is averaged over the batch (``batchmean``).

    Reference: G. Hinton, O. Vinyals, J. Dean, "Distilling the Knowledge in a
    Neural Network", NIPS Deep Learning Workshop, 2015 (arXiv:1503.02531).

    Args:
        student_logits: (B, K) student outputs.
        teacher_logits: (B, K) teacher outputs (no gradient needed).
        labels: (B,) integer classes, or (B, K) findings (then the terms are ``label_loss`` and ``bernoulli_kd``).
        temperature: Softmax temperature T > 0.
        alpha: Weight of the soft term in [0, 1].
        class_weights: Optional (K,) weights of the cross-entropy term (findings: positive weights).

    Returns:
        Scalar loss.
    """
    hard = label_loss(student_logits, labels, class_weights)
    if alpha == 0:
        return hard
    if labels.ndim == 2:
        return alpha * bernoulli_kd(student_logits, teacher_logits, temperature) + (1 - alpha) * hard
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
        feature_weight: Weight of the feature term (feature methods only).
        student_channels: Channels of the student's feature map (feature methods).
        teacher_channels: Channels of the teacher's feature map (feature methods).
        beta: Weight of DKD's non-target term (DKD only).
    """

    uses_features = False
    multi_label = True  # works with several findings per image (sigmoid outputs); False: one class per image only

    def __init__(
        self,
        temperature: float = 4.0,
        alpha: float = 0.5,
        feature_weight: float = 100.0,
        student_channels: int = 0,
        teacher_channels: int = 0,
        beta: float = 8.0,
    ) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if not 0 <= alpha <= 1:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        self.temperature, self.alpha, self.feature_weight, self.beta = temperature, alpha, feature_weight, beta

    def feature_term(self, student_features: torch.Tensor, teacher_features: torch.Tensor) -> torch.Tensor:
        """Feature distance; (B, Cs, Hs, Ws) and (B, Ct, Ht, Wt) -> scalar."""
        raise NotImplementedError

    def forward(
        self, student_logits, teacher_logits, labels, student_features=None, teacher_features=None, class_weights=None
    ) -> torch.Tensor:
        loss = kd_loss(student_logits, teacher_logits, labels, self.temperature, self.alpha, class_weights)
        if self.uses_features:
            loss = loss + self.feature_weight * self.feature_term(student_features, teacher_features.detach())
        return loss
