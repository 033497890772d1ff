"""Evaluation metrics: nuScenes detection metrics (AP, TP errors, mAP, NDS), BEV segmentation
IoU, and the JSON / Markdown reports of ``fusion eval``. ROS-free, numpy."""

from __future__ import annotations

from perception.evaluation.detection import (
    NUSCENES_CLASS_RANGE_M,
    TP_ERRORS,
    ClassMetrics,
    DetectionEvaluator,
    DetectionMetrics,
    EvalConfig,
)
from perception.evaluation.errors import EvaluationError
from perception.evaluation.report import metrics_json, metrics_markdown
from perception.evaluation.segmentation import SegmentationEvaluator, SegmentationMetrics

__all__ = [
    "NUSCENES_CLASS_RANGE_M",
    "TP_ERRORS",
    "ClassMetrics",
    "DetectionEvaluator",
    "DetectionMetrics",
    "EvalConfig",
    "EvaluationError",
    "SegmentationEvaluator",
    "SegmentationMetrics",
    "metrics_json",
    "metrics_markdown",
]
