"""Services used by both the command line and the pages: background jobs, teacher checks, the demo's settings."""

from meddistill.services.jobs import JobManager, JobState
from meddistill.services.quickstart import quickstart_config

__all__ = ["JobManager", "JobState", "quickstart_config"]
