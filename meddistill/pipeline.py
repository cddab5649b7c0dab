"""One run end to end: teacher, scratch student, distilled student, evaluation, report.

``execute(config, run_dir)`` is what the CLI, the dashboard's job manager and
``torchrun`` all call. Models that already have final weights in the run
folder are not trained again, and a model cut off mid-training resumes from
its last completed epoch, so calling ``execute`` again on an interrupted run
finishes it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from meddistill import distributed as dist
from meddistill.config import RunConfig
from meddistill.data import MedDataset, load_dataset
from meddistill.data.tensors import Batches
from meddistill.distill import create_method
from meddistill.engine import FitResult, Progress, class_weights_for, fit
from meddistill.evaluate import agreement, classification_metrics, measure_latency
from meddistill.fileio import atomic_write, atomic_write_json
from meddistill.models import create_model, model_info, target_module
from meddistill.weights import load_weights, save_weights

ROLES = ("teacher", "student_scratch", "student_kd")
LABELS = {"teacher": "Teacher", "student_scratch": "Student (scratch)", "student_kd": "Student (distilled)"}


def pick_device(name: str = "auto") -> torch.device:
    """``cuda`` when asked for or available (``auto``), else ``cpu``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def build(config: RunConfig, dataset: MedDataset, role: str) -> torch.nn.Module:
    """The untrained model for ``role``; both students start from the same initial weights."""
    size = config.resolved_image_size(dataset.image_size)
    torch.manual_seed(config.seed + (0 if role == "teacher" else 1))
    arch = config.teacher if role == "teacher" else config.student
    return create_model(arch, dataset.num_classes, dataset.channels, size)


def load_trained(run_dir: str | Path, role: str, device: str = "cpu") -> tuple[torch.nn.Module, RunConfig, dict]:
    """A finished run's model for ``role`` with its weights, the config and the dataset summary."""
    run_dir = Path(run_dir)
    config = RunConfig.load(run_dir / "config.json")
    summary = json.loads((run_dir / "dataset.json").read_text(encoding="utf-8"))
    arch = config.teacher if role == "teacher" else config.student
    model = create_model(arch, len(summary["classes"]), summary["channels"], summary["train_image_size"])
    load_weights(model, run_dir / f"{role}.safetensors")
    return model.to(device).eval(), config, summary


def _feature_channels(model: torch.nn.Module, channels: int, size: int) -> int:
    """Channels of the model's target layer output, found with one dummy forward."""
    captured = {}
    handle = target_module(model).register_forward_hook(lambda m, i, o: captured.setdefault("c", o.shape[1]))
    with torch.no_grad():
        model.eval()(torch.zeros(1, channels, size, size, device=next(model.parameters()).device))
    handle.remove()
    return int(captured["c"])


def _train_role(role, config, dataset, batches, device, run_dir, callback, should_stop, teacher=None) -> tuple[torch.nn.Module, FitResult | None]:
    model = build(config, dataset, role)
    final = run_dir / f"{role}.safetensors"
    if final.is_file():
        return load_weights(model, final).to(device), None
    if role == "teacher" and config.teacher_weights:
        load_weights(model, config.teacher_weights)
        if config.teacher_epochs == 0:
            return model.to(device), None
    size = config.resolved_image_size(dataset.image_size)
    method = None
    if role == "student_kd":
        kwargs = {}
        if config.method == "fitnet":
            kwargs = {"student_channels": _feature_channels(model, dataset.channels, size), "teacher_channels": _feature_channels(teacher, dataset.channels, size)}
        method = create_method(config.method, temperature=config.kd_temperature, alpha=config.kd_alpha, feature_weight=config.feature_weight, **kwargs)
    weights = class_weights_for(dataset.splits["train"].labels, dataset.num_classes) if config.class_weighted else None
    result = fit(
        model, batches["train"], batches["val"], role=role,
        epochs=config.epochs_for(role, len(dataset.splits["train"]), dist.world_size()),
        lr=config.lr, weight_decay=config.weight_decay, batch_size=config.batch_size, device=device,
        seed=config.seed, patience=config.patience, augment_images=config.augment if role == "teacher" else config.augment_students, class_weights=weights,
        teacher=teacher if role == "student_kd" else None, method=method,
        callback=callback, should_stop=should_stop, checkpoint_dir=run_dir / "checkpoints" if dist.is_main() else None,
        shard=(dist.rank(), dist.world_size()), ema_decay=config.ema_decay,
    )
    if dist.is_main():
        save_weights(model, final, metadata={"arch": model.arch, "role": role})
    return model, result


def execute(config: RunConfig, run_dir: str | Path, *, callback: Callable[[Progress], None] | None = None, should_stop: Callable[[], bool] | None = None, roles: tuple[str, ...] = ROLES) -> dict:
    """Train and evaluate the three models of a run and write its report.

    Args:
        config: The run's settings.
        run_dir: The run folder (``config.json`` is (re)written there).
        callback: Receives engine ``Progress`` reports.
        should_stop: Polled every batch; true cancels (``Cancelled`` is raised).
        roles: Which models to train (all three by default).

    Returns:
        The report (also written as ``report.json``): run_id, dataset, config
        and, per role, arch, params, size_mb, flops, latency_ms_b1,
        throughput_b64, train_seconds and the test metrics.
    """
    run_dir = Path(run_dir)
    started = time.time()
    config.world_size = dist.world_size()
    dataset = load_dataset(config.data, seed=config.seed)
    size = config.resolved_image_size(dataset.image_size)
    device = dist.device_for(pick_device(config.device))
    summary = {**dataset.summary(), "train_image_size": size}
    if dist.is_main():
        config.save(run_dir / "config.json")
        atomic_write_json(run_dir / "dataset.json", summary)
    batches = {s: Batches(dataset.splits[s], dataset.channels, size, config.num_workers) for s in ("train", "val", "test")}
    metrics_file = run_dir / "metrics.json"
    history = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}

    def on_progress(event: Progress) -> None:
        if event.kind == "epoch" and dist.is_main():
            history.setdefault(event.role, [])
            history[event.role] = [h for h in history[event.role] if h["epoch"] < event.epoch]
            history[event.role].append({"epoch": event.epoch, "train_loss": event.loss, "val_loss": event.val_loss, "val_acc": event.val_acc, "val_auc": event.val_auc, "seconds": event.elapsed})
            atomic_write_json(metrics_file, history)
        if callback is not None:
            callback(event)

    models, results = {}, {}
    for role in roles:
        teacher = models.get("teacher")
        models[role], results[role] = _train_role(role, config, dataset, batches, device, run_dir, on_progress, should_stop, teacher)

    labels = dataset.splits["test"].labels
    probs = {role: dist.gather_predictions(models[role], batches["test"], device) for role in roles}
    report = {
        "run_id": run_dir.name,
        "dataset": summary,
        "config": config.to_dict(),
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "models": {},
    }
    if not dist.is_main():
        return report
    for role in roles:
        model = models[role].eval()
        info = model_info(model, dataset.channels, size)
        latency, throughput = measure_latency(model, dataset.channels, size, device, runs=config.latency_runs)
        past = history.get(role, [])
        report["models"][role] = {
            "arch": model.arch,
            "params": info.params,
            "size_mb": info.size_mb,
            "flops": info.flops,
            "latency_ms_b1": latency,
            "throughput_b64": throughput,
            "train_seconds": past[-1]["seconds"] if past else 0.0,
            "epochs_run": len(past),
            "best_epoch": int(np.argmax([h["val_auc"] if h["val_auc"] == h["val_auc"] else h["val_acc"] for h in past]) + 1) if past else 0,
            "test": classification_metrics(labels, probs[role]),
        }
    if "teacher" in probs:
        report["agreement"] = {role: agreement(probs["teacher"], probs[role]) for role in roles if role != "teacher"}
    report["seconds"] = time.time() - started
    arrays = {f"probs_{role}": probs[role] for role in roles}
    atomic_write(run_dir / "predictions.npz", lambda tmp: np.savez(open(tmp, "wb"), labels=labels, **arrays))
    atomic_write_json(run_dir / "report.json", report)
    return report
