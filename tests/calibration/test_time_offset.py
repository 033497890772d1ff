"""Time offset from yaw rates: a simulated drive through a ray-cast scene with a known
odometry clock offset, plus the error cases (straight driving, bad series)."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

from calibration.time_offset import (
    InsufficientMotionError,
    TimeOffsetError,
    estimate_time_offset,
    yaw_rates_from_poses,
    yaw_rates_from_sweeps,
)

o3d = pytest.importorskip("open3d")

TRUE_OFFSET_NS = 37_000_000  # odometry stamps run 37 ms late


def yaw_rate(t: np.ndarray) -> np.ndarray:
    """Varying yaw rate, rad/s: a weave with two periods (no straight stretch)."""
    return 0.25 * np.sin(2 * np.pi * t / 3.1) + 0.12 * np.sin(2 * np.pi * t / 1.7 + 0.5)


def trajectory(stamps_s: np.ndarray, speed: float = 4.0) -> np.ndarray:
    """(N, 4, 4) base_link -> world poses of a car driving at ``speed`` with ``yaw_rate``,
    integrated finely (exact to well under a micro-radian)."""
    fine = np.arange(0.0, stamps_s.max() + 1e-3, 1e-4)
    yaw = np.concatenate([[0.0], np.cumsum(0.5 * (yaw_rate(fine[1:]) + yaw_rate(fine[:-1])) * 1e-4)])
    x = np.concatenate([[0.0], np.cumsum(speed * np.cos(yaw[:-1]) * 1e-4)])
    y = np.concatenate([[0.0], np.cumsum(speed * np.sin(yaw[:-1]) * 1e-4)])
    psi = np.interp(stamps_s, fine, yaw)
    poses = np.tile(np.eye(4), (len(stamps_s), 1, 1))
    poses[:, 0, 0], poses[:, 0, 1] = np.cos(psi), -np.sin(psi)
    poses[:, 1, 0], poses[:, 1, 1] = np.sin(psi), np.cos(psi)
    poses[:, 0, 3], poses[:, 1, 3] = np.interp(stamps_s, fine, x), np.interp(stamps_s, fine, y)
    return poses


def scene(seed: int = 3) -> o3d.t.geometry.RaycastingScene:
    """Ground plane plus ~70 boxes (buildings, poles, parked cars) around the drive."""
    rng = np.random.default_rng(seed)
    world = o3d.t.geometry.RaycastingScene()
    ground = o3d.geometry.TriangleMesh.create_box(240.0, 240.0, 0.1).translate((-120.0, -120.0, -0.1))
    world.add_triangles(o3d.t.geometry.TriangleMesh.from_legacy(ground))
    for _ in range(70):
        size = rng.uniform([0.3, 0.3, 1.0], [8.0, 8.0, 6.0])
        center = rng.uniform([-40.0, -40.0], [60.0, 40.0])
        if np.hypot(*center) < 6.0:
            continue
        box = o3d.geometry.TriangleMesh.create_box(*size).translate((center[0], center[1], 0.0))
        box.rotate(box.get_rotation_matrix_from_xyz((0.0, 0.0, rng.uniform(0, np.pi))), center=box.get_center())
        world.add_triangles(o3d.t.geometry.TriangleMesh.from_legacy(box))
    return world


def lidar_rays(beams: int = 32, columns: int = 900) -> np.ndarray:
    """(beams * columns, 3) unit directions of a spinning lidar, -25..+10 degrees."""
    elevation = np.radians(np.linspace(-25.0, 10.0, beams))[:, None]
    azimuth = np.linspace(-np.pi, np.pi, columns, endpoint=False)[None, :]
    return np.stack(
        np.broadcast_arrays(
            np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth), np.sin(elevation)
        ),
        axis=-1,
    ).reshape(-1, 3)


def render_sweeps(world: o3d.t.geometry.RaycastingScene, poses: np.ndarray, height: float = 1.8) -> list[np.ndarray]:
    """Instantaneous sweeps (lidar frame = base_link raised by ``height``)."""
    directions = lidar_rays()
    sweeps = []
    for pose in poses:
        origin = pose[:3, 3] + [0.0, 0.0, height]
        world_dirs = directions @ pose[:3, :3].T
        rays = np.hstack([np.broadcast_to(origin, world_dirs.shape), world_dirs]).astype(np.float32)
        distance = world.cast_rays(o3d.core.Tensor(rays))["t_hit"].numpy()
        hit = np.isfinite(distance) & (distance < 80.0)
        sweeps.append(directions[hit] * distance[hit, None].astype(np.float64))
    return sweeps


@pytest.fixture(scope="module")
def drive() -> dict[str, np.ndarray | list[np.ndarray]]:
    lidar_t = np.arange(0.5, 12.5, 0.1)  # 10 Hz sweeps
    odom_t = np.arange(0.0, 13.0, 0.02)  # 50 Hz odometry
    return {
        "lidar_ns": np.round(lidar_t * 1e9).astype(np.int64),
        "sweeps": render_sweeps(scene(), trajectory(lidar_t)),
        # odometry stamped by a clock 37 ms late: the pose at true time t carries stamp t + 37 ms
        "odom_ns": np.round(odom_t * 1e9).astype(np.int64) + TRUE_OFFSET_NS,
        "odom_poses": trajectory(odom_t),
    }


def test_recovers_a_known_odometry_offset_from_lidar_sweeps(drive: dict) -> None:
    lidar_mid, lidar_rate = yaw_rates_from_sweeps(drive["lidar_ns"], drive["sweeps"])
    odom_mid, odom_rate = yaw_rates_from_poses(drive["odom_ns"], drive["odom_poses"])
    # the registration itself is right: lidar yaw rates follow the true ones
    truth = yaw_rate(lidar_mid / 1e9)
    assert np.max(np.abs(lidar_rate - truth)) < 0.02
    result = estimate_time_offset(lidar_mid, lidar_rate, odom_mid, odom_rate, names=("lidar", "odometry"))
    assert result.offset_ns == pytest.approx(-TRUE_OFFSET_NS, abs=5_000_000)
    assert result.well_defined
    assert result.correlation > 0.95
    # the coarse grid peak is within one 10 ms step of the refined one
    assert abs(result.lags_ns[np.argmax(result.ncc)] - result.offset_ns) <= 10_000_000


@pytest.mark.parametrize("offset_ms", [-180.0, -3.0, 0.0, 12.5, 250.0])
def test_exact_yaw_rate_series_give_the_offset_to_sub_millisecond(offset_ms: float) -> None:
    t = np.arange(0.0, 20.0, 0.01)
    rate_a = yaw_rate(t)
    stamps_b = np.round((t - offset_ms / 1e3) * 1e9).astype(np.int64)  # b = a's signal, b's clock shifted
    result = estimate_time_offset(np.round(t * 1e9).astype(np.int64), rate_a, stamps_b, rate_a)
    assert result.offset_ns / 1e6 == pytest.approx(offset_ms, abs=0.5)
    assert result.correlation > 0.999


def test_straight_driving_is_reported_as_insufficient_motion() -> None:
    t = np.arange(0.0, 10.0, 0.02)
    stamps = np.round(t * 1e9).astype(np.int64)
    noise = np.random.default_rng(0).normal(0.0, 0.002, t.size)
    with pytest.raises(InsufficientMotionError, match=r"series 'odometry' has yaw-rate std 0\.00\d+ rad/s"):
        estimate_time_offset(stamps, yaw_rate(t), stamps, noise, names=("lidar", "odometry"))


def test_bad_series_name_the_series_and_the_problem() -> None:
    t = np.arange(0, 100, dtype=np.int64) * 10_000_000
    stamps = t.copy()
    stamps[5] = stamps[4]
    with pytest.raises(TimeOffsetError, match=r"series 'odometry': stamps must increase strictly; index 5"):
        estimate_time_offset(t, np.sin(t / 1e9), stamps, np.sin(t / 1e9), names=("lidar", "odometry"))
    with pytest.raises(TimeOffsetError, match=r"overlap by .* need at least 2\.00 s"):
        estimate_time_offset(t, np.sin(t / 1e9), t, np.sin(t / 1e9), max_offset_ns=500_000_000)
    with pytest.raises(TimeOffsetError, match=r"series 'b': need >= 4 stamps"):
        estimate_time_offset(t, np.sin(t / 1e9), t[:3], np.zeros(3))


def test_yaw_rates_from_poses_of_a_constant_turn() -> None:
    t = np.arange(0.0, 2.0, 0.05)
    psi = 0.3 * t
    poses = np.tile(np.eye(4), (len(t), 1, 1))
    poses[:, 0, 0], poses[:, 0, 1], poses[:, 1, 0], poses[:, 1, 1] = np.cos(psi), -np.sin(psi), np.sin(psi), np.cos(psi)
    mid, rate = yaw_rates_from_poses(np.round(t * 1e9).astype(np.int64), poses)
    np.testing.assert_allclose(rate, 0.3, atol=1e-9)
    assert mid[0] == 25_000_000
    assert math.isclose(len(mid), len(t) - 1)


def test_module_is_ros_free(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    monkeypatch.setitem(sys.modules, "rclpy", None)
    monkeypatch.delitem(sys.modules, "calibration.time_offset", raising=False)
    assert importlib.import_module("calibration.time_offset").estimate_time_offset
