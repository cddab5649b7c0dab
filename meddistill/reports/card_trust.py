"""The model card's trust sections (``meddistill.evaluation.trust``) as HTML: calibration before and after with
reliability diagrams, the operating point, referral, leak-free figures and subgroups, and the limitations they imply."""

from __future__ import annotations

import html

import numpy as np

from meddistill.evaluation.calibration import LOG_T_BOUNDS
from meddistill.evaluation.trust import Trust, referral_sentence
from meddistill.reports.trust import (
    calibration_rows,
    leak_rows,
    operating_rows,
    operating_sentence,
    referral_rows,
    subgroup_notes,
    subgroup_rows,
)
from meddistill.store.layout import LABELS

SMALL_VAL = 200  # val images below which the card says the calibration and thresholds are uncertain
LOW, HIGH = (float(np.exp(b)) for b in LOG_T_BOUNDS)  # the temperatures searched


def _esc(value) -> str:
    return html.escape(str(value))


def rows_table(rows: list[dict]) -> str:
    """An HTML table of rows with the same keys."""
    if not rows:
        return ""
    head = "".join(f"<th>{_esc(k)}</th>" for k in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{_esc(v)}</td>" for v in row.values()) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def trust_sections(trust: Trust | None, headline: str, reliability_svg) -> str:
    """The card's sections on calibration, operating point, referral, leak-free figures and subgroups."""
    if trust is None:
        return (
            "<p class='muted'>This run predates calibration and operating points (meddistill trust RUN --refresh).</p>"
        )
    svgs = "".join(
        reliability_svg(m.reliability_raw, f"{LABELS[r]} raw (ECE {m.ece_raw:.3f})")
        + reliability_svg(m.reliability, f"{LABELS[r]} calibrated (ECE {m.ece:.3f})")
        for r, m in trust.models.items()
    )
    parts = [
        "<h2>Calibration</h2>",
        "<p>Every probability in this card is calibrated: each model's logits are divided by one temperature fitted "
        "on the val split by minimising the negative log-likelihood (Guo et al. 2017); the raw figures are kept "
        "beside them. Brier score: mean squared error of the probabilities (lower is better).</p>",
        rows_table(calibration_rows(trust)),
        f"<div class='svgs'>{svgs}</div>",
        "<h2>Operating point</h2>",
        f"<p>{_esc(operating_sentence(trust))} Test intervals: 95 % percentile bootstrap.</p>",
        rows_table(operating_rows(trust)),
    ]
    role = headline if headline in trust.models else next(iter(trust.models))
    if trust.models[role].referral is not None:
        parts += [
            "<h2>Referral</h2>",
            f"<p>{_esc(referral_sentence(role, trust.models[role].referral))} Cases are ranked by the calibrated "
            "probability of the predicted class (Geifman and El-Yaniv 2017).</p>",
            rows_table(referral_rows(trust)),
        ]
    if leak_rows(trust):
        parts += ["<h2>Leak-free test figures</h2>", rows_table(leak_rows(trust))]
    if subgroup_rows(trust):
        notes = "".join(f"<li>{_esc(n)}</li>" for n in subgroup_notes(trust))
        parts += ["<h2>Subgroups</h2>", rows_table(subgroup_rows(trust)), f"<ul>{notes}</ul>"]
    return "\n".join(parts)


def trust_limitations(trust: Trust | None, headline: str) -> list[str]:
    """Limitations the trust figures imply: leaked test images, groups that do worse, temperatures at the search
    bound, an operating point whose test interval misses its target."""
    if trust is None:
        return []
    notes = []
    role = headline if headline in trust.models else next(iter(trust.models))
    model = trust.models[role]
    notes += [s for s in trust.sentences if "copy a train or val image" in s]
    for found in model.subgroups:
        notes += found["flagged"]
    for r, m in trust.models.items():
        if m.kept is not None and not all(m.kept):
            notes.append(
                f"The {LABELS[r]}'s temperature fit on val ran to a bound of the search ({LOW:g} or {HIGH:g}) for "
                f"{len(m.kept) - sum(m.kept)} of its {len(m.kept)} outputs, so those are shown raw: its val outputs "
                "carry too little for a fit, and its probabilities should not be read as risks before it is retrained."
            )
    if 0 < trust.val_images < SMALL_VAL:
        notes.append(
            f"The temperatures and thresholds were chosen on {trust.val_images} val images. On val splits this small a "
            "temperature can make calibration worse and a threshold can miss its target on new cases (docs/trust.md, "
            "section 6); compare the raw and calibrated figures above, and choose on a larger val split before use."
        )
    if trust.target is not None:
        for p in model.operating:
            low, high = p.test.get(f"{trust.rule}_ci", [None, None])
            if high is not None and high < trust.target:
                notes.append(
                    f"At the operating point chosen for {trust.rule} {trust.target:g} on val, the {LABELS[role]}'s "
                    "test "
                    f"{trust.rule} for '{p.name}' is {p.test[trust.rule]:.1%} (95% CI {low:.1%} to {high:.1%}): "
                    "below the target; choose the threshold on a larger val split."
                )
    return notes
