"""The verdict: paired bootstrap intervals for the ACC / AUC difference of two models on the same test images."""

from __future__ import annotations

import json

import numpy as np
import pytest

from meddistill.evaluation.significance import paired_bootstrap, sentence, verdicts


def _probs(correct: np.ndarray, labels: np.ndarray, confidence: float = 0.8) -> np.ndarray:
    """(N, 2) probabilities that are right where ``correct`` is true."""
    predicted = np.where(correct, labels, 1 - labels)
    probs = np.full((len(labels), 2), 1 - confidence)
    probs[np.arange(len(labels)), predicted] = confidence
    return probs


def test_a_clear_gain_excludes_zero_and_is_said():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 400)
    a = _probs(rng.random(400) < 0.92, labels)
    b = _probs(rng.random(400) < 0.75, labels)
    diff = paired_bootstrap(labels, a, b, seed=1)
    assert diff["acc_diff"] == pytest.approx((a.argmax(1) == labels).mean() - (b.argmax(1) == labels).mean())
    assert 0 < diff["acc_ci"][0] < diff["acc_diff"] < diff["acc_ci"][1]
    text = sentence(diff, "distilled student", "scratch student")
    assert text.startswith("The distilled student gained against the scratch student: +")


def test_identical_models_no_significant_difference():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200)
    a = _probs(rng.random(200) < 0.85, labels)
    diff = paired_bootstrap(labels, a, a.copy())
    assert diff["acc_ci"] == [0.0, 0.0] and diff["acc_diff"] == 0
    assert sentence(diff, "distilled student", "scratch student").startswith("No significant difference")


def test_interval_matches_a_hand_bootstrap():
    """The same resamples drawn by hand give the same ACC interval."""
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 50)
    a, b = _probs(rng.random(50) < 0.9, labels), _probs(rng.random(50) < 0.7, labels)
    diff = paired_bootstrap(labels, a, b, resamples=500, seed=7)
    draws = np.random.default_rng(7).integers(0, 50, size=(500, 50))
    hand = (a.argmax(1) == labels)[draws].mean(1) - (b.argmax(1) == labels)[draws].mean(1)
    assert diff["acc_ci"] == pytest.approx(list(np.percentile(hand, [2.5, 97.5])))


@pytest.mark.slow
def test_verdicts_in_a_real_run_report(small_breast_npz, tmp_path):
    from meddistill.cli.main import main

    out = tmp_path / "run"
    args = ["run", "--data", str(small_breast_npz), "--preset", "smoke", "--teacher", "resnet_narrow"]
    assert main([*args, "--threads", "1", "--out", str(out)]) == 0
    verdict = json.loads((out / "report.json").read_text())["verdict"]
    assert set(verdict) == {"distillation", "student_vs_teacher"}
    for diff in verdict.values():
        assert diff["n"] == 64 and diff["acc_ci"][0] <= diff["acc_diff"] <= diff["acc_ci"][1]
        assert "val_acc_diff" in diff and diff["sentence"].endswith(").")
    assert verdicts(np.array([0, 1]), {}, {}) == {}


def test_rank_auc_equals_scikit_learn_with_ties(monkeypatch):
    """The rank-sum AUC equals scikit-learn's, binary and one-vs-rest macro, with many tied scores; a resample that
    lacks a class is NaN, as ``auc_score`` is; chunked resamples give the same values as one at a time."""
    from sklearn.metrics import roc_auc_score

    from meddistill.evaluation import metrics
    from meddistill.evaluation.metrics import auc_score, binary_auc, resampled_auc

    rng = np.random.default_rng(0)
    labels, scores = rng.integers(0, 2, (20, 60)), np.round(rng.random((20, 60)), 1)  # many tied scores
    assert binary_auc(labels, scores) == pytest.approx([roc_auc_score(y, s) for y, s in zip(labels, scores)])
    for k in (2, 3, 8):
        y = rng.integers(0, k, 200)
        p = rng.dirichlet(np.ones(k), 200).round(1) + 1e-3
        p /= p.sum(1, keepdims=True)
        expected = roc_auc_score(y, p[:, 1]) if k == 2 else roc_auc_score(y, p, multi_class="ovr", average="macro")
        assert auc_score(y, p) == pytest.approx(expected, abs=1e-12)
        draws = rng.integers(0, 200, (50, 200))
        draws[0] = 0  # one image drawn 200 times: one class only
        one_by_one = [auc_score(y[d], p[d]) for d in draws]
        monkeypatch.setattr(metrics, "CHUNK_VALUES", 3 * 200 * k)  # three resamples per chunk
        together = resampled_auc(y, p, draws)
        assert np.isnan(together[0]) and np.isnan(one_by_one[0])
        assert together[1:] == pytest.approx(one_by_one[1:], abs=1e-12)
    assert np.isnan(auc_score(np.array([0, 1, 1]), np.full((3, 3), 1 / 3)))  # class 2 absent
