"""Pose trajectories: SLERP interpolation, extrapolation policy, ego-motion compensation, de-skew."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from calibration import TrajectoryError
from calibration.poses import PoseTrajectory, compensate_points, deskew_points
from calibration.transforms import (
    apply_transform,
    invert_transform,
    make_transform,
    matrix_to_quaternion,
    quaternion_to_matrix,
    yaw_to_quaternion,
)
from perception.samples import OdometrySample

YAW_RATE = 0.5  # rad/s
SPEED = 10.0  # m/s
SECOND = 1_000_000_000
#: lidar mounted 1 m ahead of base_link, 1.8 m up, turned by 90 degrees (as nuScenes LIDAR_TOP)
LIDAR_TO_BASE = make_transform([1.0, 0.0, 1.8], yaw_to_quaternion(math.pi / 2))


def _turning(t_ns: int | np.integer) -> np.ndarray:
    """base_link -> odom on a circle: constant yaw rate and speed, starting at the origin."""
    t = float(t_ns) / SECOND
    yaw = YAW_RATE * t
    radius = SPEED / YAW_RATE
    return make_transform([radius * math.sin(yaw), radius * (1 - math.cos(yaw)), 0.0], yaw_to_quaternion(yaw))


def _straight(t_ns: int | np.integer) -> np.ndarray:
    """base_link -> odom: straight line along a fixed heading, constant speed, climbing."""
    t = float(t_ns) / SECOND
    heading = yaw_to_quaternion(0.7)
    return make_transform([SPEED * t * math.cos(0.7), SPEED * t * math.sin(0.7), 0.5 * t], heading)


def _trajectory(motion, period_ns: int = 20_000_000, end_ns: int = 3 * SECOND, **kwargs) -> PoseTrajectory:  # type: ignore[no-untyped-def]
    stamps = np.arange(0, end_ns + 1, period_ns, dtype=np.int64)
    return PoseTrajectory(stamps, np.stack([motion(t) for t in stamps]), **kwargs)


def _yaw(T: np.ndarray) -> float:
    return math.atan2(T[1, 0], T[0, 0])


def test_constant_yaw_rate_interpolates_rotation_exactly() -> None:
    trajectory = _trajectory(_turning)
    query = np.array([5_000_000, 1_234_567_891, 2_999_999_999, 20_000_000], dtype=np.int64)
    poses = trajectory.interpolate(query)
    assert poses.shape == (4, 4, 4)
    for pose, t in zip(poses, query, strict=True):
        truth = _turning(t)
        # SLERP of a constant yaw rate is exact; linear translation cuts the arc by its sagitta:
        # r (1 - cos(w dt / 2)) = 20 m * (1 - cos(0.005)) = 2.5e-4 m at most.
        assert _yaw(pose) == pytest.approx(_yaw(truth), abs=1e-12)
        np.testing.assert_allclose(pose[:3, :3], truth[:3, :3], atol=1e-12)
        assert np.linalg.norm(pose[:3, 3] - truth[:3, 3]) < 2.6e-4
        np.testing.assert_array_equal(pose[3], [0, 0, 0, 1])
    np.testing.assert_allclose(poses[3], _turning(20_000_000), atol=1e-12)  # a sample stamp: the sample


def test_straight_line_is_exact_and_relative_moves_static_points_backwards() -> None:
    trajectory = _trajectory(_straight, period_ns=100_000_000)
    query = np.arange(0, 3 * SECOND, 7_777_777, dtype=np.int64)
    truth = np.stack([_straight(t) for t in query])
    np.testing.assert_allclose(trajectory.interpolate(query), truth, atol=1e-12)
    # 0.25 s at 10 m/s forward (+0.125 m up): a static point is 2.5 m further back, 0.125 m lower.
    relative = trajectory.relative(SECOND, SECOND + 250_000_000)
    np.testing.assert_allclose(relative[:3, :3], np.eye(3), atol=1e-12)
    np.testing.assert_allclose(relative[:3, 3], [-2.5, 0.0, -0.125], atol=1e-12)
    np.testing.assert_allclose(trajectory.relative(SECOND + 250_000_000, SECOND) @ relative, np.eye(4), atol=1e-12)


def test_relative_on_a_turn_matches_the_analytic_motion() -> None:
    trajectory = _trajectory(_turning, period_ns=10_000_000)
    t_from, t_to = 1_000_000_000, 1_100_000_000  # both on sample stamps: exact
    expected = invert_transform(_turning(t_to)) @ _turning(t_from)
    np.testing.assert_allclose(trajectory.relative(t_from, t_to), expected, atol=1e-12)
    assert _yaw(expected) == pytest.approx(-YAW_RATE * 0.1, abs=1e-12)


def test_slerp_takes_the_short_way_across_the_quaternion_sign_flip() -> None:
    # yaw 170 deg -> 190 deg: matrix_to_quaternion returns w >= 0, so the stored quaternions
    # are on opposite hemispheres; interpolation must still turn by +10 deg, not -350 deg.
    stamps = np.array([0, 1000], dtype=np.int64)
    poses = np.stack([make_transform([0, 0, 0], yaw_to_quaternion(math.radians(a))) for a in (170.0, 190.0)])
    assert matrix_to_quaternion(poses[0][:3, :3]) @ matrix_to_quaternion(poses[1][:3, :3]) < 0
    middle = PoseTrajectory(stamps, poses).interpolate(np.array([500, 250], dtype=np.int64))
    assert abs(_yaw(middle[0])) == pytest.approx(math.pi, abs=1e-12)
    assert _yaw(middle[1]) == pytest.approx(math.radians(175.0), abs=1e-12)


def test_extrapolation_policy() -> None:
    trajectory = _trajectory(_straight, period_ns=100_000_000, end_ns=SECOND)
    with pytest.raises(TrajectoryError, match=r"stamp 1000000001 ns is outside the trajectory.*\[0, 1000000000\] ns"):
        trajectory.interpolate(np.array([500, 1_000_000_001], dtype=np.int64))
    with pytest.raises(TrajectoryError, match=r"stamp -5 ns .*max_extrapolation_ns=0\); off by 5 ns"):
        trajectory.relative(-5, 0)
    lenient = PoseTrajectory(trajectory.stamps_ns, trajectory.poses, max_extrapolation_ns=50_000_000)
    query = np.array([-50_000_000, 1_050_000_000], dtype=np.int64)
    # Constant velocity continues the end segments (exact for a straight line).
    np.testing.assert_allclose(lenient.interpolate(query), np.stack([_straight(t) for t in query]), atol=1e-12)
    with pytest.raises(TrajectoryError, match=r"stamp 1050000001 ns.*max_extrapolation_ns=50000000"):
        lenient.interpolate(np.array([1_050_000_001], dtype=np.int64))
    single = PoseTrajectory(np.array([10], dtype=np.int64), _straight(10)[None], max_extrapolation_ns=5)
    np.testing.assert_allclose(single.interpolate(np.array([5, 15], dtype=np.int64)), np.stack([_straight(10)] * 2))


def test_trajectory_validation_names_index_and_stamp() -> None:
    poses = np.stack([np.eye(4)] * 3)
    with pytest.raises(TrajectoryError, match=r"strictly increasing.*index 2 has stamp 10 ns after 20 ns at index 1"):
        PoseTrajectory(np.array([0, 20, 10]), poses)
    with pytest.raises(TrajectoryError, match=r"integer nanoseconds.*float64"):
        PoseTrajectory(np.array([0.0, 1.0, 2.0]), poses)
    with pytest.raises(TrajectoryError, match=r"poses must have shape \(3, 4, 4\).*got \(2, 4, 4\)"):
        PoseTrajectory(np.array([0, 1, 2]), poses[:2])
    with pytest.raises(TrajectoryError, match=r"non-empty \(N,\) array"):
        PoseTrajectory(np.array([], dtype=np.int64), np.zeros((0, 4, 4)))
    bad = poses.copy()
    bad[1, 0, 0] = 1.01
    with pytest.raises(TrajectoryError, match=r"pose 1 \(stamp 5 ns\) \(odom\.bag\) rotation is not orthonormal"):
        PoseTrajectory(np.array([0, 5, 9]), bad, source="odom.bag")
    bad = poses.copy()
    bad[2, 1, 3] = np.nan
    with pytest.raises(TrajectoryError, match=r"pose 2 \(stamp 9 ns\) has non-finite entries"):
        PoseTrajectory(np.array([0, 5, 9]), bad)
    bad = poses.copy()
    bad[0, 2, 2] = -1.0
    with pytest.raises(TrajectoryError, match=r"pose 0 \(stamp 0 ns\) rotation is a reflection"):
        PoseTrajectory(np.array([0, 5, 9]), bad)
    with pytest.raises(TrajectoryError, match="max_extrapolation_ns must be an integer >= 0, got -1"):
        PoseTrajectory(np.array([0, 5, 9]), poses, max_extrapolation_ns=-1)
    trajectory = PoseTrajectory(np.array([0, 5, 9]), poses)
    with pytest.raises(TrajectoryError, match="integer nanoseconds, got dtype float64"):
        trajectory.interpolate(np.array([1.5]))
    assert trajectory.stamps_ns.dtype == np.int64
    assert not trajectory.poses.flags.writeable


def _sample(t_ns: int, pose: np.ndarray, frame: str = "odom") -> OdometrySample:
    return OdometrySample(
        stamp_ns=t_ns,
        frame_id=frame,
        child_frame_id="base_link",
        position=pose[:3, 3],
        orientation_wxyz=matrix_to_quaternion(pose[:3, :3]),
        linear_velocity=np.zeros(3),
        angular_velocity=np.zeros(3),
    )


def test_from_odometry_sorts_samples_and_checks_frames() -> None:
    stamps = [40_000_000, 0, 20_000_000, 60_000_000]
    samples = [_sample(t, _turning(t)) for t in stamps]
    trajectory = PoseTrajectory.from_odometry(samples, source="run.bag")
    assert trajectory.stamps_ns.tolist() == sorted(stamps)
    assert (trajectory.frame_id, trajectory.child_frame_id) == ("odom", "base_link")
    np.testing.assert_allclose(trajectory.interpolate(np.array([40_000_000]))[0], _turning(40_000_000), atol=1e-12)
    with pytest.raises(TrajectoryError, match=r"odometry samples 0 and 2 \(run\.bag\) have the same stamp 5 ns"):
        PoseTrajectory.from_odometry(
            [_sample(5, np.eye(4)), _sample(1, np.eye(4)), _sample(5, np.eye(4))], source="run.bag"
        )
    with pytest.raises(TrajectoryError, match="odometry sample 1 is base_link -> map, sample 0 is base_link -> odom"):
        PoseTrajectory.from_odometry([_sample(0, np.eye(4)), _sample(1, np.eye(4), frame="map")])
    with pytest.raises(TrajectoryError, match="no odometry samples"):
        PoseTrajectory.from_odometry([])


def _world_points(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform([-40.0, -40.0, -1.0], [60.0, 40.0, 5.0], (n, 3))


def _in_sensor(world: np.ndarray, motion, t_ns: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    """World (odom) points seen from the lidar at time t."""
    return apply_transform(invert_transform(motion(t_ns) @ LIDAR_TO_BASE), world)


def test_compensate_points_moves_a_scan_to_another_time() -> None:
    trajectory = _trajectory(_turning, period_ns=10_000_000)
    world = _world_points(1000)
    t_from, t_to = 1_000_000_000, 1_080_000_000
    moved = compensate_points(_in_sensor(world, _turning, t_from), t_from, t_to, trajectory, LIDAR_TO_BASE)
    np.testing.assert_allclose(moved, _in_sensor(world, _turning, t_to), atol=1e-9)
    with pytest.raises(TrajectoryError, match=r"points must have shape \(N, 3\), got \(10, 4\)"):
        compensate_points(np.zeros((10, 4)), t_from, t_to, trajectory, LIDAR_TO_BASE)


def test_deskew_undoes_motion_during_a_sweep() -> None:
    trajectory = _trajectory(_turning, period_ns=10_000_000)
    world = _world_points(5000, seed=4)
    start = 1_000_000_000
    times = np.sort(np.random.default_rng(5).integers(start, start + 100_000_000, world.shape[0]))
    skewed = np.stack([_in_sensor(p[None], _turning, int(t))[0] for p, t in zip(world, times, strict=True)])
    target = start + 100_000_000
    deskewed = deskew_points(skewed, times, target, trajectory, LIDAR_TO_BASE)
    truth = _in_sensor(world, _turning, target)
    # Only the interpolation's chord error remains (sagitta 6e-5 m at 10 ms odometry).
    error = np.linalg.norm(deskewed - truth, axis=1)
    assert error.max() < 1e-4
    naive = np.linalg.norm(skewed - truth, axis=1)
    assert naive.max() > 0.5, "the sweep is distorted by up to a metre before de-skew"
    with pytest.raises(TrajectoryError, match=r"point_times_ns must be \(5000,\) integer nanoseconds"):
        deskew_points(skewed, times.astype(np.float64), target, trajectory, LIDAR_TO_BASE)
    with pytest.raises(TrajectoryError, match="stamp 3100000000 ns is outside"):
        deskew_points(skewed, times, 3_100_000_000, trajectory, LIDAR_TO_BASE)


def test_deskew_of_a_full_sweep_takes_a_few_milliseconds() -> None:
    trajectory = _trajectory(_turning, period_ns=10_000_000)
    points = _world_points(35000)
    times = np.sort(np.random.default_rng(1).integers(SECOND, SECOND + 100_000_000, points.shape[0]))
    deskew_points(points, times, SECOND + 50_000_000, trajectory, LIDAR_TO_BASE)
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        deskew_points(points, times, SECOND + 50_000_000, trajectory, LIDAR_TO_BASE)
        runs.append(time.perf_counter() - start)
    assert sorted(runs)[2] < 0.03, f"median {sorted(runs)[2] * 1e3:.1f} ms for 35k points"


def test_interpolated_rotations_are_proper() -> None:
    rng = np.random.default_rng(9)
    q = rng.normal(size=(30, 4))
    poses = np.stack([make_transform(rng.normal(size=3), quaternion_to_matrix(v / np.linalg.norm(v))) for v in q])
    trajectory = PoseTrajectory(np.arange(30, dtype=np.int64) * 1000, poses)
    out = trajectory.interpolate(rng.integers(0, 29_000, 500))
    R = out[:, :3, :3]
    np.testing.assert_allclose(np.swapaxes(R, 1, 2) @ R, np.broadcast_to(np.eye(3), R.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-12)
