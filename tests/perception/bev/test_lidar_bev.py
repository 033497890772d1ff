"""Lidar BEV features: exact values of hand-built cells, the ignore rules, orientation, bit
equality with the numpy baseline, reuse of the accumulators between calls, and bad input."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest

from benchmarks.bev import lidar_bev_numpy
from perception.bev import LIDAR_CHANNELS, lidar_bev
from perception.bev_grid import BevGrid
from perception.errors import BevError

# 8 x 8 cells of 0.5 m over [-2, 2) x [-2, 2); z slab [-1, 3)
SMALL = BevGrid(x_min=-2.0, x_max=2.0, y_min=-2.0, y_max=2.0, resolution=0.5, z_min=-1.0, z_max=3.0)
DENSITY, Z_MAX, Z_MIN, Z_MEAN, INTENSITY, LAG = range(6)


def _points(*rows: tuple[float, ...]) -> np.ndarray:
    return np.array(rows, dtype=np.float32).reshape(-1, len(rows[0]) if rows else 5)


def _only_cell(out: np.ndarray, row: int, col: int) -> None:
    """Every channel is zero outside cell (row, col)."""
    mask = np.ones(out.shape[1:], dtype=bool)
    mask[row, col] = False
    assert not np.any(out[:, mask]), f"values outside cell ({row}, {col})"


def test_one_point_at_a_cell_centre() -> None:
    # centre of column 4 (x in [0, 0.5)) and row 5 (y in [0.5, 1.0))
    out = lidar_bev(_points((0.25, 0.75, 1.25, 40.0, 0.1)), SMALL)
    assert out.shape == (len(LIDAR_CHANNELS), 8, 8)
    assert out.dtype == np.float32
    assert out.flags.c_contiguous
    expected = np.array([math.log1p(1), 1.25, 1.25, 1.25, 40.0, 0.1], dtype=np.float32)
    np.testing.assert_array_equal(out[:, 5, 4], expected)
    _only_cell(out, 5, 4)


def test_two_points_in_one_cell() -> None:
    points = _points((0.1, 0.6, 0.5, 10.0, 0.3), (0.4, 0.9, 2.0, 30.0, 0.05))
    out = lidar_bev(points, SMALL)
    cell = out[:, 5, 4]
    assert cell[DENSITY] == np.float32(math.log1p(2))
    assert cell[Z_MAX] == np.float32(2.0)
    assert cell[Z_MIN] == np.float32(0.5)
    assert cell[Z_MEAN] == np.float32(1.25)
    assert cell[INTENSITY] == np.float32(20.0)
    assert cell[LAG] == np.float32(0.05)  # the newest point
    _only_cell(out, 5, 4)


def test_orientation_rows_follow_y_columns_follow_x() -> None:
    out = lidar_bev(_points((1.9, -1.9, 0.0, 1.0, 0.0), (-1.9, 1.9, 0.0, 2.0, 0.0)), SMALL)
    # +x, -y: last column, first row; -x, +y: first column, last row
    assert out[INTENSITY, 0, 7] == 1.0
    assert out[INTENSITY, 7, 0] == 2.0
    assert np.count_nonzero(out[DENSITY]) == 2
    grid = BevGrid()
    row, col, inside = grid.cell_of(np.array([[10.0, 20.0]], dtype=np.float32))
    out = lidar_bev(_points((10.0, 20.0, 0.0, 5.0, 0.0)), grid)
    assert inside[0]
    assert out[INTENSITY, row[0], col[0]] == 5.0
    assert row[0] > grid.ny // 2
    assert col[0] > grid.nx // 2


def test_points_outside_the_grid_or_the_z_slab_are_ignored() -> None:
    points = _points(
        (2.0, 0.0, 0.0, 1.0, 0.0),  # x == x_max
        (0.0, 2.0, 0.0, 1.0, 0.0),  # y == y_max
        (-2.01, 0.0, 0.0, 1.0, 0.0),
        (0.0, -2.01, 0.0, 1.0, 0.0),
        (0.0, 0.0, 3.0, 1.0, 0.0),  # z == z_max
        (0.0, 0.0, -1.01, 1.0, 0.0),
    )
    assert not np.any(lidar_bev(points, SMALL))
    # the lower bounds are inside: x == x_min, y == y_min, z == z_min
    out = lidar_bev(_points((-2.0, -2.0, -1.0, 7.0, 0.0)), SMALL)
    assert out[INTENSITY, 0, 0] == 7.0
    assert out[Z_MIN, 0, 0] == -1.0


@pytest.mark.parametrize("column", range(5))
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_non_finite_value_drops_the_point(column: int, bad: float) -> None:
    good = (0.25, 0.75, 1.0, 10.0, 0.2)
    broken = list(good)
    broken[column] = bad
    out = lidar_bev(_points(good, tuple(broken)), SMALL)
    np.testing.assert_array_equal(out, lidar_bev(_points(good), SMALL))


def test_four_columns_mean_time_lag_zero() -> None:
    points = _points((0.25, 0.75, 1.0, 10.0), (0.3, 0.8, 2.0, 20.0))
    out = lidar_bev(points, SMALL)
    assert out[DENSITY, 5, 4] == np.float32(math.log1p(2))
    assert out[LAG, 5, 4] == 0.0
    assert out[INTENSITY, 5, 4] == 15.0


def test_no_points_give_zeros() -> None:
    out = lidar_bev(np.zeros((0, 5), dtype=np.float32), SMALL)
    assert out.shape == (6, 8, 8)
    assert not np.any(out)


def _random_points(n: int, seed: int, grid: BevGrid) -> np.ndarray:
    """Random points around and on the grid's edges, with a few non-finite values."""
    rng = np.random.default_rng(seed)
    points = np.empty((n, 5), dtype=np.float32)
    points[:, 0] = rng.uniform(grid.x_min - 3, grid.x_max + 3, n)
    points[:, 1] = rng.uniform(grid.y_min - 3, grid.y_max + 3, n)
    points[:, 2] = rng.uniform(grid.z_min - 1, grid.z_max + 1, n)
    points[:, 3] = rng.uniform(0, 255, n)
    points[:, 4] = rng.choice(np.arange(10) * 0.05, n)
    edges = rng.choice(n, 400, replace=False)
    points[edges[:100], 0] = rng.choice([grid.x_min, grid.x_max], 100)
    points[edges[100:200], 1] = rng.choice([grid.y_min, grid.y_max], 100)
    points[edges[200:300], 2] = rng.choice([grid.z_min, grid.z_max], 100)
    # exact cell boundaries inside the grid
    points[edges[300:], 0] = grid.x_min + rng.integers(0, grid.nx, 100) * grid.resolution
    nan_rows = rng.choice(n, 50, replace=False)
    points[nan_rows, rng.integers(0, 5, 50)] = np.nan
    # a crowded cell, for large counts
    points[:2000, :2] = (1.1, -3.3)
    points[:2000, 2] = np.clip(points[:2000, 2], grid.z_min, grid.z_max - 1)
    return points


@pytest.mark.parametrize(
    "grid", [BevGrid(), SMALL, BevGrid(x_min=-30.1, x_max=50.3, y_min=-7.3, y_max=12.2, resolution=0.3)]
)
def test_identical_to_the_numpy_baseline(grid: BevGrid) -> None:
    points = _random_points(50_000, 0, grid)
    out = lidar_bev(points, grid)
    expected = lidar_bev_numpy(points, grid)
    assert np.count_nonzero(expected[DENSITY]) > min(grid.nx * grid.ny // 2, 1000)
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(lidar_bev(points[:, :4].copy(), grid), lidar_bev_numpy(points[:, :4], grid))


def test_count_above_the_log1p_table() -> None:
    points = np.tile(np.array([[0.25, 0.75, 1.0, 1.0, 0.0]], dtype=np.float32), (70_001, 1))
    out = lidar_bev(points, SMALL)
    assert out[DENSITY, 5, 4] == np.float32(math.log1p(70_001))
    np.testing.assert_array_equal(out, lidar_bev_numpy(points, SMALL))


def test_accumulators_are_clean_between_calls() -> None:
    grid = BevGrid()
    first = _random_points(20_000, 1, grid)
    second = _random_points(5_000, 2, grid)
    lidar_bev(first, grid)
    np.testing.assert_array_equal(lidar_bev(second, grid), lidar_bev_numpy(second, grid))
    # another grid in between does not disturb either
    lidar_bev(first, SMALL)
    np.testing.assert_array_equal(lidar_bev(first, grid), lidar_bev_numpy(first, grid))


def test_non_contiguous_points_are_accepted() -> None:
    points = _random_points(10_000, 3, SMALL)
    np.testing.assert_array_equal(lidar_bev(points[::2], SMALL), lidar_bev_numpy(points[::2], SMALL))


def test_threads_get_their_own_accumulators() -> None:
    grid = BevGrid()
    inputs = [_random_points(30_000, seed, grid) for seed in range(4)]
    expected = [lidar_bev_numpy(p, grid) for p in inputs]
    results: dict[int, list[np.ndarray]] = {}

    def work(index: int) -> None:
        results[index] = [lidar_bev(inputs[index], grid) for _ in range(3)]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for index, outputs in results.items():
        for out in outputs:
            np.testing.assert_array_equal(out, expected[index])
    assert len(results) == 4


def test_real_nuscenes_sweep(realdata) -> None:  # type: ignore[no-untyped-def]
    path = next((realdata / "nuscenes_scene0061").glob("*LIDAR_TOP*.pcd.bin"))
    sweep = np.fromfile(path, dtype=np.float32).reshape(-1, 5)
    points = sweep.copy()
    points[:, 4] = 0.0  # the 5th column is the ring: use it as a zero time lag
    grid = BevGrid()
    out = lidar_bev(points, grid)
    np.testing.assert_array_equal(out, lidar_bev_numpy(points, grid))
    counts = np.expm1(out[DENSITY].astype(np.float64))
    _, _, inside = grid.cell_of(points)
    in_slab = inside & (points[:, 2] >= grid.z_min) & (points[:, 2] < grid.z_max)
    assert round(counts.sum()) == int(in_slab.sum())
    # the ground around the car is about 1.8 m below the roof lidar
    near = (np.abs(points[:, 0]) < 10) & (np.abs(points[:, 1]) < 10)
    assert np.median(points[near, 2]) == pytest.approx(-1.8, abs=0.3)


@pytest.mark.parametrize(
    ("points", "fragment"),
    [
        (np.zeros((10, 3), dtype=np.float32), "shape (N, 5) or (N, 4)"),
        (np.zeros((10, 6), dtype=np.float32), "got shape (10, 6)"),
        (np.zeros(10, dtype=np.float32), "got shape (10,)"),
        (np.zeros((10, 5), dtype=np.float64), "got dtype float64"),
        ([[0.0, 0.0, 0.0, 0.0, 0.0]], "got list"),
    ],
)
def test_bad_points_name_the_argument_and_shape(points: object, fragment: str) -> None:
    with pytest.raises(BevError, match="lidar_bev: points from /lidar/top") as info:
        lidar_bev(points, BevGrid(), source="/lidar/top")  # type: ignore[arg-type]
    assert fragment in str(info.value)


def test_bad_grid() -> None:
    with pytest.raises(BevError, match=r"grid must be a perception\.bev_grid\.BevGrid, got dict"):
        lidar_bev(np.zeros((1, 5), dtype=np.float32), {"resolution": 0.4})  # type: ignore[arg-type]


def test_into_a_reused_output() -> None:
    grid = BevGrid()
    out = np.full((6, grid.ny, grid.nx), 7.0, dtype=np.float32)  # stale values must go
    for seed in (4, 5):
        points = _random_points(20_000, seed, grid)
        assert lidar_bev(points, grid, out=out) is out
        np.testing.assert_array_equal(out, lidar_bev_numpy(points, grid))
    expected = (
        r"lidar_bev: out must be a writable C-contiguous float32 array of shape \(6, 8, 8\), got shape \(6, 8, 9\)"
    )
    with pytest.raises(BevError, match=expected):
        lidar_bev(points, SMALL, out=np.zeros((6, 8, 9), dtype=np.float32))
    with pytest.raises(BevError, match="got shape \\(6, 8, 8\\) dtype float64"):
        lidar_bev(points, SMALL, out=np.zeros((6, 8, 8)))
