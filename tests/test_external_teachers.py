"""Teachers from other frameworks (issue 14): TorchScript and ONNX teachers give the cached logits and the
distilled student of the original, are checked against the dataset before training, and a trained teacher is
reused across runs with its cached logits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from meddistill.cli.main import main
from meddistill.errors import WeightsError
from meddistill.explain import available_explainers, saliency
from meddistill.io.weights import read_weights
from meddistill.models import create_model
from meddistill.models.external import ReorderedTeacher, class_order, load_external_teacher, teacher_file_kind
from meddistill.store.layout import RunFolder

SMOKE = ["--preset", "smoke", "--threads", "1", "--seed", "3"]


def _export(model: torch.nn.Module, path: Path, channels: int = 1, size: int = 28) -> Path:
    torch.onnx.export(
        model.eval(),
        torch.zeros(1, channels, size, size),
        str(path),
        dynamo=False,
        input_names=["images"],
        output_names=["logits"],
        dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}},
    )
    return path


def test_file_kinds_and_refusals_before_training(tmp_path):
    torch.manual_seed(0)
    grey = create_model("tiny_cnn", 2, 1, 28)
    torch.save(grey.state_dict(), tmp_path / "state.pt")
    torch.jit.save(torch.jit.trace(grey.eval(), torch.zeros(1, 1, 28, 28)), tmp_path / "scripted.pt")
    _export(grey, tmp_path / "grey.onnx")
    assert [teacher_file_kind(tmp_path / n) for n in ("state.pt", "scripted.pt", "grey.onnx")] == [
        "weights",
        "torchscript",
        "onnx",
    ]
    colour = _export(create_model("tiny_cnn", 2, 3, 28), tmp_path / "colour.onnx", channels=3)
    with pytest.raises(WeightsError, match="colour.onnx takes 3-channel images, but this dataset's are 1-channel"):
        load_external_teacher(colour, 2, 1, 28)
    three = _export(create_model("tiny_cnn", 3, 1, 28), tmp_path / "three.onnx")
    with pytest.raises(WeightsError, match=r"three.onnx gives \(3,\) outputs per image, but the dataset has 2"):
        load_external_teacher(three, 2, 1, 28)
    scripted3 = torch.jit.trace(create_model("tiny_cnn", 3, 1, 28).eval(), torch.zeros(1, 1, 28, 28))
    torch.jit.save(scripted3, tmp_path / "three.pt")
    with pytest.raises(WeightsError, match=r"three.pt gives \(3,\) outputs per image, but the dataset has 2 classes"):
        load_external_teacher(tmp_path / "three.pt", 2, 1, 28)
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(WeightsError, match="junk.onnx is not an ONNX model ONNX Runtime can run"):
        load_external_teacher(tmp_path / "junk.onnx", 2, 1, 28)


def test_onnx_teacher_matches_the_original_and_offers_only_occlusion(tmp_path):
    torch.manual_seed(0)
    original = create_model("resnet18", 2, 1, 28).eval()
    teacher = load_external_teacher(_export(original, tmp_path / "t.onnx"), 2, 1, 28)
    x = torch.randn(5, 1, 28, 28)
    np.testing.assert_allclose(teacher(x).numpy(), original(x).detach().numpy(), atol=1e-4)
    assert available_explainers(teacher) == ["occlusion"]
    assert saliency(teacher, x[0], method="occlusion").shape == (28, 28)
    with pytest.raises(ValueError, match="Grad-CAM cannot explain this model. The teacher is an imported ONNX"):
        saliency(teacher, x[0], method="gradcam")


def test_teacher_classes_put_outputs_in_the_dataset_order(tmp_path):
    torch.manual_seed(0)
    original = create_model("tiny_cnn", 3, 1, 28).eval()
    path = _export(original, tmp_path / "t.onnx")
    teacher = load_external_teacher(path, 3, 1, 28, ["a", "b", "c"], ["c", "a", "b"])
    assert isinstance(teacher, ReorderedTeacher)
    x = torch.randn(2, 1, 28, 28)
    np.testing.assert_allclose(teacher(x).numpy(), original(x).detach().numpy()[:, [1, 2, 0]], atol=1e-4)
    assert class_order(["a", "b"], ["a", "b"], "t.onnx") is None
    with pytest.raises(WeightsError, match="--teacher-classes for t.onnx names a, x, but the dataset's classes"):
        class_order(["a", "x"], ["a", "b"], "t.onnx")


def _run(data: Path, out: Path, *extra: str) -> dict:
    assert main(["run", "--data", str(data), *SMOKE, *extra, "--out", str(out)]) == 0
    return json.loads((out / "report.json").read_text())


@pytest.mark.slow
def test_torchscript_and_onnx_teachers_give_the_original_logits_and_student(small_breast_npz, tmp_path):
    """End to end on real BreastMNIST images: train a run, export its teacher with ``meddistill export --raw`` (the
    raw logits, not divided by its temperature) to ONNX and TorchScript, and distil a new student from each with the
    teacher used as is."""
    first = _run(small_breast_npz, tmp_path / "trained")
    assert first["models"]["teacher"]["source"] == {"kind": "trained here", "source": "trained"}
    files = {}
    for fmt, name in (("onnx", "teacher.onnx"), ("torchscript", "teacher.ts.pt")):
        files[fmt] = tmp_path / name
        out = str(files[fmt])
        export = ["export", str(tmp_path / "trained"), "--model", "teacher", "--format", fmt, "--out", out, "--raw"]
        assert main(export) == 0
    weights = str(tmp_path / "trained" / "teacher.safetensors")
    reports, logits = {}, {}
    for key, teacher in (
        ("original", weights),
        ("onnx", str(files["onnx"])),
        ("torchscript", str(files["torchscript"])),
    ):
        out = tmp_path / key
        reports[key] = _run(small_breast_npz, out, "--teacher-weights", teacher, "--teacher-epochs", "0")
        logits[key] = read_weights(out / "teacher_logits.safetensors")["logits"]
    for key in ("onnx", "torchscript"):
        torch.testing.assert_close(logits[key], logits["original"], atol=1e-4, rtol=0)
        kd = reports[key]["models"]["student_kd"]["test"]["acc"]
        assert kd == reports["original"]["models"]["student_kd"]["test"]["acc"]
        source = reports[key]["models"]["teacher"]["source"]
        assert source["kind"] == "imported, used as is" and source["format"] == key
        assert source["file"] == files[key].name and len(source["sha256"]) == 64
        assert reports[key]["models"]["teacher"]["onnx_latency_ms_b1"] > 0
    assert (tmp_path / "onnx" / "teacher.onnx").is_file()  # kept in the run folder for Compare, Explain, resume
    teacher = RunFolder(tmp_path / "onnx").load_model("teacher")
    assert getattr(teacher, "opaque", False) and available_explainers(teacher) == ["occlusion"]


@pytest.mark.slow
def test_a_trained_teacher_is_reused_with_its_cached_logits(small_breast_npz, tmp_path, monkeypatch):
    _run(small_breast_npz, tmp_path / "first")
    cached = read_weights(tmp_path / "first" / "teacher_logits.safetensors")["logits"]

    def recompute(*args, **kwargs):
        raise AssertionError("the teacher's logits were computed again")

    monkeypatch.setattr("meddistill.pipeline.building.teacher_logits", recompute)
    report = _run(small_breast_npz, tmp_path / "second", "--teacher-from", str(tmp_path / "first"), "--method", "dkd")
    assert report["models"]["teacher"]["epochs_run"] == 0
    assert report["models"]["teacher"]["source"]["file"] == "teacher.safetensors"
    assert torch.equal(read_weights(tmp_path / "second" / "teacher_logits.safetensors")["logits"], cached)


def test_onnx_teacher_cannot_be_fine_tuned_or_feature_distilled(small_breast_npz, tmp_path, capsys):
    path = _export(create_model("tiny_cnn", 2, 1, 28), tmp_path / "t.onnx")
    base = ["run", "--data", str(small_breast_npz), *SMOKE, "--teacher-weights", str(path)]
    assert main([*base, "--teacher-epochs", "2"]) == 2
    assert "t.onnx is an ONNX or TorchScript teacher, which is used as is and not fine-tuned" in capsys.readouterr().err
    assert main([*base, "--method", "fitnet"]) == 2
    assert "fitnet distils the teacher's feature maps, which t.onnx does not expose" in capsys.readouterr().err


def test_teacher_from_with_another_teacher_is_refused(small_breast_npz, capsys):
    args = ["run", "--data", str(small_breast_npz), *SMOKE, "--teacher-from", "somerun", "--teacher", "resnet50"]
    assert main(args) == 2
    assert "Give either --teacher-from (the teacher and its architecture come from that run)" in capsys.readouterr().err
