"""The ``fusion`` command: one entry point, one subcommand per tool.

Subcommands are registered by name with the module that implements them; a module is
imported only when its subcommand runs, so ``fusion --help`` stays fast and ROS-free tools
do not pay for rclpy. Each module provides ``add_arguments(parser)`` and ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NamedTuple

from fusion_node.teardown import exit_process


class Subcommand(NamedTuple):
    module: str
    help: str


SUBCOMMANDS: dict[str, Subcommand] = {
    "rig": Subcommand("fusion_node.commands.rig", "show, validate or export a rig YAML"),
    "bench": Subcommand("fusion_node.commands.bench", "benchmarks of the runtime's stages (--json)"),
    "sim": Subcommand("fusion_node.commands.sim", "simulate the rig in a procedural world: bags or training shards"),
    "convert": Subcommand("fusion_node.commands.convert", "nuScenes devkit layout -> bag + rig + ground truth"),
    "calib": Subcommand("fusion_node.commands.calib", "calibration: import, overlay, refine, time offset"),
    "train": Subcommand("fusion_node.commands.train", "train the fusion network on simulated shards (resumable)"),
    "eval": Subcommand("fusion_node.commands.eval", "nuScenes-style metrics of a model on bags with ground truth"),
    "realdata-eval": Subcommand("fusion_node.commands.realdata_eval", "real nuScenes sweep, lidar only: car AP + BEV"),
    "export": Subcommand("fusion_node.commands.export", "checkpoint -> model bundle (ONNX, weights, manifest)"),
    "render": Subcommand("fusion_node.commands.render", "a bag (+ model) -> BEV + camera PNG frames and an MP4"),
    "launch": Subcommand("fusion_node.commands.launch", "start the node graph as supervised processes"),
    "replay": Subcommand("fusion_node.commands.replay", "play a bag on live topics (rate, loop, remap, /clock)"),
    "record": Subcommand("fusion_node.commands.record", "record live topics into an MCAP bag"),
    "demo": Subcommand("fusion_node.commands.demo", "the sample bag through the real nodes over DDS: video + summary"),
    "fault-demo": Subcommand("fusion_node.commands.fault_demo", "break sensors on live topics, watch /diagnostics"),
}


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    """Parser with every subcommand listed; only the requested one imports its module."""
    parser = argparse.ArgumentParser(
        prog="fusion",
        description="Camera/lidar/radar/ultrasonic BEV fusion runtime for ROS 2: tools.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, sub in SUBCOMMANDS.items():
        sub_parser = commands.add_parser(name, help=sub.help, description=sub.help)
        sub_parser.set_defaults(_module=sub.module)
        if argv[:1] == [name]:
            importlib.import_module(sub.module).add_arguments(sub_parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(arguments).parse_args(arguments)
    module = importlib.import_module(args._module)
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    exit_process(main())
