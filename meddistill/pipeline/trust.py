"""A run's trust section (``meddistill.evaluation.trust``) from its predictions: at the end of a run, again with
another operating rule without retraining (``reassess``, what Compare and ``meddistill trust`` call), and for a run
whose predictions.npz predates the val probabilities (``refresh`` predicts them again from the weights).

Example:
    >>> trust = reassess(RunFolder(path), TrustSettings("sensitivity", 0.95))
    >>> probs = calibrated(report, "student_kd", predictions["probs_student_kd"])
"""

from __future__ import annotations

import numpy as np

from meddistill.data.dataset import MedDataset
from meddistill.data.tensors import Batches
from meddistill.errors import MedDistillError
from meddistill.evaluation.calibration import apply_temperature
from meddistill.evaluation.predict import predict
from meddistill.evaluation.trust import Trust, TrustSettings, assess, positive_class
from meddistill.io.atomic import atomic_write
from meddistill.store.layout import (
    CLEAN_KEY,
    GROUPS_KEY,
    PREDICTIONS_FILE,
    ROLES,
    SUBGROUP_PREFIX,
    VAL_LABELS_KEY,
    RunFolder,
    predictions_key,
    val_predictions_key,
)
from meddistill.tasks import task_for


def data_inputs(dataset: MedDataset) -> dict[str, np.ndarray]:
    """What predictions.npz keeps of the test split besides the probabilities: patient keys, the leak-free mask
    (when a leak was found) and each subgroup column's values."""
    test = dataset.splits["test"]
    out = {}
    if test.groups is not None:
        out[GROUPS_KEY] = np.array([g or "" for g in test.groups], dtype=str)
    leaked = dataset.provenance.get("leakage", {}).get("leaked_test") or []
    if leaked:
        clean = np.ones(len(test), dtype=bool)
        clean[np.asarray(leaked, dtype=np.int64)] = False
        out[CLEAN_KEY] = clean
    for column in dataset.attributes:
        out[SUBGROUP_PREFIX + column] = np.array(dataset.values("test", column), dtype=str)
    return out


def from_saved(saved: dict[str, np.ndarray], task_name: str, names: list[str], settings: TrustSettings, **kw) -> Trust:
    """The trust section from the arrays of predictions.npz (``data_inputs`` and the probabilities)."""
    roles = [r for r in ROLES if predictions_key(r) in saved]
    if VAL_LABELS_KEY not in saved or any(val_predictions_key(r) not in saved for r in roles):
        raise MedDistillError(
            "this run's predictions.npz has no val predictions (it was written before 2026-12-02); run "
            "`meddistill trust RUN --refresh` once to predict them from the weights."
        )
    groups = saved.get(GROUPS_KEY)
    return assess(
        task_for(task_name).kind,
        names,
        saved[VAL_LABELS_KEY],
        {r: saved[val_predictions_key(r)] for r in roles},
        saved["labels"],
        {r: saved[predictions_key(r)] for r in roles},
        settings,
        clean=saved.get(CLEAN_KEY),
        subgroups={k[len(SUBGROUP_PREFIX) :]: list(v) for k, v in saved.items() if k.startswith(SUBGROUP_PREFIX)},
        groups=None if groups is None else [g or None for g in groups.tolist()],
        **kw,
    )


def check_trust_settings(config, dataset: MedDataset) -> None:
    """Refuse a ``--positive-class`` that is not one of two classes, before anything is trained."""
    if config.positive_class is None:
        return
    if dataset.task != "single_label" or dataset.num_classes != 2:
        raise MedDistillError(
            f"--positive-class applies to data with two classes; {dataset.name} has {dataset.num_classes} "
            f"{'findings' if dataset.task != 'single_label' else 'classes'}, each judged one against the rest."
        )
    try:
        positive_class(dataset.class_names, config.positive_class)
    except ValueError as error:
        raise MedDistillError(f"{error}.") from None


def trust_of(ctx, test_labels, test_probs: dict, val_labels, val_probs: dict, extra: dict, headline: str) -> Trust:
    """The trust section at the end of a run (``ctx``: the ``RunContext``)."""
    saved = {"labels": test_labels, VAL_LABELS_KEY: val_labels, **extra}
    saved.update({predictions_key(r): p for r, p in test_probs.items()})
    saved.update({val_predictions_key(r): p for r, p in val_probs.items()})
    settings = ctx.config.trust_settings()
    return from_saved(saved, ctx.task.name, ctx.dataset.class_names, settings, headline=headline, seed=ctx.config.seed)


def reassess(folder: RunFolder, settings: TrustSettings) -> Trust:
    """The trust section of a finished run with another operating rule (nothing is written)."""
    report = folder.report()
    return from_saved(
        folder.predictions(),
        report.task,
        report.dataset["classes"],
        settings,
        headline=report.headline,
        seed=report.config.get("seed", 0),
    )


def calibrated(trust: Trust | None, role: str, probs: np.ndarray, task_name: str, raw: bool = False) -> np.ndarray:
    """``probs`` of ``role`` with its val-fitted temperature applied (unchanged when ``raw`` or no trust section)."""
    if raw or trust is None or role not in trust.models:
        return probs
    return apply_temperature(probs, trust.models[role].temperature, task_for(task_name).kind)


def save_predictions(folder: RunFolder, test_labels, test_probs: dict, val_labels, val_probs: dict, extra: dict):
    """Write predictions.npz: test and val labels and raw probabilities of every role, and ``extra``
    (``data_inputs``)."""
    arrays = {predictions_key(r): p for r, p in test_probs.items()}
    arrays.update({val_predictions_key(r): p for r, p in val_probs.items()})
    arrays.update({VAL_LABELS_KEY: val_labels, **extra})
    target = folder.file(PREDICTIONS_FILE)
    atomic_write(target, lambda tmp: np.savez(open(tmp, "wb"), labels=test_labels, **arrays))


def refresh(folder: RunFolder) -> Trust:
    """Predict the val and test splits again from the run's weights, rewrite predictions.npz with the val
    predictions and the data inputs, and write the trust section into report.json (the other figures kept)."""
    report, config = folder.report(), folder.config()
    dataset = config.load_data()
    task = task_for(report.task)
    test_probs, val_probs = {}, {}
    size = report.dataset.get("train_image_size") or config.resolved_image_size(dataset.image_size)
    batches = {s: Batches(dataset.splits[s], dataset.channels, size, config.num_workers) for s in ("val", "test")}
    for role in report.models:
        model = folder.load_model(role)
        test_probs[role] = predict(model, batches["test"], "cpu", activation=task.activation)
        val_probs[role] = predict(model, batches["val"], "cpu", activation=task.activation)
    saved = folder.predictions()
    if not np.array_equal(saved["labels"], dataset.splits["test"].labels, equal_nan=True):
        raise MedDistillError(
            f"the data at {config.data} no longer gives this run's test split; restore it to refresh "
            f"{folder.path.name}."
        )
    save_predictions(folder, saved["labels"], test_probs, dataset.splits["val"].labels, val_probs, data_inputs(dataset))
    report.trust = from_saved(
        folder.predictions(),
        report.task,
        dataset.class_names,
        config.trust_settings(),
        headline=report.headline,
        seed=config.seed,
    )
    folder.write_report(report)
    return report.trust
