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

from meddistill.data.dataset import MedDataset
from meddistill.data.summary import findings_checks, leakage_checks
from meddistill.evaluation.hardware import describe_cpu
from meddistill.evaluation.latency import measure_latency
from meddistill.evaluation.significance import verdicts
from meddistill.io.atomic import atomic_write, atomic_write_json
from meddistill.io.weights import save_weights
from meddistill.models.external import teacher_file_kind
from meddistill.models.factory import model_info
from meddistill.pipeline.building import (
    build,
    build_method,
    cached_teacher_logits,
    check_method,
    distillation_teacher,
    fit_settings,
)
from meddistill.pipeline.context import RunContext
from meddistill.pipeline.deployment import deployed_latency
from meddistill.pipeline.guards import better_on_val, distilled_from, headline_student, teacher_check
from meddistill.pipeline.plan import BUDGET_NOTE, fit_budget
from meddistill.pipeline.search import search
from meddistill.pipeline.train_on import best_val, train_on
from meddistill.pipeline.trust import calibrated, check_trust_settings, data_inputs, save_predictions, trust_of
from meddistill.settings.config import RunConfig
from meddistill.settings.sources import AUTO_METHOD, val_scores
from meddistill.store.layout import (
    CHECKPOINTS_DIR,
    CONFIG_FILE,
    DATASET_FILE,
    EXTERNAL_TEACHER_FILES,
    METRICS_FILE,
    ROLES,
    SEARCH_FILE,
    RunFolder,
)
from meddistill.store.report import ModelEntry, Report, Verdict
from meddistill.training import distributed as dist
from meddistill.training.checkpoint import saved_fit
from meddistill.training.engine import fit
from meddistill.training.state import FitResult, Progress


def _train_teacher(ctx: RunContext) -> tuple[torch.nn.Module, FitResult | None]:
    """The run's teacher as its source gives it: trained (or fine-tuned) here, or a file used as is, checked against
    the data and kept in the run folder (Compare, Explain, export); a teacher already in the folder is loaded."""
    folder, config = ctx.folder, ctx.config
    if folder.has_weights("teacher"):
        return folder.load_model("teacher", ctx.device), saved_fit(folder.file(CHECKPOINTS_DIR), "teacher")
    model = build(ctx, "teacher")
    if ctx.teacher.trains:
        return model, _fit(ctx, "teacher", model)
    model = model.to(ctx.device)
    ctx.teacher.check(model, ctx.batches["val"], ctx.device, ctx.dataset.class_names)
    if dist.is_main():
        if getattr(model, "opaque", False):  # ONNX / TorchScript: the file itself is kept
            target = folder.file(EXTERNAL_TEACHER_FILES[teacher_file_kind(config.teacher_weights)])
            atomic_write(target, lambda tmp: shutil.copyfile(config.teacher_weights, tmp))
        else:
            source = Path(config.teacher_weights).name
            save_weights(
                model, folder.weights("teacher"), metadata={"arch": model.arch, "role": "teacher", "from": source}
            )
    return model, None


def _fit(ctx: RunContext, role: str, model: torch.nn.Module, teacher: torch.nn.Module | None = None) -> FitResult:
    """Train ``model`` for ``role`` (the distilled student with the run's method) and save its weights."""
    config = ctx.config
    method = build_method(config, model, teacher, ctx.dataset.channels, ctx.size) if role == "student_kd" else None
    logits = None
    if method is not None and not method.uses_features and not config.augment_students:
        logits = cached_teacher_logits(ctx, teacher)
    result = fit(
        model,
        ctx.batches["train"],
        ctx.batches["val"],
        fit_settings(ctx, role),
        role=role,
        teacher=teacher if role == "student_kd" else None,
        method=method,
        callback=ctx.callback,
        should_stop=ctx.should_stop,
        logits=logits,
    )
    if dist.is_main():
        save_weights(model, ctx.folder.weights(role), metadata={"arch": model.arch, "role": role})
    return result


def _train_student(ctx: RunContext, role: str, teacher: torch.nn.Module | None) -> tuple[torch.nn.Module, FitResult]:
    """A student trained from scratch or distilled (with ``--method auto``: the method chosen on val)."""
    folder = ctx.folder
    if folder.has_weights(role):
        return folder.load_model(role, ctx.device), saved_fit(folder.file(CHECKPOINTS_DIR), role)
    if role == "student_kd" and ctx.config.method == AUTO_METHOD:
        model, result, _ = search(ctx, teacher)
        if dist.is_main():
            save_weights(model, folder.weights(role), metadata={"arch": model.arch, "role": role})
        return model, result
    model = build(ctx, role)
    return model, _fit(ctx, role, model, teacher)


def _teacher_better(results: dict[str, FitResult | None]) -> bool | None:
    """Whether the teacher trained here is better than the scratch student on val (None: not both trained here)."""
    teacher, scratch = best_val(results.get("teacher")), best_val(results.get("student_scratch"))
    return better_on_val(teacher, scratch) if teacher and scratch else None


def _record_normalisation(ctx: RunContext, models: dict) -> RunConfig:
    """The settings with the input normalisation each timm model's weights expect (``extra.input_normalisation``,
    applied by the model itself) noted in config.json."""
    normalisation = {r: m.normalisation for r, m in models.items() if getattr(m, "normalisation", None)}
    if not normalisation:
        return ctx.config
    config = ctx.config.replace(extra={**ctx.config.extra, "input_normalisation": normalisation})
    if dist.is_main():
        config.save(ctx.folder.file(CONFIG_FILE))
    return config


def _model_entry(
    ctx: RunContext,
    model: torch.nn.Module,
    result: FitResult | None,
    probs: np.ndarray,
    deployed: dict,
    val_probs: np.ndarray,
) -> ModelEntry:
    """One model's entry in the report (its operating points, for several findings, chosen on ``val_probs``)."""
    val = (ctx.dataset.splits["val"].labels, val_probs)
    test = ctx.dataset.splits["test"]
    channels, size = ctx.dataset.channels, ctx.size
    info = model_info(model, channels, size)
    latency, throughput = measure_latency(model, channels, size, ctx.device, runs=ctx.config.latency_runs)
    return ModelEntry(
        arch=model.arch,
        params=info.params,
        size_mb=info.size_mb,
        flops=info.flops,
        latency_ms_b1=latency,
        throughput_b64=throughput,
        train_seconds=result.seconds if result else 0.0,
        epochs_run=len(result.history) if result else 0,
        best_epoch=result.best_epoch if result else 0,
        **deployed,
        test=ctx.task.metrics(test.labels, probs, ctx.dataset.class_names, val, groups=test.groups),
    )


def execute(
    config: RunConfig,
    run_dir: str | Path,
    *,
    callback: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    roles: tuple[str, ...] = ROLES,
    dataset: MedDataset | None = None,
) -> Report:
    """Train and evaluate the models of a run and write its report.

    Args:
        config: The run's settings.
        run_dir: The run folder (``config.json`` is (re)written there).
        callback: Receives engine ``Progress`` reports.
        should_stop: Polled every batch; true cancels (``Cancelled`` is raised).
        roles: Which models to train (all three by default).
        dataset: The run's data when the caller has already read it with the run's settings (else read here).

    Returns:
        The report (``meddistill.store.report.Report``), also written as ``report.json``.
    """
    started = time.time()
    if config.world_size != dist.world_size():
        config = config.replace(world_size=dist.world_size())
    dataset = dataset or config.load_data()
    check_method(config, dataset.task)
    check_trust_settings(config, dataset)
    config = budgeted(config.for_data(dataset.image_size, dataset.spatial_dims), dataset)
    keeper = _history_keeper(run_dir, callback)
    ctx = RunContext.open(config, run_dir, callback=keeper, should_stop=should_stop, dataset=dataset)
    folder = ctx.folder
    torch.set_num_threads(ctx.threads)
    if dist.is_main():
        config.save(folder.file(CONFIG_FILE))
        atomic_write_json(folder.file(DATASET_FILE), ctx.summary)

    models, results, trained_on, source = {}, {}, (0, None), None
    for role in roles:
        if role == "teacher":
            models[role], results[role] = _train_teacher(ctx)
        else:
            source = distillation_teacher(ctx, models, _teacher_better(results)) if role == "student_kd" else None
            models[role], results[role] = _train_student(ctx, role, source)
        if role == "student_scratch" and results.get("teacher") is not None:  # the guard rail, before distilling
            results["teacher"], *trained_on = train_on(
                ctx, models["teacher"], results["teacher"], results[role], started
            )
    config = _record_normalisation(ctx, models)

    if dist.is_main():  # the kept model's history (with --method auto, the chosen candidate's, not the last one's)
        history = folder.metrics()
        history.update({role: result.history for role, result in results.items() if result is not None})
        atomic_write_json(folder.file(METRICS_FILE), history)
    labels = ctx.dataset.splits["test"].labels
    probs = {r: dist.gather_predictions(models[r], ctx.batches["test"], ctx.device, ctx.task.activation) for r in roles}
    # every rank predicts (a collective under torchrun), before rank 0 alone writes the report
    activation = ctx.task.activation
    val_probs = {r: dist.gather_predictions(models[r], ctx.batches["val"], ctx.device, activation) for r in roles}
    device = ctx.device
    report = Report(
        run_id=folder.path.name,
        dataset=ctx.summary,
        config=config.to_dict(),
        device=str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        cpu=describe_cpu(),
        threads=ctx.threads,
        task=ctx.task.name,
        data_checks=(leakage_checks(ctx.dataset.provenance["leakage"]) if "leakage" in ctx.dataset.provenance else [])
        + findings_checks(ctx.dataset.provenance),
    )
    if not dist.is_main():
        return report
    val = {r: best_val(results[r]) for r in roles}  # the best epoch's val figures (empty for a teacher used as is)
    report.headline, report.headline_reason = headline_student(val, ctx.task.headline)
    report.distilled_from = distilled_from(source)
    val_labels, extra = ctx.dataset.splits["val"].labels, data_inputs(ctx.dataset)
    report.trust = trust_of(ctx, labels, probs, val_labels, val_probs, extra, report.headline)
    cal = {r: calibrated(report.trust, r, probs[r], ctx.task.name) for r in roles}  # what every figure reads
    cal_val = {r: calibrated(report.trust, r, val_probs[r], ctx.task.name) for r in roles}
    for role in roles:
        model = models[role].eval()
        deployed = deployed_latency(
            model, role, folder, ctx.batches["train"], ctx.threads, config.latency_runs, config.seed
        )
        model.to(device)
        report.models[role] = _model_entry(ctx, model, results[role], cal[role], deployed, cal_val[role])
    if "teacher" in report.models:
        scores = None if ctx.teacher.trains else val_scores(models["teacher"], ctx.batches["val"], device)
        report.models["teacher"].source = ctx.teacher.record(scores)
        report.teacher_check = teacher_check(
            val["teacher"] or scores or {}, val.get("student_scratch", {}), *trained_on, metric=ctx.task.headline
        )
    if folder.file(SEARCH_FILE).is_file():
        report.search = json.loads(folder.file(SEARCH_FILE).read_text(encoding="utf-8"))
    found = verdicts(labels, cal, val, seed=config.seed, groups=ctx.dataset.splits["test"].groups)
    report.verdict = {key: Verdict.from_dict(v) for key, v in found.items()}
    if "teacher" in probs:
        report.agreement = {r: ctx.task.agreement(cal["teacher"], cal[r]) for r in roles if r != "teacher"}
    report.seconds = time.time() - started
    save_predictions(folder, labels, probs, val_labels, val_probs, extra)
    folder.write_report(report)
    return report


def budgeted(config: RunConfig, dataset: MedDataset) -> RunConfig:
    """The settings with the teacher fitted into ``--budget`` (``meddistill.pipeline.plan.fit_budget``), the
    plan's sentence kept in ``extra.budget``; ``config`` is already adapted to the data (``RunConfig.for_data``).

    A config that holds the sentence was fitted when its run started (the plan times training steps, so fitting again
    on resume, on a busier or idler machine, would change the teacher's epochs mid-run): it is returned as it is."""
    if config.extra.get(BUDGET_NOTE):
        return config
    size = config.resolved_image_size(dataset.image_size)
    train = len(dataset.splits["train"])
    fitted, note = fit_budget(config, train, dataset.channels, size, dataset.num_classes)
    return fitted.replace(extra={**fitted.extra, BUDGET_NOTE: note}) if note else fitted


def _history_keeper(run_dir: str | Path, callback: Callable[[Progress], None] | None) -> Callable[[Progress], None]:
    """A progress listener that keeps ``metrics.json`` up to date after every epoch, then calls ``callback``."""
    folder = RunFolder(run_dir)
    history = folder.metrics()

    def on_progress(event: Progress) -> None:
        if event.kind == "epoch" and dist.is_main():
            history[event.role] = event.history
            atomic_write_json(folder.file(METRICS_FILE), history)
        if callback is not None:
            callback(event)

    return on_progress
