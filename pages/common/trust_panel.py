"""Compare's trust section: calibration switch, operating point control, referral, subgroups, leak-free figures."""

import streamlit as st

from meddistill.evaluation.trust import referral_sentence
from meddistill.reports.trust import (
    calibration_rows,
    leak_rows,
    operating_rows,
    operating_sentence,
    referral_rows,
    subgroup_notes,
    subgroup_rows,
)
from meddistill.views.trust import (
    RULE_LABELS,
    calibration_figure,
    chosen_trust,
    operating_roc_figure,
    risk_coverage_figure,
)
from pages.common.ui import guarded


def trust_panel(record, report) -> None:
    """The section under the model table; the operating rule is chosen again on val without retraining."""
    st.subheader("Can a clinician act on it?")
    if report.trust is None:
        st.info(
            "This run was written before calibration and operating points were kept; run "
            f"`meddistill trust {record.id} --refresh` once to add them."
        )
        return
    own = report.trust
    controls = st.columns([1, 1, 1])
    raw = not controls[0].toggle(
        "Calibrated probabilities", value=True, key="calibrated", help="temperature scaling fitted on val; off: raw"
    )
    rules = list(RULE_LABELS)
    rule = controls[1].selectbox(
        "Operating point", rules, index=rules.index(own.rule), format_func=RULE_LABELS.get, key="operating_rule"
    )
    target = None
    if rule != "youden":
        target = controls[2].number_input(
            f"Target {rule} on val",
            min_value=0.5,
            max_value=0.999,
            value=float(own.target) if own.target and rule == own.rule else 0.95,
            step=0.01,
            key="operating_target",
        )
    trust = None
    with guarded("Could not choose the operating point"):
        trust = chosen_trust(record.path, rule, target)
    if trust is None:
        return
    st.caption(operating_sentence(trust))
    headline_role = report.headline if report.headline in trust.models else next(iter(trust.models))
    referral = trust.models[headline_role].referral
    if referral is not None:
        st.info(referral_sentence(headline_role, referral), icon=":material/person_raised_hand:")
    for sentence in trust.sentences:
        if "significantly lower" in sentence:
            st.warning(sentence, icon=":material/groups:")
    st.dataframe(operating_rows(trust), hide_index=True, width="stretch", key="operating_table")
    points = trust.models[headline_role].operating
    figures = st.columns(2)
    if points:
        names = [p.name for p in points]
        picked = names[0] if len(names) == 1 else figures[0].selectbox("Class on the ROC", names, key="roc_class")
        point = points[names.index(picked)]
        figure = operating_roc_figure(record.path, trust, report.task, point.index, point.name)
        figures[0].plotly_chart(figure, width="stretch", key="operating_roc")
    figures[1].plotly_chart(calibration_figure(trust, raw=raw), width="stretch", key="calibration_chart")
    _tables(trust, raw)


def _tables(trust, raw: bool) -> None:
    """Calibration, referral, leak-free and subgroup tables."""
    shown = calibration_rows(trust)
    if raw:
        shown = [{k: v for k, v in row.items() if "calibrated" not in k} for row in shown]
    st.dataframe(shown, hide_index=True, width="stretch", key="calibration_table")
    if referral_rows(trust):
        st.markdown(
            "**Referral**: accuracy (macro AUC for findings) on the cases kept when the least confident are referred"
        )
        cols = st.columns([3, 2])
        cols[0].dataframe(referral_rows(trust), hide_index=True, width="stretch", key="referral_table")
        cols[1].plotly_chart(risk_coverage_figure(trust), width="stretch", key="risk_coverage")
    if leak_rows(trust):
        st.markdown("**Leak-free test figures** (test images with no copy in train or val, no shared patient)")
        st.dataframe(leak_rows(trust), hide_index=True, width="stretch", key="leak_table")
    if subgroup_rows(trust):
        st.markdown("**Subgroups** (labels-CSV columns)")
        st.dataframe(subgroup_rows(trust), hide_index=True, width="stretch", key="subgroup_table")
        for note in subgroup_notes(trust):
            st.caption(note)
