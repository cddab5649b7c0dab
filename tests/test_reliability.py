"""Hostile input and crashes: tampered weights, a full disk, a killed process, two sessions at once, random files."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meddistill import RunStore
from meddistill.cli import main
from meddistill.errors import DataError, TrainingError, WeightsError
from meddistill.io.weights import load_weights, save_weights
from meddistill.models import create_model
from meddistill.pipeline.lifecycle import run_recorded
from meddistill.services.jobs import JobManager
from meddistill.settings.config import RunConfig

# --- weights ------------------------------------------------------------------------------------


def test_tampered_safetensors_refused(tmp_path):
    model = create_model("tiny_cnn", 2, 1, 28)
    path = save_weights(model, tmp_path / "student.safetensors")
    data = bytearray(path.read_bytes())
    data[8:40] = b"{" * 32  # corrupt the JSON header
    path.write_bytes(bytes(data))
    with pytest.raises(
        WeightsError, match="student.safetensors is not a readable .safetensors file.*truncated or tampered"
    ):
        load_weights(model, path)


def test_truncated_safetensors_refused(tmp_path):
    model = create_model("tiny_cnn", 2, 1, 28)
    path = save_weights(model, tmp_path / "w.safetensors")
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(WeightsError, match="w.safetensors is not a readable"):
        load_weights(model, path)


def test_weights_that_do_not_fit(tmp_path):
    path = save_weights(create_model("tiny_cnn", 3, 1, 28), tmp_path / "three.safetensors")
    with pytest.raises(
        WeightsError,
        match="does not fit tiny_cnn: classifier.2.weight has shape \\(3, 96\\), the model expects \\(2, 96\\)",
    ):
        load_weights(create_model("tiny_cnn", 2, 1, 28), path)
    with pytest.raises(WeightsError, match="does not fit resnet_narrow"):
        load_weights(create_model("resnet_narrow", 3, 1, 28), path)


class _Payload:
    """Unpickling this would create a file: the code a malicious checkpoint could run."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_pickle_file_never_unpickled(tmp_path):
    path, target = tmp_path / "model.pt", tmp_path / "pwned.txt"
    torch.save({"x": torch.zeros(1), "payload": _Payload(str(target))}, path)
    with pytest.raises(WeightsError, match="model.pt holds pickled Python objects .* MedDistill never unpickles"):
        load_weights(create_model("tiny_cnn", 2, 1, 28), path)
    assert not target.exists()  # read with weights_only: the payload never ran


# --- faults during a run ------------------------------------------------------------------------


def test_full_disk_fails_the_run_with_a_clear_message(small_breast_npz, monkeypatch):
    import meddistill.pipeline.runner as pipeline

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", "teacher.safetensors")

    monkeypatch.setattr(pipeline, "save_weights", full)
    store = RunStore()
    record = store.create(RunConfig.from_preset("smoke", data=str(small_breast_npz), teacher="resnet_narrow"))
    with pytest.raises(TrainingError, match="The disk is full \\(teacher.safetensors\\); free some space, then resume"):
        run_recorded(store, record.id)
    assert store.get(record.id).status == "failed"


def test_two_sessions_queue_not_interfere(small_breast_npz):
    jobs = JobManager()
    config = RunConfig.from_preset("smoke", data=str(small_breast_npz), teacher="resnet_narrow")
    first, second = jobs.submit(config), jobs.submit(config)
    assert jobs.queued() in ([second], [first, second])
    for run_id in (first, second):
        assert jobs.wait(run_id, 300).status == "done"
    reports = [jobs.store.get(r).report() for r in (first, second)]
    assert reports[0]["run_id"] != reports[1]["run_id"]
    assert (
        reports[0]["models"]["teacher"]["test"] == reports[1]["models"]["teacher"]["test"]
    )  # same seed, no interference
    jobs.close()


def test_cancel_marks_run_cancelled(small_breast_npz):
    jobs = JobManager()
    run_id = jobs.submit(
        RunConfig.from_preset("smoke", data=str(small_breast_npz), teacher_epochs=50, student_epochs=50)
    )
    deadline = time.time() + 120
    while jobs.snapshot(run_id).batch == 0 and time.time() < deadline:
        time.sleep(0.05)
    started = time.time()
    jobs.cancel(run_id)
    state = jobs.wait(run_id, 60)
    assert state.status == "cancelled" and time.time() - started < 10
    assert jobs.store.get(run_id).status == "cancelled"
    jobs.close()


@pytest.mark.slow
def test_killed_process_is_interrupted_then_resumed(small_breast_npz, tmp_path, isolated_home):
    """SIGKILL a real `meddistill run` in its second epoch; the index stays readable, resume finishes it."""
    out = tmp_path / "run"
    env = {**os.environ, "MEDDISTILL_HOME": str(isolated_home)}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "meddistill",
            "run",
            "--data",
            str(small_breast_npz),
            "--preset",
            "smoke",
            "--teacher-epochs",
            "4",
            "--student-epochs",
            "2",
            "--out",
            str(out),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    metrics = out / "metrics.json"
    deadline = time.time() + 300
    while time.time() < deadline:
        if metrics.is_file() and len(json.loads(metrics.read_text()).get("teacher", [])) >= 1:
            break
        time.sleep(0.05)
    time.sleep(0.3)  # into the second epoch
    process.send_signal(signal.SIGKILL)
    process.wait(30)

    store = RunStore()
    record = store.list()[0]
    assert record.status == "running"  # what the dead process left
    assert main(["runs"]) == 0  # listing notices the process is gone
    assert store.get(record.id).status == "interrupted"
    saved = json.loads((out / "checkpoints" / "teacher.state.json").read_text())
    assert 1 <= saved["epoch"] < 4
    assert main(["resume", record.id]) == 0
    assert store.get(record.id).status == "done"
    report = json.loads((out / "report.json").read_text())
    assert set(report["models"]) == {"teacher", "student_scratch", "student_kd"}
    epochs = [h["epoch"] for h in json.loads(metrics.read_text())["teacher"]]
    assert epochs == list(range(1, len(epochs) + 1)) and len(epochs) > saved["epoch"]  # continued, not restarted


def test_resume_refuses_a_done_run(small_breast_npz, capsys):
    assert main(["run", "--data", str(small_breast_npz), "--preset", "smoke", "--teacher", "resnet_narrow"]) == 0
    record = RunStore().list()[0]
    assert main(["resume", record.id]) == 0
    assert "already done" in capsys.readouterr().out


# --- random and mutated files (property-based) --------------------------------------------------


def _valid_npz_bytes(tmp: Path) -> bytes:
    path = tmp / "v.npz"
    rng = np.random.default_rng(0)
    np.savez(
        path,
        train_images=rng.integers(0, 255, (12, 8, 8), dtype=np.uint8),
        train_labels=np.arange(12) % 2,
        test_images=rng.integers(0, 255, (4, 8, 8), dtype=np.uint8),
        test_labels=np.arange(4) % 2,
    )
    return path.read_bytes()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_check_data_on_mutated_npz_never_crashes(tmp_path, data, capsys):
    base = _valid_npz_bytes(tmp_path)
    kind = data.draw(st.sampled_from(["truncate", "flip", "random"]))
    if kind == "truncate":
        blob = base[: data.draw(st.integers(0, len(base)))]
    elif kind == "flip":
        blob = bytearray(base)
        for _ in range(data.draw(st.integers(1, 20))):
            blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
        blob = bytes(blob)
    else:
        blob = data.draw(st.binary(max_size=4000))
    path = tmp_path / "mutated.npz"
    path.write_bytes(blob)
    before = set(tmp_path.rglob("*"))
    code = main(["check-data", str(path)])
    assert code in (0, 2)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    if code == 2:
        assert "mutated.npz" in captured.err
    assert set(tmp_path.rglob("*")) == before  # nothing written beside it


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    members=st.lists(
        st.tuples(
            st.sampled_from(["a/", "b/", "../", "/abs/", "a/../../", "c\\\\", ""]),
            st.sampled_from(["x.png", "y.jpg", "z.dcm", "n.txt", "k.zip"]),
            st.binary(max_size=300),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_store_upload_on_random_zips(tmp_path, isolated_home, members):
    from meddistill.data.store import datasets_dir
    from meddistill.data.uploads import store_upload

    archive = tmp_path / "upload.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for folder, name, payload in members:
            z.writestr(folder + name, payload)
    try:
        source = store_upload(archive.read_bytes(), "upload.zip")
        assert datasets_dir() in Path(source).resolve().parents
    except DataError as error:
        assert "upload" in str(error) or any(name in str(error) for _, name, _ in members)
        assert not [p for p in datasets_dir().iterdir()], "a refused upload left files behind"
    outside = [p for p in tmp_path.parent.rglob("x.png")]
    assert all(datasets_dir() in p.resolve().parents for p in outside)


def test_weights_of_another_layout_are_refused(tmp_path):
    """resnet18 changed its small-image stem (layout 2): old weights have the same shapes but another network,
    so they are refused with the way out, and load into resnet18_fullres, which keeps the old layout."""
    old = tmp_path / "teacher.safetensors"
    save_weights(create_model("resnet18_fullres", 2, 1, 28).state_dict(), old)  # as before layouts were recorded
    with pytest.raises(WeightsError, match="saved with layout 1 of resnet18, which is now layout 2.*resnet18_fullres"):
        load_weights(create_model("resnet18", 2, 1, 28), old)
    load_weights(create_model("resnet18_fullres", 2, 1, 28), old)
    new = tmp_path / "new.safetensors"
    save_weights(create_model("resnet18", 2, 1, 28), new)
    load_weights(create_model("resnet18", 2, 1, 28), new)
