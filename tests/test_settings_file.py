"""Settings in a file: `meddistill config RUN > run.yaml && meddistill run --config run.yaml` gives the same
config.json, flags override the file, and a bad file is refused with one sentence naming the key."""

from __future__ import annotations

import json

import pytest

from meddistill.cli.main import build_parser, main
from meddistill.cli.train import config_from


def _config_json(folder) -> dict:
    values = json.loads((folder / "config.json").read_text())
    values["extra"].pop("budget", None)  # the plan's sentence names the timed step: the same run, another timing
    return values


@pytest.mark.slow
def test_config_of_a_run_runs_it_again(small_breast_npz, tmp_path, capsys):
    first = tmp_path / "first"
    typed = ["--preset", "smoke", "--teacher-epochs", "2", "--target-sensitivity", "0.9", "--seed", "3"]
    assert main(["run", "--data", str(small_breast_npz), *typed, "--threads", "1", "--out", str(first)]) == 0
    capsys.readouterr()
    assert main(["config", str(first)]) == 0
    text = capsys.readouterr().out
    assert "teacher_epochs: 2" in text and "target_sensitivity: 0.9" in text and "preset: smoke" in text
    settings = tmp_path / "run.yaml"
    settings.write_text(text)
    again = tmp_path / "again"
    assert main(["run", "--config", str(settings), "--threads", "1", "--out", str(again)]) == 0
    assert _config_json(again) == _config_json(first)


def test_flags_override_the_file_and_count_as_given(small_breast_npz, tmp_path):
    settings = tmp_path / "run.json"
    settings.write_text(json.dumps({"preset": "smoke", "data": str(small_breast_npz), "teacher_epochs": 2, "lr": 0.01}))
    args = build_parser().parse_args(["run", "--config", str(settings), "--teacher-epochs", "1"])
    config = config_from(args)
    assert (config.teacher_epochs, config.lr, config.preset) == (1, 0.01, "smoke")
    assert {"teacher_epochs", "lr"} <= set(config.given)


@pytest.mark.parametrize(
    ("text", "sentence"),
    [
        ("teacher_epoch: 3\n", "has the key 'teacher_epoch', which is not a setting; did you mean teacher_epochs?"),
        ("teacher_epochs: ten\n", "'teacher_epochs' must be a whole number, got 'ten'"),
        ("- teacher_epochs\n", "must hold one mapping of setting names to values"),
        ("teacher_epochs: [1\n", "is not valid YAML"),
    ],
)
def test_a_bad_settings_file_is_refused_with_one_sentence(small_breast_npz, tmp_path, capsys, text, sentence):
    settings = tmp_path / "run.yaml"
    settings.write_text(f"data: {small_breast_npz}\n" + text if not text.startswith("-") else text)
    assert main(["run", "--config", str(settings)]) == 2
    err = capsys.readouterr().err
    assert sentence in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def test_run_without_data_anywhere_says_so(capsys):
    assert main(["run", "--preset", "smoke"]) == 2
    assert "--data, or data: in the --config file" in capsys.readouterr().err
