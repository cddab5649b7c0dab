"""Explain: where do the teacher and the student look on this scan?"""

import streamlit as st

from meddistill.data.dicom import DICOM_SUFFIXES
from meddistill.data.images import IMAGE_SUFFIXES
from meddistill.explain import OPAQUE_NOTE, available_explainers, explainer_label, overlay
from meddistill.services.scans import scan_from_upload
from meddistill.store.layout import LABELS
from meddistill.tasks import DEFAULT_TASK, task_for
from meddistill.views.cases import (
    FILTER_LABELS,
    FILTERS,
    calibrated_answer,
    case_label,
    case_table,
    explain_case,
    filter_cases,
    test_set_agreement,
    window_presets,
    window_settings,
)
from meddistill.views.figures import faithfulness_figure
from pages.common.ui import dataset_for, guarded, md, page, pick_run, run_models
from pages.common.volume_view import volume_planes

page(
    "Explain",
    "Grad-CAM and other saliency maps of the teacher and the distilled student, side by side, with how much they "
    "agree.",
)


record = pick_run("explain_run")
if record is None:
    st.info("No finished run yet. Train one on the Train page first.")
    st.stop()

with guarded("Could not open this run"):
    teacher, student = run_models(str(record.path))
    summary = record.folder.summary()
    classes = summary["classes"]
    task = task_for(summary.get("task", DEFAULT_TASK))
    finding = None
    if task.findings:  # several findings per image: the maps explain the one picked, the cases can be filtered by it
        finding = st.selectbox("Finding", classes, key="finding")
    volumes = summary.get("spatial_dims") == 3
    top = st.columns([1, 2])
    scans = ["From the test split"] if volumes else ["From the test split", "Upload a scan"]
    source = top[0].radio("Scan", scans, horizontal=True)
    image, title, truth = None, "", None
    if source == "From the test split":
        dataset = dataset_for(str(record.path))
        test = dataset.splits["test"]
        rows = case_table(record.path, classes, [test.name(i) for i in range(len(test))])
        which = top[1].radio("Show", FILTERS, horizontal=True, format_func=FILTER_LABELS.get)
        rows = filter_cases(
            rows, which, finding if task.findings and st.toggle("Only cases with this finding") else None
        )
        if not rows:
            st.info("No test scan matches this filter.")
            st.stop()
        row = st.selectbox("Case", rows, format_func=case_label)
        image, title, truth = test.image(row["case"]), row["name"], row["truth"]
    else:
        uploaded = st.file_uploader(
            "A PNG, JPEG or DICOM scan (DICOM is de-identified before anything is stored)",
            type=[s.lstrip(".") for s in (*IMAGE_SUFFIXES, *DICOM_SUFFIXES)],
            key="scan",
        )
        if uploaded is None:
            st.info("Upload a scan to explain.")
            st.stop()
        scan = scan_from_upload(uploaded.getvalue(), uploaded.name)
        image, title = scan.image, scan.name
        if scan.dicom is not None:
            dicom = scan.dicom
            left, right = st.columns([1, 2])
            preset = left.selectbox("Window preset", window_presets(dicom))
            window = window_settings(dicom, preset)
            center = right.slider(
                "Window level (center)", window["low"], window["high"], window["center"], key=f"c_{preset}"
            )
            width = right.slider("Window width", 1.0, window["max_width"], window["width"], key=f"w_{preset}")
            image = dicom.render(center, width)
            with st.expander("DICOM attributes (identifying ones removed)"):
                st.dataframe([{"attribute": k, "value": v} for k, v in dicom.metadata.items()], hide_index=True)

    controls = st.columns(2)
    methods = available_explainers(teacher)
    if len(methods) < len(available_explainers()):
        st.caption(OPAQUE_NOTE)
    method = controls[0].selectbox("Method", methods, format_func=explainer_label)
    opacity = controls[1].slider("Overlay opacity", 0.0, 1.0, 0.45, 0.05)
    with st.spinner("Computing the maps..."):
        target = classes.index(finding) if finding is not None else None
        result = explain_case(
            teacher,
            student,
            image,
            summary["channels"],
            summary["train_image_size"],
            method,
            target=target,
            activation=task.activation,
            spatial_dims=summary.get("spatial_dims", 2),
        )

    st.markdown(
        f"**{md(title)}**"
        + (f" · true {'findings' if task.findings else 'class'}: **{md(truth)}**" if truth else "")
        + f" · maps explain the {'finding' if task.findings else 'class'} **{md(classes[result['target']])}**"
    )
    answers = {}
    for role in ("teacher", "student"):
        explanation = result[role]
        probs = calibrated_answer(
            record.path, "teacher" if role == "teacher" else "student_kd", explanation.probabilities
        )
        said = f"{classes[explanation.predicted]} ({max(probs):.1%})"
        if task.findings:
            said = f"{classes[result['target']]} {probs[result['target']]:.1%}"
        answers[role] = (said, "calibrated: " + " · ".join(f"{c}: {p:.1%}" for c, p in zip(classes, probs)))
    if volumes:
        for role, label in (("teacher", LABELS["teacher"]), ("student", LABELS["student_kd"])):
            st.write(f"{label}: **{md(answers[role][0])}** · {answers[role][1]}")
        volume_planes(image, result, opacity, key=f"planes_{record.id}")
    else:
        cols = st.columns(3)
        cols[0].image(
            image,
            caption=f"Scan as stored ({image.shape[1]}x{image.shape[0]} px); the models see it at "
            f"{summary['train_image_size']} px",
            width="stretch",
            clamp=True,
            output_format="PNG",
        )
        for column, role, label in (
            (cols[1], "teacher", LABELS["teacher"]),
            (cols[2], "student", LABELS["student_kd"]),
        ):
            overlaid = overlay(image, result[role].saliency, opacity)
            column.image(overlaid, caption=f"{label}: {answers[role][0]}", width="stretch")
            column.caption(answers[role][1])
    agreement = result["agreement"]
    a, b = st.columns(2)
    a.metric(
        "Map agreement (Pearson)",
        f"{agreement['pearson']:.2f}",
        help="Correlation of the two maps, pixel by pixel: 1 = identical.",
    )
    b.metric(
        "Top-20% overlap (IoU)", f"{agreement['iou']:.2f}", help="Overlap of the 20% most salient pixels of each map."
    )
    st.markdown("**Does each map show what the model uses?**")
    for role, label in (("teacher", "The teacher's map"), ("student", "The student's map")):
        st.write(result["faithfulness"][role].sentence(f"{label} ({explainer_label(method)})"))
    st.plotly_chart(faithfulness_figure(result["faithfulness"]), width="stretch")
    st.caption(
        "RISE (Petsiuk et al., 2018): blocks at the map's own resolution are replaced by a blurred copy of the scan "
        "(deletion) or put back into it (insertion), in the map's order and in random orders (the mean of 5)."
    )

    st.subheader("Over the test split")
    if st.button("Compute the mean map agreement on up to 100 test scans", key="mean_agreement"):
        with st.spinner("Explaining up to 100 scans with both models..."):
            mean = test_set_agreement(
                teacher, student, dataset_for(str(record.path)), summary["train_image_size"], method=method
            )
        st.session_state[f"agreement_{record.id}_{method}"] = mean
    mean = st.session_state.get(f"agreement_{record.id}_{method}")
    if mean:
        st.metric(
            f"Mean agreement over {mean['images']} test scans",
            f"Pearson {mean['pearson']:.2f} · IoU {mean['iou']:.2f}",
        )
