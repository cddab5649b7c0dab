"""The presets: named sets of defaults that fill the settings the user does not give (``RunConfig.from_preset``)."""

from __future__ import annotations

import torch

PRESETS: dict[str, dict] = {
    # Fast enough for a 2-core laptop: 28 px MedMNIST in minutes, larger images capped at 64 px.
    # The teacher is augmented; the students are not, so distillation reuses the teacher's logits computed once.
    # 5 teacher epochs, raised to at least 75 steps: 15 on BreastMNIST, 5 on PneumoniaMNIST (chosen on val AUC over
    # 5 seeds against 4 epochs raised to 150 steps: docs/results.md). Sets over 4,736 train images get 5 epochs, not 4.
    "cpu": dict(
        teacher_epochs=5,
        student_epochs=30,
        min_steps=75,
        batch_size=128,
        max_image_size=64,
        augment=True,
        augment_students=False,
        class_weighted=True,
        patience=8,
        min_delta=0.001,  # a val AUC gain under 0.001 does not reset early stopping: docs/benchmarks.md, section 9
        ema_decay=0.98,
        teacher_train_on=True,
    ),
    # What a GPU affords: full resolution up to 224 px, augmentation, longer schedules.
    "thorough": dict(
        teacher_epochs=30,
        student_epochs=60,
        min_steps=1000,
        batch_size=128,
        max_image_size=224,
        augment=True,
        augment_students=True,
        class_weighted=True,
        patience=15,
        min_delta=0.001,
        ema_decay=0.999,
        teacher_train_on=True,
    ),
    # For tests and demos of the workflow itself: seconds, not minutes.
    "smoke": dict(
        teacher_epochs=1,
        student_epochs=1,
        min_steps=0,
        batch_size=64,
        max_image_size=28,
        augment=False,
        augment_students=False,
        patience=2,
        latency_runs=20,
    ),
}


def default_preset() -> str:
    """``thorough`` when a CUDA GPU is present, ``cpu`` otherwise."""
    return "thorough" if torch.cuda.is_available() else "cpu"


# What a preset changes for images larger than ``above_px`` at the training side, when the user names no teacher
# (and no teacher steps): a teacher whose stem brings a 64-px image to the first block at 16x16, as 28 px reaches
# it at 14x14, instead of MedDistill's resnet18 (32x32 there: 1.1 GFLOPs per image, 3.7 s per step on 2 cores held
# to AVX2, so 5 epochs are 100-200 steps and lose to the scratch student). Chosen on validation data only:
# docs/benchmarks.md ("A teacher for 64-px images").
LARGE_IMAGES: dict[str, dict] = {
    "cpu": {"above_px": 32, "teacher": "timm/resnet18", "teacher_min_steps": 300},
}


# What a preset changes for volumes (CT, MRI: ``spatial_dims`` 3) in the settings the user did not give: 3D models
# (``meddistill.models.volumes``) and the cube the volumes are resampled to. The cpu preset keeps 28^3 (a 64^3 cube
# costs about 10x the voxels and the FLOPs: a thorough / GPU-sized job, which the plan says); thorough trains
# MONAI's full-width ResNet-18 on up to 64^3.
VOLUMES: dict[str, dict] = {
    "cpu": {"teacher": "resnet10_3d", "student": "tiny_cnn_3d", "max_image_size": 28},
    "thorough": {"teacher": "resnet18_3d", "student": "tiny_cnn_3d", "max_image_size": 64},
    "smoke": {"teacher": "resnet10_3d", "student": "tiny_cnn_3d", "max_image_size": 16},
}


# A preset's budget when the user gives none (``meddistill.pipeline.plan.fit_budget``): minutes by the work of the
# data (train images x side^2), the time targets of the teachers issue on 2 cores held to AVX2: the demo
# (BreastMNIST, 546 x 28^2) 3 minutes, PneumoniaMNIST (4,708 x 28^2) 5 minutes, a 5,000-image 64-px folder 10.
# Rows are (at most this many image pixels, minutes). A preset's budget never changes the schedule (chosen on val):
# it bounds the teacher's second round only (``teacher_train_on``); a budget the user types is a target.
BUDGET_CLASSES: dict[str, tuple[tuple[float, float], ...]] = {
    "cpu": ((1_000 * 28 * 28, 3.0), (5_000 * 28 * 28, 5.0), (float("inf"), 10.0)),
}


def preset_budget(preset: str, train_images: int, side: int, spatial_dims: int = 2) -> float | None:
    """The minutes ``BUDGET_CLASSES`` gives a preset for this much data (volumes: voxels), or None (no budget)."""
    work = train_images * side**spatial_dims
    return next((minutes for most, minutes in BUDGET_CLASSES.get(preset, ()) if work <= most), None)
