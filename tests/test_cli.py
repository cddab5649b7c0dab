"""The headless path: `meddistill run` end to end on real data, runs/show, check-data, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from meddistill import RunStore
from meddistill.cli import main
from meddistill.settings.config import RunConfig
from tests.conftest import copy_xray_slice

M_KEYS = {"arch", "params", "size_mb", "flops", "latency_ms_b1", "throughput_b64", "train_seconds", "test"}
TEST_KEYS = {"acc", "balanced_acc", "auc", "f1", "ece", "sensitivity", "specificity", "confusion_matrix"}


def _cli(*args: str, env_home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "MEDDISTILL_HOME": str(env_home)}
    return subprocess.run(
        [sys.executable, "-m", "meddistill", *args], capture_output=True, text=True, env=env, timeout=600
    )


@pytest.mark.slow
def test_run_end_to_end_on_real_slice(small_breast_npz, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(
        [
            "run",
            "--data",
            str(small_breast_npz),
            "--preset",
            "smoke",
            "--teacher-epochs",
            "2",
            "--student-epochs",
            "2",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "teacher" in printed and "student_kd" in printed and "speed-up" in printed
    report = json.loads((out / "report.json").read_text())
    assert set(report) >= {"run_id", "dataset", "config", "models"}
    assert set(report["models"]) == {"teacher", "student_scratch", "student_kd"}
    for m in report["models"].values():
        assert set(m) >= M_KEYS and set(m["test"]) >= TEST_KEYS
        assert 0 <= m["test"]["acc"] <= 1 and m["params"] > 0 and m["latency_ms_b1"] > 0
    assert report["models"]["student_kd"]["params"] < 0.05 * report["models"]["teacher"]["params"]
    for name in (
        "config.json",
        "metrics.json",
        "teacher.safetensors",
        "student_scratch.safetensors",
        "student_kd.safetensors",
        "predictions.npz",
    ):
        assert (out / name).is_file(), name
    assert len(json.loads((out / "metrics.json").read_text())["teacher"]) == 2
    record = RunStore().list()[0]
    assert record.status == "done" and record.path == out.resolve()

    assert main(["runs"]) == 0
    assert record.id in capsys.readouterr().out
    assert main(["show", record.id[:15]]) == 0
    assert "student_kd" in capsys.readouterr().out


@pytest.mark.slow
def test_run_on_jpeg_folder_without_val(chest_folder, tmp_path):
    root = copy_xray_slice(chest_folder, tmp_path / "xr", per_class=8, splits=("train", "test"))
    out = tmp_path / "run"
    assert main(["run", "--data", str(root), "--preset", "smoke", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["dataset"]["sizes"]["test"] == 16
    assert report["dataset"]["train_image_size"] == 28  # smoke preset caps at 28 px


@pytest.mark.slow
def test_run_on_dicom_with_labels_csv(tmp_path):
    from tests.test_loaders import _dicom_csv_folder

    out = tmp_path / "run"
    assert (
        main(["run", "--data", str(_dicom_csv_folder(tmp_path / "dcm")), "--preset", "smoke", "--out", str(out)]) == 0
    )
    assert json.loads((out / "report.json").read_text())["dataset"]["provenance"]["kind"] == "dicom-csv"


def test_check_data(breast_npz, tmp_path, capsys):
    assert main(["check-data", str(breast_npz)]) == 0
    printed = capsys.readouterr().out
    assert "malignant" in printed and "train" in printed and "546" in printed


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "--data", "{tmp}/nothing.npz"], "nothing.npz does not exist"),
        (["run", "--data", "{tmp}/data", "--student", "mobilenet"], "unknown model 'mobilenet'"),
        (["run", "--data", "{tmp}/data", "--kd-alpha", "2"], "kd_alpha must be between 0 and 1, got 2.0"),
        (["check-data", "{tmp}/bad.npz"], "bad.npz lacks the keys"),
        (["show", "nope"], "no run matches 'nope'"),
    ],
)
def test_bad_input_exit_2_with_one_sentence(tmp_path, args, message, capsys, monkeypatch):
    """In-process: exit status 2 and one line on stderr, naming the problem."""
    _bad_inputs(tmp_path)
    monkeypatch.setenv("MEDDISTILL_HOME", str(tmp_path / "home"))
    assert main([a.format(tmp=tmp_path) for a in args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_bad_input_in_a_real_process_has_no_traceback(tmp_path):
    """`python -m meddistill` itself: exit status 2, one sentence, no traceback."""
    _bad_inputs(tmp_path)
    result = _cli("run", "--data", str(tmp_path / "data"), "--student", "mobilenet", env_home=tmp_path / "home")
    assert result.returncode == 2, result.stderr
    assert "unknown model 'mobilenet'" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def _bad_inputs(tmp_path: Path) -> None:
    """A broken .npz and a tiny valid image folder in ``tmp_path``."""
    import numpy as np
    from PIL import Image

    np.savez(tmp_path / "bad.npz", x=np.zeros(3))
    for cls in ("a", "b"):
        (tmp_path / "data" / cls).mkdir(parents=True)
        for i in range(4):
            Image.new("L", (8, 8), i * 20).save(tmp_path / "data" / cls / f"{i}.png")


@pytest.mark.slow
def test_cli_options_reach_the_engine_in_a_real_run(small_breast_npz, tmp_path, monkeypatch):
    """The same, through a real `meddistill run`: what fit is called with for each role."""
    import meddistill.pipeline.runner as pipeline

    seen = {}
    real_fit = pipeline.fit

    def recording_fit(model, train, val, settings, *, role, **kwargs):
        seen[role] = (settings.augment, settings.ema_decay)
        return real_fit(model, train, val, settings, role=role, **kwargs)

    monkeypatch.setattr(pipeline, "fit", recording_fit)
    args = ["run", "--data", str(small_breast_npz), "--preset", "smoke", "--augment", "--out"]
    assert main([*args, str(tmp_path / "a")]) == 0
    assert seen == {"teacher": (True, 0.0), "student_scratch": (False, 0.0), "student_kd": (False, 0.0)}
    assert main([*args, str(tmp_path / "b"), "--augment-students"]) == 0
    assert seen == {"teacher": (True, 0.0), "student_scratch": (True, 0.0), "student_kd": (True, 0.0)}
    config = json.loads((tmp_path / "b" / "config.json").read_text())
    assert config["augment"] and config["augment_students"]


def test_cpu_preset_augments_the_teacher_and_averages_weights():
    config = RunConfig.from_preset("cpu")
    assert config.augment and not config.augment_students and config.ema_decay > 0
    with pytest.raises(ValueError, match="ema_decay must be in"):
        RunConfig.from_preset("cpu", ema_decay=1.5).validate()


def _ct_mr_folder(root: Path) -> Path:
    """Every single-frame 2-D CT or MR file in pydicom's test data (several transfer syntaxes), labelled
    by modality in labels.csv.
    """
    import shutil
    import warnings

    import pydicom
    from pydicom.data import get_testdata_files

    root.mkdir(parents=True)
    rows = ["file,label"]
    for path in map(Path, get_testdata_files("*.dcm")):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                ds = pydicom.dcmread(path)
                if (
                    ds.get("Modality") not in ("CT", "MR")
                    or int(ds.get("NumberOfFrames", 1) or 1) > 1
                    or ds.pixel_array.ndim != 2
                ):
                    continue
            except Exception:  # files pydicom itself cannot decode are not what this test is about
                continue
        name = f"{len(rows):03d}_{path.name}"
        shutil.copy(path, root / name)
        rows.append(f"{name},{ds.Modality}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.mark.slow
def test_default_command_on_real_dicom_with_labels_csv(tmp_path):
    """`meddistill run --data FOLDER --out DIR` with default settings on real CT and MR files, compressed
    ones included.
    """
    root = _ct_mr_folder(tmp_path / "dcm")
    assert len(list(root.glob("*.dcm"))) >= 12
    out = tmp_path / "run"
    assert main(["run", "--data", str(root), "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    default = RunConfig.from_preset()  # cpu here, thorough on a GPU machine
    assert report["config"]["preset"] == default.preset and report["dataset"]["provenance"]["kind"] == "dicom-csv"
    assert (
        report["dataset"]["classes"] == ["CT", "MR"] and report["dataset"]["train_image_size"] == default.max_image_size
    )  # 512 px scans, capped
    assert all(m["epochs_run"] > 1 for m in report["models"].values())


@pytest.mark.slow
@pytest.mark.parametrize("method", ["attention", "fitnet"])
def test_feature_methods_run_end_to_end(small_breast_npz, tmp_path, method):
    """Feature methods through the whole pipeline (the feature channels are found with a forward hook)."""
    out = tmp_path / method
    args = ["run", "--data", str(small_breast_npz), "--preset", "smoke", "--method", method, "--out", str(out)]
    assert main(args) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["config"]["method"] == method and 0 <= report["models"]["student_kd"]["test"]["acc"] <= 1


def test_epochs_the_user_gives_are_the_epochs_that_run(small_breast_npz):
    """The preset's minimum number of steps raises its own default epochs, never a number the user typed."""
    from meddistill.pipeline.plan import describe_plan, plan_run

    preset = RunConfig.from_preset("cpu", data=str(small_breast_npz))
    typed = RunConfig.from_preset("cpu", data=str(small_breast_npz), teacher_epochs=1)
    assert typed.given == ["teacher_epochs"] and preset.given == []
    assert preset.epochs_for("teacher", 160) == 38  # 2 steps per epoch at batch 128: raised to reach 75 steps
    assert typed.epochs_for("teacher", 160) == 1 and typed.epochs_for("student_kd", 160) == 38
    plans = plan_run(typed, 160, 1, 28, measure=False)
    assert [(p.role, p.epochs, p.steps) for p in plans] == [
        ("teacher", 1, 2),
        ("student_scratch", 38, 76),
        ("student_kd", 38, 76),
    ]
    text = describe_plan(plans)
    assert "Teacher (resnet18): 1 epochs x 2 steps = 2 steps (as you gave it)" in text
    assert "the preset's 30 raised to reach 76 steps" in text


def test_run_prints_its_plan_first(small_breast_npz, tmp_path, capsys):
    """`meddistill run` prints each model's epochs, steps and estimated time before it trains."""
    from meddistill.cli.train import print_plan

    print_plan(RunConfig.from_preset("smoke", data=str(small_breast_npz), teacher_epochs=2))
    printed = capsys.readouterr().out
    assert "Plan on breastmnist (160 train images at 28 px" in printed
    assert "Teacher (resnet18): 2 epochs x 3 steps = 6 steps (as you gave it), about" in printed
    assert "Estimated training time: about" in printed


@pytest.mark.slow
def test_teacher_logits_are_kept_and_reused_on_resume(small_breast_npz, tmp_path, monkeypatch):
    """The teacher's train logits are saved in the run folder; a resumed distilled student reads them back."""
    import meddistill.pipeline.building as building
    from meddistill import RunFolder, execute
    from meddistill.io.weights import read_metadata, read_weights

    out = tmp_path / "run"
    assert (
        main(
            [
                "run",
                "--data",
                str(small_breast_npz),
                "--preset",
                "smoke",
                "--teacher",
                "resnet_narrow",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    saved = out / "teacher_logits.safetensors"
    first = read_weights(saved)["logits"]
    assert first.shape == (160, 2) and read_metadata(saved)["images"] == "160"
    RunFolder(out).weights("student_kd").unlink()  # as if the run stopped before the distilled student
    for name in ("student_kd.last.safetensors", "student_kd.state.json"):
        (out / "checkpoints" / name).unlink()

    def never(*args, **kwargs):
        raise AssertionError("the teacher's logits were computed again")

    monkeypatch.setattr(building, "teacher_logits", never)
    execute(RunFolder(out).config(), out)
    assert RunFolder(out).has_weights("student_kd")
