"""nuScenes detection metrics on :class:`~perception.ground_truth.Boxes`: AP at centre distances,
true-positive errors (ATE, ASE, AOE, AVE), mAP and NDS. ROS-free, numpy.

The protocol is the nuScenes detection benchmark of nuscenes-devkit 1.2.0
(``nuscenes/eval/detection``: ``algo.accumulate`` / ``calc_ap`` / ``calc_tp``, config
``detection_cvpr_2019``), reimplemented here and cross-checked against the devkit's own
functions on the same boxes (tests/perception/evaluation). Per frame (one lidar sweep,
predictions and ground truth both in base_link):

1. **Filtering.** Predictions are capped to the ``max_boxes_per_frame`` (500) highest scores
   (ties: the earlier box), where the devkit rejects a submission with more. Then every box,
   ground truth or prediction, whose 2D centre distance from the ego (base_link origin) is not
   below its class range (car 50 m, pedestrian 40 m, barrier 30 m, ...) is dropped, and so are
   ground-truth boxes with ``num_lidar_points == 0`` (-1 = unknown keeps the box), like the
   devkit's ``filter_eval_boxes`` (which also has a bike-rack filter: we have no bike racks).
   A prediction's ``num_lidar_points`` is ignored (the devkit loads predictions with -1).
   Boxes of a class without a range in :class:`EvalConfig` are not evaluated.
2. **Matching**, per class and distance threshold: the class's predictions of ALL frames in
   descending score (ties: the later frame / later box first, as the devkit's sort), each
   matched to the nearest (2D centre distance; ties: the earlier box) not yet matched
   ground-truth box of its class in its frame when that distance is below the threshold
   (0.5, 1, 2, 4 m), else a false positive.
3. **AP**: precision and confidence interpolated to 101 recall points (0, 0.01, ..., 1; 0
   beyond the highest recall), AP = mean over the points above ``min_recall`` of
   ``max(0, precision - min_precision) / (1 - min_precision)``. The class AP is the mean over
   the thresholds, mAP the mean over classes.
4. **TP errors**, from the matches at ``dist_th_tp`` (2 m): ATE 2D centre distance (m); ASE
   1 - IoU of the two boxes aligned (same centre and yaw); AOE smallest yaw difference (rad,
   period 2 pi, pi for barrier); AVE 2D velocity difference (m/s). Each is the cumulative mean
   in score order, interpolated onto the recall points through the confidences and averaged
   from ``min_recall`` to the highest recall reached. A class with ground truth but no match
   at 2 m gets 1 for each error (the devkit's value). Errors nuScenes does not define are NaN
   and skipped in the means: traffic_cone AOE and AVE, barrier AVE.

Deviations from the devkit, by choice:

- **No attributes** in our data, so no AAE: ``NDS = (5 mAP + sum over ATE, ASE, AOE, AVE of
  (1 - min(1, mTP))) / 9`` (nuScenes divides by 10 with a fifth term for AAE). A mean error
  that is NaN (no evaluated class defines it) adds 0, as ``max(0, 1 - nan)`` does there.
- **A class with no ground truth in the whole set** (after filtering) is not evaluated: its AP
  and errors are NaN and it is left out of mAP and of the mean errors (the devkit would count
  AP 0 and errors 1). :attr:`DetectionMetrics.evaluated_classes` lists the evaluated ones.

Unknown velocities (as the devkit, which this documents): a NaN velocity in the ground truth
(or in a prediction) makes that match's velocity error NaN, and the running mean skips it, so
AVE covers the matches whose velocities are known. Two devkit rules follow: the running mean
is 0 at ranks before the first known value (unknown velocities on the best-scored matches pull
AVE down), and a class none of whose matches has a known velocity gets AVE = 1.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from perception.classes import CLASSES
from perception.evaluation.errors import EvaluationError
from perception.ground_truth import Boxes

#: Class ranges of the nuScenes ``detection_cvpr_2019`` config, metres (2D distance from the ego).
NUSCENES_CLASS_RANGE_M: Final[Mapping[str, float]] = MappingProxyType(
    {
        "car": 50.0,
        "truck": 50.0,
        "construction_vehicle": 50.0,
        "bus": 50.0,
        "trailer": 50.0,
        "barrier": 30.0,
        "motorcycle": 40.0,
        "bicycle": 40.0,
        "pedestrian": 40.0,
        "traffic_cone": 30.0,
    }
)
#: The true-positive errors, in the order of :class:`DetectionMetrics` and the reports.
TP_ERRORS: Final[tuple[str, ...]] = ("ATE", "ASE", "AOE", "AVE")
#: Errors nuScenes leaves undefined for a class (NaN, skipped in the means).
UNDEFINED_ERRORS: Final[Mapping[str, frozenset[str]]] = MappingProxyType(
    {"traffic_cone": frozenset({"AOE", "AVE"}), "barrier": frozenset({"AVE"})}
)
#: Classes whose orientation is defined only up to pi (AOE period pi).
HALF_TURN_CLASSES: Final[frozenset[str]] = frozenset({"barrier"})
#: Recall points of the interpolated precision / error curves.
RECALL_POINTS: Final = 101


def _is_real(value: object) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


@dataclass(frozen=True)
class EvalConfig:
    """Settings of :class:`DetectionEvaluator`; the defaults are nuScenes ``detection_cvpr_2019``.

    Attributes:
        class_range_m: class name -> range, metres (> 0): boxes at a 2D centre distance from
            the ego >= range are dropped. Classes not listed are not evaluated.
        dist_ths_m: matching thresholds on the 2D centre distance, metres (> 0, distinct).
        dist_th_tp_m: the threshold (one of ``dist_ths_m``) whose matches give the TP errors.
        min_recall: recall (in [0, 1]) below which precision and errors are not averaged.
        min_precision: precision (in [0, 1)) subtracted before averaging AP.
        max_boxes_per_frame: predictions kept per frame, highest scores first (>= 1).
        mean_ap_weight: weight of mAP in NDS (>= 0).
    """

    class_range_m: Mapping[str, float] = field(default_factory=lambda: dict(NUSCENES_CLASS_RANGE_M))
    dist_ths_m: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0)
    dist_th_tp_m: float = 2.0
    min_recall: float = 0.1
    min_precision: float = 0.1
    max_boxes_per_frame: int = 500
    mean_ap_weight: float = 5.0

    def __post_init__(self) -> None:
        ranges: dict[str, float] = {}
        for name, value in dict(self.class_range_m).items():
            if name not in CLASSES:
                raise EvaluationError(f"EvalConfig.class_range_m: unknown class {name!r}; classes: {list(CLASSES)}")
            if not _is_real(value) or not (math.isfinite(value) and value > 0):
                raise EvaluationError(f"EvalConfig.class_range_m[{name!r}] = {value!r}: must be a finite number > 0")
            ranges[name] = float(value)
        # Stored in CLASSES order, read-only.
        object.__setattr__(self, "class_range_m", MappingProxyType({n: ranges[n] for n in CLASSES if n in ranges}))
        ths = tuple(self.dist_ths_m)
        if (
            not ths
            or any(not _is_real(t) or not (math.isfinite(t) and t > 0) for t in ths)
            or len(set(ths)) != len(ths)
        ):
            raise EvaluationError(f"EvalConfig.dist_ths_m = {self.dist_ths_m!r}: must be distinct finite numbers > 0")
        object.__setattr__(self, "dist_ths_m", tuple(float(t) for t in ths))
        if self.dist_th_tp_m not in self.dist_ths_m:
            raise EvaluationError(
                f"EvalConfig.dist_th_tp_m = {self.dist_th_tp_m!r}: must be one of dist_ths_m {self.dist_ths_m}"
            )
        if not _is_real(self.min_recall) or not 0 <= self.min_recall <= 1:
            raise EvaluationError(f"EvalConfig.min_recall = {self.min_recall!r}: must be in [0, 1]")
        if not _is_real(self.min_precision) or not 0 <= self.min_precision < 1:
            raise EvaluationError(f"EvalConfig.min_precision = {self.min_precision!r}: must be in [0, 1)")
        count = self.max_boxes_per_frame
        if isinstance(count, bool) or not isinstance(count, int | np.integer) or count < 1:
            raise EvaluationError(f"EvalConfig.max_boxes_per_frame = {count!r}: must be an int >= 1")
        weight = self.mean_ap_weight
        if not _is_real(weight) or not (math.isfinite(weight) and weight >= 0):
            raise EvaluationError(f"EvalConfig.mean_ap_weight = {weight!r}: must be a finite number >= 0")


def _json_number(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


@dataclass(frozen=True)
class ClassMetrics:
    """Metrics of one class (NaN where undefined: no ground truth, or an error nuScenes skips).

    Attributes:
        ap: AP averaged over the distance thresholds, in [0, 1].
        ap_at: distance threshold (m) -> AP at that threshold.
        ate: average translation error, m.  ase: average scale error, 1 - IoU.
        aoe: average orientation error, rad.  ave: average velocity error, m/s.
        num_gt: ground-truth boxes evaluated (after range and lidar-point filtering).
        num_pred: predictions evaluated (after the per-frame cap and range filtering).
    """

    ap: float
    ap_at: Mapping[float, float]
    ate: float
    ase: float
    aoe: float
    ave: float
    num_gt: int
    num_pred: int

    def error(self, name: str) -> float:
        """The TP error called ``name`` (one of :data:`TP_ERRORS`)."""
        if name not in TP_ERRORS:
            raise EvaluationError(f"unknown TP error {name!r}; errors: {list(TP_ERRORS)}")
        value: float = getattr(self, name.lower())
        return value

    def as_dict(self) -> dict[str, float | int | None]:
        """``{"AP", "AP@0.5", "AP@1.0", "AP@2.0", "AP@4.0", "ATE", "ASE", "AOE", "AVE", "num_gt",
        "num_pred"}`` (AP@ keys follow the thresholds), NaN as None (JSON null)."""
        result: dict[str, float | int | None] = {"AP": _json_number(self.ap)}
        result.update({f"AP@{threshold}": _json_number(ap) for threshold, ap in self.ap_at.items()})
        result.update({name: _json_number(self.error(name)) for name in TP_ERRORS})
        result.update({"num_gt": self.num_gt, "num_pred": self.num_pred})
        return result


@dataclass(frozen=True)
class DetectionMetrics:
    """Result of :meth:`DetectionEvaluator.result` (NaN where undefined, see the module notes).

    Attributes:
        mAP: mean over the evaluated classes of the class AP.
        NDS: (w mAP + sum over the four TP errors of (1 - min(1, mTP))) / (w + 4), w = 5.
        mATE, mASE, mAOE, mAVE: mean TP errors over the evaluated classes that define them.
        per_class: class name -> :class:`ClassMetrics`, every class of the config, CLASSES order.
        frames: frames added.
    """

    mAP: float  # noqa: N815 (the nuScenes names)
    NDS: float
    mATE: float  # noqa: N815
    mASE: float  # noqa: N815
    mAOE: float  # noqa: N815
    mAVE: float  # noqa: N815
    per_class: Mapping[str, ClassMetrics]
    frames: int

    @property
    def evaluated_classes(self) -> tuple[str, ...]:
        """Classes with ground truth in the set: those in mAP and the mean errors."""
        return tuple(name for name, metrics in self.per_class.items() if metrics.num_gt > 0)

    def as_dict(self) -> dict[str, Any]:
        """``{"mAP", "NDS", "mATE", "mASE", "mAOE", "mAVE", "per_class": {name: ...}, "frames"}``,
        NaN as None (JSON null), ready for ``json.dumps(..., allow_nan=False)``."""
        result: dict[str, Any] = {
            name: _json_number(getattr(self, name)) for name in ("mAP", "NDS", "mATE", "mASE", "mAOE", "mAVE")
        }
        result["per_class"] = {name: metrics.as_dict() for name, metrics in self.per_class.items()}
        result["frames"] = self.frames
        return result


@dataclass(frozen=True)
class _FrameResult:
    """Evaluated predictions of one frame, in the frame's order.

    labels (P,) int64; scores (P,) float64; matched (T, P) bool per threshold;
    errors (4, P) float64 TP errors at dist_th_tp (meaningful where matched there).
    """

    labels: NDArray[np.int64]
    scores: NDArray[np.float64]
    matched: NDArray[np.bool_]
    errors: NDArray[np.float64]


def _check_boxes(boxes: object, role: str, frame: int) -> Boxes:
    if not isinstance(boxes, Boxes):
        raise EvaluationError(f"frame {frame}: {role} must be Boxes, got {type(boxes).__name__}")
    bad = np.flatnonzero((boxes.labels < 0) | (boxes.labels >= len(CLASSES)))
    if bad.size:
        index = int(bad[0])
        raise EvaluationError(
            f"frame {frame}: {role}.labels[{index}] = {int(boxes.labels[index])} is not a class label "
            f"(index into CLASSES, 0..{len(CLASSES) - 1})"
        )
    return boxes


def _angle_error(
    gt_yaw: NDArray[np.float64], pred_yaw: NDArray[np.float64], period: NDArray[np.float64]
) -> NDArray[np.float64]:
    """|smallest signed angle from pred to gt| with a per-box period (2 pi, or pi for a class
    symmetric under a half turn), radians in [0, pi]; all arrays (M,) float64."""
    diff = (gt_yaw - pred_yaw + period / 2) % period - period / 2
    diff = np.where(diff > np.pi, diff - 2 * np.pi, diff)
    result: NDArray[np.float64] = np.abs(diff)
    return result


class DetectionEvaluator:
    """Accumulates frames of predictions and ground truth; :meth:`result` computes the metrics.

    Frames are independent (matching never crosses frames); the score ranking spans all of
    them. Deterministic: the same frames in the same order give the same metrics.
    """

    def __init__(self, config: EvalConfig | None = None) -> None:
        self.config = EvalConfig() if config is None else config
        if not isinstance(self.config, EvalConfig):
            raise EvaluationError(f"DetectionEvaluator config must be an EvalConfig, got {type(config).__name__}")
        self._evaluated = np.array([name in self.config.class_range_m for name in CLASSES])
        self._range = np.array([self.config.class_range_m.get(name, 0.0) for name in CLASSES])
        self._half_turn = np.array([name in HALF_TURN_CLASSES for name in CLASSES])
        self._ths = np.array(self.config.dist_ths_m)
        self._tp_index = self.config.dist_ths_m.index(self.config.dist_th_tp_m)
        self._results: list[_FrameResult] = []
        self._gt_counts = np.zeros(len(CLASSES), dtype=np.int64)

    @property
    def frames(self) -> int:
        """Frames added so far."""
        return len(self._results)

    def _kept(self, boxes: Boxes) -> NDArray[np.bool_]:
        xy = boxes.centers[:, :2]
        distance = np.sqrt(xy[:, 0] ** 2 + xy[:, 1] ** 2)
        kept: NDArray[np.bool_] = self._evaluated[boxes.labels] & (distance < self._range[boxes.labels])
        return kept

    def add_frame(self, predictions: Boxes, truth: Boxes) -> None:
        """Add one frame.

        Args:
            predictions: detections, base_link (the frame's ego at the origin), metres;
                ``scores`` rank them, ``velocities`` NaN = not estimated.
            truth: ground truth in the same frame; ``num_lidar_points == 0`` boxes are ignored.

        Raises EvaluationError naming the frame index and the field when an input is not
        Boxes or holds a label outside CLASSES; nothing is added then.
        """
        frame = len(self._results)
        pred = _check_boxes(predictions, "predictions", frame)
        gt = _check_boxes(truth, "truth", frame)
        cap = self.config.max_boxes_per_frame
        pred_index = np.arange(len(pred))
        if len(pred) > cap:  # best `cap` scores, ties: the earlier box; frame order kept
            pred_index = np.sort(np.lexsort((pred_index, -pred.scores.astype(np.float64)))[:cap])
        pred_index = pred_index[self._kept(pred)[pred_index]]
        gt_index = np.flatnonzero(self._kept(gt) & (gt.num_lidar_points != 0))
        self._gt_counts += np.bincount(gt.labels[gt_index], minlength=len(CLASSES))
        self._results.append(self._match(pred, pred_index, gt, gt_index))

    def _match(self, pred: Boxes, pred_index: NDArray[np.intp], gt: Boxes, gt_index: NDArray[np.intp]) -> _FrameResult:
        labels, gt_labels = pred.labels[pred_index], gt.labels[gt_index]
        scores = pred.scores[pred_index].astype(np.float64)
        p_xy, g_xy = pred.centers[pred_index, :2], gt.centers[gt_index, :2]
        # (P, G) 2D centre distances; pairs of different classes never match.
        dx = p_xy[:, None, 0] - g_xy[None, :, 0]
        dy = p_xy[:, None, 1] - g_xy[None, :, 1]
        distance = np.sqrt(dx * dx + dy * dy)
        distance[labels[:, None] != gt_labels[None, :]] = np.inf
        count, thresholds = len(pred_index), self._ths
        match = np.full((len(thresholds), count), -1, dtype=np.int64)
        if distance.size:
            taken = np.zeros((len(thresholds), len(gt_index)), dtype=bool)
            rows = np.arange(len(thresholds))
            reachable = distance.min(axis=1) < thresholds.max()
            # Greedy in descending score; ties: the later box first (the devkit's sort).
            for p in np.lexsort((np.arange(count), scores))[::-1]:
                if not reachable[p]:
                    continue
                candidates = np.where(taken, np.inf, distance[p])
                nearest = candidates.argmin(axis=1)
                hit = candidates[rows, nearest] < thresholds
                taken[rows[hit], nearest[hit]] = True
                match[hit, p] = nearest[hit]
        errors = np.full((len(TP_ERRORS), count), np.nan)
        p_tp = np.flatnonzero(match[self._tp_index] >= 0)
        if p_tp.size:
            g_tp = match[self._tp_index, p_tp]
            pi, gi = pred_index[p_tp], gt_index[g_tp]
            p_size, g_size = pred.sizes[pi], gt.sizes[gi]
            inter = np.prod(np.minimum(p_size, g_size), axis=1)
            union = np.prod(p_size, axis=1) + np.prod(g_size, axis=1) - inter
            period = np.where(self._half_turn[labels[p_tp]], np.pi, 2 * np.pi)
            dv = pred.velocities[pi] - gt.velocities[gi]
            errors[0, p_tp] = distance[p_tp, g_tp]
            errors[1, p_tp] = 1.0 - inter / union
            errors[2, p_tp] = _angle_error(gt.yaws[gi], pred.yaws[pi], period)
            errors[3, p_tp] = np.sqrt(dv[:, 0] ** 2 + dv[:, 1] ** 2)
        return _FrameResult(labels, scores, match >= 0, errors)

    def result(self) -> DetectionMetrics:
        """Metrics over all frames added so far (the evaluator can keep accumulating)."""
        cfg = self.config
        if self._results:
            labels = np.concatenate([r.labels for r in self._results])
            scores = np.concatenate([r.scores for r in self._results])
            matched = np.concatenate([r.matched for r in self._results], axis=1)
            errors = np.concatenate([r.errors for r in self._results], axis=1)
        else:
            labels, scores = np.zeros(0, dtype=np.int64), np.zeros(0)
            matched, errors = np.zeros((len(self._ths), 0), dtype=bool), np.zeros((len(TP_ERRORS), 0))
        per_class: dict[str, ClassMetrics] = {}
        for name in cfg.class_range_m:
            label = CLASSES.index(name)
            members = np.flatnonzero(labels == label)
            # All frames, descending score; ties: the later prediction first (the devkit's sort).
            order = members[np.lexsort((members, scores[members]))[::-1]]
            per_class[name] = _class_metrics(
                name, int(self._gt_counts[label]), scores[order], matched[:, order], errors[:, order], cfg
            )
        return _summary(per_class, self.frames, cfg.mean_ap_weight)


def _cumulative_mean(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """NaN-skipping running mean; all NaN -> ones (the devkit's ``cummean``)."""
    known = ~np.isnan(values)
    if not known.any():
        return np.ones(len(values))
    total = np.nancumsum(values)
    count = np.cumsum(known)
    result: NDArray[np.float64] = np.divide(total, count, out=np.zeros_like(total), where=count != 0)
    return result


def _class_metrics(
    name: str,
    num_gt: int,
    scores: NDArray[np.float64],
    matched: NDArray[np.bool_],
    errors: NDArray[np.float64],
    cfg: EvalConfig,
) -> ClassMetrics:
    """Metrics of one class from its predictions in ranking order: scores (N,), matched (T, N)
    per threshold, errors (4, N) at the TP threshold."""
    if num_gt == 0:
        nan = math.nan
        return ClassMetrics(
            nan, MappingProxyType(dict.fromkeys(cfg.dist_ths_m, nan)), nan, nan, nan, nan, 0, len(scores)
        )
    first = round(100 * cfg.min_recall) + 1  # the min-recall point itself is excluded
    recall_points = np.linspace(0.0, 1.0, RECALL_POINTS)
    ap_at: dict[float, float] = {}
    tp_errors = dict.fromkeys(TP_ERRORS, 1.0)  # no match: error 1 (the devkit's value)
    for t, threshold in enumerate(cfg.dist_ths_m):
        hits = matched[t]
        if not hits.any():
            ap_at[threshold] = 0.0
            continue
        tp = np.cumsum(hits).astype(np.float64)
        fp = np.cumsum(~hits).astype(np.float64)
        recall = tp / float(num_gt)
        precision = np.interp(recall_points, recall, tp / (tp + fp), right=0.0)
        confidence = np.interp(recall_points, recall, scores, right=0.0)
        ap_at[threshold] = float(np.mean(np.clip(precision[first:] - cfg.min_precision, 0.0, None))) / (
            1.0 - cfg.min_precision
        )
        if threshold != cfg.dist_th_tp_m:
            continue
        reached = np.flatnonzero(confidence)
        last = int(reached[-1]) if reached.size else 0  # highest recall point reached
        if last < first:
            continue
        match_scores = scores[hits][::-1]
        for k, error in enumerate(TP_ERRORS):
            running = _cumulative_mean(errors[k, hits])
            curve = np.interp(confidence[::-1], match_scores, running[::-1])[::-1]
            tp_errors[error] = float(np.mean(curve[first : last + 1]))
    for error in UNDEFINED_ERRORS.get(name, ()):
        tp_errors[error] = math.nan
    return ClassMetrics(
        ap=float(np.mean(list(ap_at.values()))),
        ap_at=MappingProxyType(ap_at),
        ate=tp_errors["ATE"],
        ase=tp_errors["ASE"],
        aoe=tp_errors["AOE"],
        ave=tp_errors["AVE"],
        num_gt=num_gt,
        num_pred=len(scores),
    )


def _mean_defined(values: list[float]) -> float:
    defined = [v for v in values if not math.isnan(v)]
    return float(np.mean(defined)) if defined else math.nan


def _summary(per_class: dict[str, ClassMetrics], frames: int, weight: float) -> DetectionMetrics:
    evaluated = [m for m in per_class.values() if m.num_gt > 0]
    mean_ap = _mean_defined([m.ap for m in evaluated])
    mean_errors = {name: _mean_defined([m.error(name) for m in evaluated]) for name in TP_ERRORS}
    scores = [0.0 if math.isnan(e) else 1.0 - min(1.0, e) for e in mean_errors.values()]
    nds = (weight * mean_ap + sum(scores)) / (weight + len(TP_ERRORS))
    return DetectionMetrics(
        mAP=mean_ap,
        NDS=nds,
        mATE=mean_errors["ATE"],
        mASE=mean_errors["ASE"],
        mAOE=mean_errors["AOE"],
        mAVE=mean_errors["AVE"],
        per_class=MappingProxyType(per_class),
        frames=frames,
    )
