"""The student as one offline HTML page: the ONNX model, ONNX Runtime Web and a small interface in one file.

The page opens from ``file://`` with no network and no server: ONNX Runtime Web (the ``onnxruntime-web`` npm
package, vendored at a pinned version under ``vendor/onnxruntime-web``, its WebAssembly gzip-compressed) and the
model are embedded as base64 and loaded from the page itself; a Content-Security-Policy forbids every fetch. The
JavaScript reads a scan as the Python pipeline does (``assets/scan.js``) and shows the model's probabilities with the
run's facts (``info``, written by ``meddistill.reports.web.page_info``).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
ASSETS = HERE / "assets"
VENDOR = HERE / "vendor" / "onnxruntime-web"
VENDOR_FILE = VENDOR / "vendor.json"
BUNDLE, WASM = "ort.wasm.bundle.min.mjs", "ort-wasm-simd-threaded.wasm.gz"
_EMBEDDED = re.compile(r'<script type="text/plain" id="model">([A-Za-z0-9+/=\s]+)</script>')


def check_vendored() -> dict:
    """``vendor.json`` after checking every vendored file against its recorded SHA-256.

    Raises:
        RuntimeError: A vendored file is missing or differs (a broken install or a half-done update).
    """
    record = json.loads(VENDOR_FILE.read_text(encoding="utf-8"))
    for name, entry in record["files"].items():
        path = VENDOR / name
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "missing"
        if digest != entry["sha256"]:
            raise RuntimeError(
                f"the vendored ONNX Runtime Web file {path} is {digest}, not {entry['sha256']}; reinstall MedDistill"
            )
    return record


def _b64(data: bytes) -> str:
    text = base64.b64encode(data).decode("ascii")
    return "\n".join(text[i : i + 4096] for i in range(0, len(text), 4096))


def _json_in_script(value: dict) -> str:
    return json.dumps(value, ensure_ascii=True).replace("</", "<\\/")


def _about(info: dict) -> str:
    """The page's facts section: the run, test figures, intended use, operating point, SHA-256 and versions."""
    esc = html.escape
    figures = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in info["figures"].items())
    versions = ", ".join(f"{esc(k)} {esc(v)}" for k, v in info["versions"].items())
    points = "".join(
        f"<li>{esc(p['name'])}: threshold {p['threshold']:.3f} on its calibrated probability</li>"
        for p in info["operating"]
    )
    temperature = ", ".join(f"{t:.3f}" for t in info["temperature"]) if info["temperature"] else "none (raw)"
    return f"""<h2>About this model</h2>
<table>
<tr><th>model</th><td>{esc(info["model"])}</td></tr>
<tr><th>run</th><td>{esc(info["run_id"])} (MedDistill), data: {esc(info["dataset"])}</td></tr>
<tr><th>classes</th><td>{esc(" · ".join(info["classes"]))}</td></tr>
<tr><th>input</th><td>{info["channels"]} channel(s), resized to {info["size"]} x {info["size"]} px</td></tr>
<tr><th>calibration</th><td>logits divided by T = {esc(temperature)} (fitted on validation data)</td></tr>
{figures}
</table>
<p><strong>Operating point</strong> ({esc(info["operating_rule"])}):</p><ul>{points or "<li>none recorded</li>"}</ul>
<h2>Intended use</h2><p>{esc(info["intended_use"])}</p>
<p class="muted">Model SHA-256 (the embedded ONNX file): <code id="model-sha256">{esc(info["model_sha256"])}</code><br>
Versions: {versions}. ONNX Runtime Web is MIT-licensed (Microsoft Corporation).</p>"""


def build_page(model: bytes, info: dict) -> str:
    """The HTML page for ``model`` (ONNX bytes) described by ``info``.

    Args:
        model: The ONNX file to embed.
        info: ``title``, ``subtitle``, ``notice``, ``model``, ``run_id``, ``dataset``, ``classes``, ``channels``,
            ``size``, ``activation`` ("softmax" or "sigmoid"), ``temperature``, ``operating`` (list of ``name``,
            ``index``, ``threshold``), ``operating_rule``, ``figures`` (label -> text), ``intended_use``, ``versions``,
            ``input_name``, ``output_name``. ``model_sha256`` and the runtime's version are added here.

    Returns:
        The page's HTML text (about 5 MB: the runtime's WebAssembly dominates).
    """
    record = check_vendored()
    info = {
        **info,
        "model_sha256": hashlib.sha256(model).hexdigest(),
        "versions": {**info["versions"], "onnxruntime-web": record["version"]},
    }
    parts = {
        "__TITLE__": html.escape(info["title"]),
        "__SUBTITLE__": html.escape(info["subtitle"]),
        "__NOTICE__": html.escape(info["notice"]),
        "__KIND__": html.escape(
            f"The model was trained on {info['dataset']} images at {info['size']} px; it answers for any image, so "
            "check that the scan is of that kind before reading the result."
        ),
        "__ABOUT__": _about(info),
        "__INFO__": _json_in_script(info),
        "__MODEL__": _b64(model),
        "__ORT_BUNDLE__": _b64((VENDOR / BUNDLE).read_bytes()),
        "__ORT_WASM__": _b64((VENDOR / WASM).read_bytes()),
        "__SCAN_JS__": (ASSETS / "scan.js").read_text(encoding="utf-8"),
        "__PAGE_JS__": (ASSETS / "page.js").read_text(encoding="utf-8"),
    }
    text = (ASSETS / "page.html").read_text(encoding="utf-8")
    for key, value in parts.items():
        text = text.replace(key, value)
    return text


def embedded_model(page: str | bytes) -> bytes:
    """The ONNX bytes a page embeds (what ``build_page`` was given).

    Raises:
        ValueError: The text is not a MedDistill page.
    """
    text = page.decode("utf-8") if isinstance(page, bytes) else page
    found = _EMBEDDED.search(text)
    if found is None:
        raise ValueError("this is not a MedDistill offline page (no embedded model)")
    return base64.b64decode("".join(found.group(1).split()))
