"""MedDistill home: what it does, the three steps, the device, the recent runs."""

import streamlit as st

from meddistill.runs.quickstart import quickstart_config
from meddistill.views.dashboard import demo_estimate
from pages.common.ui import guarded, manager, page, runs_frame

page("MedDistill", "Small, fast models you can check before you trust them.")

st.markdown(
    "MedDistill trains a large **teacher** network on your medical images and distills it into a small **student**. "
    "It then shows, side by side, whether the student can be trusted: accuracy, calibration, latency, and where each "
    "model looks on each scan."
)

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

st.divider()
st.subheader("New here? One click")
estimate = demo_estimate()
st.write(
    "Train on BreastMNIST (780 breast ultrasound images, 28 px) with the fast CPU preset"
    + (f": {estimate} of training on this machine (estimated from timed steps)." if estimate else ".")
)
if st.button("Start the BreastMNIST demo", type="primary", key="quickstart"):
    with guarded("Could not start the demo"):
        run_id = manager().submit(quickstart_config())
        st.session_state["run_id"] = run_id
        st.switch_page("pages/train.py")

st.divider()
st.subheader("Recent runs")
runs = manager().store.list()[:10]
if not runs:
    st.info("No runs yet. Start the demo above, or go to Data to bring your own images.")
else:
    st.dataframe(runs_frame(runs), hide_index=True, width="stretch")
