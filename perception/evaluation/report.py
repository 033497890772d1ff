"""Evaluation reports: the JSON dict of ``fusion eval --json`` and a Markdown summary + table.

JSON shape (issue 6)::

    {"mAP", "NDS", "mATE", "mASE", "mAOE", "mAVE",
     "per_class": {"car": {"AP", "AP@0.5", "AP@1.0", "AP@2.0", "AP@4.0",
                           "ATE", "ASE", "AOE", "AVE", "num_gt", "num_pred"}, ...},
     "segmentation": {"drivable_iou", "occupancy_iou"},
     "frames"}

NaN (undefined) values are None, i.e. ``null`` in JSON; every class of the evaluation config
is listed, those without ground truth with null AP and errors.
"""

from __future__ import annotations

import math
from typing import Any

from perception.evaluation.detection import TP_ERRORS, DetectionMetrics
from perception.evaluation.segmentation import SegmentationMetrics

_UNITS = {"ATE": "m", "ASE": "1-IoU", "AOE": "rad", "AVE": "m/s"}


def metrics_json(detection: DetectionMetrics, segmentation: SegmentationMetrics) -> dict[str, Any]:
    """The detection metrics' dict with ``"segmentation": {"drivable_iou", "occupancy_iou"}``
    added before ``"frames"``; JSON-ready (``json.dumps(..., allow_nan=False)`` works)."""
    result = detection.as_dict()
    frames = result.pop("frames")
    result["segmentation"] = segmentation.as_dict()
    result["frames"] = frames
    return result


def _number(value: float, digits: int = 3) -> str:
    return "–" if math.isnan(value) else f"{value:.{digits}f}"


def metrics_markdown(detection: DetectionMetrics, segmentation: SegmentationMetrics | None = None) -> str:
    """A summary paragraph and a per-class table (AP, AP at each threshold, ATE, ASE, AOE, AVE,
    ground-truth and prediction counts). Rows: classes with ground truth or predictions; a
    dash marks an undefined value. Ends with a newline."""
    evaluated = detection.evaluated_classes
    summary = (
        f"**mAP {_number(detection.mAP)}**, **NDS {_number(detection.NDS)}** over {detection.frames} frames; "
        f"mATE {_number(detection.mATE)} m, mASE {_number(detection.mASE)}, "
        f"mAOE {_number(detection.mAOE)} rad, mAVE {_number(detection.mAVE)} m/s."
    )
    lines = [summary, ""]
    if segmentation is not None:
        lines += [
            f"Segmentation IoU: drivable area {_number(segmentation.drivable_iou)}, "
            f"occupancy {_number(segmentation.occupancy_iou)} ({segmentation.frames} frames).",
            "",
        ]
    absent = [name for name, m in detection.per_class.items() if m.num_gt == 0]
    lines.append(
        f"Evaluated classes (with ground truth): {', '.join(evaluated) or 'none'}."
        + (f" Not evaluated (no ground truth): {', '.join(absent)}." if absent else "")
        + " NDS = (5 mAP + sum of (1 - min(1, mTP)) over ATE, ASE, AOE, AVE) / 9 (no attributes)."
    )
    lines.append("")
    thresholds = next(iter(detection.per_class.values())).ap_at if detection.per_class else {}
    header = (
        ["class", "AP"]
        + [f"AP@{t}" for t in thresholds]
        + [f"{e} ({_UNITS[e]})" for e in TP_ERRORS]
        + ["GT", "predictions"]
    )
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
    for name, m in detection.per_class.items():
        if m.num_gt == 0 and m.num_pred == 0:
            continue
        cells = [name, _number(m.ap)]
        cells += [_number(ap) for ap in m.ap_at.values()]
        cells += [_number(m.error(e)) for e in TP_ERRORS]
        cells += [str(m.num_gt), str(m.num_pred)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
