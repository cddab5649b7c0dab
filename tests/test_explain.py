"""Saliency maps: a hand-computed Grad-CAM, every model x method, no side effects, overlays, the CLI."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from meddistill.cli import main
from meddistill.explain import Explanation, available_explainers, explain_pair, normalise, overlay, saliency
from meddistill.models import available_models, create_model

HEAVY = ("densenet121", "resnet50", "resnet10_3d", "resnet18_3d")  # occlusion and IG take seconds; Grad-CAM covers
IMAGES = available_models(spatial_dims=2)  # the 3D models have their own tests (tests/test_volumes.py)
X_GOLDEN = np.arange(16, dtype=np.float64).reshape(4, 4) / 8.0 - 1.0  # -1 .. 0.875
CONV_W, CONV_B = np.array([2.0, -1.0]), np.array([0.0, 0.25])
LIN_W = np.array([[1.0, -3.0], [-1.0, 2.0]])


pytestmark = pytest.mark.usefixtures("one_thread")


def _golden_net() -> nn.Sequential:
    """Conv2d(1, 2, 1) -> ReLU -> global average pool -> Linear(2, 2), all weights set by hand."""
    net = nn.Sequential(
        nn.Conv2d(1, 2, 1), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 2)
    )
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor(CONV_W).view(2, 1, 1, 1))
        net[0].bias.copy_(torch.tensor(CONV_B))
        net[4].weight.copy_(torch.tensor(LIN_W))
        net[4].bias.zero_()
    return net


def _expected_cam(target: int) -> np.ndarray:
    """By hand: A_k = ReLU(w_k x + b_k); d score / d A_k(i, j) = V[target, k] / 16; CAM = ReLU(sum_k (V/16) A_k)."""
    acts = np.maximum(CONV_W[:, None, None] * X_GOLDEN[None] + CONV_B[:, None, None], 0.0)
    cam = np.maximum(np.tensordot(LIN_W[target] / 16.0, acts, axes=1), 0.0)
    return (cam - cam.min()) / (cam.max() - cam.min())


@pytest.mark.parametrize("target", [0, 1])
def test_gradcam_matches_hand_computation(target):
    net = _golden_net()
    x = torch.tensor(X_GOLDEN, dtype=torch.float32)[None]  # (1, 4, 4)
    expected = _expected_cam(target)
    assert 0 < (expected == 0).sum() < 16  # the final ReLU clips some pixels, others stay positive
    got = saliency(net, x, target=target, method="gradcam", layer="1")
    assert got.dtype == np.float32 and got.shape == (4, 4)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert net[1].inplace is True  # toggled for captum, restored after


def test_gradcam_target_none_is_predicted_class():
    net = _golden_net()
    x = torch.tensor(X_GOLDEN, dtype=torch.float32)[None]
    predicted = int(net(x[None]).argmax())
    np.testing.assert_allclose(saliency(net, x, layer="1"), _expected_cam(predicted), atol=1e-6)


def test_works_under_inference_mode():
    net = _golden_net()
    with torch.inference_mode():  # a caller that only serves predictions
        x = torch.tensor(X_GOLDEN, dtype=torch.float32)[None]
        np.testing.assert_allclose(saliency(net, x, target=0, layer="1"), _expected_cam(0), atol=1e-6)


def test_normalise_flat_and_nan():
    assert not normalise(np.zeros((5, 5))).any()
    assert not normalise(np.full((5, 5), 3.0)).any()
    got = normalise(np.array([[np.nan, 1.0], [3.0, np.inf]]))
    assert np.isfinite(got).all() and got.max() == 1.0 and got.min() == 0.0


@functools.lru_cache(maxsize=None)
def _model(name: str, channels: int) -> nn.Module:
    torch.manual_seed(0)
    return create_model(name, 2, channels, 28).eval()


def _check_map(heat: np.ndarray, method: str = "gradcam") -> None:
    assert heat.shape == (28, 28) and heat.dtype == np.float32
    assert np.isfinite(heat).all() and heat.min() >= 0.0
    # min-max normalised: the top is 1, or the map is flat (Grad-CAM's ReLU may clip a random net's map to zeros)
    assert heat.max() == 1.0 or (method == "gradcam" and not heat.any())


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("name", IMAGES)
def test_gradcam_every_model(name, channels):
    x = torch.randn(channels, 28, 28, generator=torch.Generator().manual_seed(1))
    _check_map(saliency(_model(name, channels), x))


@pytest.mark.parametrize("name", [m for m in IMAGES if m not in HEAVY])
@pytest.mark.parametrize("method", ["occlusion", "integrated_gradients"])
def test_occlusion_and_ig_grey_and_rgb(name, method):
    for channels in (1, 3):
        x = torch.randn(1, channels, 28, 28, generator=torch.Generator().manual_seed(2))
        _check_map(saliency(_model(name, channels), x, method=method), method)


def test_method_registry_and_unknown_method():
    assert set(available_explainers()) == {"gradcam", "occlusion", "integrated_gradients"}
    with pytest.raises(ValueError, match="choose one of: gradcam, integrated_gradients, occlusion"):
        saliency(_model("tiny_cnn", 1), torch.zeros(1, 28, 28), method="lime")
    with pytest.raises(ValueError, match="target must be"):
        saliency(_model("tiny_cnn", 1), torch.zeros(1, 28, 28), target=2)
    with pytest.raises(ValueError, match="image must be"):
        saliency(_model("tiny_cnn", 1), torch.zeros(28, 28))


def _hooks(model: nn.Module) -> int:
    names = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
    return sum(len(getattr(m, n)) for m in model.modules() for n in names)


def test_fifty_calls_leave_the_model_untouched():
    torch.manual_seed(0)
    model = create_model("mobilenet_v3_small", 2, 1, 28)  # inplace Hardswish and ReLU, SE blocks
    model.train()
    model.classifier.eval()  # mixed modes must come back per module
    model.features[0][0].weight.requires_grad_(False)
    modes = [m.training for m in model.modules()]
    inplace = [m.inplace for m in model.modules() if hasattr(m, "inplace")]
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(1, 28, 28, generator=torch.Generator().manual_seed(3))
    methods = ["gradcam"] * 48 + ["integrated_gradients", "occlusion"]
    with torch.no_grad():  # callers inside no_grad (the dashboard) must still get maps
        maps = [saliency(model, x, target=1, method=m) for m in methods]
    assert np.isfinite(maps[-1]).all() and maps[0].max() == 1.0
    np.testing.assert_array_equal(maps[0], maps[47])  # same map every time: eval mode, no drift
    assert _hooks(model) == 0
    assert all(p.grad is None for p in model.parameters())
    assert [p.requires_grad for p in model.parameters()].count(False) == 1 and not model.features[0][
        0
    ].weight.requires_grad
    assert [m.training for m in model.modules()] == modes
    assert [m.inplace for m in model.modules() if hasattr(m, "inplace")] == inplace and any(inplace)
    for key, value in model.state_dict().items():  # batch-norm statistics not updated
        assert torch.equal(value, state[key]), key


def test_overlay_shapes_and_colours():
    grey = np.full((30, 40), 100, np.uint8)
    heat = np.ones((28, 28), np.float32)
    out = overlay(grey, heat)
    assert out.shape == (30, 40, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(overlay(grey, heat, opacity=0.0), np.stack([grey] * 3, -1))
    np.testing.assert_array_equal(overlay(grey, heat, opacity=1.0)[0, 0], [128, 0, 0])  # jet(1) = dark red
    np.testing.assert_array_equal(
        overlay(grey, np.zeros((28, 28)), opacity=1.0)[0, 0], [0, 0, 128]
    )  # jet(0) = dark blue
    colour = np.zeros((20, 20, 3), np.uint8)
    assert overlay(colour, heat).shape == (20, 20, 3)
    with pytest.raises(ValueError, match="choose one of: jet"):
        overlay(grey, heat, colormap="viridis")


def test_explain_pair_uses_teachers_class_for_both():
    teacher, student = _model("resnet_narrow", 1), _model("tiny_cnn", 1)
    scan = np.random.default_rng(0).integers(0, 255, (40, 40), dtype=np.uint8)
    out = explain_pair(teacher, student, scan, channels=1, size=28)
    assert isinstance(out["teacher"], Explanation) and out["method"] == "gradcam"
    assert out["target"] == out["teacher"].predicted == int(np.argmax(out["teacher"].probabilities))
    assert abs(sum(out["student"].probabilities) - 1) < 1e-6 and out["student"].saliency.shape == (28, 28)
    assert -1 <= out["agreement"]["pearson"] <= 1 and 0 <= out["agreement"]["iou"] <= 1


@pytest.fixture(scope="module")
def trained_run(small_breast_npz, tmp_path_factory):
    """A smoke run (resnet_narrow teacher, tiny_cnn students) on the real BreastMNIST slice, trained once."""
    root = tmp_path_factory.mktemp("explain_run")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MEDDISTILL_HOME", str(root / "home"))
        code = main(
            [
                "run",
                "--data",
                str(small_breast_npz),
                "--preset",
                "smoke",
                "--teacher",
                "resnet_narrow",
                "--out",
                str(root / "run"),
            ]
        )
    assert code == 0
    with np.load(small_breast_npz) as data:
        scan = data["test_images"][0]
    Image.fromarray(scan).save(root / "scan.png")
    return root


def test_cli_explain_writes_overlay_and_map(trained_run, tmp_path, capsys):
    out = tmp_path / "maps" / "scan_cam.png"
    assert (
        main(
            ["explain", "--run", str(trained_run / "run"), "--image", str(trained_run / "scan.png"), "--out", str(out)]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "student_kd" in printed and ("benign" in printed or "malignant" in printed)
    picture = np.asarray(Image.open(out))
    assert picture.shape == (28, 28, 3) and picture.dtype == np.uint8
    heat = np.load(out.with_suffix(".npy"))
    assert heat.shape == (28, 28) and heat.dtype == np.float32 and 0 <= heat.min() and heat.max() <= 1
    assert not list(out.parent.glob(".*.tmp"))


def test_cli_explain_by_run_id_colour_jpeg_teacher(trained_run, tmp_path, capsys):
    from meddistill import RunStore

    record = RunStore().import_run(trained_run / "run")  # into this test's own MEDDISTILL_HOME
    scan = np.asarray(Image.open(trained_run / "scan.png"))
    Image.fromarray(np.stack([scan] * 3, -1)).resize((60, 50)).save(tmp_path / "scan.jpg")
    out = tmp_path / "cam.png"
    args = [
        "explain",
        "--run",
        record.id,
        "--image",
        str(tmp_path / "scan.jpg"),
        "--model",
        "teacher",
        "--method",
        "occlusion",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    assert np.asarray(Image.open(out)).shape == (50, 60, 3) and np.load(tmp_path / "cam.npy").shape == (28, 28)
    assert "teacher" in capsys.readouterr().out


@pytest.mark.parametrize(
    "case, message",
    [
        ("bad_image", "bad.png"),
        ("missing_image", "nothing.png"),
        ("not_png", "must end in .png"),
        ("unknown_run", "no run matches"),
    ],
)
def test_cli_explain_bad_input_exits_2(trained_run, tmp_path, capsys, case, message):
    (tmp_path / "bad.png").write_bytes(b"this is not a png at all")
    image, run, out = trained_run / "scan.png", str(trained_run / "run"), tmp_path / "out.png"
    if case == "bad_image":
        image = tmp_path / "bad.png"
    elif case == "missing_image":
        image = tmp_path / "nothing.png"
    elif case == "not_png":
        out = tmp_path / "out.jpg"
    else:
        run = "no-such-run"
    assert main(["explain", "--run", run, "--image", str(image), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1
    assert not out.exists()
