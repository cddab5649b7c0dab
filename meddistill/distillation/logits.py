"""Distillation methods that need only the teacher's logits (so the logits can be cached)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from meddistill.distillation.base import METHODS, Distiller, kd_loss, label_loss


@METHODS.register("kd")
class HintonKD(Distiller):
    """Hinton KD: the softened teacher probabilities plus the labels (see ``kd_loss``); logits can be cached."""


def _blend(student_logits, labels, alpha: float, teacher_term: torch.Tensor, class_weights) -> torch.Tensor:
    """``(1 - alpha) * CE(s, y) + alpha * teacher_term``: every logit method weighs labels and teacher alike."""
    hard = label_loss(student_logits, labels, class_weights)
    return (1 - alpha) * hard + alpha * teacher_term


@METHODS.register("dkd")
class DecoupledKD(Distiller):
    """DKD, Decoupled KD: the target-class and non-target-class parts of the KD loss, weighted apart.

    With ``p = softmax(z / T)`` and the target class ``y``:

    * TCKD = KL(b_t || b_s), ``b = [p_y, 1 - p_y]`` (how sure each model is of the target class);
    * NCKD = KL(q_t || q_s), ``q = softmax`` over the non-target classes only (how the rest is ranked);
    * loss = ``(1 - alpha) * CE + alpha * T^2 * (TCKD + beta * NCKD)``.

    The paper's loss is ``CE + a * TCKD + b * NCKD`` with a = 1, b = 8 (CIFAR-100), up to the scale here: alpha
    = 0.5 gives half of it with a = 1. The paper's 20-epoch warm-up of the KD term is not applied.

    Two classes: there is one non-target class, so ``q`` is 1 for both models and NCKD is exactly 0 (not the
    0 * log 0 = NaN a naive masked softmax gives, the known failure): DKD is then Hinton KD's soft term with the
    labels, whatever beta is. Computed with log-sum-exp throughout, so no NaN or inf for confident models.

    Reference: B. Zhao, Q. Cui, R. Song, Y. Qiu, J. Liang, "Decoupled Knowledge Distillation", CVPR 2022.

    Args: see ``Distiller``; ``beta`` weighs NCKD (default 8).
    """

    multi_label = False  # defined over a softmax: one class per image

    def forward(
        self, student_logits, teacher_logits, labels, student_features=None, teacher_features=None, class_weights=None
    ) -> torch.Tensor:
        t = float(self.temperature)
        target = F.one_hot(labels, student_logits.shape[1]).bool()
        tckd, nckd = _dkd_terms(student_logits / t, teacher_logits.detach() / t, target)
        return _blend(student_logits, labels, self.alpha, t * t * (tckd + self.beta * nckd), class_weights)


def _dkd_terms(s: torch.Tensor, t: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(TCKD, NCKD), each averaged over the batch, from tempered logits (B, K) and the (B, K) target mask."""
    neg = torch.finfo(s.dtype).min

    def binary_log(z: torch.Tensor) -> torch.Tensor:  # (B, 2): log p_y, log (1 - p_y)
        total = torch.logsumexp(z, dim=1)
        rest = torch.logsumexp(z.masked_fill(target, neg), dim=1)
        return torch.stack([(z * target).sum(1) - total, rest - total], dim=1)

    log_bs, log_bt = binary_log(s), binary_log(t)
    tckd = (log_bt.exp() * (log_bt - log_bs)).sum(1).mean()
    log_qs = F.log_softmax(s.masked_fill(target, neg), dim=1)
    log_qt = F.log_softmax(t.masked_fill(target, neg), dim=1)
    nckd = torch.where(target, 0.0, log_qt.exp() * (log_qt - log_qs)).sum(1).mean()
    return tckd, nckd


def _pearson(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Pearson correlation of matching rows of (N, D) tensors -> (N,)."""
    a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1) + eps)


@METHODS.register("dist")
class DIST(Distiller):
    """DIST: match the teacher's relations, not its exact probabilities (Pearson correlation).

    With ``P = softmax(z / T)`` as a (B, K) matrix:

    * inter-class = ``1 - mean_i pearson(P_s[i, :], P_t[i, :])`` (each image's ranking of the classes);
    * intra-class = ``1 - mean_k pearson(P_s[:, k], P_t[:, k])`` (each class's ranking of the images);
    * loss = ``(1 - alpha) * CE + alpha * T^2 * (inter + intra)``.

    Two classes: each row is ``[p, 1 - p]``, so the inter-class correlation is +1 or -1 (the same or the other
    side of 0.5; a small eps keeps ``p = 0.5`` finite) and carries almost no gradient; the intra-class term, the
    ranking of the batch's images, does the work.

    Reference: T. Huang, S. You, F. Wang, C. Qian, C. Xu, "Knowledge Distillation from A Stronger Teacher",
    NeurIPS 2022 (the paper uses T = 1 and equal weights).
    """

    multi_label = False  # defined over a softmax: one class per image

    def forward(
        self, student_logits, teacher_logits, labels, student_features=None, teacher_features=None, class_weights=None
    ) -> torch.Tensor:
        t = float(self.temperature)
        ps, pt = F.softmax(student_logits / t, dim=1), F.softmax(teacher_logits.detach() / t, dim=1)
        inter = 1 - _pearson(ps, pt).mean()
        intra = 1 - _pearson(ps.T, pt.T).mean()
        return _blend(student_logits, labels, self.alpha, t * t * (inter + intra), class_weights)


def standardise(logits: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Z-score each row of (B, K) logits: zero mean, unit (unbiased) standard deviation."""
    return (logits - logits.mean(1, keepdim=True)) / (logits.std(1, keepdim=True) + eps)


@METHODS.register("kd_ls")
class StandardisedKD(Distiller):
    """KD with logit standardisation: Hinton KD on z-scored logits, so the student matches the teacher's
    logit relations rather than their scale.

    loss = ``(1 - alpha) * CE + alpha * T^2 * KL(softmax(Z(t) / T) || softmax(Z(s) / T))`` with
    ``Z(z) = (z - mean(z)) / std(z)`` per image.

    Two classes: the standardised logits are always ``+-1/sqrt(2)`` (unbiased std), so the soft target only says
    which class the teacher ranks first, not how sure it is; expect it to act like label smoothing there.

    Reference: S. Sun, W. Ren, J. Li, R. Wang, X. Cao, "Logit Standardization in Knowledge Distillation",
    CVPR 2024.
    """

    multi_label = False  # defined over a softmax: one class per image

    def forward(
        self, student_logits, teacher_logits, labels, student_features=None, teacher_features=None, class_weights=None
    ) -> torch.Tensor:
        t = float(self.temperature)
        soft = F.kl_div(
            F.log_softmax(standardise(student_logits) / t, dim=1),
            F.log_softmax(standardise(teacher_logits.detach()) / t, dim=1),
            reduction="batchmean",
            log_target=True,
        )
        return _blend(student_logits, labels, self.alpha, t * t * soft, class_weights)


def adjust_teacher(teacher_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The teacher's logits with its wrong answers on the training labels put right, its dark knowledge kept.

    One class per image, (B, K) logits and (B,) labels: where the teacher's top class is not the label, the two logits
    are swapped, so the label becomes the top class and every other class keeps its probability. Several findings,
    (B, K) logits and (B, K) labels (NaN: unknown): a finding the teacher calls on the wrong side of 0.5 has its logit
    negated (``p`` becomes ``1 - p``); unknown findings are left as they are.
    """
    t = teacher_logits.detach()
    if labels.ndim == 2:
        wrong = ~torch.isnan(labels) & ((t > 0) != (labels > 0.5))
        return torch.where(wrong, -t, t)
    top = t.argmax(1, keepdim=True)
    y = labels.view(-1, 1)
    top_value, label_value = t.gather(1, top), t.gather(1, y)
    return t.scatter(1, top, label_value).scatter(1, y, top_value)


@METHODS.register("kd_ka")
class AdjustedKD(Distiller):
    """Hinton KD from a teacher whose wrong answers on the training images are put right (knowledge adjustment).

    Where the teacher's top class is not the label, its logits of the two classes are swapped before the usual KD
    loss (``adjust_teacher``): the student never learns a wrong answer from the teacher, and keeps what the teacher
    says about the other classes. Several findings: a finding the teacher calls wrongly is flipped.

    Reference: T. Wen, S. Lai, X. Qian, "Preparing Lessons: Improve Knowledge Distillation with Better Supervision",
    Neurocomputing 454, 2021 (arXiv:1911.07471), the knowledge adjustment (KA) part.
    """

    def forward(
        self, student_logits, teacher_logits, labels, student_features=None, teacher_features=None, class_weights=None
    ) -> torch.Tensor:
        adjusted = adjust_teacher(teacher_logits, labels)
        return kd_loss(student_logits, adjusted, labels, self.temperature, self.alpha, class_weights)
