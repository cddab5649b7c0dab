"""``--method auto``: choose the distillation method and its main settings on validation data.

The first ``BUDGET`` candidates of ``GRID`` are tried in order, each a full student training from the teacher's
cached logits (so a candidate costs about one student training). The budget is counted in trainings, not seconds, so
the same seed and data try the same candidates and make the same choice on any machine, busy or idle (the plan's
time is an estimate only). The best by validation AUC
(ties: validation ACC) is the run's distilled student; it is not retrained. Test figures are computed for the
chosen student only, by the pipeline. The whole search (every candidate's settings, val scores and seconds) is
written to ``search.json`` in the run folder and to ``report.json``.
"""

from __future__ import annotations

import dataclasses
import time

import torch

from meddistill.distillation.base import methods_for
from meddistill.io.atomic import atomic_write_json
from meddistill.pipeline.building import build_method, cached_teacher_logits, fit_settings
from meddistill.pipeline.context import RunContext
from meddistill.settings.sources import build_model
from meddistill.store.layout import SEARCH_FILE
from meddistill.training import distributed as dist
from meddistill.training.engine import fit
from meddistill.training.state import FitResult

BUDGET = 4  # candidates trained: kd, dkd, kd_ls, dist (kd_ka is left out: worse on val, docs/benchmarks.md 14)
# (method, temperature, alpha, beta): the default first, then one of each newer logit method, then KD variants.
GRID = (
    ("kd", 4.0, 0.5, 8.0),
    ("dkd", 4.0, 0.5, 8.0),
    ("kd_ls", 2.0, 0.5, 8.0),
    ("dist", 1.0, 0.5, 8.0),
    ("kd", 2.0, 0.9, 8.0),
    ("kd", 8.0, 0.5, 8.0),
    ("dkd", 4.0, 0.5, 2.0),
)


def _val(result: FitResult) -> tuple[float, float]:
    row = result.history[result.best_epoch - 1] if result.best_epoch else {"val_auc": 0.0, "val_acc": 0.0}
    return float(row["val_auc"]), float(row["val_acc"])


def search(ctx: RunContext, teacher: torch.nn.Module, budget: int = BUDGET) -> tuple[torch.nn.Module, FitResult, dict]:
    """Train the first ``budget`` candidates of ``GRID`` and return the best one's model and ``FitResult`` and the
    record of the search.

    Raises:
        Cancelled: ``should_stop()`` turned true (like any run).
    """
    config = ctx.config
    logits = None if config.augment_students else cached_teacher_logits(ctx, teacher)
    started, best, candidates = time.perf_counter(), None, []
    usable = methods_for(ctx.task.name)
    for method, temperature, alpha, beta in [c for c in GRID if c[0] in usable][:budget]:
        trial = config.replace(method=method, kd_temperature=temperature, kd_alpha=alpha, kd_beta=beta)
        model = build_model(trial, "student_kd", ctx.shape)
        settings = dataclasses.replace(fit_settings(ctx, "student_kd", trial), checkpoint_dir=None)
        result = fit(
            model,
            ctx.batches["train"],
            ctx.batches["val"],
            settings,
            role="student_kd",
            teacher=teacher,
            method=build_method(trial, model, teacher, ctx.dataset.channels, ctx.size),
            callback=ctx.callback,
            should_stop=ctx.should_stop,
            logits=logits,
        )
        auc, acc = _val(result)
        candidates.append(
            {"method": method, "kd_temperature": temperature, "kd_alpha": alpha, "kd_beta": beta}
            | {"val_auc": auc, "val_acc": acc, "best_epoch": result.best_epoch, "seconds": result.seconds}
        )
        if best is None or (auc, acc) > best[2]:
            best = (model, result, (auc, acc), len(candidates) - 1)
    record = {
        "budget_trainings": budget,
        "seconds": time.perf_counter() - started,
        "chosen": candidates[best[3]],
        "candidates": candidates,
        "rule": "highest val AUC, ties by val ACC",
    }
    if dist.is_main():
        atomic_write_json(ctx.folder.file(SEARCH_FILE), record)
    return best[0], best[1], record
