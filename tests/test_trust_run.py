"""The trust section on real files: a collection with leaked test copies (the leak-free figures cover exactly the
clean test images), subgroup columns read from a labels CSV (a small group pooled), the calibrated ONNX export's
parity, and the refusals of bad trust settings."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest

from meddistill.cli.main import main
from meddistill.data.loader import load_dataset
from meddistill.data.options import DataOptions
from meddistill.errors import DataError
from meddistill.evaluation.metrics import auc_score
from meddistill.evaluation.trust import assess
from meddistill.pipeline.trust import data_inputs
from meddistill.store.layout import CLEAN_KEY, RunFolder, predictions_key


@pytest.fixture(scope="module")
def leaked_run(chest_folder, tmp_path_factory) -> Path:
    """Real chest X-rays in train/ val/ test/ class folders; 4 train images per class also copied into test."""
    root = tmp_path_factory.mktemp("leaked") / "xrays"
    for split, count in (("train", 14), ("val", 5), ("test", 6)):
        source = "train" if split != "test" else "test"
        for cls in ("NORMAL", "PNEUMONIA"):
            files = sorted((chest_folder / source / cls).glob("*.jpeg"))
            files = files[20 : 20 + count] if split == "val" else files[:count]
            (root / split / cls).mkdir(parents=True)
            for f in files:
                shutil.copy(f, root / split / cls / f.name)
    for cls in ("NORMAL", "PNEUMONIA"):
        for f in sorted((root / "train" / cls).glob("*.jpeg"))[:4]:
            shutil.copy(f, root / "test" / cls / f"zz-copy-{f.name}")
    out = root.parent / "run"
    args = ["run", "--data", str(root), "--preset", "smoke", "--threads", "1", "--out", str(out)]
    assert main([*args, "--target-sensitivity", "0.9"]) == 0
    return out


@pytest.mark.slow
def test_leak_free_figures_cover_exactly_the_clean_test_images(leaked_run, capsys):
    folder = RunFolder(leaked_run)
    report, dataset = folder.report(), folder.dataset()
    test = dataset.splits["test"]
    copies = [i for i, p in enumerate(test.paths) if p.name.startswith("zz-copy-")]
    assert dataset.provenance["leakage"]["leaked_test"] == copies and len(copies) == 8
    saved = folder.predictions()
    assert (~saved[CLEAN_KEY]).sum() == 8
    clean = np.flatnonzero(saved[CLEAN_KEY])
    for role, model in report.trust.models.items():
        leak = model.leak_free
        assert (leak["n"], leak["n_clean"], leak["clean"]["n"]) == (20, 12, 12)
        probs = saved[predictions_key(role)]
        from meddistill.evaluation.calibration import apply_temperature

        calibrated = apply_temperature(probs, model.temperature, "softmax")
        labels = saved["labels"]
        assert leak["clean"]["acc"] == pytest.approx((calibrated[clean].argmax(1) == labels[clean]).mean())
        assert leak["full"]["acc"] == pytest.approx((calibrated.argmax(1) == labels).mean())
        assert leak["clean"]["auc"] == pytest.approx(auc_score(labels[clean], calibrated[clean]))
    differ = [
        m.leak_free["clean"][k] != m.leak_free["full"][k] for m in report.trust.models.values() for k in ("acc", "auc")
    ]
    assert any(differ)
    assert any("8 of 20 test images copy a train or val image" in s for s in report.trust.sentences)
    assert report.trust.rule == "sensitivity" and report.trust.positive == "PNEUMONIA"
    assert main(["trust", str(leaked_run)]) == 0
    shown = capsys.readouterr().out
    assert "Leak-free test figures" in shown and "leak-free (12)" in shown


@pytest.mark.slow
def test_the_calibrated_onnx_export_gives_the_reports_probabilities(leaked_run):
    pytest.importorskip("onnxruntime")
    from meddistill.reports.export import export_run

    result = export_run(leaked_run, "onnx", role="student_scratch")
    temperature = RunFolder(leaked_run).report().trust.models["student_scratch"].temperature
    assert result["temperature"] == temperature
    assert result["max_abs_diff_vs_report"] < 1e-4
    raw = export_run(leaked_run, "onnx", role="student_scratch", raw=True)
    assert raw["temperature"] is None and raw["max_abs_diff_vs_report"] < 1e-4


@pytest.mark.slow
def test_trust_chooses_again_without_retraining(leaked_run, capsys):
    assert main(["trust", str(leaked_run), "--target-specificity", "0.8"]) == 0
    out = capsys.readouterr().out
    assert "the threshold reaching specificity 0.8 on val" in out
    assert main(["trust", str(leaked_run), "--json"]) == 0
    assert '"rule": "sensitivity"' in capsys.readouterr().out  # the run's own rule by default
    assert main(["trust", str(leaked_run), "--positive-class", "CAT"]) == 2


def _csv_collection(chest_folder: Path, root: Path) -> Path:
    """Real chest X-rays listed in a labels CSV with a split column, a Sex column (the test split: 30 F, 30 M and
    4 X) and a numeric column."""
    (root / "images").mkdir(parents=True)
    rows = []
    for cls in ("NORMAL", "PNEUMONIA"):
        for i, f in enumerate(sorted((chest_folder / "train" / cls).glob("*.jpeg"))[:56]):
            shutil.copy(f, root / "images" / f.name)
            split = "test" if i < 32 else ("train" if i < 48 else "val")
            sex = "X" if i in (0, 1) else ("F" if i % 2 else "M")
            rows.append({"file": f"images/{f.name}", "label": cls, "split": split, "Sex": sex, "Follow-up #": str(i)})
    with open(root / "labels.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return root


def test_subgroups_from_a_labels_csv_column_with_a_pooled_group(chest_folder, tmp_path):
    root = _csv_collection(chest_folder, tmp_path / "cxr")
    with open(root / "labels.csv") as handle:
        truth = {row["file"].split("/")[-1]: row["Sex"] for row in csv.DictReader(handle)}
    dataset = load_dataset(root, seed=0, options=DataOptions(subgroup_columns=("Sex", "Follow-up #")))
    test = dataset.splits["test"]
    values = dataset.values("test", "Sex")
    assert values == [truth[p.name] for p in test.paths] and len(values) == 64
    inputs = data_inputs(dataset)
    assert list(inputs["subgroup/Sex"]) == values
    # the real test split, scored by a model that is good for F and guesses for the rest
    rng = np.random.default_rng(0)
    labels = test.labels
    score = np.where(labels == 1, 0.8, 0.2) + rng.normal(0, 0.05, len(labels))
    weak = np.array([v != "F" for v in values])
    score[weak] = rng.uniform(0, 1, weak.sum())
    probs = np.stack([1 - score, score], 1).clip(1e-4, 1 - 1e-4)
    subgroups = {c: list(inputs[f"subgroup/{c}"]) for c in ("Sex", "Follow-up #")}
    trust = assess(
        "softmax",
        dataset.class_names,
        labels,
        {"student_kd": probs},
        labels,
        {"student_kd": probs},
        subgroups=subgroups,
    )
    sex, follow_up = trust.models["student_kd"].subgroups
    groups = {r["group"]: r for r in sex["rows"]}
    assert set(groups) == {"F", "M", "other (X)"} and groups["other (X)"]["n"] == 4
    assert "1 groups under 30 images pooled into 'other (X)'" in sex["notes"]
    assert groups["F"]["n"] == 30 and groups["F"]["auc"] > 0.95 and "sensitivity_ci" in groups["F"]
    assert not groups["F"]["below"]
    assert "quartile" in follow_up["notes"][0]  # 32 distinct follow-up numbers: banded


def test_subgroup_column_refusals(chest_folder, tmp_path, small_breast_npz):
    root = _csv_collection(chest_folder, tmp_path / "cxr")
    with pytest.raises(DataError, match="has no column 'Site' for --subgroup-column; choose one of"):
        load_dataset(root, options=DataOptions(subgroup_columns=("Site",)))
    folders = tmp_path / "folders"
    for cls in ("NORMAL", "PNEUMONIA"):
        (folders / cls).mkdir(parents=True)
        for f in sorted((chest_folder / "train" / cls).glob("*.jpeg"))[:4]:
            shutil.copy(f, folders / cls / f.name)
    with pytest.raises(DataError, match="takes its labels from class folders"):
        load_dataset(folders, options=DataOptions(subgroup_columns=("Sex",)))
    with pytest.raises(DataError, match="--subgroup-column applies to folders"):
        load_dataset(small_breast_npz, options=DataOptions(subgroup_columns=("Sex",)))
    both = ["run", "--data", str(small_breast_npz), "--target-sensitivity", "0.9", "--target-specificity", "0.9"]
    assert main(both) == 2
