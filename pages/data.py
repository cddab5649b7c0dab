"""Data: upload or pick a dataset, see what is in it."""

import streamlit as st

from meddistill.data.medmnist_source import medmnist_flags, medmnist_path
from meddistill.data.uploads import store_upload
from meddistill.views.dashboard import dataset_choices, load_for_preview, sample_grid
from meddistill.views.figures import class_counts_figure
from pages.common.ui import guarded, md, page

page("Data", "Bring a dataset: it is checked, stored once under MEDDISTILL_HOME, and can be picked again later.")

upload_tab, medmnist_tab, stored_tab = st.tabs(["Upload", "MedMNIST by name", "Stored datasets"])
with upload_tab:
    uploaded = st.file_uploader(
        "A MedMNIST .npz, or a .zip with one folder per class (PNG, JPEG, BMP, TIFF or DICOM; optional train/ val/ "
        "test/ folders, or a labels.csv with file,label)",
        type=["npz", "zip"],
        key="upload",
    )
    if uploaded is not None and st.session_state.get("uploaded_name") != (uploaded.name, uploaded.size):
        with st.spinner(f"Checking {uploaded.name}..."), guarded("Upload refused"):
            source = store_upload(uploaded.getvalue(), uploaded.name)
            st.session_state["dataset"] = str(source)
            st.session_state["uploaded_name"] = (uploaded.name, uploaded.size)
with medmnist_tab:
    flag = st.selectbox(
        "MedMNIST set",
        medmnist_flags(),
        index=medmnist_flags().index("breastmnist"),
        help="Downloaded once from the MedMNIST archive, then used from the cache.",
    )
    if st.button("Load", key="load_medmnist"):
        with st.spinner(f"Fetching {flag}..."), guarded("Could not load it"):
            st.session_state["dataset"] = str(medmnist_path(flag))
with stored_tab:
    choices = dataset_choices()
    if not choices:
        st.info("Nothing stored yet: upload a dataset or load a MedMNIST set.")
    else:
        label = st.selectbox("Stored dataset", list(choices), key="stored_pick")
        if st.button("Use this dataset", key="use_stored"):
            st.session_state["dataset"] = choices[label]

source = st.session_state.get("dataset")
if not source:
    st.info("No dataset picked yet.")
    st.stop()

with guarded("This dataset cannot be used"):
    dataset = load_for_preview(source)
    summary = dataset.summary()
    st.success(
        f"Ready: {summary['name']} — {len(summary['classes'])} classes, {sum(summary['sizes'].values()):,} images.",
        icon=":material/check_circle:",
    )
    cols = st.columns(4)
    cols[0].metric("Train", f"{summary['sizes']['train']:,}")
    cols[1].metric("Validation", f"{summary['sizes']['val']:,}")
    cols[2].metric("Test", f"{summary['sizes']['test']:,}")
    cols[3].metric("Image size", f"{summary['image_size']} px · {'grey' if summary['channels'] == 1 else 'colour'}")
    st.caption(f"Splits: {summary['provenance'].get('splits')}. Source kind: {summary['provenance'].get('kind')}.")
    st.plotly_chart(class_counts_figure(summary), width="stretch")
    st.subheader("Samples per class")
    for name, samples in sample_grid(dataset, per_class=8).items():
        st.markdown(f"**{md(name)}**")
        if samples:
            st.image([image for _, image in samples], caption=[n for n, _ in samples], width=96)
    st.page_link("pages/train.py", label="Train on this dataset", icon=":material/model_training:")
