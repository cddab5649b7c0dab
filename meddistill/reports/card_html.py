"""The model card as one self-contained HTML file: inline CSS, reliability diagrams as inline SVG, scans and maps
as embedded PNG (data URIs). Nothing is fetched when it opens; it prints to PDF from any browser."""

from __future__ import annotations

import base64
import html
import io
from datetime import datetime, timezone

import numpy as np
from PIL import Image

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1000px;margin:24px auto;padding:0 16px;
color:#1f2933;line-height:1.45}
h1{font-size:1.6em;margin-bottom:0}
h2{font-size:1.2em;border-bottom:1px solid #d9e2ec;padding-bottom:4px;margin-top:28px}
table{border-collapse:collapse;width:100%;font-size:.85em}
th,td{border:1px solid #d9e2ec;padding:4px 8px;text-align:left}
th{background:#f0f4f8}.muted{color:#52606d;font-size:.9em}.cases{display:flex;flex-wrap:wrap;gap:12px}
.case{border:1px solid #d9e2ec;border-radius:6px;padding:8px;width:300px;font-size:.85em}
.case img{width:96px;height:96px;image-rendering:pixelated;margin-right:2px}.svgs{display:flex;gap:12px;flex-wrap:wrap}
@media print{.case{break-inside:avoid}}
"""


def _esc(value) -> str:
    return html.escape(str(value))


def _png(image: np.ndarray) -> str:
    """A uint8 (H, W) or (H, W, 3) image as an embedded PNG data URI."""
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _ci(value: float, ci: list[float]) -> str:
    if ci[0] != ci[0]:  # no interval (accuracy over several findings per image is not bootstrapped)
        return f"{value:.3f}"
    return f"{value:.3f} ({ci[0]:.3f} to {ci[1]:.3f})"


def _per_class(classes: list[str], values: list[float]) -> str:
    return " · ".join(f"{_esc(c)} {v:.3f}" for c, v in zip(classes, values))


def _ms(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def reliability_svg(bins: list[dict], title: str, size: int = 220) -> str:
    """A reliability diagram (accuracy against confidence per bin, the diagonal for perfect calibration) as SVG."""
    pad, inner = 30, size - 40
    x = lambda v: pad + v * inner  # noqa: E731
    y = lambda v: size - pad + 10 - v * inner  # noqa: E731
    bars = "".join(
        f'<rect x="{x(b["low"]):.1f}" y="{y(b["accuracy"]):.1f}" width="{(b["high"] - b["low"]) * inner - 1:.1f}" '
        f'height="{b["accuracy"] * inner:.1f}" fill="#4c78a8" opacity="0.8"><title>confidence {b["confidence"]:.2f}, '
        f"accuracy {b['accuracy']:.2f}, {b['count']} images</title></rect>"
        for b in bins
    )
    return (
        f'<svg width="{size}" height="{size + 10}" role="img" '
        f'aria-label="{_esc(title)}"><text x="{pad}" y="14" font-size="12">{_esc(title)}</text>'
        f'<line x1="{x(0)}" y1="{y(0)}" x2="{x(1)}" y2="{y(1)}" stroke="#9aa5b1" stroke-dasharray="4"/>{bars}'
        f'<line x1="{x(0)}" y1="{y(0)}" x2="{x(1)}" y2="{y(0)}" stroke="#52606d"/>'
        f'<line x1="{x(0)}" y1="{y(0)}" x2="{x(0)}" y2="{y(1)}" stroke="#52606d"/>'
        f'<text x="{x(0.5)}" y="{size + 6}" font-size="10" text-anchor="middle">confidence</text>'
        f'<text x="8" y="{y(0.5)}" font-size="10" transform="rotate(-90 8 {y(0.5)})" text-anchor="middle">accuracy'
        "</text></svg>"
    )


def _models_table(facts: dict) -> str:
    rows = []
    for role, m in facts["models"].items():
        rows.append(
            f'<tr data-role="{role}"><td>{_esc(m["label"])}</td><td>{_esc(m["arch"])}</td>'
            f"<td>{m['params']:,}</td><td>{m['size_mb']:.2f}</td>"
            f'<td data-key="{role}.acc">{_ci(m["acc"], m["acc_ci"])}</td>'
            f'<td data-key="{role}.auc">{_ci(m["auc"], m["auc_ci"])}</td>'
            f'<td data-key="{role}.ece">{m["ece"]:.3f}</td>'
            f"<td>{m['balanced_acc']:.3f}</td><td>{_per_class(facts['classes'], m['sensitivity'])}</td>"
            f'<td data-key="{role}.onnx_ms">{_ms(m["onnx_latency_ms_b1"])}</td>'
            f"<td>{_ms(m['onnx_int8_latency_ms_b1'])}</td><td>{_ms(m['latency_ms_b1'])}</td></tr>"
        )
    acc, auc, per = "test ACC (95 % CI)", "test AUC (95 % CI)", "sensitivity (recall) per class"
    if facts.get("findings"):
        acc, auc = "label ACC (not the headline)", "test macro AUC (95 % CI, patients resampled)"
        per = "sensitivity per finding (val threshold)"
    head = (
        f"<tr><th>model</th><th>architecture</th><th>parameters</th><th>MB</th><th>{acc}</th>"
        f"<th>{auc}</th><th>ECE</th><th>balanced ACC</th><th>{per}</th>"
        "<th>ONNX Runtime ms/image</th>"
        "<th>int8 ms/image</th><th>PyTorch eager ms/image</th></tr>"
    )
    return f"<table>{head}{''.join(rows)}</table>"


def _findings_table(facts: dict) -> str:
    """The per-finding table (several findings per image), or nothing."""
    rows = facts.get("findings") or []
    if not rows:
        return ""
    head = "".join(f"<th>{_esc(k)}</th>" for k in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{_esc(v)}</td>" for v in row.values()) + "</tr>" for row in rows)
    return (
        "<h2>Per finding</h2><p>Test AUC and average precision per finding; sensitivity and specificity at the "
        "threshold chosen on val. Accuracy over all labels is not the headline: predicting every finding absent "
        f"already scores high.</p><table><tr>{head}</tr>{body}</table>"
    )


def _cases(facts: dict) -> str:
    if not facts["examples"]:
        return "<p class='muted'>No example cases in this card.</p>"
    blocks = []
    for case in facts["examples"]:
        blocks.append(
            f"<div class='case'><b>{_esc(case['kind'])}</b> · {_esc(case['name'])}<br>"
            f"<img src='{_png(case['scan'])}' alt='scan'><img src='{_png(case['teacher_map'])}' alt='teacher map'>"
            f"<img src='{_png(case['student_map'])}' alt='student map'><br>scan · teacher · distilled student<br>"
            f"truth <b>{_esc(case['truth'])}</b>; teacher {_esc(case['teacher'])}; student {_esc(case['student'])}"
            "</div>"
        )
    return f"<div class='cases'>{''.join(blocks)}</div>"


def render_card(facts: dict) -> str:
    """The HTML document of ``meddistill.reports.card.card_facts``."""
    counts = facts["counts"]
    balance = "".join(
        f"<tr><td>{_esc(split)}</td><td>{facts['sizes'].get(split, '')}</td>"
        + "".join(f"<td>{n}</td>" for n in counts.get(split, []))
        + "</tr>"
        for split in ("train", "val", "test")
    )
    settings = "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in facts["settings"].items())
    source = ", ".join(
        f"{k}: {v:.3f}" if isinstance(v, float) else f"{k}: {v}" for k, v in facts["teacher_source"].items()
    )
    svgs = "".join(
        reliability_svg(m["reliability"], f"{m['label']} (ECE {m['ece']:.3f})") for m in facts["models"].values()
    )
    reviews = ", ".join(f"{k}: {v}" for k, v in facts["reviews"].items())
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Model card · {_esc(facts["run_id"])}</title>
<style>{STYLE}</style></head><body>
<h1>Model card: distilled student for {_esc(facts["dataset"])}</h1>
<p class="muted">MedDistill run {_esc(facts["run_id"])} · generated {generated} · every figure below is read from
the run folder (report.json, predictions.npz, config.json, dataset.json, the saved models and the review log).</p>
<h2>Intended use</h2>
<p>{_esc(facts["intended_use"])}</p>
<h2>Data</h2>
<p>Source: {_esc(facts["source_kind"])}; splits: {_esc(facts["splits"])}. Stored at {facts["image_size"]} px,
trained at {facts["train_image_size"]} px.</p>
<table><tr><th>split</th><th>images</th>{"".join(f"<th>{_esc(c)}</th>" for c in facts["classes"])}</tr>{balance}</table>
<h2>Training settings</h2>
<table>{settings}<tr><th>teacher source</th><td>{_esc(source)}</td></tr></table>
<h2>Results on the test split ({facts["test_images"]} images)</h2>
{facts["leak_headline"]}
{_models_table(facts)}
{_findings_table(facts)}
<p class="muted">95 % intervals: percentile bootstrap over the test images (2,000 resamples). Latency: median of
batch-1 calls on {_esc(facts["cpu"])}, {facts["threads"]} threads; "as deployed" is the exported ONNX model in ONNX
Runtime.</p>
<ul>{"".join(f"<li>{_esc(v)}</li>" for v in facts["verdicts"])}</ul>
{facts["trust_html"] or f'<h2>Calibration</h2><div class="svgs">{svgs}</div>'}
<p class="muted">Reliability bars: accuracy of the predictions in each confidence bin; the dashed diagonal is perfect
calibration. ECE: expected calibration error (lower is better).</p>
<h2>Example cases ({_esc(facts.get("example_method", "Grad-CAM"))} of both models)</h2>
{_cases(facts)}
<h2>Review log</h2><p>{_esc(reviews) if sum(facts["reviews"].values()) else "No case has been reviewed yet."}</p>
<h2>Known limitations</h2><ul>{"".join(f"<li>{_esc(n)}</li>" for n in facts["limitations"])}</ul>
</body></html>
"""
