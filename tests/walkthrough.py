"""The app walked through in real Chromium as a new user would: Home -> demo -> Train -> Compare -> Explain ->
Review -> model card. Used by the browser test (with assertions) and by ``docs/screenshots.py`` (the README's
images); not a test module itself."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DEMO_SECONDS = 900  # the demo is about 1.5 minutes of training on a 2-core AVX2 machine; this allows a busy one


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(home: Path) -> tuple[subprocess.Popen, str]:
    """`streamlit run app.py` on a free localhost port with ``home`` as MEDDISTILL_HOME; returns (process, url).

    Raises:
        RuntimeError: the server did not answer its health check within a minute.
    """
    port = free_port()
    env = {**os.environ, "MEDDISTILL_HOME": str(home)}
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--server.headless", "true"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).read() == b"ok":
                return process, url
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise RuntimeError("streamlit did not start: " + process.stdout.read().decode(errors="replace")[-2000:])


def stop_server(process: subprocess.Popen) -> str:
    """Stop the server; returns what it printed."""
    process.terminate()
    try:
        out, _ = process.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        out, _ = process.communicate()
    return out.decode(errors="replace")


MENU_LINKS = "[data-testid=stSidebar] [data-testid=stPageLink-NavLink]"  # the titled menu every page draws


def headline_cards(report: dict) -> list[str]:
    """The first two headline cards Compare and Home show for a report.json: teacher and headline student ACC, on
    the leak-free test images when the leak checks found copies (BreastMNIST's test split has some)."""
    figures = {r: m["test"]["acc"] for r, m in report["models"].items()}
    if (report.get("trust") or {}).get("models", {}).get("teacher", {}).get("leak_free"):
        figures = {r: m["leak_free"]["clean"]["acc"] for r, m in report["trust"]["models"].items()}
    return [f"{figures['teacher']:.1%}", f"{figures[report['headline']]:.1%}"]


def sidebar_titles(page) -> list[str]:
    """The navigation's entries as shown (the icon's name, when rendered as text, comes first)."""
    return [t.strip().split("\n")[-1] for t in page.locator(MENU_LINKS).all_inner_texts()]


def curve_points(page) -> tuple[int, int]:
    """Points on the Train page's two charts: (loss chart, validation chart)."""
    script = """el => {
        const count = ax => el.data.filter(t => (t.xaxis || 'x') === ax)
            .reduce((n, t) => n + (t.x ? t.x.length : 0), 0);
        return [count('x'), count('x2')];
    }"""
    return tuple(page.locator(".js-plotly-plot").first.evaluate(script))


def tall_screenshot(page, path: Path, height: int = 2400) -> None:
    """A screenshot of the whole page: Streamlit scrolls inside its main block, so the viewport is made tall."""
    width = page.viewport_size["width"]
    page.set_viewport_size({"width": width, "height": height})
    time.sleep(3)
    page.screenshot(path=str(path))
    page.set_viewport_size({"width": width, "height": 1000})


def walk(page, url: str, home: Path, shots: Path, seconds: int = DEMO_SECONDS) -> dict:
    """Walk the app from the home page's demo button to the model card, taking screenshots into ``shots``.

    Returns:
        ``{"titles", "points", "report", "metrics", "card", "review"}``: what was seen on the way, for the caller's
        checks.
    """
    seen = {}
    page.goto(url)
    page.get_by_text("Recent runs").wait_for()
    seen["titles"] = sidebar_titles(page)
    page.get_by_role("button", name="Start the BreastMNIST demo").click()
    page.get_by_text(re.compile(r"\d+ points plotted")).wait_for(timeout=120_000)
    deadline = time.time() + seconds
    points = (0, 0)
    while time.time() < deadline and min(points) < 2:
        time.sleep(3)
        try:
            points = curve_points(page)
        except Exception:  # noqa: BLE001 - the live panel is re-rendered every few seconds
            continue
    page.get_by_text("New run").click()  # fold the settings so the live panel is in view
    time.sleep(4)
    seen["points"] = curve_points(page)
    page.screenshot(path=str(shots / "train.png"))
    page.get_by_text("Done. Compare the three models").wait_for(timeout=max(1, deadline - time.time()) * 1000)
    time.sleep(4)
    if page.get_by_role("button", name="Start training").is_visible():  # the form unfolds when no run is active
        page.get_by_text("New run").click()
        time.sleep(2)
    page.screenshot(path=str(shots / "train_done.png"))
    run_dir = next((home / "runs").iterdir())
    seen["report"] = json.loads((run_dir / "report.json").read_text())

    page.get_by_role("link", name="Open Compare").click()
    page.get_by_text(re.compile(r"^Teacher ACC")).first.wait_for()
    page.locator(".js-plotly-plot").nth(3).wait_for()
    time.sleep(3)
    seen["metrics"] = page.locator("[data-testid=stMetricValue]").all_inner_texts()
    tall_screenshot(page, shots / "compare.png", 2200)

    page.locator(MENU_LINKS).get_by_text("Explain", exact=True).click()
    page.get_by_text("Does each map show what the model uses?").wait_for(timeout=180_000)
    page.locator(".js-plotly-plot").first.wait_for()
    time.sleep(3)
    tall_screenshot(page, shots / "explain.png", 2000)

    page.locator(MENU_LINKS).get_by_text("Review", exact=True).click()
    page.get_by_text(re.compile(r"Scan as stored")).wait_for(timeout=120_000)
    time.sleep(2)
    tall_screenshot(page, shots / "review.png", 1300)
    page.get_by_role("button", name="Agree (A)").wait_for(timeout=60_000)  # its shortcut is bound once it is drawn
    from meddistill.store.reviews import ReviewStore

    saved = lambda: ReviewStore(home).latest(seen["report"]["run_id"])  # noqa: E731
    deadline = time.time() + 90
    while not saved() and time.time() < deadline:  # press again only while nothing was saved (a first press can
        page.evaluate("document.activeElement && document.activeElement.blur()")  # land before the key listener)
        page.keyboard.press("a")
        for _ in range(20):
            if saved():
                break
            time.sleep(0.5)
    assert saved(), "the A key saved no verdict"
    seen["review"] = "agree"

    page.locator(MENU_LINKS).get_by_text("Compare", exact=True).click()
    page.get_by_role("button", name="Prepare the model card").click()
    with page.expect_download(timeout=180_000) as download:
        page.get_by_role("button", name="Download model card").click()
    card = shots / "model-card.html"
    download.value.save_as(card)
    seen["card"] = card
    page.set_viewport_size({"width": 1100, "height": 1400})
    page.goto(card.resolve().as_uri())  # the downloaded file, opened as a colleague would
    page.get_by_text("Known limitations").wait_for()
    page.screenshot(path=str(shots / "model_card.png"), full_page=True)
    return seen


def explain_shot(page, url: str, path: Path) -> None:
    """The Explain page of the latest finished run of a server's MEDDISTILL_HOME, as one tall screenshot."""
    page.goto(url)  # through Home: a deep link right after the server starts can show Streamlit's file-name sidebar
    page.get_by_text("Recent runs").wait_for(timeout=120_000)
    page.locator(MENU_LINKS).get_by_text("Explain", exact=True).click()
    page.get_by_text("Does each map show what the model uses?").wait_for(timeout=300_000)
    page.locator(".js-plotly-plot").first.wait_for()
    tall_screenshot(page, path, 2000)
