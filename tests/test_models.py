"""Every registered model: forward shape, backward, no NaN, 1 and 3 channels; size and FLOPs."""

import pytest
import torch

from meddistill.models import available_models, create_model, model_info, target_module


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("name", available_models())
def test_forward_backward(name, channels):
    torch.manual_seed(0)
    model = create_model(name, num_classes=3, in_channels=channels, image_size=28)
    images = torch.randn(2, channels, *[28] * model.spatial_dims)  # volumes (B, C, S, S, S) for a 3D model
    logits = model(images)
    assert logits.shape == (2, 3)
    assert torch.isfinite(logits).all()
    logits.sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert target_module(model) is not None


@pytest.mark.parametrize("name", ["tiny_cnn", "resnet18", "mobilenet_v3_small"])
def test_larger_inputs(name):
    model = create_model(name, num_classes=2, in_channels=3, image_size=224).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 224, 224)).shape == (1, 2)


def test_default_student_is_small():
    teacher = model_info(create_model("resnet18", 2, 1, 28), 1, 28)
    student = model_info(create_model("tiny_cnn", 2, 1, 28), 1, 28)
    assert student.params < 100_000
    assert student.params <= 0.05 * teacher.params
    assert student.flops < teacher.flops / 20
    assert teacher.size_mb == pytest.approx(teacher.params * 4 / 1e6, rel=0.01)


def test_roles():
    assert {"resnet18", "resnet50", "densenet121", "efficientnet_b0"} <= set(available_models("teacher"))
    assert {"tiny_cnn", "mobilenet_v3_small", "resnet_narrow"} <= set(available_models("student"))


def test_unknown_model_lists_valid_names():
    with pytest.raises(
        ValueError, match="unknown model 'resnet19'.*did you mean 'resnet18'.*choose one of: .*tiny_cnn"
    ):
        create_model("resnet19", 2)


def test_bad_channels():
    with pytest.raises(ValueError, match="in_channels must be 1 or 3, got 4"):
        create_model("tiny_cnn", 2, in_channels=4)
