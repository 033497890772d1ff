"""Training targets for the CenterPoint-style heads, built from ground-truth boxes (numpy).

For one frame on the output grid (H x W cells of ``grid.resolution`` metres):
    heatmap (num_classes, H, W) float32: a Gaussian peak of 1.0 at each box centre cell,
        radius from the box footprint (CenterNet's overlap rule, at least ``min_radius`` cells)
    index (max_objects,) int64: flattened cell (row * W + col) of each box centre
    regression (max_objects, 10) float32: perception.model.heads.REGRESSION_CHANNELS
    weight (max_objects, 10) float32: 1 where the value is known (0 for padding and for an
        unknown velocity, which the ground truth marks with NaN)
Boxes whose centre lies outside the grid are skipped; beyond ``max_objects`` the nearest to the
ego are kept.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from perception.bev_grid import BevGrid
from perception.ground_truth import Boxes
from perception.model.heads import REGRESSION_CHANNELS


@dataclass(frozen=True)
class DetectionTargets:
    heatmap: NDArray[np.float32]
    index: NDArray[np.int64]
    regression: NDArray[np.float32]
    weight: NDArray[np.float32]


def gaussian_radius(length_cells: float, width_cells: float, min_overlap: float = 0.1) -> float:
    """CenterNet's radius (cells) within which a shifted box keeps ``min_overlap`` IoU."""
    h, w = length_cells, width_cells
    b1 = h + w
    c1 = w * h * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + math.sqrt(b1**2 - 4 * c1)) / 2
    b2 = 2 * (h + w)
    c2 = (1 - min_overlap) * w * h
    r2 = (b2 + math.sqrt(b2**2 - 16 * c2)) / 2
    a3 = 4 * min_overlap
    b3 = -2 * min_overlap * (h + w)
    c3 = (min_overlap - 1) * w * h
    r3 = (b3 + math.sqrt(b3**2 - 4 * a3 * c3)) / 2
    return min(r1, r2, r3)


def _draw_gaussian(heatmap: NDArray[np.float32], row: int, col: int, radius: int) -> None:
    sigma = (2 * radius + 1) / 6.0
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-(offsets[:, None] ** 2 + offsets[None, :] ** 2) / (2 * sigma**2)).astype(np.float32)
    height, width = heatmap.shape
    top, bottom = max(0, row - radius), min(height, row + radius + 1)
    left, right = max(0, col - radius), min(width, col + radius + 1)
    patch = kernel[top - row + radius : bottom - row + radius, left - col + radius : right - col + radius]
    np.maximum(heatmap[top:bottom, left:right], patch, out=heatmap[top:bottom, left:right])


def detection_targets(
    boxes: Boxes, grid: BevGrid, num_classes: int, *, max_objects: int = 128, min_radius: int = 2
) -> DetectionTargets:
    """Targets for ``boxes`` (base_link) on ``grid`` (the network's output grid)."""
    heatmap = np.zeros((num_classes, grid.ny, grid.nx), dtype=np.float32)
    index = np.zeros(max_objects, dtype=np.int64)
    regression = np.zeros((max_objects, len(REGRESSION_CHANNELS)), dtype=np.float32)
    weight = np.zeros_like(regression)
    if len(boxes):
        fx = (boxes.centers[:, 0] - grid.x_min) / grid.resolution
        fy = (boxes.centers[:, 1] - grid.y_min) / grid.resolution
        col, row = np.floor(fx).astype(np.int64), np.floor(fy).astype(np.int64)
        inside = (col >= 0) & (col < grid.nx) & (row >= 0) & (row < grid.ny) & (boxes.labels < num_classes)
        order = np.argsort(np.hypot(boxes.centers[:, 0], boxes.centers[:, 1]), kind="stable")
        kept = [i for i in order if inside[i]][:max_objects]
        for slot, i in enumerate(kept):
            length, width, height = boxes.sizes[i]
            radius = max(min_radius, int(gaussian_radius(length / grid.resolution, width / grid.resolution)))
            _draw_gaussian(heatmap[boxes.labels[i]], int(row[i]), int(col[i]), radius)
            index[slot] = row[i] * grid.nx + col[i]
            velocity = boxes.velocities[i]
            regression[slot] = (
                fx[i] - col[i],
                fy[i] - row[i],
                boxes.centers[i, 2],
                math.log(length),
                math.log(width),
                math.log(height),
                math.sin(boxes.yaws[i]),
                math.cos(boxes.yaws[i]),
                *np.nan_to_num(velocity, nan=0.0),
            )
            weight[slot] = 1.0
            weight[slot, 8:] = np.isfinite(velocity).astype(np.float32)
    return DetectionTargets(heatmap, index, regression, weight)
