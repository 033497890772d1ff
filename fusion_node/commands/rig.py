"""``fusion rig show|validate``: inspect and check rig YAML files."""

from __future__ import annotations

import argparse
import math
import sys

import numpy as np

from calibration import CalibrationError, Rig, default_rig_path, load_rig
from calibration.sensors import CameraSpec, LidarSpec, RadarSpec, UltrasonicSpec


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    show = actions.add_parser("show", help="print the sensors, topics and mountings of a rig")
    show.add_argument("path", nargs="?", help="rig YAML (default: the shipped default rig)")
    validate = actions.add_parser("validate", help="validate rig YAML files; exit 1 on the first error")
    validate.add_argument("paths", nargs="+", help="rig YAML files")


def run(args: argparse.Namespace) -> int:
    if args.action == "validate":
        status = 0
        for path in args.paths:
            try:
                rig = load_rig(path)
            except CalibrationError as exc:
                print(f"INVALID {exc}", file=sys.stderr)
                status = 1
            else:
                print(f"ok      {path}: rig '{rig.name}', {len(rig.sensors)} sensors")
        return status
    try:
        rig = load_rig(args.path or default_rig_path())
    except CalibrationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(describe(rig))
    return 0


def describe(rig: Rig) -> str:
    """A human-readable table of the rig's sensors."""
    lines = [
        f"rig '{rig.name}' ({rig.source or 'in memory'}), base frame {rig.base_frame}, "
        f"reference sensor {rig.reference_sensor}",
        f"{'id':<24} {'modality':<10} {'rate':>6} {'topic':<44} {'xyz (m)':<22} {'heading':>8}  details",
    ]
    for sensor in rig.sensors:
        T = np.asarray(sensor.extrinsic)
        # Boresight: optical z for cameras, x for every other sensor, as a base_link heading.
        axis = T[:3, 2] if isinstance(sensor.spec, CameraSpec) else T[:3, 0]
        heading = math.degrees(math.atan2(axis[1], axis[0]))
        xyz = "[" + ", ".join(f"{v:5.2f}" for v in T[:3, 3]) + "]"
        lines.append(
            f"{sensor.id:<24} {sensor.modality.value:<10} {sensor.rate_hz:5.1f}  {sensor.topic:<44} "
            f"{xyz:<22} {heading:6.1f}°  {_details(sensor.spec)}"
        )
    return "\n".join(lines)


def _details(spec: object) -> str:
    if isinstance(spec, CameraSpec):
        i = spec.intrinsics
        return f"{i.width}x{i.height} fx={i.fx:.1f} {i.distortion_model}"
    if isinstance(spec, LidarSpec):
        return f"{spec.beams} beams, {spec.vertical_fov_deg[0]}..{spec.vertical_fov_deg[1]}°, {spec.max_range_m} m"
    if isinstance(spec, RadarSpec):
        return f"max {spec.max_points} points, {spec.max_range_m} m, fov {spec.horizontal_fov_deg}°"
    if isinstance(spec, UltrasonicSpec):
        return f"{spec.min_range_m}-{spec.max_range_m} m, fov {math.degrees(spec.field_of_view_rad):.0f}°"
    return ""
