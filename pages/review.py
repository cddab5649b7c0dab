"""Review: go through cases with both models' maps beside the scan, record agree / disagree / unsure from the
keyboard, export the log."""

import streamlit as st

from meddistill.store.layout import LABELS
from meddistill.store.reviews import VERDICTS, ReviewStore
from meddistill.tasks import DEFAULT_TASK, task_for
from meddistill.views.cases import FILTER_LABELS, FILTERS, case_label, case_table, filter_cases
from meddistill.views.review import SHORTCUTS, review_images
from pages.common.ui import dataset_for, guarded, md, page, pick_run, run_models
from pages.common.volume_view import volume_planes

page(
    "Review",
    "One case at a time: the scan as stored, where the teacher and the student looked, and your verdict on the "
    "student. Keys: A agree · D disagree · U unsure · N next · P previous. Reviews are kept with the run.",
)


def four_pictures(pictures: dict) -> None:
    """The scan, both maps and their difference, side by side, at the scan's stored size."""
    height, width = pictures["scan"].shape[:2]
    captions = {
        "scan": f"Scan as stored ({width}x{height} px)",
        "teacher": f"Teacher's {pictures['method']}",
        "student": f"Student's {pictures['method']}",
        "difference": "Difference: red = teacher looks more, blue = student",
    }
    for column, (name, caption) in zip(st.columns(4), captions.items()):
        column.image(pictures[name], caption=caption, width="stretch", clamp=True, output_format="PNG")  # lossless


record = pick_run("review_run")
if record is None:
    st.info("No finished run yet. Train one on the Train page first.")
    st.stop()

with guarded("Could not open this run"):
    reviews = ReviewStore()
    summary = record.report().dataset
    task = task_for(summary.get("task", DEFAULT_TASK))
    test = dataset_for(str(record.path)).splits["test"]
    cases = case_table(record.path, summary["classes"], [test.name(i) for i in range(len(test))])
    latest = reviews.latest(record.id)
    left, right = st.columns([2, 1])
    which = left.radio("Show", FILTERS, horizontal=True, format_func=FILTER_LABELS.get)
    order = right.selectbox("Sort by", ["case", "student confidence", "teacher confidence"])
    finding = None
    if task.findings:  # several findings per image: review one finding's maps, optionally only its cases
        finding = st.selectbox("Finding", ["any finding", *summary["classes"]], key="review_finding")
        finding = None if finding == "any finding" else finding
    shown = sorted(filter_cases(cases, which, finding), key=lambda r: r[order])
    st.caption(f"{len(shown)} of {len(cases)} cases · {len(latest)} reviewed")
    if not shown:
        st.info("No case matches this filter.")
        st.stop()

    key = f"review_pos_{record.id}_{which}_{order}_{finding}"
    position = min(st.session_state.get(key, 0), len(shown) - 1)
    case = st.selectbox("Case to review", shown, index=position, format_func=case_label, key=f"pick_{key}_{position}")
    position = shown.index(case)
    st.session_state[key] = position
    teacher, student = run_models(str(record.path))
    with st.spinner("Computing both models' maps..."):
        target = summary["classes"].index(finding) if finding else None
        pictures = review_images(
            teacher,
            student,
            test.image(case["case"]),
            summary["channels"],
            summary["train_image_size"],
            target=target,
            activation=task.activation,
            spatial_dims=summary.get("spatial_dims", 2),
        )
    st.markdown(
        f"**{md(case['name'])}** · truth **{md(case['truth'])}** · {LABELS['teacher']}: **{md(case['teacher'])}** "
        f"({case['teacher confidence']:.0%}) · {LABELS['student_kd']}: **{md(case['student'])}** "
        f"({case['student confidence']:.0%})"
    )
    if "pair" in pictures:  # a volume: three planes with slice sliders
        volume_planes(test.image(case["case"]), pictures["pair"], 0.45, key=f"review_planes_{record.id}")
    else:
        four_pictures(pictures)
    st.caption(
        f"Both maps explain the class **{md(summary['classes'][pictures['target']])}** on one colour scale (blue = "
        f"low, red = high), computed at {summary['train_image_size']} px and shown on the stored scan; map agreement "
        f"(Pearson) {pictures['agreement']['pearson']:.2f}. Hover an image and press its expand button to enlarge."
    )

    previous = latest.get(str(case["case"]), {})
    if previous:
        st.info(
            f"Your last verdict on this case: {previous['verdict']}"
            + (f" ({previous['note']})" if previous.get("note") else "")
        )
    note = st.text_input(
        "Note (optional)", previous.get("note", ""), max_chars=2000, key=f"note_{record.id}_{case['case']}"
    )
    reviewer = st.text_input("Reviewer (optional)", st.session_state.get("reviewer", ""), max_chars=200)
    st.session_state["reviewer"] = reviewer
    buttons = st.columns(5)
    for column, verdict in zip(buttons, VERDICTS):
        if column.button(
            f"{verdict.capitalize()} ({SHORTCUTS[verdict].upper()})",
            key=f"v_{verdict}",
            shortcut=SHORTCUTS[verdict],
            type="primary" if verdict == "agree" else "secondary",
        ):
            reviews.record(record.id, case["case"], verdict, note, reviewer)
            st.session_state[key] = min(position + 1, len(shown) - 1)
            st.toast(f"Saved: {verdict}. Next case.")
            st.rerun()
    if buttons[3].button("Previous (P)", key="prev_case", shortcut=SHORTCUTS["previous"], disabled=position == 0):
        st.session_state[key] = position - 1
        st.rerun()
    if buttons[4].button("Next (N)", key="next_case", shortcut=SHORTCUTS["next"], disabled=position == len(shown) - 1):
        st.session_state[key] = position + 1
        st.rerun()

    with st.expander("All cases"):
        table = [{**r, "review": latest.get(str(r["case"]), {}).get("verdict", "")} for r in shown]
        st.dataframe(
            table,
            hide_index=True,
            width="stretch",
            column_config={
                "teacher confidence": st.column_config.ProgressColumn(format="percent", min_value=0, max_value=1),
                "student confidence": st.column_config.ProgressColumn(format="percent", min_value=0, max_value=1),
            },
        )
    st.download_button(
        "Export cases and reviews (CSV)",
        reviews.export_csv(record.id, cases),
        file_name=f"{record.id}-reviews.csv",
        mime="text/csv",
    )
