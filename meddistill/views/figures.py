"""Plotly figures for the dashboard, built from plain run data (no Streamlit here)."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from meddistill.store.layout import LABELS
from meddistill.store.report import Report

COLOURS = {"teacher": "#1f77b4", "student_scratch": "#7f7f7f", "student_kd": "#d62728"}
SPLIT_COLOURS = {"train": "#1f77b4", "val": "#ff7f0e", "test": "#2ca02c"}


def _layout(figure: go.Figure, height: int = 360) -> go.Figure:
    figure.update_layout(height=height, margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.2))
    return figure


def class_counts_figure(summary: dict) -> go.Figure:
    """Grouped bars: images per class in each split (from ``MedDataset.summary()``)."""
    figure = go.Figure()
    for split, counts in summary["counts"].items():
        figure.add_bar(
            name=split,
            x=summary["classes"],
            y=counts,
            marker_color=SPLIT_COLOURS.get(split),
            text=counts,
            textposition="outside",
        )
    figure.update_layout(barmode="group", title="Images per class and split", yaxis_title="images")
    return _layout(figure)


def training_curves_figure(batch_loss: dict[str, list], epochs: dict[str, list[dict]]) -> go.Figure:
    """Loss per batch (lines) and per epoch on validation (markers), and validation accuracy.

    Args:
        batch_loss: role -> [(epoch position, batch loss)].
        epochs: role -> [{"epoch", "train_loss", "val_loss", "val_acc", "val_auc"}].
    """
    figure = make_subplots(rows=1, cols=2, subplot_titles=("Loss", "Validation accuracy"))
    for role in LABELS:
        colour, name = COLOURS[role], LABELS[role]
        points = batch_loss.get(role, [])
        if points:
            figure.add_scatter(
                x=[p[0] for p in points],
                y=[p[1] for p in points],
                mode="lines",
                name=f"{name} train",
                line=dict(color=colour, width=1),
                opacity=0.6,
                row=1,
                col=1,
            )
        done = epochs.get(role, [])
        if done:
            x = [e["epoch"] for e in done]
            figure.add_scatter(
                x=x,
                y=[e["val_loss"] for e in done],
                mode="lines+markers",
                name=f"{name} val",
                line=dict(color=colour, dash="dot"),
                row=1,
                col=1,
            )
            figure.add_scatter(
                x=x,
                y=[e["val_acc"] for e in done],
                mode="lines+markers",
                name=f"{name} val acc",
                line=dict(color=colour),
                showlegend=False,
                row=1,
                col=2,
            )
    figure.update_xaxes(title_text="epoch")
    figure.update_yaxes(type="log", row=1, col=1)
    figure.update_yaxes(tickformat=".0%", row=1, col=2)
    return _layout(figure, 380)


def confusion_figure(matrix: list[list[int]], class_names: list[str], title: str) -> go.Figure:
    """A confusion-matrix heat map (rows: truth, columns: prediction)."""
    figure = go.Figure(
        go.Heatmap(
            z=matrix,
            x=class_names,
            y=class_names,
            colorscale="Blues",
            showscale=False,
            text=matrix,
            texttemplate="%{text}",
        )
    )
    figure.update_layout(title=title, xaxis_title="predicted", yaxis_title="true", yaxis_autorange="reversed")
    return _layout(figure, 320)


def roc_figure(report: Report) -> go.Figure:
    """ROC curves of the three models (positive class, or one-vs-rest per class)."""
    figure = go.Figure()
    figure.add_scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(color="#bbb", dash="dash"), name="chance")
    classes = report.dataset["classes"]
    for role, model in report.models.items():
        for curve in model.test.roc:
            suffix = f" ({classes[curve['class']]})" if len(classes) > 2 else ""
            figure.add_scatter(
                x=curve["fpr"],
                y=curve["tpr"],
                mode="lines",
                line=dict(color=COLOURS.get(role)),
                name=f"{LABELS.get(role, role)}{suffix} AUC {model.test.auc:.3f}",
            )
    figure.update_layout(title="ROC on the test set", xaxis_title="1 - specificity", yaxis_title="sensitivity")
    return _layout(figure, 420)


def reliability_figure(report: Report) -> go.Figure:
    """Reliability diagram: accuracy against confidence per bin, with the diagonal of perfect calibration."""
    figure = go.Figure()
    figure.add_scatter(
        x=[0, 1], y=[0, 1], mode="lines", line=dict(color="#bbb", dash="dash"), name="perfectly calibrated"
    )
    for role, model in report.models.items():
        bins = model.test.reliability
        figure.add_scatter(
            x=[b["confidence"] for b in bins],
            y=[b["accuracy"] for b in bins],
            mode="lines+markers",
            marker=dict(size=[6 + 14 * (b["count"] / max(1, max(x["count"] for x in bins))) for b in bins]),
            line=dict(color=COLOURS.get(role)),
            name=f"{LABELS.get(role, role)} ECE {model.test.ece:.3f}",
        )
    figure.update_layout(
        title="Reliability (marker size: images in the bin)", xaxis_title="confidence", yaxis_title="accuracy"
    )
    return _layout(figure, 420)


def faithfulness_figure(results: dict) -> go.Figure:
    """Deletion and insertion curves (RISE) of each model's map against random maps of the same block size.

    Args:
        results: ``{role: Faithfulness}`` from ``cases.explain_case`` (role ``teacher`` or ``student``).
    """
    figure = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=("Deletion (lower area = more faithful)", "Insertion (higher area = more faithful)"),
    )
    colours = {"teacher": COLOURS["teacher"], "student": COLOURS["student_kd"]}
    for role, result in results.items():
        for col, test in ((1, "deletion"), (2, "insertion")):
            for kind, probs, dash in (
                (f"{role}'s map", getattr(result, test), "solid"),
                (f"{role}, random blocks", getattr(result, f"random_{test}"), "dot"),
            ):
                figure.add_scatter(
                    x=result.fractions,
                    y=probs,
                    mode="lines",
                    name=kind,
                    legendgroup=kind,
                    showlegend=col == 1,
                    line=dict(color=colours[role], dash=dash),
                    row=1,
                    col=col,
                )
    figure.update_xaxes(title_text="fraction of blocks moved", tickformat=".0%")
    figure.update_yaxes(title_text="probability of the explained class", range=[0, 1.02])
    return _layout(figure, 380)


def findings_figure(report: Report) -> go.Figure:
    """Test AUC per finding of each model (several findings per image), findings sorted by test prevalence."""
    entries = {role: m.test for role, m in report.models.items() if hasattr(m.test, "findings")}
    first = next(iter(entries.values()))
    order = sorted(range(len(first.findings)), key=lambda k: -first.findings[k]["prevalence"])
    names = [f"{first.findings[k]['name']} ({first.findings[k]['positives']})" for k in order]
    figure = go.Figure()
    for role, test in entries.items():
        figure.add_bar(
            y=names, x=[test.findings[k]["auc"] for k in order], name=LABELS.get(role, role), orientation="h"
        )
    figure.add_vline(x=0.5, line=dict(color="#bbb", dash="dash"))
    figure.update_layout(
        title="Test AUC per finding (test positives in brackets)",
        barmode="group",
        xaxis=dict(range=[0, 1], title="AUC"),
        yaxis=dict(autorange="reversed"),
        height=120 + 40 * len(names),
        margin=dict(l=10, r=10, t=50, b=10),
    )
    return figure
