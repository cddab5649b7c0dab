"""Distillation methods that need only the teacher's logits (so the logits can be cached)."""

from __future__ import annotations

from meddistill.distillation.base import METHODS, Distiller


@METHODS.register("kd")
class HintonKD(Distiller):
    """Hinton KD: the softened teacher probabilities plus the labels (see ``kd_loss``); logits can be cached."""
