"""Cross-check of the detection metrics against nuscenes-devkit 1.2.0's own functions
(``filter_eval_boxes``, ``accumulate``, ``calc_ap``, ``calc_tp``, ``DetectionMetrics``) on the
same boxes: AP per class and threshold, TP errors, mAP and NDS."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from perception.classes import CLASSES
from perception.evaluation import NUSCENES_CLASS_RANGE_M, DetectionEvaluator, DetectionMetrics, EvalConfig
from perception.ground_truth import Boxes

pytest.importorskip("nuscenes", reason="nuscenes-devkit (requirements-nodeps.txt) is not installed")
from nuscenes.eval.common.config import config_factory
from nuscenes.eval.common.data_classes import EvalBoxes
from nuscenes.eval.common.loaders import filter_eval_boxes
from nuscenes.eval.common.utils import center_distance
from nuscenes.eval.detection.algo import accumulate, calc_ap, calc_tp
from nuscenes.eval.detection.constants import TP_METRICS
from nuscenes.eval.detection.data_classes import DetectionBox
from nuscenes.eval.detection.data_classes import DetectionMetrics as DevkitMetrics

TOLERANCE = 1e-9
# devkit TP metric -> ours
ERROR_NAMES = {"trans_err": "ATE", "scale_err": "ASE", "orient_err": "AOE", "vel_err": "AVE"}


class _NoBikeRacks:
    """The one NuScenes lookup ``filter_eval_boxes`` makes (a sample's annotations, for its
    bike-rack filter): our frames have no annotations beside the evaluated boxes."""

    def get(self, table: str, token: str) -> dict[str, Any]:
        assert table == "sample"
        return {"anns": []}


def _devkit_boxes(boxes: Boxes, token: str, prediction: bool) -> list[DetectionBox]:
    result = []
    for i in range(len(boxes)):
        x, y, z = (float(v) for v in boxes.centers[i])
        length, width, height = (float(v) for v in boxes.sizes[i])
        yaw = float(boxes.yaws[i])
        result.append(
            DetectionBox(
                sample_token=token,
                translation=(x, y, z),
                size=(width, length, height),  # the devkit's order is w, l, h
                rotation=(math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)),  # w, x, y, z about +z
                velocity=(float(boxes.velocities[i, 0]), float(boxes.velocities[i, 1])),
                ego_translation=(x, y, z),  # base_link: the ego at the origin
                num_pts=-1 if prediction else int(boxes.num_lidar_points[i]),
                detection_name=CLASSES[int(boxes.labels[i])],
                detection_score=float(boxes.scores[i]) if prediction else -1.0,
            )
        )
    return result


def _devkit_metrics(frames: Sequence[tuple[Boxes, Boxes]]) -> tuple[DevkitMetrics, Any]:
    """The devkit's DetectionEval.evaluate() steps on our frames (its constructor needs a
    NuScenes database, so the loading part is done here)."""
    cfg = config_factory("detection_cvpr_2019")
    gt, pred = EvalBoxes(), EvalBoxes()
    for index, (p, g) in enumerate(frames):
        token = f"frame{index:04d}"
        gt.add_boxes(token, _devkit_boxes(g, token, prediction=False))
        pred.add_boxes(token, _devkit_boxes(p, token, prediction=True))
    gt = filter_eval_boxes(_NoBikeRacks(), gt, cfg.class_range)
    pred = filter_eval_boxes(_NoBikeRacks(), pred, cfg.class_range)
    metrics = DevkitMetrics(cfg)
    for name in cfg.class_names:
        data = {th: accumulate(gt, pred, name, center_distance, th) for th in cfg.dist_ths}
        for th, md in data.items():
            metrics.add_label_ap(name, th, calc_ap(md, cfg.min_recall, cfg.min_precision))
        for metric in TP_METRICS:
            undefined = (name == "traffic_cone" and metric in ("attr_err", "vel_err", "orient_err")) or (
                name == "barrier" and metric in ("attr_err", "vel_err")
            )
            tp = np.nan if undefined else calc_tp(data[cfg.dist_th_tp], cfg.min_recall, metric)
            metrics.add_label_tp(name, metric, tp)
    return metrics, cfg


def _ours(frames: Sequence[tuple[Boxes, Boxes]]) -> DetectionMetrics:
    evaluator = DetectionEvaluator()
    for predictions, truth in frames:
        evaluator.add_frame(predictions, truth)
    return evaluator.result()


def _assert_close(ours: float, theirs: float, what: str) -> None:
    if math.isnan(theirs):
        assert math.isnan(ours), f"{what}: ours {ours}, devkit nan"
    else:
        assert ours == pytest.approx(theirs, abs=TOLERANCE), f"{what}: ours {ours}, devkit {theirs}"


def _assert_per_class_equal(ours: DetectionMetrics, devkit: DevkitMetrics, cfg: Any, classes: Sequence[str]) -> int:
    """Compares every class in ``classes``; returns how many values were compared."""
    compared = 0
    for name in classes:
        mine = ours.per_class[name]
        for th in cfg.dist_ths:
            _assert_close(mine.ap_at[th], devkit.get_label_ap(name, th), f"{name} AP@{th}")
            compared += 1
        _assert_close(mine.ap, devkit.mean_dist_aps[name], f"{name} AP")
        for metric, error in ERROR_NAMES.items():
            _assert_close(mine.error(error), devkit.get_label_tp(name, metric), f"{name} {error}")
            compared += 1
    return compared


def test_defaults_are_the_devkit_cvpr_2019_config() -> None:
    cfg = config_factory("detection_cvpr_2019")
    ours = EvalConfig()
    assert dict(ours.class_range_m) == {name: float(r) for name, r in cfg.class_range.items()}
    assert dict(NUSCENES_CLASS_RANGE_M) == dict(ours.class_range_m)
    assert list(ours.dist_ths_m) == cfg.dist_ths
    assert ours.dist_th_tp_m == cfg.dist_th_tp
    assert (ours.min_recall, ours.min_precision) == (cfg.min_recall, cfg.min_precision)
    assert ours.max_boxes_per_frame == cfg.max_boxes_per_sample
    assert ours.mean_ap_weight == cfg.mean_ap_weight


def test_all_classes_match_the_devkit(make_scene: Any) -> None:
    frames = make_scene(seed=11, frames=24)
    ours = _ours(frames)
    devkit, cfg = _devkit_metrics(frames)
    assert set(ours.evaluated_classes) == set(CLASSES)  # every class has ground truth here
    compared = _assert_per_class_equal(ours, devkit, cfg, CLASSES)
    assert compared == len(CLASSES) * 8
    # Not a degenerate set: APs spread between 0 and 1 across thresholds.
    aps = [ours.per_class[name].ap_at[th] for name in CLASSES for th in cfg.dist_ths]
    assert min(aps) < 0.3 < 0.6 < max(aps)
    # Summary: with every class present the means are the devkit's; NDS differs only by the
    # missing attribute term (devkit AAE = 1 for every class here: score 0, divisor 10 vs 9).
    _assert_close(ours.mAP, devkit.mean_ap, "mAP")
    for metric, error in ERROR_NAMES.items():
        _assert_close(getattr(ours, f"m{error}"), devkit.tp_errors[metric], f"m{error}")
    assert devkit.tp_scores["attr_err"] == 0.0
    nds = ours.NDS
    assert nds * 9 == pytest.approx(devkit.nd_score * 10, abs=TOLERANCE)


@pytest.mark.parametrize("seed", [3, 4])
def test_some_classes_match_the_devkit(make_scene: Any, seed: int) -> None:
    classes = ("car", "pedestrian", "barrier", "traffic_cone", "bicycle")
    frames = make_scene(seed=seed, frames=20, classes=classes, boxes_per_frame=24, false_positives=6)
    ours = _ours(frames)
    devkit, cfg = _devkit_metrics(frames)
    assert set(ours.evaluated_classes) == set(classes)
    _assert_per_class_equal(ours, devkit, cfg, classes)
    # Classes without ground truth: devkit AP 0 / errors 1; ours NaN and left out of the means.
    absent = [name for name in CLASSES if name not in classes]
    assert all(devkit.mean_dist_aps[name] == 0.0 for name in absent)
    assert all(math.isnan(ours.per_class[name].ap) for name in absent)
    assert ours.mAP == pytest.approx(np.mean([devkit.mean_dist_aps[name] for name in classes]), abs=TOLERANCE)


def test_sparse_hits_and_unknown_velocities_match_the_devkit(make_scene: Any) -> None:
    """Few, far-off predictions: many classes never reach the min-recall point, where the
    error is 1 by rule; and a class whose matches all lack velocities."""
    frames = []
    for predictions, truth in make_scene(seed=21, frames=20, classes=("car", "truck", "bus"), false_positives=10):
        shifted = Boxes(
            centers=predictions.centers + np.array([1.2, 0.0, 0.0]),
            sizes=predictions.sizes,
            yaws=predictions.yaws,
            velocities=np.where(predictions.labels[:, None] == CLASSES.index("bus"), np.nan, predictions.velocities),
            labels=predictions.labels,
            track_ids=predictions.track_ids,
            num_lidar_points=predictions.num_lidar_points,
            scores=predictions.scores,
        )
        frames.append((shifted, truth))
    ours = _ours(frames)
    devkit, cfg = _devkit_metrics(frames)
    _assert_per_class_equal(ours, devkit, cfg, ("car", "truck", "bus"))
    assert ours.per_class["bus"].ave == 1.0  # no known velocity among the bus matches
    assert ours.per_class["car"].ap_at[0.5] < 0.2 < ours.per_class["car"].ap_at[4.0]


def _car_or_pedestrian(centers: Any, labels: Any, *, scores: Any = None, velocities: Any = None) -> Boxes:
    centers = np.asarray(centers, dtype=float)
    sizes = np.array([(4.5, 1.9, 1.6) if label == 0 else (0.7, 0.7, 1.8) for label in labels]).reshape(-1, 3)
    return Boxes.create(centers, sizes, np.zeros(len(centers)), labels, scores=scores, velocities=velocities)


def test_tie_and_leading_unknown_velocity_rules_match_the_devkit() -> None:
    """Crafted so the rules that random sets rarely reach decide the result: equal scores
    competing for one object in a frame (the later box goes first), and the highest-ranked
    matches having unknown velocities (the devkit's running mean counts 0 before the first
    known value)."""
    car, ped = CLASSES.index("car"), CLASSES.index("pedestrian")
    frames = [
        (  # two equal-score cars compete for one object: the later (0.1 m off) takes it
            _car_or_pedestrian([[10.3, 0, 1], [10.1, 0, 1]], [car, car], scores=[0.8, 0.8], velocities=[[0, 0]] * 2),
            _car_or_pedestrian([[10, 0, 1]], [car], velocities=[[0, 0]]),
        )
    ]
    for k in range(10):  # pedestrians: the 4 best-scored matches have unknown velocity
        known = k >= 4
        frames.append(
            (
                _car_or_pedestrian([[5 + 0.1 * k, 3, 1]], [ped], scores=[0.9 - 0.05 * k], velocities=[[1.0, 0]]),
                _car_or_pedestrian([[5, 3, 1]], [ped], velocities=[[0, 0] if known else [np.nan, np.nan]]),
            )
        )
    ours = _ours(frames)
    devkit, cfg = _devkit_metrics(frames)
    _assert_per_class_equal(ours, devkit, cfg, ("car", "pedestrian"))
    assert ours.per_class["car"].ate == pytest.approx(0.1)
    assert 0.0 < ours.per_class["pedestrian"].ave < 1.0  # zeros before the first known value
