"""What a run will do before it starts: epochs and steps per model, where they came from, and an estimated time.

The estimate times a few real optimisation steps of each architecture at the run's batch and image size, on
this machine with the run's thread count, and multiplies by the planned steps (validation is not included).

Example:
    >>> plans = plan_run(config, train_images=546, channels=1, image_size=28)
    >>> print(describe_plan(plans))
    Teacher (resnet18): 15 epochs x 5 steps = 75 steps (the preset's 5 raised to reach 75 steps), about ...
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from meddistill.models.factory import create_model, example_input
from meddistill.models.registry import model_dims
from meddistill.pipeline.search import BUDGET
from meddistill.settings.config import AUTO_METHOD, RunConfig
from meddistill.settings.presets import preset_budget
from meddistill.store.layout import LABELS, ROLES
from meddistill.training.distributed import default_threads


@dataclass
class ModelPlan:
    """One model's share of a run."""

    role: str
    arch: str
    epochs: int  # epochs that will run (at most: early stopping may end sooner)
    configured: int  # the epochs setting (preset default or the user's number)
    given: bool  # the user gave the epochs explicitly (never adapted)
    steps_per_epoch: int
    seconds: float | None = None  # estimated training time, None when not measured
    trainings: int = 1  # times the model is trained: the search budget with --method auto

    @property
    def steps(self) -> int:
        return self.epochs * self.steps_per_epoch


@functools.lru_cache(maxsize=32)
def step_seconds(
    arch: str, num_classes: int, channels: int, size: int, batch_size: int, threads: int, repeats: int = 3
) -> float:
    """The fewest seconds of one AdamW training step of ``arch`` on a random (B, C, S, S) batch with ``threads``
    torch threads, after one warm-up (cached per process: the same arguments are timed once)."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        model = create_model(arch, num_classes, channels, size).train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        images = example_input(model, channels, size, batch_size).normal_()
        labels = torch.randint(0, num_classes, (batch_size,))
        times = []
        for _ in range(repeats + 1):
            start = time.perf_counter()
            loss = F.cross_entropy(model(images), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            times.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(before)
    return min(times[1:])  # the fastest: a step slowed by another process says nothing about this one


def plan_run(
    config: RunConfig,
    train_images: int,
    channels: int,
    image_size: int,
    num_classes: int = 2,
    roles: tuple[str, ...] = ROLES,
    measure: bool = True,
) -> list[ModelPlan]:
    """The plan of each model of a run.

    Args:
        config: The run's settings.
        train_images: Images in the training split.
        channels: Image channels C.
        image_size: Training side S.
        num_classes: Classes K (for the timed steps).
        roles: The models to plan.
        measure: Time a few steps per architecture (seconds) for the estimate; else ``seconds`` stays None.
    """
    plans = []
    steps_per_epoch = max(1, -(-train_images // (config.batch_size * config.world_size)))
    threads = config.threads or default_threads()
    for role in roles:
        if role == "teacher" and not config.teacher_source().trains:
            continue
        arch = config.arch_for(role)
        plan = ModelPlan(
            role=role,
            arch=arch,
            epochs=config.epochs_for(role, train_images, config.world_size),
            configured=getattr(config, config.epochs_field(role)),
            given=config.epochs_field(role) in config.given,
            steps_per_epoch=steps_per_epoch,
            trainings=BUDGET if role == "student_kd" and config.method == AUTO_METHOD else 1,
        )
        if measure:
            step = step_seconds(arch, num_classes, channels, image_size, config.batch_size, threads)
            plan.seconds = step * plan.steps * plan.trainings
        plans.append(plan)
    return plans


# The share of a budget that goes to training; the rest is for reading the data, validation, the evaluation and the
# exports (on the suite's 64-px sets these took 60-90 s of a 10-minute run: docs/benchmarks.md, section 8).
TRAINING_SHARE = 0.85
BUDGET_NOTE = "budget"  # the key in ``RunConfig.extra`` of the sentence saying how the budget fitted the plan


def training_seconds(minutes: float) -> float:
    """The training time a budget of ``minutes`` for the whole run leaves (``TRAINING_SHARE``)."""
    return minutes * 60 * TRAINING_SHARE


def fit_budget(
    config: RunConfig, train_images: int, channels: int, image_size: int, num_classes: int = 2
) -> tuple[RunConfig, str | None]:
    """The settings with the teacher's epochs fitted into ``config.budget`` minutes (of which ``TRAINING_SHARE`` is
    training), and one sentence saying so.

    A budget the user typed is a target: the students' estimated time is taken first (their epochs are the
    preset's or the user's) and the teacher gets the rest, its epochs set so that its estimate fills it (at least
    1), unless the user gave the teacher's epochs or its minimum of steps, which always run as given (the sentence
    then says whether the plan exceeds the budget). A budget from the preset (by the size of the data:
    ``BUDGET_CLASSES``) never changes the schedule, which was chosen on validation data: it only bounds the
    teacher's second round (``meddistill.pipeline.train_on``); the settings returned carry it. A budget is the
    user's only when ``given`` says so: the preset's, saved in a run's ``config.json``, stays the preset's when the run
    resumes. Without a budget, or for a teacher the run does not train, the settings are returned as they are.
    """
    if "budget" not in config.given:  # the preset's (also when a saved run's config.json holds it: never a target)
        minutes = preset_budget(config.preset, train_images, image_size, model_dims(config.student))
        return config.replace(budget=minutes), None
    if config.budget is None or not config.teacher_source().trains:
        return config, None
    plans = {p.role: p for p in plan_run(config, train_images, channels, image_size, num_classes)}
    students = sum(p.seconds for role, p in plans.items() if role != "teacher")
    teacher = plans["teacher"]
    budget = training_seconds(config.budget)
    if {"teacher_epochs", "teacher_min_steps"} & set(config.given):  # the user's schedule runs as typed
        total = students + teacher.seconds
        over = "exceeds" if total > budget else "fits"
        note = f"The plan ({clock(total)}) {over} the {config.budget:g}-minute budget; the teacher's epochs are yours."
        return config, note
    per_epoch = teacher.seconds / max(teacher.epochs, 1)
    epochs = max(1, int((budget - students) // per_epoch))
    fitted = config.replace(teacher_epochs=epochs, teacher_min_steps=0)
    note = (
        f"Budget {config.budget:g} minutes: the students take about {clock(students)}, so the teacher gets "
        f"{epochs} epochs (about {clock(epochs * per_epoch)}; the preset's schedule was {teacher.epochs})."
    )
    return fitted, note


def volume_note(config: RunConfig, train_images: int, channels: int, native: int, num_classes: int = 2) -> str | None:
    """For volumes larger than the cube the run resamples them to (64^3 under the cpu preset's 28^3): one sentence
    with what the teacher would cost at full size on this machine (its steps timed), and how to ask for it."""
    size = config.resolved_image_size(native)
    if model_dims(config.teacher) != 3 or native <= size or not config.teacher_source().trains:
        return None
    threads = config.threads or default_threads()
    full = config.replace(image_size=native)
    plan = plan_run(full, train_images, channels, native, num_classes, roles=("teacher",), measure=False)[0]
    seconds = step_seconds(config.teacher, num_classes, channels, native, config.batch_size, threads) * plan.steps
    return (
        f"The volumes are {native}^3 and the {config.preset} preset resamples them to {size}^3; at {native}^3 the "
        f"teacher alone would take about {clock(seconds)} on this machine: give --image-size {native}, or "
        "--preset thorough (sized for a GPU)."
    )


def clock(seconds: float) -> str:
    """``1:25`` or ``1:02:05``."""
    seconds = int(max(seconds, 0))
    hours, minutes, secs = seconds // 3600, seconds // 60 % 60, seconds % 60
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def describe_plan(plans: list[ModelPlan]) -> str:
    """One line per model, and the total estimate when measured."""
    lines = []
    for p in plans:
        why = "as you gave it" if p.given else "preset default"
        if p.epochs != p.configured:
            why = f"the preset's {p.configured} raised to reach {p.steps} steps"
        line = f"{LABELS[p.role]} ({p.arch}): {p.epochs} epochs x {p.steps_per_epoch} steps = {p.steps} steps ({why})"
        if p.trainings > 1:
            line += f", {p.trainings} times (--method auto trains {p.trainings} candidates and keeps the best on val)"
        if p.seconds is not None:
            line += f", about {clock(p.seconds)}"
        lines.append(line)
    if plans and all(p.seconds is not None for p in plans):
        lines.append(f"Estimated training time: about {clock(sum(p.seconds for p in plans))} (validation not included)")
    return "\n".join(lines)
