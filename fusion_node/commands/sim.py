"""``fusion sim``: drive the rig through a procedural world and record every sensor.

Writes a rosbag2 bag (MCAP by default, sqlite3 on request) with the rig's topics, the rig
YAML and the ground truth beside it (``ground_truth.npz``, also in the bag as MarkerArrays),
or, with ``--shards``, compact training shards (arrays + ground truth) without the bag.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from calibration import CalibrationError, default_rig_path, load_rig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output bag directory (or shard directory with --shards)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of driving (default 10)")
    parser.add_argument("--seed", type=int, default=0, help="world, traffic, timing and noise seed (default 0)")
    parser.add_argument("--rig", default=None, help="rig YAML (default: the shipped default rig)")
    parser.add_argument(
        "--layout", default="mixed", help="road layout: mixed | straight | curved | intersection (default mixed)"
    )
    parser.add_argument("--density", type=float, default=1.0, help="traffic density factor, 0..5 (default 1)")
    parser.add_argument("--camera-scale", type=float, default=0.25, help="image size / rig size (default 0.25)")
    parser.add_argument("--storage", default="mcap", help="bag storage: mcap | sqlite3 (default mcap)")
    parser.add_argument("--compression", default=None, help="zstd | lz4 | none (default: zstd chunks for mcap)")
    parser.add_argument("--drop-probability", type=float, default=0.003, help="fraction of messages lost")
    parser.add_argument("--shards", action="store_true", help="write training shards instead of a bag")
    parser.add_argument("--frames-per-shard", type=int, default=50, help="lidar frames per shard file")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from simulation.errors import SimulationError
    from simulation.scenario import ScenarioConfig
    from simulation.simulator import SimConfig, Simulator
    from simulation.timing import TimingConfig

    out = Path(args.out)
    if out.exists():
        print(f"error: --out {out} already exists; choose a new path", file=sys.stderr)
        return 1
    try:
        rig = load_rig(args.rig or default_rig_path())
        config = SimConfig(
            scenario=ScenarioConfig(seed=args.seed, duration_s=args.duration, layout=args.layout, density=args.density),
            timing=TimingConfig(drop_probability=args.drop_probability),
            camera_scale=args.camera_scale,
        )
        started = time.perf_counter()
        simulator = Simulator(rig, config)
    except (CalibrationError, SimulationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    total = len(simulator.written_captures)
    with tqdm(total=total, unit="msg", desc=f"sim {out.name}", disable=args.quiet, file=sys.stderr) as bar:
        if args.shards:
            from simulation.shards import write_shards

            summary = write_shards(out, simulator, frames_per_shard=args.frames_per_shard, progress=bar)
        else:
            from fusion_node.bag.records import write_records
            from fusion_node.errors import BagError

            try:
                summary = write_records(
                    out,
                    rig,
                    simulator.records(),
                    storage=args.storage,
                    compression=args.compression,
                    ground_truth=simulator.ground_truth,
                    progress=bar,
                    metadata={"source": "fusion sim", "sim_config": _describe(config)},
                )
            except BagError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 1
    seconds = time.perf_counter() - started
    frames = simulator.frame_count
    print(
        f"wrote {out}: {total} messages, {frames} lidar frames with ground truth in {seconds:.1f} s "
        f"({frames / seconds:.1f} frames/s)"
    )
    if not args.shards:
        print(summary.describe())
    return 0


def _describe(config: object) -> str:
    from dataclasses import asdict

    return json.dumps(asdict(config), default=str, sort_keys=True)  # type: ignore[call-overload]
