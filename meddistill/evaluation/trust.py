"""Can a clinician act on a model's output: calibration, operating points, referral, subgroups and leak-free figures,
computed from each model's val and test probabilities (``assess``), so they can be chosen again without retraining.

* Calibration: one temperature per model (per finding) fitted on val (``meddistill.evaluation.calibration``); the
  test ECE, Brier score and reliability bins before and after. Every figure below uses the calibrated probabilities.
* Operating points: per positive class (two classes), per class one-vs-rest (more), or per finding, the threshold a
  rule chooses on val (``meddistill.evaluation.operating``), with test sensitivity, specificity, PPV and NPV.
* Referral: selective accuracy (macro AUC for findings) against coverage (``meddistill.evaluation.referral``).
* Subgroups: per value of a labels-CSV column (``meddistill.evaluation.subgroups``).
* Leak-free: the headline figures on the test images that copy no train or val image (and share no patient).

Example:
    >>> trust = assess("softmax", names, val_y, val_probs, test_y, test_probs, TrustSettings("sensitivity", 0.95))
    >>> trust.models["student_kd"].operating[0].test["sensitivity"]
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from meddistill.evaluation.calibration import apply_temperature, brier_score, fit_temperature_checked, nll
from meddistill.evaluation.findings import _pooled_reliability, macro_auc, patient_draws
from meddistill.evaluation.metrics import auc_score, expected_calibration_error, reliability, resampled_auc
from meddistill.evaluation.operating import RULES, at_threshold, choose_threshold, image_draws
from meddistill.evaluation.referral import coverage_reaching, referral_table, risk_coverage, selective_metric
from meddistill.evaluation.subgroups import subgroup_figures

RESAMPLES = 1000
NEGATIVE_NAMES = re.compile(r"\b(normal|benign|negative|healthy|control|no[ _-]?finding|nofinding|absent)\b", re.I)
ROLE_NAMES = {"teacher": "teacher", "student_scratch": "scratch student", "student_kd": "distilled student"}


@dataclass
class TrustSettings:
    """How the operating point is chosen: ``rule`` in ``RULES``, ``target`` the sensitivity or specificity it seeks,
    ``positive`` the class name called positive when there are two (None: recognised from the names)."""

    rule: str = "youden"
    target: float | None = None
    positive: str | None = None

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise ValueError(f"unknown operating rule {self.rule!r}; choose one of: {', '.join(RULES)}")
        if self.rule != "youden" and not (self.target is not None and 0 < self.target < 1):
            raise ValueError(f"a target {self.rule} between 0 and 1 (exclusive) is needed, got {self.target}")

    def describe(self) -> str:
        if self.rule == "youden":
            return "the threshold of maximal Youden's J on val"
        return f"the threshold reaching {self.rule} {self.target:g} on val"


@dataclass
class OperatingPoint:
    """One operating point: ``name`` the class or finding called positive, ``threshold`` on its calibrated
    probability, ``val`` and ``test`` the figures of ``meddistill.evaluation.operating.at_threshold``."""

    name: str
    index: int
    threshold: float
    val: dict
    test: dict


@dataclass
class ModelTrust:
    """One model's trust figures (see the module docstring)."""

    temperature: list[float]
    ece_raw: float
    ece: float
    brier_raw: float
    brier: float
    val_nll_raw: float
    val_nll: float
    reliability_raw: list[dict]
    reliability: list[dict]
    operating: list[OperatingPoint]
    kept: list[bool] | None = None  # per temperature: False where the fit ran to a bound and 1.0 was used
    referral: dict | None = None  # {"metric", "curve": {coverage, value}, "table": [...], "teacher_coverage"}
    subgroups: list[dict] = field(default_factory=list)
    leak_free: dict | None = None  # {"n", "n_clean", "full": {...}, "clean": {...}}

    @classmethod
    def from_dict(cls, values: dict) -> ModelTrust:
        values = dict(values)
        values["operating"] = [OperatingPoint(**p) for p in values["operating"]]
        return cls(**values)


@dataclass
class Trust:
    """The trust section of a report: the settings, the positive class, each model's figures and the sentences."""

    rule: str
    models: dict[str, ModelTrust]
    target: float | None = None
    positive: str | None = None
    positive_reason: str = ""
    sentences: list[str] = field(default_factory=list)
    val_images: int = 0  # what the temperatures and thresholds were chosen on

    @property
    def settings(self) -> TrustSettings:
        return TrustSettings(self.rule, self.target, self.positive)

    @classmethod
    def from_dict(cls, values: dict) -> Trust:
        values = dict(values)
        values["models"] = {r: ModelTrust.from_dict(m) for r, m in values["models"].items()}
        return cls(**values)


def positive_class(names: list[str], given: str | None = None) -> tuple[int, str]:
    """(index, reason) of the class called positive when there are two: the one given, else the one whose name is
    not a normal-like word (normal, benign, negative, healthy, no finding) when exactly one of them is, else class 1.

    Raises:
        ValueError: ``given`` is not one of the names.
    """
    if given is not None:
        if given not in names:
            raise ValueError(f"--positive-class {given} is not a class of this data; choose one of: {', '.join(names)}")
        return names.index(given), "as given"
    normal = [bool(NEGATIVE_NAMES.search(n)) for n in names]
    if sum(normal) == 1:
        index = normal.index(False)
        return index, f"'{names[1 - index]}' reads as the negative class"
    return 1, "the second class (give --positive-class to choose)"


def _headline(kind: str, labels: np.ndarray, probs: np.ndarray, points: list[OperatingPoint], draws) -> dict:
    """ACC, balanced ACC (one class per image), AUC with its interval, ECE, and the first operating point's test
    sensitivity and specificity, on these images."""
    auc_fn = auc_score if kind == "softmax" else macro_auc
    out = {"n": int(len(labels)), "auc": float(auc_fn(labels, probs))}
    if kind == "softmax" and len({len(d) for d in draws}) == 1:  # image resamples: every one at once, by ranks
        values = resampled_auc(labels, probs, np.stack(draws))
    else:
        values = np.array([auc_fn(labels[d], probs[d]) for d in draws])
    finite = values[np.isfinite(values)]
    out["auc_ci"] = [float(x) for x in np.percentile(finite, [2.5, 97.5])] if len(finite) else [float("nan")] * 2
    if kind == "softmax":
        predicted = probs.argmax(1)
        out["acc"] = float((predicted == labels).mean())
        recalls = [float((predicted[labels == c] == c).mean()) for c in np.unique(labels)]
        out["balanced_acc"] = float(np.mean(recalls))
        out["ece"] = expected_calibration_error(labels, probs)
    if points:
        p = points[0]
        y = labels[:, p.index] if kind == "sigmoid" else (labels == p.index).astype(float)
        known = ~np.isnan(y)
        found = at_threshold(y[known].astype(int), probs[known, p.index], p.threshold)
        out["sensitivity"], out["specificity"] = found["sensitivity"], found["specificity"]
    return out


def _points(kind, names, val_y, val_p, test_y, test_p, settings, positive, draws) -> list[OperatingPoint]:
    """The operating points of one model: the positive class (two classes), every class or every finding."""
    indices = [positive] if kind == "softmax" and len(names) == 2 else range(len(names))
    points = []
    for k in indices:
        yv = val_y[:, k] if kind == "sigmoid" else (val_y == k).astype(float)
        yt = test_y[:, k] if kind == "sigmoid" else (test_y == k).astype(float)
        kv, kt = ~np.isnan(yv), ~np.isnan(yt)
        if len(np.unique(yv[kv])) < 2 or len(np.unique(yt[kt])) < 2:
            continue  # no threshold can be chosen (val) or judged (test) for a class present on one side only
        threshold = choose_threshold(yv[kv].astype(int), val_p[kv, k], settings.rule, settings.target)
        remap = np.cumsum(kt) - 1  # a draw's indices among the images whose label is counted
        test = at_threshold(yt[kt].astype(int), test_p[kt, k], threshold, [remap[d[kt[d]]] for d in draws])
        val = at_threshold(yv[kv].astype(int), val_p[kv, k], threshold)
        points.append(OperatingPoint(names[k], int(k), float(threshold), val, test))
    return points


def _referral(kind: str, test_y: np.ndarray, calibrated: dict[str, np.ndarray]) -> dict[str, dict]:
    """Risk-coverage of every model, and per student the coverage at which it reaches the teacher on every case.

    One class per image: accuracy, cases ranked by the probability of the predicted class. Several findings per
    image: the macro AUC, cases ranked by the mean over findings of max(p, 1 - p), at 21 coverages (the teacher's
    coverage is then read off those 5 % steps).
    """
    out = {}
    for role, probs in calibrated.items():
        if kind == "softmax":
            correct, confidence = probs.argmax(1) == test_y, probs.max(1)
            curve = risk_coverage(correct, confidence)
            rows = referral_table(correct, confidence)
            entry = {
                "metric": "ACC",
                "curve": {"coverage": curve["coverage"], "value": curve["accuracy"]},
                "table": [{**{k: r[k] for k in ("refer", "kept", "coverage")}, "value": r["accuracy"]} for r in rows],
            }
            reach = lambda target, c=correct, f=confidence: coverage_reaching(c, f, target)  # noqa: E731
        else:
            confidence = np.maximum(probs, 1 - probs).mean(1)
            entry = {"metric": "macro AUC", **selective_metric(macro_auc, test_y, probs, confidence)}
            reach = lambda target, e=entry: _curve_reaching(e["curve"], target)  # noqa: E731
        out[role] = entry
        if "teacher" in out and role != "teacher":
            teacher = out["teacher"]["table"][0]["value"]
            entry["teacher_value"], entry["teacher_coverage"] = teacher, reach(teacher)
    return out


def _curve_reaching(curve: dict, target: float) -> float | None:
    reached = [c for c, v in zip(curve["coverage"], curve["value"]) if v == v and v >= target - 1e-12]
    return max(reached) if reached else None


def referral_sentence(role: str, referral: dict) -> str:
    """What referring the least confident 10 % does for ``role``, and the coverage that reaches the teacher."""
    table = {row["refer"]: row for row in referral["table"]}
    full, ten = table[0.0], table[0.1]
    metric = referral.get("metric", "ACC")
    shown = (lambda v: f"{100 * v:.1f}%") if metric == "ACC" else (lambda v: f"{v:.3f}")
    what = "accuracy" if metric == "ACC" else metric
    text = (
        f"Referring the 10% of cases the {ROLE_NAMES[role]} is least sure of to a human gives {shown(ten['value'])} "
        f"{what} on the other {ten['kept']} (against {shown(full['value'])} on all)"
    )
    if "teacher_value" in referral:
        teacher, coverage = shown(referral["teacher_value"]), referral["teacher_coverage"]
        if coverage is None:
            text += f"; no coverage reaches the teacher's {teacher}"
        elif coverage >= 1.0:
            text += f"; it matches the teacher's {teacher} without referring any case"
        else:
            text += f"; it reaches the teacher's {teacher} while keeping {100 * coverage:.0f}% of cases"
    return text + "."


def assess(
    kind: str,
    names: list[str],
    val_labels: np.ndarray,
    val_probs: dict[str, np.ndarray],
    test_labels: np.ndarray,
    test_probs: dict[str, np.ndarray],
    settings: TrustSettings | None = None,
    *,
    clean: np.ndarray | None = None,
    subgroups: dict[str, list[str]] | None = None,
    groups: list | None = None,
    headline: str = "student_kd",
    seed: int = 0,
) -> Trust:
    """The trust section of a run from its models' raw val and test probabilities.

    Args:
        kind: ``softmax`` (one class per image) or ``sigmoid`` (findings).
        names: The class or finding names.
        val_labels, test_labels: (N,) classes or (N, K) findings (NaN: left out).
        val_probs, test_probs: Per role, (N, K) raw probabilities.
        settings: The operating rule and positive class (default: Youden's J).
        clean: (N_test,) bool, the test images that copy no train or val image (None: no leak was found).
        subgroups: Per labels-CSV column, the value of each test image.
        groups: The test images' patient keys (intervals resample whole patients).
        headline: The student whose referral the sentences state.
        seed: Seed of every resampling.
    """
    settings = settings or TrustSettings()
    positive, reason = positive_class(names, settings.positive) if kind == "softmax" and len(names) == 2 else (0, "")
    n = len(test_labels)
    draws = patient_draws(groups, n, RESAMPLES, seed) if groups is not None else image_draws(n, RESAMPLES, seed)
    models, calibrated = {}, {}
    for role in test_probs:
        temperature, kept = fit_temperature_checked(val_labels, val_probs[role], kind)
        val_cal = apply_temperature(val_probs[role], temperature, kind)
        test_cal = calibrated[role] = apply_temperature(test_probs[role], temperature, kind)
        bins = reliability if kind == "softmax" else _findings_bins
        ece = expected_calibration_error if kind == "softmax" else _pooled_ece
        points = _points(kind, names, val_labels, val_cal, test_labels, test_cal, settings, positive, draws)
        models[role] = ModelTrust(
            temperature=[round(t, 5) for t in temperature],
            kept=kept,
            ece_raw=ece(test_labels, test_probs[role]),
            ece=ece(test_labels, test_cal),
            brier_raw=brier_score(test_labels, test_probs[role], kind),
            brier=brier_score(test_labels, test_cal, kind),
            val_nll_raw=nll(val_labels, val_probs[role], kind),
            val_nll=nll(val_labels, val_cal, kind),
            reliability_raw=bins(test_labels, test_probs[role]),
            reliability=bins(test_labels, test_cal),
            operating=points,
        )
        auc_fn = auc_score if kind == "softmax" else macro_auc
        operating = (positive, points[0].threshold) if kind == "softmax" and len(names) == 2 and points else None
        for column, values in (subgroups or {}).items():
            models[role].subgroups.append(
                subgroup_figures(values, test_labels, test_cal, auc_fn, operating, column=column, seed=seed)
            )
        if clean is not None and not clean.all():
            keep = np.flatnonzero(clean)
            clean_draws = image_draws(len(keep), RESAMPLES, seed)
            models[role].leak_free = {
                "n": int(n),
                "n_clean": int(len(keep)),
                "full": _headline(kind, test_labels, test_cal, points, draws),
                "clean": _headline(kind, test_labels[keep], test_cal[keep], points, clean_draws),
            }
    ordered = dict(sorted(calibrated.items(), key=lambda item: item[0] != "teacher"))  # the teacher first
    for role, entry in _referral(kind, test_labels, ordered).items():
        models[role].referral = entry
    positive_name = names[positive] if reason else None
    trust = Trust(settings.rule, models, settings.target, positive_name, reason, val_images=int(len(val_labels)))
    trust.sentences = _sentences(trust, headline)
    return trust


def _findings_bins(labels: np.ndarray, probs: np.ndarray, bins: int = 10) -> list[dict]:
    """Reliability bins over every counted finding label (NaN labels left out)."""
    known = ~np.isnan(labels)
    return _pooled_reliability(labels[known], probs[known], bins)


def _pooled_ece(labels: np.ndarray, probs: np.ndarray, bins: int = 10) -> float:
    """ECE over every counted finding label, pooled: sum_b |B|/N |mean y(B) - mean p(B)|."""
    rows = _findings_bins(labels, probs, bins)
    total = sum(r["count"] for r in rows)
    return float(sum(r["count"] * abs(r["accuracy"] - r["confidence"]) for r in rows) / max(total, 1))


def _sentences(trust: Trust, headline: str) -> list[str]:
    """Calibration, referral, leak-free and subgroup sentences for the headline student."""
    if headline not in trust.models:
        headline = next(iter(trust.models))
    model, name = trust.models[headline], ROLE_NAMES[headline]
    temperatures = ", ".join(f"{t:.2f}" for t in model.temperature[:3]) + (" ..." if len(model.temperature) > 3 else "")
    if model.kept is not None and not any(model.kept):
        out = [
            f"No temperature is applied to the {name}: its fit on val ran to a bound of the search (0.05 or 20), "
            f"which is degenerate, so its raw probabilities are shown (test ECE {model.ece_raw:.3f})."
        ]
    else:
        out = [
            f"Temperature scaling fitted on val (T = {temperatures}) takes the {name}'s test ECE from "
            f"{model.ece_raw:.3f} to {model.ece:.3f} and its Brier score from {model.brier_raw:.3f} to "
            f"{model.brier:.3f}."
        ]
    if model.referral is not None:
        out.append(referral_sentence(headline, model.referral))
    if model.leak_free is not None:
        leak, full, clean = model.leak_free, model.leak_free["full"], model.leak_free["clean"]
        figure = "acc" if "acc" in clean else "auc"
        shown = (lambda v: f"{100 * v:.1f}%") if figure == "acc" else (lambda v: f"{v:.3f}")
        out.append(
            f"{leak['n'] - leak['n_clean']} of {leak['n']} test images copy a train or val image or share a patient; "
            f"on the {leak['n_clean']} that do not, the {name}'s {figure.upper()} is {shown(clean[figure])} "
            f"(against {shown(full[figure])} on all of them)."
        )
    for found in model.subgroups:
        out += found["flagged"]
    return out
