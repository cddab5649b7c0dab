"""A run's model card: the facts a clinical team circulates, all read from the run folder.

``card_facts(run_dir)`` gathers them (dataset provenance and splits, class balance, settings, every model's test
metrics with 95 % bootstrap intervals, calibration, deployed latency, example cases with both models' maps, the
review tallies, limitations written from the run); ``meddistill.reports.card_html.render_card`` turns them into one
self-contained HTML file (``meddistill card RUN --out card.html``, "Download model card" on Compare).

Example:
    >>> html = model_card("~/.meddistill/runs/20261130-142501-a3f9c2")
    >>> Path("card.html").write_text(html)
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np

from meddistill.data.summary import describe_splits
from meddistill.evaluation.findings import macro_auc_interval
from meddistill.evaluation.significance import RESAMPLES, bootstrap_interval
from meddistill.explain.methods import available_explainers
from meddistill.explain.overlay import overlay
from meddistill.explain.pair import explain_pair
from meddistill.explain.planes import representative_slice
from meddistill.pipeline.trust import calibrated
from meddistill.reports.card_html import reliability_svg
from meddistill.reports.card_trust import rows_table, trust_limitations, trust_sections
from meddistill.reports.tables import findings_rows, guard_lines, teacher_line
from meddistill.reports.trust import leak_rows
from meddistill.reports.web import intended_use
from meddistill.store.layout import LABELS, ROLES, RunFolder, predictions_key
from meddistill.store.report import Report
from meddistill.store.reviews import VERDICTS, ReviewStore

EXAMPLES_PER_KIND = 2  # correct, wrong and disagreement cases shown
SMALL_TEST_SET = 300  # below this many test images the intervals are wide enough to say so
IMBALANCE = 2.0  # largest over smallest class count above which the card warns


def _examples(folder: RunFolder, facts: dict, labels: np.ndarray, probs: dict) -> list[dict]:
    """Up to ``EXAMPLES_PER_KIND`` correct, wrong and teacher-student disagreement cases, with both models' maps
    overlaid on the scan at its stored resolution."""
    classes = facts["classes"]
    if labels.ndim == 2:  # several findings per image: the findings each model calls at 0.5
        truth = np.nan_to_num(labels) > 0
        student, teacher = probs["student_kd"] >= 0.5, probs["teacher"] >= 0.5
        right = ((student == truth) | np.isnan(labels)).all(1)
        kinds = {
            "correct": np.flatnonzero(right),
            "wrong": np.flatnonzero(~right),
            "teacher and student disagree": np.flatnonzero((student != teacher).any(1)),
        }

        def said(role: str, index: int) -> str:
            flags = truth[index] if role == "truth" else probs[role][index] >= 0.5
            return ", ".join(c for c, on in zip(classes, flags) if on) or "no finding"
    else:
        student, teacher = probs["student_kd"].argmax(1), probs["teacher"].argmax(1)
        kinds = {
            "correct": np.flatnonzero(student == labels),
            "wrong": np.flatnonzero(student != labels),
            "teacher and student disagree": np.flatnonzero(student != teacher),
        }

        def said(role: str, index: int) -> str:
            if role == "truth":
                return classes[int(labels[index])]
            return f"{classes[int(probs[role][index].argmax())]} ({probs[role][index].max():.0%})"

    test = folder.dataset().splits["test"]
    models = {role: folder.load_model(role) for role in ("teacher", "student_kd")}
    method = "gradcam" if "gradcam" in available_explainers(models["teacher"]) else "occlusion"
    summary, cases, used = folder.summary(), [], set()
    for kind, indices in kinds.items():
        for index in [int(i) for i in indices if int(i) not in used][:EXAMPLES_PER_KIND]:
            used.add(index)
            image = test.image(index)
            dims = summary.get("spatial_dims", 2)
            pair = explain_pair(
                models["teacher"],
                models["student_kd"],
                image,
                summary["channels"],
                summary["train_image_size"],
                method,
                spatial_dims=dims,
            )
            case = {
                "kind": kind,
                "name": test.name(index),
                "truth": said("truth", index),
                "teacher": said("teacher", index),
                "student": said("student_kd", index),
            }
            if dims == 3:  # a volume: the axial slice through the teacher's peak stands for it
                views = representative_slice(image, pair["teacher"].saliency, pair["student"].saliency)
                case["name"] += f" (axial slice {views['index']})"
                case |= {"scan": views["scan"], "teacher_map": views["teacher"], "student_map": views["student"]}
            else:
                case |= {
                    "scan": image,
                    "teacher_map": overlay(image, pair["teacher"].saliency),
                    "student_map": overlay(image, pair["student"].saliency),
                }
            cases.append(case)
    facts["example_method"] = "Grad-CAM" if method == "gradcam" else "Occlusion"
    return cases


def _limitations(facts: dict, report: Report) -> list[str]:
    """Limitations written from the run: test set size, class imbalance, resolution, leakage, the verdicts."""
    notes = []
    n = facts["test_images"]
    kd = facts["models"]["student_kd"]
    width = kd["acc_ci"][1] - kd["acc_ci"][0]
    if n < SMALL_TEST_SET:
        notes.append(
            f"Small test set: {n} images, so the distilled student's accuracy is known only to within "
            f"{width * 100:.0f} points (95 % interval); judge differences smaller than that as unresolved."
        )
    values = [int(v) for v in report.dataset.get("counts", {}).get("train", []) if v]
    if values and max(values) / min(values) > IMBALANCE:
        notes.append(
            f"Class imbalance: the training classes range from {min(values)} to {max(values)} images; accuracy "
            "alone flatters a model that favours the larger class, so read sensitivity, specificity and AUC."
        )
    native, trained = report.dataset.get("image_size"), report.dataset.get("train_image_size")
    if native and trained and trained < native:
        notes.append(
            f"Resolution: the models saw the scans at {trained} px, below their stored {native} px; findings "
            "smaller than a few pixels at that size cannot be seen by them."
        )
    notes += [text.capitalize() for text in report.warnings]
    notes.append(
        "One dataset, one site: no external validation. The models have not been tested on other scanners, "
        "populations or protocols, and are not a medical device."
    )
    return notes


def _leak_headline(report: Report) -> str:
    """The leak-free table first, when leaks were found: the figures to read."""
    rows = leak_rows(report.trust) if report.trust else []
    if not rows:
        return ""
    sentence = next(s for s in report.trust.sentences if "copy a train or val image" in s)
    return f"<p><b>Read the leak-free figures.</b> {html.escape(sentence)}</p>{rows_table(rows)}"


def card_facts(run_dir: str | Path, examples: bool = True) -> dict:
    """Everything the model card shows, from the run folder (``report.json``, ``predictions.npz``, ``config.json``,
    ``dataset.json``, the models, and the review log).

    Raises:
        MedDistillError: the run is not finished.
    """
    folder = RunFolder(run_dir).require_finished()
    report, config = folder.report(), folder.config()
    saved = folder.predictions()
    labels = saved["labels"]
    probs = {  # calibrated, as every figure of the card
        role: calibrated(report.trust, role, saved[predictions_key(role)], report.task)
        for role in ROLES
        if predictions_key(role) in saved
    }
    dataset = report.dataset
    facts = {
        "run_id": report.run_id,
        "dataset": dataset["name"],
        "classes": dataset["classes"],
        "intended_use": intended_use(list(dataset["classes"]), str(dataset["name"])),
        "sizes": dataset.get("sizes", {}),
        "counts": dataset.get("counts", {}),
        "image_size": dataset.get("image_size"),
        "train_image_size": dataset.get("train_image_size"),
        "splits": describe_splits(dataset.get("provenance", {}).get("splits", "")),
        "source_kind": dataset.get("provenance", {}).get("kind", ""),
        "test_images": int(len(labels)),
        "cpu": report.cpu,
        "threads": report.threads,
        "settings": {
            key: getattr(config, key)
            for key in ("preset", "teacher", "student", "method", "kd_temperature", "kd_alpha", "teacher_epochs")
            + ("student_epochs", "batch_size", "lr", "augment", "class_weighted", "seed", "pretrained")
        },
        "teacher_source": report.models["teacher"].source or {"kind": "trained here"},
        "teacher_line": teacher_line(report),
        "models": {},
        "verdicts": [text for _, text in guard_lines(report)] + [v.sentence for v in report.verdict.values()],
    }
    groups = folder.dataset().splits["test"].groups if labels.ndim == 2 else None
    for role, entry in report.models.items():
        if labels.ndim == 2:  # several findings: the macro AUC's interval, whole patients resampled
            auc, auc_ci = macro_auc_interval(labels, probs[role], groups, RESAMPLES, config.seed)
            interval = {"acc_ci": [float("nan")] * 2, "auc_ci": auc_ci}
        else:
            interval = bootstrap_interval(labels, probs[role], seed=config.seed)
        facts["models"][role] = {
            "label": LABELS[role],
            **{k: getattr(entry, k) for k in ("arch", "params", "size_mb", "latency_ms_b1")},
            "onnx_latency_ms_b1": entry.onnx_latency_ms_b1,
            "onnx_int8_latency_ms_b1": entry.onnx_int8_latency_ms_b1,
            **{k: getattr(entry.test, k) for k in ("acc", "auc", "ece", "balanced_acc", "sensitivity", "specificity")},
            "acc_ci": interval["acc_ci"],
            "auc_ci": interval["auc_ci"],
            "reliability": entry.test.reliability,
        }
    tallies = {v: 0 for v in VERDICTS}
    for review in ReviewStore().latest(report.run_id).values():
        tallies[review["verdict"]] = tallies.get(review["verdict"], 0) + 1
    facts["reviews"] = tallies
    facts["findings"] = findings_rows(report)
    facts["limitations"] = _limitations(facts, report) + trust_limitations(report.trust, report.headline)
    facts["trust_html"] = trust_sections(report.trust, report.headline, reliability_svg) if report.trust else ""
    facts["leak_headline"] = _leak_headline(report)
    facts["examples"] = _examples(folder, facts, labels, probs) if examples else []
    return facts


def model_card(run_dir: str | Path, examples: bool = True) -> str:
    """The run's model card as one self-contained HTML document (images embedded, no external resources)."""
    from meddistill.reports.card_html import render_card

    return render_card(card_facts(run_dir, examples=examples))
