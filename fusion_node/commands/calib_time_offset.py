"""``fusion calib time-offset``: clock offset between odometry and a lidar, from a bag.

Example::

    fusion calib time-offset --bag bags/drive --odometry-topic /odom --lidar-topic /sensing/lidar/top/points

Reads every ``nav_msgs/Odometry`` message of ``--odometry-topic`` (yaw rate from the
orientation of consecutive messages) and every ``PointCloud2`` sweep of ``--lidar-topic``
(yaw rate from Open3D ICP between consecutive sweeps), both on their header stamps, and
cross-correlates the two yaw-rate series (``calibration.time_offset``). It prints the
offset to ADD to the odometry stamps to put them on the lidar's clock (the odometry
sensor's ``time_offset_ms`` when the lidar is the rig's reference), the peak correlation,
its sharpness and whether the estimate is well defined. Exit status 1 on bad input or when
the drive has too little turning (message on stderr).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bag", required=True, type=Path, help="rosbag2 bag (MCAP or SQLite3) folder or file")
    parser.add_argument("--odometry-topic", required=True, help="nav_msgs/Odometry topic")
    parser.add_argument("--lidar-topic", required=True, help="sensor_msgs/PointCloud2 topic")
    parser.add_argument("--max-offset-ms", type=float, default=500.0, help="largest |offset| searched, ms")
    parser.add_argument("--resample-hz", type=float, default=100.0, help="common rate of the comparison, Hz")
    parser.add_argument("--voxel", type=float, default=0.3, help="ICP down-sampling voxel, metres")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")


def run(args: argparse.Namespace) -> int:
    from calibration import CalibrationError
    from calibration.time_offset import (
        estimate_time_offset,
        require_excitation,
        yaw_rates_from_poses,
        yaw_rates_from_sweeps,
    )
    from fusion_node.errors import BagError, ConversionError

    try:
        odometry, sweeps = read_bag(args.bag, args.odometry_topic, args.lidar_topic)
        odom_mid, odom_rate = yaw_rates_from_poses(*odometry)
        require_excitation(odom_rate, args.odometry_topic, where="over the whole bag")  # before the costly ICP
        lidar_mid, lidar_rate = yaw_rates_from_sweeps(
            sweeps[0], sweeps[1], voxel_m=args.voxel, names=[f"{args.lidar_topic} @ {t} ns" for t in sweeps[0]]
        )
        result = estimate_time_offset(
            lidar_mid,
            lidar_rate,
            odom_mid,
            odom_rate,
            max_offset_ns=round(args.max_offset_ms * 1e6),
            resample_hz=args.resample_hz,
            names=(args.lidar_topic, args.odometry_topic),
        )
    except (CalibrationError, BagError, ConversionError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    report = {
        "bag": str(args.bag),
        "reference": args.lidar_topic,
        "odometry": args.odometry_topic,
        "odometry_offset_ms": round(result.offset_ms, 3),
        "correlation": round(result.correlation, 4),
        "sharpness": round(result.sharpness, 4),
        "well_defined": result.well_defined,
        "overlap_s": round(result.overlap_s, 2),
        "sweeps": len(sweeps[0]),
        "odometry_messages": len(odometry[0]),
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        verdict = "well defined" if result.well_defined else "NOT well defined (weak or flat correlation peak)"
        print(
            f"odometry {args.odometry_topic} stamps {report['odometry_offset_ms']:+.3f} ms"
            f" = lidar {args.lidar_topic} clock\n"
            f"correlation {report['correlation']:.4f}, sharpness {report['sharpness']:.4f}: {verdict}\n"
            f"{report['sweeps']} sweeps, {report['odometry_messages']} odometry messages, "
            f"{report['overlap_s']:.1f} s compared"
        )
    return 0


def read_bag(path: Path, odometry_topic: str, lidar_topic: str) -> tuple[tuple[Any, Any], tuple[Any, list[Any]]]:
    """((odometry stamps (N,) int64 ns, poses (N, 4, 4) base_link -> odom),
    (sweep stamps (M,) int64 ns, M (K, 3) float64 lidar-frame arrays)), sorted by stamp."""
    from calibration.transforms import make_transform
    from fusion_node.bag import BagReader
    from fusion_node.convert import odometry_to_sample, pointcloud2_to_array, time_to_ns

    odom: list[tuple[int, Any]] = []
    lidar: list[tuple[int, Any]] = []
    with BagReader(path) as bag:
        for topic in (odometry_topic, lidar_topic):
            if topic not in bag.topics:
                raise ValueError(f"bag {path} has no topic {topic}; topics: {sorted(bag.topics)}")
        for item in bag.messages([odometry_topic, lidar_topic]):
            if item.topic == odometry_topic:
                sample = odometry_to_sample(item.msg, source=item.topic)
                odom.append((sample.stamp_ns, make_transform(sample.position, sample.orientation_wxyz)))
            else:
                stamp = time_to_ns(item.msg.header.stamp, source=item.topic)
                lidar.append((stamp, pointcloud2_to_array(item.msg, ("x", "y", "z"), np.float64, source=item.topic)))
    for topic, items in ((odometry_topic, odom), (lidar_topic, lidar)):
        if len(items) < 4:
            raise ValueError(f"bag {path} has {len(items)} messages on {topic}, need at least 4")
    odom.sort(key=lambda item: item[0])
    lidar.sort(key=lambda item: item[0])
    odometry = (np.array([s for s, _ in odom], dtype=np.int64), np.stack([p for _, p in odom]))
    sweeps = (np.array([s for s, _ in lidar], dtype=np.int64), [p for _, p in lidar])
    return odometry, sweeps


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m fusion_node.commands.calib_time_offset``: the same as ``fusion calib time-offset``."""
    parser = argparse.ArgumentParser(prog="fusion calib time-offset", description=(__doc__ or "").split("\n\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
