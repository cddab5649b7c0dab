"""Side-by-side tables of a run's models and of several runs, formatted for people: what ``meddistill run`` and
``show`` print and what the Compare and Home pages show, all read from the typed report."""

from __future__ import annotations

import csv
import io

from meddistill.evaluation.significance import GAINED, LOST
from meddistill.reports.trust import CSV_FIELDS, csv_values
from meddistill.settings.sources import describe_source
from meddistill.store.layout import LABELS
from meddistill.store.report import DEPLOYED_FORMATS, Report
from meddistill.tasks import task_for


def _pct(value: float) -> str:
    return "–" if value != value else f"{value:.1%}"


def model_rows(report: Report) -> list[dict]:
    """One row per model: metrics, size, speed, and ratios against the teacher.

    Speed-up is the teacher's batch-1 latency over the model's; compression the
    teacher's parameter count over the model's.
    """
    classes = report.dataset["classes"]
    teacher = report.models.get("teacher")
    task = task_for(report.task)
    rows = []
    for role, m in report.models.items():
        rows.append(
            {
                "model": LABELS.get(role, role),
                "architecture": m.arch,
                **task.columns(m.test, classes),
                "parameters": f"{m.params:,}",
                "size": f"{m.size_mb:.2f} MB",
                "MFLOPs/image": f"{m.flops / 1e6:,.1f}",
                "latency (eager)": f"{m.latency_ms_b1:.2f} ms",
                **{
                    f"latency ({fmt}, ONNX Runtime)": f"{m.deployed(fmt).latency_ms_b1:.2f} ms"
                    for fmt in DEPLOYED_FORMATS.get(role, ())
                    if m.deployed(fmt)
                },
                "throughput (eager)": f"{m.throughput_b64:,.0f} img/s",
                "speed-up (eager)": f"{teacher.latency_ms_b1 / m.latency_ms_b1:.1f}x" if teacher else "–",
                "compression": f"{teacher.params / m.params:.0f}x" if teacher else "–",
            }
        )
    return rows


def findings_rows(report: Report) -> list[dict]:
    """One row per finding (several findings per image): its test prevalence and each model's AUC, average
    precision and sensitivity / specificity at the threshold chosen on val; empty for one class per image."""
    entries = {role: m.test for role, m in report.models.items() if hasattr(m.test, "findings")}
    if not entries:
        return []
    first = next(iter(entries.values()))
    rows = []
    for k, finding in enumerate(first.findings):
        row = {"finding": finding["name"], "test positives": finding["positives"]}
        row["prevalence"] = _pct(finding["prevalence"])
        for role, test in entries.items():
            f, name = test.findings[k], LABELS.get(role, role)
            row[f"{name} AUC"] = "–" if f["auc"] != f["auc"] else f"{f['auc']:.3f}"
            low, high = f.get("auc_ci") or (float("nan"), float("nan"))
            row[f"{name} AUC 95% CI"] = "–" if low != low else f"{low:.3f} to {high:.3f}"
            row[f"{name} AP"] = "–" if f["ap"] != f["ap"] else f"{f['ap']:.3f}"
            row[f"{name} sens / spec"] = f"{_pct(f['sensitivity'])} / {_pct(f['specificity'])}"
        rows.append(row)
    return rows


def findings_table(report: Report) -> str:
    """A plain-text per-finding table (test AUC of each model, prevalence); empty for one class per image."""
    rows = findings_rows(report)
    if not rows:
        return ""
    roles = [role for role, m in report.models.items() if hasattr(m.test, "findings")]
    head = f"{'finding':<20}{'pos':>5}{'prev':>7}" + "".join(f"{r[:15] + ' AUC':>20}" for r in roles)
    lines = [head]
    for row in rows:
        aucs = "".join(f"{row[LABELS.get(r, r) + ' AUC']:>20}" for r in roles)
        lines.append(f"{row['finding'][:19]:<20}{row['test positives']:>5}{row['prevalence']:>7}{aucs}")
    return "\n".join(lines)


def distillation_gain(report: Report) -> dict[str, float]:
    """Distilled student minus scratch student: ACC, balanced ACC, AUC (positive = distillation helped)."""
    kd, scratch = report.models.get("student_kd"), report.models.get("student_scratch")
    if not kd or not scratch:
        return {}
    return {key: getattr(kd.test, key) - getattr(scratch.test, key) for key in ("acc", "balanced_acc", "auc")}


def deployed_speed_up(report: Report, role: str = "student_kd") -> tuple[float, float, str] | None:
    """(teacher's ONNX Runtime batch-1 latency over the student's fastest deployed one, that latency in ms, its
    format) or None when the report has no deployed latencies (older runs, or an export failed)."""
    teacher, student = report.models.get("teacher"), report.models.get(role)
    base = teacher.deployed("onnx") if teacher else None
    fastest = student.fastest_deployed(role) if student else None
    if not base or not fastest:
        return None
    student_ms, fmt = fastest
    return base.latency_ms_b1 / student_ms, student_ms, fmt


def headline(report: Report) -> list[tuple[str, str, str | None]]:
    """The Compare and Home pages' headline metrics as (label, value, delta) for ``st.metric``.

    Teacher accuracy, the headline student's (the distilled student unless the scratch student is better on val:
    ``Report.headline``), the distillation gain over the scratch student (when there is one), the speed-up (the
    teacher's batch-1 latency over the student's) and the compression (parameters).
    """
    role = report.headline if report.headline in report.models else "student_kd"
    teacher, student = report.models["teacher"], report.models[role]
    which = "distilled" if role == "student_kd" else "scratch, best on val"
    task = task_for(report.task)
    key, name = task.card
    delta = getattr(student.test, key) - getattr(teacher.test, key)
    cards = [
        (f"Teacher {name}", task.figure(teacher.test), None),
        (f"Student {name} ({which})", task.figure(student.test), f"{delta:+.1%}" if key == "acc" else f"{delta:+.3f}"),
    ]
    cards[1] = (*cards[1][:2], f"{cards[1][2]} vs teacher")
    cards[:2] = _leak_free_cards(report, role, cards[:2]) or cards[:2]
    gain = distillation_gain(report)
    if gain and key == "acc":
        cards.append(("Distillation gain", f"{gain['acc']:+.1%} ACC", f"{gain['auc']:+.3f} AUC vs scratch"))
    elif gain:
        cards.append(("Distillation gain", f"{gain['auc']:+.3f} {name}", "vs the scratch student"))
    deployed = deployed_speed_up(report, role)
    eager = teacher.latency_ms_b1 / student.latency_ms_b1
    if deployed:
        speed_up, student_ms, fmt = deployed
        detail = f"{student_ms:.2f} ms per image ({fmt}); eager PyTorch {eager:.1f}x"
        cards.append(("Speed-up as deployed (ONNX Runtime)", f"{speed_up:.1f}x", detail))
    else:
        cards.append(("Speed-up (PyTorch eager)", f"{eager:.1f}x", f"{student.latency_ms_b1:.2f} ms per image"))
    cards.append(("Compression", f"{teacher.params / student.params:.0f}x", f"{student.size_mb:.2f} MB"))
    return cards


def _leak_free_cards(report: Report, role: str, cards: list) -> list | None:
    """The teacher's and the headline student's lead figure on the leak-free test images, when a leak was found (the
    figure on all test images in the delta line)."""
    trust = report.trust
    if trust is None or any(
        trust.models.get(r) is None or trust.models[r].leak_free is None for r in ("teacher", role)
    ):
        return None
    out = []
    for (label, _, _), r in zip(cards, ("teacher", role)):
        leak = trust.models[r].leak_free
        key = "acc" if "acc" in leak["clean"] else "auc"
        shown = (lambda v: f"{v:.1%}") if key == "acc" else (lambda v: f"{v:.3f}")
        value = f"{shown(leak['clean'][key])}"
        detail = f"{leak['n_clean']} of {leak['n']} images; {shown(leak['full'][key])} on all"
        out.append((f"{label}, leak-free", value, detail))
    return out


def guard_lines(report: Report) -> list[tuple[str, str]]:
    """(Streamlit tone, sentence): the teacher against the scratch student on val, and which student is the
    headline; a warning when the teacher is not better or the headline is not the distilled student."""
    lines = []
    if report.teacher_check is not None:
        lines.append(("success" if report.teacher_check.better else "warning", report.teacher_check.sentence))
    if report.distilled_from:
        lines.append(("info", report.distilled_from))
    if report.headline_reason:
        lines.append(("info" if report.headline == "student_kd" else "warning", report.headline_reason))
    return lines


def runs_rows(records_and_reports: list[tuple]) -> list[dict]:
    """One row per finished run for the multi-run table: (RunRecord, report) pairs."""
    rows = []
    for record, report in records_and_reports:
        models = report.models
        accuracy = task_for(report.task).card[0] == "acc"  # shown only where accuracy is the lead figure
        teacher, kd = models["teacher"], models["student_kd"]
        scratch = models.get("student_scratch")
        rows.append(
            {
                "run": record.id,
                "dataset": report.dataset["name"],
                "teacher": teacher.arch,
                "student": kd.arch,
                "method": report.config["method"],
                "T": report.config["kd_temperature"],
                "alpha": report.config["kd_alpha"],
                "teacher ACC": _pct(teacher.test.acc) if accuracy else "–",
                "student ACC": _pct(kd.test.acc) if accuracy else "–",
                "scratch ACC": _pct(scratch.test.acc) if scratch and accuracy else "–",
                "teacher AUC": f"{teacher.test.auc:.3f}",
                "student AUC": f"{kd.test.auc:.3f}",
                "speed-up (eager)": f"{teacher.latency_ms_b1 / kd.latency_ms_b1:.1f}x",
                "compression": f"{teacher.params / kd.params:.0f}x",
            }
        )
    return rows


def report_csv(report: Report) -> str:
    """The report's per-model numbers as CSV (raw values, one row per model with its trust figures: temperature,
    ECE and Brier before and after, the operating point and the leak-free figures; with several findings per image,
    then one row per model and finding, its ``finding`` column filled and ``auc`` that finding's)."""
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
    per_finding = ("finding", "positives", "prevalence", "ap", "threshold", "sensitivity", "specificity")
    findings = all(hasattr(m.test, "findings") for m in report.models.values())
    columns = fields + (list(CSV_FIELDS) if report.trust else []) + list(per_finding if findings else ())
    writer = csv.DictWriter(out, fieldnames=columns, restval="")
    writer.writeheader()
    for role, m in report.models.items():
        row = {"role": role, **{k: getattr(m, k) for k in fields[1:8]}, **{k: getattr(m.test, k) for k in fields[8:13]}}
        writer.writerow({**row, **csv_values(report.trust, role)})
    for role, m in report.models.items() if findings else ():
        for f in m.test.findings:
            row = {"finding": f["name"], **{k: f[k] for k in per_finding[1:]}}
            writer.writerow({"role": role, "arch": m.arch, "auc": f["auc"], "f1": f["f1"], "ece": f["ece"], **row})
    return out.getvalue()


def teacher_line(report: Report) -> str:
    """Where the teacher came from: 'Teacher: trained here', 'Teacher: timm/resnet18 from ImageNet weights,
    fine-tuned here' or 'Teacher: imported ONNX model FILE (sha256 abcdef12…), used as is (val AUC 0.91)'."""
    teacher = report.models.get("teacher")
    return describe_source(teacher.source if teacher else None, teacher.arch if teacher else "")


TONES = {GAINED: "success", LOST: "warning"}  # Streamlit tone of a verdict's direction; else "info"


def verdict_lines(report: Report) -> list[tuple[str, str]]:
    """(Streamlit tone, sentence) per verdict: success when distillation gained, warning when it lost, else info."""
    return [
        (TONES.get(verdict.direction, "info") if key == "distillation" else "info", verdict.sentence)
        for key, verdict in report.verdict.items()
    ]


def summary_lines(report: Report) -> list[str]:
    """The lines printed under the table: the method search, each verdict's sentence, the teacher against the
    scratch student on val, and which student is the headline."""
    lines = [search_summary(report)] + [v.sentence for v in report.verdict.values()]
    return [line for line in lines + [text for _, text in guard_lines(report)] if line]


def search_summary(report: Report) -> str | None:
    """One line on the ``--method auto`` search: the chosen method and settings, out of how many candidates."""
    search = report.search
    if not search:
        return None
    chosen = search["chosen"]
    return (
        f"Method chosen on validation: {chosen['method']} (T {chosen['kd_temperature']:g}, alpha "
        f"{chosen['kd_alpha']:g}, beta {chosen['kd_beta']:g}), val AUC {chosen['val_auc']:.3f}, best of "
        f"{len(search['candidates'])} candidates tried in {search['seconds']:.0f} s ({search['rule']})."
    )


def comparison_table(report: Report) -> str:
    """A plain-text table of the models: ACC, AUC, size, eager latency and speed-up, and the fastest latency as
    deployed (ONNX Runtime, fp32 or int8)."""
    teacher = report.models.get("teacher")
    base = teacher.latency_ms_b1 if teacher else None
    task = task_for(report.task)
    acc, auc = task.short
    head = f"{'model':<17}{'arch':<20}{acc:>7}{auc:>7}{'params':>12}{'MB':>8}{'ms/img':>9}{'speed-up':>10}"
    lines = [head + f"{'ORT ms/img':>12}"]
    for role, m in report.models.items():
        speed = f"{base / m.latency_ms_b1:.1f}x" if base else "-"
        fastest = m.fastest_deployed(role)
        ort = f"{fastest[0]:.3f}" if fastest else "-"
        lines.append(
            f"{role:<17}{m.arch:<20}{m.test.acc:>7.3f}{m.test.auc:>7.3f}{m.params:>12,}"
            f"{m.size_mb:>8.2f}{m.latency_ms_b1:>9.2f}{speed:>10}{ort:>12}"
        )
    if task.note:
        lines.append(task.note)
    return "\n".join(lines)
