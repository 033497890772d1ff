"""Evaluate a predictor on recorded bags with ground truth (what ``fusion eval`` runs).

Each bag is replayed in log-time order through the runtime's own front end
(:class:`perception.pipeline.FramePipeline`: synchronizer, ego motion, BEV, images), every
prepared frame that has ground truth (same stamp as a ``ground_truth.npz`` frame) is run
through the predictor, and the detections and BEV grids are scored with
:mod:`perception.evaluation`. ``drop`` removes sensors as if they were missing: the frames
stay those of the full rig (the lidar still clocks them), the network sees the sensors absent.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from calibration import Modality, Rig, load_rig
from fusion_node.bag.records import RIG_FILE
from fusion_node.bag.replay import SkippedMessage, replay_frames
from perception.evaluation import DetectionEvaluator, SegmentationEvaluator, metrics_json, metrics_markdown
from perception.ground_truth import GROUND_TRUTH_FILE, load_ground_truth
from perception.pipeline import FramePipeline
from perception.postprocess import Postprocess
from perception.sync import DEFAULT_MATCH, SyncConfig

GROUPS = {
    "lidar": Modality.LIDAR,
    "camera": Modality.CAMERA,
    "radar": Modality.RADAR,
    "ultrasonic": Modality.ULTRASONIC,
}


class EvalInputError(ValueError):
    """A bag, its rig / ground truth or a --drop entry is unusable; the message names it."""


def parse_drop(spec: str, rig: Rig) -> frozenset[str]:
    """'lidar,cam_front' -> sensor ids: a group name stands for all its sensors."""
    ids: set[str] = set()
    for token in (t.strip() for t in spec.split(",")):
        if not token:
            continue
        if token in GROUPS:
            ids.update(s.id for s in rig.of(GROUPS[token]))
        elif token in rig.ids:
            ids.add(token)
        else:
            raise EvalInputError(
                f"--drop: {token!r} is neither a group {sorted(GROUPS)} nor a sensor of rig "
                f"{rig.name!r} {list(rig.ids)}"
            )
    return frozenset(ids)


@dataclass
class EvalResult:
    metrics: dict[str, Any]
    markdown: str
    frames: int
    frames_without_truth: int
    skipped_messages: list[SkippedMessage] = field(default_factory=list)
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    dropped: tuple[str, ...] = ()


def _percentiles(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {}
    return {f"p{q}": round(float(np.percentile(values, q)), 3) for q in (50, 95, 99)}


def evaluate_bags(
    bags: Iterable[str | Path],
    predictor: Any,
    *,
    drop: str = "",
    match: str = DEFAULT_MATCH,
    radar_velocity: bool = True,
    drivable_memory: bool = True,
    progress: Any = None,
) -> EvalResult:
    """Metrics of ``predictor`` on the bags' frames against their ground truth; ``drop``: the
    sensors treated as missing (:func:`parse_drop`); ``match``: the synchronizer's matching
    (perception.sync.SyncConfig.from_rig); ``radar_velocity`` / ``drivable_memory``: the
    runtime's steps after the network (perception.postprocess), on by default as in the node."""
    detection, segmentation = DetectionEvaluator(), SegmentationEvaluator()
    skipped: list[SkippedMessage] = []
    timings: dict[str, list[float]] = {}
    frames = without_truth = 0
    dropped: frozenset[str] = frozenset()
    for bag in bags:
        bag = Path(bag)
        for required in (RIG_FILE, GROUND_TRUTH_FILE):
            if not (bag / required).is_file():
                raise EvalInputError(
                    f"{bag}: no {required} beside the bag (written by `fusion sim` / `fusion convert`)"
                )
        rig = load_rig(bag / RIG_FILE)
        truth = load_ground_truth(bag / GROUND_TRUTH_FILE)
        index = {frame.stamp_ns: i for i, frame in enumerate(truth.frames)}
        dropped = parse_drop(drop, rig)
        pipeline = FramePipeline(rig, predictor.config, sync=SyncConfig.from_rig(rig, match=match), drop=dropped)
        postprocess = Postprocess(rig, predictor.config, radar_velocity=radar_velocity, drivable_memory=drivable_memory)

        for prepared in replay_frames(bag, rig, pipeline, on_error=skipped.append):
            i = index.get(prepared.stamp_ns)
            if i is None:
                without_truth += 1
                continue
            prediction = postprocess(predictor(prepared.inputs), prepared)
            detection.add_frame(prediction.boxes, truth.frames[i].boxes)
            if truth.drivable is not None and truth.occupancy is not None:
                segmentation.add_frame(prediction.segmentation, np.stack([truth.drivable[i], truth.occupancy[i]]))
            for stage, ms in (prepared.timings_ms | prediction.timings_ms).items():
                timings.setdefault(stage, []).append(ms)
            frames += 1
            if progress is not None:
                progress.update(1)
    if frames == 0:
        raise EvalInputError("no frame matched a ground-truth stamp: nothing to evaluate")
    det, seg = detection.result(), segmentation.result()
    return EvalResult(
        metrics=metrics_json(det, seg),
        markdown=metrics_markdown(det, seg if segmentation.frames else None),
        frames=frames,
        frames_without_truth=without_truth,
        skipped_messages=skipped,
        latency_ms={stage: _percentiles(values) for stage, values in timings.items()},
        dropped=tuple(sorted(dropped)),
    )
