"""Compare: teacher, scratch student and distilled student side by side; several runs in one table."""

import json
from pathlib import Path

import streamlit as st

from meddistill.evaluation.export import WEB, available_formats
from meddistill.reports.card import model_card
from meddistill.reports.export import export_run
from meddistill.reports.tables import (
    findings_rows,
    guard_lines,
    headline,
    model_rows,
    report_csv,
    runs_rows,
    search_summary,
    teacher_line,
    verdict_lines,
)
from meddistill.store.index import RunStatus
from meddistill.store.layout import LABELS
from meddistill.views.figures import confusion_figure, findings_figure, reliability_figure, roc_figure
from pages.common.trust_panel import trust_panel
from pages.common.ui import guarded, manager, md, page, pick_run

page(
    "Compare", "Is the small model good enough? Accuracy, calibration and speed of all three models on the test split."
)
jobs = manager()

record = pick_run("compare_run")
if record is None:
    st.info("No finished run yet. Train one on the Train page (the BreastMNIST demo on the home page takes minutes).")
    st.stop()
report = record.report()
if report is None:
    st.warning(f"Run {record.id} has no report; it may have been written by an older version.")
    st.stop()

data = report.dataset
st.caption(
    f"{data['name']}: {', '.join(data['classes'])} · test split of {data['sizes']['test']:,} images "
    f"at {data['train_image_size']} px · measured on {report.device} · {teacher_line(report)}"
)
checks = report.warnings
if checks:  # the val and test figures below include these copies
    st.warning("**Data check**\n" + "\n".join(f"- {md(line)}" for line in checks), icon=":material/content_copy:")
cards = headline(report)
for column, (label, value, delta) in zip(st.columns(len(cards)), cards):
    column.metric(label, value, delta, delta_color="off" if "leak-free" in label else "normal")

for tone, text in guard_lines(report):  # decided on val: is the teacher worth distilling, which student leads
    getattr(st, tone)(text, icon=":material/school:")
for tone, text in verdict_lines(report):  # paired bootstrap over the test images
    getattr(st, tone)(text, icon=":material/balance:")
if search_summary(report):
    with st.expander(search_summary(report)):
        st.dataframe(report.search["candidates"], hide_index=True, width="stretch")
st.dataframe(model_rows(report), hide_index=True, width="stretch")
if report.agreement:
    shares = " · ".join(f"{LABELS[k]} {v:.1%}" for k, v in report.agreement.items())
    st.markdown(f"**Agreement with the teacher** (the same answer; per finding at 0.5 for findings): {shares}")

per_finding = findings_rows(report)
if per_finding:
    st.subheader("Per finding")
    st.caption(
        "AUC and average precision on test; sensitivity and specificity at each finding's threshold chosen on val. "
        "A finding with no positive test image has no AUC."
    )
    st.dataframe(per_finding, hide_index=True, width="stretch", key="findings_table")
    st.plotly_chart(findings_figure(report), width="stretch", key="findings_chart")
else:
    st.subheader("Confusion matrices")
    matrix_cols = st.columns(len(report.models))
    for column, (role, model) in zip(matrix_cols, report.models.items()):
        figure = confusion_figure(model.test.confusion_matrix, data["classes"], LABELS.get(role, role))
        column.plotly_chart(figure, width="stretch", key=f"cm_{role}")
if report.trust is None:
    curve_cols = st.columns(2)
    curve_cols[0].plotly_chart(roc_figure(report), width="stretch")
    curve_cols[1].plotly_chart(reliability_figure(report), width="stretch")
trust_panel(record, report)

st.subheader("Downloads")
dl = st.columns(4)
weights = record.folder.weights("student_kd")
if weights.is_file():
    dl[0].download_button(
        "Student weights (.safetensors)", weights.read_bytes(), file_name=f"{record.id}-{weights.name}"
    )
else:
    dl[0].caption("This run has no distilled-student weights to download.")
dl[1].download_button(
    "Report (JSON)",
    json.dumps(report.to_dict(), indent=2),
    file_name=f"{record.id}-report.json",
    mime="application/json",
)
dl[2].download_button("Report (CSV)", report_csv(report), file_name=f"{record.id}-report.csv", mime="text/csv")
with dl[3]:
    export_format = st.selectbox("Export the student", available_formats(), key="export_format")
    if st.button("Export and check", key="export"):
        with (
            st.spinner("Exporting and checking against the PyTorch model on the test split..."),
            guarded("Export failed"),
        ):
            st.session_state["export"] = export_run(record.path, export_format)
    done = st.session_state.get("export")
    if done and Path(done["path"]).is_file() and Path(done["path"]).parent.parent == record.path:
        st.caption(
            f"{done['format']}: max probability difference {done['max_abs_prob_diff']:.2e}, "
            f"agreement {done['agreement']:.1%}, test ACC {done['test_acc']:.1%}"
        )
        exported = Path(done["path"])
        st.download_button(f"Download {exported.name}", exported.read_bytes(), file_name=f"{record.id}-{exported.name}")

st.subheader("Model card")
st.caption(
    "One self-contained HTML page to hand to a colleague or an ethics board: data and splits, settings, every model "
    "with 95 % intervals, calibration, deployed latency, example cases with both maps, reviews and limitations "
    "(print it to PDF from the browser). The same as `meddistill card RUN --out card.html`."
)
card_key = f"card_{record.id}"
if st.button("Prepare the model card", key="prepare_card"):
    with st.spinner("Explaining example cases with both models..."), guarded("Could not write the model card"):
        st.session_state[card_key] = model_card(record.path)
if st.session_state.get(card_key):
    st.download_button(
        "Download model card", st.session_state[card_key], file_name=f"{record.id}-model-card.html", mime="text/html"
    )

if report.dataset.get("spatial_dims") == 3:
    st.caption(
        "The offline browser page reads 2D scans; export this run's student of volumes as ONNX "
        "(`meddistill export RUN --format onnx`) for a viewer that reads volumes."
    )
else:
    st.subheader("The student in a clinician's browser")
    student = report.headline if report.headline in report.models else "student_kd"
    st.caption(
        f"One HTML file with the headline student ({LABELS[student].lower()}, int8) and ONNX Runtime Web inside: it "
        "opens from a USB stick or an e-mail with no install, no server and no network, reads a PNG, JPEG or DICOM "
        "scan and shows the calibrated probabilities with the run's operating point and test figures. The same as "
        f"`meddistill export RUN --format web --model {student}`."
    )
    page_key = f"web_{record.id}_{student}"
    if st.button("Prepare the offline page", key="prepare_web"):
        with (
            st.spinner("Quantizing the student and checking it on the test split..."),
            guarded("Could not write the page"),
        ):
            st.session_state[page_key] = export_run(record.path, WEB, role=student)
    made = st.session_state.get(page_key)
    if made and Path(made["path"]).is_file():
        st.caption(
            f"Checked on the test split: agreement with the PyTorch model {made['agreement']:.1%}, test ACC "
            f"{made['test_acc']:.1%}, {made['size_bytes'] / 1e6:.1f} MB."
        )
        st.download_button(
            "Download the offline page (HTML)",
            Path(made["path"]).read_bytes(),
            file_name=f"{record.id}-{student}.html",
            mime="text/html",
            key="download_web",
        )

st.subheader("Several runs")
finished = [r for r in jobs.store.list() if r.status == RunStatus.DONE]
picked = st.multiselect("Runs to compare", [r.id for r in finished], default=[r.id for r in finished[:5]])
rows = [(r, r.report()) for r in finished if r.id in picked]
with guarded("Could not compare these runs"):
    st.dataframe(runs_rows([(r, rep) for r, rep in rows if rep]), hide_index=True, width="stretch")
