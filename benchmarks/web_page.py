"""The offline page in a real browser: load time and per-scan model time in Chromium against ONNX Runtime in Python.

Exports a finished run's student as the offline page (``meddistill export RUN --format web``), opens it from
``file://`` in Debian's Chromium with the network off, feeds it ``--scans`` BreastMNIST test images one by one and
reads the model time the page shows for each (``performance.now()`` around ``session.run``, single-threaded
WebAssembly), then times the same embedded int8 model in ONNX Runtime for Python on the same inputs (1 thread): the
baseline of the same run. Prints the medians, their ratio and the largest probability difference between the two.

Usage:
    python benchmarks/web_page.py RUN [--scans 50]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from meddistill.cli.main import main as cli  # noqa: E402
from meddistill.data.images import read_image  # noqa: E402
from meddistill.data.tensors import image_tensor  # noqa: E402
from meddistill.evaluation.export import onnx_runner  # noqa: E402
from meddistill.evaluation.hardware import describe_cpu  # noqa: E402
from meddistill.paths import shared_data  # noqa: E402
from meddistill.web import embedded_model  # noqa: E402
from tests.walkthrough import ARGS, CHROMIUM  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a finished run folder (BreastMNIST, or any 28-px grey set)")
    parser.add_argument("--scans", type=int, default=50)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix="meddistill-web-bench-"))
    page = work / "student.html"
    assert cli(["export", args.run, "--format", "web", "--out", str(page)]) == 0
    info = json.loads(re.search(r'id="info">(.*?)</script>', page.read_text(), re.S).group(1))
    images = np.load(shared_data() / "medmnist" / "breastmnist.npz")["test_images"][: args.scans]
    files = []
    for i, image in enumerate(images):
        files.append(work / f"test_{i}.png")
        Image.fromarray(image).save(files[-1])
    browser_ms, shown = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        tab = browser.new_context(offline=True).new_page()
        started = time.perf_counter()
        tab.goto(page.as_uri())
        tab.wait_for_selector("#status[data-state=ready]", timeout=60_000)
        load_s = time.perf_counter() - started
        for path in files:
            tab.set_input_files("#file", str(path))
            tab.wait_for_selector(f'#probs[data-file="{path.name}"]', timeout=30_000)
            browser_ms.append(float(tab.get_attribute("#timing", "data-ms")))
            shown.append(json.loads(tab.get_attribute("#probs", "data-probs")))
        browser.close()
    run = onnx_runner(embedded_model(page.read_bytes()), 1)
    inputs = [image_tensor(read_image(f), info["channels"], info["size"])[None] for f in files]
    run(inputs[0])  # warm-up, as the page does
    python_ms, expected = [], []
    for x in inputs:
        started = time.perf_counter()
        logits = run(x)
        python_ms.append((time.perf_counter() - started) * 1e3)
        expected.append(torch.softmax(logits, 1).numpy()[0])
    diff = float(np.abs(np.array(shown) - np.array(expected)).max())
    b, q = statistics.median(browser_ms), statistics.median(python_ms)
    print(f"CPU: {describe_cpu()}")
    print(f"page: {page.stat().st_size / 1e6:.2f} MB, {info['model']}, loaded and ready in {load_s:.2f} s")
    print(
        f"model time per scan, median of {len(files)}: Chromium (WebAssembly, 1 thread) {b:.3f} ms; ONNX Runtime "
        f"Python (1 thread) {q:.3f} ms"
    )
    print(f"browser_ratio={b / q:.2f}  max |prob diff| browser vs Python {diff:.2e}")


if __name__ == "__main__":
    main()
