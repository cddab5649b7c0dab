"""Train: pick the models and settings, start, watch the curves live, cancel or resume."""

import time

import streamlit as st

from meddistill.distillation import available_methods, method_summary
from meddistill.services.teachers import check_teacher
from meddistill.settings.config import PRESETS
from meddistill.settings.declarations import page_settings
from meddistill.settings.files import settings_text
from meddistill.settings.sources import AUTO_METHOD, PRETRAINED_DEFAULTS
from meddistill.store.index import ACTIVE, RunStatus
from meddistill.tracking import available_trackers
from meddistill.views.dashboard import (
    config_from_fields,
    data_options_for,
    dataset_choices,
    dataset_shape,
    plan_text,
    preset_values,
)
from meddistill.views.figures import training_curves_figure
from meddistill.views.live import live_view
from pages.common.settings_form import section_fields, setting_widget
from pages.common.teacher_picker import model_box, teacher_picker
from pages.common.ui import guarded, manager, page, run_label, runs_frame

page("Train", "Teacher first, then the same student twice: from scratch (the baseline) and distilled from the teacher.")
jobs = manager()

# The live panel's refresh. Each refresh redraws the chart in the browser, which shares the CPU with training:
# with a 1 s refresh the demo took 141 s from the dashboard against 83 s from the command line; with 3 s, 94 s
# against 86 s (benchmarks/dashboard_speed.py on an AMD EPYC, docs/benchmarks.md); rebuilding the chart at most every
# 12 s gave 82 s against 87 s held to AVX2 (the command line: 77 s), one run each, within run-to-run variation.
REFRESH_SECONDS = 3.0
# While a run is active the chart is rebuilt at most this often; the refreshes in between send the same figure again.
CHART_SECONDS = 12.0
PRESET_LABELS = {
    "cpu": "Fast (CPU, minutes)",
    "thorough": "Thorough (GPU recommended)",
    "smoke": "Smoke test (seconds)",
}
choices = dataset_choices()
current = st.session_state.get("dataset")
if current and current not in choices.values():
    choices = {f"{current} (selected)": current, **choices}

with st.expander("New run", expanded=not jobs.active()):
    if not choices:
        st.info("No dataset yet: pick or upload one on the Data page first.")
        st.page_link("pages/data.py", label="Open Data", icon=":material/folder_open:")
    else:
        labels = list(choices)
        default = next((i for i, label in enumerate(labels) if choices[label] == current), 0)
        data_label = st.selectbox("Dataset", labels, index=default)
        preset = st.radio(
            "Preset",
            list(PRESETS),
            format_func=PRESET_LABELS.get,
            horizontal=True,
            help="Fills the settings below; change any of them.",
        )
        left, middle, right = st.columns(3)
        source = choices[data_label]
        picked = st.session_state.get("data_options") if source == current else None
        options = data_options_for(source, picked)
        shape = dataset_shape(source, options)  # read once and cached (the model pickers use it too)
        native = shape.native
        p = preset_values(preset, native, shape.spatial_dims)  # the preset's defaults, adapted to the data
        teacher_fields = teacher_picker(left, source, options, p)
        uses_file = bool(teacher_fields.get("teacher_weights")) and teacher_fields.get("pretrained") is None
        pretrained = teacher_fields.get("pretrained")
        default_student = PRETRAINED_DEFAULTS["student"] if pretrained == "both" else p["student"]
        key = f"student_{pretrained == 'both'}"
        student = model_box(left, "Student", default_student, key, (source, options), p["max_image_size"], "student")
        methods = available_methods()
        method = left.selectbox(
            "Distillation method",
            [*methods, AUTO_METHOD],
            index=methods.index(p["method"]),
            format_func=lambda name: "Automatic (chosen on validation)" if name == AUTO_METHOD else name,
            help="  \n".join(f"**{name}**: {method_summary(name)}" for name in methods)
            + "  \n**Automatic**: trains kd, dkd, kd_ls and dist (4 student trainings, the same on any machine) and "
            "keeps the best on validation AUC.",
        )
        p["teacher_epochs"] = 0 if uses_file else p["teacher_epochs"]
        fields = dict(student=student, method=method)
        fields |= section_fields(middle, "distillation", p, preset)
        schedule = {s.name: s for s in page_settings("schedule")}
        fields["teacher_epochs"] = setting_widget(
            middle,
            schedule["teacher_epochs"],
            p["teacher_epochs"],
            preset,
            minimum=0 if uses_file else 1,
            suffix="_file" if uses_file else "",
        )
        fields |= section_fields(middle, "schedule", p, preset, skip=("teacher_epochs",))
        fields |= section_fields(right, "input", p, preset)
        if page_settings("advanced"):
            with st.expander("Advanced settings"):
                fields |= section_fields(st, "advanced", p, preset)
                fields["log_to"] = st.multiselect(
                    "Log to",
                    available_trackers(),
                    default=p["log_to"],
                    key="log_to",
                    help="Also log the run to TensorBoard (event files in the run folder) or MLflow (a file store "
                    'in MEDDISTILL_HOME/mlruns): pip install -e ".[tracking]".',
                )
        fields.update(teacher_fields)  # after the image size: a reused teacher keeps the side it was trained at
        fields.update(options.given())  # CSV columns, patient key: as on the Data page
        with guarded("These settings cannot be used"):
            picked = ("teacher", "student") if pretrained else ()
            config = config_from_fields(preset, source, fields, picked, native, shape.spatial_dims)
            if config.teacher_source().from_file:
                with st.spinner("Checking the teacher against the dataset..."):
                    st.success(check_teacher(config))  # refused here, before the run is queued, if it does not fit
            st.markdown("**Plan**")
            st.text(plan_text(config))
            st.download_button(
                "Settings file (YAML)",
                settings_text(config),
                file_name="run.yaml",
                mime="text/yaml",
                key="settings_file",
                help="The settings of the run this starts: `meddistill run --config run.yaml` runs it headless.",
            )
            if st.button("Start training", type="primary"):
                st.session_state["run_id"] = jobs.submit(config)
                st.toast("Queued: training starts as soon as the worker is free.")


def _current_record():
    runs = jobs.store.list()
    wanted = jobs.active() or st.session_state.get("run_id")
    return next((r for r in runs if r.id == wanted), runs[0] if runs else None)


@st.fragment(run_every=REFRESH_SECONDS)
def live_panel() -> None:
    record = _current_record()
    if record is None:
        st.info("No run yet. Set up a run above and press Start.")
        return
    view = live_view(jobs, record)
    st.subheader(f"Run {view.run_id}")
    st.caption(run_label(record))
    st.progress(view.fraction, text=view.line or view.status.capitalize())
    if view.status in ACTIVE:
        st.session_state[f"active_{view.run_id}"] = True
        if st.button("Cancel this run", key=f"cancel_{view.run_id}"):
            jobs.cancel(view.run_id)
            st.toast("Cancelling: the run stops within a batch.")
    elif view.status in (RunStatus.INTERRUPTED, RunStatus.CANCELLED, RunStatus.FAILED):
        if view.message:
            st.warning(view.message)
        if st.button("Resume from the last completed epoch", key=f"resume_{view.run_id}"):
            with guarded("Could not resume"):
                jobs.resume(view.run_id)
    elif view.status == RunStatus.DONE:
        if st.session_state.pop(f"active_{view.run_id}", False):
            st.rerun(scope="app")  # once, so the sidebar's job status and the form catch up with the finished run
        st.success("Done. Compare the three models, or see where they look.")
        st.page_link("pages/compare.py", label="Open Compare", icon=":material/leaderboard:")
    drawn = view.points
    if view.points:
        drawn_at, figure, drawn = st.session_state.get(f"chart_{view.run_id}", (0.0, None, 0))
        if figure is None or view.status not in ACTIVE or time.monotonic() - drawn_at >= CHART_SECONDS:
            figure, drawn = training_curves_figure(view.batch_loss, view.epochs), view.points
            st.session_state[f"chart_{view.run_id}"] = (time.monotonic(), figure, drawn)
        st.plotly_chart(figure, width="stretch", key=f"curves_{view.run_id}")
    updated = f" (the chart is updated every {CHART_SECONDS:g} s while training)" if view.status in ACTIVE else ""
    st.caption(f"{drawn} points plotted{updated}")
    queued = jobs.queued()
    if queued:
        st.markdown("**Waiting in the queue**")
        st.dataframe(runs_frame([jobs.store.get(q) for q in queued]), hide_index=True)


live_panel()
