"""Targets -> ideal network outputs -> decode recovers the boxes; heatmap peaks; losses."""

from __future__ import annotations

import math

import numpy as np
import torch

from perception.bev_grid import BevGrid
from perception.ground_truth import Boxes
from perception.model.decode import DecodeConfig, decode_detections, decode_segmentation
from perception.model.losses import focal_loss, total_loss
from perception.model.targets import detection_targets

GRID = BevGrid(resolution=0.8)


def _boxes() -> Boxes:
    return Boxes.create(
        centers=[[12.3, -4.1, 0.9], [-7.7, 20.2, 0.8], [30.0, 30.0, 1.5]],
        sizes=[[4.6, 1.9, 1.7], [0.7, 0.6, 1.8], [12.0, 2.9, 3.4]],
        yaws=[0.3, -2.0, math.pi / 2],
        labels=[0, 8, 3],
        velocities=[[4.0, -1.0], [np.nan, np.nan], [0.0, 8.0]],
    )


def _ideal_outputs(boxes: Boxes) -> tuple[np.ndarray, np.ndarray]:
    t = detection_targets(boxes, GRID, 10)
    logits = np.log(np.clip(t.heatmap, 1e-6, 1 - 1e-6) / (1 - np.clip(t.heatmap, 1e-6, 1 - 1e-6)))
    regression = np.zeros((10, *GRID.shape), dtype=np.float32)
    for slot in range(len(boxes)):
        row, col = divmod(int(t.index[slot]), GRID.nx)
        regression[:, row, col] = t.regression[slot]
    return logits.astype(np.float32), regression


def test_decode_of_ideal_outputs_recovers_the_boxes() -> None:
    boxes = _boxes()
    heatmap, regression = _ideal_outputs(boxes)
    decoded = decode_detections(heatmap, regression, GRID, DecodeConfig(score_threshold=0.5))
    assert len(decoded) == 3
    order = np.argsort(decoded.labels)
    truth = np.argsort(boxes.labels)
    np.testing.assert_allclose(decoded.centers[order], boxes.centers[truth], atol=1e-5)
    np.testing.assert_allclose(decoded.sizes[order], boxes.sizes[truth], rtol=1e-5)
    np.testing.assert_allclose(np.cos(decoded.yaws[order] - boxes.yaws[truth]), 1.0, atol=1e-6)
    np.testing.assert_allclose(decoded.velocities[order][:2], boxes.velocities[truth][:2], atol=1e-5)  # car, bus
    assert np.all(decoded.scores > 0.99)


def test_heatmap_peak_is_one_at_each_centre_cell_only() -> None:
    t = detection_targets(_boxes(), GRID, 10)
    assert np.count_nonzero(t.heatmap == 1.0) == 3
    assert t.weight[:3].sum() == 3 * 10 - 2  # the pedestrian's velocity is unknown
    assert t.weight[3:].sum() == 0


def test_boxes_outside_the_grid_get_no_target() -> None:
    far = Boxes.create(centers=[[80.0, 0.0, 1.0]], sizes=[[4.0, 2.0, 1.5]], yaws=[0.0], labels=[0])
    t = detection_targets(far, GRID, 10)
    assert not t.heatmap.any()
    assert not t.weight.any()


def test_losses_are_lowest_for_the_ideal_outputs() -> None:
    boxes = _boxes()
    heatmap, regression = _ideal_outputs(boxes)
    t = detection_targets(boxes, GRID, 10)
    segmentation_truth = np.zeros((1, 2, 256, 256), dtype=np.float32)
    segmentation_truth[:, 0, 100:150] = 1.0
    targets = {
        "heatmap": torch.from_numpy(t.heatmap[None]),
        "index": torch.from_numpy(t.index[None]),
        "regression": torch.from_numpy(t.regression[None]),
        "weight": torch.from_numpy(t.weight[None]),
        "segmentation": torch.from_numpy(segmentation_truth),
    }
    ideal = (
        torch.from_numpy(heatmap[None]),
        torch.from_numpy(regression[None]),
        torch.from_numpy(segmentation_truth * 20 - 10),
    )
    noisy = (ideal[0] + 2.0, ideal[1] + 0.5, -ideal[2])
    good, bad = total_loss(ideal, targets), total_loss(noisy, targets)
    assert float(good["regression"]) < 1e-5
    for name in ("heatmap", "regression", "segmentation", "total"):
        assert float(good[name]) < float(bad[name])
    assert float(focal_loss(torch.full((1, 1, 4, 4), -20.0), torch.zeros(1, 1, 4, 4))) < 1e-6


def test_segmentation_decode_thresholds_probabilities() -> None:
    logits = np.array([[[-3.0, 0.1]], [[2.0, -0.1]]], dtype=np.float32)
    np.testing.assert_array_equal(decode_segmentation(logits), [[[0, 1]], [[1, 0]]])
