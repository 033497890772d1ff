"""Ego-motion compensation speed (``fusion bench ego-motion``).

``accumulate_10_sweeps``: one frame of :class:`perception.ego_motion.SweepAccumulator` with
10 sweeps (the new sweep de-skewed with its per-point time, the 9 held ones moved into the
frame), including the odometry look-up (``OdometryBuffer.trajectory``), against a per-sweep
loop that re-de-skews every one of the 10 raw sweeps into the current frame with
``calibration.poses.deskew_points`` (one pose per point) each frame. Same output up to
float32 rounding (``max_abs_diff_m``).

``deskew_sweep``: :func:`perception.ego_motion.sweep_to_base` of one sweep against
``calibration.poses.deskew_points`` plus the extrinsic, on the same sweep.

``radar_5_scans``: :class:`perception.ego_motion.RadarCompensator` on 5 scans of 125 detections
(the default rig's radars, one odometry look-up), against :func:`radar_to_frame` per scan.

Points: ``--points-file`` (an (N, >=4) float32 ``.npy`` or a KITTI/nuScenes ``.bin``) or, by
default, 34,688 random points around the car with intensity. Each point gets the firing
time of a spinning lidar (its azimuth column of 1,091 over 100 ms) and the sweep is sorted
in firing order, as a driver publishes it. Motion: 8 m/s with a 0.3 rad/s yaw rate, 50 Hz
odometry. Single-threaded (``numba.set_num_threads(1)``); the kernels' compile (or cache
load) time is reported apart as ``first_call_ms``.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from benchmarks.inputs import add_points_arguments, load_points
from benchmarks.timing import median_ms, speedup, time_interleaved

HELP = "10-sweep lidar accumulation with de-skew vs re-de-skewing every sweep per frame; radar to frame"

SWEEP_NS = 100_000_000
COLUMNS = 1091
N_SWEEPS = 10
ODOMETRY_NS = 20_000_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_points_arguments(parser, minimum_columns=4)


def _scan(args: argparse.Namespace) -> Any:
    """PointScan (x, y, z, intensity, time) in firing order."""
    from perception.samples import PointScan

    if args.points_file is None:
        rng = np.random.default_rng(0)
        xyz = rng.uniform([-60, -60, -2], [60, 60, 4], (34_688, 3))
        intensity = rng.uniform(0, 255, xyz.shape[0])
    else:
        data = load_points(args.points_file, args.columns, minimum_columns=4)
        xyz, intensity = data[:, :3].astype(np.float64), data[:, 3].astype(np.float64)
    azimuth = np.mod(np.arctan2(xyz[:, 1], xyz[:, 0]), 2 * np.pi)
    column = np.minimum((azimuth / (2 * np.pi) * COLUMNS).astype(np.int64), COLUMNS - 1)
    order = np.argsort(column, kind="stable")
    points = np.empty((xyz.shape[0], 5), dtype=np.float32)
    points[:, :3] = xyz[order]
    points[:, 3] = intensity[order]
    points[:, 4] = column[order] * (SWEEP_NS // COLUMNS) / 1e9
    return PointScan(("x", "y", "z", "intensity", "time"), points)


def _odometry(end_ns: int) -> Any:
    from calibration.transforms import yaw_to_quaternion
    from perception.ego_motion import OdometryBuffer
    from perception.samples import OdometrySample

    buffer = OdometryBuffer(capacity=1_000_000, max_span_ns=3_600_000_000_000)
    for stamp in range(0, end_ns + ODOMETRY_NS, ODOMETRY_NS):
        t = stamp / 1e9
        yaw = 0.3 * t
        radius = 8.0 / 0.3
        buffer.add(
            OdometrySample(
                stamp_ns=stamp,
                frame_id="odom",
                child_frame_id="base_link",
                position=np.array([radius * np.sin(yaw), radius * (1 - np.cos(yaw)), 0.0]),
                orientation_wxyz=yaw_to_quaternion(yaw),
                linear_velocity=np.array([8.0, 0.0, 0.0]),
                angular_velocity=np.array([0.0, 0.0, 0.3]),
            )
        )
    return buffer


def run(args: argparse.Namespace) -> dict[str, Any]:
    import numba

    from calibration import default_rig_path, load_rig
    from calibration.poses import deskew_points
    from perception.ego_motion import RadarCompensator, SweepAccumulator, kernels, radar_to_frame, sweep_to_base
    from perception.samples import PointScan

    numba.set_num_threads(1)
    start = time.perf_counter_ns()
    kernels.warm_up()
    first_call_ms = round((time.perf_counter_ns() - start) / 1e6, 1)

    rig = load_rig(default_rig_path())
    lidar = rig.reference_sensor
    lidar_to_base = rig.to_base(lidar)
    scan = _scan(args)
    n = scan.points.shape[0]
    times_ns = np.round(scan.points[:, 4].astype(np.float64) * 1e9).astype(np.int64)
    xyz = scan.points[:, :3].astype(np.float64)
    intensity = scan.points[:, 3]
    frames = 3 * (args.warmup + args.runs) + N_SWEEPS + 4
    odometry = _odometry((frames + 2) * SWEEP_NS)
    stamps = [SWEEP_NS * (k + 1) for k in range(frames)]

    accumulator = SweepAccumulator(N_SWEEPS, lidar_to_base, max_age_ns=N_SWEEPS * SWEEP_NS, source=lidar)
    for stamp in stamps[: N_SWEEPS - 1]:
        accumulator.add(scan, stamp, odometry.trajectory(stamp, stamp + SWEEP_NS))
    counters = {"ours": N_SWEEPS - 1, "loop": N_SWEEPS - 1}

    def ours() -> np.ndarray:
        stamp = stamps[counters["ours"]]
        counters["ours"] += 1
        return accumulator.add(scan, stamp, odometry.trajectory(stamp, stamp + SWEEP_NS))

    def loop() -> np.ndarray:
        k = counters["loop"]
        counters["loop"] += 1
        current = stamps[k]
        trajectory = odometry.trajectory(stamps[k - N_SWEEPS + 1], current + SWEEP_NS)
        parts = []
        for stamp in stamps[k - N_SWEEPS + 1 : k + 1][::-1]:
            in_lidar = deskew_points(xyz, stamp + times_ns, current, trajectory, lidar_to_base)
            part = np.empty((n, 5), dtype=np.float32)
            part[:, :3] = in_lidar @ lidar_to_base[:3, :3].T + lidar_to_base[:3, 3]
            part[:, 3] = intensity
            part[:, 4] = (current - stamp) / 1e9
            parts.append(part)
        return np.concatenate(parts)

    accumulate_times = time_interleaved([ours, loop], args.runs, args.warmup)
    difference = float(np.max(np.abs(ours()[:, :3] - loop()[:, :3])))
    lags_equal = bool(np.array_equal(ours()[:, 3:], loop()[:, 3:]))
    # Not interleaved: the baseline's large temporaries leave freshly mapped memory behind,
    # so interleaved, ours pays page faults on its output; this is the cost in a steady loop.
    (alone_times,) = time_interleaved([ours], args.runs, args.warmup)

    stamp = stamps[-1]
    trajectory = odometry.trajectory(stamp, stamp + SWEEP_NS)

    def deskew_ours() -> None:
        sweep_to_base(scan, stamp, trajectory, lidar_to_base)

    def deskew_calibration() -> None:
        in_lidar = deskew_points(xyz, stamp + times_ns, stamp, trajectory, lidar_to_base)
        _ = in_lidar @ lidar_to_base[:3, :3].T + lidar_to_base[:3, 3]

    deskew_times = time_interleaved([deskew_ours, deskew_calibration], args.runs, args.warmup)

    rng = np.random.default_rng(1)
    radar_points = np.zeros((125, 6), dtype=np.float32)
    radar_points[:, :3] = rng.uniform([2, -30, -1], [80, 30, 3], (125, 3))
    radar_points[:, 3:] = rng.normal(0, 5, (125, 3))
    radar_scan = PointScan(("x", "y", "z", "vr", "vr_compensated", "rcs"), radar_points)
    radars = {sensor.id: rig.to_base(sensor.id) for sensor in rig.of("radar")}
    radar_scans = [(radar, stamp - 10_000_000 * k, radar_scan) for k, radar in enumerate(radars)]
    radar_trajectory = odometry.trajectory(stamp - 60_000_000, stamp)
    compensator = RadarCompensator(radars)

    def radar_together() -> None:
        compensator.to_frame(radar_scans, stamp, radar_trajectory)

    def radar_per_scan() -> None:
        for radar, scan_stamp, points in radar_scans:
            radar_to_frame(points, scan_stamp, stamp, radar_trajectory, radars[radar], source=radar)

    radar_times = time_interleaved([radar_together, radar_per_scan], args.runs, args.warmup)

    source = args.points_file or "random"
    accumulate_ms, loop_ms = median_ms(accumulate_times[0]), median_ms(accumulate_times[1])
    deskew_ms, calibration_ms = median_ms(deskew_times[0]), median_ms(deskew_times[1])
    return {
        "accumulate_10_sweeps": {
            "median_ms": accumulate_ms,
            "runs": len(accumulate_times[0]),
            "input": {"points_per_sweep": n, "sweeps": N_SWEEPS, "output_points": N_SWEEPS * n, "source": source},
            "baseline": "re-de-skew all 10 raw sweeps per frame (calibration.poses.deskew_points, one pose per point)",
            "baseline_median_ms": loop_ms,
            "speedup": speedup(loop_ms, accumulate_ms),
            "median_ms_not_interleaved": median_ms(alone_times),
            "max_abs_diff_m": round(difference, 7),
            "intensity_and_lag_equal": lags_equal,
            "first_call_ms": first_call_ms,
        },
        "deskew_sweep": {
            "median_ms": deskew_ms,
            "runs": len(deskew_times[0]),
            "input": {"points": n, "firing_times": int(np.unique(times_ns).size), "source": source},
            "baseline": "calibration.poses.deskew_points (one pose per point) + extrinsic",
            "baseline_median_ms": calibration_ms,
            "speedup": speedup(calibration_ms, deskew_ms),
        },
        "radar_5_scans": {
            "median_ms": median_ms(radar_times[0]),
            "runs": len(radar_times[0]),
            "input": {"scans": len(radars), "detections_per_scan": radar_points.shape[0]},
            "baseline": "radar_to_frame per scan (extrinsic check and odometry look-up per scan)",
            "baseline_median_ms": median_ms(radar_times[1]),
            "speedup": speedup(median_ms(radar_times[1]), median_ms(radar_times[0])),
        },
    }
