"""One run end to end: teacher, scratch student, distilled student, evaluation, report.

``execute(config, run_dir)`` is what the CLI, the dashboard's job manager and
``torchrun`` all call. Models that already have final weights in the run
folder are not trained again, and a model cut off mid-training resumes from
its last completed epoch, so calling ``execute`` again on an interrupted run
finishes it.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from meddistill.data.tensors import Batches
from meddistill.evaluation.hardware import describe_cpu
from meddistill.evaluation.latency import measure_latency
from meddistill.evaluation.metrics import agreement, classification_metrics
from meddistill.evaluation.significance import verdicts
from meddistill.io.atomic import atomic_write, atomic_write_json
from meddistill.io.weights import load_weights, save_weights
from meddistill.models.external import teacher_file_kind
from meddistill.models.factory import model_info
from meddistill.runs.building import build, build_method, cached_teacher_logits, fit_settings, pick_device
from meddistill.runs.config import AUTO_METHOD, RunConfig
from meddistill.runs.deployment import deployed_latency
from meddistill.runs.imported import check_imported_teacher, teacher_source, val_scores
from meddistill.runs.layout import (
    CHECKPOINTS_DIR,
    CONFIG_FILE,
    DATASET_FILE,
    EXTERNAL_TEACHER_FILES,
    METRICS_FILE,
    PREDICTIONS_FILE,
    REPORT_FILE,
    ROLES,
    SEARCH_FILE,
    RunFolder,
    predictions_key,
)
from meddistill.runs.search import search
from meddistill.training import distributed as dist
from meddistill.training.checkpoint import saved_fit
from meddistill.training.engine import fit
from meddistill.training.state import FitResult, Progress


def _train_role(role, config, dataset, batches, device, folder, callback, should_stop, teacher=None):
    """The trained model of ``role`` and its ``FitResult`` (saved one if it was trained before; None if imported)."""
    if folder.has_weights(role) and role == "teacher" and folder.external_teacher():
        return folder.load_model(role, device), None
    model = build(config, dataset, role)
    if folder.has_weights(role):
        return load_weights(model, folder.weights(role)).to(device), saved_fit(folder.file(CHECKPOINTS_DIR), role)
    if role == "teacher" and getattr(model, "opaque", False):  # ONNX / TorchScript: used as is, kept in the folder
        check_imported_teacher(model, batches["val"], device, dataset.class_names, config)
        if dist.is_main():
            kind = teacher_file_kind(config.teacher_weights)
            atomic_write(
                folder.file(EXTERNAL_TEACHER_FILES[kind]), lambda tmp: shutil.copyfile(config.teacher_weights, tmp)
            )
        return model.to(device), None
    if role == "teacher" and config.teacher_weights and not config.starts_pretrained(role):
        load_weights(model, config.teacher_weights)
        if config.teacher_epochs == 0:  # kept in the run folder like a trained teacher (Compare, Explain, export)
            check_imported_teacher(model.to(device), batches["val"], device, dataset.class_names, config)
            if dist.is_main():
                source = Path(config.teacher_weights).name
                save_weights(model, folder.weights(role), metadata={"arch": model.arch, "role": role, "from": source})
            return model.to(device), None
    if role == "student_kd" and config.method == AUTO_METHOD:  # the method and its settings chosen on val
        model, result, _ = search(config, dataset, batches, teacher, folder, device, callback, should_stop)
        if dist.is_main():
            save_weights(model, folder.weights(role), metadata={"arch": model.arch, "role": role})
        return model, result
    size = config.resolved_image_size(dataset.image_size)
    method = build_method(config, model, teacher, dataset.channels, size) if role == "student_kd" else None
    logits = None
    if method is not None and not method.uses_features and not config.augment_students:
        logits = cached_teacher_logits(folder, teacher, batches["train"], device, config)
    result = fit(
        model,
        batches["train"],
        batches["val"],
        fit_settings(config, dataset, role, device, folder),
        role=role,
        teacher=teacher if role == "student_kd" else None,
        method=method,
        callback=callback,
        should_stop=should_stop,
        logits=logits,
    )
    if dist.is_main():
        save_weights(model, folder.weights(role), metadata={"arch": model.arch, "role": role})
    return model, result


def _record_normalisation(config: RunConfig, models: dict, folder: RunFolder) -> None:
    """Write into config.json (``extra.input_normalisation``) the input normalisation each timm model's weights
    expect, which the model applies itself."""
    normalisation = {r: m.normalisation for r, m in models.items() if getattr(m, "normalisation", None)}
    if normalisation and dist.is_main():
        config.extra["input_normalisation"] = normalisation
        config.save(folder.file(CONFIG_FILE))


def _best_val(result: FitResult | None) -> dict:
    """The best epoch's val ACC and AUC (empty for a model that was not trained here)."""
    if result is None or not result.history or not result.best_epoch:
        return {}
    row = result.history[result.best_epoch - 1]
    return {"val_acc": row["val_acc"], "val_auc": row["val_auc"]}


def _model_entry(
    model: torch.nn.Module,
    result: FitResult | None,
    config: RunConfig,
    channels: int,
    size: int,
    device: torch.device,
    labels: np.ndarray,
    probs: np.ndarray,
    deployed: dict,
) -> dict:
    """One model's entry in ``report.json``."""
    info = model_info(model, channels, size)
    latency, throughput = measure_latency(model, channels, size, device, runs=config.latency_runs)
    return {
        "arch": model.arch,
        "params": info.params,
        "size_mb": info.size_mb,
        "flops": info.flops,
        "latency_ms_b1": latency,
        "throughput_b64": throughput,
        "train_seconds": result.seconds if result else 0.0,
        "epochs_run": len(result.history) if result else 0,
        "best_epoch": result.best_epoch if result else 0,
        **deployed,
        "test": classification_metrics(labels, probs),
    }


def execute(
    config: RunConfig,
    run_dir: str | Path,
    *,
    callback: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    roles: tuple[str, ...] = ROLES,
) -> dict:
    """Train and evaluate the three models of a run and write its report.

    Args:
        config: The run's settings.
        run_dir: The run folder (``config.json`` is (re)written there).
        callback: Receives engine ``Progress`` reports.
        should_stop: Polled every batch; true cancels (``Cancelled`` is raised).
        roles: Which models to train (all three by default).

    Returns:
        The report (also written as ``report.json``): run_id, dataset, config
        cpu, threads and, per role, arch, params, size_mb, flops, latency_ms_b1,
        throughput_b64, the ONNX Runtime latencies (``meddistill.runs.deployment``),
        train_seconds, epochs_run, best_epoch and the test metrics.
    """
    folder = RunFolder(run_dir)
    started = time.time()
    config.world_size = dist.world_size()
    dataset = config.load_data()
    size = config.resolved_image_size(dataset.image_size)
    device = dist.device_for(pick_device(config.device))
    threads = config.threads or dist.default_threads()
    torch.set_num_threads(threads)
    summary = {**dataset.summary(), "train_image_size": size}
    if dist.is_main():
        config.save(folder.file(CONFIG_FILE))
        atomic_write_json(folder.file(DATASET_FILE), summary)
    splits = ("train", "val", "test")
    batches = {s: Batches(dataset.splits[s], dataset.channels, size, config.num_workers) for s in splits}
    history = folder.metrics()

    def on_progress(event: Progress) -> None:
        if event.kind == "epoch" and dist.is_main():
            history[event.role] = event.history
            atomic_write_json(folder.file(METRICS_FILE), history)
        if callback is not None:
            callback(event)

    models, results = {}, {}
    for role in roles:
        models[role], results[role] = _train_role(
            role, config, dataset, batches, device, folder, on_progress, should_stop, models.get("teacher")
        )
    _record_normalisation(config, models, folder)

    if dist.is_main():  # the kept model's history (with --method auto, the chosen candidate's, not the last one's)
        history.update({role: result.history for role, result in results.items() if result is not None})
        atomic_write_json(folder.file(METRICS_FILE), history)
    labels = dataset.splits["test"].labels
    probs = {role: dist.gather_predictions(models[role], batches["test"], device) for role in roles}
    report = {
        "run_id": folder.path.name,
        "dataset": summary,
        "config": config.to_dict(),
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "cpu": describe_cpu(),
        "threads": threads,
        "models": {},
    }
    if not dist.is_main():
        return report
    for role in roles:
        model = models[role].eval()
        deployed = deployed_latency(model, role, folder, batches["train"], threads, config.latency_runs, config.seed)
        model.to(device)
        entry = _model_entry(
            model, results[role], config, dataset.channels, size, device, labels, probs[role], deployed
        )
        report["models"][role] = entry
    if "teacher" in report["models"]:
        imported = config.teacher_weights and config.teacher_epochs == 0 and not config.starts_pretrained("teacher")
        scores = val_scores(models["teacher"], batches["val"], device) if imported else None
        report["models"]["teacher"]["source"] = teacher_source(config, scores)
    if folder.file(SEARCH_FILE).is_file():
        report["search"] = json.loads(folder.file(SEARCH_FILE).read_text(encoding="utf-8"))
    report["verdict"] = verdicts(labels, probs, {r: _best_val(results[r]) for r in roles}, seed=config.seed)
    if "teacher" in probs:
        report["agreement"] = {role: agreement(probs["teacher"], probs[role]) for role in roles if role != "teacher"}
    report["seconds"] = time.time() - started
    arrays = {predictions_key(role): probs[role] for role in roles}
    atomic_write(folder.file(PREDICTIONS_FILE), lambda tmp: np.savez(open(tmp, "wb"), labels=labels, **arrays))
    atomic_write_json(folder.file(REPORT_FILE), report)
    return report
