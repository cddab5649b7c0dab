"""Several findings per image: the layouts recognised (built from the real ChestX-ray14 sample), the refusals, and
the loss and metrics checked by hand."""

from __future__ import annotations

import csv
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from meddistill.data import load_dataset
from meddistill.data.options import DataOptions
from meddistill.errors import DataError

DATA = Path(os.environ.get("MEDDISTILL_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
CXR14 = DATA / "cxr14_sample"
needs_cxr14 = pytest.mark.skipif(not (CXR14 / "Data_Entry_2017.csv").is_file(), reason="no ../shared/data/cxr14_sample")


def _rows(limit: int | None = None) -> list[dict]:
    with open(CXR14 / "Data_Entry_2017.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return rows[:limit] if limit else rows


def _copy_images(rows: list[dict], target: Path) -> None:
    (target / "images").mkdir(parents=True)
    for row in rows:
        shutil.copy(CXR14 / "images" / row["Image Index"], target / "images" / row["Image Index"])


@needs_cxr14
def test_the_nih_file_gives_fourteen_findings_never_a_combination():
    dataset = load_dataset(CXR14)
    assert dataset.task == "multi_label" and len(dataset.class_names) == 14
    assert not any("|" in name for name in dataset.class_names) and "No Finding" not in dataset.class_names
    provenance = dataset.provenance
    assert "findings joined by '|'" in provenance["findings"]["rule"]
    assert "splits from train_val_list.txt, test_list.txt" in provenance["layout"]
    sizes = {s: len(d) for s, d in dataset.splits.items()}
    assert sizes["test"] == 181 and sizes["train"] + sizes["val"] == 819  # the official lists, val made from train
    patients = {s: set(d.groups) for s, d in dataset.splits.items()}
    assert not patients["train"] & patients["val"]  # val is made patient by patient
    labels = dataset.splits["test"].labels
    names = [
        row["Finding Labels"] for row in _rows() if row["Image Index"] in {p.name for p in dataset.splits["test"].paths}
    ]
    assert labels.shape == (181, 14) and int(labels.sum()) == sum(len(v.split("|")) for v in names if v != "No Finding")


@needs_cxr14
def test_splits_by_patient_with_rare_findings_in_every_split(tmp_path):
    """Without split lists, val and test are made patient by patient, findings stratified."""
    rows = _rows()
    _copy_images(rows, tmp_path / "cxr")
    with open(tmp_path / "cxr" / "labels.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, ["Image Index", "Finding Labels", "Patient ID"])
        writer.writeheader()
        writer.writerows({k: r[k] for k in ("Image Index", "Finding Labels", "Patient ID")} for r in rows)
    dataset = load_dataset(tmp_path / "cxr")
    patients = [set(d.groups) for d in dataset.splits.values()]
    assert not (patients[0] & patients[1] or patients[0] & patients[2] or patients[1] & patients[2])
    assert "iterative stratification" in dataset.provenance["splits"]["method"]
    test = dataset.counts()["test"]
    common = [k for k, n in enumerate(dataset.counts()["train"]) if n >= 30]
    assert all(test[k] > 0 for k in common)  # every finding with 30+ train images reaches test


@needs_cxr14
@pytest.mark.parametrize("policy,expected", [("ignore", math.nan), ("positive", 1.0), ("negative", 0.0)])
def test_one_column_per_finding_with_uncertain_labels(tmp_path, policy, expected):
    """CheXpert's encoding on real images: 1 positive, 0 negative, blank not mentioned (absent), -1 uncertain."""
    rows = _rows(60)
    _copy_images(rows, tmp_path / "chexpert")
    findings = ["Effusion", "Atelectasis", "Cardiomegaly"]
    with open(tmp_path / "chexpert" / "train.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Path", "Sex", "Age", *findings])
        for i, row in enumerate(rows):
            present = row["Finding Labels"].split("|")
            cells = [
                "1.0" if f in present else ("-1.0" if i % 7 == k else ("" if i % 3 else "0.0"))
                for k, f in enumerate(findings)
            ]
            writer.writerow([f"images/{row['Image Index']}", "F", "50", *cells])
    dataset = load_dataset(tmp_path / "chexpert", options=DataOptions(uncertain=policy))
    record = dataset.provenance["findings"]
    assert dataset.class_names == findings and record["rule"] == "one column per finding"
    assert record["uncertain"] == policy and f"uncertain (read as {policy})" in record["counts"]["Effusion"]
    labels = np.concatenate([d.labels for d in dataset.splits.values()])
    uncertain = labels[:, 0][np.isnan(labels[:, 0])] if policy == "ignore" else None
    assert (uncertain is not None and len(uncertain) > 0) if policy == "ignore" else not np.isnan(labels).any()
    names = {p.name: i for i, p in enumerate(sum((d.paths for d in dataset.splits.values()), []))}
    row7 = rows[7]  # i % 7 == 0 for Effusion: uncertain unless present
    if "Effusion" not in row7["Finding Labels"]:
        value = labels[names[row7["Image Index"]], 0]
        assert (math.isnan(value) and math.isnan(expected)) or value == expected


def test_joined_values_whose_parts_never_stand_alone_are_refused(tmp_path):
    from PIL import Image

    folder = tmp_path / "scans"
    folder.mkdir()
    with open(folder / "labels.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "label"])
        for i in range(12):
            Image.fromarray(np.full((16, 16), i * 10, np.uint8)).save(folder / f"{i}.png")
            writer.writerow([f"{i}.png", "T1;post" if i % 2 else "T2;pre"])
    with pytest.raises(DataError, match=r"labels.csv's column 'label' .*--multi-label .*--single-label"):
        load_dataset(folder)
    single = load_dataset(folder, options=DataOptions(multi_label=False))
    assert single.task == "single_label" and single.class_names == ["T1;post", "T2;pre"]
    multi = load_dataset(folder, options=DataOptions(multi_label=True))
    assert multi.task == "multi_label" and multi.class_names == ["T1", "T2", "post", "pre"]


def test_class_folders_beside_a_multi_label_csv_are_refused(tmp_path):
    from PIL import Image

    for cls in ("normal", "abnormal"):
        (tmp_path / "xr" / cls).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(np.full((16, 16), i * 30, np.uint8)).save(tmp_path / "xr" / cls / f"{cls}{i}.png")
    with open(tmp_path / "xr" / "findings.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "label"])
        writer.writerows([["normal0.png", "No Finding"], ["abnormal0.png", "Effusion|Mass"], ["abnormal1.png", "Mass"]])
    with pytest.raises(DataError, match=r"findings.csv, which lists several findings .*--single-label"):
        load_dataset(tmp_path / "xr")
    assert load_dataset(tmp_path / "xr", options=DataOptions(multi_label=False)).class_names == ["abnormal", "normal"]


def test_an_n_by_k_npz_is_read_as_findings_and_a_wrong_one_refused(tmp_path):
    rng = np.random.default_rng(0)

    def split(n):
        return rng.integers(0, 255, (n, 28, 28), dtype=np.uint8), (rng.random((n, 14)) < 0.3).astype(np.uint8)

    (tr, trl), (te, tel) = split(120), split(40)
    np.savez(tmp_path / "chestmnist.npz", train_images=tr, train_labels=trl, test_images=te, test_labels=tel)
    dataset = load_dataset(tmp_path / "chestmnist.npz")
    assert dataset.task == "multi_label" and dataset.class_names[:2] == ["atelectasis", "cardiomegaly"]
    assert dataset.splits["val"].labels.shape[1] == 14  # val made from train, findings stratified
    np.savez(tmp_path / "bad.npz", train_images=tr, train_labels=trl * 2, test_images=te, test_labels=tel)
    with pytest.raises(DataError, match="bad.npz: train_labels .* zeros and ones"):
        load_dataset(tmp_path / "bad.npz")


def test_label_loss_and_bernoulli_kd_by_hand():
    """Binary cross-entropy per finding over the counted labels, and T^2 times the Bernoulli KL, computed by hand."""
    from meddistill.distillation.base import bernoulli_kd, kd_loss, label_loss

    s = torch.tensor([[0.5, -1.0], [2.0, 0.0]])
    t = torch.tensor([[1.0, -2.0], [0.0, 1.0]])
    y = torch.tensor([[1.0, 0.0], [float("nan"), 1.0]])

    def sig(x):
        return 1 / (1 + math.exp(-x))

    counted = [(0.5, 1), (-1.0, 0), (0.0, 1)]
    bce = sum(-(c * math.log(sig(z)) + (1 - c) * math.log(1 - sig(z))) for z, c in counted) / 3
    assert label_loss(s, y).item() == pytest.approx(bce, rel=1e-6)
    temperature = 2.0
    kl = 0.0
    for zs, zt in zip(s.flatten().tolist(), t.flatten().tolist()):
        p, q = sig(zt / temperature), sig(zs / temperature)
        kl += p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))
    soft = temperature**2 * kl / 4
    assert bernoulli_kd(s, t, temperature).item() == pytest.approx(soft, rel=1e-6)
    assert kd_loss(s, t, y, temperature, 0.25).item() == pytest.approx(0.25 * soft + 0.75 * bce, rel=1e-6)
    assert bernoulli_kd(t, t, temperature).item() == pytest.approx(0.0, abs=1e-7)  # the teacher itself: no loss


def test_findings_metrics_by_hand():
    from meddistill.tasks import task_for

    labels = np.array([[1, 0], [0, 1], [1, np.nan], [0, 0]], dtype=np.float32)
    probs = np.array([[0.9, 0.2], [0.3, 0.8], [0.6, 0.9], [0.4, 0.1]])
    metrics = task_for("multi_label").metrics(labels, probs, ["A", "B"], val=(labels, probs))
    a, b = metrics.findings
    assert a["auc"] == 1.0 and b["auc"] == 1.0 and metrics.auc == 1.0  # both ranked perfectly
    assert a["prevalence"] == 0.5 and b["positives"] == 1 and b["prevalence"] == pytest.approx(1 / 3)
    assert a["sensitivity"] == 1.0 and a["specificity"] == 1.0  # the val threshold separates them
    loss, acc, auc, balanced = task_for("multi_label").val_scores(labels, probs)
    pairs = [(1, 0.9), (0, 0.2), (0, 0.3), (1, 0.8), (1, 0.6), (0, 0.4), (0, 0.1)]  # the 7 counted labels
    by_hand = -sum(math.log(p) if y else math.log(1 - p) for y, p in pairs) / 7
    assert auc == 1.0 and acc == 1.0 and balanced == 1.0 and loss == pytest.approx(by_hand, rel=1e-6)


PATCH = 8


def _two_findings(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grey 28x28 noise with two possible findings: A, a bright 8x8 patch somewhere in the left half; B, one in the
    right half; each present or not on its own. Returns images, (N, 2) labels and the patches' corners (N, 2, 2)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 101, (n, 28, 28)).astype(np.uint8)
    labels = (rng.random((n, 2)) < 0.5).astype(np.float32)
    corners = np.stack([rng.integers(0, 28 - PATCH + 1, n), rng.integers(0, 14 - PATCH + 1, n)], 1)[:, None].repeat(
        2, 1
    )
    corners[:, 1, 1] += 14  # B's patch lies in the right half
    for i in range(n):
        for k in range(2):
            r, c = corners[i, k]
            low, high = (200, 256) if labels[i, k] else (110, 151)  # a dim patch where the finding is absent
            images[i, r : r + PATCH, c : c + PATCH] = rng.integers(low, high, (PATCH, PATCH))
    return images, labels, corners


def test_gradcam_of_a_finding_points_at_the_region_that_decides_it():
    from meddistill.data.tensors import to_tensor
    from meddistill.distillation.base import label_loss
    from meddistill.explain.methods import saliency
    from meddistill.models import create_model

    train_images, train_labels, _ = _two_findings(1200, seed=0)
    test_images, test_labels, corners = _two_findings(200, seed=1)
    x, y, test_x = to_tensor(train_images, 1, 28), torch.from_numpy(train_labels), to_tensor(test_images, 1, 28)
    torch.manual_seed(0)
    model = create_model("tiny_cnn", 2, 1, 28)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    order = torch.Generator().manual_seed(0)
    for _ in range(10):
        model.train()
        for index in torch.randperm(len(x), generator=order).split(64):
            loss = label_loss(model(x[index]), y[index])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        model.eval()
        with torch.no_grad():
            accuracy = float(((torch.sigmoid(model(test_x)) >= 0.5).numpy() == test_labels).mean())
        if accuracy > 0.97:
            break
    assert accuracy > 0.95, accuracy
    own, other = [], []
    for i in np.flatnonzero(test_labels.all(1))[:40]:  # both findings present: the map must pick the asked one
        for k in range(2):
            masks = []
            for j in range(2):
                r, c = corners[i, j]
                mask = np.zeros((28, 28), bool)
                mask[max(0, r - 2) : r + PATCH + 2, max(0, c - 2) : c + PATCH + 2] = True
                masks.append(mask)
            cam = saliency(model, test_x[i], target=k)
            top = cam >= np.quantile(cam, 0.9)
            own.append((top & masks[k]).sum() / top.sum())
            other.append((top & masks[1 - k]).sum() / top.sum())
    assert np.mean(own) >= 0.6, (np.mean(own), np.mean(other))  # the top 10% lies on the asked finding's patch
    assert np.mean(other) <= 0.25, (np.mean(own), np.mean(other))  # and not on the other finding's


def test_methods_for_one_class_per_image_are_refused_for_findings():
    from meddistill import RunConfig
    from meddistill.errors import MedDistillError
    from meddistill.pipeline.building import check_method

    check_method(RunConfig.from_preset("smoke", data="x", method="kd"), "multi_label")
    check_method(RunConfig.from_preset("smoke", data="x", method="auto"), "multi_label")
    with pytest.raises(
        MedDistillError,
        match=r"--method dkd needs one class per image.*use one of: attention, fitnet, kd, kd_ka, or auto",
    ):
        check_method(RunConfig.from_preset("smoke", data="x", method="dkd"), "multi_label")
    check_method(RunConfig.from_preset("smoke", data="x", method="dkd"), "single_label")  # fine for one class


@pytest.mark.parametrize("name", ["kd", "attention", "fitnet"])
def test_every_method_for_findings_gives_a_finite_loss_with_uncertain_labels(name):
    from meddistill import RunConfig
    from meddistill.distillation.base import methods_for
    from meddistill.models import create_model
    from meddistill.pipeline.building import build_method

    assert name in methods_for("multi_label") and "dkd" not in methods_for("multi_label")
    student, teacher = create_model("tiny_cnn", 3, 1, 28), create_model("resnet_narrow", 3, 1, 28)
    method = build_method(RunConfig(method=name), student, teacher, 1, 28)
    logits = torch.randn(4, 3, requires_grad=True)
    labels = torch.tensor([[1.0, 0.0, float("nan")], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0], [float("nan")] * 3])
    features = torch.randn(4, 96, 4, 4), torch.randn(4, 128, 4, 4)
    loss = method(logits, torch.randn(4, 3), labels, *features)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()


@pytest.fixture(scope="module")
def findings_run(tmp_path_factory):
    """A smoke run (seconds) on the real ChestX-ray14 sample: 14 findings, official split lists."""
    if not (CXR14 / "Data_Entry_2017.csv").is_file():
        pytest.skip("no ../shared/data/cxr14_sample")
    from meddistill.cli.main import main

    home = tmp_path_factory.mktemp("findings-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MEDDISTILL_HOME", str(home))
        out = home / "run"
        assert main(["run", "--data", str(CXR14), "--preset", "smoke", "--threads", "1", "--out", str(out)]) == 0
    return out


@pytest.mark.slow
def test_a_findings_run_reports_every_finding_and_exports_sigmoid_outputs(findings_run, capsys, monkeypatch):
    import json

    from meddistill.cli.main import main
    from meddistill.reports.export import export_run
    from meddistill.reports.tables import findings_rows, report_csv
    from meddistill.store.layout import RunFolder

    report = RunFolder(findings_run).report()
    assert report.task == "multi_label"
    test = report.models["student_kd"].test
    present = [n for n, c in zip(report.dataset["classes"], report.dataset["counts"]["test"]) if c > 0]
    assert {f["name"] for f in test.findings if np.isfinite(f["auc"])} == set(present)  # every finding in test
    assert all(f["auc_ci"][0] <= f["auc"] <= f["auc_ci"][1] for f in test.findings if np.isfinite(f["auc"]))
    assert report.verdict["distillation"].resampled == "patients" and "macro AUC" in report.teacher_check.sentence
    assert len(findings_rows(report)) == 14 and "finding" in report_csv(report).splitlines()[0]
    saved = json.loads((findings_run / "report.json").read_text())
    assert saved["models"]["teacher"]["test"]["findings"][0]["name"] == "Atelectasis"
    monkeypatch.setenv("MEDDISTILL_HOME", str(findings_run.parent))
    assert main(["show", str(findings_run)]) == 0
    shown = capsys.readouterr().out
    assert "Effusion" in shown and "not the headline" in shown
    for fmt in ("onnx", "onnx-int8"):
        result = export_run(findings_run, fmt)
        assert result["agreement"] >= (0.999 if fmt == "onnx" else 0.95), result  # calls per finding at 0.5
        assert result["max_abs_prob_diff"] < (1e-4 if fmt == "onnx" else 0.2), result
