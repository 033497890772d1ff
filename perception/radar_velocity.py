"""Detections' velocities corrected with the radar's Doppler: a late-fusion step after decoding.

Each radar detection (perception.ego_motion.radar, ``RADAR_FRAME_COLUMNS``, base_link at the
frame stamp) measures one component of its target's over-ground velocity exactly (0.1 m/s
noise on a typical automotive radar): the radial one, along the line of sight ``u`` from the
radar. Its ``(vx, vy)`` is ``vr_compensated * u``. The network sees the same detections only
through the radar BEV raster and regresses a velocity per object with several times that
error; this step puts the measurement back, the way Autoware's radar-to-detected-object
fusion does, and is hand-written because the association and the estimator are the product
(about forty lines of numpy, no library does this on our boxes).

For every box:

1. **Association.** Detections inside the box footprint grown by ``margin_m`` on every side,
   after moving each by the box's network velocity times the detection's time lag (a scan
   can be up to a radar period older than the frame), belong to it. Height is ignored (radar
   elevation is coarse). A detection inside two grown boxes is used by both.
2. **Outliers.** Static clutter at the edge of a moving car, or a false positive, disagrees
   with the car's own returns: detections whose radial residual against the network velocity
   is more than ``outlier_mps`` from the box's median residual are dropped.
3. **Estimate.** The velocity is the least-squares compromise between the network's estimate
   (a prior with ``network_sigma_mps`` per axis) and each kept measurement ``u_i . v = s_i``
   (``radar_sigma_mps``)::

       (I / sn^2 + sum_i u_i u_i^T / sr^2) v = v_net / sn^2 + sum_i u_i s_i / sr^2

   The radial component moves to the radar's value; the tangential one, which no radar sees,
   stays the network's. Boxes with no kept detection, or an unknown (NaN) velocity, are
   unchanged.

Line of sight: where a detection moves (``|(vx, vy)| >= direction_min_speed_mps``) its vector
gives ``u`` exactly (``u = (vx, vy) / |(vx, vy)|``, ``s = |(vx, vy)|``: the sign of ``vr``
cancels); a detection of a (nearly) still target has no direction in its vector, so ``u`` is
the bearing from the nearest radar mount and ``s = (vx, vy) . u``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import ArrayLike, NDArray

from calibration import Modality, Rig
from perception.ego_motion.radar import RADAR_FRAME_COLUMNS
from perception.ground_truth import Boxes
from perception.model.config import ModelConfig
from perception.model.predictor import Prediction

_X, _Y = RADAR_FRAME_COLUMNS.index("x"), RADAR_FRAME_COLUMNS.index("y")
_VX, _VY = RADAR_FRAME_COLUMNS.index("vx"), RADAR_FRAME_COLUMNS.index("vy")
_LAG = RADAR_FRAME_COLUMNS.index("time_lag_s")


@dataclass(frozen=True)
class RadarVelocityConfig:
    """Association and weights (metres, m/s); see the module docstring.

    ``network_sigma_mps`` is about the network's velocity error (its car AVE), and
    ``radar_sigma_mps`` the radar's 0.1 m/s noise widened for the scattering points of an
    extended, turning object not all moving at its centre's velocity."""

    margin_m: float = 0.5
    outlier_mps: float = 1.0
    network_sigma_mps: float = 0.7
    radar_sigma_mps: float = 0.3
    direction_min_speed_mps: float = 0.3

    def __post_init__(self) -> None:
        for name in ("margin_m", "outlier_mps", "network_sigma_mps", "radar_sigma_mps", "direction_min_speed_mps"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value >= 0) or (name.endswith("sigma_mps") and value == 0):
                rule = "> 0" if name.endswith("sigma_mps") else ">= 0"
                raise ValueError(f"RadarVelocityConfig.{name} must be finite and {rule}, got {value!r}")


class RadarVelocityFusion:
    """The step for one rig and model: ``step(prediction, prepared.radar_points)``.

    Off (the prediction passes unchanged) when ``enabled`` is False, when the model was not
    trained with radar (a lidar-only baseline stays lidar-only) or when the rig has no radar.
    The time it takes is added to the prediction's timings as ``radar_velocity``.
    """

    def __init__(
        self, rig: Rig, model: ModelConfig, *, enabled: bool = True, config: RadarVelocityConfig = RadarVelocityConfig()
    ) -> None:
        radars = rig.of(Modality.RADAR)
        self.radar_xy = np.array([rig.to_base(sensor.id)[:2, 3] for sensor in radars], dtype=np.float64).reshape(-1, 2)
        self.enabled = bool(enabled and radars and "radar" in model.modalities)
        self.config = config

    def __call__(self, prediction: Prediction, radar: ArrayLike) -> Prediction:
        if not self.enabled:
            return prediction
        began = time.perf_counter()
        boxes, _ = refine_velocities(prediction.boxes, radar, self.radar_xy, self.config)
        elapsed_ms = (time.perf_counter() - began) * 1e3
        return replace(prediction, boxes=boxes, timings_ms=prediction.timings_ms | {"radar_velocity": elapsed_ms})


def refine_velocities(
    boxes: Boxes, radar: ArrayLike, radar_xy: ArrayLike, config: RadarVelocityConfig = RadarVelocityConfig()
) -> tuple[Boxes, NDArray[np.int64]]:
    """Boxes with their velocities corrected by the radar detections that hit them.

    Args:
        boxes: N detections in base_link (velocities from the network; NaN = unknown).
        radar: (R, 7) float32 detections at the frame stamp, columns ``RADAR_FRAME_COLUMNS``
            (x, y, z, rcs, vx, vy, time_lag_s), base_link, metres, m/s, seconds.
        radar_xy: (M, 2) radar mount positions in base_link, metres (M >= 1 when R > 0).

    Returns:
        (the boxes with corrected velocities, (N,) int64 radar detections used per box).
    """
    points = np.asarray(radar, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != len(RADAR_FRAME_COLUMNS):
        raise ValueError(f"radar detections must be (R, {len(RADAR_FRAME_COLUMNS)}), got shape {points.shape}")
    used = np.zeros(len(boxes), dtype=np.int64)
    if len(boxes) == 0 or points.shape[0] == 0:
        return boxes, used
    mounts = np.asarray(radar_xy, dtype=np.float64).reshape(-1, 2)
    if mounts.shape[0] == 0:
        raise ValueError("radar_xy: no radar mount position given for the detections")
    u, s = _line_of_sight(points, mounts, config.direction_min_speed_mps)
    prior = boxes.velocities
    known = np.all(np.isfinite(prior), axis=1, keepdims=True)  # (N, 1)
    member = _associate(boxes, points, config.margin_m) & known  # (N, R)
    rows = np.flatnonzero(member.any(axis=1))
    if rows.size == 0:
        return boxes, used
    member = member[rows]
    residual = np.where(member, s[None, :] - prior[rows] @ u.T, np.nan)  # (n, R) m/s
    keep = member & (np.abs(residual - _row_median(residual, member.sum(axis=1))) <= config.outlier_mps)
    weights = keep * config.radar_sigma_mps**-2  # (n, R)
    prior_weight = config.network_sigma_mps**-2
    outer = (u[:, :, None] * u[:, None, :]).reshape(-1, 4)  # (R, 4): u u^T per detection
    normal = prior_weight * np.eye(2) + (weights @ outer).reshape(-1, 2, 2)
    rhs = prior_weight * prior[rows] + weights @ (u * s[:, None])
    velocities = prior.copy()
    velocities[rows] = np.linalg.solve(normal, rhs[:, :, None])[:, :, 0]
    used[rows] = keep.sum(axis=1)
    return replace(boxes, velocities=velocities), used


def _line_of_sight(
    points: NDArray[np.float64], mounts: NDArray[np.float64], min_speed: float
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(R, 2) unit lines of sight and (R,) measured speeds along them (module docstring)."""
    vector = points[:, [_VX, _VY]]
    speed = np.linalg.norm(vector, axis=1)
    xy = points[:, [_X, _Y]]
    nearest = mounts[np.argmin(np.linalg.norm(xy[:, None, :] - mounts[None], axis=2), axis=1)]
    bearing = xy - nearest
    bearing /= np.maximum(np.linalg.norm(bearing, axis=1, keepdims=True), 1e-9)
    moving = speed >= max(min_speed, 1e-9)
    u = np.where(moving[:, None], vector / np.maximum(speed, 1e-9)[:, None], bearing)
    s = np.where(moving, speed, np.einsum("ij,ij->i", vector, bearing))
    return u, s


def _row_median(values: NDArray[np.float64], counts: NDArray[np.int64]) -> NDArray[np.float64]:
    """(n, 1) median of each row's first ``counts`` values once sorted (NaN pads sort last;
    every count >= 1): np.nanmedian without its per-row overhead."""
    ordered = np.sort(values, axis=1)
    low = np.take_along_axis(ordered, ((counts - 1) // 2)[:, None], axis=1)
    high = np.take_along_axis(ordered, (counts // 2)[:, None], axis=1)
    median: NDArray[np.float64] = (low + high) / 2.0
    return median


def _associate(boxes: Boxes, points: NDArray[np.float64], margin: float) -> NDArray[np.bool_]:
    """(N, R) True where detection j, moved by box i's velocity over its lag, lies in box i's
    footprint grown by ``margin``."""
    velocity = np.nan_to_num(boxes.velocities)
    lag = points[:, _LAG]
    dx = points[:, _X] + velocity[:, :1] * lag - boxes.centers[:, :1]  # (N, R) metres
    dy = points[:, _Y] + velocity[:, 1:] * lag - boxes.centers[:, 1:2]
    c, s = np.cos(boxes.yaws)[:, None], np.sin(boxes.yaws)[:, None]
    half = boxes.sizes[:, :2] / 2.0 + margin
    member: NDArray[np.bool_] = (np.abs(c * dx + s * dy) <= half[:, :1]) & (np.abs(c * dy - s * dx) <= half[:, 1:])
    return member
