"""Radar BEV features: occupancy, mean RCS and velocity, count, the ignore rules, bit
equality with the numpy baseline, and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.bev import radar_bev_numpy
from perception.bev import RADAR_CHANNELS, radar_bev
from perception.bev_grid import BevGrid
from perception.errors import BevError

SMALL = BevGrid(x_min=-2.0, x_max=2.0, y_min=-2.0, y_max=2.0, resolution=0.5, z_min=-1.0, z_max=3.0)
OCCUPANCY, RCS, VX, VY, COUNT = range(5)


def _points(*rows: tuple[float, ...]) -> np.ndarray:
    return np.array(rows, dtype=np.float32).reshape(-1, 7)


def test_velocity_and_rcs_means_in_one_cell() -> None:
    # [x, y, z, rcs, vx, vy, time_lag]; both in column 4 (x in [0, 0.5)), row 5 (y in [0.5, 1))
    points = _points((0.1, 0.6, 0.5, 10.0, 4.0, -1.0, 0.0), (0.4, 0.9, 0.7, -2.0, 2.0, 3.0, 0.05))
    out = radar_bev(points, SMALL)
    assert out.shape == (len(RADAR_CHANNELS), 8, 8)
    assert out.dtype == np.float32
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(out[:, 5, 4], np.array([1.0, 4.0, 3.0, 1.0, 2.0], dtype=np.float32))
    mask = np.ones((8, 8), dtype=bool)
    mask[5, 4] = False
    assert not np.any(out[:, mask])


def test_points_in_different_cells_stay_apart() -> None:
    points = _points((1.9, -1.9, 0.0, 5.0, 1.0, 0.0, 0.0), (-1.9, 1.9, 0.0, 7.0, 0.0, -1.0, 0.0))
    out = radar_bev(points, SMALL)
    # +x, -y: last column, first row; -x, +y: first column, last row
    np.testing.assert_array_equal(out[:, 0, 7], [1.0, 5.0, 1.0, 0.0, 1.0])
    np.testing.assert_array_equal(out[:, 7, 0], [1.0, 7.0, 0.0, -1.0, 1.0])
    assert out[COUNT].sum() == 2.0
    assert out[OCCUPANCY].sum() == 2.0


@pytest.mark.parametrize("column", range(7))
def test_a_nan_drops_the_point(column: int) -> None:
    good = (0.25, 0.75, 0.0, 1.0, 2.0, 3.0, 0.0)
    broken = list(good)
    broken[column] = np.nan
    out = radar_bev(_points(good, tuple(broken)), SMALL)
    np.testing.assert_array_equal(out, radar_bev(_points(good), SMALL))


def test_points_outside_the_grid_volume_are_ignored() -> None:
    points = _points(
        (2.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0),  # x == x_max
        (0.0, -2.5, 0.0, 1.0, 1.0, 1.0, 0.0),
        (0.0, 0.0, 3.0, 1.0, 1.0, 1.0, 0.0),  # z == z_max
    )
    assert not np.any(radar_bev(points, SMALL))
    assert not np.any(radar_bev(np.zeros((0, 7), dtype=np.float32), SMALL))


def test_identical_to_the_numpy_baseline() -> None:
    grid = BevGrid()
    rng = np.random.default_rng(0)
    n = 3000
    points = np.empty((n, 7), dtype=np.float32)
    points[:, :3] = rng.uniform([-60, -60, -4], [60, 60, 6], (n, 3))
    points[:, 3] = rng.normal(5, 8, n)
    points[:, 4:6] = rng.normal(0, 5, (n, 2))
    points[:, 6] = rng.uniform(0, 0.07, n)
    points[:300, :2] = points[300:600, :2]  # shared cells
    points[rng.choice(n, 30), rng.integers(0, 7, 30)] = np.nan
    out = radar_bev(points, grid)
    np.testing.assert_array_equal(out, radar_bev_numpy(points, grid))
    assert out[COUNT].max() >= 2


@pytest.mark.parametrize(
    ("points", "fragment"),
    [
        (
            np.zeros((4, 6), dtype=np.float32),
            "must have shape (N, 7) [x, y, z, rcs, vx, vy, time_lag_s], got shape (4, 6)",
        ),
        (np.zeros((4, 7), dtype=np.float64), "got dtype float64"),
        (np.zeros(7, dtype=np.float32), "got shape (7,)"),
    ],
)
def test_bad_points_name_the_argument_and_shape(points: np.ndarray, fragment: str) -> None:
    with pytest.raises(BevError, match="radar_bev: points from radar_front") as info:
        radar_bev(points, BevGrid(), source="radar_front")
    assert fragment in str(info.value)


def test_into_a_reused_output() -> None:
    out = np.full((5, 8, 8), 3.0, dtype=np.float32)
    points = _points((0.25, 0.75, 0.0, 1.0, 2.0, 3.0, 0.0))
    assert radar_bev(points, SMALL, out=out) is out
    np.testing.assert_array_equal(out, radar_bev(points, SMALL))
    with pytest.raises(BevError, match=r"radar_bev: out must be .* of shape \(5, 8, 8\), got .*C-contiguous False"):
        radar_bev(points, SMALL, out=np.zeros((5, 8, 8), dtype=np.float32)[:, :, ::-1])
