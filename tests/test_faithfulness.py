"""Map agreement and the RISE faithfulness test: golden values, and Grad-CAM finding a planted signal."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from meddistill.data.tensors import to_tensor
from meddistill.explain import (
    blurred_copy,
    curve_area,
    faithfulness,
    map_resolution,
    mean_saliency_agreement,
    pearson,
    predict_proba,
    random_map,
    saliency,
    top_iou,
    top_mask,
)
from meddistill.models import create_model
from tests.planted import train_until

PATCH = 14  # 196 pixels: more than the map's top 20% (157 of 784), so that top set can lie wholly inside it


pytestmark = pytest.mark.usefixtures("one_thread")


def test_pearson_golden_values():
    a = np.array([[1.0, 2.0], [3.0, 4.0]])
    assert pearson(a, a) == pytest.approx(1.0)
    assert pearson(a, 2 * a + 5) == pytest.approx(1.0)
    assert pearson(a, -a) == pytest.approx(-1.0)
    # centred (-1, 0, 1) and (-1, 1, 0): covariance 1, norms sqrt(2) each -> 0.5
    assert pearson(np.array([1.0, 2.0, 3.0]), np.array([1.0, 3.0, 2.0])) == pytest.approx(0.5)
    assert pearson(a, np.full((2, 2), 7.0)) == 0.0
    assert pearson(np.zeros((2, 2)), np.zeros((2, 2))) == 0.0
    with pytest.raises(ValueError, match="same shape"):
        pearson(a, np.ones((3, 3)))


def test_top_iou_golden_values():
    a = np.linspace(1.0, 0.0, 10).reshape(2, 5)  # top 20% = pixels 0 and 1
    assert top_iou(a, a) == 1.0
    assert top_iou(a, a[:, ::-1][::-1]) == 0.0  # top set is pixels 8 and 9
    b = np.zeros(10)
    b[[1, 2]] = 1.0  # top set {1, 2}: intersection {1}, union {0, 1, 2}
    assert top_iou(a, b.reshape(2, 5)) == pytest.approx(1 / 3)
    assert top_mask(a, 0.2).sum() == 2 and top_mask(a, 0.01).sum() == 1
    assert top_iou(a, b.reshape(2, 5), fraction=0.5) == 1.0  # {0..4} vs {1, 2} + ties by position {0, 3, 4}


def test_random_map_and_curve_area():
    r = random_map((28, 28), seed=3)
    assert r.shape == (28, 28) and r.dtype == np.float32 and 0 <= r.min() and r.max() < 1
    np.testing.assert_array_equal(r, random_map((28, 28), seed=3))
    assert not np.array_equal(r, random_map((28, 28), seed=4))
    assert curve_area(np.array([0.0, 0.5, 1.0]), np.array([1.0, 0.5, 0.0])) == pytest.approx(0.5)
    assert curve_area(np.array([0.0, 0.25, 1.0]), np.array([1.0, 1.0, 0.0])) == pytest.approx(0.25 + 0.375)


class _SumNet(nn.Module):
    """logits = (0, sum of pixels): P(class 1) = sigmoid(sum)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = x.flatten(1).sum(1)
        return torch.stack([torch.zeros_like(total), total], 1)

    def parameters(self, recurse: bool = True):
        yield torch.zeros(1)


def test_rise_curves_golden():
    """Blocks of a 4x4 image on a 2x2 grid (upscaled to the minimum grid is not allowed here: grid <= side)."""
    from meddistill.explain.faithfulness import block_order, curves

    image = torch.arange(16.0).reshape(1, 4, 4)
    heat = np.zeros((4, 4))
    heat[2:, 2:] = 1.0  # block 3 first, then 0, 1, 2 (ties by position)
    order = block_order(heat, 2)
    assert order.tolist() == [3, 0, 1, 2]
    blurred = blurred_copy(image)
    fractions, deletion, insertion = curves(_SumNet(), image, order, 2, target=1, steps=4)
    np.testing.assert_allclose(fractions, [0, 0.25, 0.5, 0.75, 1.0])
    for k, blocks in enumerate([[], [3], [3, 0], [3, 0, 1], [3, 0, 1, 2]]):
        mask = np.isin(np.array([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]]), blocks)
        removed = torch.where(torch.from_numpy(mask), blurred[0], image[0]).sum().item()
        inserted = torch.where(torch.from_numpy(mask), image[0], blurred[0]).sum().item()
        assert deletion[k] == pytest.approx(1 / (1 + np.exp(-removed)), rel=1e-9)
        assert insertion[k] == pytest.approx(1 / (1 + np.exp(-inserted)), rel=1e-9)
    assert insertion[-1] == pytest.approx(deletion[0]) and deletion[-1] == pytest.approx(insertion[0])


def test_blurred_copy_keeps_the_mean_and_smooths():
    rng = np.random.default_rng(0)
    image = torch.from_numpy(rng.random((1, 28, 28), dtype=np.float32))
    blurred = blurred_copy(image)
    assert blurred.shape == image.shape
    assert abs(float(blurred.mean() - image.mean())) < 0.02
    assert float(blurred.std()) < 0.5 * float(image.std())  # noise is smoothed away


def _planted(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grey 28x28 noise (0-100) with a 14x14 patch at a random place: bright (200-255) for class 1,
    dim (110-150) for class 0, so a patch is always there and only its brightness decides the class."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 101, (n, 28, 28)).astype(np.uint8)
    labels = rng.integers(0, 2, n)
    corners = rng.integers(0, 28 - PATCH + 1, (n, 2))
    for i, (r, c) in enumerate(corners):
        low, high = (200, 256) if labels[i] else (110, 151)
        images[i, r : r + PATCH, c : c + PATCH] = rng.integers(low, high, (PATCH, PATCH))
    return images, labels, corners


@pytest.fixture(scope="module")
def planted():
    """tiny_cnn trained (seed 0) on 1000 planted-signal images to > 95% test accuracy, and 300 test images."""
    train_images, train_labels, _ = _planted(1000, seed=0)
    test_images, test_labels, corners = _planted(300, seed=1)
    x, y, test_x = to_tensor(train_images, 1, 28), torch.from_numpy(train_labels), to_tensor(test_images, 1, 28)
    torch.manual_seed(0)
    model = create_model("tiny_cnn", 2, 1, 28)
    accuracy = train_until(model, x, y, test_x, test_labels, epochs=8, batch=64)
    assert accuracy > 0.95, accuracy
    return model, test_x, test_labels, corners


def test_gradcam_finds_the_planted_patch_and_beats_same_smoothness_random_blocks(planted):
    model, test_x, labels, corners = planted
    inside, recall, near, control, area_cam, area_random = [], [], [], [], [], []
    for i in np.flatnonzero(labels == 1)[:50]:
        r, c = corners[i]
        patch = np.zeros((28, 28), bool)
        patch[r : r + PATCH, c : c + PATCH] = True
        ring = np.zeros((28, 28), bool)
        ring[max(0, r - 3) : r + PATCH + 3, max(0, c - 3) : c + PATCH + 3] = True
        cam, noise = saliency(model, test_x[i], target=1), random_map((28, 28), seed=int(i))
        top = top_mask(cam, 0.2)
        inside.append((top & patch).sum() / top.sum())
        recall.append((top & patch).sum() / patch.sum())
        near.append((top & ring).sum() / top.sum())
        control.append((top_mask(noise, 0.2) & patch).sum() / patch.sum())
        result = faithfulness(model, test_x[i], cam, target=1, grid=map_resolution(model, test_x[i]))
        area_cam.append((result.deletion_area, result.insertion_area))
        area_random.append((result.random_deletion_area, result.random_insertion_area))
    assert np.mean(inside) >= 0.6, np.mean(inside)  # the map's top 20% pixels fall mostly inside the patch
    assert np.mean(recall) >= 0.6, np.mean(recall)  # the patch lies in the map's top 20%
    assert np.mean(near) >= 0.6, np.mean(near)  # and the top 20% lies on the patch or within 3 px of it
    assert np.mean(control) < 0.35  # a random map does not pass the same bar
    print(
        f"inside {np.mean(inside):.3f}, recall {np.mean(recall):.3f}, near {np.mean(near):.3f}, random "
        f"{np.mean(control):.3f}"
    )
    cam_deletion, cam_insertion = np.mean(area_cam, axis=0)
    random_deletion, random_insertion = np.mean(area_random, axis=0)
    print(f"deletion {cam_deletion:.3f} vs random {random_deletion:.3f}; insertion {cam_insertion:.3f}")
    print(f"vs random {random_insertion:.3f}")
    assert cam_deletion < random_deletion  # removing what the map points at (the patch) drops the class first
    assert cam_insertion > random_insertion  # and putting it back restores it first


def test_faithfulness_starts_at_the_prediction_in_one_batch_per_order(planted):
    model, test_x, _, _ = planted
    calls = []
    handle = model.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    try:
        result = faithfulness(model, test_x[0], saliency(model, test_x[0]), steps=10, seeds=2)
    finally:
        handle.remove()
    assert calls[-4:] == [1, 22, 22, 22]  # the prediction, then deletion + insertion of the map and 2 random orders
    assert result.fractions.shape == result.deletion.shape == result.insertion.shape == (11,)
    assert result.deletion[0] == pytest.approx(predict_proba(model, test_x[0]).max(), abs=1e-5)
    assert result.grid >= 7 and not model.training
    assert "random map of " in result.sentence("Grad-CAM")
    with pytest.raises(ValueError, match="saliency_map must be"):
        faithfulness(model, test_x[0], np.zeros((3, 3)))


def test_mean_saliency_agreement(planted):
    model, test_x, _, _ = planted
    same = mean_saliency_agreement(model, model, test_x[:4])
    assert same == {"pearson": pytest.approx(1.0), "iou": pytest.approx(1.0)}
    torch.manual_seed(5)
    other = create_model("resnet_narrow", 2, 1, 28).eval()
    mixed = mean_saliency_agreement(model, other, test_x[:4], method="integrated_gradients")
    assert -1 <= mixed["pearson"] < 0.99 and 0 <= mixed["iou"] < 1
