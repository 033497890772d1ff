"""``fusion calib ACTION``: calibration tools (ROS-free; the work is done in ``calibration``).

Each action lives in its own module with ``add_arguments(parser)`` and ``run(args) -> int``
and is listed in ``ACTIONS``. Action modules are imported when the ``calib`` parser is
built, so they must keep heavy imports (OpenCV, torch, ...) inside ``run``.
"""

from __future__ import annotations

import argparse
import importlib
from typing import NamedTuple


class Action(NamedTuple):
    module: str
    help: str


ACTIONS: dict[str, Action] = {
    "import": Action(
        "fusion_node.commands.calib_import",
        "import KITTI, nuScenes or CameraInfo/OpenCV calibration into a rig YAML",
    ),
    "overlay": Action(
        "fusion_node.commands.calib_overlay",
        "draw lidar/radar points on camera images (PNG) and print each camera's edge-alignment score",
    ),
    "refine": Action(
        "fusion_node.commands.calib_refine",
        "refine a camera's lidar->camera extrinsic from lidar+image pairs by edge alignment",
    ),
    "time-offset": Action(
        "fusion_node.commands.calib_time_offset",
        "clock offset between odometry and a lidar in a bag (yaw-rate cross-correlation)",
    ),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="calib_action", required=True, metavar="ACTION")
    for name, action in ACTIONS.items():
        sub = actions.add_parser(name, help=action.help, description=action.help)
        sub.set_defaults(_calib_module=action.module)
        importlib.import_module(action.module).add_arguments(sub)


def run(args: argparse.Namespace) -> int:
    return int(importlib.import_module(args._calib_module).run(args) or 0)
