"""A real nuScenes key frame as the lidar branch sees it: sweep and ground truth in base_link.

Reads the decoded sample of ``../shared/realdata/nuscenes_scene0061`` (see its README):

- ``calib.json``: ``lidar2ego`` (4, 4) LIDAR_TOP -> ego (= our base_link: rear-axle centre on
  the ground, x forward, y left, z up), ``lidar_file``, ``lidar_timestamp_s``;
- ``gt_boxes.json``: ``boxes``, each in the LIDAR_TOP frame (x right, y forward, z up) with
  ``name`` (a :data:`perception.classes.CLASSES` name, or ``"ignored"`` for an annotation
  outside the 10 detection classes), ``center_xyz`` (geometric centre, m), ``lwh`` (m),
  ``yaw`` (rad about +z from +x), ``velocity_xy`` (m/s, lidar axes; NaN = unknown) and
  ``num_lidar_pts_in_info``. Boxes are matched to our classes by name: the file's numeric
  ``label`` follows mmdetection3d's class order, not ours.

The lidar sweep itself (``.pcd.bin``) is read by ``dataset_converters.nuscenes.read_lidar_bin``;
:func:`lidar_in_base` moves it into base_link through the runtime's own
:class:`perception.ego_motion.SweepAccumulator` (one sweep: time lag 0 for every point).
:func:`evaluate_sample` scores detections with :class:`perception.evaluation.DetectionEvaluator`
(the metrics of ``fusion eval``) against the ground truth inside the model's BEV grid.
ROS-free, numpy.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from calibration.errors import TransformError
from calibration.poses import PoseTrajectory
from calibration.transforms import validate_transform
from perception.bev_grid import BevGrid
from perception.classes import CLASS_INDEX, CLASSES
from perception.ego_motion import EgoMotionError, SweepAccumulator
from perception.evaluation.detection import DetectionEvaluator, DetectionMetrics, EvalConfig
from perception.evaluation.errors import EvaluationError
from perception.ground_truth import Boxes
from perception.samples import PointScan

CALIB_FILE: Final = "calib.json"
TRUTH_FILE: Final = "gt_boxes.json"
#: ``name`` of a ground-truth entry that is none of the detection classes (label -1).
IGNORED_NAME: Final = "ignored"
#: Half-side (m) of the square around the sensor whose returns are removed: the devkit's
#: ``LidarPointCloud.remove_close(radius=1.0)``. nuScenes stores its no-returns near the
#: sensor origin (8,029 of the 34,688 points of scene-0061); the simulator produces none.
NEAR_RANGE_M: Final = 1.0


@dataclass(frozen=True)
class NuScenesSample:
    """One decoded nuScenes key frame (the files of ``calib.json`` / ``gt_boxes.json``).

    Attributes:
        folder: the sample folder.
        lidar_file: path of the LIDAR_TOP ``.pcd.bin`` (float32 x5: x, y, z, intensity
            0..255, ring), LIDAR_TOP frame.
        stamp_ns: the lidar timestamp, int ns.
        lidar_to_base: (4, 4) float64 LIDAR_TOP -> base_link (``lidar2ego``), read-only.
        truth: ground truth of the detection classes in base_link, metres, in file order
            (``num_lidar_points`` from ``num_lidar_pts_in_info``, velocities in base_link axes).
        boxes_in_file: entries in ``gt_boxes.json`` (the ignored ones included).
        ignored_boxes: entries named :data:`IGNORED_NAME`, left out of ``truth``.
    """

    folder: Path
    lidar_file: Path
    stamp_ns: int
    lidar_to_base: NDArray[np.float64]
    truth: Boxes
    boxes_in_file: int
    ignored_boxes: int


def _read_json(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise EvaluationError(
            f"{path}: no such file (a decoded nuScenes sample folder has {CALIB_FILE} and {TRUTH_FILE})"
        ) from None
    except (OSError, ValueError) as exc:
        raise EvaluationError(f"{path}: not readable JSON ({exc})") from exc
    if not isinstance(document, dict):
        raise EvaluationError(f"{path}: expected a JSON object at the top, got {type(document).__name__}")
    return document


def _numbers(value: object, count: int, where: str, *, unknown: bool = False) -> list[float]:
    """``count`` finite numbers; with ``unknown``, all NaN (unknown) is accepted too."""
    if isinstance(value, list) and len(value) == count:
        numbers = [v for v in value if isinstance(v, int | float) and not isinstance(v, bool)]
        finite = len(numbers) == count and all(math.isfinite(v) for v in numbers)
        if finite or (len(numbers) == count and unknown and all(math.isnan(v) for v in numbers)):
            return [float(v) for v in numbers]
    allowed = " (or all NaN: unknown)" if unknown else ""
    raise EvaluationError(f"{where}: expected {count} finite numbers{allowed}, got {value!r}")


def boxes_from_records(records: object, source: str = TRUTH_FILE) -> tuple[Boxes, int]:
    """``gt_boxes.json`` ``boxes`` entries -> (Boxes in the LIDAR_TOP frame, ignored count).

    Entries named :data:`IGNORED_NAME` are counted and left out; every other entry must name
    a class of :data:`perception.classes.CLASSES`. EvaluationError names ``source``, the
    entry index, the field and the bad value.
    """
    if not isinstance(records, list):
        raise EvaluationError(f"{source}: 'boxes' must be a list, got {type(records).__name__}")
    rows: list[tuple[list[float], list[float], float, list[float], int, int]] = []
    ignored = 0
    for index, record in enumerate(records):
        where = f"{source}: boxes[{index}]"
        if not isinstance(record, Mapping):
            raise EvaluationError(f"{where}: expected an object, got {type(record).__name__}")
        missing = [k for k in ("name", "center_xyz", "lwh", "yaw", "velocity_xy") if k not in record]
        if missing:
            raise EvaluationError(f"{where}: field {missing[0]!r} is missing; fields: {sorted(record)}")
        name = record["name"]
        if name == IGNORED_NAME:
            ignored += 1
            continue
        if name not in CLASS_INDEX:
            raise EvaluationError(
                f"{where}.name = {name!r}: not a detection class {list(CLASSES)} nor {IGNORED_NAME!r}"
            )
        sizes = _numbers(record["lwh"], 3, f"{where}.lwh")
        if min(sizes) <= 0:
            raise EvaluationError(f"{where}.lwh = {sizes}: sizes must be > 0")
        yaw = _numbers([record["yaw"]], 1, f"{where}.yaw")[0]
        points = record.get("num_lidar_pts_in_info", -1)
        if isinstance(points, bool) or not isinstance(points, int) or points < -1:
            raise EvaluationError(f"{where}.num_lidar_pts_in_info = {points!r}: expected an int >= -1")
        rows.append(
            (
                _numbers(record["center_xyz"], 3, f"{where}.center_xyz"),
                sizes,
                yaw,
                _numbers(record["velocity_xy"], 2, f"{where}.velocity_xy", unknown=True),
                CLASS_INDEX[name],
                points,
            )
        )
    if not rows:
        return Boxes.empty(), ignored
    centers, sizes_, yaws, velocities, labels, counts = zip(*rows, strict=True)
    boxes = Boxes.create(
        centers=np.array(centers),
        sizes=np.array(sizes_),
        yaws=np.array(yaws),
        labels=np.array(labels, dtype=np.int64),
        velocities=np.array(velocities),
        num_lidar_points=np.array(counts, dtype=np.int64),
    )
    return boxes, ignored


def load_nuscenes_sample(folder: str | Path) -> NuScenesSample:
    """Read ``calib.json`` and ``gt_boxes.json`` of a decoded nuScenes sample folder.

    Raises:
        EvaluationError: a file is missing or malformed; the message names the file, the
            field and the bad value.
    """
    root = Path(folder)
    calib_path, truth_path = root / CALIB_FILE, root / TRUTH_FILE
    calib = _read_json(calib_path)
    for key in ("lidar2ego", "lidar_file", "lidar_timestamp_s"):
        if key not in calib:
            raise EvaluationError(f"{calib_path}: field {key!r} is missing; fields: {sorted(calib)}")
    try:
        lidar_to_base = validate_transform(calib["lidar2ego"])
    except (TransformError, ValueError, TypeError) as exc:
        raise EvaluationError(
            f"{calib_path}: lidar2ego = {calib['lidar2ego']!r} is not a rigid 4x4 transform: {exc}"
        ) from exc
    lidar_to_base = lidar_to_base.copy()
    lidar_to_base.setflags(write=False)
    stamp_s = _numbers([calib["lidar_timestamp_s"]], 1, f"{calib_path}: lidar_timestamp_s")[0]
    name = calib["lidar_file"]
    if not isinstance(name, str) or not name or Path(name).name != name:
        raise EvaluationError(f"{calib_path}: lidar_file = {name!r} must be a file name in {root}")
    truth = _read_json(truth_path)
    if "boxes" not in truth:
        raise EvaluationError(f"{truth_path}: field 'boxes' is missing; fields: {sorted(truth)}")
    boxes, ignored = boxes_from_records(truth["boxes"], str(truth_path))
    return NuScenesSample(
        folder=root,
        lidar_file=root / name,
        stamp_ns=round(stamp_s * 1e6) * 1000,
        lidar_to_base=lidar_to_base,
        truth=boxes.transformed(lidar_to_base),
        boxes_in_file=len(truth["boxes"]),
        ignored_boxes=ignored,
    )


def lidar_in_base(
    scan: PointScan,
    lidar_to_base: NDArray[np.float64],
    stamp_ns: int,
    *,
    sweeps: int = 1,
    near_range_m: float = NEAR_RANGE_M,
    source: str = "lidar",
) -> tuple[NDArray[np.float32], int]:
    """One sweep -> the lidar BEV input, as the runtime's front end builds it.

    Args:
        scan: PointScan with fields x, y, z (+ intensity, ring), sensor frame, metres; no
            ``time`` field: every point is taken at ``stamp_ns`` (a nuScenes key frame).
        lidar_to_base: (4, 4) lidar -> base_link.
        stamp_ns: the sweep's stamp, int ns.
        sweeps: the accumulator's sweep count (the model's ``lidar_sweeps``); with one sweep
            given, only that sweep comes out whatever this is.
        near_range_m: returns with |x| and |y| (sensor frame) both below this are removed
            (:data:`NEAR_RANGE_M`); 0 keeps every point.
        source: sensor id or file, for error messages.

    Returns:
        ((N, 5) float32 ``[x, y, z, intensity, time_lag_s]`` in base_link at ``stamp_ns``,
        metres / seconds, time_lag_s = 0; the number of near returns removed).

    Raises:
        EvaluationError: a bad extrinsic, missing x/y/z fields or a negative ``near_range_m``.
    """
    if not (math.isfinite(near_range_m) and near_range_m >= 0):
        raise EvaluationError(f"lidar_in_base ({source}): near_range_m = {near_range_m!r} must be finite and >= 0")
    try:
        near = (np.abs(scan.column("x")) < near_range_m) & (np.abs(scan.column("y")) < near_range_m)
        kept = PointScan(scan.fields, np.ascontiguousarray(scan.points[~near]))
        accumulator = SweepAccumulator(sweeps, lidar_to_base, max_age_ns=0, source=source)
        static = PoseTrajectory(np.array([stamp_ns], dtype=np.int64), np.eye(4)[None], max_extrapolation_ns=0)
        points = accumulator.add(kept, int(stamp_ns), static)
    except (EgoMotionError, ValueError) as exc:
        raise EvaluationError(f"lidar_in_base ({source}): {exc}") from exc
    return points, int(near.sum())


def inside_grid(boxes: Boxes, grid: BevGrid) -> NDArray[np.bool_]:
    """(N,) bool: the box centre (base_link x, y) lies inside the grid's x/y extent."""
    x, y = boxes.centers[:, 0], boxes.centers[:, 1]
    inside: NDArray[np.bool_] = (x >= grid.x_min) & (x < grid.x_max) & (y >= grid.y_min) & (y < grid.y_max)
    return inside


def evaluate_sample(
    predictions: Boxes, truth: Boxes, grid: BevGrid, config: EvalConfig | None = None
) -> DetectionMetrics:
    """nuScenes detection metrics of one frame (``fusion eval``'s evaluator), counting only
    the ground truth inside ``grid`` (the model cannot see beyond it); the evaluator then
    applies the class ranges and drops boxes without lidar points, as nuScenes does.

    Args:
        predictions: detections in base_link (scores rank them).
        truth: ground truth in base_link.
        grid: the model's BEV grid.
        config: evaluator settings (default: nuScenes ``detection_cvpr_2019``).
    """
    evaluator = DetectionEvaluator(config)
    evaluator.add_frame(predictions, truth.select(inside_grid(truth, grid)))
    return evaluator.result()


def class_counts(boxes: Boxes, names: Sequence[str] = CLASSES) -> dict[str, int]:
    """Class name -> number of ``boxes`` of that class, for the classes present (CLASSES order)."""
    counts = np.bincount(boxes.labels, minlength=len(CLASSES))
    return {name: int(counts[CLASS_INDEX[name]]) for name in names if counts[CLASS_INDEX[name]]}
