"""Regenerate the README's screenshots from a real run of the one-click demo.

Starts `streamlit run app.py` with a fresh MEDDISTILL_HOME, clicks "Start the BreastMNIST demo" on the home page in
headless Chromium (Debian's, driven by Playwright), and walks Train, Compare, Explain, Review and the model card
(tests/walkthrough.py, the same walk the browser test checks). The images are written to docs/images/ only when the
run's distilled student meets the BreastMNIST bar of docs/results.md (ACC >= 0.83, AUC >= 0.88); otherwise the script
says so and writes nothing.

With ``--xray-home HOME`` (a MEDDISTILL_HOME whose latest finished run is on full-resolution chest X-rays, e.g.
``../shared/data/chest_xray``), it also takes the Explain page of that run: the scan as stored, at full resolution.

Usage:
    python docs/screenshots.py [--out docs/images] [--xray-home HOME]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from meddistill.evaluation.hardware import describe_cpu  # noqa: E402
from tests.walkthrough import ARGS, CHROMIUM, explain_shot, start_server, stop_server, walk  # noqa: E402

BAR = {"acc": 0.83, "auc": 0.88}  # the BreastMNIST bar for the distilled student (docs/results.md)
SHOTS = {  # walk's screenshot -> the README's image
    "train_done.png": "train.png",
    "compare.png": "compare.png",
    "explain.png": "explain.png",
    "review.png": "review.png",
    "model_card.png": "model_card.png",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "images"))
    parser.add_argument("--xray-home", help="MEDDISTILL_HOME with a finished chest X-ray run (Explain at full size)")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix="meddistill-shots-"))
    process, url = start_server(work / "home")
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(60_000)
            seen = walk(page, url, work / "home", work)
            browser.close()
    finally:
        stop_server(process)
    kd = seen["report"]["models"]["student_kd"]["test"]
    print(f"CPU: {describe_cpu()}")
    print(f"run {seen['report']['run_id']}: distilled student ACC {kd['acc']:.3f}, AUC {kd['auc']:.3f}")
    if kd["acc"] < BAR["acc"] or kd["auc"] < BAR["auc"]:
        print("The distilled student misses the BreastMNIST bar; the screenshots were not replaced.")
        return 1
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for shot, name in SHOTS.items():
        shutil.copyfile(work / shot, out / name)
    print(f"wrote {', '.join(SHOTS.values())} to {out}")
    if args.xray_home:
        process, url = start_server(Path(args.xray_home))
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.set_default_timeout(60_000)
                explain_shot(page, url, out / "explain_xray.png")
                browser.close()
        finally:
            stop_server(process)
        print(f"wrote explain_xray.png to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
