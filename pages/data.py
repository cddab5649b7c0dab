"""Data: upload or pick a dataset, see what is in it."""

import re

import streamlit as st

from meddistill.data.medmnist_source import medmnist_flags, medmnist_path
from meddistill.data.options import DataOptions
from meddistill.data.summary import describe_splits, leakage_lines
from meddistill.data.uploads import store_upload, zip_csvs
from meddistill.views.dashboard import (
    csv_column_choices,
    data_options_for,
    dataset_choices,
    load_for_preview,
    sample_grid,
)
from meddistill.views.figures import class_counts_figure
from pages.common.ui import guarded, md, page

page("Data", "Bring a dataset: it is checked, stored once under MEDDISTILL_HOME, and can be picked again later.")

upload_tab, medmnist_tab, stored_tab = st.tabs(["Upload", "MedMNIST by name", "Stored datasets"])


def csv_pickers(data: bytes) -> dict:
    """Column pickers for a labels CSV inside the zip, with a preview of its first rows (nothing stored yet)."""
    tables = zip_csvs(data)
    if not tables:
        return {}
    name = st.selectbox("CSV in the archive", list(tables), key="csv_pick") if len(tables) > 1 else next(iter(tables))
    header, rows = tables[name]
    st.markdown(f"**{md(name)}**: first rows")
    st.dataframe(rows, width="stretch", hide_index=True)
    guess = csv_column_choices(header, rows)
    use = st.checkbox(
        "Take the labels from this CSV",
        value=guess["file"] is not None and guess["label"] is not None,
        key="csv_use",
        help="Off: the class folders give the labels and the CSV is ignored (and listed as ignored).",
    )
    if not use or not header:
        return {}
    cols, none = st.columns(4), "(none)"
    picked = {
        "file_column": cols[0].selectbox("File column", header, index=guess["file"] or 0, key="col_file"),
        "label_column": cols[1].selectbox("Label column", header, index=guess["label"] or 0, key="col_label"),
    }
    for col, role, title in ((cols[2], "split", "Split column"), (cols[3], "group", "Patient column")):
        index = guess[role] + 1 if guess[role] is not None else 0
        value = col.selectbox(title, [none, *header], index=index, key=f"col_{role}")
        if value != none:
            picked[f"{role}_column"] = value
    taken = set(picked.values())
    others = [c for c in header if c not in taken]
    subgroups = st.multiselect(
        "Subgroup columns",
        others,
        default=[c for c in others if SUBGROUP_HINTS.search(c)],
        key="col_subgroups",
        help="Columns such as sex, age, view position or site: Compare and the model card give every model's test "
        "figures per group, and flag a group that does significantly worse.",
    )
    if subgroups:
        picked["subgroup_columns"] = subgroups
    return picked


SUBGROUP_HINTS = re.compile(r"\b(sex|gender|age|view|position|site|hospital|scanner|manufacturer)\b", re.I)

with upload_tab:
    uploaded = st.file_uploader(
        "A MedMNIST .npz, or a .zip of images: class folders (optionally under Train/ Val/ Test/ or Training/ "
        "Testing/), or a labels CSV with any column names",
        type=["npz", "zip"],
        key="upload",
    )
    if uploaded is not None:
        data = uploaded.getvalue()
        picked = csv_pickers(data) if uploaded.name.lower().endswith(".zip") else {}
        with st.expander("Patients and duplicates"):
            pattern = st.text_input(
                "Patient key pattern (regular expression over file names; its first group is the patient)",
                key="group_pattern",
                placeholder=r"^(person\d+|(?:NORMAL2-)?IM-\d+)",
                help="Splits made by MedDistill then keep each patient's images together.",
            )
            drop = st.checkbox("Drop val/test images that duplicate a training image", key="drop_duplicates")
        if pattern:
            picked["group_pattern"] = pattern
        if drop:
            picked["drop_duplicates"] = True
        if st.button("Check and store", type="primary", key="store_upload"):
            with st.spinner(f"Checking {uploaded.name}..."), guarded("Upload refused"):
                source = store_upload(data, uploaded.name, DataOptions(**picked))
                st.session_state["dataset"] = str(source)
                st.session_state["data_options"] = picked
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
            st.session_state["data_options"] = {}
with stored_tab:
    choices = dataset_choices()
    if not choices:
        st.info("Nothing stored yet: upload a dataset or load a MedMNIST set.")
    else:
        label = st.selectbox("Stored dataset", list(choices), key="stored_pick")
        if st.button("Use this dataset", key="use_stored"):
            st.session_state["dataset"] = choices[label]
            st.session_state["data_options"] = {}

source = st.session_state.get("dataset")
if not source:
    st.info("No dataset picked yet.")
    st.stop()

with guarded("This dataset cannot be used"):
    dataset = load_for_preview(source, data_options_for(source, st.session_state.get("data_options")))
    summary = dataset.summary()
    provenance = summary["provenance"]
    st.success(
        f"Ready: {summary['name']} — {len(summary['classes'])} classes, {sum(summary['sizes'].values()):,} images.",
        icon=":material/check_circle:",
    )
    cols = st.columns(4)
    cols[0].metric("Train", f"{summary['sizes']['train']:,}")
    cols[1].metric("Validation", f"{summary['sizes']['val']:,}")
    cols[2].metric("Test", f"{summary['sizes']['test']:,}")
    cols[3].metric("Image size", f"{summary['image_size']} px · {'grey' if summary['channels'] == 1 else 'colour'}")
    st.markdown(f"**Layout**: {md(provenance.get('layout') or provenance.get('kind', ''))}")
    st.markdown(f"**Splits**: {md(describe_splits(provenance.get('splits', '')))}")
    ignored = provenance.get("ignored") or {}
    if ignored.get("count"):
        with st.expander(f"{ignored['count']} file(s) ignored"):
            st.dataframe([{"file": path, "reason": reason} for path, reason in ignored["examples"]], hide_index=True)
    for line in leakage_lines(provenance.get("leakage", {})):
        if line.startswith("warning"):
            st.warning(line.removeprefix("warning: ").capitalize(), icon=":material/content_copy:")
        else:
            st.caption(line.capitalize())
    st.plotly_chart(class_counts_figure(summary), width="stretch")
    st.subheader("Samples per class")
    for name, samples in sample_grid(dataset, per_class=8).items():
        st.markdown(f"**{md(name)}**")
        if samples:
            st.image([image for _, image in samples], caption=[n for n, _ in samples], width=96)
    st.page_link("pages/train.py", label="Train on this dataset", icon=":material/model_training:")
