"""Distillation methods that need only the teacher's logits (so the logits can be cached)."""

from __future__ import annotations

from meddistill.distillation.base import METHODS, Distiller


@METHODS.register("kd")
class HintonKD(Distiller):
    """Plain Hinton KD (see ``kd_loss``); teacher logits can be cached."""
