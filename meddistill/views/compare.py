"""Side-by-side tables of a run's models and of several runs, formatted for people."""

from __future__ import annotations

import csv
import io

from meddistill.runs.deployment import DEPLOYED_FORMATS, deployed_fields
from meddistill.runs.layout import LABELS


def _pct(value: float) -> str:
    return "–" if value != value else f"{value:.1%}"


def _per_class(values: list[float], classes: list[str]) -> str:
    return ", ".join(f"{c}: {_pct(v)}" for c, v in zip(classes, values))


def model_rows(report: dict) -> list[dict]:
    """One row per model: metrics, size, speed, and ratios against the teacher.

    Speed-up is the teacher's batch-1 latency over the model's; compression the
    teacher's parameter count over the model's.
    """
    classes = report["dataset"]["classes"]
    teacher = report["models"].get("teacher")
    rows = []
    for role, m in report["models"].items():
        test = m["test"]
        rows.append(
            {
                "model": LABELS.get(role, role),
                "architecture": m["arch"],
                "ACC": _pct(test["acc"]),
                "balanced ACC": _pct(test["balanced_acc"]),
                "AUC": f"{test['auc']:.3f}",
                "sensitivity": _per_class(test["sensitivity"], classes),
                "specificity": _per_class(test["specificity"], classes),
                "F1": f"{test['f1']:.3f}",
                "ECE": f"{test['ece']:.3f}",
                "parameters": f"{m['params']:,}",
                "size": f"{m['size_mb']:.2f} MB",
                "MFLOPs/image": f"{m['flops'] / 1e6:,.1f}",
                "latency (eager)": f"{m['latency_ms_b1']:.2f} ms",
                **{
                    f"latency ({fmt}, ONNX Runtime)": f"{m[deployed_fields(fmt)[0]]:.2f} ms"
                    for fmt in DEPLOYED_FORMATS.get(role, ())
                    if deployed_fields(fmt)[0] in m
                },
                "throughput (eager)": f"{m['throughput_b64']:,.0f} img/s",
                "speed-up (eager)": f"{teacher['latency_ms_b1'] / m['latency_ms_b1']:.1f}x" if teacher else "–",
                "compression": f"{teacher['params'] / m['params']:.0f}x" if teacher else "–",
            }
        )
    return rows


def distillation_gain(report: dict) -> dict[str, float]:
    """Distilled student minus scratch student: ACC, balanced ACC, AUC (positive = distillation helped)."""
    kd, scratch = report["models"].get("student_kd"), report["models"].get("student_scratch")
    if not kd or not scratch:
        return {}
    return {key: kd["test"][key] - scratch["test"][key] for key in ("acc", "balanced_acc", "auc")}


def deployed_speed_up(report: dict) -> tuple[float, float, str] | None:
    """(teacher's ONNX Runtime batch-1 latency over the distilled student's fastest deployed one, that latency in
    ms, its format) or None when the report has no deployed latencies (older runs, or an export failed)."""
    teacher, kd = report["models"].get("teacher", {}), report["models"].get("student_kd", {})
    base = teacher.get(deployed_fields("onnx")[0])
    options = [
        (kd[deployed_fields(fmt)[0]], fmt) for fmt in DEPLOYED_FORMATS["student_kd"] if deployed_fields(fmt)[0] in kd
    ]
    if not base or not options:
        return None
    student_ms, fmt = min(options)
    return base / student_ms, student_ms, fmt


def headline(report: dict) -> list[tuple[str, str, str | None]]:
    """The Compare page's headline metrics as (label, value, delta) for ``st.metric``.

    Teacher and distilled-student accuracy, the distillation gain over the
    scratch student (when there is one), the speed-up (teacher's batch-1
    latency over the student's) and the compression (parameters).
    """
    teacher, kd = report["models"]["teacher"], report["models"]["student_kd"]
    cards = [
        ("Teacher ACC", _pct(teacher["test"]["acc"]), None),
        ("Student ACC", _pct(kd["test"]["acc"]), f"{kd['test']['acc'] - teacher['test']['acc']:+.1%} vs teacher"),
    ]
    gain = distillation_gain(report)
    if gain:
        cards.append(("Distillation gain", f"{gain['acc']:+.1%} ACC", f"{gain['auc']:+.3f} AUC vs scratch"))
    deployed = deployed_speed_up(report)
    eager = teacher["latency_ms_b1"] / kd["latency_ms_b1"]
    if deployed:
        speed_up, student_ms, fmt = deployed
        detail = f"{student_ms:.2f} ms per image ({fmt}); eager PyTorch {eager:.1f}x"
        cards.append(("Speed-up as deployed (ONNX Runtime)", f"{speed_up:.1f}x", detail))
    else:
        cards.append(("Speed-up (PyTorch eager)", f"{eager:.1f}x", f"{kd['latency_ms_b1']:.2f} ms per image"))
    cards.append(("Compression", f"{teacher['params'] / kd['params']:.0f}x", f"{kd['size_mb']:.2f} MB"))
    return cards


def runs_rows(records_and_reports: list[tuple]) -> list[dict]:
    """One row per finished run for the multi-run table: (RunRecord, report) pairs."""
    rows = []
    for record, report in records_and_reports:
        models = report["models"]
        teacher, kd = models["teacher"], models["student_kd"]
        rows.append(
            {
                "run": record.id,
                "dataset": report["dataset"]["name"],
                "teacher": teacher["arch"],
                "student": kd["arch"],
                "method": report["config"]["method"],
                "T": report["config"]["kd_temperature"],
                "alpha": report["config"]["kd_alpha"],
                "teacher ACC": _pct(teacher["test"]["acc"]),
                "student ACC": _pct(kd["test"]["acc"]),
                "scratch ACC": _pct(models["student_scratch"]["test"]["acc"]) if "student_scratch" in models else "–",
                "teacher AUC": f"{teacher['test']['auc']:.3f}",
                "student AUC": f"{kd['test']['auc']:.3f}",
                "speed-up (eager)": f"{teacher['latency_ms_b1'] / kd['latency_ms_b1']:.1f}x",
                "compression": f"{teacher['params'] / kd['params']:.0f}x",
            }
        )
    return rows


def report_csv(report: dict) -> str:
    """The report's per-model numbers as CSV (raw values, one row per model)."""
    out = io.StringIO()
    fields = [
        "role",
        "arch",
        "params",
        "size_mb",
        "flops",
        "latency_ms_b1",
        "throughput_b64",
        "train_seconds",
        "acc",
        "balanced_acc",
        "auc",
        "f1",
        "ece",
    ]
    writer = csv.DictWriter(out, fieldnames=fields)
    writer.writeheader()
    for role, m in report["models"].items():
        writer.writerow({"role": role, **{k: m[k] for k in fields[1:8]}, **{k: m["test"][k] for k in fields[8:]}})
    return out.getvalue()


def teacher_line(report: dict) -> str:
    """Where the teacher came from: 'Teacher: trained here', 'Teacher: timm/resnet18 from ImageNet weights,
    fine-tuned here' or 'Teacher: imported ONNX model FILE (sha256 abcdef12…), used as is (val AUC 0.91)'."""
    teacher = report.get("models", {}).get("teacher", {})
    source = teacher.get("source") or {"kind": "trained here"}
    if source["kind"].startswith("pretrained"):
        start = f" ({source['file']})" if source.get("file") else ""
        return (
            f"Teacher: {source.get('weights', teacher.get('arch', ''))} from ImageNet weights{start}, fine-tuned here"
        )
    if "file" not in source:
        return f"Teacher: {source['kind']}"
    kind = source["kind"].removeprefix("imported, ")
    fmt = {"onnx": "ONNX model ", "torchscript": "TorchScript model "}.get(source.get("format", ""), "")
    val = f" (val AUC {source['val_auc']:.3f})" if "val_auc" in source else ""
    return f"Teacher: imported {fmt}{source['file']} (sha256 {source.get('sha256', '')[:12]}…), {kind}{val}"


def verdict_lines(report: dict) -> list[tuple[str, str]]:
    """(Streamlit tone, sentence) per verdict: success when distillation gained, warning when it lost, else info."""
    lines = []
    for key, verdict in report.get("verdict", {}).items():
        text = verdict["sentence"]
        tone = "info"
        if key == "distillation" and " gained " in text:
            tone = "success"
        elif key == "distillation" and " lost " in text:
            tone = "warning"
        lines.append((tone, text))
    return lines


def search_summary(report: dict) -> str | None:
    """One line on the ``--method auto`` search: the chosen method and settings, out of how many candidates."""
    search = report.get("search")
    if not search:
        return None
    chosen = search["chosen"]
    return (
        f"Method chosen on validation: {chosen['method']} (T {chosen['kd_temperature']:g}, alpha "
        f"{chosen['kd_alpha']:g}, beta {chosen['kd_beta']:g}), val AUC {chosen['val_auc']:.3f}, best of "
        f"{len(search['candidates'])} candidates tried in {search['seconds']:.0f} s ({search['rule']})."
    )
