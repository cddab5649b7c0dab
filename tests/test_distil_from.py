"""What the distilled student learns from (``--distil-from``): the teacher, or the teacher and the scratch student
with their logits averaged (issue 23: a teacher only level with the scratch student)."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from meddistill.cli.main import main
from meddistill.distillation.ensemble import AveragedTeacher, mean_logits
from meddistill.io.weights import read_weights
from meddistill.settings.config import RunConfig
from meddistill.store.layout import ROLES, TEACHER_LOGITS_FILE


def test_an_averaged_teacher_gives_the_mean_of_its_members_logits():
    torch.manual_seed(0)
    a, b = nn.Linear(4, 3), nn.Linear(4, 3)
    x = torch.randn(5, 4)
    both = AveragedTeacher([a, b])
    assert torch.allclose(both(x), (a(x) + b(x)) / 2)
    assert torch.allclose(mean_logits([a(x), b(x)]), both(x))
    # an ensemble's softmax is the normalised geometric mean of its members' probabilities
    geometric = (torch.log_softmax(a(x), 1) + torch.log_softmax(b(x), 1)) / 2
    assert torch.allclose(torch.softmax(both(x), 1), torch.softmax(geometric, 1), atol=1e-6)


@pytest.mark.slow
def test_the_ensemble_changes_only_the_distilled_student_and_the_run_says_so(small_breast_npz, tmp_path, capsys):
    base = ["run", "--data", str(small_breast_npz), "--preset", "smoke", "--threads", "1", "--seed", "3"]
    assert main([*base, "--out", str(tmp_path / "teacher")]) == 0
    capsys.readouterr()
    assert main([*base, "--distil-from", "ensemble", "--out", str(tmp_path / "ensemble")]) == 0
    printed = capsys.readouterr().out
    assert "learns from the teacher and the scratch student together" in printed  # the plan says it first
    alone, both = (json.loads((tmp_path / r / "report.json").read_text()) for r in ("teacher", "ensemble"))
    assert alone.get("distilled_from") is None
    assert "learned from the teacher and the student trained from scratch together" in both["distilled_from"]
    assert both["distilled_from"] in printed
    assert RunConfig.load(tmp_path / "ensemble" / "config.json").distil_from == "ensemble"
    weights = {r: {m: read_weights(tmp_path / r / f"{m}.safetensors") for m in ROLES} for r in ("teacher", "ensemble")}
    for role in ("teacher", "student_scratch"):  # the same seed trains the same teacher and scratch student
        assert all(torch.equal(v, weights["ensemble"][role][k]) for k, v in weights["teacher"][role].items())
    assert not all(
        torch.equal(v, weights["ensemble"]["student_kd"][k]) for k, v in weights["teacher"]["student_kd"].items()
    )
    # the teacher's cached logits stay the teacher's own: the ensemble's are never stored under its SHA-256
    cached = [read_weights(tmp_path / r / TEACHER_LOGITS_FILE)["logits"] for r in ("teacher", "ensemble")]
    assert torch.equal(*cached)


def test_a_typed_ensemble_with_a_feature_method_is_refused_in_one_sentence(small_breast_npz, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["run", "--data", str(small_breast_npz), "--preset", "smoke", "--distil-from", "ensemble"]
    assert main([*args, "--method", "fitnet", "--out", str(out)]) == 2
    error = capsys.readouterr().err.strip()
    assert "--distil-from ensemble averages the two models' logits" in error and "\n" not in error
    assert not (out / "report.json").exists()


@pytest.mark.slow
def test_auto_distils_from_both_only_when_the_teacher_is_not_better_on_val(small_breast_npz, tmp_path):
    base = ["run", "--data", str(small_breast_npz), "--preset", "smoke", "--threads", "1", "--distil-from", "auto"]
    crippled = ["--teacher-epochs", "1", "--batch-size", "256", "--student-epochs", "20"]  # one teacher step
    assert main([*base, *crippled, "--out", str(tmp_path / "crippled")]) == 0
    report = json.loads((tmp_path / "crippled" / "report.json").read_text())
    assert report["teacher_check"]["better"] is False
    assert "learned from the teacher and the student trained from scratch together" in report["distilled_from"]
    assert main([*base, "--teacher-epochs", "3", "--out", str(tmp_path / "trained")]) == 0
    report = json.loads((tmp_path / "trained" / "report.json").read_text())
    assert report["teacher_check"]["better"] is (report.get("distilled_from") is None)
