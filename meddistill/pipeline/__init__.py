"""Training a run: where the teacher comes from, the students, the method search, evaluation and deployment,
all driven by ``execute``."""

from meddistill.pipeline.runner import execute

__all__ = ["execute"]
