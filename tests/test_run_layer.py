"""The run layer's homes: the typed report (round trip, old and newer files), settings declared once (a throwaway
setting reaches the command line and the Train page), frozen settings, teacher sources resolved once."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from meddistill import RunConfig, RunFolder, execute
from meddistill.errors import MedDistillError
from meddistill.evaluation.significance import GAINED, LOST, NO_DIFFERENCE, direction
from meddistill.settings.sources import TEACHER_SOURCES
from meddistill.store.report import SCHEMA_VERSION, Report
from meddistill.tasks import ClassificationMetrics

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def smoke_run(small_breast_npz, tmp_path_factory):
    """A real smoke run on a BreastMNIST slice (a few seconds)."""
    out = tmp_path_factory.mktemp("layer") / "run"
    config = RunConfig.from_preset("smoke", data=str(small_breast_npz), teacher="resnet_narrow", threads=1)
    execute(config.validate(), out)
    return out


def test_report_json_round_trips_through_the_dataclasses(smoke_run):
    path = smoke_run / "report.json"
    raw = path.read_text(encoding="utf-8")
    report = RunFolder(smoke_run).report()
    assert isinstance(report, Report) and report.schema_version == SCHEMA_VERSION
    assert isinstance(report.models["student_kd"].test, ClassificationMetrics)
    assert report.verdict["distillation"].direction in (GAINED, LOST, NO_DIFFERENCE)
    assert report.models["teacher"].source == {"kind": "trained here", "source": "trained"}
    assert report.to_dict() == json.loads(raw)
    RunFolder(smoke_run).write_report(report)
    assert path.read_text(encoding="utf-8") == raw  # written back byte for byte


def test_an_old_report_without_schema_version_is_read(smoke_run):
    """A report as written before 2026-12: no schema_version, task, data checks, directions or source names."""
    old = json.loads((smoke_run / "report.json").read_text(encoding="utf-8"))
    for key in ("schema_version", "task", "data_checks"):
        old.pop(key)
    for verdict in old["verdict"].values():
        verdict.pop("direction")
    old["models"]["teacher"]["source"].pop("source")
    report = Report.from_dict(old)
    new = RunFolder(smoke_run).report()
    assert report.models["student_kd"].test == new.models["student_kd"].test
    assert {k: v.direction for k, v in report.verdict.items()} == {k: v.direction for k, v in new.verdict.items()}
    assert report.data_checks == new.data_checks


def test_a_newer_report_is_refused_with_one_sentence(smoke_run):
    values = json.loads((smoke_run / "report.json").read_text(encoding="utf-8"))
    with pytest.raises(MedDistillError, match="newer MedDistill .* upgrade MedDistill"):
        Report.from_dict({**values, "schema_version": SCHEMA_VERSION + 1}, source="x/report.json")
    with pytest.raises(MedDistillError, match="does not know \\('surprise'"):
        Report.from_dict({**values, "surprise": 1})


def test_verdict_direction_is_a_value_not_a_sentence():
    base = {"n": 10, "acc_diff": 0.05, "auc_diff": -0.01}
    assert direction({**base, "acc_ci": [0.01, 0.09], "auc_ci": [-0.05, 0.03]}) == GAINED
    assert direction({**base, "acc_diff": -0.05, "acc_ci": [-0.09, -0.01], "auc_ci": [-0.05, 0.03]}) == LOST
    assert direction({**base, "acc_ci": [-0.01, 0.09], "auc_ci": [-0.05, -0.002]}) == LOST  # AUC decides
    assert direction({**base, "acc_ci": [-0.01, 0.09], "auc_ci": [-0.05, 0.03]}) == NO_DIFFERENCE


def test_settings_are_frozen_and_derived_copies_are_new():
    config = RunConfig.from_preset("smoke", data="x")
    with pytest.raises(AttributeError):
        config.kd_alpha = 0.9
    changed = config.replace(kd_alpha=0.9)
    assert changed.kd_alpha == 0.9 and config.kd_alpha != 0.9


@pytest.mark.parametrize(
    ("settings", "name", "trains", "features"),
    [
        ({}, "trained", True, True),
        ({"pretrained": "teacher", "teacher_weights": "imagenet.safetensors"}, "pretrained", True, True),
        ({"teacher_weights": "hospital.pth", "teacher_epochs": 0}, "weights", False, True),
        ({"teacher_weights": "hospital.pth", "teacher_epochs": 3}, "weights", True, True),
        ({"teacher_weights": "hospital.onnx"}, "imported", False, False),
        ({"teacher_weights": "run/teacher.onnx", "teacher_from": "run"}, "reused", False, False),
        (
            {"teacher_weights": "run/teacher.safetensors", "teacher_from": "run", "teacher_epochs": 0},
            "reused",
            False,
            True,
        ),
    ],
)
def test_the_teacher_source_is_resolved_once_from_the_settings(settings, name, trains, features):
    source = RunConfig.from_preset("smoke", data="x", **settings).teacher_source()
    assert (source.name, source.trains, source.feature_maps) == (name, trains, features)
    assert source.supports("kd") and source.supports("attention") == features
    assert name in TEACHER_SOURCES


def test_an_imported_teacher_refuses_feature_methods_through_its_source():
    with pytest.raises(ValueError, match="does not expose"):
        RunConfig.from_preset("smoke", data="x", teacher_weights="t.onnx", method="attention").validate()


@pytest.mark.slow
def test_a_setting_declared_once_reaches_the_command_line_and_the_train_page(small_breast_npz, tmp_path):
    """A throwaway setting, one `declare(...)` line added to a copy of the settings module and nothing else, is a
    `meddistill run` option, a RunConfig field checked against its range, and a field of the Train page (AppTest)."""
    copy = tmp_path / "repo"
    for name in ("meddistill", "pages", ".streamlit"):
        shutil.copytree(ROOT / name, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "app.py", copy / "app.py")
    config_py = copy / "meddistill" / "settings" / "fields.py"
    text = config_py.read_text(encoding="utf-8")
    anchor = 'declare("extra", {},'
    line = (
        'declare("throwaway_knob", 3, "a knob for this test only", minimum=1, maximum=9, page="advanced", '
        'label="Throwaway knob")\n'
    )
    assert anchor in text
    config_py.write_text(text.replace(anchor, line + anchor), encoding="utf-8")
    script = textwrap.dedent(
        f"""
        import contextlib, io
        from meddistill.cli.main import build_parser
        from meddistill.settings.config import RunConfig
        help_text = io.StringIO()
        with contextlib.redirect_stdout(help_text), contextlib.suppress(SystemExit):
            build_parser().parse_args(["run", "--help"])
        assert "--throwaway-knob" in help_text.getvalue() and "a knob for this test only" in help_text.getvalue()
        args = build_parser().parse_args(["run", "--data", "x", "--throwaway-knob", "7"])
        assert args.throwaway_knob == 7
        assert RunConfig.from_preset("smoke", data="x", throwaway_knob=7).throwaway_knob == 7
        try:
            RunConfig.from_preset("smoke", data="x", throwaway_knob=12).validate()
            raise SystemExit("out of range accepted")
        except ValueError as error:
            assert "throwaway_knob must be between 1 and 9" in str(error), error
        from streamlit.testing.v1 import AppTest
        at = AppTest.from_file("app.py", default_timeout=120).switch_page("pages/train.py")
        at.session_state["dataset"] = {str(small_breast_npz)!r}
        at.run()
        assert not at.exception, at.exception
        knob = [w for w in at.number_input if w.label == "Throwaway knob"]
        assert knob and knob[0].value == 3, [w.label for w in at.number_input]
        print("ok")
        """
    )
    env = {**os.environ, "MEDDISTILL_HOME": str(tmp_path / "home"), "PYTHONPATH": str(copy)}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=copy, env=env)
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-3000:]


def test_the_readme_schema_line_names_every_report_field():
    import dataclasses

    from meddistill.store.report import ModelEntry, TeacherCheck, Verdict

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    line = next(text for text in readme.splitlines() if "`report.json` (written from and read back" in text)
    for cls in (Report, ModelEntry, Verdict, TeacherCheck):
        for f in dataclasses.fields(cls):
            assert f'"{f.name}"' in line or f"`{f.name}`" in line, (cls.__name__, f.name)
