"""Detection metrics on hand-built cases: perfect and displaced predictions, range and
lidar-point filters, duplicates, unknown velocities, empty frames, undefined errors, the
per-frame cap, bad input and configuration."""

from __future__ import annotations

import json
import math
import time
from typing import Any

import numpy as np
import pytest

from perception.classes import CLASSES
from perception.evaluation import DetectionEvaluator, DetectionMetrics, EvalConfig, EvaluationError
from perception.ground_truth import Boxes

CAR, PED, BARRIER, CONE, TRUCK = (CLASSES.index(n) for n in ("car", "pedestrian", "barrier", "traffic_cone", "truck"))
SIZE = {CAR: (4.5, 1.9, 1.6), PED: (0.7, 0.7, 1.8), BARRIER: (0.5, 2.5, 1.0), CONE: (0.4, 0.4, 1.0), TRUCK: (7, 2.5, 3)}


def boxes(
    centers: Any,
    labels: Any,
    *,
    yaws: Any = None,
    velocities: Any = None,
    scores: Any = None,
    points: Any = None,
    sizes: Any = None,
) -> Boxes:
    centers = np.asarray(centers, dtype=float).reshape(-1, 3)
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    n = len(labels)
    return Boxes.create(
        centers,
        np.array([SIZE[int(label)] for label in labels], dtype=float).reshape(n, 3) if sizes is None else sizes,
        np.zeros(n) if yaws is None else yaws,
        labels,
        velocities=np.zeros((n, 2)) if velocities is None else velocities,
        scores=scores,
        num_lidar_points=points,
    )


def evaluate(frames: list[tuple[Boxes, Boxes]], config: EvalConfig | None = None) -> DetectionMetrics:
    evaluator = DetectionEvaluator(config)
    for predictions, truth in frames:
        evaluator.add_frame(predictions, truth)
    return evaluator.result()


def scene(rng: np.random.Generator, labels: list[int]) -> Boxes:
    n = len(labels)
    angle = rng.uniform(-np.pi, np.pi, n)
    radius = rng.uniform(3, 25, n)
    centers = np.stack([radius * np.cos(angle), radius * np.sin(angle), np.ones(n)], axis=1)
    return boxes(centers, labels, yaws=rng.uniform(-3, 3, n), velocities=rng.normal(0, 2, (n, 2)))


def with_scores(b: Boxes, scores: Any) -> Boxes:
    return Boxes.create(b.centers, b.sizes, b.yaws, b.labels, velocities=b.velocities, scores=scores)


def test_perfect_predictions_score_one_with_zero_errors() -> None:
    rng = np.random.default_rng(0)
    frames = []
    for _ in range(5):
        gt = scene(rng, [CAR, CAR, PED, PED, BARRIER, CONE])
        frames.append((with_scores(gt, rng.uniform(0.3, 1.0, len(gt))), gt))
    result = evaluate(frames)
    assert result.evaluated_classes == ("car", "barrier", "pedestrian", "traffic_cone")
    for name in result.evaluated_classes:
        metrics = result.per_class[name]
        # 1 up to rounding: (1 - 0.1) / (1 - 0.1) is 1.0000000000000004 here and in the devkit
        assert metrics.ap == pytest.approx(1.0, abs=1e-12)
        assert list(metrics.ap_at.values()) == pytest.approx([1.0] * 4, abs=1e-12)
        assert metrics.num_gt == metrics.num_pred == (10 if name in ("car", "pedestrian") else 5)
        for error in ("ATE", "ASE", "AOE", "AVE"):
            value = metrics.error(error)
            assert math.isnan(value) or value == pytest.approx(0.0, abs=1e-12), (name, error, value)
    assert result.mAP == pytest.approx(1.0, abs=1e-12)
    nds = result.NDS
    assert nds == pytest.approx(1.0, abs=1e-12)
    assert result.frames == 5


def test_predictions_five_metres_off_score_zero() -> None:
    rng = np.random.default_rng(1)
    frames = []
    for _ in range(4):
        gt = scene(rng, [CAR, CAR, PED, TRUCK])
        off = Boxes.create(
            gt.centers + np.array([5.0, 0.0, 0.0]), gt.sizes, gt.yaws, gt.labels, velocities=gt.velocities
        )
        frames.append((off, gt))
    result = evaluate(frames)
    for name in ("car", "pedestrian", "truck"):
        assert all(ap == 0.0 for ap in result.per_class[name].ap_at.values())
        assert result.per_class[name].ate == 1.0  # no match at 2 m: error 1 (the devkit's value)
    assert result.mAP == 0.0
    assert result.NDS == 0.0


def test_boxes_beyond_the_class_range_are_ignored() -> None:
    # Range is per class: car 50 m, pedestrian 40 m; 2D distance (z ignored).
    gt = boxes([[10, 0, 1], [0, 45, 1], [0, -45, 9], [60, 0, 1]], [CAR, CAR, PED, CAR])
    predictions = boxes(
        [[10, 0, 1], [0, 45, 1], [30, -40, 1], [0, 55, 1]],  # a car at 50 m and one at 55 m: beyond
        [CAR, CAR, CAR, CAR],
        scores=[0.5, 0.5, 0.9, 0.9],
    )
    result = evaluate([(predictions, gt)])
    assert result.per_class["car"].num_gt == 2  # the car at 60 m is out
    assert result.per_class["car"].num_pred == 2  # the cars at 50 m (not < 50) and 55 m are out
    assert result.per_class["car"].ap == pytest.approx(1.0)  # so the high-scored far predictions cost nothing
    assert result.per_class["pedestrian"].num_gt == 0  # 45 m > 40 m
    assert result.evaluated_classes == ("car",)
    # A tighter configured range drops the car at 45 m too.
    tight = evaluate([(predictions, gt)], EvalConfig(class_range_m={"car": 20.0}))
    assert (tight.per_class["car"].num_gt, tight.per_class["car"].num_pred) == (1, 1)
    assert list(tight.per_class) == ["car"]


def test_truth_without_lidar_points_is_ignored_unknown_is_kept() -> None:
    gt = boxes([[10, 0, 1], [20, 0, 1], [30, 0, 1]], [CAR] * 3, points=[12, 0, -1])
    predictions = boxes([[10, 0, 1]], [CAR])
    result = evaluate([(predictions, gt)])
    assert result.per_class["car"].num_gt == 2  # 0 points: dropped; -1 (unknown): kept
    # One of two found: precision 1 up to recall 0.5, then 0.
    assert result.per_class["car"].ap == pytest.approx((40 * 0.9) / 90 / 0.9)
    only_seen = evaluate([(predictions, boxes([[10, 0, 1], [20, 0, 1]], [CAR] * 2, points=[12, 0]))])
    assert only_seen.per_class["car"].ap == pytest.approx(1.0)


def test_duplicate_prediction_is_one_true_and_one_false_positive() -> None:
    gt = boxes([[10, 0, 1]], [CAR])
    # The higher score takes the object even though the other is closer.
    predictions = boxes([[10.3, 0, 1], [10.0, 0, 1]], [CAR, CAR], scores=[0.9, 0.8])
    result = evaluate([(predictions, gt)])
    car = result.per_class["car"]
    # Precision 1 at every recall point but the last (recall 1 reached, then precision 1/2).
    assert car.ap == pytest.approx((89 + 0.4 / 0.9) / 90)
    assert car.ate == pytest.approx(0.3)
    assert car.num_pred == 2


def test_nearest_unmatched_truth_of_the_same_class_is_taken() -> None:
    gt = boxes([[10, 0, 1], [10, 1.2, 1], [10, 0.2, 1]], [CAR, CAR, PED])
    # First (higher score) takes the car at y=0; the second, nearest to that car, takes the
    # car at y=1.2 (1.0 m away): a match at 2 m and 4 m, not at 0.5 m or 1 m. The pedestrian
    # (0.2 m away) is another class.
    predictions = boxes([[10, 0.1, 1], [10, 0.2, 1]], [CAR, CAR], scores=[0.9, 0.8])
    car = evaluate([(predictions, gt)]).per_class["car"]
    # Recall 1/2 reached with precision 1, then a false positive at the same recall: recall
    # points 0.11..0.49 have precision 1, 0.50 has 1/2, the rest 0.
    assert car.ap_at[0.5] == car.ap_at[1.0] == pytest.approx((39 + 0.4 / 0.9) / 90)
    assert car.ap_at[2.0] == car.ap_at[4.0] == pytest.approx(1.0)
    # ATE: running mean 0.1, then 0.55; interpolated through the confidences onto recall
    # points 0.11..0.50 (0.1) and 0.51..1.00 (rising linearly to 0.55), then averaged.
    rising = sum(0.1 + 0.45 * j / 50 for j in range(1, 51))
    assert car.ate == pytest.approx((40 * 0.1 + rising) / 90)


def test_unknown_velocities_are_left_out_of_ave() -> None:
    gt = boxes([[10, 0, 1], [20, 0, 1], [30, 0, 1]], [CAR] * 3, velocities=[[1, 0], [np.nan, np.nan], [0, 0]])
    predictions = boxes(
        [[10, 0, 1], [20, 0, 1], [30, 0, 1]],
        [CAR] * 3,
        velocities=[[1.5, 0], [9, 9], [np.nan, np.nan]],  # 0.5 m/s off; vs unknown truth; not estimated
        scores=[0.9, 0.8, 0.7],
    )
    car = evaluate([(predictions, gt)]).per_class["car"]
    assert car.ave == pytest.approx(0.5)
    assert car.ate == 0.0
    # All velocities unknown: the devkit's rule gives AVE 1.
    unknown = boxes([[10, 0, 1]], [CAR], velocities=[[np.nan, np.nan]])
    assert evaluate([(boxes([[10, 0, 1]], [CAR]), unknown)]).per_class["car"].ave == 1.0


def test_empty_frames_count_but_change_nothing() -> None:
    empty = evaluate([(Boxes.empty(), Boxes.empty())] * 3)
    assert empty.frames == 3
    assert empty.evaluated_classes == ()
    assert math.isnan(empty.mAP)
    assert math.isnan(empty.NDS)
    assert math.isnan(empty.mATE)
    assert all(m.num_gt == m.num_pred == 0 for m in empty.per_class.values())
    assert evaluate([]).frames == 0
    gt = boxes([[10, 0, 1]], [CAR])
    moved = boxes([[10.2, 0, 1]], [CAR])
    plain = evaluate([(moved, gt)])
    padded = evaluate([(Boxes.empty(), Boxes.empty()), (moved, gt), (Boxes.empty(), Boxes.empty())])
    assert padded.frames == 3
    assert padded.as_dict() | {"frames": 1} == plain.as_dict()
    # A frame with predictions but no truth: its predictions are false positives.
    with_fp = evaluate([(moved, gt), (boxes([[5, 5, 1]], [CAR], scores=[0.95]), Boxes.empty())])
    assert with_fp.per_class["car"].ap < 1.0


def test_class_without_truth_is_not_evaluated() -> None:
    gt = boxes([[10, 0, 1]], [CAR])
    predictions = boxes([[10, 0, 1], [0, 10, 1]], [CAR, TRUCK])  # a truck where there is none
    result = evaluate([(predictions, gt)])
    truck = result.per_class["truck"]
    assert math.isnan(truck.ap)
    assert all(math.isnan(v) for v in truck.ap_at.values())
    assert (truck.num_gt, truck.num_pred) == (0, 1)
    assert result.evaluated_classes == ("car",)
    assert result.mAP == pytest.approx(1.0)  # the truck is not averaged in


def test_orientation_period_and_undefined_errors() -> None:
    half_turn = [np.pi, np.pi]
    gt = boxes([[10, 0, 1], [0, 10, 1], [0, -10, 1]], [CAR, BARRIER, CONE], velocities=[[0, 0]] * 3)
    predictions = boxes(
        [[10, 0, 1], [0, 10, 1], [0, -10, 1]],
        [CAR, BARRIER, CONE],
        yaws=[np.pi, *half_turn],
        velocities=[[3, 4]] * 3,
    )
    result = evaluate([(predictions, gt)])
    car, barrier, cone = (result.per_class[n] for n in ("car", "barrier", "traffic_cone"))
    assert car.aoe == pytest.approx(np.pi)  # period 2 pi: a car facing backwards is wrong
    assert barrier.aoe == pytest.approx(0.0, abs=1e-12)  # period pi: a barrier has no front
    assert math.isnan(cone.aoe)
    assert math.isnan(cone.ave)
    assert math.isnan(barrier.ave)
    assert car.ave == pytest.approx(5.0)
    assert result.mAOE == pytest.approx(np.pi / 2)  # mean of car and barrier only
    assert result.mAVE == pytest.approx(5.0)  # car only


def test_scale_error_is_one_minus_aligned_iou() -> None:
    gt = boxes([[10, 0, 1]], [CAR], sizes=[[4.0, 2.0, 1.5]])
    predictions = boxes([[10, 0, 1]], [CAR], sizes=[[2.0, 2.0, 1.5]], yaws=[0.3])
    car = evaluate([(predictions, gt)]).per_class["car"]
    assert car.ase == pytest.approx(0.5)
    assert car.aoe == pytest.approx(0.3)


def test_predictions_are_capped_per_frame_by_score() -> None:
    gt = boxes([[10, 0, 1]], [CAR])
    far = [[20 + (k % 20), -20 + 2 * (k // 20), 1] for k in range(500)]
    predictions = boxes([*far, [10, 0, 1]], [CAR] * 501, scores=[0.9] * 500 + [0.1])
    capped = evaluate([(predictions, gt)]).per_class["car"]
    assert capped.num_pred == 500
    assert capped.ap == 0.0  # the true one is the 501st by score
    uncapped = evaluate([(predictions, gt)], EvalConfig(max_boxes_per_frame=501)).per_class["car"]
    assert uncapped.num_pred == 501
    assert uncapped.ap_at[0.5] == 0.0
    assert uncapped.ate == 0.0


def test_result_is_deterministic_and_json_ready(make_scene: Any) -> None:
    frames = make_scene(seed=5, frames=12, classes=("car", "pedestrian", "traffic_cone"))
    first, second = evaluate(frames).as_dict(), evaluate(frames).as_dict()
    assert first == second
    assert list(first) == ["mAP", "NDS", "mATE", "mASE", "mAOE", "mAVE", "per_class", "frames"]
    assert list(first["per_class"]) == list(CLASSES)
    keys = ["AP", "AP@0.5", "AP@1.0", "AP@2.0", "AP@4.0", "ATE", "ASE", "AOE", "AVE", "num_gt", "num_pred"]
    assert all(list(entry) == keys for entry in first["per_class"].values())
    text = json.dumps(first, allow_nan=False)  # NaN became null
    assert json.loads(text)["per_class"]["traffic_cone"]["AOE"] is None
    assert json.loads(text)["per_class"]["truck"]["AP"] is None
    assert 0.0 < first["mAP"] < 1.0


def test_bad_input_names_the_value_and_the_frame() -> None:
    evaluator = DetectionEvaluator()
    evaluator.add_frame(Boxes.empty(), Boxes.empty())
    bad = boxes([[10, 0, 1], [5, 0, 1]], [CAR, CAR])
    object.__setattr__(bad, "labels", np.array([0, 12]))  # bypasses Boxes' own check
    with pytest.raises(EvaluationError, match=r"frame 1: truth\.labels\[1\] = 12 is not a class label"):
        evaluator.add_frame(Boxes.empty(), bad)
    with pytest.raises(EvaluationError, match=r"frame 1: predictions must be Boxes, got list"):
        evaluator.add_frame([], Boxes.empty())  # type: ignore[arg-type]
    assert evaluator.frames == 1  # nothing was added


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"class_range_m": {"lorry": 50.0}}, r"unknown class 'lorry'"),
        ({"class_range_m": {"car": -1.0}}, r"class_range_m\['car'\] = -1.0"),
        ({"dist_ths_m": (0.5, 0.5, 2.0)}, r"dist_ths_m = \(0.5, 0.5, 2.0\)"),
        ({"dist_th_tp_m": 3.0}, r"dist_th_tp_m = 3.0: must be one of"),
        ({"min_precision": 1.0}, r"min_precision = 1.0"),
        ({"min_recall": -0.1}, r"min_recall = -0.1"),
        ({"max_boxes_per_frame": 0}, r"max_boxes_per_frame = 0"),
    ],
)
def test_bad_config_names_the_field_and_value(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(EvaluationError, match=message):
        EvalConfig(**kwargs)


@pytest.mark.slow
def test_thousand_frames_of_fifty_boxes_evaluate_in_seconds(make_scene: Any) -> None:
    frames = make_scene(seed=9, frames=1000, boxes_per_frame=50, false_positives=8)
    start = time.perf_counter()
    result = evaluate(frames)
    elapsed = time.perf_counter() - start
    assert result.frames == 1000
    assert elapsed < 15.0, f"{elapsed:.1f} s"
