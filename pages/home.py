"""MedDistill home: what it does, the latest run at a glance (or the one-click demo), the recent runs."""

import streamlit as st

from meddistill.reports.tables import guard_lines, headline, teacher_line
from meddistill.services.quickstart import quickstart_config
from meddistill.store.index import RunStatus
from meddistill.views.cases import case_table, showcase_cases
from meddistill.views.dashboard import demo_estimate
from pages.common.ui import dataset_for, guarded, manager, md, page, run_label, runs_frame

page("MedDistill", "Small, fast models you can check before you trust them.")

st.markdown(
    "MedDistill trains a large **teacher** network on your medical images and distills it into a small **student**. "
    "It then shows, side by side, whether the student can be trusted: accuracy, calibration, latency, and where each "
    "model looks on each scan."
)

runs = manager().store.list()
latest = next((r for r in runs if r.status == RunStatus.DONE and r.report()), None)


def show_steps() -> None:
    """The three steps, each with its page links."""
    steps = st.columns(3)
    with steps[0]:
        st.subheader("1 · Data")
        st.write("Upload a MedMNIST .npz, a .zip of class folders (PNG, JPEG, DICOM), or pick a MedMNIST set.")
        st.page_link("pages/data.py", label="Open Data", icon=":material/folder_open:")
    with steps[1]:
        st.subheader("2 · Train")
        st.write("Train the teacher, a student from scratch and a distilled student, and watch the curves live.")
        st.page_link("pages/train.py", label="Open Train", icon=":material/model_training:")
    with steps[2]:
        st.subheader("3 · Compare and explain")
        st.write("Accuracy, calibration and speed side by side; Grad-CAM maps of both models on each scan.")
        st.page_link("pages/compare.py", label="Open Compare", icon=":material/leaderboard:")
        st.page_link("pages/explain.py", label="Open Explain", icon=":material/search:")
        st.page_link("pages/review.py", label="Open Review", icon=":material/rate_review:")


def demo_button() -> None:
    estimate = demo_estimate()
    st.write(
        "Train on BreastMNIST (780 breast ultrasound images, 28 px) with the fast CPU preset"
        + (f": {estimate} of training on this machine (estimated from timed steps)." if estimate else ".")
    )
    if st.button("Start the BreastMNIST demo", type="primary", key="quickstart"):
        with guarded("Could not start the demo"):
            config = quickstart_config()
            st.session_state["run_id"] = manager().submit(config)
            st.session_state["dataset"] = config.data  # the Train page offers it for the next run
            st.switch_page("pages/train.py")


if latest is None:
    show_steps()
    st.divider()
    st.subheader("New here? One click")
    demo_button()
else:
    report = latest.report()
    data = report.dataset
    st.subheader(f"Latest run: {data['name']}")
    st.caption(f"{run_label(latest)} · {teacher_line(report)}")
    cards = headline(report)
    for column, (label, value, delta) in zip(st.columns(len(cards)), cards):
        column.metric(label, value, delta, delta_color="off" if "leak-free" in label else "normal")
    for tone, text in guard_lines(report):  # decided on val: which student leads, is the teacher worth distilling
        if tone == "warning":
            st.warning(text, icon=":material/school:")
        else:
            st.caption(text)
    with guarded("Could not show the test scans of this run"):
        test = dataset_for(str(latest.path)).splits["test"]
        cases = case_table(latest.path, data["classes"], [test.name(i) for i in range(len(test))])
        picked = showcase_cases(cases, n=8)
        st.markdown("**A few test scans** (disagreements and mistakes first): truth · teacher · distilled student")
        for row_start in range(0, len(picked), 4):
            for column, case in zip(st.columns(4), picked[row_start : row_start + 4]):
                mark = "✓" if case["student correct"] else "✗"
                column.image(test.preview(case["case"]), width="stretch", clamp=True, output_format="PNG")
                column.caption(
                    f"{mark} truth **{md(case['truth'])}** · teacher {md(case['teacher'])} · "
                    f"student {md(case['student'])} ({case['student confidence']:.0%})"
                )
    st.page_link("pages/compare.py", label="Compare the three models", icon=":material/leaderboard:")
    st.page_link("pages/review.py", label="Review cases with both models' maps", icon=":material/rate_review:")
    with st.expander("Try the one-click demo"):
        demo_button()
    st.divider()
    show_steps()

st.divider()
st.subheader("Recent runs")
if not runs:
    st.info("No runs yet. Start the demo above, or go to Data to bring your own images.")
else:
    st.dataframe(runs_frame(runs[:10]), hide_index=True, width="stretch")
