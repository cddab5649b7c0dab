"""The three orthogonal planes of a volume with both models' maps (Explain and Review on a 3D run)."""

import numpy as np
import streamlit as st

from meddistill.explain.planes import PLANES, map_on_volume, peak, peak_sentence, plane_views
from meddistill.store.layout import LABELS


def volume_planes(volume: np.ndarray, result: dict, opacity: float, key: str) -> None:
    """Axial, coronal and sagittal planes through ``volume`` (D, H, W), each with a slice slider that starts where
    the teacher's map peaks, the scan and both models' maps on one colour scale (0 to 1), and a window/level."""
    maps = {role: map_on_volume(result[role].saliency, volume.shape) for role in ("teacher", "student")}
    left, right = st.columns(2)
    center = left.slider("Window level", 0, 255, 128, key=f"{key}_level", help="Display window of the volume.")
    width = right.slider("Window width", 1, 255, 255, key=f"{key}_width")
    for role, label in (("teacher", LABELS["teacher"]), ("student", LABELS["student_kd"])):
        st.caption(peak_sentence(f"The {label.lower()}'s map", maps[role]))
    start = peak(maps["teacher"])
    for axis, name in enumerate(PLANES):
        index = st.slider(f"{name.capitalize()} slice", 0, volume.shape[axis] - 1, start[axis], key=f"{key}_{name}")
        views = plane_views(volume, maps, name, index, opacity, center, width)
        cols = st.columns(3)
        cols[0].image(views["scan"], caption=f"{name} {index}", width="stretch", clamp=True, output_format="PNG")
        cols[1].image(views["teacher"], caption=f"{LABELS['teacher']} · {name} {index}", width="stretch")
        cols[2].image(views["student"], caption=f"{LABELS['student_kd']} · {name} {index}", width="stretch")
    st.caption("Both maps on one colour scale, 0 (blue) to 1 (red), each scaled to its own maximum in the volume.")
