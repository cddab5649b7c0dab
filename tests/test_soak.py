"""Soak: 20 consecutive short runs through the job manager leak neither threads nor memory.

Figures are printed and written to MEDDISTILL_ARTIFACTS/soak.json (quoted in docs/reliability.md).
"""

from __future__ import annotations

import gc
import json
import os
import threading
from pathlib import Path

import pytest

from meddistill.services.jobs import JobManager
from meddistill.settings.config import RunConfig

pytestmark = pytest.mark.slow
RUNS = 20


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def test_twenty_runs_no_leak(small_breast_npz):
    jobs = JobManager()
    config = RunConfig.from_preset("smoke", data=str(small_breast_npz), teacher="resnet_narrow", latency_runs=20)
    samples = []
    for index in range(RUNS):
        run_id = jobs.submit(config)
        assert jobs.wait(run_id, 300).status == "done"
        gc.collect()
        samples.append(
            {
                "run": index + 1,
                "rss_kb": _status("VmRSS"),
                "os_threads": _status("Threads"),
                "python_threads": threading.active_count(),
            }
        )
    jobs.close()
    third, last = samples[2], samples[-1]
    growth = last["rss_kb"] / third["rss_kb"] - 1
    figures = {
        "runs": RUNS,
        "rss_mb_after_run_3": third["rss_kb"] / 1024,
        "rss_mb_after_run_20": last["rss_kb"] / 1024,
        "rss_growth": growth,
        "os_threads_after_run_3": third["os_threads"],
        "os_threads_after_run_20": last["os_threads"],
        "python_threads_after_run_3": third["python_threads"],
        "python_threads_after_run_20": last["python_threads"],
        "samples": samples,
    }
    out = Path(os.environ.get("MEDDISTILL_ARTIFACTS", Path(__file__).resolve().parent.parent / "artifacts"))
    out.mkdir(parents=True, exist_ok=True)
    (out / "soak.json").write_text(json.dumps(figures, indent=2))
    print(json.dumps({k: v for k, v in figures.items() if k != "samples"}, indent=2))
    assert last["python_threads"] <= third["python_threads"]
    assert last["os_threads"] <= third["os_threads"]
    assert growth < 0.10, f"resident memory grew {growth:.1%} from run 3 to run {RUNS}"
