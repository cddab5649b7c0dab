"""DKD, DIST and logit-standardised KD against hand computations in NumPy (issue 15), and their two-class cases."""

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


@pytest.mark.parametrize("name", ["dist", "kd_ls"])
def test_two_classes_stay_finite(name):
    """DIST's per-image correlation over two classes is +-1 (0/0 at p = 0.5 is kept finite); standardised binary
    logits are +-1/sqrt(2)."""
    student = torch.tensor(BINARY_S, requires_grad=True)
    method = create_method(name, temperature=TEMP, alpha=ALPHA)
    value = method(student, torch.tensor(BINARY_T), torch.tensor(BINARY_Y))
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(student.grad).all()


@pytest.mark.parametrize("name", ["dkd", "dist", "kd_ls"])
def test_works_from_cached_logits_only(name):
    """A logit method never asks for features, so a teacher's cached logits are all it needs."""
    method = create_method(name)
    assert method.uses_features is False
    loss_value = method(torch.randn(8, 4), torch.randn(8, 4), torch.randint(0, 4, (8,)))
    assert loss_value.ndim == 0 and torch.isfinite(loss_value)


@pytest.mark.parametrize("name", ["dkd", "dist", "kd_ls"])
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
