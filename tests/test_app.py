"""AppTest checks of every page: empty state, upload, a tiny run polled to completion, Compare numbers."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
PAGES = ["pages/home.py", "pages/data.py", "pages/train.py", "pages/compare.py", "pages/explain.py", "pages/review.py"]
TIMEOUT = 60


def open_page(path: str) -> AppTest:
    """An AppTest of the whole app switched to ``path`` (so page links resolve as in the real app)."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    return at.switch_page(path)


@pytest.fixture(autouse=True)
def fresh_manager():
    """Each test gets a job manager over its own MEDDISTILL_HOME."""
    import streamlit as st

    from pages.common.ui import manager

    st.cache_resource.clear()
    yield
    manager().close()
    st.cache_resource.clear()


@pytest.mark.parametrize("path", PAGES)
def test_pages_with_no_data(path):
    at = open_page(path).run()
    assert not at.exception, at.exception
    assert at.title[0].value


def test_upload_valid_npz(breast_npz):
    at = open_page("pages/data.py").run()
    at.file_uploader(key="upload").upload("breastmnist.npz", breast_npz.read_bytes()).run()
    at.button(key="store_upload").click().run()
    assert not at.exception
    assert not at.error
    assert "Ready: breastmnist" in at.success[0].value
    assert [m.value for m in at.metric][:3] == ["546", "78", "156"]


def test_upload_bad_zip(tmp_path):
    at = open_page("pages/data.py").run()
    at.file_uploader(key="upload").upload("scans.zip", b"PK\x03\x04 this is not really a zip", "application/zip").run()
    at.button(key="store_upload").click().run()
    assert not at.exception
    assert 'scans.zip" is not a readable zip archive' in at.error[0].value


@pytest.mark.slow
def test_upload_zip_with_labels_csv_pick_columns(chest_folder, tmp_path):
    """A zip whose CSV names its columns 'img' and 'finding': preview, pick the columns, store, and the Train
    page's run uses them."""
    import io
    import zipfile

    buffer = io.BytesIO()
    rows = ["img,finding,patient,Sex"]
    with zipfile.ZipFile(buffer, "w") as archive:
        for cls in ("NORMAL", "PNEUMONIA"):
            for i, path in enumerate(sorted((chest_folder / "train" / cls).glob("*.jpeg"))[:8]):
                archive.write(path, f"xrays/images/{path.name}")
                rows.append(f"{path.name},{cls.lower()},{path.name[:9]},{'FM'[i % 2]}")
        archive.writestr("xrays/metadata.csv", "\n".join(rows) + "\n")
    at = open_page("pages/data.py").run()
    at.file_uploader(key="upload").upload("xrays.zip", buffer.getvalue(), "application/zip").run()
    assert at.dataframe[0].value.shape == (5, 4)  # the first rows, before anything is stored
    assert not at.checkbox(key="csv_use").value  # no column recognised: not used until the user picks
    at.checkbox(key="csv_use").check().run()
    at.selectbox(key="col_file").set_value("img")
    at.selectbox(key="col_label").set_value("finding").run()
    assert at.multiselect(key="col_subgroups").value == ["Sex"]  # recognised as a subgroup column, and offered
    at.button(key="store_upload").click().run()
    assert not at.exception and not at.error, at.error
    assert "Ready: xrays" in at.success[0].value
    assert at.session_state["data_options"]["subgroup_columns"] == ["Sex"]
    assert any("label column 'finding'" in m.value for m in at.markdown)
    at.switch_page("pages/train.py").run()
    assert not at.exception
    assert "finding" not in str(at.error)


def test_train_settings_follow_the_preset(small_breast_npz):
    at = open_page("pages/train.py")
    at.session_state["dataset"] = str(small_breast_npz)
    at.run()
    at.radio[0].set_value("cpu").run()
    boxes = {box.label: box.value for box in at.checkbox}
    assert boxes == {
        "Augment the teacher": True,
        "Augment the students": False,
        "Class-weighted loss": True,
        "Train the teacher on if it is not better than the scratch student": True,
    }
    at.radio[0].set_value("smoke").run()
    assert not any(box.value for box in at.checkbox)
    assert not at.exception


@pytest.mark.slow
def test_tiny_run_to_completion_then_compare(small_breast_npz):
    at = open_page("pages/train.py")
    at.session_state["dataset"] = str(small_breast_npz)
    at.run()
    at.radio[0].set_value("smoke").run()
    at.button[0].click().run()
    assert not at.exception
    from pages.common.ui import manager

    jobs = manager()
    run_id = at.session_state["run_id"]
    deadline = time.time() + 600
    seen_running = False
    while time.time() < deadline:
        at.run()
        assert not at.exception
        status = jobs.store.get(run_id).status
        seen_running |= status == "running"
        if status == "done":
            break
        time.sleep(1)
    assert jobs.store.get(run_id).status == "done"
    at.run()
    assert any("Done" in s.value for s in at.success)

    compare = open_page("pages/compare.py").run()
    assert not compare.exception
    report = jobs.store.get(run_id).report()
    figures = {r: m.test.acc for r, m in report.models.items()}
    if report.trust.models["teacher"].leak_free is not None:  # the cards lead with the leak-free figures
        figures = {r: m.leak_free["clean"]["acc"] for r, m in report.trust.models.items()}
    values = [m.value for m in compare.metric]
    assert values[:2] == [f"{figures['teacher']:.1%}", f"{figures[report.headline]:.1%}"]


@pytest.fixture(scope="module")
def finished_home(small_breast_npz, tmp_path_factory):
    """A MEDDISTILL_HOME with one real (tiny) finished run, trained once for the whole module."""
    from meddistill.cli import main

    home = tmp_path_factory.mktemp("app-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MEDDISTILL_HOME", str(home))
        assert main(["run", "--data", str(small_breast_npz), "--preset", "smoke", "--teacher", "resnet_narrow"]) == 0
    return home


@pytest.fixture()
def finished_run(finished_home, monkeypatch):
    """The finished run, with this test's MEDDISTILL_HOME pointed at its home."""
    from meddistill import RunStore

    monkeypatch.setenv("MEDDISTILL_HOME", str(finished_home))
    return RunStore().list()[0]


def test_compare_reads_finished_run(finished_run):
    at = open_page("pages/compare.py").run()
    assert not at.exception
    report = finished_run.report()
    leak = report.trust.models["teacher"].leak_free
    if leak is None:
        assert at.metric[0].value == f"{report['models']['teacher']['test']['acc']:.1%}"
        assert at.metric[1].value == f"{report.models[report.headline].test.acc:.1%}"
    else:  # the headline cards show the leak-free figures, the figure on every test image under them
        assert at.metric[0].value == f"{leak['clean']['acc']:.1%}"
        assert f"{report['models']['teacher']['test']['acc']:.1%} on all" in at.metric[0].delta
        assert at.metric[1].value == f"{report.trust.models[report.headline].leak_free['clean']['acc']:.1%}"
    teacher, student = report["models"]["teacher"], report["models"][report.headline]  # the student best on val
    deployed = next(m for m in at.metric if m.label == "Speed-up as deployed (ONNX Runtime)")
    fastest = min(student["onnx_latency_ms_b1"], student["onnx_int8_latency_ms_b1"])
    assert deployed.value == f"{teacher['onnx_latency_ms_b1'] / fastest:.1f}x"
    assert at.toggle(key="calibrated").value  # calibrated probabilities by default, raw one switch away
    assert at.selectbox(key="operating_rule").value == "youden"
    assert any("Referring the 10%" in info.value for info in at.info)
    assert _frame(at, "threshold") is not None and _frame(at, "temperature (val)") is not None


def _frame(at, column: str):
    """The first table on the page with ``column``, as a DataFrame."""
    return next((d.value for d in at.dataframe if column in d.value.columns), None)


def test_compare_chooses_the_operating_point_again_without_retraining(finished_run):
    at = open_page("pages/compare.py").run()
    youden = _frame(at, "threshold")
    at.selectbox(key="operating_rule").select("sensitivity").run()
    at.number_input(key="operating_target").set_value(0.95).run()
    assert not at.exception
    chosen = _frame(at, "threshold")
    assert "sensitivity 0.95 on val" in " ".join(c.value for c in at.caption)
    assert all(float(v.split("%")[0]) >= 95.0 for v in chosen["val sens / spec"])  # reached on val, per model
    assert list(chosen["threshold"]) != list(youden["threshold"])
    at.toggle(key="calibrated").set_value(False).run()
    assert "ECE calibrated" not in _frame(at, "temperature (val)").columns


def test_explain_test_split_and_upload(finished_run, tmp_path):
    at = open_page("pages/explain.py").run()
    assert not at.exception, at.exception
    assert [m.label for m in at.metric] == ["Map agreement (Pearson)", "Top-20% overlap (IoU)"]
    at.radio[1].set_value("disagree").run()
    assert not at.exception
    at.radio[0].set_value("Upload a scan").run()
    from pydicom.data import get_testdata_file

    at.file_uploader(key="scan").upload("CT_small.dcm", open(get_testdata_file("CT_small.dcm"), "rb").read()).run()
    assert not at.exception, at.exception
    shown = " ".join(str(df.value.to_dict()) for df in at.dataframe)
    assert "Modality" in shown and "CompressedSamples^CT1" not in shown  # the patient's name never reaches the page
    assert len(at.metric) == 2


def test_review_records_and_exports(finished_run):
    at = open_page("pages/review.py").run()
    assert not at.exception, at.exception
    assert [img.captions for img in at.get("image")][0] == ["Scan as stored (28x28 px)"]
    first = at.selectbox(key=next(k for k in (b.key for b in at.selectbox) if k and k.startswith("pick_"))).value
    at.text_input[0].input("Patch of consolidation, student right")
    at.button(key="v_agree").click().run()  # also the A key (st.button shortcut)
    assert not at.exception, at.exception
    from meddistill.store.reviews import ReviewStore

    latest = ReviewStore().latest(finished_run.id)
    assert latest[str(first["case"])]["verdict"] == "agree"
    assert latest[str(first["case"])]["note"] == "Patch of consolidation, student right"
    picked = next(b for b in at.selectbox if b.key and b.key.startswith("pick_")).value
    assert picked["case"] != first["case"]  # saving moved on to the next case
    at.button(key="prev_case").click().run()
    assert next(b for b in at.selectbox if b.key and b.key.startswith("pick_")).value["case"] == first["case"]
    assert any("1 reviewed" in c.value for c in at.caption)
    assert any("Your last verdict on this case: agree" in i.value for i in at.info)


def test_explain_mean_agreement_over_test_split(finished_run):
    at = open_page("pages/explain.py").run()
    at.button(key="mean_agreement").click().run()
    assert not at.exception, at.exception
    assert any(m.label.startswith("Mean agreement over 64 test scans") for m in at.metric)


def test_compare_without_student_weights(finished_run):
    """A run whose distilled-student weights are gone still opens on Compare (the download says why it is missing)."""
    weights = finished_run.folder.weights("student_kd")
    hidden = weights.with_suffix(".hidden")
    weights.rename(hidden)
    try:
        at = open_page("pages/compare.py").run()
        assert not at.exception, at.exception
        assert any("no distilled-student weights" in c.value for c in at.caption)
    finally:
        hidden.rename(weights)


def test_train_page_shows_the_plan_and_keeps_typed_epochs(small_breast_npz):
    at = open_page("pages/train.py")
    at.session_state["dataset"] = str(small_breast_npz)
    at.run()
    at.radio[0].set_value("cpu").run()
    plan = at.text[0].value
    assert "Teacher (resnet18): 38 epochs x 2 steps = 76 steps (the preset's 5 raised to reach 76 steps)" in plan
    at.number_input(key="teacher_epochs_cpu").set_value(1).run()
    plan = at.text[0].value
    assert "Teacher (resnet18): 1 epochs x 2 steps = 2 steps (as you gave it)" in plan
    assert "Estimated training time: about" in plan
    assert not at.exception


def test_train_page_automatic_method_shows_its_budget(small_breast_npz):
    at = open_page("pages/train.py")
    at.session_state["dataset"] = str(small_breast_npz)
    at.run()
    picker = next(box for box in at.selectbox if box.label == "Distillation method")
    assert "auto" in picker.options or "Automatic (chosen on validation)" in picker.options
    picker.set_value("auto").run()
    plan = at.text[0].value
    assert "Student (distilled) (tiny_cnn)" in plan and "4 times (--method auto trains 4 candidates" in plan
    assert not at.exception and not at.error


def test_train_page_teacher_from_imagenet_weights_uses_timm(small_breast_npz):
    at = open_page("pages/train.py")
    at.session_state["dataset"] = str(small_breast_npz)
    at.run()
    at.radio(key="teacher_source").set_value("Start from ImageNet weights").run()
    assert at.selectbox(key="t_pre").value == "timm/resnet18"
    assert any("M parameters" in c.value and "GFLOPs per 28-px image" in c.value for c in at.caption)
    assert "Teacher (timm/resnet18)" in at.text[0].value
    assert not at.exception and not at.error


@pytest.mark.slow
def test_train_page_reuses_a_finished_runs_teacher_after_checking_it(small_breast_npz):
    from meddistill.cli.main import main

    assert main(["run", "--data", str(small_breast_npz), "--preset", "smoke", "--threads", "1"]) == 0
    at = open_page("pages/train.py")
    at.session_state["dataset"] = str(small_breast_npz)
    at.run()
    at.radio(key="teacher_source").set_value("Reuse another run's teacher").run()
    assert at.selectbox(key="t_reuse").options
    assert at.number_input(key="teacher_epochs_cpu_file").value == 0  # used as is unless the user asks to fine-tune it
    assert "teacher.safetensors fits: 1 channel(s) at 28 px in, 2 outputs" in at.success[0].value
    assert "val ACC" in at.success[0].value and not at.exception and not at.error


@pytest.mark.slow
def test_review_shows_the_scan_and_maps_at_the_stored_resolution(chest_folder, tmp_path, monkeypatch):
    """224-px chest X-rays (real ones from ../shared/data, resized when stored), trained at 64 px: the Review page
    shows the scan, both maps and their difference at 224 x 224, losslessly."""
    from PIL import Image

    from meddistill.cli import main
    from tests.conftest import copy_xray_slice

    folder = copy_xray_slice(chest_folder, tmp_path / "xray", per_class=12, splits=("train", "test"))
    for path in folder.rglob("*.jpeg"):
        Image.open(path).convert("L").resize((224, 224)).save(path.with_suffix(".png"))
        path.unlink()
    args = ["run", "--data", str(folder), "--preset", "smoke", "--image-size", "64", "--threads", "1"]
    assert main(args) == 0
    from streamlit.delta_generator import DeltaGenerator

    shown, original = [], DeltaGenerator.image

    def record(self, image, *args, **kwargs):  # what the page hands to st.image: the pixels it displays
        shown.append((kwargs.get("caption"), getattr(image, "shape", None), kwargs.get("output_format")))
        return original(self, image, *args, **kwargs)

    monkeypatch.setattr(DeltaGenerator, "image", record)
    at = open_page("pages/review.py").run()
    assert not at.exception, at.exception
    assert [caption.split(" (")[0] for caption, _, _ in shown][:2] == ["Scan as stored", "Teacher's Grad-CAM"]
    assert shown[0][0] == "Scan as stored (224x224 px)" and len(shown) == 4
    for caption, shape, fmt in shown:
        assert shape[:2] == (224, 224) and fmt == "PNG", caption


def test_home_shows_the_latest_run_at_a_glance(finished_run):
    at = open_page("pages/home.py").run()
    assert not at.exception, at.exception
    report = finished_run.report()
    assert "Latest run: breastmnist" in [s.value for s in at.subheader]
    leak = report.trust.models["teacher"].leak_free  # the cards lead with the leak-free figure when there is one
    teacher = leak["clean"]["acc"] if leak else report.models["teacher"].test.acc
    assert at.metric[0].value == f"{teacher:.1%}"
    assert any(m.label == "Speed-up as deployed (ONNX Runtime)" for m in at.metric)
    assert len(at.get("image")) == 8 and sum("truth" in c.value for c in at.caption) == 8
    assert at.expander[0].label == "Try the one-click demo"


def test_train_page_starts_from_the_teacher_the_preset_picks_for_large_images(chest_folder, tmp_path):
    """A 224-px folder (trained at 64 px): the picker and the plan show the preset's large-image teacher, and
    leaving it as shown runs what the command line runs by default."""
    from meddistill.settings.presets import LARGE_IMAGES
    from tests.conftest import copy_xray_slice

    source = copy_xray_slice(chest_folder, tmp_path / "xray", per_class=8)
    at = open_page("pages/train.py")
    at.session_state["dataset"] = str(source)
    at.run()
    at.radio[0].set_value("cpu").run()
    teacher = LARGE_IMAGES["cpu"]["teacher"]
    assert f"Teacher ({teacher})" in at.text[0].value, at.text[0].value
    assert not at.exception


def test_compare_prepares_the_offline_page_of_the_headline_student(finished_run):
    at = open_page("pages/compare.py").run()
    at.button(key="prepare_web").click().run()
    assert not at.exception and not at.error
    report = finished_run.report()
    page = finished_run.path / "exports" / f"{report.headline}.html"
    assert page.is_file() and "Not a medical device" in page.read_text(encoding="utf-8")
    assert any("Checked on the test split: agreement" in c.value for c in at.caption)
