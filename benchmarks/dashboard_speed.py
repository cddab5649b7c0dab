"""Does a run started from the dashboard train as fast as the same run from the command line?

Starts ``streamlit run app.py`` on a free localhost port, opens the home page in Debian's Chromium (Playwright),
clicks "Start the BreastMNIST demo" and times the run until the Train page says it is done, while the page's live
panel refreshes in the browser (every ``REFRESH_SECONDS`` of pages/train.py: 3 s). Then runs the same settings
with ``meddistill run`` (the demo's config: BreastMNIST, the default ``cpu`` preset) and times the command. Order
alternates over ``--repeats``.

Usage:
    python benchmarks/dashboard_speed.py [--repeats 1] [--page-closed]

The last line is ``ratio=`` dashboard seconds / CLI seconds (1.0 = as fast; the target is at most about 1.1).
Both figures include loading the data, the three models, the evaluation and the latency measurements; the CLI's
also includes starting Python and importing torch, the dashboard's the first page load.
"""

from __future__ import annotations

import argparse
import functools
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from meddistill.data.medmnist_source import medmnist_path  # noqa: E402
from meddistill.evaluation.hardware import describe_cpu  # noqa: E402
from meddistill.store.index import RunStore  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARGS += ["--disable-component-update", "--disable-sync", "--no-first-run"]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def finished(home: Path) -> bool:
    """The demo's run is recorded as done in the run index.

    Raises:
        RuntimeError: the run ended without finishing (failed, cancelled or interrupted).
    """
    statuses = {record.status for record in RunStore(home).list()}
    if statuses & {"failed", "cancelled", "interrupted"}:
        raise RuntimeError(f"the demo run ended as {', '.join(sorted(statuses))}; see the server's run folder {home}")
    return "done" in statuses


def dashboard_seconds(home: Path, page_closed: bool = False) -> float:
    """Click the demo button on a fresh server and wait for "Done." on the Train page (``page_closed``: leave the
    page for a blank one once the Train page shows the run, and wait for the run index to say done)."""
    from playwright.sync_api import sync_playwright

    port = _port()
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--server.headless", "true"],
        cwd=ROOT,
        env={**os.environ, "MEDDISTILL_HOME": str(home)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{url}/_stcore/health", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)
            button = page.get_by_role("button", name="Start the BreastMNIST demo")
            button.wait_for(timeout=120_000)
            start = time.perf_counter()
            button.click()
            if page_closed:
                page.get_by_role("button", name="Cancel this run").wait_for(timeout=120_000)
                page.goto("about:blank")
                deadline = time.perf_counter() + 3_600
                while not finished(home):
                    if time.perf_counter() > deadline:
                        raise TimeoutError(f"the demo run in {home} did not finish within an hour")
                    time.sleep(0.5)
            else:
                page.get_by_text("Done. Compare the three models").wait_for(timeout=3_600_000)
            seconds = time.perf_counter() - start
            browser.close()
        return seconds
    finally:
        server.terminate()
        server.wait(10)


def cli_seconds(home: Path) -> float:
    """``meddistill run --data breastmnist.npz`` (the demo's settings) as a fresh process."""
    command = [sys.executable, "-m", "meddistill", "run", "--data", str(medmnist_path("breastmnist"))]
    start = time.perf_counter()
    subprocess.run(
        command,
        check=True,
        cwd=ROOT,
        env={**os.environ, "MEDDISTILL_HOME": str(home)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument(
        "--page-closed", action="store_true", help="leave the Train page once the run shows: no refresh, no redraw"
    )
    args = parser.parse_args()
    print(f"CPU: {describe_cpu()}", flush=True)
    out = Path(tempfile.mkdtemp(prefix="meddistill-dashboard-speed-"))
    dashboard, cli = [], []
    for repeat in range(args.repeats):
        dashboard_run = functools.partial(dashboard_seconds, page_closed=args.page_closed)
        order = [("dashboard", dashboard_run, dashboard), ("cli", cli_seconds, cli)]
        for name, measure, into in order if repeat % 2 == 0 else order[::-1]:
            into.append(measure(out / f"{name}-{repeat}"))
            print(f"{name}: {into[-1]:.0f} s", flush=True)
    ratio = sum(dashboard) / sum(cli)
    print(f"dashboard {sum(dashboard) / len(dashboard):.0f} s, command line {sum(cli) / len(cli):.0f} s")
    print(f"ratio={ratio:.2f}")


if __name__ == "__main__":
    main()
