"""``fusion render``: a bag (with its ground truth) and a model -> PNG frames and an MP4.

Replays the bag through the runtime's front end, runs the model, and draws each frame: the BEV
scene (lidar by height, radar with velocity, ultrasonic cones, drivable area and occupancy,
ground-truth boxes in white, detections in class colours with velocity arrows and scores) beside
the six cameras with the same boxes projected. Detections and the predicted drivable area /
occupancy come from ``--outputs`` (a bag recorded from the fusion node) or from running
``--weights``; with neither it draws the sensors and the ground truth only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bag", help="bag directory (rig.yaml beside it; ground_truth.npz optional)")
    parser.add_argument("--out", required=True, help="output folder for frame_NNNN.png and render.mp4")
    parser.add_argument("--weights", default=None, help="checkpoint or bundle to draw detections from")
    parser.add_argument(
        "--outputs", default=None, help="a recorded bag of the fusion node's outputs to draw (instead of --weights)"
    )
    parser.add_argument("--backend", default="torch", help="torch | onnxruntime | tensorrt (default torch)")
    parser.add_argument("--png-every", type=int, default=10, help="write every N-th frame as PNG (default 10)")
    parser.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    parser.add_argument("--fps", type=float, default=10.0, help="video frame rate (default 10)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    import cv2
    import numpy as np
    from tqdm import tqdm

    from calibration import CalibrationError, load_rig
    from fusion_node.bag.outputs import read_outputs
    from fusion_node.bag.records import RIG_FILE
    from fusion_node.bag.replay import replay_frames
    from perception.backends import Predictor, load_backend
    from perception.errors import PerceptionError
    from perception.ground_truth import GROUND_TRUTH_FILE, load_ground_truth
    from perception.model.config import ModelConfig
    from perception.pipeline import FramePipeline
    from perception.postprocess import Postprocess
    from visualization.scene import render_frame

    bag, out = Path(args.bag), Path(args.out)
    try:
        rig = load_rig(bag / RIG_FILE)
        predictor = Predictor(load_backend(args.backend, args.weights)) if args.weights else None
        truth = load_ground_truth(bag / GROUND_TRUTH_FILE) if (bag / GROUND_TRUTH_FILE).is_file() else None
        outputs = read_outputs(args.outputs) if args.outputs else None
    except (CalibrationError, PerceptionError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    config = predictor.config if predictor else ModelConfig()
    pipeline = FramePipeline(rig, config)
    postprocess = Postprocess(rig, config)
    index = {f.stamp_ns: i for i, f in enumerate(truth.frames)} if truth else {}
    grid = truth.grid if truth else config.input_grid
    out.mkdir(parents=True, exist_ok=True)
    writer = None
    count = 0
    bar = tqdm(disable=args.quiet, unit="frame", desc="render")

    for prepared in replay_frames(bag, rig, pipeline):
        i = index.get(prepared.stamp_ns)
        detections, grids = None, None
        if outputs is not None:
            recorded = outputs.get(prepared.stamp_ns)
            detections = recorded.detections if recorded else None
            grids = recorded.segmentation() if recorded else None
        elif predictor is not None:
            prediction = postprocess(predictor(prepared.inputs), prepared)
            detections, grids = prediction.boxes, prediction.segmentation
        has_truth_grids = truth is not None and truth.drivable is not None and truth.occupancy is not None
        if grids is None and has_truth_grids and i is not None:
            grids = np.stack([truth.drivable[i], truth.occupancy[i]])
        drivable, occupancy = (grids[0], grids[1]) if grids is not None else (None, None)
        image = render_frame(
            prepared,
            rig,
            grid,
            ultrasonic_ids=pipeline.encoder.ultrasonic.sensor_ids,
            detections=detections,
            truth=truth.frames[i].boxes if truth and i is not None else None,
            drivable=drivable,
            occupancy=occupancy,
            caption=[f"{bag.name}  frame {count}  t={prepared.stamp_ns / 1e9:.2f} s"],
        )
        if writer is None:
            writer = cv2.VideoWriter(
                str(out / "render.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), args.fps, (image.shape[1], image.shape[0])
            )
        writer.write(image)
        if count % args.png_every == 0:
            cv2.imwrite(str(out / f"frame_{count:04d}.png"), image)
        count += 1
        bar.update(1)
        if args.max_frames is not None and count >= args.max_frames:
            break
    bar.close()
    if writer is not None:
        writer.release()
    print(f"{count} frames rendered to {out / 'render.mp4'} (PNG every {args.png_every})")
    return 0 if count else 1
