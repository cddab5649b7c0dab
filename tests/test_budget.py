"""--budget: the plan fits the teacher's epochs into the minutes the students leave; epochs the user types run."""

from __future__ import annotations

import pytest

from meddistill import RunConfig
from meddistill.pipeline.plan import fit_budget, plan_run, training_seconds

SHAPE = (546, 1, 28, 2)  # BreastMNIST's train images, channels, side, classes


def _plan(config: RunConfig) -> dict:
    return {p.role: p for p in plan_run(config, *SHAPE)}


def test_no_budget_changes_nothing():
    config = RunConfig.from_preset("smoke", data="x")  # the smoke preset has no budget classes
    assert config.budget is None and fit_budget(config, *SHAPE) == (config, None)


def test_the_presets_budget_leaves_the_schedule_as_chosen():
    """The cpu preset's budget follows the size of the data (3 minutes for BreastMNIST, 5 for PneumoniaMNIST, 10 for a
    5,000-image 64-px folder); it never cuts or lengthens the schedule (it only bounds the teacher's second round)."""
    from meddistill.settings.presets import preset_budget

    assert preset_budget("cpu", 546, 28) == 3.0 and preset_budget("cpu", 4708, 28) == 5.0
    assert preset_budget("cpu", 5000, 64) == 10.0 and preset_budget("smoke", 546, 28) is None
    config = RunConfig.from_preset("cpu", data="x", teacher="resnet_narrow")
    assert config.budget is None and "budget" not in config.given
    long = config.replace(teacher_min_steps=200_000)  # a schedule far over 3 minutes
    for schedule in (config, long):
        fitted, note = fit_budget(schedule, *SHAPE)
        assert note is None and fitted == schedule.replace(budget=3.0) and "budget" not in fitted.given


@pytest.mark.parametrize("minutes", [0.5, 5.0])
def test_the_teacher_gets_what_the_students_leave(minutes):
    config = RunConfig.from_preset("cpu", data="x", budget=minutes, teacher="resnet_narrow")
    fitted, note = fit_budget(config, *SHAPE)
    plans = _plan(fitted)
    students = plans["student_scratch"].seconds + plans["student_kd"].seconds
    teacher = plans["teacher"]
    assert f"Budget {minutes:g} minutes" in note and f"gets {teacher.epochs} epochs" in note
    per_epoch = teacher.seconds / teacher.epochs
    if teacher.epochs > 1:  # the largest whole number of epochs that fits
        assert students + teacher.seconds <= training_seconds(minutes) < students + teacher.seconds + per_epoch
    assert "teacher_epochs" not in fitted.given  # still the preset's, adapted: never counted as the user's


def test_epochs_the_user_gives_still_run():
    config = RunConfig.from_preset("cpu", data="x", budget=0.5, teacher_epochs=40)
    fitted, note = fit_budget(config, *SHAPE)
    assert fitted.teacher_epochs == 40 and "the teacher's epochs are yours" in note
    steps = RunConfig.from_preset("cpu", data="x", budget=0.5, teacher_min_steps=400)
    assert fit_budget(steps, *SHAPE)[0] == steps  # a minimum of steps the user typed is not cut either


def test_the_cpu_preset_picks_its_teacher_for_large_images_only_when_none_is_given():
    from meddistill.settings.presets import LARGE_IMAGES

    rule = LARGE_IMAGES["cpu"]
    config = RunConfig.from_preset("cpu", data="x")
    large = config.for_data(224)  # capped at 64 px by the preset
    assert (large.teacher, large.teacher_min_steps) == (rule["teacher"], rule["teacher_min_steps"])
    assert "teacher" not in large.given and large.student == config.student
    assert config.for_data(28) == config  # MedMNIST at 28 px: as tuned
    assert RunConfig.from_preset("cpu", data="x", teacher="resnet18").for_data(224).teacher == "resnet18"  # typed
    typed_min = RunConfig.from_preset("cpu", data="x", min_steps=500).for_data(224)
    assert typed_min.teacher == rule["teacher"] and typed_min.teacher_min_steps is None  # --min-steps 500 holds
    kept = RunConfig.from_preset("cpu", data="x", teacher_min_steps=50).for_data(224)
    assert kept.teacher == rule["teacher"] and kept.teacher_min_steps == 50
    imported = RunConfig.from_preset("cpu", data="x", teacher_weights="hospital.pth", teacher_epochs=0)
    assert imported.for_data(224) == imported  # a teacher file is built as the architecture it was saved for
    assert RunConfig.from_preset("smoke", data="x").for_data(224).teacher == "resnet18"


def test_a_resumed_run_keeps_the_schedule_it_started_with(tmp_path, monkeypatch):
    """A run's config.json holds the budget the plan used. Read back on resume, the preset's budget is still the
    preset's (it never sets the teacher's epochs), and a typed budget is not fitted again: the plan times training
    steps, so fitting again on a busier or idler machine would change the teacher's epochs mid-run."""
    import meddistill.pipeline.runner as runner
    from meddistill.pipeline.plan import BUDGET_NOTE

    preset = RunConfig.from_preset("cpu", data="x", teacher="resnet_narrow")
    started, _ = fit_budget(preset, *SHAPE)
    started.save(tmp_path / "preset.json")
    resumed = RunConfig.load(tmp_path / "preset.json")
    assert resumed.budget == 3.0 and "budget" not in resumed.given
    assert fit_budget(resumed, *SHAPE) == (started, None)  # not re-read as a target that cuts the teacher

    typed = RunConfig.from_preset("cpu", data="x", budget=0.5, teacher="resnet_narrow")
    fitted, note = fit_budget(typed, *SHAPE)
    fitted = fitted.replace(extra={BUDGET_NOTE: note})  # what execute saves
    fitted.save(tmp_path / "typed.json")

    def timed_again(*args, **kwargs):
        raise AssertionError("a run that already fitted its budget was fitted again")

    monkeypatch.setattr(runner, "fit_budget", timed_again)
    assert runner.budgeted(RunConfig.load(tmp_path / "typed.json"), dataset=None) == fitted
