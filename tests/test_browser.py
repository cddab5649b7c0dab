"""The whole flow in a real browser: Debian's Chromium, driven by Playwright, against `streamlit run app.py`.

Upload BreastMNIST on Data, start a short run on Train and watch the loss curve
gain points, then read the teacher's and the student's accuracy on Compare.
Screenshots of each page go to MEDDISTILL_ARTIFACTS (default artifacts/).
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest

from tests.walkthrough import ARGS, CHROMIUM, MENU_LINKS, ROOT, headline_cards, start_server, stop_server, walk

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def artifacts() -> Path:
    path = Path(os.environ.get("MEDDISTILL_ARTIFACTS", ROOT / "artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _start_server(home: Path):
    try:
        return start_server(home)
    except RuntimeError as error:
        pytest.fail(str(error))


_stop_server = stop_server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One server for the whole-flow test, with its own MEDDISTILL_HOME."""
    home = tmp_path_factory.mktemp("browser-home")
    process, url = _start_server(home)
    yield url, home
    _stop_server(process)


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not installed (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


def _shows(field, value: str) -> bool:
    """True once exactly one element matches and it holds ``value`` (stale copies vanish after a rerun)."""
    from playwright.sync_api import Error

    try:
        return field.count() == 1 and field.input_value(timeout=1000) == value
    except Error:
        return False


def _points(page) -> int:
    text = page.get_by_text(re.compile(r"\d+ points plotted")).first.inner_text(timeout=30_000)
    return int(text.split()[0])


def test_upload_train_compare(server, browser, artifacts, breast_npz):
    url, home = server
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(60_000)

    page.goto(url)
    page.get_by_text("Recent runs").wait_for()
    titles = [text.strip().split("\n")[-1] for text in page.locator(MENU_LINKS).all_inner_texts()]
    assert titles == ["Home", "Data", "Train", "Compare", "Explain", "Review"]  # the icon's name comes first
    page.screenshot(path=str(artifacts / "home.png"), full_page=True)

    page.goto(f"{url}/data")
    page.locator("input[type=file]").set_input_files(str(breast_npz))
    page.get_by_role("button", name="Check and store").click()
    page.get_by_text("Ready: breastmnist").wait_for(timeout=120_000)
    page.get_by_text("Samples per class").wait_for()
    time.sleep(2)
    page.screenshot(path=str(artifacts / "data.png"), full_page=True)

    page.get_by_role("link", name="Train on this dataset").click()
    page.get_by_text("Smoke test (seconds)").click()
    for label in ("Teacher epochs", "Student epochs"):
        field = page.get_by_label(label, exact=True)
        deadline = time.time() + 60
        while not _shows(field, "1"):  # the preset's fields replace the old ones on the rerun
            assert time.time() < deadline, f"{label} did not switch to the smoke preset"
            time.sleep(0.2)
        field.fill("3")
        field.press("Enter")
    time.sleep(1)
    page.get_by_role("button", name="Start training").click()

    seen = []
    deadline = time.time() + 300
    while time.time() < deadline and len(set(seen)) < 3:
        try:
            seen.append(_points(page))
        except Exception:  # noqa: BLE001 - the panel re-renders every second
            pass
        time.sleep(1)
    assert len(set(seen)) >= 3 and seen == sorted(seen), f"the loss curve did not gain points: {seen}"
    page.locator(".js-plotly-plot").first.wait_for()
    page.get_by_text("New run").click()  # fold the settings so the live panel is in view
    time.sleep(1.5)
    page.screenshot(path=str(artifacts / "train.png"))

    page.get_by_text("Done. Compare the three models").wait_for(timeout=600_000)
    run_dir = next((home / "runs").iterdir())
    report = json.loads((run_dir / "report.json").read_text())

    page.get_by_role("link", name="Open Compare").click()
    page.get_by_text(re.compile(r"^Teacher ACC")).first.wait_for()
    page.locator(".js-plotly-plot").nth(3).wait_for()
    time.sleep(2)
    metrics = page.locator("[data-testid=stMetricValue]").all_inner_texts()
    assert metrics[:2] == headline_cards(report)
    page.screenshot(path=str(artifacts / "compare.png"), full_page=True)

    page.locator(MENU_LINKS).get_by_text("Explain").click()
    page.get_by_text("Map agreement (Pearson)").wait_for(timeout=120_000)
    page.get_by_text("Does each map show what the model uses?").wait_for(timeout=60_000)
    page.set_viewport_size({"width": 1400, "height": 1800})
    time.sleep(3)
    page.screenshot(path=str(artifacts / "explain.png"), full_page=True)
    page.close()


def test_switching_page_while_home_loads(browser, tmp_path):
    """A fresh server: clicking another page while Home still imports the library shows no error box.

    The first run of a page imports torch and the whole library (seconds). An import cycle once made a
    second page that started meanwhile fail with "cannot import name ... from partially initialized module".
    """
    for attempt, (target, title) in enumerate([("Compare", "Compare"), ("Explain", "Explain"), ("Train", "Train")]):
        process, url = _start_server(tmp_path / f"home-{attempt}")
        page = browser.new_page(viewport={"width": 1200, "height": 800})
        try:
            page.goto(url)
            page.locator(MENU_LINKS).get_by_text(target, exact=True).click(timeout=30_000)
            page.locator("h1").filter(has_text=title).wait_for(timeout=90_000)
            time.sleep(1)
            assert page.locator("[data-testid=stException]").count() == 0
            assert page.get_by_text("This app has encountered an error").count() == 0
        finally:
            page.close()
            log = _stop_server(process)
        assert "partially initialized module" not in log and "Traceback" not in log, log[-3000:]


def test_demo_from_home_to_model_card(browser, artifacts, tmp_path, breast_npz, monkeypatch):
    """Home -> demo -> Train (points on both charts) -> Compare -> Explain -> Review (the A key) -> model card."""
    home = tmp_path / "home"
    monkeypatch.setenv("MEDDISTILL_MEDMNIST_DIR", str(breast_npz.parent))
    process, url = _start_server(home)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(60_000)
    try:
        seen = walk(page, url, home, artifacts)
    finally:
        page.close()
        log = _stop_server(process)
    assert seen["titles"][0] == "Home" and seen["titles"] == ["Home", "Data", "Train", "Compare", "Explain", "Review"]
    loss_points, val_points = seen["points"]
    assert loss_points >= 2 and val_points >= 2, seen["points"]
    report = seen["report"]
    assert seen["metrics"][:2] == headline_cards(report)
    from meddistill.store.reviews import ReviewStore

    assert [r["verdict"] for r in ReviewStore(home).latest(report["run_id"]).values()] == ["agree"]
    card = seen["card"].read_text(encoding="utf-8")
    assert card.startswith("<!DOCTYPE html>") and "http" not in card and "agree: 1" in card
    assert "Traceback" not in log, log[-3000:]


@pytest.mark.skipif(
    not (Path(os.environ.get("MEDDISTILL_DATA", ROOT.parent / "shared" / "data")) / "cxr14_sample").is_dir(),
    reason="no ../shared/data/cxr14_sample",
)
def test_a_multi_label_run_in_compare_and_explain(browser, artifacts, tmp_path, monkeypatch):
    """A smoke run on the real ChestX-ray14 sample: Compare shows the per-finding table and chart, Explain maps the
    finding the user picks."""
    from meddistill.cli.main import main

    home = tmp_path / "home"
    monkeypatch.setenv("MEDDISTILL_HOME", str(home))
    data = Path(os.environ.get("MEDDISTILL_DATA", ROOT.parent / "shared" / "data")) / "cxr14_sample"
    assert main(["run", "--data", str(data), "--preset", "smoke", "--threads", "1"]) == 0
    process, url = _start_server(home)
    page = browser.new_page(viewport={"width": 1400, "height": 1400})
    page.set_default_timeout(90_000)
    try:
        page.goto(f"{url}/compare")
        page.get_by_text("Per finding", exact=True).wait_for()
        page.get_by_text("Test AUC per finding").first.wait_for()  # the chart's title
        page.get_by_text("macro AUC", exact=False).first.wait_for()
        page.wait_for_timeout(1500)
        page.screenshot(path=str(artifacts / "multilabel-compare.png"), full_page=True)
        page.goto(f"{url}/explain")
        page.get_by_text("maps explain the finding").wait_for()
        page.get_by_label("Finding").first.click()  # pick Effusion in the finding box
        page.get_by_role("option", name="Effusion", exact=True).click()
        page.get_by_text(re.compile(r"maps explain the finding\s+Effusion")).wait_for()
        page.get_by_text("Map agreement (Pearson)").wait_for()
        page.wait_for_timeout(1500)
        page.screenshot(path=str(artifacts / "multilabel-explain.png"), full_page=True)
    finally:
        page.close()
        log = _stop_server(process)
    assert "Traceback" not in log, log[-3000:]


def test_compare_shows_calibration_operating_point_and_referral(browser, artifacts, tmp_path, monkeypatch, breast_npz):
    """A smoke run chosen for a target sensitivity: Compare shows the calibration switch, the operating point
    control (chosen again on val in the page) and the referral sentence."""
    from meddistill.cli.main import main

    home = tmp_path / "home"
    monkeypatch.setenv("MEDDISTILL_HOME", str(home))
    args = ["run", "--data", str(breast_npz), "--preset", "smoke", "--threads", "1", "--target-sensitivity", "0.9"]
    assert main(args) == 0
    process, url = _start_server(home)
    page = browser.new_page(viewport={"width": 1400, "height": 4200})
    page.set_default_timeout(90_000)
    try:
        page.goto(f"{url}/compare")
        page.get_by_text("Can a clinician act on it?").wait_for()
        page.get_by_text("Calibrated probabilities", exact=True).wait_for()
        page.get_by_text(re.compile(r"Referring the 10% of cases the .* is least sure of")).wait_for()
        page.get_by_text("the threshold reaching sensitivity 0.9 on val", exact=False).wait_for()
        page.get_by_text("Leak-free test figures").wait_for()  # BreastMNIST's test split copies 35 train/val images
        page.get_by_label("Operating point").first.click()
        page.get_by_role("option", name="Youden's J (balanced)").click()
        page.get_by_text("the threshold of maximal Youden's J on val", exact=False).wait_for()
        page.wait_for_timeout(1500)
        page.screenshot(path=str(artifacts / "compare-trust.png"), full_page=True)
    finally:
        page.close()
        log = _stop_server(process)
    assert "Traceback" not in log, log[-3000:]


def test_the_sidebar_shows_the_titled_menu_from_its_first_frame(browser, tmp_path):
    """On fresh servers, root and deep links alike: the sidebar, read as soon as it appears, holds the titled menu
    with Home first and never Streamlit's file-name menu (app, compare, data, ...)."""
    seen = []
    for attempt in range(2):
        process, url = _start_server(tmp_path / f"home{attempt}")
        try:
            for path in ("", "/compare", "/explain"):
                page = browser.new_page(viewport={"width": 1200, "height": 900})
                page.goto(url + path)
                sidebar = page.locator("[data-testid=stSidebar]")
                sidebar.wait_for(timeout=90_000)
                first = ""
                deadline = time.time() + 90
                while not first.strip() and time.time() < deadline:  # the first frame with anything in the sidebar
                    first = sidebar.inner_text()
                links = page.locator(MENU_LINKS)
                links.first.wait_for(timeout=90_000)
                titles = [t.strip().split("\n")[-1] for t in links.all_inner_texts()]
                seen.append((path, first, titles))
                page.close()
        finally:
            log = _stop_server(process)
        assert "Traceback" not in log, log[-3000:]
    for path, first, titles in seen:
        assert titles == ["Home", "Data", "Train", "Compare", "Explain", "Review"], (path, titles)
        words = first.split()
        assert "app" not in words and "review" not in words, (path, first)  # no file-name menu, even for a frame
        assert "Home" in words[:2], (path, first)  # the titled menu, Home first (its icon's name may come before)


def test_explain_on_a_3d_run_shows_three_planes_that_move_with_the_slider(browser, artifacts, tmp_path, monkeypatch):
    """A smoke run on the real AdrenalMNIST3D (at its 28^3): Explain shows the axial, coronal and sagittal planes of
    the scan and both maps, and the axial plane follows its slider; Review shows the planes too."""
    from meddistill.cli.main import main

    data = Path(os.environ.get("MEDDISTILL_DATA", ROOT.parent / "shared" / "data")) / "medmnist" / "adrenalmnist3d.npz"
    if not data.is_file():
        pytest.skip(f"{data} not found")
    home = tmp_path / "home"
    monkeypatch.setenv("MEDDISTILL_HOME", str(home))
    assert main(["run", "--data", str(data), "--preset", "smoke", "--image-size", "28", "--threads", "2"]) == 0
    process, url = _start_server(home)
    page = browser.new_page(viewport={"width": 1400, "height": 1400})
    page.set_default_timeout(90_000)
    try:
        page.goto(f"{url}/explain")
        for plane in ("Axial", "Coronal", "Sagittal"):
            page.get_by_text(f"{plane} slice", exact=True).wait_for()
        caption = page.get_by_text(re.compile(r"^axial \d+$"))
        start = int(caption.first.inner_text().split()[1])
        assert page.get_by_text(re.compile(r"^Teacher · axial \d+$")).count() == 1
        assert page.get_by_text(re.compile(r"map peaks at axial slice \d+, coronal \d+, sagittal \d+")).count() >= 1
        axial = page.get_by_role("slider", name="Axial slice")
        axial.focus()
        page.keyboard.press("ArrowLeft" if start > 0 else "ArrowRight")
        moved = start - 1 if start > 0 else start + 1
        page.get_by_text(f"axial {moved}", exact=True).wait_for()
        page.get_by_text(f"Teacher · axial {moved}", exact=True).wait_for()
        page.wait_for_timeout(1500)
        page.screenshot(path=str(artifacts / "volume-explain.png"), full_page=True)
        page.goto(f"{url}/review")
        page.get_by_text("Sagittal slice", exact=True).wait_for()
        page.goto(f"{url}/compare")
        page.get_by_text("offline browser page reads 2D scans", exact=False).wait_for()
    finally:
        page.close()
        log = _stop_server(process)
    assert "Traceback" not in log, log[-3000:]
