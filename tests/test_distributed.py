"""`torchrun --nproc_per_node=2 -m meddistill run` on CPU (gloo): complete run folder, world size,
metrics equal one process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from meddistill import RunStore
from meddistill.data.tensors import Batches
from meddistill.evaluation import classification_metrics, predict
from meddistill.store.layout import ROLES, load_trained

pytestmark = pytest.mark.slow


def test_torchrun_two_processes(small_breast_npz, tmp_path, isolated_home):
    out = tmp_path / "cluster-run"
    env = {**os.environ, "MEDDISTILL_HOME": str(isolated_home), "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "meddistill",
        "run",
        "--data",
        str(small_breast_npz),
        "--preset",
        "smoke",
        "--teacher",
        "resnet_narrow",
        "--teacher-epochs",
        "2",
        "--student-epochs",
        "2",
        "--out",
        str(out),
    ]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]

    for name in (
        "config.json",
        "report.json",
        "metrics.json",
        "dataset.json",
        "predictions.npz",
        *(f"{r}.safetensors" for r in ROLES),
    ):
        assert (out / name).is_file(), name
    config = json.loads((out / "config.json").read_text())
    assert config["world_size"] == 2
    report = json.loads((out / "report.json").read_text())
    assert report["config"]["world_size"] == 2
    records = RunStore().list()
    assert len(records) == 1 and records[0].status == "done"  # only rank 0 wrote the index

    from meddistill.views.cases import run_dataset

    dataset = run_dataset(out)
    test = Batches(dataset.splits["test"], dataset.channels, report["dataset"]["train_image_size"])
    for role in ROLES:
        model, _, _ = load_trained(out, role)
        single = classification_metrics(dataset.splits["test"].labels, predict(model, test))
        for key in ("acc", "balanced_acc", "auc", "f1", "confusion_matrix"):
            assert np.allclose(single[key], report["models"][role]["test"][key], atol=1e-6), (role, key)


def test_import_cluster_run_into_the_index(small_breast_npz, tmp_path, isolated_home, monkeypatch):
    from meddistill.cli import main

    out = tmp_path / "elsewhere"
    monkeypatch.setenv("MEDDISTILL_HOME", str(tmp_path / "cluster-home"))
    assert (
        main(
            [
                "run",
                "--data",
                str(small_breast_npz),
                "--preset",
                "smoke",
                "--teacher",
                "resnet_narrow",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    monkeypatch.setenv("MEDDISTILL_HOME", str(isolated_home))
    assert RunStore().list() == []
    assert main(["import", str(out)]) == 0
    record = RunStore().list()[0]
    assert record.status == "done" and record.path == out.resolve() and record.report()["models"]
