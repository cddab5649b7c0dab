"""The trust section as the Compare page shows it: the operating point chosen again (cached per run and rule),
ROC curves with the operating point marked, reliability before and after calibration, and risk-coverage curves."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
from sklearn.metrics import roc_curve

from meddistill.evaluation.trust import Trust, TrustSettings
from meddistill.pipeline.trust import calibrated, reassess
from meddistill.store.layout import LABELS, REPORT_FILE, RunFolder, predictions_key
from meddistill.views.figures import COLOURS, _layout

RULE_LABELS = {
    "youden": "Youden's J (balanced)",
    "sensitivity": "target sensitivity",
    "specificity": "target specificity",
}


@functools.lru_cache(maxsize=32)
def trust_for(run_dir: str, rule: str, target: float | None, mtime: float) -> Trust:
    """The run's trust section with ``rule`` and ``target`` (``mtime``: report.json's, so a refreshed run is read
    again)."""
    return reassess(RunFolder(run_dir), TrustSettings(rule, target))


def chosen_trust(run_dir: str | Path, rule: str, target: float | None) -> Trust:
    """``trust_for`` keyed on the report's modification time."""
    path = Path(run_dir)
    mtime = (path / REPORT_FILE).stat().st_mtime
    return trust_for(str(path), rule, target if rule != "youden" else None, mtime)


def operating_roc_figure(run_dir: str | Path, trust: Trust, task_name: str, index: int, name: str) -> go.Figure:
    """Test ROC of class (or finding) ``index`` against the rest for every model, calibrated, with each model's
    operating point marked."""
    saved = RunFolder(run_dir).predictions()
    labels = saved["labels"]
    figure = go.Figure()
    figure.add_scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(color="#bbb", dash="dash"), name="chance")
    for role, model in trust.models.items():
        probs = calibrated(trust, role, saved[predictions_key(role)], task_name)
        y = labels[:, index] if labels.ndim == 2 else (labels == index).astype(float)
        known = ~np.isnan(y)
        if len(np.unique(y[known])) < 2:
            continue
        fpr, tpr, _ = roc_curve(y[known], probs[known, index])
        figure.add_scatter(x=fpr, y=tpr, mode="lines", line=dict(color=COLOURS.get(role)), name=LABELS.get(role, role))
        point = next((p for p in model.operating if p.index == index), None)
        if point is not None:
            figure.add_scatter(
                x=[1 - point.test["specificity"]],
                y=[point.test["sensitivity"]],
                mode="markers",
                marker=dict(color=COLOURS.get(role), size=13, symbol="x"),
                name=f"{LABELS.get(role, role)} at {point.threshold:.3f}",
            )
    figure.update_layout(
        title=f"ROC on test, '{name}' positive (x: operating point)",
        xaxis_title="1 - specificity",
        yaxis_title="sensitivity",
    )
    return _layout(figure, 420)


def calibration_figure(trust: Trust, raw: bool = False) -> go.Figure:
    """Reliability on test: accuracy against confidence per bin, calibrated (solid) and raw (dotted); ``raw`` shows
    the raw bins only."""
    figure = go.Figure()
    figure.add_scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(color="#bbb", dash="dash"), name="perfect")
    for role, model in trust.models.items():
        shown = [("raw", model.reliability_raw, model.ece_raw, "dot")]
        if not raw:
            shown.insert(0, ("calibrated", model.reliability, model.ece, "solid"))
        for which, bins, ece, dash in shown:
            figure.add_scatter(
                x=[b["confidence"] for b in bins],
                y=[b["accuracy"] for b in bins],
                mode="lines+markers",
                line=dict(color=COLOURS.get(role), dash=dash),
                name=f"{LABELS.get(role, role)} {which} ECE {ece:.3f}",
            )
    figure.update_layout(title="Reliability on test", xaxis_title="confidence", yaxis_title="accuracy")
    return _layout(figure, 420)


def risk_coverage_figure(trust: Trust) -> go.Figure:
    """Accuracy on the cases kept against the fraction kept (the least confident referred), per model."""
    figure = go.Figure()
    metric = "ACC"
    for role, model in trust.models.items():
        if model.referral is None:
            continue
        metric = model.referral.get("metric", "ACC")
        curve = model.referral["curve"]
        figure.add_scatter(
            x=curve["coverage"],
            y=curve["value"],
            mode="lines",
            line=dict(color=COLOURS.get(role)),
            name=LABELS.get(role, role),
        )
    figure.update_layout(
        title="Risk-coverage on test (calibrated confidence)",
        xaxis_title="fraction of cases kept (the rest referred)",
        yaxis_title=f"{metric} on the kept cases",
    )
    return _layout(figure, 420)
