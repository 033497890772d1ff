"""The evaluation reports: the issue's JSON shape and the Markdown table."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from perception.evaluation import (
    DetectionEvaluator,
    SegmentationEvaluator,
    metrics_json,
    metrics_markdown,
)
from perception.ground_truth import Boxes


def _metrics(make_scene: Any) -> tuple[Any, Any]:
    detection = DetectionEvaluator()
    for predictions, truth in make_scene(seed=2, frames=8, classes=("car", "pedestrian", "traffic_cone")):
        detection.add_frame(predictions, truth)
    segmentation = SegmentationEvaluator()
    truth = np.zeros((2, 4, 4), dtype=np.uint8)
    truth[0, :2] = 1
    prediction = truth.copy()
    prediction[0, 2] = 1  # drivable: 8 of 12 cells right; occupancy: never positive
    segmentation.add_frame(prediction, truth)
    return detection.result(), segmentation.result()


def test_json_has_exactly_the_required_keys(make_scene: Any) -> None:
    detection, segmentation = _metrics(make_scene)
    report = json.loads(json.dumps(metrics_json(detection, segmentation), allow_nan=False))
    assert list(report) == ["mAP", "NDS", "mATE", "mASE", "mAOE", "mAVE", "per_class", "segmentation", "frames"]
    assert report["segmentation"] == {"drivable_iou": 8 / 12, "occupancy_iou": None}
    assert report["frames"] == 8
    assert set(report["per_class"]["car"]) == {
        "AP", "AP@0.5", "AP@1.0", "AP@2.0", "AP@4.0", "ATE", "ASE", "AOE", "AVE", "num_gt", "num_pred"
    }  # fmt: skip
    assert report["mAP"] == detection.mAP
    assert report["NDS"] == detection.NDS
    assert report["per_class"]["car"]["AP"] == detection.per_class["car"].ap
    assert report["per_class"]["bus"]["AP"] is None  # no ground truth: not evaluated


def test_markdown_summary_and_table(make_scene: Any) -> None:
    detection, segmentation = _metrics(make_scene)
    text = metrics_markdown(detection, segmentation)
    lines = text.splitlines()
    assert lines[0].startswith(f"**mAP {detection.mAP:.3f}**, **NDS {detection.NDS:.3f}** over 8 frames")
    assert "drivable area 0.667, occupancy –" in text
    assert "Evaluated classes (with ground truth): car, pedestrian, traffic_cone." in text
    header = next(line for line in lines if line.startswith("| class"))
    assert header.split(" | ")[1:7] == ["AP", "AP@0.5", "AP@1.0", "AP@2.0", "AP@4.0", "ATE (m)"]
    rows = {line.split(" | ")[0].strip("| "): line for line in lines if line.startswith("| ") and line != header}
    assert set(rows) == {"car", "pedestrian", "traffic_cone"}  # classes without boxes get no row
    car = detection.per_class["car"]
    cells = rows["car"].strip("| ").split(" | ")
    assert cells[1] == f"{car.ap:.3f}"
    assert cells[-2:] == [str(car.num_gt), str(car.num_pred)]
    assert rows["traffic_cone"].strip("| ").split(" | ")[8] == "–"  # AOE undefined for cones
    assert text.endswith("\n")


def test_markdown_without_segmentation_or_boxes() -> None:
    detection = DetectionEvaluator()
    detection.add_frame(Boxes.empty(), Boxes.empty())
    text = metrics_markdown(detection.result())
    assert text.startswith("**mAP –**, **NDS –** over 1 frames")
    assert "Evaluated classes (with ground truth): none." in text
    assert "Segmentation" not in text
