"""What every page shares: the job manager, the sidebar, and errors shown in one sentence.

This folder is not a page: ``app.py`` lists the pages with ``st.navigation``.
"""

from __future__ import annotations

import contextlib
import datetime
from pathlib import Path

import streamlit as st

from meddistill.errors import MedDistillError
from meddistill.paths import home
from meddistill.services.jobs import JobManager
from meddistill.store.index import RunStatus, RunStore
from meddistill.store.layout import RunFolder
from meddistill.views.cases import run_dataset
from meddistill.views.dashboard import describe_device
from pages.common.menu import draw_menu

STATUS_ICONS = {
    RunStatus.QUEUED: "·",
    RunStatus.RUNNING: "▶",
    RunStatus.DONE: "✓",
    RunStatus.FAILED: "✗",
    RunStatus.CANCELLED: "■",
    RunStatus.INTERRUPTED: "!",
}


@st.cache_resource
def _manager_for(root: str) -> JobManager:
    return JobManager(RunStore(root))


def manager() -> JobManager:
    """The one job manager of this MEDDISTILL_HOME, kept across reruns, pages and browser sessions."""
    return _manager_for(str(home()))


@st.cache_resource(max_entries=2)
def dataset_for(run_path: str):
    """The dataset a run was trained on (kept between reruns)."""
    return run_dataset(run_path)


@st.cache_resource(max_entries=4)
def run_models(run_path: str):
    """A finished run's teacher and distilled student in eval mode (kept between reruns and pages)."""
    folder = RunFolder(run_path)
    return folder.load_model("teacher"), folder.load_model("student_kd")


def page(title: str, caption: str) -> None:
    """The titled menu (the sidebar holds nothing else, so its first frame is the menu), the title, the caption and
    a status line: the device, the run training now and the queue (the page config is set once, in app.py)."""
    with st.sidebar:
        draw_menu()
    st.title(title)
    st.caption(caption)
    jobs = manager()
    status = [describe_device()]
    if jobs.active():
        status.append(f":material/sync: training run {jobs.active()}")
    if jobs.queued():
        status.append(f"{len(jobs.queued())} run(s) waiting in the queue")
    st.caption(" · ".join(status))


@contextlib.contextmanager
def guarded(action: str):
    """Show a library error as one sentence instead of a traceback."""
    try:
        yield
    except MedDistillError as error:
        st.error(str(error), icon=":material/error:")
    except ValueError as error:
        st.error(f"{action}: {error}", icon=":material/error:")


def when(timestamp: float) -> str:
    return datetime.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M")


def run_label(record) -> str:
    """'✅ 20261130-142501-a3f9c2 · breastmnist · resnet18 → tiny_cnn'."""
    return (
        f"{STATUS_ICONS.get(record.status, '')} {record.id} · {Path(record.dataset).stem} · "
        f"{record.teacher} → {record.student}"
    )


def pick_run(key: str, statuses: tuple[str, ...] = (RunStatus.DONE,)):
    """A select box of runs with the given statuses; returns the record or None."""
    runs = [r for r in manager().store.list() if r.status in statuses]
    if not runs:
        return None
    preferred = st.session_state.get("run_id")
    index = next((i for i, r in enumerate(runs) if r.id == preferred), 0)
    record = st.selectbox("Run", runs, index=index, format_func=run_label, key=key)
    st.session_state["run_id"] = record.id
    return record


def runs_frame(records) -> list[dict]:
    """Rows for a table of runs (table cells are never rendered as Markdown or HTML)."""
    return [
        {
            "status": f"{STATUS_ICONS.get(r.status, '')} {r.status}",
            "run": r.id,
            "dataset": Path(r.dataset).name,
            "teacher": r.teacher,
            "student": r.student,
            "created": when(r.created),
            "note": r.message,
        }
        for r in records
    ]


def md(text: str) -> str:
    """Escape Markdown in user-provided text (file and class names) before it goes into st.markdown."""
    return "".join("\\" + c if c in "\\`*_{}[]()<>#+-.!|~$" else c for c in str(text))
