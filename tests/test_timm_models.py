"""timm as the model zoo (issue 14): any timm name as teacher or student, grey or colour, at 28, 64 and 224 px,
with Grad-CAM, feature distillation, ONNX export and ImageNet weights from a local file (no network in tests)."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch
from safetensors.torch import save_file

from meddistill.distillation.base import create_method
from meddistill.errors import MedDistillError
from meddistill.explain import saliency
from meddistill.io.weights import load_weights, save_weights
from meddistill.models import create_model, target_module
from meddistill.models.factory import check_model_name
from meddistill.models.pretrained import PretrainedUnavailable, pretrained_state, reachable
from meddistill.pipeline.building import feature_channels
from meddistill.settings.config import RunConfig

TEACHER, STUDENT = "timm/resnet18", "timm/mobilenetv3_small_050"


@pytest.mark.parametrize("size", [28, 64, 224])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("name", [TEACHER, STUDENT])
def test_timm_model_takes_grey_and_colour_at_every_size(name, channels, size):
    torch.manual_seed(0)
    model = create_model(name, 3, channels, size).eval()
    x = torch.randn(2, channels, size, size)
    assert model(x).shape == (2, 3)
    assert model.input_side == max(size, 64)  # stride 32: resized up to a 2x2 last feature map
    assert model.net.num_classes == 3 and model.arch == name
    heat = saliency(model, x[0], method="gradcam")  # the target layer comes from timm's feature_info
    assert heat.shape == (size, size) and np.isfinite(heat).all() and heat.max() == 1.0
    assert feature_channels(model, channels, size) == model.net.feature_info[-1]["num_chs"]


@pytest.mark.parametrize("size", [28, 64, 224])
def test_timm_model_exports_to_onnx_with_the_same_outputs(tmp_path, size):
    from meddistill.evaluation.export import export_model

    torch.manual_seed(0)
    model = create_model(STUDENT, 2, 1, size).eval()
    path = export_model(model, "onnx", tmp_path / "student.onnx", 1, size)
    x = torch.randn(4, 1, size, size)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    onnx_out = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    np.testing.assert_allclose(onnx_out, model(x).detach().numpy(), atol=1e-4)


def test_feature_distillation_between_timm_models():
    """FitNets between two timm models: both target layers give (B, C, H, W) maps and the student gets gradients."""
    torch.manual_seed(0)
    teacher, student = create_model(TEACHER, 2, 1, 28).eval(), create_model(STUDENT, 2, 1, 28).train()
    method = create_method(
        "fitnet",
        student_channels=feature_channels(student, 1, 28),
        teacher_channels=feature_channels(teacher, 1, 28),
    )
    seen = {}
    for name, model in (("student", student), ("teacher", teacher)):
        target_module(model).register_forward_hook(lambda m, i, o, name=name: seen.__setitem__(name, o))
    x, y = torch.randn(4, 1, 28, 28), torch.tensor([0, 1, 0, 1])
    with torch.no_grad():
        t_logits = teacher(x)
    loss = method(student(x), t_logits, y, seen["student"], seen["teacher"])
    loss.backward()
    assert seen["student"].ndim == 4 and seen["teacher"].ndim == 4
    assert torch.isfinite(loss) and any(p.grad is not None and p.grad.abs().sum() > 0 for p in student.parameters())


def test_timm_weights_round_trip_through_safetensors(tmp_path):
    torch.manual_seed(0)
    model = create_model(STUDENT, 2, 3, 64)
    save_weights(model, tmp_path / "s.safetensors")
    torch.manual_seed(1)
    again = load_weights(create_model(STUDENT, 2, 3, 64), tmp_path / "s.safetensors")
    for key, value in model.state_dict().items():
        assert torch.equal(again.state_dict()[key], value), key


def test_names_and_refusals():
    assert check_model_name("timm/lcnet_050") == "timm/lcnet_050"
    assert check_model_name("lcnet_050") == "lcnet_050"  # not one of MedDistill's: timm's
    assert create_model("resnet18", 2, 1, 28).arch == "resnet18"  # MedDistill's own wins the plain name
    with pytest.raises(ValueError, match="unknown model 'timm/resnet17'.*or any timm model name"):
        check_model_name("timm/resnet17")
    with pytest.raises(MedDistillError, match="timm model inception_v3 cannot take 28-px images .* --image-size"):
        create_model("timm/inception_v3", 2, 1, 28)


def test_pretrained_from_a_local_file_adapts_channels_and_drops_the_head(tmp_path):
    """An ImageNet-shaped file (3 channels, 1000 classes) made here: timm sums the stem over RGB for grey input
    and gives the model a new 2-class head; the input normalisation the weights expect is applied."""
    import timm

    torch.manual_seed(0)
    imagenet = timm.create_model("resnet18", num_classes=1000, in_chans=3).state_dict()
    save_file({k: v.contiguous() for k, v in imagenet.items()}, str(tmp_path / "resnet18_in1k.safetensors"))
    state, where = pretrained_state(TEACHER, tmp_path / "resnet18_in1k.safetensors")
    model = create_model(TEACHER, 2, 1, 28, pretrained=state)
    assert where.endswith("resnet18_in1k.safetensors")
    assert torch.allclose(model.net.conv1.weight, imagenet["conv1.weight"].sum(1, keepdim=True))
    assert torch.equal(model.net.layer4[1].conv2.weight, imagenet["layer4.1.conv2.weight"])
    assert model.net.fc.weight.shape == (2, 512)
    assert model.normalisation["mean"] == [pytest.approx((0.485 + 0.456 + 0.406) / 3)]


def test_pretrained_offline_fails_fast_with_the_sentence(monkeypatch, tmp_path):
    monkeypatch.setenv("MEDDISTILL_OFFLINE", "1")
    monkeypatch.setattr("meddistill.models.pretrained._cached", lambda *a: None)  # nothing in the cache
    with pytest.raises(PretrainedUnavailable, match=r"not in the local cache and huggingface.co cannot be reached; "):
        pretrained_state("timm/lcnet_050")
    with pytest.raises(PretrainedUnavailable, match="MedDistill's own small-image model .* such as timm/resnet18"):
        pretrained_state("tiny_cnn")


def test_network_probe_gives_up_quickly():
    import time

    start = time.perf_counter()
    assert not reachable("weights.invalid", seconds=0.5)  # .invalid never resolves: the probe says so at once
    assert time.perf_counter() - start < 3


def test_pretrained_defaults_adapt_only_what_the_user_did_not_type():
    config = RunConfig.from_preset("cpu", data="x", pretrained="both")
    assert (config.teacher, config.student) == ("timm/resnet18", "timm/mobilenetv3_small_050")
    config = RunConfig.from_preset("cpu", data="x", pretrained="teacher", teacher="timm/convnext_atto")
    assert (config.teacher, config.student) == ("timm/convnext_atto", "tiny_cnn")
    with pytest.raises(ValueError, match="resnet18 is MedDistill's own small-image model .* such as timm/resnet18"):
        RunConfig.from_preset("cpu", data="x", pretrained="teacher", teacher="resnet18").validate()  # never swapped
    with pytest.raises(ValueError, match="tiny_cnn is MedDistill's own .* timm/mobilenetv3_small_050"):
        RunConfig.from_preset("cpu", data="x", pretrained="both", student="tiny_cnn").validate()
    with pytest.raises(ValueError, match="--pretrained starts the teacher .* --teacher-epochs 1 or more"):
        RunConfig.from_preset("cpu", data="x", pretrained="teacher", teacher_epochs=0, teacher_weights="w").validate()


def test_the_train_page_runs_the_models_its_pickers_show():
    """With ImageNet weights asked for, a picked model counts as given even when it equals the preset's default, so
    it is refused with a sentence instead of being swapped for the timm default behind the picker's back."""
    from meddistill.views.dashboard import config_from_fields

    fields = {"teacher": "timm/resnet18", "student": "tiny_cnn", "pretrained": "both"}
    with pytest.raises(ValueError, match="tiny_cnn is MedDistill's own small-image model"):
        config_from_fields("cpu", "x", fields, ("teacher", "student"))
    fields["student"] = "timm/lcnet_050"
    config = config_from_fields("cpu", "x", fields, ("teacher", "student"))
    assert (config.teacher, config.student) == ("timm/resnet18", "timm/lcnet_050")


@pytest.mark.slow
def test_a_run_with_timm_models_records_their_normalisation(small_breast_npz, tmp_path):
    import json

    from meddistill.cli.main import main

    out = tmp_path / "run"
    args = ["run", "--data", str(small_breast_npz), "--preset", "smoke", "--threads", "1", "--out", str(out)]
    assert main([*args, "--teacher", "timm/resnet18", "--student", "timm/lcnet_050"]) == 0
    config = json.loads((out / "config.json").read_text())
    report = json.loads((out / "report.json").read_text())
    grey = (0.485 + 0.456 + 0.406) / 3
    for role in ("teacher", "student_scratch", "student_kd"):
        assert config["extra"]["input_normalisation"][role]["mean"] == [pytest.approx(grey)]
    assert (
        report["models"]["teacher"]["arch"] == "timm/resnet18"
        and report["models"]["student_kd"]["onnx_latency_ms_b1"] > 0
    )
