"""``fusion realdata-eval``: the lidar branch on the real nuScenes sweep of ``../shared/realdata``.

Reads one decoded nuScenes key frame (scene-0061: ``calib.json``, ``gt_boxes.json`` and the
LIDAR_TOP ``.pcd.bin``; perception.evaluation.realdata), moves the sweep into base_link with
``lidar2ego`` (LIDAR_TOP sits ~1.84 m above the ego origin, x right / y forward: the rotation
matters), builds the network inputs with the runtime's own InputEncoder with ONLY the lidar
present (radar, ultrasonic and cameras absent, presence flags 0, as ``fusion eval --drop``
does), runs the model through a backend and scores the detections with ``fusion eval``'s
evaluator against the ground truth inside the model's BEV grid.

What differs from the runtime on its own rig: the sweep is a single nuScenes key frame (no
per-point time, time lag 0), whereas the model was trained on 3 accumulated sweeps; the
intensity scale is the same (0..255); nuScenes' no-returns near the sensor origin are removed
(``--near-range``, the devkit's ``remove_close``).

Writes ``--out`` (default ``out/realdata_eval``): ``metrics.json`` (car AP and TP errors,
per-class metrics of the classes present, GT counts), ``metrics.md`` (the ``fusion eval``
table) and ``bev.png`` (lidar by height, ground truth in white, detections in class colours,
the predicted drivable area shaded), and prints a short summary.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT_SAMPLE = REPO.parent / "shared" / "realdata" / "nuscenes_scene0061"
DEFAULT_MODEL = REPO / "models" / "fusion_sim"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sample",
        default=str(DEFAULT_SAMPLE),
        help="decoded nuScenes sample folder (calib.json, gt_boxes.json, LIDAR_TOP .pcd.bin); "
        "default ../shared/realdata/nuscenes_scene0061 beside the checkout",
    )
    parser.add_argument(
        "--weights", default=str(DEFAULT_MODEL), help="model bundle (or checkpoint with --backend torch)"
    )
    parser.add_argument(
        "--backend",
        default="onnxruntime",
        help="inference backend: torch | onnxruntime | tensorrt (default onnxruntime)",
    )
    parser.add_argument("--out", default="out/realdata_eval", help="output folder (default out/realdata_eval)")
    parser.add_argument("--threads", type=int, default=2, help="inference threads (default 2)")
    parser.add_argument(
        "--near-range",
        type=float,
        default=None,
        help="remove returns with |x|, |y| below this many metres of the sensor "
        "(default 1.0, the devkit's remove_close; 0 keeps all)",
    )


def run(args: argparse.Namespace) -> int:
    import time

    import cv2
    import numpy as np

    from calibration import CalibrationError, default_rig_path, load_rig
    from dataset_converters.errors import DatasetError
    from dataset_converters.nuscenes import read_lidar_bin
    from perception.backends import Predictor, load_backend
    from perception.errors import PerceptionError
    from perception.evaluation import metrics_markdown
    from perception.evaluation.realdata import (
        NEAR_RANGE_M,
        class_counts,
        evaluate_sample,
        inside_grid,
        lidar_in_base,
        load_nuscenes_sample,
    )
    from perception.model.config import MODALITIES
    from perception.model.inputs import InputEncoder
    from visualization import BevView

    near_range = NEAR_RANGE_M if args.near_range is None else args.near_range
    try:
        sample = load_nuscenes_sample(args.sample)
        scan = read_lidar_bin(sample.lidar_file)
        predictor = Predictor(load_backend(args.backend, args.weights, threads=args.threads))
        config = predictor.config
        points, near = lidar_in_base(
            scan,
            sample.lidar_to_base,
            sample.stamp_ns,
            sweeps=config.lidar_sweeps,
            near_range_m=near_range,
            source=sample.lidar_file.name,
        )
        # The model's own rig (config/rigs/default.yaml, the nuScenes n015 calibration): the
        # encoder needs it for the camera lookup table and ultrasonic cones, both absent here.
        encoder = InputEncoder(load_rig(default_rig_path()), config)
        began = time.perf_counter()
        inputs = encoder.encode(points, None, None, {})
        encoded = time.perf_counter()
        prediction = predictor(inputs)
        grid = config.input_grid
        metrics = evaluate_sample(prediction.boxes, sample.truth, grid)
    except (PerceptionError, CalibrationError, DatasetError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    in_grid = sample.truth.select(inside_grid(sample.truth, grid))
    evaluated = {name: m.num_gt for name, m in metrics.per_class.items() if m.num_gt > 0}
    car = metrics.per_class["car"].as_dict()
    report = {
        "car_AP": car["AP"],
        "car": car,
        "num_gt_used": evaluated,
        "mAP": None if np.isnan(metrics.mAP) else metrics.mAP,
        "NDS": None if np.isnan(metrics.NDS) else metrics.NDS,
        "per_class": {name: m.as_dict() for name, m in metrics.per_class.items() if m.num_gt > 0},
        "gt_boxes": {
            "in_file": sample.boxes_in_file,
            "ignored": sample.ignored_boxes,
            "detection_classes": class_counts(sample.truth),
            "in_grid": class_counts(in_grid),
            "evaluated": evaluated,
        },
        "predictions": {"total": len(prediction.boxes), "per_class": class_counts(prediction.boxes)},
        "lidar": {
            "points_in_file": int(scan.points.shape[0]),
            "near_returns_removed": near,
            "near_range_m": near_range,
            "points_used": int(points.shape[0]),
            "sweeps_used": 1,
            "sweeps_model_trained_with": config.lidar_sweeps,
        },
        "modality_present": dict(zip(MODALITIES, inputs["modality_present"].tolist(), strict=True)),
        "grid": {"x": [grid.x_min, grid.x_max], "y": [grid.y_min, grid.y_max], "resolution_m": grid.resolution},
        "sample": str(sample.folder),
        "weights": str(args.weights),
        "backend": args.backend,
        "latency_ms": {"encode": round((encoded - began) * 1e3, 3)}
        | {k: round(v, 3) for k, v in prediction.timings_ms.items()},
    }

    view = BevView(grid)
    view.ground(prediction.segmentation[0], None)
    view.range_rings()
    view.lidar(points)
    view.boxes(sample.truth, truth=True)
    view.boxes(prediction.boxes)
    view.ego()
    ap = "n/a" if car["AP"] is None else f"{car['AP']:.3f}"
    view.legend(
        [
            f"nuScenes scene-0061 LIDAR_TOP, 1 sweep (model: {config.lidar_sweeps}), lidar only",
            f"car AP {ap} on {car['num_gt']} GT cars; white: ground truth",
            "shaded: predicted drivable area",
        ],
        sorted(set(prediction.boxes.labels.tolist())),
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(report, indent=2, allow_nan=False))
    markdown = metrics_markdown(metrics)
    (out / "metrics.md").write_text(markdown)
    cv2.imwrite(str(out / "bev.png"), view.image)

    print(
        f"real nuScenes sweep {sample.lidar_file.name}: {points.shape[0]} lidar points in base_link "
        f"({near} near returns removed), 1 sweep (the model was trained with {config.lidar_sweeps}), lidar only"
    )
    print(
        f"ground truth: {sample.boxes_in_file} boxes in the file, {len(sample.truth)} of detection classes, "
        f"{len(in_grid)} inside the BEV grid, evaluated: {evaluated}"
    )
    at = ", ".join(f"{car[key]:.3f}" for key in car if key.startswith("AP@") and car[key] is not None)
    print(f"car AP {ap} (AP@0.5/1/2/4 m: {at or 'n/a'}); {len(prediction.boxes)} detections")
    print(markdown, end="")
    print(f"written: {out / 'metrics.json'}, {out / 'metrics.md'}, {out / 'bev.png'}")
    return 0
