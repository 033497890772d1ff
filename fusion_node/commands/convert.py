"""``fusion convert nuscenes``: a nuScenes scene (official devkit layout) -> bag + rig + ground truth.

::

    fusion convert nuscenes --dataroot DIR --version v1.0-mini [--scene scene-0061] --out BAG

writes the rosbag2 bag BAG (MCAP, zstd chunks by default) with the topic convention of the
rig, BAG/rig.yaml and BAG/ground_truth.npz (docs/GROUND_TRUTH.md). Exit status 1 with one
error line for bad arguments or data.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Any

from calibration import CalibrationError, Rig, load_rig
from dataset_converters.errors import DatasetError
from fusion_node.bag import STORAGES, write_records
from fusion_node.bag.writer import COMPRESSIONS
from fusion_node.errors import BagError
from perception.errors import PerceptionError
from perception.ground_truth import describe

#: Module providing ``rig_from_nuscenes(dataroot, version, *, scene=None) -> Rig``.
RIG_IMPORTER = "calibration.importers.nuscenes"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sources = parser.add_subparsers(dest="source", required=True, metavar="SOURCE")
    nus = sources.add_parser("nuscenes", help="a nuScenes scene (devkit layout) -> bag + rig.yaml + ground_truth.npz")
    nus.add_argument("--dataroot", required=True, help="folder holding VERSION/*.json, samples/ and sweeps/")
    nus.add_argument("--version", required=True, help="table folder, e.g. v1.0-mini or v1.0-trainval")
    nus.add_argument("--scene", default=None, help="scene name, e.g. scene-0061 (default: the first scene)")
    nus.add_argument("--out", required=True, type=Path, help="bag directory to create (must not exist)")
    nus.add_argument("--storage", choices=STORAGES, default="mcap", help="rosbag2 storage (default: mcap)")
    nus.add_argument(
        "--compression", choices=COMPRESSIONS, default=None, help="MCAP chunk compression (default: zstd for mcap)"
    )
    nus.add_argument(
        "--rig",
        default=None,
        help=f"rig YAML to use instead of the one built from calibrated_sensor ({RIG_IMPORTER}); "
        "an odometry sensor (/localization/odometry) is added when it has none",
    )
    nus.add_argument(
        "--all-radar-points",
        action="store_true",
        help="keep every radar return (default: the devkit's RadarPointCloud default filters)",
    )
    nus.add_argument("--no-progress", action="store_true", help="no progress bar")


def _rig(args: argparse.Namespace, scene: str) -> Rig:
    if args.rig:
        return load_rig(args.rig)
    try:
        importer: Any = importlib.import_module(RIG_IMPORTER)
    except ModuleNotFoundError as exc:
        raise DatasetError(
            f"cannot build the rig from calibrated_sensor: {RIG_IMPORTER} is not available ({exc}); "
            "pass --rig PATH (config/rigs/default.yaml is the nuScenes n015 car)"
        ) from None
    rig: Rig = importer.rig_from_nuscenes(args.dataroot, args.version, scene=scene)
    return rig


def run(args: argparse.Namespace) -> int:
    from dataset_converters.nuscenes import open_scene, with_odometry

    try:
        scene = open_scene(args.dataroot, args.version, args.scene, radar_filtered=not args.all_radar_points)
        rig = with_odometry(_rig(args, scene.name), round(scene.pose_rate_hz, 1))
        scene.check_rig(rig)
        if args.out.exists():
            raise BagError("exists already; bags are never overwritten (choose a new path)", path=str(args.out))
        records = scene.records(rig)
        total = len(scene.files) + len(scene.pose_stamps_ns)
        metadata = {
            "fusion_runtime.source": f"nuScenes {args.version} {scene.name} ({scene.token}) from {args.dataroot}",
            "fusion_runtime.command": (
                f"fusion convert nuscenes --dataroot {args.dataroot} --version {args.version} "
                f"--scene {scene.name} --out {args.out} --storage {args.storage}"
            ),
        }
        bar = None
        if not args.no_progress:
            from tqdm import tqdm

            bar = tqdm(total=total, unit="msg", desc=f"{scene.name} -> {args.out}", file=sys.stderr)
        try:
            summary = write_records(
                args.out,
                rig,
                records,
                storage=args.storage,
                compression=args.compression,
                ground_truth=scene.ground_truth,
                progress=bar,
                metadata=metadata,
            )
        finally:
            if bar is not None:
                bar.close()
    except (DatasetError, CalibrationError, BagError, PerceptionError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(summary.describe())
    print(f"  rig '{rig.name}' ({args.rig or RIG_IMPORTER})")
    if scene.missing_files:
        print(f"  {scene.missing_files} sample_data files listed in the tables are not on disk (skipped)")
    print(f"  ground truth: {describe(scene.ground_truth)}")
    return 0
