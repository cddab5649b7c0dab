"""The model card (issue 16): one self-contained HTML file whose numbers are report.json's, that opens in Chromium
with no network request, written by ``meddistill card`` and built from a real run of BreastMNIST images."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from meddistill.cli.main import main
from meddistill.reports.card import card_facts
from meddistill.store.reviews import ReviewStore

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def finished_run(small_breast_npz, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("card") / "run"
    args = ["run", "--data", str(small_breast_npz), "--preset", "smoke", "--threads", "1", "--out", str(out)]
    assert main(args) == 0
    return out


def test_card_numbers_equal_the_report_and_it_needs_no_network(finished_run, tmp_path):
    report = json.loads((finished_run / "report.json").read_text())
    ReviewStore().record(report["run_id"], 0, "disagree", "margin unclear")
    assert main(["card", str(finished_run), "--out", str(tmp_path / "card.html")]) == 0
    html = (tmp_path / "card.html").read_text(encoding="utf-8")
    assert "http" not in html and "<script" not in html and "<link" not in html  # nothing to fetch
    sources = re.findall(r"src='([^']*)'", html)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    for role, entry in report["models"].items():
        for key in ("acc", "auc"):
            cell = re.search(rf'data-key="{role}\.{key}">([0-9.]+) \(([0-9.]+) to ([0-9.]+)\)', html)
            assert cell, (role, key)
            value, low, high = (float(g) for g in cell.groups())
            assert value == float(f"{entry['test'][key]:.3f}")
            assert low <= value <= high
        assert f'data-key="{role}.ece">{entry["test"]["ece"]:.3f}<' in html
        assert f'data-key="{role}.onnx_ms">{entry["onnx_latency_ms_b1"]:.3f}<' in html
    assert "disagree: 1" in html  # the review log's tallies
    assert "Small test set: 64 images" in html  # a limitation written from the run


def test_card_opens_in_chromium_without_any_request(finished_run, tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path("/usr/bin/chromium").is_file():
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    from tests.test_browser import ARGS

    assert main(["card", str(finished_run), "--out", str(tmp_path / "card.html")]) == 0
    requested = []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = browser.new_page()
        page.on("request", lambda r: requested.append(r.url))
        page.goto((tmp_path / "card.html").as_uri())
        images = page.eval_on_selector_all("img", "els => els.map(e => e.complete && e.naturalWidth > 0)")
        heading = page.inner_text("h1")
        browser.close()
    assert [u for u in requested if not u.startswith(("file://", "data:"))] == []
    assert images and all(images) and heading.startswith("Model card")


def test_card_facts_examples_show_both_maps_at_the_stored_size(finished_run):
    facts = card_facts(finished_run)
    kinds = {case["kind"] for case in facts["examples"]}
    assert "correct" in kinds and facts["example_method"] == "Grad-CAM"
    for case in facts["examples"]:
        assert case["teacher_map"].shape[:2] == case["scan"].shape[:2] == case["student_map"].shape[:2]
