"""DKD, DIST, logit-standardised KD and knowledge-adjusted KD against hand computations in NumPy (issue 15), and their
two-class cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from meddistill.distillation import create_method

S = np.array([[2.0, 0.5, -1.0], [0.1, 1.5, 0.3]])  # student logits (B=2, K=3)
T = np.array([[3.0, -0.5, 0.2], [-1.0, 2.5, 1.0]])  # teacher logits
Y = np.array([0, 2])
TEMP, ALPHA = 2.0, 0.5


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def cross_entropy(z: np.ndarray, y: np.ndarray) -> float:
    return float(-np.log(softmax(z)[np.arange(len(y)), y]).mean())


def kl(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    return (p * np.log(p / q)).sum(1)


def loss(name: str, s=S, t=T, y=Y, **kwargs) -> float:
    method = create_method(name, temperature=TEMP, alpha=ALPHA, **kwargs)
    value = method(torch.tensor(s), torch.tensor(t), torch.tensor(y))
    return float(value)


def test_dkd_golden():
    beta = 8.0
    ps, pt = softmax(S / TEMP), softmax(T / TEMP)
    rows = np.arange(len(Y))
    bs = np.stack([ps[rows, Y], 1 - ps[rows, Y]], 1)
    bt = np.stack([pt[rows, Y], 1 - pt[rows, Y]], 1)
    tckd = kl(bt, bs).mean()
    mask = np.ones_like(S, dtype=bool)
    mask[rows, Y] = False
    qs = np.stack([softmax(S[i][mask[i]][None] / TEMP)[0] for i in rows])
    qt = np.stack([softmax(T[i][mask[i]][None] / TEMP)[0] for i in rows])
    nckd = kl(qt, qs).mean()
    expected = (1 - ALPHA) * cross_entropy(S, Y) + ALPHA * TEMP**2 * (tckd + beta * nckd)
    assert loss("dkd", beta=beta) == pytest.approx(expected, rel=1e-6)


def test_dist_golden():
    ps, pt = softmax(S / TEMP), softmax(T / TEMP)

    def pearson_rows(a, b):
        a, b = a - a.mean(1, keepdims=True), b - b.mean(1, keepdims=True)
        return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))

    inter = 1 - pearson_rows(ps, pt).mean()
    intra = 1 - pearson_rows(ps.T, pt.T).mean()
    expected = (1 - ALPHA) * cross_entropy(S, Y) + ALPHA * TEMP**2 * (inter + intra)
    assert loss("dist") == pytest.approx(expected, rel=1e-5)  # the method adds eps = 1e-8 to each denominator


def test_standardised_kd_golden():
    def z(x):
        return (x - x.mean(1, keepdims=True)) / x.std(1, ddof=1, keepdims=True)

    soft = kl(softmax(z(T) / TEMP), softmax(z(S) / TEMP)).mean()
    expected = (1 - ALPHA) * cross_entropy(S, Y) + ALPHA * TEMP**2 * soft
    assert loss("kd_ls") == pytest.approx(expected, rel=1e-5)
    # Invariant to the scale and shift of either model's logits: only their relations count.
    assert loss("kd_ls", t=3 * T + 5) == pytest.approx(loss("kd_ls"), rel=1e-5)


BINARY_S = np.array([[4.0, -3.0], [0.2, 0.1], [-30.0, 30.0], [1.0, 1.0]])
BINARY_T = np.array([[50.0, -50.0], [-2.0, 2.0], [-1.0, 1.0], [1.0, 1.0]])
BINARY_Y = np.array([0, 1, 1, 0])


def test_dkd_on_two_classes_has_no_nan_and_is_hinton_kd():
    """One non-target class: NCKD is exactly 0, so beta does not matter and DKD is Hinton KD (soft term + labels)."""
    values = [loss("dkd", BINARY_S, BINARY_T, BINARY_Y, beta=beta) for beta in (0.0, 8.0, 1e6)]
    assert all(np.isfinite(values))
    assert values[0] == pytest.approx(values[1]) == pytest.approx(values[2])
    assert values[0] == pytest.approx(loss("kd", BINARY_S, BINARY_T, BINARY_Y), rel=1e-5)
    student = torch.tensor(BINARY_S, requires_grad=True)
    method = create_method("dkd", temperature=TEMP, alpha=ALPHA)
    method(student, torch.tensor(BINARY_T), torch.tensor(BINARY_Y)).backward()
    assert torch.isfinite(student.grad).all()


@pytest.mark.parametrize("name", ["dist", "kd_ls", "kd_ka"])
def test_two_classes_stay_finite(name):
    """DIST's per-image correlation over two classes is +-1 (0/0 at p = 0.5 is kept finite); standardised binary
    logits are +-1/sqrt(2)."""
    student = torch.tensor(BINARY_S, requires_grad=True)
    method = create_method(name, temperature=TEMP, alpha=ALPHA)
    value = method(student, torch.tensor(BINARY_T), torch.tensor(BINARY_Y))
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(student.grad).all()


@pytest.mark.parametrize("name", ["dkd", "dist", "kd_ls", "kd_ka"])
def test_works_from_cached_logits_only(name):
    """A logit method never asks for features, so a teacher's cached logits are all it needs."""
    method = create_method(name)
    assert method.uses_features is False
    loss_value = method(torch.randn(8, 4), torch.randn(8, 4), torch.randint(0, 4, (8,)))
    assert loss_value.ndim == 0 and torch.isfinite(loss_value)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["dkd", "dist", "kd_ls", "kd_ka"])
def test_run_on_real_two_class_data(small_breast_npz, tmp_path, name):
    """The whole command with each new method on a real BreastMNIST slice (two classes, cached teacher logits)."""
    import json

    from meddistill.cli.main import main

    out = tmp_path / name
    args = ["run", "--data", str(small_breast_npz), "--preset", "smoke", "--method", name, "--threads", "1"]
    assert main([*args, "--teacher", "resnet_narrow", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["config"]["method"] == name
    test = report["models"]["student_kd"]["test"]
    assert 0 <= test["acc"] <= 1 and 0 <= test["auc"] <= 1
    assert (out / "teacher_logits.safetensors").is_file()  # the student learnt from the cached logits


@pytest.mark.slow
def test_auto_records_every_candidate_and_keeps_the_best_on_val(small_breast_npz, tmp_path):
    """--method auto on a real BreastMNIST slice: every candidate is recorded with its val scores and seconds, the
    budget (in trainings) holds, and the distilled student is the candidate with the best val AUC (ties: val ACC)."""
    import json

    from meddistill.cli.main import main
    from meddistill.pipeline.search import BUDGET, GRID

    out = tmp_path / "auto"
    args = ["run", "--data", str(small_breast_npz), "--preset", "smoke", "--method", "auto", "--threads", "1"]
    assert main([*args, "--student-epochs", "4", "--teacher", "resnet_narrow", "--out", str(out)]) == 0
    record = json.loads((out / "search.json").read_text())
    report = json.loads((out / "report.json").read_text())
    assert report["search"] == record
    candidates = record["candidates"]
    assert len(candidates) == BUDGET == record["budget_trainings"]
    assert [c["method"] for c in candidates] == [g[0] for g in GRID[:BUDGET]] == ["kd", "dkd", "kd_ls", "dist"]
    best = max(candidates, key=lambda c: (c["val_auc"], c["val_acc"]))
    assert record["chosen"] == best
    history = json.loads((out / "metrics.json").read_text())["student_kd"]
    assert max(row["val_auc"] for row in history) == pytest.approx(best["val_auc"])


@pytest.mark.slow
def test_tune_searches_for_an_existing_teacher_without_training_it(small_breast_npz, tmp_path, capsys):
    import json

    from meddistill.cli.main import main

    first, second = tmp_path / "first", tmp_path / "tuned"
    args = ["run", "--data", str(small_breast_npz), "--preset", "smoke", "--teacher", "resnet_narrow"]
    assert main([*args, "--teacher-epochs", "3", "--threads", "1", "--out", str(first)]) == 0
    assert main(["tune", str(first), "--out", str(second)]) == 0
    assert "Method chosen on validation:" in capsys.readouterr().out
    old, new = (json.loads((d / "report.json").read_text()) for d in (first, second))
    assert new["config"]["method"] == "auto" and len(new["search"]["candidates"]) >= 1
    assert new["models"]["teacher"]["source"]["kind"] == "imported, used as is"
    same, before = new["models"]["teacher"]["test"], old["models"]["teacher"]["test"]  # the same teacher, not retrained
    assert same["acc"] == before["acc"] and same["confusion_matrix"] == before["confusion_matrix"]
    assert same["auc"] == pytest.approx(before["auc"], abs=1e-6)


@pytest.mark.slow
def test_auto_gives_the_same_candidates_and_choice_on_a_busy_machine(small_breast_npz, tmp_path):
    """The search's budget is in trainings: alone and beside a CPU-burning process, the same seed records the same
    candidates and makes the same choice."""
    import json
    import subprocess
    import sys

    from meddistill.cli.main import main

    args = ["run", "--data", str(small_breast_npz), "--preset", "smoke", "--method", "auto", "--threads", "1"]
    args += ["--student-epochs", "3", "--teacher", "resnet_narrow"]
    assert main([*args, "--out", str(tmp_path / "alone")]) == 0
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        assert main([*args, "--out", str(tmp_path / "busy")]) == 0
    finally:
        burner.kill()
        burner.wait()
    alone, busy = (json.loads((tmp_path / name / "search.json").read_text()) for name in ("alone", "busy"))
    settings = ("method", "kd_temperature", "kd_alpha", "kd_beta")
    assert [[c[k] for k in settings] for c in alone["candidates"]] == [
        [c[k] for k in settings] for c in busy["candidates"]
    ]
    assert [c["val_auc"] for c in alone["candidates"]] == [c["val_auc"] for c in busy["candidates"]]
    assert {k: alone["chosen"][k] for k in settings} == {k: busy["chosen"][k] for k in settings}


def test_kd_ka_swaps_only_the_teachers_wrong_answers():
    """Row 0: the teacher is right (unchanged); row 1: its top class 1 is not the label 2, so the two logits swap."""
    adjusted = np.array([[3.0, -0.5, 0.2], [-1.0, 1.0, 2.5]])
    ps, pt = softmax(S / TEMP), softmax(adjusted / TEMP)
    expected = (1 - ALPHA) * cross_entropy(S, Y) + ALPHA * TEMP**2 * kl(pt, ps).mean()
    assert loss("kd_ka") == pytest.approx(expected, rel=1e-6)
    assert loss("kd_ka", t=adjusted) == pytest.approx(loss("kd", t=adjusted), rel=1e-9)  # a right teacher: plain KD
    assert loss("kd_ka") != pytest.approx(loss("kd"), rel=1e-3)


def test_kd_ka_several_findings_flips_wrong_findings_and_ignores_unknown():
    from meddistill.distillation.logits import adjust_teacher

    teacher = torch.tensor([[2.0, -1.0, 0.5], [-0.5, 1.0, -3.0]])
    labels = torch.tensor([[0.0, 0.0, float("nan")], [1.0, 1.0, 0.0]])
    expected = torch.tensor([[-2.0, -1.0, 0.5], [0.5, 1.0, -3.0]])
    assert torch.equal(adjust_teacher(teacher, labels), expected)
