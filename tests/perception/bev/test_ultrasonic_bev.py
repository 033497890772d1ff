"""Ultrasonic BEV: the occupied arc and the free cone of one sensor, REP-117 specials (inf,
-inf, NaN), the default rig's cones around the bumpers, agreement with the numpy
per-sensor rule, per-reading poses, and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmarks.bev import ultrasonic_bev_numpy
from calibration import Modality, default_rig_path, load_rig
from calibration.transforms import make_transform, yaw_to_quaternion
from perception.bev import ULTRASONIC_CHANNELS, UltrasonicBev, UltrasonicCone, UltrasonicReading, ultrasonic_bev
from perception.bev_grid import BevGrid
from perception.errors import BevError
from perception.samples import RangeReading

# 0.2 m cells over [-6, 6) x [-6, 6)
GRID = BevGrid(x_min=-6.0, x_max=6.0, y_min=-6.0, y_max=6.0, resolution=0.2)
OCCUPIED, FREE = range(2)
FOV = math.radians(60)


def _cone(x: float = 0.0, y: float = 0.0, yaw: float = 0.0, sensor_id: str = "us_test") -> UltrasonicCone:
    return UltrasonicCone(make_transform([x, y, 0.5], yaw_to_quaternion(yaw)), FOV, 0.2, 5.0, sensor_id)


def _centres(grid: BevGrid, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, y = grid.cell_centers()
    return x[mask], y[mask]


def test_detection_marks_an_arc_occupied_and_the_cells_before_it_free() -> None:
    bev = UltrasonicBev(GRID, [_cone()])
    out = bev(np.array([2.05]))
    assert out.shape == (len(ULTRASONIC_CHANNELS), GRID.ny, GRID.nx)
    assert out.dtype == np.float32
    assert set(np.unique(out)) <= {0.0, 1.0}
    x, y = _centres(GRID, out[OCCUPIED] > 0)
    distance, angle = np.hypot(x, y), np.abs(np.arctan2(y, x))
    assert len(x) >= 5
    assert np.all(np.abs(distance - 2.05) <= GRID.resolution / 2 + 1e-9)
    assert np.all(angle <= FOV / 2 + 1e-9)
    # the cell on the beam axis at ~2 m is occupied, the one at ~1 m is free, at ~3 m unknown
    row, col, _ = GRID.cell_of(np.array([[2.1, 0.1], [1.1, 0.1], [3.1, 0.1], [-1.1, 0.1]]))
    np.testing.assert_array_equal(out[:, row[0], col[0]], [1.0, 0.0])  # occupied, not free
    np.testing.assert_array_equal(out[:, row[1], col[1]], [0.0, 1.0])  # free
    assert out[:, row[2], col[2]].sum() == 0.0
    assert out[:, row[3], col[3]].sum() == 0.0  # behind the sensor
    x, y = _centres(GRID, out[FREE] > 0)
    assert np.all(np.hypot(x, y) < 2.05 - GRID.resolution / 2)
    assert np.all(np.hypot(x, y) >= 0.2)
    assert np.all(np.abs(np.arctan2(y, x)) <= FOV / 2 + 1e-9)
    assert np.all(x > 0)


def test_nothing_detected_frees_the_whole_cone() -> None:
    bev = UltrasonicBev(GRID, [_cone()])
    cells, distance = bev.cone_cells(0)
    for nothing in (np.inf, 5.5):
        out = bev(np.array([nothing]))
        assert not np.any(out[OCCUPIED])
        assert np.count_nonzero(out[FREE]) == len(cells)
        np.testing.assert_array_equal(np.flatnonzero(out[FREE]), np.sort(cells))
    x, y = _centres(GRID, bev(np.array([np.inf]))[FREE] > 0)
    assert np.hypot(x, y).max() <= 5.0
    assert np.hypot(x, y).max() > 4.5
    assert np.all(np.diff(distance) >= 0)


def test_missing_and_too_close_readings() -> None:
    bev = UltrasonicBev(GRID, [_cone()])
    assert not np.any(bev(np.array([np.nan])))
    assert not np.any(bev(np.array([-1.0])))
    # REP-117 -inf (closer than min_range) reads as min_range; the sensor sits 0.25 m behind
    # the centre of cell (x, y) = (0.1, 0.1), so that one cell centre lies on that arc
    bev = UltrasonicBev(GRID, [_cone(-0.15, 0.1)])
    close = bev(np.array([-np.inf]))
    np.testing.assert_array_equal(close, bev(np.array([0.2])))
    x, y = _centres(GRID, close[OCCUPIED] > 0)
    assert len(x) >= 1
    assert np.hypot(x + 0.15, y - 0.1).max() <= 0.2 + GRID.resolution / 2 + 1e-9
    assert not np.any(close[FREE])


def test_sensors_combine_and_rotate_with_their_pose() -> None:
    left = _cone(0.0, 0.0, math.pi / 2, "us_left")
    bev = UltrasonicBev(GRID, [_cone(), left])
    out = bev(np.array([np.nan, 3.05]))
    x, y = _centres(GRID, out[OCCUPIED] > 0)
    assert np.all(y > 2.5)  # the left-facing sensor's arc is on +y
    out = bev(np.array([2.05, 3.05]))
    x, y = _centres(GRID, out[OCCUPIED] > 0)
    assert np.any(x > 1.5)
    assert np.any(y > 2.5)
    # a cone moved by 1 m along x moves its arc by 1 m (5 columns)
    shifted = UltrasonicBev(GRID, [_cone(1.0, 0.0)])(np.array([2.05]))
    np.testing.assert_array_equal(shifted[:, :, 5:], UltrasonicBev(GRID, [_cone()])(np.array([2.05]))[:, :, :-5])


def test_default_rig_cones_sit_around_the_bumpers() -> None:
    rig = load_rig(default_rig_path())
    grid = BevGrid()
    bev = UltrasonicBev.from_rig(rig, grid)
    sensors = rig.of(Modality.ULTRASONIC)
    assert bev.sensor_ids == tuple(s.id for s in sensors)
    assert len(bev.sensor_ids) == 12
    x, y = grid.cell_centers()
    for index, sensor in enumerate(sensors):
        cells, _ = bev.cone_cells(index)
        assert len(cells) > 40, sensor.id
        cx, cy = x.reshape(-1)[cells].mean(), y.reshape(-1)[cells].mean()
        if "front" in sensor.id:
            assert cx > 3.0, sensor.id  # in front of the front bumper (x = 3.05 .. 3.43 m)
        else:
            assert cx < -0.4, sensor.id  # behind the rear axle, around the rear bumper (x = -0.42 .. -0.68 m)
        if "_left_" in sensor.id:
            assert cy > 0.5, sensor.id
        else:
            assert cy < -0.5, sensor.id
        # the cone's centroid lies along the sensor's beam axis
        origin, axis = sensor.extrinsic[:2, 3], sensor.extrinsic[:2, 0]
        direction = np.array([cx, cy]) - origin
        assert np.dot(direction, axis) / np.linalg.norm(direction) > math.cos(math.radians(10)), sensor.id
    # nothing detected anywhere: the free space hugs the car, nothing far away
    out = bev(np.full(12, np.inf))
    assert not np.any(out[OCCUPIED])
    fx, fy = x[out[FREE] > 0], y[out[FREE] > 0]
    assert fx.max() < 3.5 + 5.0
    assert fx.min() > -1.1 - 5.0
    assert np.abs(fy).max() < 1.0 + 5.0


def test_identical_to_the_numpy_rule() -> None:
    rig = load_rig(default_rig_path())
    for grid in (BevGrid(), GRID):
        bev = UltrasonicBev.from_rig(rig, grid)
        rng = np.random.default_rng(0)
        for _ in range(20):
            ranges = rng.uniform(-0.5, 6.0, 12)
            ranges[rng.integers(0, 12, 3)] = rng.choice([np.inf, -np.inf, np.nan], 3)
            np.testing.assert_array_equal(bev(ranges), ultrasonic_bev_numpy(bev, ranges))


def test_readings_with_their_own_poses() -> None:
    cones = [_cone(), _cone(0.0, 0.0, math.pi, "us_back")]
    readings = [UltrasonicReading(cones[0], 2.05), UltrasonicReading(cones[1], math.inf)]
    np.testing.assert_array_equal(ultrasonic_bev(readings, GRID), UltrasonicBev(GRID, cones)(np.array([2.05, np.inf])))
    reading = RangeReading(
        stamp_ns=0,
        frame_id="us_msg",
        range_m=1.5,
        min_range_m=0.1,
        max_range_m=4.0,
        field_of_view_rad=0.5,
        detected=True,
    )
    cone = UltrasonicCone.from_reading(reading, make_transform([0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]))
    assert (cone.sensor_id, cone.max_range_m, cone.field_of_view_rad) == ("us_msg", 4.0, 0.5)
    out = ultrasonic_bev([UltrasonicReading(cone, reading.range_m)], GRID)
    x, y = _centres(GRID, out[OCCUPIED] > 0)
    assert np.all(np.abs(np.hypot(x, y) - 1.5) <= 0.1 + 1e-9)


def test_bad_ranges_name_the_sensors() -> None:
    bev = UltrasonicBev(GRID, [_cone(sensor_id="us_a"), _cone(sensor_id="us_b")])
    with pytest.raises(
        BevError, match=r"ranges from /us must have shape \(2,\), one per sensor \['us_a', 'us_b'\], got shape \(3,\)"
    ):
        bev(np.zeros(3), source="/us")
    with pytest.raises(BevError, match="must be floating point metres, got dtype int64"):
        bev(np.array([1, 2]))


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("field_of_view_rad", 0.0, "field_of_view_rad must be in (0, pi), got 0.0"),
        ("field_of_view_rad", math.pi, "field_of_view_rad must be in (0, pi)"),
        ("min_range_m", -0.1, "min_range_m must be finite and >= 0, got -0.1"),
        ("max_range_m", 0.1, "max_range_m must be finite and > min_range_m (0.2), got 0.1"),
        ("max_range_m", math.nan, "max_range_m must be finite"),
    ],
)
def test_bad_cones_name_the_sensor_and_field(field: str, value: float, fragment: str) -> None:
    values = {"field_of_view_rad": FOV, "min_range_m": 0.2, "max_range_m": 5.0, field: value}
    with pytest.raises(BevError, match="ultrasonic cone of 'us_bad'") as info:
        UltrasonicCone(np.eye(4), sensor_id="us_bad", **values)
    assert fragment in str(info.value)


def test_bad_pose_and_vertical_beam() -> None:
    with pytest.raises(BevError, match=r"'us_bad': pose must be a finite \(4, 4\) transform, got shape \(3, 3\)"):
        UltrasonicCone(np.eye(3), FOV, 0.2, 5.0, "us_bad")
    down = make_transform([0.0, 0.0, 0.5], [math.cos(math.pi / 4), 0.0, math.sin(math.pi / 4), 0.0])
    with pytest.raises(BevError, match=r"beam axis .* is vertical"):
        UltrasonicCone(down, FOV, 0.2, 5.0, "us_bad")
    with pytest.raises(BevError, match="cones\\[0\\] must be an UltrasonicCone, got dict"):
        UltrasonicBev(GRID, [{"pose": np.eye(4)}])  # type: ignore[list-item]
