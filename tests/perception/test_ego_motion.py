"""Ego-motion compensation: odometry history, lidar de-skew and accumulation, radar and camera
poses at the frame stamp, on analytic motions whose truth is known in closed form."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from calibration.transforms import invert_transform, make_transform, matrix_to_quaternion, yaw_to_quaternion
from perception.bev_grid import BevGrid
from perception.ego_motion import (
    EgoMotionError,
    OdometryBuffer,
    OdometryCoverageError,
    RadarCompensator,
    SweepAccumulator,
    bev_source_cells,
    camera_extrinsic_at_frame,
    camera_pose_at,
    camera_poses,
    radar_to_frame,
    sweep_to_base,
)
from perception.samples import OdometrySample, PointScan

SECOND = 1_000_000_000
MS = 1_000_000
T0 = 1_700_000_000 * SECOND  # a ROS-like epoch stamp: int64 arithmetic must stay exact
SPEED = 10.0  # m/s
YAW_RATE = 0.5  # rad/s
#: nuScenes-like LIDAR_TOP: 0.94 m ahead of the rear axle, 1.84 m up, x right / y forward.
LIDAR_TO_BASE = make_transform([0.94, 0.0, 1.84], yaw_to_quaternion(-math.pi / 2))
LIDAR_FIELDS = ("x", "y", "z", "intensity", "ring", "time")
RADAR_FIELDS = ("x", "y", "z", "vr", "vr_compensated", "rcs")
#: A front radar 3.6 m ahead of the rear axle, 0.5 m up, looking forward.
RADAR_TO_BASE = make_transform([3.6, 0.0, 0.5], yaw_to_quaternion(0.0))

Motion = Callable[[int], np.ndarray]


def _straight(t_ns: int) -> np.ndarray:
    """base_link -> odom: 10 m/s along a heading of 0.3 rad, climbing 0.2 m/s."""
    t = (t_ns - T0) / SECOND
    return make_transform([SPEED * t * math.cos(0.3), SPEED * t * math.sin(0.3), 0.2 * t], yaw_to_quaternion(0.3))


def _turning(t_ns: int) -> np.ndarray:
    """base_link -> odom: a circle at 10 m/s and 0.5 rad/s (radius 20 m)."""
    t = (t_ns - T0) / SECOND
    yaw = YAW_RATE * t
    radius = SPEED / YAW_RATE
    return make_transform([radius * math.sin(yaw), radius * (1 - math.cos(yaw)), 0.0], yaw_to_quaternion(yaw))


def _sample(motion: Motion, stamp: int, frame_id: str = "odom") -> OdometrySample:
    pose = motion(stamp)
    return OdometrySample(
        stamp_ns=stamp,
        frame_id=frame_id,
        child_frame_id="base_link",
        position=pose[:3, 3],
        orientation_wxyz=matrix_to_quaternion(pose[:3, :3]),
        linear_velocity=np.zeros(3),
        angular_velocity=np.zeros(3),
    )


def _odometry(motion: Motion, start: int, end: int, period: int = 5 * MS) -> OdometryBuffer:
    buffer = OdometryBuffer(capacity=1000)
    for stamp in range(start, end + 1, period):
        buffer.add(_sample(motion, stamp))
    return buffer


def _world_points(n: int = 600, seed: int = 0) -> np.ndarray:
    """Static world points around the car's path (odom frame), 5-40 m from the origin."""
    rng = np.random.default_rng(seed)
    angle = rng.uniform(-math.pi, math.pi, n)
    distance = rng.uniform(5.0, 40.0, n)
    return np.stack([distance * np.cos(angle), distance * np.sin(angle), rng.uniform(-1.0, 3.0, n)], axis=1)


def _skewed_sweep(world: np.ndarray, motion: Motion, stamp: int, columns: int = 50, seed: int = 0) -> PointScan:
    """The sweep a spinning lidar records from the moving car: point i is fired at
    ``stamp + time_i`` (columns over 100 ms, in firing order) and expressed in the lidar
    frame at that instant."""
    rng = np.random.default_rng(seed)
    column = np.sort(rng.integers(0, columns, world.shape[0]))
    times = column * (100 * MS // columns)
    points = np.zeros((world.shape[0], len(LIDAR_FIELDS)), dtype=np.float32)
    for offset in np.unique(times):
        rows = times == offset
        to_lidar = invert_transform(motion(stamp + int(offset)) @ LIDAR_TO_BASE)
        points[rows, :3] = world[rows] @ to_lidar[:3, :3].T + to_lidar[:3, 3]
    points[:, 3] = np.arange(world.shape[0]) % 256
    points[:, 5] = times / 1e9
    return PointScan(LIDAR_FIELDS, points)


def _in_base(world: np.ndarray, motion: Motion, stamp: int) -> np.ndarray:
    to_base = invert_transform(motion(stamp))
    return world @ to_base[:3, :3].T + to_base[:3, 3]


# ---------------------------------------------------------------------------------------------
# Lidar


@pytest.mark.parametrize("motion", [_straight, _turning], ids=["straight", "turning"])
def test_static_points_seen_in_three_sweeps_land_at_one_place(motion: Motion) -> None:
    world = _world_points()
    stamps = [T0 + 100 * MS, T0 + 200 * MS, T0 + 300 * MS]
    odometry = _odometry(motion, T0, T0 + SECOND)
    accumulator = SweepAccumulator(5, LIDAR_TO_BASE, max_age_ns=SECOND)
    for k, stamp in enumerate(stamps):
        out = accumulator.add(
            _skewed_sweep(world, motion, stamp, seed=k), stamp, odometry.trajectory(stamp, stamp + 100 * MS)
        )
    n = world.shape[0]
    assert out.dtype == np.float32
    assert out.shape == (3 * n, 5)
    assert out.flags.c_contiguous
    truth = _in_base(world, motion, stamps[-1])
    for k in range(3):  # rows: newest sweep first, each in scan order
        rows = out[k * n : (k + 1) * n]
        # 200 Hz odometry: SLERP is exact for a constant yaw rate, the chord cuts the arc by
        # at most 20 m * (1 - cos(0.00125)) = 1.6e-5 m; the rest is float32 rounding.
        np.testing.assert_allclose(rows[:, :3], truth, atol=5e-5)
        np.testing.assert_array_equal(rows[:, 3], np.arange(n) % 256)
        np.testing.assert_array_equal(rows[:, 4], np.float32(k * 0.1))
    # Without de-skew (every point taken at the stamp) the same points are off by up to the
    # distance driven in a sweep (1 m), so the check above is not trivially met.
    naive = _skewed_sweep(world, motion, stamps[-1], seed=2).points.copy()
    naive[:, 5] = 0.0
    lagged = sweep_to_base(
        PointScan(LIDAR_FIELDS, naive), stamps[-1], odometry.trajectory(stamps[-1], stamps[-1]), LIDAR_TO_BASE
    )
    assert np.max(np.linalg.norm(lagged.points[:, :3] - truth, axis=1)) > 0.5


def test_unordered_firing_times_give_the_same_cloud() -> None:
    world = _world_points()
    stamp = T0 + 200 * MS
    trajectory = _odometry(_turning, T0, T0 + SECOND).trajectory(stamp, stamp + 100 * MS)
    scan = _skewed_sweep(world, _turning, stamp)
    shuffled = np.random.default_rng(1).permutation(world.shape[0])
    ordered = sweep_to_base(scan, stamp, trajectory, LIDAR_TO_BASE)
    unordered = sweep_to_base(PointScan(LIDAR_FIELDS, scan.points[shuffled]), stamp, trajectory, LIDAR_TO_BASE)
    np.testing.assert_array_equal(unordered.points, ordered.points[shuffled])
    np.testing.assert_allclose(ordered.points[:, :3], _in_base(world, _turning, stamp), atol=2e-4)


def test_sweeps_beyond_the_count_or_age_are_dropped() -> None:
    world = _world_points(100)
    odometry = _odometry(_straight, T0, T0 + 2 * SECOND)
    stamps = [T0 + k * 100 * MS for k in range(1, 6)]

    def run(accumulator: SweepAccumulator) -> np.ndarray:
        for stamp in stamps:
            out = accumulator.add(
                _skewed_sweep(world, _straight, stamp), stamp, odometry.trajectory(stamp, stamp + 100 * MS)
            )
        return out

    capped = SweepAccumulator(3, LIDAR_TO_BASE, max_age_ns=SECOND)
    out = run(capped)
    assert out.shape == (300, 5)
    np.testing.assert_allclose(np.unique(out[:, 4]), np.array([0.0, 0.1, 0.2], dtype=np.float32))
    assert [s.stamp_ns for s in capped.sweeps] == stamps[::-1][:3]
    assert capped.stats.expired == 2
    young = SweepAccumulator(10, LIDAR_TO_BASE, max_age_ns=150 * MS)
    out = run(young)
    assert out.shape == (200, 5)  # the current sweep and the one 100 ms before it
    assert np.max(out[:, 4]) == np.float32(0.1)
    single = SweepAccumulator(1, LIDAR_TO_BASE, max_age_ns=0)
    assert run(single).shape == (100, 5)


def test_nan_points_are_dropped_and_counted_missing_fields_default() -> None:
    world = _world_points(50)
    stamp = T0 + 100 * MS
    trajectory = _odometry(_straight, T0, T0 + SECOND).trajectory(stamp, stamp + 100 * MS)
    points = _skewed_sweep(world, _straight, stamp).points.copy()
    points[3, 0] = np.nan
    points[7, 2] = np.inf
    points[9, 5] = np.nan  # no firing time: cannot be de-skewed
    accumulator = SweepAccumulator(2, LIDAR_TO_BASE, max_age_ns=SECOND)
    out = accumulator.add(PointScan(LIDAR_FIELDS, points), stamp, trajectory)
    assert out.shape == (47, 5)
    assert accumulator.stats.last_dropped_points == 3
    keep = np.setdiff1d(np.arange(50), [3, 7, 9])
    np.testing.assert_allclose(out[:, :3], _in_base(world, _straight, stamp)[keep], atol=2e-4)
    # No intensity and no time field: intensity 0, every point taken at the stamp.
    bare = PointScan(("x", "y", "z"), np.ascontiguousarray(points[keep, :3]))
    result = sweep_to_base(bare, stamp, trajectory, LIDAR_TO_BASE)
    np.testing.assert_array_equal(result.points[:, 3], 0.0)
    expected = points[keep, :3].astype(np.float64) @ LIDAR_TO_BASE[:3, :3].T + LIDAR_TO_BASE[:3, 3]
    np.testing.assert_allclose(result.points[:, :3], expected, atol=1e-5)
    assert accumulator.add(PointScan(LIDAR_FIELDS, points[:0]), stamp + 100 * MS, trajectory).shape == (47, 5)


def test_a_stamp_going_back_resets_the_history() -> None:
    world = _world_points(20)
    odometry = _odometry(_straight, T0, T0 + SECOND)
    accumulator = SweepAccumulator(5, LIDAR_TO_BASE, max_age_ns=SECOND)
    for stamp in (T0 + 300 * MS, T0 + 400 * MS, T0 + 100 * MS):  # a bag loop
        out = accumulator.add(
            _skewed_sweep(world, _straight, stamp), stamp, odometry.trajectory(stamp, stamp + 100 * MS)
        )
    assert out.shape == (20, 5)
    assert accumulator.stats.resets == 1
    assert accumulator.stats.sweeps_added == 3


def test_bad_lidar_input_names_the_value_and_its_source() -> None:
    stamp = T0 + 100 * MS
    trajectory = _odometry(_straight, T0, T0 + 300 * MS).trajectory(stamp, stamp + 100 * MS)
    scan = _skewed_sweep(_world_points(10), _straight, stamp)
    accumulator = SweepAccumulator(2, LIDAR_TO_BASE, max_age_ns=SECOND, source="lidar_top")
    nanoseconds = scan.points.copy()
    nanoseconds[:, 5] = np.linspace(2e6, 9e7, 10)  # a driver writing ns in a field documented as seconds
    with pytest.raises(
        EgoMotionError,
        match=r"lidar sweep at \d+ ns \(lidar_top\): field 'time' is 2000000\.0 s at point 0; expected seconds",
    ):
        accumulator.add(PointScan(LIDAR_FIELDS, nanoseconds), stamp, trajectory)
    shuffled = PointScan(LIDAR_FIELDS, nanoseconds[::-1].copy())  # out of order: the sorting path checks too
    with pytest.raises(EgoMotionError, match=r"field 'time' is 90000000\.0 s at point 0; expected seconds"):
        accumulator.add(shuffled, stamp, trajectory)
    with pytest.raises(EgoMotionError, match=r"\(lidar_top\) has no field 'z'; fields \('x', 'y', 'intensity'\)"):
        accumulator.add(PointScan(("x", "y", "intensity"), scan.points[:, :3]), stamp, trajectory)
    late = stamp + 250 * MS
    with pytest.raises(OdometryCoverageError, match=rf"lidar sweep at {late} ns \(lidar_top\).*{late} ns is outside"):
        accumulator.add(scan, late, trajectory)
    assert len(accumulator) == 0  # failed adds leave the history alone
    with pytest.raises(EgoMotionError, match=r"\(front\): n_sweeps must be an integer >= 1, got 0"):
        SweepAccumulator(0, LIDAR_TO_BASE, max_age_ns=SECOND, source="front")
    with pytest.raises(EgoMotionError, match=r"max_age_ns must be an integer >= 0, got 0.5"):
        SweepAccumulator(2, LIDAR_TO_BASE, max_age_ns=0.5)  # type: ignore[arg-type]
    skewed = LIDAR_TO_BASE.copy()
    skewed[0, 0] = 2.0
    with pytest.raises(EgoMotionError, match=r"\(front\): lidar_to_base"):
        SweepAccumulator(2, skewed, max_age_ns=SECOND, source="front")


# ---------------------------------------------------------------------------------------------
# Odometry history


def test_odometry_out_of_order_duplicates_and_bounds() -> None:
    buffer = OdometryBuffer(capacity=5, max_span_ns=SECOND)
    stamps = [T0 + k * 20 * MS for k in (0, 2, 1, 3, 3, 4, 5)]
    accepted = [buffer.add(_sample(_straight, stamp)) for stamp in stamps]
    assert accepted == [True, True, True, True, False, True, True]
    assert buffer.covered == (T0 + 20 * MS, T0 + 100 * MS)  # capacity 5: the oldest evicted
    stats = buffer.stats
    assert (stats.stored, stats.added, stats.out_of_order, stats.duplicates, stats.evicted) == (5, 6, 1, 1, 1)
    # Interpolation over the re-ordered samples is the motion itself (a straight line is exact).
    trajectory = buffer.trajectory(T0 + 30 * MS, T0 + 70 * MS)
    np.testing.assert_allclose(trajectory.interpolate([T0 + 50 * MS])[0], _straight(T0 + 50 * MS), atol=1e-9)
    assert trajectory.start_ns <= T0 + 30 * MS
    assert trajectory.end_ns >= T0 + 70 * MS
    assert buffer.add(_sample(_straight, T0)) is False  # older than everything kept at capacity
    # Span: 1.5 s later only the last second survives.
    buffer.add(_sample(_straight, T0 + 1600 * MS))
    assert buffer.covered == (T0 + 1600 * MS, T0 + 1600 * MS)


def test_odometry_clock_jump_back_resets() -> None:
    buffer = OdometryBuffer(reset_jump_ns=500 * MS)
    for stamp in range(T0 + 2 * SECOND, T0 + 3 * SECOND, 20 * MS):
        buffer.add(_sample(_straight, stamp))
    assert buffer.add(_sample(_straight, T0 + 2 * SECOND + 590 * MS))  # late, within the jump limit
    assert buffer.stats.resets == 0
    assert buffer.add(_sample(_straight, T0))  # a bag loop
    assert buffer.stats.resets == 1
    assert buffer.covered == (T0, T0)


def test_odometry_coverage_errors_name_the_stamps() -> None:
    buffer = OdometryBuffer(source="/localization/odometry")
    with pytest.raises(OdometryCoverageError, match=r"\(/localization/odometry\) has no samples to cover \[5, 6\] ns"):
        buffer.trajectory(5, 6)
    for stamp in range(T0, T0 + 200 * MS + 1, 20 * MS):
        buffer.add(_sample(_straight, stamp))
    first, last = T0, T0 + 200 * MS
    with pytest.raises(
        OdometryCoverageError,
        match=rf"covers \[{first}, {last}\] ns \(max extrapolation 0 ns\) but "
        rf"\[{first + 150 * MS}, {last + 30 * MS}\] ns was requested: it ends {30 * MS} ns after the newest sample",
    ):
        buffer.trajectory(first + 150 * MS, last + 30 * MS)
    with pytest.raises(OdometryCoverageError, match=r"starts 1 ns before the oldest sample"):
        buffer.trajectory(first - 1, first)
    with pytest.raises(EgoMotionError, match=r"ends \(9 ns\) before it starts \(10 ns\)"):
        buffer.trajectory(10, 9)
    with pytest.raises(EgoMotionError, match=r"sample at \d+ ns \(/localization/odometry\) is base_link -> map"):
        buffer.add(_sample(_straight, last + 20 * MS, frame_id="map"))
    with pytest.raises(EgoMotionError, match=r"max_extrapolation_ns must be an integer in \[0, 500000000\], got -1"):
        OdometryBuffer(max_extrapolation_ns=-1)


def test_odometry_small_extrapolation_is_allowed() -> None:
    buffer = OdometryBuffer(max_extrapolation_ns=30 * MS)
    for stamp in range(T0, T0 + 200 * MS + 1, 20 * MS):
        buffer.add(_sample(_straight, stamp))
    trajectory = buffer.trajectory(T0 + 190 * MS, T0 + 230 * MS)  # past the newest sample
    np.testing.assert_allclose(trajectory.interpolate([T0 + 230 * MS])[0], _straight(T0 + 230 * MS), atol=1e-9)
    with pytest.raises(OdometryCoverageError, match="ends 31000000 ns after"):
        buffer.trajectory(T0, T0 + 231 * MS)
    one = OdometryBuffer(max_extrapolation_ns=10 * MS)
    one.add(_sample(_straight, T0))
    np.testing.assert_allclose(one.trajectory(T0, T0 + 5 * MS).interpolate([T0 + 5 * MS])[0], _straight(T0))


# ---------------------------------------------------------------------------------------------
# Radar


def _radar_scan(rows: list[list[float]]) -> PointScan:
    return PointScan(RADAR_FIELDS, np.array(rows, dtype=np.float32))


def test_static_radar_target_ahead_is_moved_by_the_ego_and_has_no_velocity() -> None:
    """Ego at 10 m/s straight: a static object 20 m ahead of the radar approaches at vr = -10;
    compensated it stands still, and 50 ms later the car is 0.5 m closer."""
    buffer = _odometry(_straight, T0, T0 + SECOND, period=20 * MS)
    scan_stamp, frame_stamp = T0 + 400 * MS, T0 + 450 * MS
    trajectory = buffer.trajectory(scan_stamp, frame_stamp)
    scan = _radar_scan([[20.0, 0.0, 0.0, -10.0, 0.0, 10.0], [15.0, 15.0, 1.0, -10.0 / math.sqrt(2.0), 0.0, 5.0]])
    out = radar_to_frame(scan, scan_stamp, frame_stamp, trajectory, RADAR_TO_BASE, source="radar_front")
    assert out.dtype == np.float32
    assert out.shape == (2, 7)
    # The straight motion climbs 0.2 m/s: 1 cm lower after 50 ms.
    np.testing.assert_allclose(out[:, :3], [[23.6 - 0.5, 0.0, 0.49], [18.6 - 0.5, 15.0, 1.49]], atol=1e-4)
    np.testing.assert_allclose(out[:, 3], [10.0, 5.0])
    np.testing.assert_allclose(out[:, 4:6], 0.0, atol=1e-6)
    np.testing.assert_allclose(out[:, 6], np.float32(0.05))
    # Propagation along a zero velocity changes nothing.
    np.testing.assert_allclose(
        radar_to_frame(scan, scan_stamp, frame_stamp, trajectory, RADAR_TO_BASE, propagate=True), out
    )


def test_radar_velocity_is_rotated_into_the_frame_and_can_propagate() -> None:
    """While turning, a target moving away along the line of sight at 45 deg: the velocity
    vector turns with the frame (base_link at the frame stamp has yawed by 0.5 rad/s * 0.1 s)."""
    buffer = _odometry(_turning, T0, T0 + SECOND)
    scan_stamp, frame_stamp = T0 + 300 * MS, T0 + 400 * MS
    trajectory = buffer.trajectory(scan_stamp, frame_stamp)
    left_radar = make_transform([3.6, 0.8, 0.5], yaw_to_quaternion(math.pi / 4))
    scan = _radar_scan([[10.0, 10.0, 0.0, 0.0, 4.0, 0.0], [0.0, 0.0, 0.0, 1.0, 1.0, 0.0], [np.nan, 1, 1, 1, 1, 1]])
    out = radar_to_frame(scan, scan_stamp, frame_stamp, trajectory, left_radar)
    assert out.shape == (2, 7)  # the NaN row is dropped
    heading = math.pi / 4 + math.pi / 4 - YAW_RATE * 0.1  # in base_link at the frame stamp
    np.testing.assert_allclose(out[0, 4:6], [4.0 * math.cos(heading), 4.0 * math.sin(heading)], atol=1e-4)
    np.testing.assert_array_equal(out[1, 4:6], 0.0)  # at the radar origin: no line of sight
    expected = trajectory.relative(scan_stamp, frame_stamp) @ left_radar @ np.array([10.0, 10.0, 0.0, 1.0])
    np.testing.assert_allclose(out[0, :3], expected[:3], atol=1e-4)
    moved = radar_to_frame(scan, scan_stamp, frame_stamp, trajectory, left_radar, propagate=True)
    np.testing.assert_allclose(moved[0, :2] - out[0, :2], 0.1 * out[0, 4:6], atol=1e-4)
    empty = PointScan(RADAR_FIELDS, np.zeros((0, 6), dtype=np.float32))
    assert radar_to_frame(empty, scan_stamp, frame_stamp, trajectory, left_radar).shape == (0, 7)
    # A scan after the frame stamp has a negative lag.
    later = radar_to_frame(scan, frame_stamp, scan_stamp, trajectory, left_radar)
    np.testing.assert_allclose(later[:, 6], np.float32(-0.1))


def test_radar_compensator_matches_scan_by_scan_compensation() -> None:
    buffer = _odometry(_turning, T0, T0 + SECOND)
    frame = T0 + 500 * MS
    trajectory = buffer.trajectory(frame - 80 * MS, frame + 20 * MS)
    rng = np.random.default_rng(3)
    extrinsics = {
        "radar_front": RADAR_TO_BASE,
        "radar_left": make_transform([2.0, 0.9, 0.6], yaw_to_quaternion(math.pi / 2)),
    }
    scans = []
    for k, radar in enumerate(["radar_front", "radar_left", "radar_front"]):
        points = rng.uniform(-30.0, 30.0, (20 + k, 6)).astype(np.float32)
        points[0, 4] = np.nan  # dropped
        scans.append((radar, frame - 70 * MS + 40 * k * MS, PointScan(RADAR_FIELDS, points)))
    compensator = RadarCompensator(extrinsics, propagate=True)
    together = compensator.to_frame(scans, frame, trajectory)
    one_by_one = [
        radar_to_frame(scan, stamp, frame, trajectory, extrinsics[radar], propagate=True, source=radar)
        for radar, stamp, scan in scans
    ]
    assert together.shape == (19 + 20 + 21, 7)
    np.testing.assert_array_equal(together, np.concatenate(one_by_one))
    np.testing.assert_allclose(np.unique(together[:, 6]), np.float32([-0.01, 0.03, 0.07]))
    with pytest.raises(EgoMotionError, match=r"unknown radar 'radar_rear'; known: \['radar_front', 'radar_left'\]"):
        compensator.to_frame([("radar_rear", frame, scans[0][2])], frame, trajectory)
    late = frame + 30 * MS
    with pytest.raises(
        OdometryCoverageError, match=rf"radar scan at {late} ns \(radar_left\) for the frame at {frame}"
    ):
        compensator.to_frame([scans[0], ("radar_left", late, scans[1][2])], frame, trajectory)


def test_bad_radar_input_names_the_field_and_the_radar() -> None:
    trajectory = _odometry(_straight, T0, T0 + 100 * MS).trajectory(T0, T0 + 100 * MS)
    lidar_like = PointScan(("x", "y", "z", "vr", "rcs"), np.zeros((1, 5), dtype=np.float32))
    with pytest.raises(EgoMotionError, match=r"radar scan at 0 ns \(radar_rear\) has no field 'vr_compensated'"):
        radar_to_frame(lidar_like, 0, T0, trajectory, RADAR_TO_BASE, source="radar_rear")
    scan = _radar_scan([[1.0, 0.0, 0.0, 0.0, 0.0, 0.0]])
    with pytest.raises(OdometryCoverageError, match=rf"radar scan at 5 ns \(radar_rear\) for the frame at {T0} ns"):
        radar_to_frame(scan, 5, T0, trajectory, RADAR_TO_BASE, source="radar_rear")
    with pytest.raises(EgoMotionError, match=r"\(radar_rear\): radar_to_base"):
        radar_to_frame(scan, T0, T0, trajectory, np.eye(3), source="radar_rear")


# ---------------------------------------------------------------------------------------------
# Cameras


def test_camera_pose_at_its_stamp_relative_to_the_frame() -> None:
    trajectory = _odometry(_straight, T0, T0 + SECOND).trajectory(T0, T0 + SECOND)
    frame = T0 + 500 * MS
    poses = camera_poses({"cam_front": frame - 40 * MS, "cam_back": frame + 20 * MS}, frame, trajectory)
    # 40 ms earlier at 10 m/s: a static point is 0.4 m further back (and 8 mm lower) in the frame.
    np.testing.assert_allclose(poses["cam_front"][:3, 3], [-0.4, 0.0, -0.008], atol=1e-9)
    np.testing.assert_allclose(poses["cam_back"][:3, 3], [0.2, 0.0, 0.004], atol=1e-9)
    camera_to_base = make_transform([1.7, 0.0, 1.5], yaw_to_quaternion(0.1))
    extrinsic = camera_extrinsic_at_frame(camera_to_base, poses["cam_front"])
    point = np.array([5.0, 1.0, 2.0, 1.0])  # in the camera frame at its stamp
    world = _straight(frame - 40 * MS) @ camera_to_base @ point
    np.testing.assert_allclose(extrinsic @ point, invert_transform(_straight(frame)) @ world, atol=1e-9)
    with pytest.raises(
        OdometryCoverageError, match=rf"camera image at {T0 - 1} ns \(cam_left\) for the frame at {frame} ns"
    ):
        camera_pose_at(T0 - 1, frame, trajectory, source="cam_left")


def test_bev_source_cells_shift_the_lifted_raster_by_the_ego_motion() -> None:
    grid = BevGrid(x_min=-4.0, x_max=4.0, y_min=-2.0, y_max=2.0, resolution=0.4)
    identity = bev_source_cells(np.eye(4), grid)
    assert identity.shape == (*grid.shape, 2)
    assert identity.dtype == np.float32
    cols, rows = np.meshgrid(np.arange(grid.nx), np.arange(grid.ny))
    np.testing.assert_allclose(identity[..., 0], cols, atol=1e-5)
    np.testing.assert_allclose(identity[..., 1], rows, atol=1e-5)
    # The car drove 0.4 m forward since the image: what the frame sees at cell c, the image
    # (lifted in base_link at its stamp) saw one column further ahead.
    forward = make_transform([-0.4, 0.0, 0.0], yaw_to_quaternion(0.0))
    np.testing.assert_allclose(bev_source_cells(forward, grid)[..., 0], cols + 1, atol=1e-5)
    turned = make_transform([0.0, 0.0, 0.0], yaw_to_quaternion(math.pi / 2))
    source = bev_source_cells(turned, grid)
    # A 90 deg turn: frame point (x, y) was at (y, -x) in base_link at the image stamp.
    x, y = grid.cell_centers()
    np.testing.assert_allclose(source[..., 0], (y - grid.x_min) / grid.resolution - 0.5, atol=1e-4)
    np.testing.assert_allclose(source[..., 1], (-x - grid.y_min) / grid.resolution - 0.5, atol=1e-4)
