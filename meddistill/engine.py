"""The training loop: one model, one split, with progress, cancel, best-checkpoint and resume.

``fit`` trains a teacher or a student from scratch with cross-entropy, or a
student by distillation when given a teacher and a method. It keeps the
weights of the epoch with the best validation AUC (not the last epoch), stops
early after ``patience`` epochs without improvement, reports every batch and
epoch through ``callback`` and stops within one batch when ``should_stop()``
turns true. With ``checkpoint_dir`` it saves its state after every epoch and
resumes from the last completed one.
"""

from __future__ import annotations

import errno
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from meddistill.checkpoint import load_checkpoint, save_checkpoint
from meddistill.data.tensors import Batches, augment
from meddistill.distributed import gather_predictions
from meddistill.errors import Cancelled, TrainingError
from meddistill.evaluate import auc_score
from meddistill.models import target_module


@dataclass
class Progress:
    """One progress report. ``kind`` is "batch" (``loss`` = batch loss) or "epoch" (train loss + val metrics)."""

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


@dataclass
class FitResult:
    """What ``fit`` returns: the best weights and the per-epoch history."""

    best_state: dict[str, torch.Tensor]
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    seconds: float = 0.0
    stopped_early: bool = False


class FeatureHook:
    """Keeps the latest output of one module (for feature distillation)."""

    def __init__(self, module: nn.Module) -> None:
        self.output: torch.Tensor | None = None
        self.handle = module.register_forward_hook(self._keep)

    def _keep(self, module, inputs, output) -> None:
        self.output = output

    def remove(self) -> None:
        self.handle.remove()


@torch.no_grad()
def teacher_logits(teacher: nn.Module, batches: Batches, device: torch.device, batch_size: int = 256, indices: torch.Tensor | None = None) -> torch.Tensor:
    """The teacher's logits for a split, in split order: (N, K) float32 on CPU.

    With ``indices`` only those rows are computed (a rank's shard); the rest stay 0.
    """
    teacher.eval()
    out = torch.empty(len(batches), 0)
    for images, _, index in batches.iterate(batch_size, indices):
        with _autocast(device):
            logits = teacher(images.to(device, non_blocking=True)).float().cpu()
        if out.shape[1] == 0:
            out = torch.zeros(len(batches), logits.shape[1])
        out[index] = logits
    return out


def _autocast(device: torch.device):
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)


@torch.no_grad()
def _validate(model: nn.Module, val: Batches, device: torch.device) -> tuple[float, float, float]:
    """(loss, accuracy, AUC) on a split; under torchrun each rank predicts a shard and all are gathered."""
    probs = gather_predictions(model, val, device)
    labels = val.split.labels
    loss = float(-np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, None)).mean())
    return loss, float((probs.argmax(1) == labels).mean()), auc_score(labels, probs)


def _moving_average(model: nn.Module, decay: float) -> torch.optim.swa_utils.AveragedModel:
    """An exponential moving average of ``model``'s parameters and buffers, with a warm-up of the decay."""

    @torch.no_grad()
    def blend(averages: list[torch.Tensor], currents: list[torch.Tensor], steps: torch.Tensor) -> None:
        weight = min(decay, (1 + int(steps)) / (10 + int(steps)))  # one read of the step count per device and dtype, not per tensor
        for average, current in zip(averages, currents):
            average.copy_(average * weight + current * (1 - weight))

    return torch.optim.swa_utils.AveragedModel(model, multi_avg_fn=blend, use_buffers=True)


def class_weights_for(labels: np.ndarray, num_classes: int) -> torch.Tensor:
    """Inverse-frequency weights (K,), normalised to mean 1."""
    counts = np.bincount(labels, minlength=num_classes).astype(float)
    weights = counts.sum() / np.maximum(counts, 1) / num_classes
    return torch.tensor(weights / weights.mean(), dtype=torch.float32)


def fit(
    model: nn.Module,
    train: Batches,
    val: Batches,
    *,
    role: str,
    epochs: int,
    lr: float,
    weight_decay: float = 1e-4,
    batch_size: int = 128,
    device: torch.device | str = "cpu",
    seed: int = 0,
    patience: int = 8,
    augment_images: bool = False,
    class_weights: torch.Tensor | None = None,
    teacher: nn.Module | None = None,
    method: nn.Module | None = None,
    callback: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    checkpoint_dir: str | Path | None = None,
    shard: tuple[int, int] = (0, 1),
    ema_decay: float = 0.0,
) -> FitResult:
    """Train ``model`` and return its best validation weights.

    Args:
        model: Network mapping (B, C, S, S) to logits (B, K); moved to ``device``.
        train: Training batches.
        val: Validation batches (best epoch = highest val AUC, ties to the earlier).
        role: Name in progress reports and checkpoints ("teacher", "student_kd").
        epochs: Maximum number of epochs.
        lr: Peak AdamW learning rate (cosine decay per step).
        weight_decay: AdamW weight decay.
        batch_size: Images per step.
        device: Where to train; CUDA uses bf16 autocast and channels-last.
        seed: Seeds the initial batch order and augmentation.
        patience: Stop after this many epochs without a better val AUC.
        augment_images: Random affine and intensity jitter on train batches.
        class_weights: Optional (K,) cross-entropy weights.
        teacher: Trained teacher; with ``method``, the student is distilled.
        method: A ``Distiller`` (see ``meddistill.distill``).
        callback: Receives a ``Progress`` after every batch and epoch.
        should_stop: Polled before every batch; true raises ``Cancelled``.
        checkpoint_dir: If set, state is saved after every epoch and resumed from.
        shard: (rank, world size): this process trains on every world-th image.
        ema_decay: If above 0, validate and keep an exponential moving average
            of the weights (and batch-norm statistics) instead of the raw
            weights; the decay warms up as ``min(ema_decay, (1 + n) / (10 + n))``
            after ``n`` steps, as in timm's ``ModelEmaV3``.

    Raises:
        Cancelled: ``should_stop()`` became true.
        TrainingError: NaN/inf loss, out of memory or a full disk.
    """
    device = torch.device(device)
    cuda = device.type == "cuda"
    model.to(device, memory_format=torch.channels_last if cuda else torch.contiguous_format)
    distilling = teacher is not None and method is not None
    params = list(model.parameters()) + (list(method.parameters()) if distilling else [])
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    generator = torch.Generator().manual_seed(seed)
    weights = class_weights.to(device) if class_weights is not None else None

    rank, world = shard
    partition = torch.arange(len(train))
    if world > 1:  # a fixed shard per rank, shuffled within, so cached teacher logits cover it
        partition = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed + 7919))
        partition = torch.cat([partition, partition[: (-len(partition)) % world]])[rank::world]
    net = nn.parallel.DistributedDataParallel(model) if world > 1 else model
    cached = None
    hooks: list[FeatureHook] = []
    if distilling:
        method.to(device)
        teacher.to(device).eval()
        if method.uses_features:
            hooks = [FeatureHook(target_module(model)), FeatureHook(target_module(teacher))]
        elif not augment_images:
            cached = teacher_logits(teacher, train, device, indices=partition)

    averaged = _moving_average(model, ema_decay) if ema_decay > 0 else None
    evaluated = averaged.module if averaged is not None else model
    result = FitResult(best_state={k: v.detach().cpu().clone() for k, v in model.state_dict().items()})
    best_score, bad_epochs, start_epoch = -math.inf, 0, 1
    if checkpoint_dir is not None:
        resumed = load_checkpoint(Path(checkpoint_dir), role, model, optimizer, generator, method if distilling else None, averaged)
        if resumed is not None:
            result.best_state, result.history = resumed["best_state"], resumed["history"]
            best_score, bad_epochs, result.best_epoch = resumed["best_score"], resumed["bad_epochs"], resumed["best_epoch"]
            start_epoch = resumed["epoch"] + 1
            result.seconds = resumed["seconds"]
            if resumed.get("stopped_early"):
                start_epoch = epochs + 1

    per_epoch = math.ceil(len(partition) / batch_size)
    total_steps = epochs * per_epoch
    started = time.perf_counter() - result.seconds
    done_steps = (start_epoch - 1) * per_epoch
    try:
        for epoch in range(start_epoch, epochs + 1):
            model.train()
            torch.manual_seed(seed * 100_003 + epoch)  # dropout draws: the same whether or not the run was resumed
            order = partition[torch.randperm(len(partition), generator=generator)]
            running, seen = 0.0, 0
            for batch, (images, labels, index) in enumerate(train.iterate(batch_size, order), start=1):
                if should_stop is not None and should_stop():
                    raise Cancelled(role)
                images = images.to(device, non_blocking=True)
                if cuda:
                    images = images.contiguous(memory_format=torch.channels_last)
                labels = labels.to(device, non_blocking=True)
                if augment_images:
                    images = augment(images, generator)
                step = (epoch - 1) * per_epoch + batch - 1
                for group in optimizer.param_groups:
                    group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / max(total_steps, 1)))
                with _autocast(device):
                    logits = net(images)
                    if not distilling:
                        loss = F.cross_entropy(logits.float(), labels, weight=weights)
                    else:
                        if cached is not None:
                            t_logits = cached[index].to(device)
                        else:
                            with torch.no_grad():
                                t_logits = teacher(images)
                        features = (hooks[0].output, hooks[1].output) if hooks else (None, None)
                        loss = method(logits.float(), t_logits.float(), labels, *features, class_weights=weights)
                if not torch.isfinite(loss):
                    raise TrainingError(f"The {role} loss became {loss.item()} at epoch {epoch}, batch {batch}; lower the learning rate (now {lr:g}) or check the images for extreme values.")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if averaged is not None:
                    averaged.update_parameters(model)
                running += loss.item() * len(labels)
                seen += len(labels)
                done_steps += 1
                if callback is not None:
                    elapsed = time.perf_counter() - started
                    eta = elapsed / max(done_steps, 1) * (total_steps - done_steps)
                    callback(Progress(role, "batch", epoch, epochs, batch, per_epoch, loss.item(), elapsed, eta))
            if world > 1:  # batch-norm statistics: every rank evaluates (and rank 0 saves) rank 0's
                for buffer in evaluated.buffers():
                    torch.distributed.broadcast(buffer, src=0)
            val_loss, val_acc, val_auc = _validate(evaluated, val, device)
            score = val_auc if not math.isnan(val_auc) else val_acc
            if score > best_score:
                best_score, bad_epochs, result.best_epoch = score, 0, epoch
                result.best_state = {k: v.detach().cpu().clone() for k, v in evaluated.state_dict().items()}
            else:
                bad_epochs += 1
            elapsed = time.perf_counter() - started
            result.history.append({"epoch": epoch, "train_loss": running / max(seen, 1), "val_loss": val_loss, "val_acc": val_acc, "val_auc": val_auc, "seconds": elapsed})
            result.stopped_early = bad_epochs >= patience
            result.seconds = elapsed
            if checkpoint_dir is not None:
                state = {"epoch": epoch, "best_score": best_score, "bad_epochs": bad_epochs, "best_epoch": result.best_epoch, "history": result.history, "seconds": elapsed, "stopped_early": result.stopped_early}
                save_checkpoint(Path(checkpoint_dir), role, model, optimizer, generator, result.best_state, state, method if distilling else None, averaged)
            if callback is not None:
                eta = elapsed / max(done_steps, 1) * (total_steps - done_steps)
                callback(Progress(role, "epoch", epoch, epochs, per_epoch, per_epoch, result.history[-1]["train_loss"], elapsed, eta, val_loss, val_acc, val_auc))
            if result.stopped_early:
                break
    except torch.cuda.OutOfMemoryError:
        raise TrainingError(f"The GPU ran out of memory training the {role}; lower the batch size (now {batch_size}) or the image size.") from None
    except OSError as error:
        if error.errno == errno.ENOSPC:
            raise TrainingError(f"The disk is full ({error.filename or 'run folder'}); free some space and resume the run.") from None
        raise
    finally:
        for hook in hooks:
            hook.remove()
    model.load_state_dict(result.best_state)
    return result
