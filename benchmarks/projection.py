"""Projection and de-skew speed (``fusion bench projection``).

``project``: ``Rig.project`` of one lidar sweep into every camera of the default rig, against
OpenCV's ``cv2.projectPoints`` on the same points and cameras (interleaved, same run; OpenCV
has no validity mask, ours also computes it). ``deskew``: ``calibration.poses.deskew_points``
with one firing time per point over a 10 Hz sweep, against a per-column loop that interpolates
one pose per azimuth column (1,091 columns) and transforms that column.

Points: ``--points-file`` (an (N, >=3) float32 ``.npy`` or a KITTI/nuScenes ``.bin`` with
``--columns`` floats per point) or, by default, 34,688 random points around the car.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from benchmarks.inputs import add_points_arguments, load_points
from benchmarks.timing import median_ms, speedup, time_interleaved

HELP = "Rig.project into all cameras vs cv2.projectPoints; per-point de-skew vs per-column loop"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_points_arguments(parser)


def _points(args: argparse.Namespace) -> np.ndarray:
    if args.points_file is None:
        rng = np.random.default_rng(0)
        return rng.uniform([-60, -60, -2], [60, 60, 4], (34_688, 3))
    return np.asarray(load_points(args.points_file, args.columns)[:, :3], dtype=np.float64)


def run(args: argparse.Namespace) -> dict[str, Any]:
    import cv2

    from calibration import default_rig_path, load_rig
    from calibration.poses import PoseTrajectory, deskew_points
    from calibration.transforms import make_transform, yaw_to_quaternion

    rig = load_rig(default_rig_path())
    lidar = rig.reference_sensor
    points = _points(args)
    cameras = [c.id for c in rig.cameras]

    def ours() -> None:
        for camera in cameras:
            rig.project(points, src=lidar, camera=camera)

    def opencv() -> None:
        for camera in cameras:
            T = rig.transform(lidar, camera)
            intrinsics = rig.sensor(camera).camera.intrinsics
            rvec, _ = cv2.Rodrigues(T[:3, :3])
            cv2.projectPoints(points, rvec, T[:3, 3], np.asarray(intrinsics.K), np.zeros(5))

    project_times = time_interleaved([ours, opencv], args.runs, args.warmup)

    stamps = np.arange(0, 300_000_000, 20_000_000, dtype=np.int64)  # 50 Hz odometry over 0.3 s
    yaw = 0.3 * stamps / 1e9
    poses = np.stack(
        [
            make_transform([8.0 * s / 1e9, 0.0, 0.0], yaw_to_quaternion(float(y)))
            for s, y in zip(stamps, yaw, strict=True)
        ]
    )
    trajectory = PoseTrajectory(stamps, poses)
    sensor_to_base = rig.to_base(lidar)
    n_columns = 1091
    column = np.arange(points.shape[0]) % n_columns
    times = 100_000_000 + column * (100_000_000 // n_columns)

    def deskew_ours() -> None:
        deskew_points(points, times, 150_000_000, trajectory, sensor_to_base)

    order = np.argsort(column, kind="stable")
    bounds = np.searchsorted(column[order], np.arange(n_columns + 1))

    def deskew_loop() -> None:
        target = np.linalg.inv(trajectory.interpolate(np.array([150_000_000]))[0])
        out = np.empty_like(points)
        for c in range(n_columns):
            rows = order[bounds[c] : bounds[c + 1]]
            T = target @ trajectory.interpolate(times[rows[:1]])[0] @ sensor_to_base
            out[rows] = points[rows] @ T[:3, :3].T + T[:3, 3]

    deskew_times = time_interleaved([deskew_ours, deskew_loop], args.runs, args.warmup)
    inputs = {"points": int(points.shape[0]), "cameras": len(cameras), "source": args.points_file or "random"}
    results: dict[str, Any] = {}
    for name, times_pair, baseline in (
        ("project_all_cameras", project_times, "cv2.projectPoints per camera (no validity mask)"),
        ("deskew_per_point", deskew_times, "per-column pose interpolation loop (1,091 columns)"),
    ):
        candidate, base = median_ms(times_pair[0]), median_ms(times_pair[1])
        results[name] = {
            "median_ms": candidate,
            "runs": len(times_pair[0]),
            "input": inputs,
            "baseline": baseline,
            "baseline_median_ms": base,
            "speedup": speedup(base, candidate),
        }
    return results
