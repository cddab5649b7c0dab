"""Where a model looks, and how far to trust the map.

``methods`` holds the saliency registry (Grad-CAM, occlusion, integrated
gradients), ``maps`` scales and compares maps, ``faithfulness`` runs the
RISE deletion and insertion tests, ``overlay`` blends a map on a scan and ``pair`` explains one
scan with teacher and student together.
"""

from meddistill.explain.faithfulness import Faithfulness, blurred_copy, curve_area, faithfulness, faithfulness_sentence
from meddistill.explain.maps import normalise, pearson, random_map, top_iou, top_mask
from meddistill.explain.methods import (
    EXPLAINERS,
    OPAQUE_NOTE,
    Explainer,
    available_explainers,
    explainer_label,
    map_resolution,
    predict_proba,
    saliency,
    untouched,
)
from meddistill.explain.overlay import COLORMAPS, difference, overlay
from meddistill.explain.pair import Explanation, explain_pair, mean_saliency_agreement

__all__ = [
    "COLORMAPS",
    "EXPLAINERS",
    "Explainer",
    "OPAQUE_NOTE",
    "Explanation",
    "available_explainers",
    "curve_area",
    "difference",
    "Faithfulness",
    "blurred_copy",
    "faithfulness",
    "faithfulness_sentence",
    "map_resolution",
    "explain_pair",
    "explainer_label",
    "mean_saliency_agreement",
    "normalise",
    "overlay",
    "pearson",
    "predict_proba",
    "random_map",
    "saliency",
    "top_iou",
    "top_mask",
    "untouched",
]
