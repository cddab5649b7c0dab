"""Teachers trained elsewhere as PyTorch state dicts (issue 14, part): read with weights_only, wrappers
unwrapped, whole pickled models refused with the fix, wrong class counts refused before training."""

from __future__ import annotations

import json

import pytest
import torch

from meddistill.cli.main import main
from meddistill.errors import WeightsError
from meddistill.io.weights import load_weights, read_weights
from meddistill.models import create_model


def _teacher(classes: int = 2) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model("resnet18", classes, 1, 28)


def test_state_dict_in_wrappers_with_module_prefix_loads(tmp_path):
    source = _teacher()
    wrapped = {"epoch": 12, "state_dict": {f"module.{k}": v for k, v in source.state_dict().items()}}
    torch.save(wrapped, tmp_path / "teacher.pth")
    loaded = load_weights(_teacher_fresh(), tmp_path / "teacher.pth")
    for key, value in source.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def _teacher_fresh() -> torch.nn.Module:
    torch.manual_seed(1)
    return create_model("resnet18", 2, 1, 28)


def test_pickled_whole_model_is_refused_with_the_fix(tmp_path):
    torch.save(_teacher(), tmp_path / "whole.pth")  # a full pickle: loading it could run any code
    with pytest.raises(WeightsError, match=r"whole.pth holds pickled Python objects .* never unpickles; re-save only"):
        read_weights(tmp_path / "whole.pth")


def test_wrong_class_count_is_refused(tmp_path):
    torch.save(_teacher(classes=3).state_dict(), tmp_path / "three.pt")
    with pytest.raises(WeightsError, match="three.pt does not fit resnet18: fc.weight has shape .*number of classes"):
        load_weights(_teacher_fresh(), tmp_path / "three.pt")


def test_not_a_weights_file(tmp_path):
    (tmp_path / "teacher.onnx").write_bytes(b"onnx")
    with pytest.raises(WeightsError, match="teacher.onnx is not a weights file MedDistill reads"):
        read_weights(tmp_path / "teacher.onnx")
    (tmp_path / "broken.pth").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(WeightsError, match="broken.pth is not a readable PyTorch file"):
        read_weights(tmp_path / "broken.pth")


@pytest.mark.slow
def test_imported_teacher_used_as_is_is_named_in_the_report(small_breast_npz, tmp_path):
    torch.save({"model": _teacher().state_dict()}, tmp_path / "hospital_teacher.pth")
    out = tmp_path / "run"
    args = ["run", "--data", str(small_breast_npz), "--preset", "smoke", "--teacher-epochs", "0", "--threads", "1"]
    assert main([*args, "--teacher-weights", str(tmp_path / "hospital_teacher.pth"), "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    source = report["models"]["teacher"]["source"]
    assert source["kind"] == "imported, used as is" and source["file"] == "hospital_teacher.pth"
    assert len(source["sha256"]) == 64 and 0 <= source["val_auc"] <= 1
    assert (out / "teacher.safetensors").is_file()  # kept like a trained teacher: Compare, Explain and export work


@pytest.mark.slow
def test_teacher_with_reversed_classes_is_refused_before_students(small_breast_npz, tmp_path):
    """A teacher whose two outputs are swapped ranks val backwards: refused with the fix, before any student."""
    from meddistill.data import load_dataset
    from meddistill.data.tensors import Batches
    from meddistill.settings.config import RunConfig
    from meddistill.training.engine import fit
    from meddistill.training.state import FitSettings

    data = load_dataset(small_breast_npz)
    train, val = (Batches(data.splits[s], 1, 28) for s in ("train", "val"))
    torch.manual_seed(0)
    model = create_model("tiny_cnn", 2, 1, 28)
    fit(model, train, val, FitSettings(epochs=15, class_weights=torch.tensor([2.0, 0.7])), role="teacher")
    source = RunConfig(teacher_weights=str(tmp_path / "swapped.pth"), teacher_epochs=0).teacher_source()
    scores = source.check(model.eval(), val, torch.device("cpu"), data.class_names)
    assert scores["val_auc"] > 0.7
    state = model.state_dict()
    for key in ("classifier.2.weight", "classifier.2.bias"):
        state[key] = state[key].flip(0)  # the other class order
    model.load_state_dict(state)
    with pytest.raises(WeightsError, match=r"swapped.pth ranks the val images backwards .* class order is probably"):
        source.check(model.eval(), val, torch.device("cpu"), data.class_names)
