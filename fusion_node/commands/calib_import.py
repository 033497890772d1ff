"""``fusion calib import {kitti,nuscenes,camera-info} ... --out RIG.yaml``.

Examples::

    fusion calib import kitti calib/000008.txt --out kitti.yaml
    fusion calib import kitti 2011_09_26/ --out kitti_raw.yaml          # raw-data calib folder
    fusion calib import nuscenes /data/nuscenes --version v1.0-mini --scene scene-0061 --out nus.yaml
    fusion calib import camera-info left.yaml --rig rig.yaml --camera cam_front --out rig2.yaml
    fusion calib import camera-info left.yaml --camera cam_front --extrinsic 1.7 0 1.5 0.5 -0.5 0.5 -0.5 --out cam.yaml

Bad input: one line on stderr naming the file, line and field; exit status 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from calibration import CalibrationError, Rig, load_rig
from calibration.importers import (
    read_camera_info_yaml,
    replace_camera_intrinsics,
    rig_from_kitti,
    rig_from_nuscenes,
    rig_with_camera,
)
from calibration.transforms import make_transform


def add_arguments(parser: argparse.ArgumentParser) -> None:
    formats = parser.add_subparsers(dest="format", required=True, metavar="FORMAT")
    kitti = formats.add_parser("kitti", help="KITTI calibration (P0..P3, R0_rect, Tr_velo_to_cam[, Tr_imu_to_velo])")
    kitti.add_argument("path", help="object/tracking calib .txt, or a raw-data folder with calib_cam_to_cam.txt")
    kitti.add_argument("--image-size", type=_image_size, metavar="WxH", help="rectified image size (default 1242x375)")
    kitti.add_argument("--name", help="rig name (default kitti_<file stem>)")
    nuscenes = formats.add_parser("nuscenes", help="nuScenes calibrated_sensor records of one scene")
    nuscenes.add_argument("dataroot", help="folder with <version>/sensor.json, calibrated_sensor.json, ...")
    nuscenes.add_argument("--version", default="v1.0-mini", help="table folder (default v1.0-mini)")
    nuscenes.add_argument("--scene", help="scene name or token (default: the first scene)")
    info = formats.add_parser("camera-info", help="ROS CameraInfo YAML or OpenCV FileStorage YAML intrinsics")
    info.add_argument("path", help="camera calibration YAML")
    info.add_argument("--camera", required=True, help="camera id in the rig (e.g. cam_front)")
    target = info.add_mutually_exclusive_group(required=True)
    target.add_argument("--rig", help="existing rig YAML whose camera --camera gets these intrinsics")
    target.add_argument(
        "--extrinsic",
        nargs=7,
        type=float,
        metavar=("X", "Y", "Z", "QW", "QX", "QY", "QZ"),
        help="create a one-camera rig: camera optical frame -> base_link, metres and quaternion wxyz",
    )
    info.add_argument("--rectified", action="store_true", help="use projection_matrix (rectified image)")
    info.add_argument("--name", help="rig name of a new one-camera rig")
    for sub in (kitti, nuscenes, info):
        sub.add_argument("--out", required=True, type=Path, help="rig YAML to write")


def run(args: argparse.Namespace) -> int:
    try:
        rig = _import(args)
        _write(rig, args.out, _command_line(args))
        written = load_rig(args.out)
    except CalibrationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: cannot write {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}: rig '{written.name}', {len(written.sensors)} sensors: {', '.join(written.ids)}")
    return 0


def _import(args: argparse.Namespace) -> Rig:
    if args.format == "kitti":
        return rig_from_kitti(args.path, image_size=args.image_size, name=args.name)
    if args.format == "nuscenes":
        return rig_from_nuscenes(args.dataroot, args.version, scene=args.scene)
    intrinsics = read_camera_info_yaml(args.path, rectified=args.rectified)
    if args.rig:
        return replace_camera_intrinsics(load_rig(args.rig), args.camera, intrinsics)
    extrinsic = make_transform(args.extrinsic[:3], args.extrinsic[3:])
    return rig_with_camera(args.camera, intrinsics, extrinsic, name=args.name, source=args.path)


def _write(rig: Rig, out: Path, command: str) -> None:
    header = (
        f"# Rig imported with: fusion calib import {command}\n"
        "# extrinsic = sensor frame -> base_link; rotation_wxyz = [w, x, y, z]; "
        "cameras use optical frames (x right, y down, z forward).\n"
    )
    text = yaml.safe_dump(rig.to_dict(), sort_keys=False, default_flow_style=None, width=100)
    out.write_text(header + text, encoding="utf-8")


def _command_line(args: argparse.Namespace) -> str:
    if args.format == "kitti":
        return f"kitti {args.path}"
    if args.format == "nuscenes":
        return f"nuscenes {args.dataroot} --version {args.version}" + (f" --scene {args.scene}" if args.scene else "")
    return f"camera-info {args.path} --camera {args.camera}" + (f" --rig {args.rig}" if args.rig else "")


def _image_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT like 1242x375, got {text!r}") from None
    if width <= 0 or height <= 0:
        raise argparse.ArgumentTypeError(f"image size must be positive, got {text!r}")
    return width, height
