"""Guard rails decided on val: the teacher against the scratch student, and which student is the headline."""

from __future__ import annotations

from pathlib import Path

import pytest

from meddistill.pipeline.guards import headline_student, teacher_check

ROOT = Path(__file__).resolve().parent.parent


def test_teacher_check_says_when_distillation_cannot_help():
    weak = teacher_check({"val_auc": 0.70, "val_acc": 0.6}, {"val_auc": 0.80, "val_acc": 0.7})
    assert not weak.better and "cannot help with this teacher" in weak.sentence and "--pretrained" in weak.sentence
    strong = teacher_check({"val_auc": 0.90, "val_acc": 0.8}, {"val_auc": 0.80, "val_acc": 0.7})
    assert strong.better and "val AUC 0.900 against 0.800" in strong.sentence
    tie = teacher_check({"val_auc": 0.80, "val_acc": 0.75}, {"val_auc": 0.80, "val_acc": 0.7})
    assert tie.better  # equal AUC: the accuracy decides
    assert teacher_check({}, {"val_auc": 0.8, "val_acc": 0.7}) is None  # nothing to compare


def test_the_headline_student_is_the_better_one_on_val():
    worse_kd = {"student_kd": {"val_auc": 0.70, "val_acc": 0.6}, "student_scratch": {"val_auc": 0.75, "val_acc": 0.6}}
    role, reason = headline_student(worse_kd)
    assert role == "student_scratch" and "better on validation data than the distilled student" in reason
    better_kd = {"student_kd": {"val_auc": 0.75, "val_acc": 0.6}, "student_scratch": {"val_auc": 0.75, "val_acc": 0.6}}
    assert headline_student(better_kd)[0] == "student_kd"  # a tie keeps the distilled student


@pytest.fixture(scope="module")
def crippled_run(small_breast_npz, tmp_path_factory):
    """A teacher trained for one step (every image in one batch, one epoch) beside a scratch student of 20 steps."""
    from meddistill.cli.main import main

    home = tmp_path_factory.mktemp("crippled-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MEDDISTILL_HOME", str(home))
        args = ["run", "--data", str(small_breast_npz), "--preset", "smoke", "--teacher-epochs", "1"]
        assert main([*args, "--batch-size", "256", "--student-epochs", "20", "--threads", "1"]) == 0
    return home


@pytest.mark.slow
def test_a_crippled_teacher_is_caught_and_said_everywhere(crippled_run, monkeypatch, capsys):
    import json

    from streamlit.testing.v1 import AppTest

    from meddistill import RunStore
    from meddistill.cli.main import main

    monkeypatch.setenv("MEDDISTILL_HOME", str(crippled_run))
    record = RunStore().list()[0]
    saved = json.loads((record.path / "report.json").read_text())
    check = saved["teacher_check"]
    assert check["better"] is False and check["teacher_val_auc"] <= check["scratch_val_auc"]
    assert "distillation cannot help with this teacher" in check["sentence"]
    assert main(["show", record.id]) == 0
    assert check["sentence"] in capsys.readouterr().out
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).switch_page("pages/compare.py").run()
    assert not at.exception
    assert any(check["sentence"] in w.value for w in at.warning), [w.value for w in at.warning]
    from meddistill.reports.card import model_card

    assert "distillation cannot help with this teacher" in model_card(record.path, examples=False)


@pytest.mark.slow
def test_a_teacher_that_is_not_better_trains_on_once_and_says_so(small_breast_npz, tmp_path, monkeypatch):
    """With ``--teacher-train-on`` a one-step teacher that loses to the scratch student on val gets one more round
    (as many epochs again); the report, metrics.json and the sentence show one teacher over both rounds."""
    import json

    from meddistill.cli.main import main

    monkeypatch.setenv("MEDDISTILL_HOME", str(tmp_path / "home"))
    args = ["run", "--data", str(small_breast_npz), "--preset", "smoke", "--teacher-epochs", "1", "--threads", "1"]
    out = tmp_path / "run"
    assert main([*args, "--batch-size", "256", "--student-epochs", "20", "--teacher-train-on", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    check, teacher = report["teacher_check"], report["models"]["teacher"]
    assert check["trained_on_epochs"] == 1 and teacher["epochs_run"] == 2
    assert "after training on for 1 more epoch" in check["sentence"]
    history = json.loads((out / "metrics.json").read_text())
    assert [row["epoch"] for row in history["teacher"]] == [1, 2] and set(history) == {
        "teacher",
        "student_scratch",
        "student_kd",
    }


def test_train_on_needs_the_setting_and_no_typed_schedule():
    from meddistill import RunConfig
    from meddistill.pipeline.train_on import applies, plan_line

    assert applies(RunConfig.from_preset("cpu", data="x"))
    assert "within the 10-minute budget" in plan_line(RunConfig.from_preset("cpu", data="x", budget=10.0))
    assert not applies(RunConfig.from_preset("cpu", data="x", teacher_epochs=12))  # typed epochs run as typed
    assert applies(RunConfig.from_preset("cpu", data="x", teacher_epochs=12, teacher_train_on=True))
    assert not applies(RunConfig.from_preset("smoke", data="x"))
    assert not applies(RunConfig.from_preset("cpu", data="x", teacher_weights="t.pth", teacher_epochs=0))
    budget_gone = teacher_check(
        {"val_auc": 0.7, "val_acc": 0.6}, {"val_auc": 0.8, "val_acc": 0.7}, 0, "10-minute budget"
    )
    assert "the 10-minute budget left no time to train it on" in budget_gone.sentence


@pytest.mark.slow
def test_a_resumed_run_trains_the_teacher_on_for_the_epochs_first_decided(small_breast_npz, tmp_path, monkeypatch):
    """The second round's length depends on the time left when the run gets there; a run resumed later (with the
    whole budget ahead of it on a fresh clock) must train the same round, not decide again."""
    import json

    import meddistill.pipeline.train_on as train_on
    from meddistill import RunFolder, execute
    from meddistill.cli.main import main

    monkeypatch.setenv("MEDDISTILL_HOME", str(tmp_path / "home"))
    out = tmp_path / "run"
    args = ["run", "--data", str(small_breast_npz), "--preset", "smoke", "--teacher-epochs", "2", "--threads", "1"]
    monkeypatch.setattr(train_on, "room", lambda *a: (1, "1-minute budget"))  # the budget cut the round to 1 of 2
    assert main([*args, "--batch-size", "256", "--student-epochs", "20", "--teacher-train-on", "--out", str(out)]) == 0
    first = json.loads((out / "report.json").read_text())
    assert first["teacher_check"]["trained_on_epochs"] == 1, first["teacher_check"]
    plan = json.loads((out / "checkpoints" / "teacher_on.plan.json").read_text())
    assert plan == {"epochs": 1, "limit": "1-minute budget"}

    folder = RunFolder(out)  # as if the run stopped while the distilled student trained
    folder.weights("student_kd").unlink()
    (out / "report.json").unlink()
    for name in ("student_kd.last.safetensors", "student_kd.state.json"):
        (out / "checkpoints" / name).unlink()
    monkeypatch.setattr(train_on, "room", lambda *a: (2, None))  # what a fresh clock would now allow
    execute(folder.config(), out)
    again = json.loads((out / "report.json").read_text())
    assert again["teacher_check"] == first["teacher_check"]
    assert again["models"]["teacher"]["epochs_run"] == first["models"]["teacher"]["epochs_run"] == 3
