"""What a training run is given and what it reports: settings, progress events and the result."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch


@dataclass
class FitSettings:
    """How ``fit`` trains one model.

    The run-level ``RunConfig`` is turned into one of these per model by the pipeline.
    """

    epochs: int  # maximum number of epochs
    lr: float = 2e-3  # peak AdamW learning rate (cosine decay per step)
    weight_decay: float = 1e-4  # AdamW weight decay
    batch_size: int = 128  # images per step (per process under torchrun)
    device: torch.device | str = "cpu"  # CUDA trains with bf16 autocast
    channels_last: bool = True  # NHWC memory format for models and batches (faster convolutions on CPU and GPU)
    seed: int = 0  # seeds the batch order, augmentation and dropout draws
    patience: int = 8  # stop after this many epochs without a better val score
    min_delta: float = 0.0  # ... better by at least this much (``meddistill.training.stopping``)
    augment: bool = False  # random affine and intensity jitter on the train batches
    class_weights: torch.Tensor | None = None  # optional (K,) class weights of the label loss
    loss: Callable[..., torch.Tensor] | None = None  # (logits, labels, weights) -> loss; None: cross-entropy
    activation: Callable | None = None  # logits -> probabilities on val (the task's; None: softmax)
    scores: Callable | None = None  # (labels, probs) -> (loss, acc, auc, balanced acc) on val (the task's)
    ema_decay: float = 0.0  # > 0: validate and keep an exponential moving average of the weights
    checkpoint_dir: str | Path | None = None  # save state after epochs (see below) and resume from it
    checkpoint_seconds: float = 30.0  # save after the first epoch, then at most this often, and after the last one
    shard: tuple[int, int] = (0, 1)  # (rank, world size): this process trains on every world-th image


@dataclass
class Progress:
    """One progress report. ``kind`` is "batch" (``loss`` = batch loss) or "epoch" (train loss + val metrics).

    An "epoch" report carries the whole history so far (``FitResult.history``),
    so listeners keep it as it is instead of rebuilding it.
    """

    role: str
    kind: str
    epoch: int
    epochs: int
    batch: int
    batches: int
    loss: float
    elapsed: float
    eta: float
    val_loss: float | None = None
    val_acc: float | None = None
    val_auc: float | None = None
    history: list[dict] | None = None


@dataclass
class FitResult:
    """What ``fit`` returns: the best weights, the per-epoch history and the epoch they came from.

    ``history`` rows are ``{epoch, train_loss, val_loss, val_acc, val_auc, seconds}``.
    """

    best_state: dict[str, torch.Tensor]
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    seconds: float = 0.0
    stopped_early: bool = False
