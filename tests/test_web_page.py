"""The student as one offline web page (issue 27): ``meddistill export RUN --format web`` writes one HTML file that
opens from ``file://`` in Chromium with the network off, reads real scans (a BreastMNIST PNG, pydicom-data DICOM
files, a chest X-ray JPEG) as the Python pipeline does, and shows the probabilities ONNX Runtime gives in Python."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from meddistill.cli.main import main
from meddistill.data.dicom import read_dicom_pixels
from meddistill.data.images import read_image
from meddistill.data.tensors import image_tensor
from meddistill.evaluation.export import onnx_runner
from meddistill.web import check_vendored, embedded_model
from meddistill.web.page import VENDOR, WASM
from tests.walkthrough import ARGS, CHROMIUM

# pydicom-data files the page reads: explicit and implicit VR, rescale and padding (CT), signed 16-bit MR, multi-frame
# (middle frame), 32-bit dose, RGB ultrasound.
READ = ("CT_small.dcm", "MR_small.dcm", "MR_small_implicit.dcm", "MR_small_padded.dcm", "emri_small.dcm", "rtdose.dcm")
READ_RGB = ("US1_UNCR.dcm",)
# ... and the ones it refuses in one sentence naming the file (compressed, big-endian, LUT tables, palette colour).
REFUSED = ("MR2_J2KI.dcm", "ExplVR_BigEnd.dcm", "mlut_18.dcm", "vlut_04.dcm", "OBXXXX1A.dcm")


def _dicom(name: str) -> Path:
    from pydicom.data import get_testdata_file

    found = get_testdata_file(name, download=False)
    if found is None:
        pytest.skip(f"{name} is not installed (pip install pydicom-data)")
    return Path(found)


def test_the_vendored_runtime_is_the_recorded_npm_release():
    record = check_vendored()
    assert record["package"] == "onnxruntime-web" and record["license"] == "MIT"
    assert re.fullmatch(r"\d+\.\d+\.\d+", record["version"]), "a pinned release, not a range or a dev build"
    wasm = gzip.decompress((VENDOR / WASM).read_bytes())
    assert hashlib.sha256(wasm).hexdigest() == record["files"][WASM]["uncompressed_sha256"]
    assert (VENDOR / "LICENSE").read_text().startswith("MIT License")


@pytest.fixture(scope="module")
def page(small_breast_npz, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("web")
    run = out / "run"
    args = ["run", "--data", str(small_breast_npz), "--preset", "smoke", "--threads", "1", "--out", str(run)]
    assert main(args) == 0
    assert main(["export", str(run), "--format", "web", "--out", str(out / "student.html")]) == 0
    return out / "student.html"


@pytest.mark.slow
def test_the_page_is_one_file_with_the_run_facts_and_its_model_checked(page):
    text = page.read_text(encoding="utf-8")
    run = page.parent / "run"
    report = json.loads((run / "report.json").read_text())
    info = _info(page)
    model = embedded_model(text)
    assert info["model_sha256"] == hashlib.sha256(model).hexdigest()
    assert info["model_sha256"] in text and "Not a medical device" in text
    assert info["run_id"] == report["run_id"] and info["classes"] == report["dataset"]["classes"]
    assert info["temperature"] == report["trust"]["models"]["student_kd"]["temperature"]
    assert info["operating"][0]["threshold"] == report["trust"]["models"]["student_kd"]["operating"][0]["threshold"]
    assert f"{report['models']['student_kd']['test']['acc']:.3f}" in info["figures"]["test accuracy"]
    assert set(info["versions"]) >= {"MedDistill", "onnxruntime-web", "ONNX opset", "torch"}
    assert not re.search(r'(src|href)\s*=\s*["\']?(https?:)?//', text), "nothing is loaded from elsewhere"
    assert "default-src 'none'" in text  # the page's CSP forbids any fetch
    checked = json.loads((run / "exports" / "student_kd.web.json").read_text())
    assert checked["max_abs_diff_vs_report"] < 0.05 and checked["agreement"] > 0.9  # int8 against fp32


def _info(page: Path) -> dict:
    return json.loads(re.search(r'id="info">(.*?)</script>', page.read_text(encoding="utf-8"), re.S).group(1))


def _python_probs(page: Path, image: np.ndarray) -> np.ndarray:
    """What ONNX Runtime in Python gives for the model the page embeds, on the Python pipeline's input."""
    info = _info(page)
    run = onnx_runner(embedded_model(page.read_bytes()), 1)
    logits = run(image_tensor(image, info["channels"], info["size"])[None])
    probs = torch.sigmoid(logits) if info["activation"] == "sigmoid" else torch.softmax(logits, dim=1)
    return probs.numpy()[0]


def _open_offline(playwright, page: Path, requests: list):
    """Chromium with the network off, the page opened from file:// and its model loaded."""
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
    tab = browser.new_context(offline=True).new_page()
    tab.on("request", lambda r: requests.append(r.url))
    tab.goto(page.as_uri())
    tab.wait_for_selector("#status[data-state=ready]", timeout=60_000)
    return browser, tab


def _shown(tab, path: Path) -> np.ndarray:
    tab.set_input_files("#file", str(path))
    tab.wait_for_selector(f'#probs[data-file="{path.name}"], #message:not(:empty)', timeout=30_000)
    assert tab.inner_text("#message") == "", path.name
    return np.array(json.loads(tab.get_attribute("#probs", "data-probs")))


def _chromium():
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install -y chromium)")
    return playwright


@pytest.mark.slow
def test_the_page_gives_onnx_runtimes_probabilities_offline_from_file_url(page, breast_npz, chest_folder, tmp_path):
    playwright = _chromium()
    png = tmp_path / "breastmnist_test_0.png"
    Image.fromarray(np.load(breast_npz)["test_images"][0]).save(png)
    jpeg = sorted((chest_folder / "test" / "PNEUMONIA").glob("*.jpeg"))[0]
    scans = {png: read_image(png), jpeg: read_image(jpeg)}
    scans |= {_dicom(n): read_dicom_pixels(_dicom(n)) for n in READ + READ_RGB}
    classes, requests = _info(page)["classes"], []
    with playwright.sync_playwright() as p:
        browser, tab = _open_offline(p, page, requests)
        for path, image in scans.items():
            assert np.abs(_shown(tab, path) - _python_probs(page, image)).max() < 1e-4, path.name
            assert classes[0] in tab.inner_text("#results") and " ms in this browser" in tab.inner_text("#timing")
        for name in REFUSED:
            tab.set_input_files("#file", str(_dicom(name)))
            tab.wait_for_selector("#message:not(:empty)", timeout=30_000)
            message = tab.inner_text("#message")
            assert message.startswith(name) and message.count(". ") <= 1, message
            assert tab.get_attribute("#probs", "data-probs") is None
        browser.close()
    assert requests and all(url.startswith(("file:", "blob:", "data:")) for url in requests), requests


@pytest.mark.slow
def test_a_page_for_several_findings_shows_each_findings_probability(data_dir, tmp_path):
    source = data_dir / "cxr14_sample"
    if not source.is_dir():
        pytest.skip(f"{source} not found")
    playwright = _chromium()
    run = tmp_path / "run"
    assert main(["run", "--data", str(source), "--preset", "smoke", "--threads", "1", "--out", str(run)]) == 0
    page = tmp_path / "findings.html"
    assert main(["export", str(run), "--format", "web", "--out", str(page)]) == 0
    assert _info(page)["activation"] == "sigmoid" and len(_info(page)["classes"]) == 14
    scan = sorted((source / "images").glob("*.png"))[0]
    requests = []
    with playwright.sync_playwright() as p:
        browser, tab = _open_offline(p, page, requests)
        shown = _shown(tab, scan)
        assert "operating threshold" in tab.inner_text("#decision")
        browser.close()
    assert np.abs(shown - _python_probs(page, read_image(scan))).max() < 1e-4
    assert all(url.startswith(("file:", "blob:", "data:")) for url in requests), requests
