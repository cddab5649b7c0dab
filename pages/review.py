"""Review: go through cases, record whether you agree with the student, export the log."""

import streamlit as st

from meddistill.runs.reviews import VERDICTS, ReviewStore
from meddistill.views.cases import FILTER_LABELS, FILTERS, case_label, case_table, filter_cases
from pages.common.ui import dataset_for, guarded, md, page, pick_run

page(
    "Review",
    "A case list with both models' predictions; record agree / disagree / unsure with a note. Reviews are kept with "
    "the run.",
)


record = pick_run("review_run")
if record is None:
    st.info("No finished run yet. Train one on the Train page first.")
    st.stop()

with guarded("Could not open this run"):
    reviews = ReviewStore()
    summary = record.report()["dataset"]
    test = dataset_for(str(record.path)).splits["test"]
    cases = case_table(record.path, summary["classes"], [test.name(i) for i in range(len(test))])
    latest = reviews.latest(record.id)
    left, right = st.columns([2, 1])
    which = left.radio("Show", FILTERS, horizontal=True, format_func=FILTER_LABELS.get)
    order = right.selectbox("Sort by", ["case", "student confidence", "teacher confidence"])
    shown = sorted(filter_cases(cases, which), key=lambda r: r[order])
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
    st.caption(f"{len(shown)} of {len(cases)} cases · {len(latest)} reviewed")
    if shown:
        case = st.selectbox("Case to review", shown, format_func=case_label)
        image_col, form_col = st.columns([1, 2])
        image_col.image(test.image(case["case"]), caption=case["name"], width=240, clamp=True)
        with form_col.form("review"):
            st.markdown(
                f"Teacher: **{md(case['teacher'])}** ({case['teacher confidence']:.0%}) · Student: "
                f"**{md(case['student'])}** ({case['student confidence']:.0%})"
            )
            previous = latest.get(str(case["case"]), {})
            verdict = st.radio(
                "Do you agree with the student?",
                VERDICTS,
                index=VERDICTS.index(previous["verdict"]) if previous else 2,
                horizontal=True,
            )
            note = st.text_area("Note", previous.get("note", ""), max_chars=2000)
            reviewer = st.text_input("Reviewer (optional)", previous.get("reviewer", ""), max_chars=200)
            if st.form_submit_button("Save review", type="primary"):
                reviews.record(record.id, case["case"], verdict, note, reviewer)
                st.success("Saved.")
    st.download_button(
        "Export cases and reviews (CSV)",
        reviews.export_csv(record.id, cases),
        file_name=f"{record.id}-reviews.csv",
        mime="text/csv",
    )
