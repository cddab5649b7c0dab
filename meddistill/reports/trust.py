"""The trust section of a report as rows for people: calibration, operating points, referral, subgroups and the
leak-free figures. ``meddistill show`` and ``meddistill trust`` print them (``trust_text``); the Compare page and
the model card show the same rows."""

from __future__ import annotations

import math

from meddistill.evaluation.referral import REFER
from meddistill.evaluation.trust import Trust
from meddistill.store.layout import LABELS


def _pct(value: float | None) -> str:
    return "–" if value is None or value != value else f"{value:.1%}"


def _ci(value: float, ci: list[float] | None, pct: bool = True) -> str:
    shown = _pct if pct else (lambda v: "–" if v != v else f"{v:.3f}")
    if not ci or any(math.isnan(c) for c in ci):
        return shown(value)
    return f"{shown(value)} ({shown(ci[0])}–{shown(ci[1])})"


def calibration_rows(trust: Trust) -> list[dict]:
    """Per model: the val-fitted temperature, and the test ECE and Brier score before and after."""
    rows = []
    for role, m in trust.models.items():
        shown = ", ".join(f"{t:.2f}" for t in m.temperature[:4]) + (" ..." if len(m.temperature) > 4 else "")
        kept = m.kept if m.kept is not None else [True] * len(m.temperature)
        if not any(kept):
            shown = "none (the fit ran to a bound)"
        elif not all(kept):
            shown += f" (applied to {sum(kept)} of {len(kept)}; the rest ran to a bound)"
        rows.append(
            {
                "model": LABELS.get(role, role),
                "temperature (val)": shown,
                "ECE raw": f"{m.ece_raw:.3f}",
                "ECE calibrated": f"{m.ece:.3f}",
                "Brier raw": f"{m.brier_raw:.3f}",
                "Brier calibrated": f"{m.brier:.3f}",
            }
        )
    return rows


def operating_rows(trust: Trust) -> list[dict]:
    """Per model and positive class (or finding): threshold, val sensitivity / specificity and the test figures
    with their 95 % intervals."""
    rows = []
    for role, m in trust.models.items():
        for p in m.operating:
            t = p.test
            rows.append(
                {
                    "model": LABELS.get(role, role),
                    "positive": p.name,
                    "threshold": f"{p.threshold:.3f}",
                    "val sens / spec": f"{_pct(p.val['sensitivity'])} / {_pct(p.val['specificity'])}",
                    "test sensitivity": _ci(t["sensitivity"], t.get("sensitivity_ci")),
                    "test specificity": _ci(t["specificity"], t.get("specificity_ci")),
                    "PPV": _ci(t["ppv"], t.get("ppv_ci")),
                    "NPV": _ci(t["npv"], t.get("npv_ci")),
                }
            )
    return rows


def referral_rows(trust: Trust) -> list[dict]:
    """Per model: accuracy (macro AUC for findings) on all cases and after referring the least confident
    5 / 10 / 20 %, and the coverage at which it reaches the teacher on every case."""
    rows = []
    for role, m in trust.models.items():
        if m.referral is None:
            continue
        metric = m.referral.get("metric", "ACC")
        shown = _pct if metric == "ACC" else (lambda v: "–" if v != v else f"{v:.3f}")
        table = {r["refer"]: r for r in m.referral["table"]}
        row = {"model": LABELS.get(role, role), f"{metric}, all cases": shown(table[0.0]["value"])}
        for fraction in REFER:
            row[f"refer {fraction:.0%}"] = shown(table[fraction]["value"])
        coverage = m.referral.get("teacher_coverage")
        row[f"coverage at the teacher's {metric}"] = (
            "–" if role == "teacher" else (_pct(coverage) if coverage else "never")
        )
        rows.append(row)
    return rows


def subgroup_rows(trust: Trust) -> list[dict]:
    """Per model, column and group: images, AUC and (two classes) sensitivity / specificity with intervals."""
    rows = []
    for role, m in trust.models.items():
        for found in m.subgroups:
            for g in found["rows"]:
                row = {
                    "model": LABELS.get(role, role),
                    "column": found["column"],
                    "group": g["group"],
                    "images": g["n"],
                    "AUC": _ci(g["auc"], g.get("auc_ci"), pct=False),
                }
                if "sensitivity" in g:
                    row["sensitivity"] = _ci(g["sensitivity"], g["sensitivity_ci"])
                    row["specificity"] = _ci(g["specificity"], g["specificity_ci"])
                row["flag"] = "significantly lower AUC" if g.get("below") else ""
                rows.append(row)
    return rows


def subgroup_notes(trust: Trust) -> list[str]:
    """How each column's groups were formed (bands, pooled groups), once per column."""
    first = next(iter(trust.models.values()))
    return [f"{found['column']}: {note}" for found in first.subgroups for note in found["notes"]]


def leak_rows(trust: Trust) -> list[dict]:
    """Per model: the headline figures on every test image and on the leak-free ones, with the images each covers."""
    rows = []
    for role, m in trust.models.items():
        if m.leak_free is None:
            continue
        for which in ("clean", "full"):
            f = m.leak_free[which]
            row = {
                "model": LABELS.get(role, role),
                "test images": f"{'leak-free' if which == 'clean' else 'all'} ({f['n']})",
            }
            if "acc" in f:
                row["ACC"], row["balanced ACC"] = _pct(f["acc"]), _pct(f["balanced_acc"])
            row["AUC"] = _ci(f["auc"], f.get("auc_ci"), pct=False)
            if "sensitivity" in f:
                row["sensitivity"], row["specificity"] = _pct(f["sensitivity"]), _pct(f["specificity"])
            rows.append(row)
    return rows


CSV_FIELDS = (
    "temperature",
    "ece_raw",
    "brier",
    "brier_raw",
    "operating_rule",
    "operating_target",
    "positive",
    "threshold",
    "test_sensitivity",
    "test_sensitivity_low",
    "test_sensitivity_high",
    "test_specificity",
    "test_specificity_low",
    "test_specificity_high",
    "ppv",
    "npv",
    "leak_free_images",
    "leak_free_acc",
    "leak_free_auc",
)


def csv_values(trust: Trust | None, role: str) -> dict:
    """A model's trust figures for the report's CSV (``CSV_FIELDS``); the operating point's columns when it has one
    point (two classes), the first temperature (of one per finding) otherwise."""
    if trust is None or role not in trust.models:
        return {}
    m = trust.models[role]
    out = {
        "temperature": m.temperature[0] if len(m.temperature) == 1 else " ".join(f"{t:g}" for t in m.temperature),
        "ece_raw": m.ece_raw,
        "brier": m.brier,
        "brier_raw": m.brier_raw,
        "operating_rule": trust.rule,
        "operating_target": trust.target,
    }
    if len(m.operating) == 1:
        p = m.operating[0]
        out.update(positive=p.name, threshold=p.threshold, ppv=p.test["ppv"], npv=p.test["npv"])
        for figure in ("sensitivity", "specificity"):
            out[f"test_{figure}"] = p.test[figure]
            out[f"test_{figure}_low"], out[f"test_{figure}_high"] = p.test.get(f"{figure}_ci", [None, None])
    if m.leak_free is not None:
        clean = m.leak_free["clean"]
        out.update(leak_free_images=clean["n"], leak_free_acc=clean.get("acc"), leak_free_auc=clean["auc"])
    return out


def operating_sentence(trust: Trust) -> str:
    """How the operating points were chosen, and which class is positive."""
    text = f"Operating point: {trust.settings.describe()}, on calibrated probabilities"
    if trust.positive:
        text += f"; positive class '{trust.positive}' ({trust.positive_reason})"
    return text + "."


def _table(rows: list[dict]) -> list[str]:
    if not rows:
        return []
    keys = list(rows[0])
    widths = {k: max(len(k), *(len(str(r.get(k, ""))) for r in rows)) for k in keys}
    lines = ["  ".join(k.ljust(widths[k]) for k in keys)]
    lines += ["  ".join(str(r.get(k, "")).ljust(widths[k]) for k in keys) for r in rows]
    return lines


def trust_text(trust: Trust) -> str:
    """The whole trust section as plain text (``meddistill show`` and ``meddistill trust``)."""
    lines = ["Calibration (temperature scaling fitted on val; every figure below is calibrated):"]
    lines += _table(calibration_rows(trust))
    lines += ["", operating_sentence(trust)] + _table(operating_rows(trust))
    if referral_rows(trust):
        lines += ["", "Referral (on the cases kept, the least confident referred):"] + _table(referral_rows(trust))
    if leak_rows(trust):
        lines += ["", "Leak-free test figures:"] + _table(leak_rows(trust))
    if subgroup_rows(trust):
        lines += ["", "Subgroups:"] + _table(subgroup_rows(trust)) + subgroup_notes(trust)
    return "\n".join(lines + [""] + trust.sentences)
