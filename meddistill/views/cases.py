"""Cases for the Explain and Review pages: a run's test scans with both models' predictions,
explanations with faithfulness curves, uploaded scans (DICOM de-identified first), and reviews."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from meddistill.data.dataset import MedDataset
from meddistill.data.dicom import WINDOW_PRESETS, DicomImage
from meddistill.data.tensors import Batches, image_tensor
from meddistill.explain.faithfulness import faithfulness
from meddistill.explain.methods import map_resolution
from meddistill.explain.pair import explain_pair, mean_saliency_agreement
from meddistill.pipeline.trust import calibrated
from meddistill.store.layout import RunFolder, predictions_key

FILTERS = ("all", "correct", "wrong", "disagree")
FILTER_LABELS = {
    "all": "all",
    "correct": "student correct",
    "wrong": "student wrong",
    "disagree": "teacher and student disagree",
}


def run_dataset(run_dir: str | Path) -> MedDataset:
    """The dataset a run was trained on, with the same splits."""
    return RunFolder(run_dir).dataset()


def case_table(run_dir: str | Path, class_names: list[str], names: list[str] | None = None) -> list[dict]:
    """One row per test image: truth, teacher and distilled-student predictions, confidence, flags.

    Args:
        run_dir: A finished run folder (reads ``predictions.npz``; confidences are calibrated).
        class_names: The run's class names.
        names: Optional display names of the test images (file names).
    """
    folder = RunFolder(run_dir)
    saved, report = folder.predictions(), folder.report()
    labels = saved["labels"]
    trust, task = (report.trust, report.task) if report is not None else (None, "single_label")
    # calibrated, as every page shows them (the val-fitted temperature of each model)
    teacher = calibrated(trust, "teacher", saved[predictions_key("teacher")], task)
    student = calibrated(trust, "student_kd", saved[predictions_key("student_kd")], task)
    if labels.ndim == 2:
        return _findings_cases(labels, teacher, student, class_names, names)
    rows = []
    for i, (label, t, s) in enumerate(zip(labels, teacher, student)):
        rows.append(
            {
                "case": i,
                "name": names[i] if names else f"#{i}",
                "truth": class_names[label],
                "teacher": class_names[t.argmax()],
                "teacher confidence": float(t.max()),
                "student": class_names[s.argmax()],
                "student confidence": float(s.max()),
                "student correct": bool(s.argmax() == label),
                "disagree": bool(t.argmax() != s.argmax()),
            }
        )
    return rows


def _named(flags: np.ndarray, class_names: list[str]) -> str:
    return ", ".join(n for n, on in zip(class_names, flags) if on) or "no finding"


def _findings_cases(labels, teacher, student, class_names, names) -> list[dict]:
    """Case rows for several findings per image: the findings present, and each model's findings at 0.5."""
    rows = []
    for i, (label, t, s) in enumerate(zip(labels, teacher, student)):
        truth, said_t, said_s = np.nan_to_num(label) > 0, t >= 0.5, s >= 0.5
        known = ~np.isnan(label)
        rows.append(
            {
                "case": i,
                "name": names[i] if names else f"#{i}",
                "truth": _named(truth, class_names),
                "teacher": _named(said_t, class_names),
                "teacher confidence": float(t.max()),
                "student": _named(said_s, class_names),
                "student confidence": float(s.max()),
                "student correct": bool((said_s[known] == truth[known]).all()),
                "disagree": bool((said_t != said_s).any()),
                "findings": sorted({class_names[k] for k in np.flatnonzero(truth | said_t | said_s)}),
            }
        )
    return rows


def case_label(row: dict) -> str:
    """One line for a case picker: name, truth, both predictions with confidence, and a disagreement flag."""
    return (
        f"{row['name']} · true {row['truth']} · teacher {row['teacher']} ({row['teacher confidence']:.0%}) · "
        f"student {row['student']} ({row['student confidence']:.0%})" + (" · DISAGREE" if row["disagree"] else "")
    )


def filter_cases(rows: list[dict], which: str, finding: str | None = None) -> list[dict]:
    """Keep ``all``, ``correct`` or ``wrong`` (by the distilled student), or ``disagree`` (teacher vs student); with
    ``finding`` (several findings per image), only the cases where it is present or either model calls it."""
    if which not in FILTERS:
        raise ValueError(f"unknown filter {which!r}; choose one of: {', '.join(FILTERS)}")
    keep = {
        "all": lambda r: True,
        "correct": lambda r: r["student correct"],
        "wrong": lambda r: not r["student correct"],
        "disagree": lambda r: r["disagree"],
    }[which]
    return [r for r in rows if keep(r) and (finding is None or finding in r.get("findings", ()))]


def calibrated_answer(run_dir: str | Path, role: str, probabilities: list[float]) -> list[float]:
    """One image's (K,) probabilities from ``role`` ("teacher" or "student_kd") with the run's val-fitted
    temperature applied, as every page shows them (unchanged for a run without a trust section)."""
    report = RunFolder(run_dir).report()
    if report is None or report.trust is None:
        return list(probabilities)
    probs = calibrated(report.trust, role, np.asarray([probabilities], dtype=np.float64), report.task)
    return [float(p) for p in probs[0]]


def explain_case(
    teacher,
    student,
    image: np.ndarray,
    channels: int,
    size: int,
    method: str = "gradcam",
    target: int | None = None,
    activation=None,
    spatial_dims: int = 2,
) -> dict:
    """``explain_pair`` plus each model's RISE faithfulness (deletion and insertion against random blocks at the
    resolution of its map) under ``"faithfulness"``: ``{"teacher": Faithfulness, "student": Faithfulness}``.
    ``target`` is the class or finding explained (default: the teacher's most probable); ``activation`` the task's."""
    result = explain_pair(teacher, student, image, channels, size, method, target, activation, spatial_dims)
    x = image_tensor(np.asarray(image), channels, size, spatial_dims)
    result["faithfulness"] = {
        role: faithfulness(
            model,
            x,
            result[role].saliency,
            target=result["target"],
            grid=map_resolution(model, x, method),
            activation=activation,
        )
        for role, model in (("teacher", teacher), ("student", student))
    }
    return result


OWN_WINDOW = "File's own window"


def window_presets(dicom: DicomImage) -> list[str]:
    """Window presets that apply to this scan: its own window (if it has one), the standard ones, and "Manual"."""
    own = [OWN_WINDOW] if dicom.default_center is not None and dicom.default_width is not None else []
    return own + list(WINDOW_PRESETS) + ["Manual"]


def window_settings(dicom: DicomImage, preset: str) -> dict[str, float]:
    """Slider bounds and start values for a window preset, clamped to the scan's pixel range.

    Returns:
        ``low`` and ``high`` (the pixel range, bounds of the center), ``center``,
        ``width`` and ``max_width`` (bound of the width).
    """
    low, high = float(dicom.pixels.min()), float(dicom.pixels.max())
    presets = {OWN_WINDOW: (dicom.default_center, dicom.default_width), **WINDOW_PRESETS}
    center, width = presets.get(preset, (None, None))
    center = (low + high) / 2 if center is None else center
    width = max(high - low, 1.0) if width is None else width
    max_width = max(high - low, 2.0)
    return {
        "low": low,
        "high": high,
        "center": float(min(max(center, low), high)),
        "width": float(min(max(width, 1.0), max_width)),
        "max_width": max_width,
    }


def test_set_agreement(
    teacher, student, dataset: MedDataset, size: int, limit: int = 100, method: str = "gradcam"
) -> dict:
    """Mean teacher-student map agreement (Pearson, top-20% IoU) over the first ``limit`` test images."""
    test = dataset.splits["test"]
    count = min(limit, len(test))
    images, _, _ = next(Batches(test.subset(np.arange(count)), dataset.channels, size).iterate(count))
    return {**mean_saliency_agreement(teacher, student, images, method), "images": count}


def mean_faithfulness(
    model, split, channels: int, size: int, method: str = "gradcam", n: int = 50, seed: int = 0
) -> dict:
    """Mean RISE areas of ``model``'s maps over up to ``n`` test scans (a seeded sample), each against random blocks
    at its map's resolution, for the class the model predicts.

    Returns:
        ``{"images", "grid", "deletion", "insertion", "random_deletion", "random_insertion", "deletion_wins",
        "insertion_wins"}``: mean areas, and on how many scans the map beat random on each test.
    """
    from meddistill.explain.methods import saliency

    picked = np.random.default_rng(seed).permutation(len(split))[:n]
    rows = []
    for index in picked:
        x = image_tensor(split.image(int(index)), channels, size, split.spatial_dims)
        heat = saliency(model, x, method=method)
        rows.append(faithfulness(model, x, heat, grid=map_resolution(model, x, method)))
    areas = {key: float(np.mean([r.areas()[key] for r in rows])) for key in rows[0].areas()}
    return {
        "images": len(rows),
        "grid": rows[0].grid,
        **areas,
        "deletion_wins": int(sum(r.deletion_area < r.random_deletion_area for r in rows)),
        "insertion_wins": int(sum(r.insertion_area > r.random_insertion_area for r in rows)),
    }


def showcase_cases(rows: list[dict], n: int = 8, seed: int = 0) -> list[dict]:
    """A few test cases for the home page's grid: disagreements and mistakes first (what a reviewer looks at),
    then correct cases, each group in a seeded random order."""
    rng = np.random.default_rng(seed)
    groups = [
        [r for r in rows if r["disagree"]],
        [r for r in rows if not r["student correct"] and not r["disagree"]],
        [r for r in rows if r["student correct"] and not r["disagree"]],
    ]
    picked = []
    for group, share in zip(groups, (n // 4, n // 4, n)):
        order = rng.permutation(len(group))[: max(0, min(share, n - len(picked)))]
        picked += [group[i] for i in order]
    return sorted(picked, key=lambda r: r["case"])
