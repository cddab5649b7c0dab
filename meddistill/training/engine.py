"""The training loop: one model, one split, with progress, cancel, best-checkpoint and resume.

``fit`` trains a teacher or a student from scratch with cross-entropy (an ensemble's members each on their own,
``member_losses``), or a student by distillation when given a teacher and a method. It keeps the
weights of the epoch with the best validation AUC (not the last epoch) among the epochs whose validation
balanced accuracy has not collapsed, stops early after ``patience`` epochs without an improvement of at least
``min_delta`` (both rules: ``meddistill.training.stopping``),
reports every batch and epoch through ``callback`` and stops within one batch when ``should_stop()``
turns true. With ``checkpoint_dir`` it saves its state after the first epoch, then
at most every ``checkpoint_seconds`` and after the last epoch, and resumes from the last saved one.

The loop itself is ``fit``; each step it takes (the loss of a batch, one epoch,
the end of an epoch, resume) is a method of ``_Fit``, which holds the state.
"""

from __future__ import annotations

import errno
import math
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from meddistill.data.tensors import Batches, augment
from meddistill.errors import Cancelled, TrainingError
from meddistill.evaluation.metrics import auc_score
from meddistill.models.registry import target_module
from meddistill.training.averaging import moving_average
from meddistill.training.checkpoint import load_checkpoint, save_checkpoint
from meddistill.training.distributed import gather_predictions
from meddistill.training.state import FitResult, FitSettings, Progress
from meddistill.training.stopping import BestEpoch
from meddistill.training.teacher import FeatureHook, autocast, teacher_logits

Callback = Callable[[Progress], None]


def balanced_accuracy(labels: np.ndarray, probs: np.ndarray) -> float:
    """Mean recall over the classes present in ``labels`` ((N,) classes, (N, K) probabilities)."""
    predicted = probs.argmax(1)
    recalls = [float((predicted[labels == c] == c).mean()) for c in np.unique(labels)]
    return float(np.mean(recalls)) if recalls else float("nan")


def fit(
    model: nn.Module,
    train: Batches,
    val: Batches,
    settings: FitSettings,
    *,
    role: str,
    teacher: nn.Module | None = None,
    method: nn.Module | None = None,
    callback: Callback | None = None,
    should_stop: Callable[[], bool] | None = None,
    logits: torch.Tensor | None = None,
) -> FitResult:
    """Train ``model`` and return its best validation weights (also loaded into ``model``).

    Args:
        model: Network mapping (B, C, S, S) to logits (B, K); moved to ``settings.device``.
        train: Training batches.
        val: Validation batches (best epoch = highest val AUC, ties to the earlier, among the epochs whose val
            balanced ACC is within ``stopping.ACC_TOLERANCE`` of the best so far).
        settings: Epochs, learning rate, batch size, seed, augmentation... (see ``FitSettings``).
        role: Name in progress reports and checkpoints ("teacher", "student_kd").
        teacher: Trained teacher; with ``method``, the student is distilled.
        method: A ``Distiller`` (see ``meddistill.distillation``).
        callback: Receives a ``Progress`` after every batch and epoch.
        should_stop: Polled before every batch; true raises ``Cancelled``.
        logits: The teacher's logits (N, K) for every train image, in split order, if already computed
            (logit methods without augmentation; otherwise they are computed here).

    Raises:
        Cancelled: ``should_stop()`` became true.
        TrainingError: NaN/inf loss, out of memory or a full disk.
    """
    run = _Fit(model, train, settings, role, teacher, method, logits)
    try:
        run.resume()
        for epoch in range(run.start_epoch, settings.epochs + 1):
            train_loss = run.train_epoch(epoch, callback, should_stop)
            run.end_of_epoch(epoch, train_loss, val, callback)
            if run.result.stopped_early:
                break
    except torch.cuda.OutOfMemoryError:
        raise TrainingError(
            f"The GPU ran out of memory training the {role}; "
            f"lower the batch size (now {settings.batch_size}) or the image size."
        ) from None
    except OSError as error:
        if error.errno == errno.ENOSPC:
            where = error.filename or "run folder"
            raise TrainingError(f"The disk is full ({where}); free some space and resume the run.") from None
        raise
    finally:
        run.close()
    model.load_state_dict(run.result.best_state)
    return run.result


def _validate(
    model: nn.Module, val: Batches, device: torch.device, settings: FitSettings | None = None
) -> tuple[float, float, float, float]:
    """(loss, accuracy, AUC, balanced accuracy) on a split (the task's ``settings.scores`` when given: macro AUC and
    the mean balanced accuracy over findings for several findings per image); under torchrun each rank predicts a
    shard and all are gathered."""
    activation = settings.activation if settings is not None else None
    probs = gather_predictions(model, val, device, activation)
    labels = val.split.labels
    if settings is not None and settings.scores is not None:
        return settings.scores(labels, probs)
    loss = float(-np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, None)).mean())
    accuracy = float((probs.argmax(1) == labels).mean())
    return loss, accuracy, auc_score(labels, probs), balanced_accuracy(labels, probs)


def _eta(elapsed: float, done: int, total: int) -> float:
    """Seconds left at the average pace so far."""
    return elapsed / max(done, 1) * (total - done)


class _Fit:
    """The state of one ``fit``: optimizer, batch order, teacher signal, moving average, best epoch."""

    def __init__(self, model, train, settings: FitSettings, role, teacher, method, logits=None) -> None:
        self.model, self.train, self.settings, self.role = model, train, settings, role
        self.device = torch.device(settings.device)
        # Channels-last on both devices: 10-20% faster convolutions on CPU too (docs/benchmarks.md, section 0).
        last = torch.channels_last_3d if getattr(model, "spatial_dims", 2) == 3 else torch.channels_last
        self.memory_format = last if settings.channels_last else torch.contiguous_format
        model.to(self.device, memory_format=self.memory_format)
        self.teacher, self.method = (teacher, method) if teacher is not None and method is not None else (None, None)
        params = list(model.parameters()) + (list(self.method.parameters()) if self.method is not None else [])
        self.optimizer = torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)
        self.generator = torch.Generator().manual_seed(settings.seed)
        self.weights = settings.class_weights.to(self.device) if settings.class_weights is not None else None
        self.partition = self._partition(len(train), settings)
        self.world = settings.shard[1]
        self.net = nn.parallel.DistributedDataParallel(model) if self.world > 1 else model
        self.cached, self.hooks = self._teacher_signal(logits)
        self.averaged = moving_average(model, settings.ema_decay) if settings.ema_decay > 0 else None
        self.evaluated = self.averaged.module if self.averaged is not None else model
        self.result = FitResult(best_state=_cpu_copy(model.state_dict()))
        self.rule, self.start_epoch = BestEpoch(settings.patience, settings.min_delta), 1
        self.per_epoch = math.ceil(len(self.partition) / settings.batch_size)
        self.total_steps = settings.epochs * self.per_epoch
        self.started = time.perf_counter()
        self.saved_at: float | None = None  # training seconds at the last checkpoint of this call

    @staticmethod
    def _partition(count: int, settings: FitSettings) -> torch.Tensor:
        """This process's image indices: all of them, or a fixed shard per rank (so cached logits cover it)."""
        rank, world = settings.shard
        if world == 1:
            return torch.arange(count)
        partition = torch.randperm(count, generator=torch.Generator().manual_seed(settings.seed + 7919))
        return torch.cat([partition, partition[: (-len(partition)) % world]])[rank::world]

    def _teacher_signal(self, logits: torch.Tensor | None) -> tuple[torch.Tensor | None, list[FeatureHook]]:
        """Cached teacher logits (logit methods on fixed images), or hooks on both models (feature methods)."""
        if self.method is None:
            return None, []
        self.method.to(self.device)
        self.teacher.to(self.device).eval()
        if self.method.uses_features:
            return None, [FeatureHook(target_module(self.model)), FeatureHook(target_module(self.teacher))]
        if self.settings.augment:
            return None, []
        if logits is not None:
            return logits, []
        return teacher_logits(self.teacher, self.train, self.device, indices=self.partition), []

    def resume(self) -> None:
        """Continue from the last completed epoch saved in ``checkpoint_dir``, if any."""
        folder = self.settings.checkpoint_dir
        saved = None
        if folder is not None:
            saved = load_checkpoint(
                Path(folder), self.role, self.model, self.optimizer, self.generator, self.method, self.averaged
            )
        if saved is not None:
            self.result.best_state, self.result.history = saved["best_state"], saved["history"]
            self.rule.restore(saved, self.result.history)
            self.result.best_epoch = self.rule.best_epoch
            self.start_epoch = self.settings.epochs + 1 if saved.get("stopped_early") else saved["epoch"] + 1
            self.result.seconds = saved["seconds"]
        self.started = time.perf_counter() - self.result.seconds

    def batch_loss(self, images: torch.Tensor, labels: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """The loss of one batch: cross-entropy, or the distillation method's loss."""
        with autocast(self.device):
            logits = self.net(images)
            if self.method is None:
                members = getattr(self.model, "member_losses", None)  # an ensemble: each member its own loss
                loss = members(lambda out: self._label_loss(out, labels)) if members is not None else None
                return loss if loss is not None else self._label_loss(logits, labels)
            if self.cached is not None:
                t_logits = self.cached[index].to(self.device)
            else:
                with torch.no_grad():
                    t_logits = self.teacher(images)
            features = (self.hooks[0].output, self.hooks[1].output) if self.hooks else (None, None)
            return self.method(logits.float(), t_logits.float(), labels, *features, class_weights=self.weights)

    def _label_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The task's loss of (B, K) logits against the labels: cross-entropy unless the task gives another."""
        if self.settings.loss is not None:
            return self.settings.loss(logits, labels, self.weights)
        return F.cross_entropy(logits.float(), labels, weight=self.weights)

    def _step(self, loss: torch.Tensor, epoch: int, batch: int) -> None:
        if not torch.isfinite(loss):
            raise TrainingError(
                f"The {self.role} loss became {loss.item()} at epoch {epoch}, batch {batch}; "
                f"lower the learning rate (now {self.settings.lr:g}) or check the images for extreme values."
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if self.averaged is not None:
            self.averaged.update_parameters(self.model)

    def train_epoch(self, epoch: int, callback: Callback | None, should_stop: Callable[[], bool] | None) -> float:
        """One pass over this process's images; returns the mean train loss."""
        settings = self.settings
        self.model.train()
        torch.manual_seed(settings.seed * 100_003 + epoch)  # dropout draws: the same whether or not the run resumed
        order = self.partition[torch.randperm(len(self.partition), generator=self.generator)]
        running, seen = 0.0, 0
        for batch, (images, labels, index) in enumerate(self.train.iterate(settings.batch_size, order), start=1):
            if should_stop is not None and should_stop():
                raise Cancelled(self.role)
            images = images.to(self.device, non_blocking=True)
            labels = labels.to(self.device, non_blocking=True)
            if settings.augment:
                images = augment(images, self.generator)
            images = images.contiguous(memory_format=self.memory_format)
            step = (epoch - 1) * self.per_epoch + batch - 1
            for group in self.optimizer.param_groups:
                group["lr"] = settings.lr * 0.5 * (1 + math.cos(math.pi * step / max(self.total_steps, 1)))
            loss = self.batch_loss(images, labels, index)
            self._step(loss, epoch, batch)
            running += loss.item() * len(labels)
            seen += len(labels)
            if callback is not None:
                elapsed = time.perf_counter() - self.started
                eta = _eta(elapsed, step + 1, self.total_steps)
                callback(
                    Progress(
                        self.role, "batch", epoch, settings.epochs, batch, self.per_epoch, loss.item(), elapsed, eta
                    )
                )
        return running / max(seen, 1)

    def end_of_epoch(self, epoch: int, train_loss: float, val: Batches, callback: Callback | None) -> None:
        """Validate, keep the best weights, count towards early stopping, checkpoint and report."""
        if self.world > 1:  # batch-norm statistics: every rank evaluates (and rank 0 saves) rank 0's
            for buffer in self.evaluated.buffers():
                torch.distributed.broadcast(buffer, src=0)
        val_loss, val_acc, val_auc, val_balanced = _validate(self.evaluated, val, self.device, self.settings)
        result = self.result
        row = {"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss, "val_acc": val_acc, "val_auc": val_auc}
        row["val_balanced_acc"] = val_balanced
        if self.rule.update(row):
            result.best_epoch, result.best_state = epoch, _cpu_copy(self.evaluated.state_dict())
        elapsed = time.perf_counter() - self.started
        result.history.append({**row, "seconds": elapsed})
        result.stopped_early = self.rule.stopped
        result.seconds = elapsed
        if self._checkpoint_due(epoch, elapsed):
            self.saved_at = elapsed
            state = {
                "epoch": epoch,
                **self.rule.state(),
                "history": result.history,
                "seconds": elapsed,
                "stopped_early": result.stopped_early,
            }
            folder = Path(self.settings.checkpoint_dir)
            save_checkpoint(
                folder,
                self.role,
                self.model,
                self.optimizer,
                self.generator,
                result.best_state,
                state,
                self.method,
                self.averaged,
            )
        if callback is not None:
            eta = _eta(elapsed, epoch * self.per_epoch, self.total_steps)
            callback(
                Progress(
                    self.role,
                    "epoch",
                    epoch,
                    self.settings.epochs,
                    self.per_epoch,
                    self.per_epoch,
                    train_loss,
                    elapsed,
                    eta,
                    val_loss,
                    val_acc,
                    val_auc,
                    history=list(result.history),
                )
            )

    def _checkpoint_due(self, epoch: int, elapsed: float) -> bool:
        """Save after this call's first epoch, the last one, and otherwise once ``checkpoint_seconds`` have passed.

        A resnet18 checkpoint (weights, their average, the best weights, optimizer moments) is over 200 MB; written
        after each of BreastMNIST's 30 short epochs it cost more than the training steps between them.
        """
        if self.settings.checkpoint_dir is None:
            return False
        last = epoch == self.settings.epochs or self.result.stopped_early
        return self.saved_at is None or last or elapsed - self.saved_at >= self.settings.checkpoint_seconds

    def close(self) -> None:
        for hook in self.hooks:
            hook.remove()


def _cpu_copy(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in state.items()}
