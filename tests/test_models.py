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


def test_ensemble_members_learn_from_the_labels_alone(small_breast_npz):
    """The engine trains each member of an ensemble teacher on its own loss, not the loss of the averaged logits
    (which makes members collude): the batch loss is the mean of the members' cross-entropies."""
    import torch.nn.functional as F

    from meddistill.data import load_dataset
    from meddistill.data.tensors import Batches
    from meddistill.training import FitSettings
    from meddistill.training.engine import _Fit

    torch.manual_seed(0)
    model = create_model("tiny_cnn_x4", num_classes=2, in_channels=1, image_size=28)
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0  # deterministic forward passes to compare
    train = Batches(load_dataset(small_breast_npz).splits["train"], 1, 28)
    run = _Fit(model, train, FitSettings(epochs=1, lr=0.001, batch_size=16, channels_last=False), "teacher", None, None)
    images, labels, index = next(iter(train.iterate(16, torch.arange(16))))
    model.train()
    loss = run.batch_loss(images, labels, index)
    maps = model.features(images).split(model.width, dim=1)
    members = [F.cross_entropy(head(part), labels) for head, part in zip(model.heads, maps)]
    averaged = F.cross_entropy(torch.stack([head(part) for head, part in zip(model.heads, maps)]).mean(0), labels)
    assert loss.item() == pytest.approx(torch.stack(members).mean().item(), rel=1e-5)
    assert abs(loss.item() - averaged.item()) > 1e-4


def test_ensemble_map_covers_every_member():
    """Grad-CAM's layer of an ensemble holds every member's feature maps side by side, and its logits are their
    mean, so a map over it is the ensemble's."""
    torch.manual_seed(0)
    model = create_model("tiny_cnn_x4", num_classes=3, in_channels=3, image_size=64).eval()
    images = torch.randn(2, 3, 64, 64)
    kept = {}
    target_module(model).register_forward_hook(lambda m, i, out: kept.setdefault("maps", out))
    with torch.no_grad():
        logits = model(images)
    assert kept["maps"].shape == (2, 4 * model.width, 8, 8)
    each = [head(part) for head, part in zip(model.heads, kept["maps"].split(model.width, dim=1))]
    assert torch.allclose(logits, torch.stack(each).mean(0))
    assert not torch.allclose(each[0], each[1])  # members start apart
