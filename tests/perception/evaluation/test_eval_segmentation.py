"""BEV segmentation IoU on known rasters, accumulated over frames, and bad rasters."""

from __future__ import annotations

import math

import numpy as np
import pytest

from perception.evaluation import EvaluationError, SegmentationEvaluator


def raster(
    drivable: list[tuple[int, int]], occupancy: list[tuple[int, int]], shape: tuple[int, int] = (4, 5)
) -> np.ndarray:
    """(2, ny, nx) uint8 with ones at the given (row, col) cells."""
    result = np.zeros((2, *shape), dtype=np.uint8)
    for channel, cells in enumerate((drivable, occupancy)):
        for row, col in cells:
            result[channel, row, col] = 1
    return result


def test_iou_on_known_rasters_sums_over_frames() -> None:
    evaluator = SegmentationEvaluator()
    # Frame 0: drivable pred 4 cells, truth 6 cells, 3 shared -> I 3, U 7; occupancy identical (2 cells).
    evaluator.add_frame(
        raster([(0, 0), (0, 1), (0, 2), (3, 4)], [(1, 1), (2, 2)]),
        raster([(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)], [(1, 1), (2, 2)]),
    )
    first = evaluator.result()
    assert first.drivable_iou == pytest.approx(3 / 7)
    assert first.occupancy_iou == 1.0
    # Frame 1: drivable I 1, U 1; occupancy predicted where there is none: I 0, U 2.
    evaluator.add_frame(raster([(2, 3)], [(0, 4), (3, 0)]), raster([(2, 3)], []))
    both = evaluator.result()
    assert both.drivable_iou == pytest.approx((3 + 1) / (7 + 1))  # cells pooled, not per-frame mean
    assert both.occupancy_iou == pytest.approx(2 / 4)
    assert both.frames == 2
    assert both.as_dict() == {"drivable_iou": pytest.approx(0.5), "occupancy_iou": pytest.approx(0.5)}


def test_bool_rasters_are_accepted_and_empty_channels_are_undefined() -> None:
    evaluator = SegmentationEvaluator()
    truth = raster([(1, 1)], [])
    evaluator.add_frame(truth.astype(bool), truth)
    result = evaluator.result()
    assert result.drivable_iou == 1.0
    assert math.isnan(result.occupancy_iou)  # no occupied cell anywhere
    assert result.as_dict() == {"drivable_iou": 1.0, "occupancy_iou": None}
    empty = SegmentationEvaluator().result()
    assert empty.frames == 0
    assert math.isnan(empty.drivable_iou)


def test_bad_rasters_name_the_value_and_the_frame() -> None:
    evaluator = SegmentationEvaluator()
    evaluator.add_frame(raster([], []), raster([], []))
    good = raster([(0, 0)], [])
    with pytest.raises(
        EvaluationError, match=r"frame 1: prediction raster shape \(2, 4, 5\) != truth shape \(2, 4, 6\)"
    ):
        evaluator.add_frame(good, raster([], [], shape=(4, 6)))
    with pytest.raises(EvaluationError, match=r"frame 1: raster shape \(2, 3, 3\) differs from frame 0's \(2, 4, 5\)"):
        evaluator.add_frame(raster([], [], (3, 3)), raster([], [], (3, 3)))
    with pytest.raises(EvaluationError, match=r"frame 1: truth raster must have shape \(2, ny, nx\).*got \(4, 5\)"):
        evaluator.add_frame(good, good[0])
    twos = good.copy()
    twos[1, 2, 3] = 2
    with pytest.raises(EvaluationError, match=r"frame 1: truth raster\[1, 2, 3\] = 2: must be 0 or 1"):
        evaluator.add_frame(good, twos)
    with pytest.raises(EvaluationError, match=r"frame 1: prediction raster must be uint8 .* got dtype float32"):
        evaluator.add_frame(good.astype(np.float32), good)
    assert evaluator.frames == 1
