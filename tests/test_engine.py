"""The training engine: cancel within one batch, best checkpoint, reproducibility, cached teacher logits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from meddistill.data import load_dataset
from meddistill.data.tensors import Batches
from meddistill.distillation import create_method
from meddistill.errors import Cancelled, TrainingError
from meddistill.models import create_model
from meddistill.training import FitSettings, fit, teacher_logits


@pytest.fixture(scope="module")
def batches(small_breast_npz):
    data = load_dataset(small_breast_npz)
    return {s: Batches(data.splits[s], 1, 28) for s in ("train", "val")}


def _student(seed=0):
    torch.manual_seed(seed)
    return create_model("tiny_cnn", 2, 1, 28)


def test_cancel_within_one_batch(batches):
    seen = []

    def callback(event):
        seen.append(event)

    calls = {"n": 0}

    def should_stop():
        calls["n"] += 1
        return calls["n"] > 3  # ask to stop after the third batch

    with pytest.raises(Cancelled):
        fit(
            _student(),
            batches["train"],
            batches["val"],
            FitSettings(epochs=5, lr=0.001, batch_size=16),
            role="s",
            callback=callback,
            should_stop=should_stop,
        )
    assert [e.batch for e in seen if e.kind == "batch"] == [1, 2, 3]


def test_progress_and_best_epoch_kept(batches):
    events = []
    result = fit(
        _student(),
        batches["train"],
        batches["val"],
        FitSettings(epochs=4, lr=0.003, batch_size=32, patience=10),
        role="s",
        callback=events.append,
    )
    epochs = [e for e in events if e.kind == "epoch"]
    assert [e.epoch for e in epochs] == [1, 2, 3, 4]
    assert all(e.eta >= 0 and e.elapsed > 0 for e in events)
    aucs = [h["val_auc"] for h in result.history]
    assert result.best_epoch == int(np.argmax(aucs)) + 1
    assert len([e for e in events if e.kind == "batch"]) == 4 * 5


def test_early_stopping(batches):
    result = fit(
        _student(),
        batches["train"],
        batches["val"],
        FitSettings(epochs=30, lr=0.5, batch_size=32, patience=2),
        role="s",
    )
    assert result.stopped_early and len(result.history) < 30


def test_reproducible_on_cpu(batches):
    a = fit(
        _student(),
        batches["train"],
        batches["val"],
        FitSettings(epochs=2, lr=0.001, batch_size=32, seed=5, augment=True),
        role="s",
    )
    b = fit(
        _student(),
        batches["train"],
        batches["val"],
        FitSettings(epochs=2, lr=0.001, batch_size=32, seed=5, augment=True),
        role="s",
    )
    for key in a.best_state:
        assert torch.equal(a.best_state[key], b.best_state[key]), key


def test_cached_teacher_logits_equal_live_teacher(batches):
    torch.manual_seed(1)
    teacher = create_model("resnet_narrow", 2, 1, 28).eval()
    cached = teacher_logits(teacher, batches["train"], torch.device("cpu"))
    with torch.no_grad():
        live = teacher(batches["train"].images)
    assert torch.allclose(cached, live, atol=1e-5)


def test_distillation_with_cached_logits_matches_live(batches, monkeypatch):
    """Caching is an optimisation only: the distilled weights are the same as with a live teacher."""
    import meddistill.training.engine as engine

    torch.manual_seed(1)
    teacher = create_model("resnet_narrow", 2, 1, 28).eval()
    method = create_method("kd", temperature=4.0, alpha=0.9)
    cached = fit(
        _student(),
        batches["train"],
        batches["val"],
        FitSettings(epochs=1, lr=0.001, batch_size=32),
        role="kd",
        teacher=teacher,
        method=method,
    )
    monkeypatch.setattr(engine, "teacher_logits", lambda *a, **k: None)
    live = fit(
        _student(),
        batches["train"],
        batches["val"],
        FitSettings(epochs=1, lr=0.001, batch_size=32),
        role="kd",
        teacher=teacher,
        method=method,
    )
    for key in cached.best_state:
        assert torch.allclose(cached.best_state[key].float(), live.best_state[key].float(), atol=1e-5), key


@pytest.mark.parametrize("name", ["attention", "fitnet"])
def test_feature_methods_train(batches, name):
    torch.manual_seed(1)
    teacher = create_model("resnet18", 2, 1, 28).eval()
    kwargs = {"student_channels": 96, "teacher_channels": 512} if name == "fitnet" else {}
    method = create_method(name, **kwargs)
    result = fit(
        _student(),
        batches["train"],
        batches["val"],
        FitSettings(epochs=1, lr=0.001, batch_size=32),
        role="kd",
        teacher=teacher,
        method=method,
    )
    assert np.isfinite(result.history[0]["train_loss"])


def test_nan_loss_stops_with_reason(batches):
    model = _student()
    with torch.no_grad():
        model.classifier[-1].weight.fill_(float("nan"))
    with pytest.raises(TrainingError, match="The s loss became nan at epoch 1, batch 1; lower the learning rate"):
        fit(model, batches["train"], batches["val"], FitSettings(epochs=1, lr=0.001), role="s")


@pytest.mark.parametrize("ema_decay", [0.0, 0.9])
def test_resume_from_last_epoch(batches, tmp_path, ema_decay):
    """A run cut off after epoch 2 resumes at epoch 3 and ends like an uninterrupted one, moving average included."""
    full = fit(
        _student(),
        batches["train"],
        batches["val"],
        FitSettings(
            epochs=4, lr=0.001, batch_size=32, checkpoint_dir=tmp_path / "a", checkpoint_seconds=0, ema_decay=ema_decay
        ),
        role="s",
    )
    calls = {"n": 0}

    def stop_in_epoch_three():
        calls["n"] += 1
        return calls["n"] > 2 * 5 + 1

    with pytest.raises(Cancelled):
        fit(
            _student(),
            batches["train"],
            batches["val"],
            FitSettings(
                epochs=4,
                lr=0.001,
                batch_size=32,
                checkpoint_dir=tmp_path / "b",
                checkpoint_seconds=0,
                ema_decay=ema_decay,
            ),
            role="s",
            should_stop=stop_in_epoch_three,
        )
    events = []
    resumed = fit(
        _student(9),
        batches["train"],
        batches["val"],
        FitSettings(
            epochs=4, lr=0.001, batch_size=32, checkpoint_dir=tmp_path / "b", checkpoint_seconds=0, ema_decay=ema_decay
        ),
        role="s",
        callback=events.append,
    )
    assert [e.epoch for e in events if e.kind == "epoch"] == [3, 4]
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3, 4]
    for key in full.best_state:
        assert torch.allclose(full.best_state[key].float(), resumed.best_state[key].float(), atol=1e-5), key


def test_moving_average_is_what_is_kept(batches):
    """With ema_decay the kept weights are the average: between the start and the raw weights, and scored on val."""
    start = _student()
    initial = {k: v.clone() for k, v in start.state_dict().items()}
    raw = fit(
        _student(),
        batches["train"],
        batches["val"],
        FitSettings(epochs=2, lr=0.003, batch_size=32, patience=10),
        role="s",
    )
    averaged = fit(
        _student(),
        batches["train"],
        batches["val"],
        FitSettings(epochs=2, lr=0.003, batch_size=32, patience=10, ema_decay=0.9),
        role="s",
    )
    weight = "classifier.2.weight"
    moved_raw = (raw.best_state[weight] - initial[weight]).norm()
    moved_average = (averaged.best_state[weight] - initial[weight]).norm()
    assert 0 < moved_average < moved_raw
    assert [h["epoch"] for h in averaged.history] == [1, 2]


def test_checkpoints_are_throttled(batches, tmp_path, monkeypatch):
    """Checkpoints after the first epoch, then at most every checkpoint_seconds, and after the last epoch."""
    import meddistill.training.engine as engine

    saved = []
    real = engine.save_checkpoint
    monkeypatch.setattr(engine, "save_checkpoint", lambda *a, **k: (saved.append(a[6]["epoch"]), real(*a, **k)))
    settings = FitSettings(epochs=4, lr=1e-3, batch_size=32, checkpoint_dir=tmp_path, checkpoint_seconds=3600)
    fit(_student(), batches["train"], batches["val"], settings, role="s")
    assert saved == [1, 4]
    saved.clear()
    settings.checkpoint_dir, settings.checkpoint_seconds = tmp_path / "every", 0
    fit(_student(), batches["train"], batches["val"], settings, role="s")
    assert saved == [1, 2, 3, 4]


def test_best_epoch_skips_a_collapsed_accuracy(batches, monkeypatch):
    """The epoch of highest val AUC is not kept when its val balanced ACC has collapsed (a small val split on which
    one class is predicted for everything can still rank well); a later epoch that raises the best unseats it. An
    epoch predicting the majority class for every image (high plain ACC, balanced ACC 0.5) is no refuge."""
    from meddistill.training import engine, stopping

    # (loss, ACC, AUC, balanced ACC)
    scripted = iter(
        [
            (1.0, 0.73, 0.68, 0.50),  # every image the majority class
            (1.0, 0.27, 0.72, 0.50),  # every image the minority class
            (0.9, 0.70, 0.80, 0.70),
            (0.8, 0.72, 0.85, 0.72),
            (0.8, 0.71, 0.86, 0.71),
            (0.9, 0.60, 0.95, 0.60),  # the best AUC, its balanced ACC 12 points below the best
        ]
    )
    monkeypatch.setattr(engine, "_validate", lambda *args: next(scripted))
    result = fit(
        _student(),
        batches["train"],
        batches["val"],
        FitSettings(epochs=6, lr=0.001, batch_size=32, patience=10),
        role="s",
    )
    assert result.best_epoch == 5 and [row["val_balanced_acc"] for row in result.history][:2] == [0.5, 0.5]
    assert stopping.eligible(0.68, 0.72) and not stopping.eligible(0.66, 0.72)
    labels, probs = np.array([0, 0, 0, 1]), np.array([[0.9, 0.1]] * 4)  # all majority: ACC 0.75, balanced 0.5
    assert engine.balanced_accuracy(labels, probs) == 0.5


def test_min_delta_stops_a_creeping_auc(batches, monkeypatch):
    """A val AUC that creeps up by 0.0001 an epoch keeps a run going to its last epoch with ``min_delta`` 0; with
    ``min_delta`` 0.001 it stops ``patience`` epochs after the last gain of 0.001, keeping the best epoch that ran;
    ``replay`` gives the same epochs from the saved history."""
    from meddistill.training import engine, stopping

    aucs = [0.90, 0.95, 0.990, 0.9905, 0.9906, 0.9907, 0.9908, 0.9909, 0.9910, 0.9911]

    def run(min_delta):
        scripted = iter([(0.5, 0.9, auc, 0.9) for auc in aucs])
        monkeypatch.setattr(engine, "_validate", lambda *args: next(scripted))
        settings = FitSettings(epochs=len(aucs), lr=0.001, batch_size=32, patience=3, min_delta=min_delta)
        return fit(_student(), batches["train"], batches["val"], settings, role="s")

    creeping, stopped = run(0.0), run(0.001)
    assert len(creeping.history) == 10 and creeping.best_epoch == 10 and not creeping.stopped_early
    assert len(stopped.history) == 6 and stopped.best_epoch == 6 and stopped.stopped_early
    assert stopping.replay(creeping.history, patience=3, min_delta=0.001) == (6, 6)
    assert stopping.replay(creeping.history, patience=3, min_delta=0.0) == (10, 10)


def test_min_delta_is_a_preset_default_the_user_can_override():
    from meddistill.settings import RunConfig

    assert RunConfig.from_preset("cpu").min_delta == 0.001 and RunConfig.from_preset("smoke").min_delta == 0.0
    typed = RunConfig.from_preset("cpu", min_delta=0.0)
    assert typed.min_delta == 0.0 and "min_delta" in typed.given
