"""A registered run logged to the trackers its settings name (``log_to``: TensorBoard, MLflow), for the command line
and the dashboard's job manager alike: per-epoch figures while it trains, then the settings, the test figures and
the run's files (report.json, the model card, the exported ONNX files) as artifacts."""

from __future__ import annotations

from typing import Callable

from meddistill.data.dataset import MedDataset
from meddistill.io.atomic import atomic_write
from meddistill.pipeline.lifecycle import run_recorded
from meddistill.reports.card import model_card
from meddistill.store.index import RunStore
from meddistill.store.layout import CARD_FILE, EXPORTS_DIR, REPORT_FILE
from meddistill.store.report import Report
from meddistill.tracking import open_trackers
from meddistill.training.state import Progress

FINAL_FIGURES = ("acc", "balanced_acc", "auc", "ece")


def final_figures(report: Report) -> dict[str, float]:
    """``{"<role>/<figure>": value}``: each model's test figures and its batch-1 latency as deployed."""
    out = {}
    for role, model in report.models.items():
        for figure in FINAL_FIGURES:
            value = getattr(model.test, figure, None)
            if value is not None and value == value:
                out[f"{role}/{figure}"] = float(value)
        fastest = model.fastest_deployed(role)
        if fastest:
            out[f"{role}/deployed_latency_ms"] = fastest[0]
    return out


def tracked_run(
    store: RunStore,
    run_id: str,
    *,
    callback: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    dataset: MedDataset | None = None,
) -> Report | None:
    """``run_recorded``, logged to the run's trackers (none: exactly ``run_recorded``)."""
    record = store.get(run_id)
    config = record.config()
    if not config.log_to:
        return run_recorded(store, run_id, callback=callback, should_stop=should_stop, dataset=dataset)
    trackers = open_trackers(config.log_to, record.path, config.tracking_uri)
    trackers.params(config.to_dict())
    report = None
    try:
        report = run_recorded(
            store, run_id, callback=trackers.listener(callback), should_stop=should_stop, dataset=dataset
        )
    finally:
        if report is None:  # cancelled or failed: what was logged stays, the runs are ended
            trackers.finish({}, [])
    if report is not None:
        folder = record.folder
        card = folder.file(CARD_FILE)
        atomic_write(card, lambda tmp: open(tmp, "w", encoding="utf-8").write(model_card(folder.path, examples=False)))
        exports = sorted(folder.file(EXPORTS_DIR).glob("*.onnx")) if folder.file(EXPORTS_DIR).is_dir() else []
        trackers.finish(final_figures(report), [folder.file(REPORT_FILE), card, *exports])
    return report
