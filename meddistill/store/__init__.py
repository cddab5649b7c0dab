"""What a run leaves on disk: the run folder (``layout``), the run index with statuses (``index``) and the
clinicians' reviews kept beside it (``reviews``)."""

from meddistill.store.index import STATUSES, RunRecord, RunStore, open_run
from meddistill.store.layout import LABELS, ROLES, RunFolder, load_trained
from meddistill.store.reviews import VERDICTS, ReviewStore

__all__ = [
    "LABELS",
    "ROLES",
    "STATUSES",
    "VERDICTS",
    "ReviewStore",
    "RunFolder",
    "RunRecord",
    "RunStore",
    "load_trained",
    "open_run",
]
