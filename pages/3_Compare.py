"""Compare: teacher, scratch student and distilled student side by side; several runs in one table."""

import json
from pathlib import Path

import streamlit as st

from meddistill.compare import distillation_gain, model_rows, report_csv, runs_rows
from meddistill.figures import confusion_figure, reliability_figure, roc_figure
from meddistill.pipeline import LABELS
from pages.common.ui import guarded, manager, page, pick_run

page("Compare", "Is the small model good enough? Accuracy, calibration and speed of all three models on the held-out test split.")
jobs = manager()

record = pick_run("compare_run")
if record is None:
    st.info("No finished run yet. Train one on the Train page (the BreastMNIST demo on the home page takes a few minutes).")
    st.stop()
report = record.report()
if report is None:
    st.warning(f"Run {record.id} has no report.json; it may have been written by an older version.")
    st.stop()

data = report["dataset"]
st.caption(f"{data['name']}: {', '.join(data['classes'])} · test split of {data['sizes']['test']:,} images at {data['train_image_size']} px · measured on {report.get('device', 'cpu')}")

teacher, kd = report["models"]["teacher"], report["models"]["student_kd"]
cols = st.columns(5)
cols[0].metric("Teacher ACC", f"{teacher['test']['acc']:.1%}")
cols[1].metric("Student ACC", f"{kd['test']['acc']:.1%}", f"{kd['test']['acc'] - teacher['test']['acc']:+.1%} vs teacher")
gain = distillation_gain(report)
if gain:
    cols[2].metric("Distillation gain", f"{gain['acc']:+.1%} ACC", f"{gain['auc']:+.3f} AUC vs scratch")
cols[3].metric("Speed-up", f"{teacher['latency_ms_b1'] / kd['latency_ms_b1']:.1f}x", f"{kd['latency_ms_b1']:.2f} ms per image")
cols[4].metric("Compression", f"{teacher['params'] / kd['params']:.0f}x", f"{kd['size_mb']:.2f} MB")

st.dataframe(model_rows(report), hide_index=True, width="stretch")
if "agreement" in report:
    st.markdown("**Agreement with the teacher** (same predicted class): " + " · ".join(f"{LABELS[k]} {v:.1%}" for k, v in report["agreement"].items()))

st.subheader("Confusion matrices")
matrix_cols = st.columns(len(report["models"]))
for column, (role, model) in zip(matrix_cols, report["models"].items()):
    column.plotly_chart(confusion_figure(model["test"]["confusion_matrix"], data["classes"], LABELS.get(role, role)), width="stretch", key=f"cm_{role}")
curve_cols = st.columns(2)
curve_cols[0].plotly_chart(roc_figure(report), width="stretch")
curve_cols[1].plotly_chart(reliability_figure(report), width="stretch")

st.subheader("Downloads")
dl = st.columns(4)
weights = record.path / "student_kd.safetensors"
dl[0].download_button("Student weights (.safetensors)", weights.read_bytes(), file_name=f"{record.id}-student_kd.safetensors", disabled=not weights.is_file())
dl[1].download_button("Report (JSON)", json.dumps(report, indent=2), file_name=f"{record.id}-report.json", mime="application/json")
dl[2].download_button("Report (CSV)", report_csv(report), file_name=f"{record.id}-report.csv", mime="text/csv")
with dl[3]:
    export_format = st.selectbox("Export the student", ["torchscript", "onnx", "onnx-int8"], key="export_format")
    if st.button("Export and check", key="export"):
        with st.spinner("Exporting and checking against the PyTorch model on the test split..."), guarded("Export failed"):
            from meddistill.export import export_run

            st.session_state["export"] = export_run(record.path, export_format)
    done = st.session_state.get("export")
    if done and Path(done["path"]).is_file() and Path(done["path"]).parent.parent == record.path:
        st.caption(f"{done['format']}: max probability difference {done['max_abs_prob_diff']:.2e}, agreement {done['agreement']:.1%}, test ACC {done['test_acc']:.1%}")
        st.download_button(f"Download {Path(done['path']).name}", Path(done["path"]).read_bytes(), file_name=f"{record.id}-{Path(done['path']).name}")

st.subheader("Several runs")
finished = [r for r in jobs.store.list() if r.status == "done"]
picked = st.multiselect("Runs to compare", [r.id for r in finished], default=[r.id for r in finished[:5]])
rows = [(r, r.report()) for r in finished if r.id in picked]
with guarded("Could not compare these runs"):
    st.dataframe(runs_rows([(r, rep) for r, rep in rows if rep]), hide_index=True, width="stretch")
