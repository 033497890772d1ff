"""The global augmentation maps points, boxes and rasters consistently."""

from __future__ import annotations

import math

import numpy as np
import pytest

from perception.bev_grid import BevGrid
from perception.ground_truth import Boxes, rasterize_boxes
from perception.training.augment import Augmentation

GRID = BevGrid()
AUGMENTATIONS = [
    Augmentation(math.pi / 2, False, 1.0),
    Augmentation(0.3, True, 1.0),
    Augmentation(-0.7, True, 1.04),
]


def _boxes() -> Boxes:
    return Boxes.create(
        centers=[[10.0, 5.0, 0.8], [-20.0, 12.0, 1.0]],
        sizes=[[4.5, 1.9, 1.6], [10.0, 2.5, 3.0]],
        yaws=[0.2, -1.2],
        labels=[0, 3],
        velocities=[[5.0, 1.0], [np.nan, np.nan]],
    )


@pytest.mark.parametrize("aug", AUGMENTATIONS)
def test_box_corners_follow_the_points(aug: Augmentation) -> None:
    boxes = _boxes()
    moved = aug.boxes(boxes)
    corners = boxes.corners().reshape(-1, 3).astype(np.float32)
    expected = aug.points(corners)
    got = moved.corners().reshape(-1, 3)
    # corner order may change under a reflection: compare as sets per box
    for b in range(len(boxes)):
        e = np.sort(expected[b * 8 : (b + 1) * 8], axis=0)
        g = np.sort(got[b * 8 : (b + 1) * 8], axis=0)
        np.testing.assert_allclose(g, e, atol=1e-4)


def test_velocity_rotates_with_the_frame() -> None:
    aug = Augmentation(math.pi / 2, False, 1.0)
    moved = aug.boxes(_boxes())
    np.testing.assert_allclose(moved.velocities[0], [-1.0, 5.0], atol=1e-9)
    assert np.all(np.isnan(moved.velocities[1]))
    radar = np.array([[10.0, 0.0, 0.5, 3.0, 2.0, 0.0, 0.0]], dtype=np.float32)
    out = aug.points(radar, velocity_columns=(4, 5))
    np.testing.assert_allclose(out[0, :6], [0.0, 10.0, 0.5, 3.0, 0.0, 2.0], atol=1e-5)


@pytest.mark.parametrize("aug", AUGMENTATIONS)
def test_raster_follows_the_boxes(aug: Augmentation) -> None:
    boxes = _boxes()
    warped = aug.raster(rasterize_boxes(boxes, GRID), GRID)
    direct = rasterize_boxes(aug.boxes(boxes), GRID)
    disagreement = np.count_nonzero(warped != direct) / max(1, np.count_nonzero(direct))
    assert direct.sum() > 100
    assert disagreement < 0.15  # boundary cells differ by nearest-neighbour rounding only


def test_lookup_transform_inverts_the_map() -> None:
    aug = Augmentation(0.4, True, 0.97)
    p = np.array([3.0, -7.0, 1.2])
    forward = aug.points(p[None].astype(np.float32))[0].astype(np.float64)
    back = aug.lookup_transform() @ np.append(forward, 1.0)
    np.testing.assert_allclose(back[:3], p, atol=1e-5)
