"""Export round trips: TorchScript, ONNX and int8 ONNX files of a real (tiny) run, checked against PyTorch."""

from __future__ import annotations

import json

import pytest
import torch

import meddistill.pipeline.runner as pipeline
from meddistill.cli import main
from meddistill.evaluation.export import (
    available_formats,
    check_export,
    export_model,
    format_extension,
    load_exported,
)
from meddistill.models import create_model
from meddistill.reports.export import export_run
from meddistill.store.layout import RunFolder, load_trained

LIMITS = {
    "torchscript": (1e-4, 1.0),
    "onnx": (1e-4, 1.0),
    "onnx-int8": (0.1, 0.9),
    "web": (0.1, 0.9),
}  # (max prob diff, min agreement)


@pytest.fixture(scope="module")
def trained_run(small_breast_npz, tmp_path_factory):
    """One smoke run on a real BreastMNIST slice, in its own MEDDISTILL_HOME: (run folder, home)."""
    home = tmp_path_factory.mktemp("export-home")
    run_dir = tmp_path_factory.mktemp("export-run") / "run"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MEDDISTILL_HOME", str(home))
        # The report's latency figures are not under test here and take most of a smoke run's time on 2 cores.
        patch.setattr(pipeline, "measure_latency", lambda *args, **kwargs: (1.0, 1.0))
        assert main(["run", "--data", str(small_breast_npz), "--preset", "smoke", "--out", str(run_dir)]) == 0
    return run_dir, home


@pytest.fixture(scope="module")
def test_images(trained_run):
    from meddistill.data import load_dataset
    from meddistill.data.tensors import Batches

    run_dir, _ = trained_run
    _, config, summary = load_trained(run_dir, "student_kd")
    dataset = load_dataset(config.data, seed=config.seed)
    return Batches(dataset.splits["test"], summary["channels"], summary["train_image_size"]).images


@pytest.mark.parametrize("fmt", available_formats())
def test_export_run_round_trip(trained_run, test_images, fmt):
    run_dir, _ = trained_run
    result = export_run(run_dir, fmt)
    path = run_dir / "exports" / f"student_kd{format_extension(fmt)}"
    assert result["path"] == str(path) and path.is_file()
    assert result["format"] == fmt and result["role"] == "student_kd"
    assert result["size_bytes"] == path.stat().st_size > 0
    max_diff, min_agreement = LIMITS[fmt]
    assert result["max_abs_prob_diff"] < max_diff
    assert result["agreement"] >= min_agreement
    assert 0.0 <= result["test_acc"] <= 1.0 and 0.0 <= result["test_auc"] <= 1.0
    saved = json.loads((run_dir / "exports" / f"student_kd.{fmt}.json").read_text())
    temperature = result.pop("temperature")
    assert saved.pop("temperature") == temperature == RunFolder(run_dir).report().trust.models["student_kd"].temperature
    assert saved == pytest.approx(result)
    assert result["max_abs_diff_vs_report"] < max_diff  # the file gives the report's calibrated probabilities
    assert not list((run_dir / "exports").glob(".*.tmp")), "a temporary file was left behind"

    # The file loads on its own and matches the PyTorch model on any batch size (dynamic batch axis).
    model, _, _ = load_trained(run_dir, "student_kd")
    run = load_exported(path, fmt)
    for n in (1, 7):
        logits = run(test_images[:n])
        assert logits.shape == (n, 2)
        with torch.no_grad():  # the exported file divides the logits by the val-fitted temperature
            expected = torch.softmax(model(test_images[:n]) / torch.tensor(temperature), 1)
        assert (torch.softmax(logits, 1) - expected).abs().max() < max_diff

    if fmt.startswith("onnx"):
        import onnx

        graph = onnx.load(str(path))
        assert [i.name for i in graph.graph.input] == ["images"] and [o.name for o in graph.graph.output] == ["logits"]
        assert max(o.version for o in graph.opset_import if o.domain in ("", "ai.onnx")) >= 17
        assert graph.graph.input[0].type.tensor_type.shape.dim[0].dim_param  # symbolic batch size
    if fmt in ("torchscript", "onnx"):  # an exact export (not int8, as the web page's is) scores like the report
        report = json.loads((run_dir / "report.json").read_text())
        assert result["test_acc"] == pytest.approx(report["models"]["student_kd"]["test"]["acc"])
        assert result["test_auc"] == pytest.approx(report["models"]["student_kd"]["test"]["auc"], abs=1e-6)


def test_int8_file_is_smaller(trained_run):
    run_dir, _ = trained_run
    fp32 = export_run(run_dir, "onnx", out=run_dir / "cmp" / "a.onnx")
    int8 = export_run(run_dir, "onnx-int8", out=run_dir / "cmp" / "a.int8.onnx")
    assert int8["size_bytes"] < fp32["size_bytes"] / 2


def test_teacher_exports_too(trained_run):
    run_dir, _ = trained_run
    result = export_run(run_dir, "onnx", role="teacher", out=run_dir / "t" / "teacher.onnx")
    assert result["max_abs_prob_diff"] < 1e-4 and result["size_bytes"] > 10_000_000


def test_check_export_catches_a_different_model(trained_run, test_images, tmp_path):
    run_dir, _ = trained_run
    model, _, _ = load_trained(run_dir, "student_kd")
    path = export_model(model, "onnx", tmp_path / "m.onnx", 1, 28)
    assert check_export(path, "onnx", model, test_images)["max_abs_prob_diff"] < 1e-4
    with torch.no_grad():
        model.classifier[-1].bias.copy_(torch.tensor([5.0, -5.0]))
    changed = check_export(path, "onnx", model, test_images)
    assert changed["max_abs_prob_diff"] > 0.1


def test_export_model_rejects_bad_arguments(tmp_path):
    model = create_model("tiny_cnn", 2, 1, 28)
    with pytest.raises(ValueError, match="choose one of: onnx, onnx-int8, torchscript"):
        export_model(model, "tflite", tmp_path / "m.tflite", 1, 28)
    with pytest.raises(ValueError, match="calibration"):
        export_model(model, "onnx-int8", tmp_path / "m.int8.onnx", 1, 28)
    assert not list(tmp_path.iterdir())


def test_cli_export(trained_run, tmp_path, monkeypatch, capsys):
    run_dir, home = trained_run
    monkeypatch.setenv("MEDDISTILL_HOME", str(home))
    from meddistill import RunStore

    run_id = RunStore().get(str(run_dir)).id
    out = tmp_path / "student.pt"
    assert main(["export", run_id[:15], "--format", "torchscript", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert str(out) in printed and "agreement 100.0%" in printed
    assert out.is_file() and load_exported(out, "torchscript")(torch.zeros(3, 1, 28, 28)).shape == (3, 2)

    assert (
        main(["export", str(run_dir), "--model", "student_scratch"]) == 0
    )  # a folder path works too; default format onnx
    assert (run_dir / "exports" / "student_scratch.onnx").is_file()


def test_cli_export_bad_input(trained_run, capsys):
    run_dir, _ = trained_run
    with pytest.raises(SystemExit) as exit_info:
        main(["export", str(run_dir), "--format", "tflite"])
    assert exit_info.value.code == 2
    assert "onnx-int8" in capsys.readouterr().err
    assert main(["export", "no-such-run"]) == 2
    assert "no run matches" in capsys.readouterr().err
    assert main(["export", str(run_dir), "--out", str(run_dir / "report.json" / "x.onnx")]) == 2
    assert "meddistill:" in capsys.readouterr().err


def test_report_has_latency_as_deployed(trained_run):
    """Every model's report entry has its ONNX Runtime latency and throughput; the students' int8 ones too."""
    from meddistill import RunFolder
    from meddistill.store.report import DEPLOYED_FORMATS, deployed_fields

    run_dir, _ = trained_run
    report = RunFolder(run_dir).report()
    assert report["threads"] >= 1 and report["cpu"]
    for role, entry in report["models"].items():
        assert "deployed_error" not in entry, entry.get("deployed_error")
        for fmt in DEPLOYED_FORMATS[role]:
            latency, throughput = deployed_fields(fmt)
            assert entry[latency] > 0 and entry[throughput] > 0, (role, fmt)
    assert set(DEPLOYED_FORMATS["student_kd"]) == {"onnx", "onnx-int8"} and DEPLOYED_FORMATS["teacher"] == ("onnx",)
