"""Golden tests of the trust figures: temperature scaling against a brute-force fit, the operating thresholds on
hand-made scores, the referral table on a hand-made case, subgroups with a pooled small group, and the whole
``assess`` on synthetic models."""

from __future__ import annotations

import numpy as np
import pytest

from meddistill.evaluation.calibration import apply_temperature, brier_score, fit_temperature, logits_of, nll
from meddistill.evaluation.findings import macro_auc
from meddistill.evaluation.metrics import auc_score
from meddistill.evaluation.operating import at_threshold, choose_threshold
from meddistill.evaluation.referral import coverage_reaching, referral_table, risk_coverage
from meddistill.evaluation.subgroups import assign_groups, subgroup_figures
from meddistill.evaluation.trust import TrustSettings, assess, positive_class


def _overconfident(n: int = 600, k: int = 3, scale: float = 4.0, seed: int = 0):
    """Labels and softmax probabilities of a model whose true logits were multiplied by ``scale`` (too sure)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), labels] += 1.0
    z = logits * scale
    probs = np.exp(z - z.max(1, keepdims=True))
    return labels, probs / probs.sum(1, keepdims=True)


def test_temperature_matches_a_brute_force_search():
    labels, probs = _overconfident()
    [fitted] = fit_temperature(labels, probs, "softmax")
    grid = np.linspace(0.5, 10, 9501)
    losses = [nll(labels, apply_temperature(probs, t, "softmax"), "softmax") for t in grid]
    assert fitted == pytest.approx(grid[int(np.argmin(losses))], abs=2e-3)
    assert fitted > 2.0  # an over-confident model is softened
    calibrated = apply_temperature(probs, fitted, "softmax")
    assert (calibrated.argmax(1) == probs.argmax(1)).all()  # the argmax never changes
    assert nll(labels, calibrated, "softmax") < nll(labels, probs, "softmax")


def test_sigmoid_temperature_per_finding_and_a_finding_with_one_value():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, (400, 2)).astype(np.float32)
    y[:, 1] = 0.0  # no positive: no temperature can be fitted
    y[:5, 0] = np.nan  # left out
    z = (2 * np.nan_to_num(y) - 1) + rng.normal(size=y.shape)
    probs = 1 / (1 + np.exp(-3 * z))
    t0, t1 = fit_temperature(y, probs, "sigmoid")
    grid = np.linspace(0.5, 10, 9501)
    known = ~np.isnan(y[:, 0])
    losses = [nll(y[known, :1], apply_temperature(probs[known, :1], t, "sigmoid"), "sigmoid") for t in grid]
    assert t0 == pytest.approx(grid[int(np.argmin(losses))], abs=2e-3)
    assert t1 == 1.0


def test_logits_round_trip_and_brier():
    probs = np.array([[0.2, 0.8], [0.9, 0.1]], dtype=np.float32)
    assert np.allclose(apply_temperature(probs, 1.0, "softmax"), probs, atol=1e-6)
    assert np.allclose(1 / (1 + np.exp(-logits_of(probs, "sigmoid"))), probs, atol=1e-6)
    assert brier_score(np.array([1, 0]), probs, "softmax") == pytest.approx((0.2**2 + 0.1**2) / 2)
    three = np.array([[0.5, 0.3, 0.2]])
    assert brier_score(np.array([0]), three, "softmax") == pytest.approx(0.25 + 0.09 + 0.04)


def test_thresholds_on_hand_made_scores():
    y = np.array([0, 0, 0, 0, 1, 0, 1, 1, 1, 1])
    s = np.array([0.05, 0.1, 0.2, 0.3, 0.35, 0.4, 0.6, 0.7, 0.8, 0.9])
    # Youden: at 0.6, sens 4/5 spec 5/5 (J 0.8); at 0.35, sens 5/5 spec 4/5 (J 0.8): the higher threshold on a tie
    assert choose_threshold(y, s, "youden") == pytest.approx(0.6)
    # sensitivity 0.95 of 5 positives needs all 5: the lowest positive, 0.35
    assert choose_threshold(y, s, "sensitivity", 0.95) == pytest.approx(0.35)
    assert choose_threshold(y, s, "sensitivity", 0.8) == pytest.approx(0.6)  # 4 of 5
    t = choose_threshold(y, s, "specificity", 0.8)  # 4 of 5 negatives strictly below: just above 0.3
    assert 0.3 < t < 0.3001
    found = at_threshold(y, s, 0.35)
    assert (found["tp"], found["fp"], found["fn"], found["tn"]) == (5, 1, 0, 4)
    assert found["ppv"] == pytest.approx(5 / 6) and found["npv"] == 1.0
    draws = [np.arange(10)] * 5
    assert at_threshold(y, s, 0.35, draws)["sensitivity_ci"] == [1.0, 1.0]


def test_referral_table_on_a_hand_made_case():
    # ten cases by falling confidence; the two least confident are wrong, and one in the middle
    confidence = np.array([0.99, 0.97, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.6, 0.55])
    correct = np.array([1, 1, 1, 1, 0, 1, 1, 1, 0, 0], dtype=bool)
    rows = {r["refer"]: r for r in referral_table(correct, confidence)}
    assert rows[0.0]["accuracy"] == pytest.approx(0.7) and rows[0.0]["kept"] == 10
    assert rows[0.1]["kept"] == 9 and rows[0.1]["accuracy"] == pytest.approx(7 / 9)
    assert rows[0.2]["kept"] == 8 and rows[0.2]["accuracy"] == pytest.approx(7 / 8)
    assert coverage_reaching(correct, confidence, 7 / 8) == pytest.approx(0.8)
    assert coverage_reaching(correct, confidence, 1.0) == pytest.approx(0.4)
    assert coverage_reaching(np.zeros(3, bool), confidence[:3], 0.5) is None
    curve = risk_coverage(correct, confidence, points=11)
    assert curve["coverage"][-1] == 1.0 and curve["accuracy"][-1] == pytest.approx(0.7)


def test_subgroups_pool_small_groups_and_flag_a_worse_group():
    rng = np.random.default_rng(0)
    n = 400
    values = ["F"] * 180 + ["M"] * 180 + ["X"] * 10 + ["Y"] * 12 + [""] * 18
    labels = rng.integers(0, 2, n)
    score = np.where(labels == 1, 0.7, 0.3) + rng.normal(0, 0.1, n)
    male = np.arange(n) >= 180
    male &= np.arange(n) < 360
    score[male] = rng.uniform(0, 1, male.sum())  # the model is guessing for M
    probs = np.stack([1 - score, score], 1).clip(0, 1)
    groups, notes = assign_groups(values)
    assert set(groups) == {"F", "M", "other ((missing), X, Y)"}
    assert "pooled" in notes[0]
    found = subgroup_figures(values, labels, probs, auc_score, operating=(1, 0.5), column="Sex")
    rows = {r["group"]: r for r in found["rows"]}
    assert rows["other ((missing), X, Y)"]["n"] == 40
    assert rows["M"]["below"] and not rows["F"]["below"]
    assert "Sex = M" in found["flagged"][0]
    assert 0 <= rows["F"]["sensitivity_ci"][0] <= rows["F"]["sensitivity"] <= rows["F"]["sensitivity_ci"][1]


def test_numeric_columns_are_banded():
    groups, notes = assign_groups([str(a % 60 + 20) for a in range(240)])
    assert len(set(groups)) == 4 and "quartile" in notes[0]
    groups, notes = assign_groups([str(a) for a in range(20, 80)])  # 15 per band: none pooled away
    assert len(set(groups)) == 4 and "every group" in notes[1]


def test_positive_class_is_the_disease():
    assert positive_class(["malignant", "normal, benign"]) == (0, "'normal, benign' reads as the negative class")
    assert positive_class(["normal", "pneumonia"])[0] == 1
    assert positive_class(["abnormal", "normal"])[0] == 0  # 'abnormal' is not 'normal'
    assert positive_class(["cat", "dog"])[0] == 1
    assert positive_class(["a", "b"], "a") == (0, "as given")
    with pytest.raises(ValueError, match="not a class"):
        positive_class(["a", "b"], "c")


def test_assess_end_to_end_on_synthetic_models():
    val_y, val_p = _overconfident(800, 2, seed=1)
    test_y, test_p = _overconfident(800, 2, seed=2)
    weak = test_p.copy()
    weak[:, 1] = np.clip(test_p[:, 1] * 0.6 + 0.2, 0, 1)
    weak[:, 0] = 1 - weak[:, 1]
    clean = np.ones(800, bool)
    clean[:100] = False
    trust = assess(
        "softmax",
        ["normal", "disease"],
        val_y,
        {"teacher": val_p, "student_kd": val_p},
        test_y,
        {"teacher": test_p, "student_kd": weak},
        TrustSettings("sensitivity", 0.95),
        clean=clean,
    )
    model = trust.models["teacher"]
    assert trust.positive == "disease"
    assert model.ece < model.ece_raw and model.temperature[0] > 2
    point = model.operating[0]
    assert point.val["sensitivity"] >= 0.95
    low, high = point.test["sensitivity_ci"]
    assert low <= point.test["sensitivity"] <= high
    assert model.leak_free["n_clean"] == 700 and model.leak_free["clean"]["n"] == 700
    assert any("Referring the 10%" in s for s in trust.sentences)
    assert any("100 of 800 test images" in s for s in trust.sentences)


def test_assess_findings_fits_one_temperature_and_one_threshold_per_finding():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, (500, 3)).astype(np.float32)
    y[:20, 2] = np.nan  # uncertain labels left out
    z = 3 * (2 * np.nan_to_num(y) - 1) + rng.normal(0, 2, y.shape)
    probs = (1 / (1 + np.exp(-z))).astype(np.float32)
    trust = assess(
        "sigmoid",
        ["a", "b", "c"],
        y,
        {"student_kd": probs},
        y,
        {"student_kd": probs},
        TrustSettings("sensitivity", 0.9),
    )
    model = trust.models["student_kd"]
    assert len(model.temperature) == 3 and model.referral["metric"] == "macro AUC" and trust.positive is None
    assert model.referral["table"][0]["value"] == pytest.approx(
        macro_auc(y, apply_temperature(probs, model.temperature, "sigmoid"))
    )
    assert [p.name for p in model.operating] == ["a", "b", "c"]
    assert all(p.val["sensitivity"] >= 0.9 for p in model.operating)
    assert model.ece <= model.ece_raw + 1e-9


def test_a_temperature_is_kept_only_when_its_fit_stays_inside_the_search():
    from meddistill.evaluation.calibration import fit_temperature_checked

    labels, probs = _overconfident(400, 3)
    temperatures, kept = fit_temperature_checked(labels, probs, "softmax")
    assert kept == [True] and temperatures[0] > 2  # a clearly over-confident model is softened
    rng = np.random.default_rng(5)
    noise = rng.dirichlet([0.3, 0.3], 60)  # confident outputs unrelated to the labels: the fit runs to the bound
    temperatures, kept = fit_temperature_checked(rng.integers(0, 2, 60), noise, "softmax")
    assert kept == [False] and temperatures == [1.0]
