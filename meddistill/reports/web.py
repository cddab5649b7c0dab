"""The facts an offline web page shows beside its model (``meddistill.web.build_page``), read from the run folder."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

import onnxruntime
import torch

from meddistill.evaluation.export import OPSET
from meddistill.store.layout import LABELS
from meddistill.store.report import Report

NOTICE = (
    "This page is a research tool for checking a small model on your own scans. It is not a medical device, it is not "
    "cleared or approved for clinical use, and it does not make a diagnosis: every result is for a clinician to review."
)
RULES = {"youden": "Youden's J", "sensitivity": "target sensitivity", "specificity": "target specificity"}


def _meddistill_version() -> str:
    """The installed MedDistill version (pyproject.toml's), read without importing the package's top level."""
    try:
        return version("meddistill")
    except PackageNotFoundError:
        return "not installed (run from a source tree)"


def intended_use(classes: list[str], dataset: str) -> str:
    """What a run's student is for, in one paragraph (the model card and the web page say the same)."""
    return (
        f"A small, fast classifier of {', '.join(classes)} on {dataset} images, distilled from a larger teacher, for "
        "research and for checking whether a small model can stand in for the teacher. It is not a medical device and "
        "not a diagnosis: every prediction is for a clinician to review."
    )


def _figures(report: Report, role: str) -> dict[str, str]:
    test = report.models[role].test
    trust = report.trust.models.get(role) if report.trust is not None else None
    full = (trust.leak_free or {}).get("full", {}) if trust is not None else {}
    n = full.get("n") or report.dataset.get("sizes", {}).get("test", "")
    figures = {}
    if report.task == "multi_label":
        figures["test macro AUC"] = f"{test.auc:.3f}"
    else:
        figures["test accuracy"] = f"{test.acc:.3f} (balanced {test.balanced_acc:.3f})"
        ci = full.get("auc_ci")
        interval = f" (95 % CI {ci[0]:.3f} to {ci[1]:.3f})" if ci and ci[0] == ci[0] else ""
        figures["test AUC"] = f"{test.auc:.3f}{interval}"
    figures["test images"] = str(n)
    if trust is not None and trust.operating:
        p = trust.operating[0].test
        if "sensitivity" in p:
            figures[f"at the operating point ({trust.operating[0].name})"] = (
                f"sensitivity {p['sensitivity']:.3f}, specificity {p['specificity']:.3f} on test"
            )
    return figures


def page_info(report: Report, role: str, temperature: list[float] | None, channels: int, size: int) -> dict:
    """The ``info`` of ``meddistill.web.build_page`` for one model of a finished run.

    Args:
        report: The run's report (its models' test figures and trust section).
        role: The exported model's role.
        temperature: The temperature(s) the exported logits are divided by (None: raw).
        channels: Input channels C.
        size: Input side S.
    """
    classes = list(report.dataset["classes"])
    dataset = str(report.dataset["name"])
    entry = report.models[role]
    trust = report.trust.models.get(role) if report.trust is not None else None
    operating = [
        {"name": p.name, "index": p.index, "threshold": float(p.threshold)} for p in (trust.operating if trust else [])
    ]
    rule = RULES.get(report.trust.rule, report.trust.rule) if report.trust is not None else "none"
    if report.trust is not None and report.trust.target is not None:
        rule += f" {report.trust.target:g}"
    return {
        "title": f"{dataset}: {LABELS[role]} · {entry.arch}",
        "subtitle": f"MedDistill run {report.run_id} · {entry.params:,} parameters · runs in this browser, offline",
        "notice": NOTICE,
        "model": f"{LABELS[role]}: {entry.arch}, {entry.params:,} parameters, int8 ONNX",
        "run_id": report.run_id,
        "dataset": dataset,
        "classes": classes,
        "channels": int(channels),
        "size": int(size),
        "activation": "sigmoid" if report.task == "multi_label" else "softmax",
        "temperature": [float(t) for t in temperature] if temperature else [],
        "operating": operating,
        "operating_rule": rule,
        "figures": _figures(report, role),
        "intended_use": intended_use(classes, dataset),
        "versions": {
            "MedDistill": _meddistill_version(),
            "ONNX opset": str(OPSET),
            "onnxruntime (quantization)": onnxruntime.__version__,
            "torch": torch.__version__.split("+")[0],
        },
    }
