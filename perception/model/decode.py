"""Network outputs -> objects in base_link and BEV grids (numpy, backend independent).

Detection: sigmoid heatmap, a 3x3 local-maximum test per class (the CenterPoint "max-pool
NMS"), the ``top_k`` highest peaks over all classes, a score threshold, then each peak's
regression channels become a box (see perception.model.heads for the channel meaning).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from perception.bev_grid import BevGrid
from perception.ground_truth import Boxes


@dataclass(frozen=True)
class DecodeConfig:
    score_threshold: float = 0.1
    top_k: int = 200


def sigmoid(x: NDArray[np.float32]) -> NDArray[np.float32]:
    """Logistic function in float32, clipped so it never overflows."""
    out: NDArray[np.float32] = (1.0 / (1.0 + np.exp(-np.clip(x, -30.0, 30.0)))).astype(np.float32)
    return out


def _local_maxima(scores: NDArray[np.float32]) -> NDArray[np.bool_]:
    """(K, H, W) -> True where a cell is >= its 8 neighbours (per class); any monotonic score."""
    padded = np.pad(scores, ((0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
    height, width = scores.shape[1:]
    peak = np.ones(scores.shape, dtype=bool)
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            if dy == 1 and dx == 1:
                continue
            peak &= scores >= padded[:, dy : dy + height, dx : dx + width]
    return peak


def decode_detections(
    heatmap: NDArray[np.float32], regression: NDArray[np.float32], grid: BevGrid, config: DecodeConfig = DecodeConfig()
) -> Boxes:
    """One frame: heatmap (K, H, W) logits, regression (10, H, W) on ``grid`` -> Boxes with scores.

    Peaks and the top k are found on the logits (the sigmoid is monotonic, and in float32 it
    saturates to 1.0 where logits still differ); only the chosen peaks are turned into scores."""
    logits = np.asarray(heatmap, dtype=np.float32)
    candidates = np.where(_local_maxima(logits), logits, -np.inf).reshape(-1)
    k = min(config.top_k, candidates.size)
    top = np.argpartition(-candidates, k - 1)[:k]
    scores = sigmoid(candidates[top])
    keep = scores >= config.score_threshold
    top, scores = top[keep], scores[keep]
    order = np.argsort(-candidates[top], kind="stable")
    top, scores = top[order], scores[order]
    height, width = heatmap.shape[1:]
    label, cell = np.divmod(top, height * width)
    row, col = np.divmod(cell, width)
    values = np.asarray(regression, dtype=np.float64)[:, row, col]  # (10, N)
    x = grid.x_min + (col + values[0]) * grid.resolution
    y = grid.y_min + (row + values[1]) * grid.resolution
    sizes = np.exp(np.clip(values[3:6], -5.0, 5.0)).T
    return Boxes.create(
        centers=np.stack([x, y, values[2]], axis=1),
        sizes=sizes,
        yaws=np.arctan2(values[6], values[7]),
        velocities=values[8:10].T,
        labels=label,
        scores=scores.astype(np.float32),
    )


def decode_segmentation(logits: NDArray[np.float32], threshold: float = 0.5) -> NDArray[np.uint8]:
    """(2, ny, nx) logits -> (2, ny, nx) uint8 {0, 1}: drivable, occupancy (sigmoid >= threshold,
    compared as logit >= log(threshold / (1 - threshold)), with no exponential per cell)."""
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"segmentation threshold must be in (0, 1), got {threshold!r}")
    cut = np.float32(np.log(threshold / (1.0 - threshold)))
    return (np.asarray(logits, dtype=np.float32) >= cut).astype(np.uint8)
