"""``fusion eval``: nuScenes-style metrics of a trained model on bags with ground truth.

Replays each bag through the runtime's front end (synchronizer, ego motion, BEV), runs the
network, and prints a Markdown table; ``--json FILE`` writes mAP, NDS, mATE, mASE, mAOE,
mAVE, per_class, segmentation {drivable_iou, occupancy_iou} and frames (plus the run's
settings). ``--drop`` removes sensor groups (lidar, camera, radar, ultrasonic) or single
sensor ids, as if they were missing, to measure robustness. What is scored is what the node
publishes: velocities after the radar Doppler correction (``--no-radar-velocity``: the
network's own) and the drivable area fused over time (``--no-drivable-memory``: each frame's).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bags", nargs="+", help="bag directories with rig.yaml and ground_truth.npz")
    parser.add_argument("--weights", required=True, help="checkpoint (.pt, weights only) or model bundle directory")
    parser.add_argument(
        "--backend", default="torch", help="inference backend: torch | onnxruntime | tensorrt (default torch)"
    )
    parser.add_argument(
        "--precision",
        default=None,
        choices=["fp32", "fp16", "int8"],
        help="onnxruntime: fp32 (default), fp16 or int8 (the bundle's model_fp16.onnx / model_int8.onnx, from "
        "fusion export --fp16 / --int8); tensorrt: engine precision (default fp16); torch: not taken",
    )
    parser.add_argument("--drop", default="", help="comma-separated groups or sensor ids to treat as missing")
    parser.add_argument("--json", default=None, help="write the metrics as JSON to this file")
    parser.add_argument("--markdown", default=None, help="write the Markdown table to this file")
    parser.add_argument(
        "--match",
        default=None,
        choices=["nearest", "latest"],
        help="synchronizer matching of the other sensors to each lidar sweep (default: the runtime's, see docs)",
    )
    parser.add_argument(
        "--no-radar-velocity",
        dest="radar_velocity",
        action="store_false",
        help="score the network's own velocities, without the runtime's radar Doppler correction "
        "(perception.radar_velocity; on by default, as in the fusion node)",
    )
    parser.add_argument(
        "--no-drivable-memory",
        dest="drivable_memory",
        action="store_false",
        help="score each frame's own drivable area, without the runtime's fusion over time "
        "(perception.drivable_memory; on by default, as in the fusion node)",
    )
    parser.add_argument("--threads", type=int, default=2, help="inference threads (default 2)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from calibration import CalibrationError
    from fusion_node.evaluate import EvalInputError, evaluate_bags
    from perception.backends import Predictor, load_backend
    from perception.errors import PerceptionError
    from perception.sync import DEFAULT_MATCH

    try:
        options = {"threads": args.threads} | ({"precision": args.precision} if args.precision else {})
        predictor = Predictor(load_backend(args.backend, args.weights, **options))
        with tqdm(disable=args.quiet, unit="frame", desc="eval") as bar:
            result = evaluate_bags(
                args.bags,
                predictor,
                drop=args.drop,
                match=args.match or DEFAULT_MATCH,
                radar_velocity=args.radar_velocity,
                drivable_memory=args.drivable_memory,
                progress=bar,
            )
    except (EvalInputError, PerceptionError, CalibrationError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    report = result.metrics | {
        "bags": [str(b) for b in args.bags],
        "weights": str(args.weights),
        "backend": args.backend,
        "precision": getattr(predictor.backend, "precision", "fp32"),
        "dropped": list(result.dropped),
        "radar_velocity": args.radar_velocity,
        "drivable_memory": args.drivable_memory,
        "frames_without_truth": result.frames_without_truth,
        "skipped_messages": len(result.skipped_messages),
        "latency_ms": result.latency_ms,
    }
    print(result.markdown, end="")
    if result.skipped_messages:
        first = result.skipped_messages[0]
        print(
            f"{len(result.skipped_messages)} messages skipped; first: {first.topic} at "
            f"{first.log_time_ns}: {first.reason}"
        )
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2, allow_nan=False))
        print(f"metrics written to {args.json}")
    if args.markdown:
        Path(args.markdown).write_text(result.markdown)
    return 0
