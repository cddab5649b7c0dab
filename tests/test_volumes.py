"""Volumes: MedMNIST 3D files read as volumes, 3D models, 3D Grad-CAM finding a planted sub-cube, and the planes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from meddistill.data import load_dataset
from meddistill.data.summary import describe
from meddistill.data.tensors import augment, volume_tensor
from meddistill.data.volumes import VolumeDataset
from meddistill.errors import DataError
from meddistill.explain import faithfulness, map_resolution, saliency
from meddistill.explain.planes import PLANES, map_on_volume, peak, plane, plane_views, window
from meddistill.models import available_models, create_model, model_info
from meddistill.settings.config import RunConfig
from tests.conftest import npz_slice
from tests.planted import train_until

pytestmark = pytest.mark.usefixtures("one_thread")


def test_medmnist_3d_file_is_read_as_volumes_with_its_classes(adrenal_npz):
    dataset = load_dataset(adrenal_npz)
    assert isinstance(dataset, VolumeDataset) and dataset.spatial_dims == 3
    assert dataset.class_names == ["normal", "hyperplasia"]
    assert {s: len(d) for s, d in dataset.splits.items()} == {"train": 1188, "val": 98, "test": 298}
    assert dataset.splits["train"].image(0).shape == (28, 28, 28) and dataset.channels == 1
    assert dataset.image_size == 28 and dataset.counts()["test"] == [229, 69]
    lines = describe({**dataset.summary(), "train_image_size": 16})
    assert any(line.startswith("volumes (3D): 28 x 28 x 28 voxels") for line in lines)
    assert "resampled to 16 x 16 x 16 voxels for the models (trilinear)" in lines
    subset = dataset.splits["val"].subset(np.arange(5))
    assert subset.spatial_dims == 3 and subset.image(0).shape == (28, 28, 28)


def test_volumes_by_shape_and_bad_shapes_refused(adrenal_npz, tmp_path):
    with np.load(adrenal_npz) as archive:
        arrays = {k: archive[k][:40] for k in archive.files}
    plain = tmp_path / "scans.npz"  # no MedMNIST name: recognised by its (N, D, H, W) shape
    np.savez(plain, **arrays)
    dataset = load_dataset(plain)
    assert dataset.spatial_dims == 3 and dataset.class_names == ["class 0", "class 1"]
    squeezed = tmp_path / "channel.npz"  # (N, D, H, W, 1)
    np.savez(squeezed, **{k: (v[..., None] if k.endswith("images") else v) for k, v in arrays.items()})
    assert load_dataset(squeezed).splits["test"].image(0).shape == (28, 28, 28)
    flat = tmp_path / "adrenalmnist3d.npz"  # the 3D set's name with 2D images
    np.savez(flat, **{k: (v[:, 0] if k.endswith("images") else v) for k, v in arrays.items()})
    with pytest.raises(DataError, match=r"adrenalmnist3d.npz: train_images has shape \(40, 28, 28\); expected"):
        load_dataset(flat)


def test_volume_tensor_resamples_to_the_cube_and_augment_keeps_shape():
    volumes = np.random.default_rng(0).integers(0, 256, (3, 20, 24, 28), dtype=np.uint8)
    x = volume_tensor(volumes, 1, 16)
    assert x.shape == (3, 1, 16, 16, 16) and -1.0 <= float(x.min()) and float(x.max()) <= 1.0
    exact = volume_tensor(np.full((1, 8, 8, 8), 255, np.uint8), 1, 8)
    assert torch.allclose(exact, torch.ones_like(exact))
    out = augment(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and not torch.equal(out, x)


def test_3d_models_registered_and_smaller_student():
    assert available_models("teacher", 3) == ["resnet10_3d", "resnet18_3d"]
    assert available_models("student", 3) == ["tiny_cnn_3d"] and "tiny_cnn_3d" not in available_models("student", 2)
    teacher, student = create_model("resnet10_3d", 2, 1, 28), create_model("tiny_cnn_3d", 2, 1, 28)
    assert teacher(torch.zeros(2, 1, 28, 28, 28)).shape == (2, 2) and student.spatial_dims == 3
    big, small = model_info(teacher, 1, 28), model_info(student, 1, 28)
    assert big.flops > 20 * small.flops, (big.flops, small.flops)


def test_a_2d_model_named_for_volumes_is_refused():
    config = RunConfig.from_preset("cpu", data="x.npz", teacher="resnet18")
    with pytest.raises(ValueError, match="--teacher resnet18 does not take volumes.*resnet10_3d, resnet18_3d"):
        config.for_data(28, spatial_dims=3)
    adapted = RunConfig.from_preset("cpu", data="x.npz").for_data(64, spatial_dims=3)
    assert (adapted.teacher, adapted.student, adapted.resolved_image_size(64)) == ("resnet10_3d", "tiny_cnn_3d", 28)
    typed = RunConfig.from_preset("cpu", data="x.npz", image_size=64).for_data(64, spatial_dims=3)
    assert typed.resolved_image_size(64) == 64  # what the user typed runs
    with pytest.raises(ValueError, match="--student tiny_cnn_3d does not take 2D images"):
        RunConfig.from_preset("cpu", data="x.npz", student="tiny_cnn_3d").for_data(28)


SIDE, CUBE = 28, 10  # volumes of 28^3 with a 10^3 cube somewhere in them


def _planted_volumes(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grey noise volumes (0-100) with a 10^3 cube at a random place: bright (200-255) for class 1, dim (110-150)
    for class 0, so a cube is always there and only its brightness decides the class (as the 2D test's patch)."""
    rng = np.random.default_rng(seed)
    volumes = rng.integers(0, 101, (n, SIDE, SIDE, SIDE)).astype(np.uint8)
    labels = rng.integers(0, 2, n)
    corners = rng.integers(0, SIDE - CUBE + 1, (n, 3))
    for i, (d, h, w) in enumerate(corners):
        low, high = (200, 256) if labels[i] else (110, 151)
        volumes[i, d : d + CUBE, h : h + CUBE, w : w + CUBE] = rng.integers(low, high, (CUBE,) * 3)
    return volumes, labels, corners


@pytest.fixture(scope="module")
def planted_3d():
    """tiny_cnn_3d trained (seed 0) on 600 planted volumes to > 95% test accuracy, and 100 test volumes."""
    train, labels, _ = _planted_volumes(600, seed=0)
    test, test_labels, corners = _planted_volumes(100, seed=1)
    x, y, test_x = volume_tensor(train, 1, SIDE), torch.from_numpy(labels), volume_tensor(test, 1, SIDE)
    torch.manual_seed(0)
    model = create_model("tiny_cnn_3d", 2, 1, SIDE)
    accuracy = train_until(model, x, y, test_x, test_labels, epochs=15, batch=32)
    assert accuracy > 0.95, accuracy
    return model, test_x, test_labels, corners


def test_3d_gradcam_peaks_in_the_deciding_sub_cube(planted_3d):
    model, test_x, labels, corners = planted_3d
    inside, contrast = [], []
    for i in np.flatnonzero(labels == 1)[:20]:
        heat = saliency(model, test_x[i], target=1, method="gradcam")
        assert heat.shape == (SIDE, SIDE, SIDE) and 0.0 <= heat.min() and heat.max() == pytest.approx(1.0)
        cube = np.zeros(heat.shape, bool)
        cube[tuple(slice(c, c + CUBE) for c in corners[i])] = True
        # within half a cell of the 4^3 Grad-CAM grid (7 voxels a cell at 28^3)
        inside.append(all(c - 3 <= v < c + CUBE + 3 for v, c in zip(peak(heat), corners[i])))
        contrast.append(heat[cube].mean() / max(heat[~cube].mean(), 1e-6))
    assert np.mean(inside) >= 0.8, inside  # the peak lies in the cube
    assert np.median(contrast) > 2.0, contrast  # and the map is brighter on the cube than off it (random: 1)
    i = int(np.flatnonzero(labels == 1)[0])
    occlusion = saliency(model, test_x[i], target=1, method="occlusion")
    assert occlusion.shape == (SIDE,) * 3
    assert all(c - 4 <= v < c + CUBE + 4 for v, c in zip(peak(occlusion), corners[i]))


def test_3d_faithfulness_runs_on_cubes(planted_3d):
    model, test_x, labels, _ = planted_3d
    x = test_x[int(np.flatnonzero(labels == 1)[0])]
    heat = saliency(model, x, target=1)
    result = faithfulness(model, x, heat, target=1, grid=map_resolution(model, x))
    assert result.spatial_dims == 3 and result.deletion_area < result.random_deletion_area
    assert "of 7x7x7 blocks" in result.sentence("The map")


def test_planes_slice_window_and_overlay():
    volume = np.arange(4 * 5 * 6, dtype=np.uint8).reshape(4, 5, 6)
    assert plane(volume, "axial", 2).shape == (5, 6) and plane(volume, "coronal", 1).shape == (4, 6)
    assert plane(volume, "sagittal", 9).shape == (4, 5)  # clamped to the last slice
    np.testing.assert_array_equal(plane(volume, "coronal", 0)[0], volume[3, 0])  # superior side up
    assert window(np.array([[0, 100, 200]], np.uint8), 100, 100).tolist() == [[0, 128, 255]]
    heat = np.zeros((2, 2, 2), np.float32)
    heat[1, 0, 1] = 1.0
    on_volume = map_on_volume(heat, volume.shape)
    assert on_volume.shape == volume.shape and peak(on_volume)[0] >= 2
    views = plane_views(volume, {"teacher": on_volume, "student": on_volume}, "axial", 3)
    assert views["scan"].shape == (5, 6) and views["teacher"].shape == (5, 6, 3)
    assert PLANES == ("axial", "coronal", "sagittal")


def _write_nifti(path, volume: np.ndarray, orientation: str = "RAS") -> None:
    """Write a (D, H, W) volume as NIfTI: RAS (axes x=W, y=H, z=D), or LPS with x and y reversed, or with the
    axes stored in the order (z, y, x) ('SAR'): the same anatomy, stored another way."""
    import nibabel

    data = volume.transpose(2, 1, 0).astype(np.int16)  # (x, y, z)
    affine = np.diag([1.5, 1.5, 2.0, 1.0])
    if orientation == "LPS":
        data = data[::-1, ::-1, :]
        affine = np.diag([-1.5, -1.5, 2.0, 1.0])
        affine[:3, 3] = [1.5 * (data.shape[0] - 1), 1.5 * (data.shape[1] - 1), 0]
    elif orientation == "SAR":
        data = data.transpose(2, 1, 0)
        affine = np.array([[0, 0, 1.5, 0], [0, 1.5, 0, 0], [2.0, 0, 0, 0], [0, 0, 0, 1]], dtype=float)
    nibabel.save(nibabel.Nifti1Image(np.ascontiguousarray(data), affine), str(path))


def test_nifti_class_folders_under_split_folders_any_orientation(adrenal_arrays, tmp_path):
    from meddistill.data.volumes import decode_nifti

    root = tmp_path / "adrenal_nifti"
    for split, (volumes, labels) in adrenal_arrays.items():
        for i, (volume, label) in enumerate(zip(volumes, labels)):
            folder = root / split / ["normal", "hyperplasia"][label]
            folder.mkdir(parents=True, exist_ok=True)
            orientation = ("RAS", "LPS", "SAR")[i % 3]
            _write_nifti(folder / f"case{i:03d}.nii{'.gz' if i % 2 else ''}", volume, orientation)
    dataset = load_dataset(root)
    assert isinstance(dataset, VolumeDataset) and dataset.provenance["kind"] == "nifti-folder"
    assert dataset.class_names == ["hyperplasia", "normal"] and dataset.image_size == 28
    record = dataset.provenance["volumes"]
    assert record["spacing_mm"] == [2.0, 1.5, 1.5] and record["shape"] == [28, 28, 28]
    assert record["orientation"].startswith("RAS (canonical")
    # every file, whatever its stored orientation, reads back as the same (D, H, W) anatomy
    volumes, _ = adrenal_arrays["test"]
    for path in dataset.splits["test"].paths:
        i = int(path.name[4:7])
        reference = tmp_path / f"ref{i}.nii"
        _write_nifti(reference, volumes[i], "RAS")
        np.testing.assert_array_equal(decode_nifti(path), decode_nifti(reference))
    expected = decode_nifti(reference)
    assert np.corrcoef(expected.ravel().astype(float), volumes[i].ravel().astype(float))[0, 1] > 0.99
    assert any(
        "volumes (3D): 28 x 28 x 28 voxels (D x H x W), 2 x 1.5 x 1.5 mm" in line
        for line in describe(dataset.summary())
    )


def test_nifti_with_a_labels_csv_and_mixed_folders_refused(adrenal_arrays, tmp_path):
    root = tmp_path / "csv_layout"
    (root / "volumes").mkdir(parents=True)
    rows = ["scan,diagnosis"]
    volumes, labels = adrenal_arrays["train"]
    for i, (volume, label) in enumerate(zip(volumes, labels)):
        _write_nifti(root / "volumes" / f"scan_{i:02d}.nii.gz", volume, "LPS" if i % 2 else "RAS")
        rows.append(f"scan_{i:02d},{['normal', 'hyperplasia'][label]}")  # named without .nii.gz
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    dataset = load_dataset(root)
    assert dataset.spatial_dims == 3 and dataset.provenance["kind"] == "nifti-csv"
    assert sum(len(d) for d in dataset.splits.values()) == 12
    assert dataset.splits["train"].image(0).shape == (28, 28, 28)
    mixed = tmp_path / "mixed"
    for name in ("a", "b"):
        (mixed / name).mkdir(parents=True)
        _write_nifti(mixed / name / "v.nii", volumes[0])
        from PIL import Image

        Image.fromarray(volumes[0][14]).save(mixed / name / "slice.png")
    with pytest.raises(DataError, match="a dataset holds volumes or images, not both"):
        load_dataset(mixed)


@pytest.fixture(scope="module")
def small_adrenal_npz(adrenal_npz, tmp_path_factory):
    """A real slice of AdrenalMNIST3D: 240 train, 60 val, 80 test volumes."""
    return npz_slice(adrenal_npz, {"train": 240, "val": 60, "test": 80}, tmp_path_factory.mktemp("slice3d"))


@pytest.mark.slow
def test_a_3d_run_end_to_end_resume_export_and_card(small_adrenal_npz, tmp_path, monkeypatch, capsys):
    """A smoke run of volumes (attention transfer over 3D feature maps): the report has the three models with ONNX
    Runtime latency and the verdicts; the teacher's logits are reused on resume; ONNX and int8 exports pass their
    parity checks; the model card shows a slice per example case."""
    import json

    import meddistill.pipeline.building as building
    from meddistill import RunFolder, execute
    from meddistill.cli.main import main
    from meddistill.reports import export_run

    monkeypatch.setenv("MEDDISTILL_HOME", str(tmp_path / "home"))
    out = tmp_path / "run"
    args = ["run", "--data", str(small_adrenal_npz), "--preset", "smoke", "--method", "attention", "--out", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "train volumes at 16^3 voxels" in printed and "resamples them to 16^3" in printed
    report = json.loads((out / "report.json").read_text())
    assert report["dataset"]["spatial_dims"] == 3 and report["dataset"]["volumes"]["shape"] == [28, 28, 28]
    for role, arch in (("teacher", "resnet10_3d"), ("student_scratch", "tiny_cnn_3d"), ("student_kd", "tiny_cnn_3d")):
        entry = report["models"][role]
        assert entry["arch"] == arch and entry["onnx_latency_ms_b1"] > 0 and 0 <= entry["test"]["auc"] <= 1
    assert report["verdict"]["distillation"]["sentence"] and report["teacher_check"]["sentence"]
    RunFolder(out).weights("student_kd").unlink()  # as if the run stopped before the distilled student
    for name in ("student_kd.last.safetensors", "student_kd.state.json"):
        (out / "checkpoints" / name).unlink()
    monkeypatch.setattr(building, "teacher_logits", lambda *a, **k: pytest.fail("teacher logits computed again"))
    execute(RunFolder(out).config(), out)
    assert RunFolder(out).has_weights("student_kd")
    for fmt, limit in (("onnx", 1e-4), ("onnx-int8", 0.1), ("torchscript", 1e-4)):
        result = export_run(out, fmt)
        assert result["max_abs_prob_diff"] < limit and result["agreement"] >= 0.9, (fmt, result)
    with pytest.raises(Exception, match="the offline page reads 2D scans"):
        export_run(out, "web")
    with np.load(small_adrenal_npz) as source:
        _write_nifti(tmp_path / "case.nii.gz", source["test_images"][0])
    png = tmp_path / "case_cam.png"
    assert main(["explain", "--run", str(out), "--image", str(tmp_path / "case.nii.gz"), "--out", str(png)]) == 0
    assert png.is_file() and np.load(png.with_suffix(".npy")).shape == (16, 16, 16)
    assert main(["explain", "--run", str(out), "--image", str(png), "--out", str(tmp_path / "x.png")]) == 2
    assert "give a NIfTI volume" in capsys.readouterr().err
    assert main(["card", str(out), "--out", str(tmp_path / "card.html")]) == 0
    card = (tmp_path / "card.html").read_text()
    assert "(axial slice " in card and card.count("data:image/png;base64") >= 6


def test_a_zip_of_nifti_class_folders_uploads(adrenal_arrays, tmp_path, monkeypatch):
    import io
    import zipfile

    from meddistill.data.uploads import store_upload

    monkeypatch.setenv("MEDDISTILL_HOME", str(tmp_path / "home"))
    source = tmp_path / "src"
    volumes, _ = adrenal_arrays["train"]
    for i, volume in enumerate(volumes):
        (source / ["normal", "hyperplasia"][i % 2]).mkdir(parents=True, exist_ok=True)
        _write_nifti(source / ["normal", "hyperplasia"][i % 2] / f"v{i}.nii.gz", volume)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(source.rglob("*.nii.gz")):
            archive.write(path, path.relative_to(source))
    stored = store_upload(buffer.getvalue(), "adrenal.zip")
    dataset = load_dataset(stored)
    assert dataset.spatial_dims == 3 and sum(len(d) for d in dataset.splits.values()) == 12
