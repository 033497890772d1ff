"""``fusion launch [CONFIG]``: the node graph as separate processes, with the right DDS
environment, prefixed logs and a clean shutdown (see fusion_node.launcher)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "config" / "launch" / "fusion.yaml"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "config", nargs="?", default=str(DEFAULT_CONFIG), help="launch YAML (default: config/launch/fusion.yaml)"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NODE.PARAM=VALUE",
        help="override a node parameter, e.g. --set fusion_node.backend=onnxruntime (repeatable)",
    )


def run(args: argparse.Namespace) -> int:
    from fusion_node.launcher import LaunchConfigError, load_launch_config, supervise

    overrides: dict[str, dict[str, str]] = {}
    for item in args.set:
        target, _, value = item.partition("=")
        node, _, param = target.partition(".")
        if not (node and param and _):
            print(f"error: --set {item!r}: expected NODE.PARAM=VALUE", file=sys.stderr)
            return 2
        overrides.setdefault(node, {})[param] = value
    try:
        config = load_launch_config(args.config, overrides=overrides)
    except LaunchConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    unknown = sorted(set(overrides) - {n.name for n in config.nodes})
    if unknown:
        print(
            f"error: --set names unknown nodes {unknown}; the graph has {[n.name for n in config.nodes]}",
            file=sys.stderr,
        )
        return 2
    return supervise(config)
