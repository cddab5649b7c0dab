"""Runs: the settings, the run folder layout, the index of runs, the pipeline that trains a run, and the
background job manager.

Everything about a run folder (its roles, file names, how to read a model back) lives in ``layout``.
"""

from meddistill.runs.config import PRESETS, RunConfig, default_preset
from meddistill.runs.export import export_run
from meddistill.runs.jobs import JobManager, JobState, run_recorded
from meddistill.runs.layout import LABELS, ROLES, RunFolder, load_trained
from meddistill.runs.pipeline import execute
from meddistill.runs.quickstart import quickstart_config
from meddistill.runs.reviews import VERDICTS, ReviewStore
from meddistill.runs.store import STATUSES, RunRecord, RunStore, open_run

__all__ = [
    "LABELS",
    "PRESETS",
    "ROLES",
    "STATUSES",
    "VERDICTS",
    "JobManager",
    "JobState",
    "ReviewStore",
    "RunConfig",
    "RunFolder",
    "RunRecord",
    "RunStore",
    "default_preset",
    "execute",
    "export_run",
    "load_trained",
    "open_run",
    "quickstart_config",
    "run_recorded",
]
