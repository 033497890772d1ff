"""Odometry pose trajectories: interpolation (SLERP) and ego-motion compensation of points.

Frames: a trajectory holds poses of the vehicle body (``child_frame_id``, normally
``base_link``) in a fixed frame (``frame_id``, normally ``odom``): ``P(t) = T_odom_base(t)``,
(4, 4) float64, ``p_odom = P(t) @ [p_base, 1]``. Time is integer nanoseconds.

Interpolation between two samples: rotation by SLERP (constant angular rate about one
axis), translation linearly, with the same fraction ``alpha = (t - t_i) / (t_i+1 - t_i)``.

Extrapolation policy: a query in ``[start_ns, end_ns]`` is interpolated. A query up to
``max_extrapolation_ns`` before the first or after the last sample continues the first/last
segment at constant velocity (same SLERP/linear formulas with alpha outside [0, 1]; a
one-sample trajectory holds its pose). Anything further raises ``TrajectoryError`` naming
the stamp and the covered range. The default ``max_extrapolation_ns`` is 0: no guessing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray

from calibration.errors import TrajectoryError
from calibration.transforms import ORTHONORMAL_TOLERANCE, invert_transform, validate_transform

if TYPE_CHECKING:  # only for the annotation: calibration does not import perception at run time
    from perception.samples import OdometrySample

FloatArray = NDArray[np.float64]
#: Below this angle (radians) between two orientations SLERP falls back to normalized lerp.
_SLERP_SMALL_ANGLE = 1e-9


@dataclass(frozen=True, eq=False)
class PoseTrajectory:
    """Timestamped body poses, validated, with interpolation.

    Attributes:
        stamps_ns: (N,) int64 sample times, nanoseconds, strictly increasing, N >= 1.
        poses: (N, 4, 4) float64 transforms child (base_link) -> frame_id (odom), metres.
        max_extrapolation_ns: how far (ns, >= 0) a query may lie outside the stamps (see the
            module docstring for the policy).
        frame_id: fixed frame of the poses.
        child_frame_id: moving frame (the body).
        source: where the poses came from, for error messages ("" when built in code).

    Arrays are copied and made read-only.
    """

    stamps_ns: NDArray[np.int64]
    poses: FloatArray
    max_extrapolation_ns: int = 0
    frame_id: str = "odom"
    child_frame_id: str = "base_link"
    source: str = ""
    _quaternions: FloatArray = field(init=False, repr=False)
    _translations: FloatArray = field(init=False, repr=False)
    _segment_angles: FloatArray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        where = f" ({self.source})" if self.source else ""
        stamps = np.array(self.stamps_ns, copy=True)
        if stamps.ndim != 1 or stamps.size == 0:
            raise TrajectoryError(f"stamps_ns must be a non-empty (N,) array{where}, got shape {stamps.shape}")
        if not np.issubdtype(stamps.dtype, np.integer):
            raise TrajectoryError(f"stamps_ns must be integer nanoseconds{where}, got dtype {stamps.dtype}")
        stamps = stamps.astype(np.int64)
        steps = np.diff(stamps)
        if np.any(steps <= 0):
            i = int(np.argmax(steps <= 0)) + 1
            raise TrajectoryError(
                f"stamps_ns must be strictly increasing{where}: index {i} has stamp {int(stamps[i])} ns "
                f"after {int(stamps[i - 1])} ns at index {i - 1}"
            )
        poses = np.array(self.poses, dtype=np.float64, copy=True)
        if poses.shape != (stamps.size, 4, 4):
            raise TrajectoryError(
                f"poses must have shape ({stamps.size}, 4, 4) to match stamps_ns{where}, got {poses.shape}"
            )
        _check_poses(poses, stamps, where)
        extrapolation = self.max_extrapolation_ns
        if isinstance(extrapolation, bool) or not isinstance(extrapolation, (int, np.integer)) or extrapolation < 0:
            raise TrajectoryError(f"max_extrapolation_ns must be an integer >= 0{where}, got {extrapolation!r}")
        quaternions = _continuous(_matrices_to_quaternions(poses[:, :3, :3]))
        # Rotation angle / 2 of each segment (the SLERP omega), computed once.
        angles = np.arccos(np.clip(np.sum(quaternions[1:] * quaternions[:-1], axis=1), -1.0, 1.0))
        for name, value in (
            ("stamps_ns", stamps),
            ("poses", poses),
            ("_quaternions", quaternions),
            ("_translations", np.ascontiguousarray(poses[:, :3, 3])),
            ("_segment_angles", angles),
        ):
            value.setflags(write=False)
            object.__setattr__(self, name, value)
        object.__setattr__(self, "max_extrapolation_ns", int(extrapolation))

    @classmethod
    def from_odometry(
        cls, samples: Sequence[OdometrySample], *, max_extrapolation_ns: int = 0, source: str = ""
    ) -> PoseTrajectory:
        """Trajectory of ``perception.samples.OdometrySample`` records (any order).

        All samples must share ``frame_id`` and ``child_frame_id``; two samples with the same
        stamp are an error (naming both indices).
        """
        where = f" ({source})" if source else ""
        if len(samples) == 0:
            raise TrajectoryError(f"no odometry samples{where}")
        frames = (samples[0].frame_id, samples[0].child_frame_id)
        for index, sample in enumerate(samples):
            if (sample.frame_id, sample.child_frame_id) != frames:
                raise TrajectoryError(
                    f"odometry sample {index}{where} is {sample.child_frame_id} -> {sample.frame_id}, "
                    f"sample 0 is {frames[1]} -> {frames[0]}: one trajectory needs one pair of frames"
                )
        stamps = np.array([sample.stamp_ns for sample in samples], dtype=np.int64)
        order = np.argsort(stamps, kind="stable")
        same = np.flatnonzero(np.diff(stamps[order]) == 0)
        if same.size:
            a, b = int(order[same[0]]), int(order[same[0] + 1])
            raise TrajectoryError(f"odometry samples {a} and {b}{where} have the same stamp {int(stamps[a])} ns")
        quaternions = np.array([sample.orientation_wxyz for sample in samples], dtype=np.float64)
        quaternions /= np.linalg.norm(quaternions, axis=1, keepdims=True)
        poses = np.tile(np.eye(4), (len(samples), 1, 1))
        poses[:, :3, :3] = _quaternions_to_matrices(quaternions)
        poses[:, :3, 3] = [sample.position for sample in samples]
        return cls(
            stamps_ns=stamps[order],
            poses=poses[order],
            max_extrapolation_ns=max_extrapolation_ns,
            frame_id=str(frames[0]),
            child_frame_id=str(frames[1]),
            source=source,
        )

    def __len__(self) -> int:
        return int(self.stamps_ns.size)

    @property
    def start_ns(self) -> int:
        return int(self.stamps_ns[0])

    @property
    def end_ns(self) -> int:
        return int(self.stamps_ns[-1])

    def interpolate(self, stamps_ns: ArrayLike) -> FloatArray:
        """Poses at ``stamps_ns``.

        Args:
            stamps_ns: (M,) integer nanoseconds (any order, repeats allowed).

        Returns:
            (M, 4, 4) float64 transforms child (base_link) -> frame_id (odom).

        Raises:
            TrajectoryError: a stamp outside the covered range by more than
                ``max_extrapolation_ns``, or stamps that are not integers.
        """
        q, translation = self._interpolate(self._query(stamps_ns))
        out = np.tile(np.eye(4), (q.shape[0], 1, 1))
        out[:, :3, :3] = _quaternions_to_matrices(q)
        out[:, :3, 3] = translation
        return out

    def relative(self, t_from_ns: int, t_to_ns: int) -> FloatArray:
        """(4, 4) float64 transform base_link(t_from) -> base_link(t_to).

        A point fixed in ``frame_id`` seen at ``p`` in the body frame at ``t_from`` is at
        ``relative @ [p, 1]`` in the body frame at ``t_to``.
        """
        pose_from, pose_to = self.interpolate([t_from_ns, t_to_ns])
        result: FloatArray = invert_transform(pose_to) @ pose_from
        return result

    def _interpolate(self, query: NDArray[np.int64]) -> tuple[FloatArray, FloatArray]:
        """(M, 4) unit quaternions [w, x, y, z] and (M, 3) translations at checked stamps."""
        t = self.stamps_ns
        if t.size == 1:
            return np.repeat(self._quaternions, query.size, axis=0), np.repeat(self.poses[:, :3, 3], query.size, axis=0)
        index = np.clip(np.searchsorted(t, query, side="right") - 1, 0, t.size - 2)
        t0 = np.take(t, index)
        alpha = (query - t0).astype(np.float64) / (np.take(t, index + 1) - t0).astype(np.float64)
        # np.take: row gathers several times faster than fancy indexing.
        q = _slerp(
            np.take(self._quaternions, index, axis=0),
            np.take(self._quaternions, index + 1, axis=0),
            np.take(self._segment_angles, index),
            alpha,
        )
        p0 = np.take(self._translations, index, axis=0)
        translation = p0 + alpha[:, None] * (np.take(self._translations, index + 1, axis=0) - p0)
        return q, translation

    def _query(self, stamps_ns: ArrayLike) -> NDArray[np.int64]:
        query = np.asarray(stamps_ns)
        if query.ndim != 1:
            raise TrajectoryError(f"stamps_ns must be a (M,) array of integer nanoseconds, got shape {query.shape}")
        if query.size and not np.issubdtype(query.dtype, np.integer):
            raise TrajectoryError(f"stamps_ns must be integer nanoseconds, got dtype {query.dtype}")
        query = query.astype(np.int64)
        low, high = self.start_ns - self.max_extrapolation_ns, self.end_ns + self.max_extrapolation_ns
        outside = (query < low) | (query > high)
        if np.any(outside):
            stamp = int(query[np.argmax(outside)])
            where = f" of {self.source}" if self.source else ""
            raise TrajectoryError(
                f"stamp {stamp} ns is outside the trajectory{where}: it covers [{self.start_ns}, {self.end_ns}] ns "
                f"(max_extrapolation_ns={self.max_extrapolation_ns}); off by "
                f"{(low - stamp) if stamp < low else (stamp - high)} ns"
            )
        return query


def compensate_points(
    points: ArrayLike,
    t_from_ns: int,
    t_to_ns: int,
    trajectory: PoseTrajectory,
    sensor_to_base: ArrayLike,
) -> FloatArray:
    """Move points measured at ``t_from_ns`` into the sensor frame at ``t_to_ns``.

    Args:
        points: (N, 3) float [x, y, z], sensor frame at ``t_from_ns``, metres.
        t_from_ns, t_to_ns: integer nanoseconds.
        trajectory: body poses covering both stamps.
        sensor_to_base: (4, 4) sensor -> base_link extrinsic (``rig.transform(id, "base_link")``).

    Returns:
        (N, 3) float64 the same world points in the sensor frame at ``t_to_ns``, metres
        (static world assumed).
    """
    p = _points(points, "points")
    S = validate_transform(sensor_to_base)
    T = invert_transform(S) @ trajectory.relative(t_from_ns, t_to_ns) @ S
    result: FloatArray = p @ T[:3, :3].T + T[:3, 3]
    return result


def deskew_points(
    points: ArrayLike,
    point_times_ns: ArrayLike,
    target_ns: int,
    trajectory: PoseTrajectory,
    sensor_to_base: ArrayLike,
) -> FloatArray:
    """Remove the motion distortion of a sweep: every point to the sensor frame at ``target_ns``.

    One pose is interpolated per point (exact, no time buckets) and applied as a quaternion
    rotation, so the cost is a few (N, 4) array operations (about 4 ms for 35k points).

    Args:
        points: (N, 3) float [x, y, z], each in the sensor frame at its own time, metres.
        point_times_ns: (N,) integer nanoseconds, capture time of each point.
        target_ns: integer nanoseconds, time of the output frame (e.g. the sweep stamp).
        trajectory: body poses covering every point time and ``target_ns``.
        sensor_to_base: (4, 4) sensor -> base_link extrinsic.

    Returns:
        (N, 3) float64 points in the sensor frame at ``target_ns``, metres.
    """
    p = _points(points, "points")
    times = np.asarray(point_times_ns)
    if times.shape != (p.shape[0],) or (times.size and not np.issubdtype(times.dtype, np.integer)):
        raise TrajectoryError(
            f"point_times_ns must be ({p.shape[0]},) integer nanoseconds, got shape {times.shape} dtype {times.dtype}"
        )
    S = validate_transform(sensor_to_base)
    q, translation = trajectory._interpolate(trajectory._query(times.astype(np.int64)))
    to_target = invert_transform(S) @ invert_transform(trajectory.interpolate([target_ns])[0])
    # sensor(t_i) -> base(t_i) [S] -> odom [per point q, translation] -> sensor(target) [to_target]
    in_odom = _rotate(q, p @ S[:3, :3].T + S[:3, 3]) + translation
    result: FloatArray = in_odom @ to_target[:3, :3].T + to_target[:3, 3]
    return result


def _check_poses(poses: FloatArray, stamps: NDArray[np.int64], where: str) -> None:
    finite = np.all(np.isfinite(poses), axis=(1, 2))
    bottom = np.all(np.abs(poses[:, 3] - [0.0, 0.0, 0.0, 1.0]) <= 1e-9, axis=1)
    R = poses[:, :3, :3]
    with np.errstate(invalid="ignore"):
        error = np.max(np.abs(np.swapaxes(R, 1, 2) @ R - np.eye(3)), axis=(1, 2))
        det = np.linalg.det(np.where(finite[:, None, None], R, 0.0))
    for bad, reason in (
        (~finite, "has non-finite entries"),
        (~bottom, "last row is not [0, 0, 0, 1]"),
        (~(error <= ORTHONORMAL_TOLERANCE), f"rotation is not orthonormal (tolerance {ORTHONORMAL_TOLERANCE})"),
        (det < 0, "rotation is a reflection (determinant < 0)"),
    ):
        if np.any(bad):
            i = int(np.argmax(bad))
            raise TrajectoryError(f"pose {i} (stamp {int(stamps[i])} ns){where} {reason}: {poses[i].tolist()}")


def _matrices_to_quaternions(R: FloatArray) -> FloatArray:
    """(N, 3, 3) rotations -> (N, 4) unit quaternions [w, x, y, z] (Shepperd's method)."""
    m00, m11, m22 = R[:, 0, 0], R[:, 1, 1], R[:, 2, 2]
    candidates = np.stack([m00 + m11 + m22, m00, m11, m22], axis=1)
    case = np.argmax(candidates, axis=1)
    q = np.empty((R.shape[0], 4))
    d21, d02, d10 = R[:, 2, 1] - R[:, 1, 2], R[:, 0, 2] - R[:, 2, 0], R[:, 1, 0] - R[:, 0, 1]
    s01, s02, s12 = R[:, 0, 1] + R[:, 1, 0], R[:, 0, 2] + R[:, 2, 0], R[:, 1, 2] + R[:, 2, 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        s = 2.0 * np.sqrt(np.maximum(1.0 + m00 + m11 + m22, 0.0))
        forms = [
            np.stack([0.25 * s, d21 / s, d02 / s, d10 / s], axis=1),
        ]
        s = 2.0 * np.sqrt(np.maximum(1.0 + m00 - m11 - m22, 0.0))
        forms.append(np.stack([d21 / s, 0.25 * s, s01 / s, s02 / s], axis=1))
        s = 2.0 * np.sqrt(np.maximum(1.0 + m11 - m00 - m22, 0.0))
        forms.append(np.stack([d02 / s, s01 / s, 0.25 * s, s12 / s], axis=1))
        s = 2.0 * np.sqrt(np.maximum(1.0 + m22 - m00 - m11, 0.0))
        forms.append(np.stack([d10 / s, s02 / s, s12 / s, 0.25 * s], axis=1))
    for k, form in enumerate(forms):
        q[case == k] = form[case == k]
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return q


def _quaternions_to_matrices(q: FloatArray) -> FloatArray:
    """(N, 4) unit quaternions [w, x, y, z] -> (N, 3, 3) rotation matrices."""
    w, x, y, z = q[:, 0], q[:, 1], q[:, 2], q[:, 3]
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], axis=1),
            np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], axis=1),
            np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], axis=1),
        ],
        axis=1,
    )


def _rotate(q: FloatArray, v: FloatArray) -> FloatArray:
    """Rotate row vectors ``v`` (N, 3) by unit quaternions ``q`` (N, 4) [w, x, y, z].

    ``v' = v + 2 w (u x v) + 2 u x (u x v)`` with ``u = (x, y, z)``, written per component
    (numpy reductions and stacks over a length-3 axis are several times slower).
    """
    w, x, y, z = q[:, 0], q[:, 1], q[:, 2], q[:, 3]
    vx, vy, vz = v[:, 0], v[:, 1], v[:, 2]
    cx = y * vz - z * vy
    cy = z * vx - x * vz
    cz = x * vy - y * vx
    out = np.empty_like(v)
    out[:, 0] = vx + 2.0 * (w * cx + y * cz - z * cy)
    out[:, 1] = vy + 2.0 * (w * cy + z * cx - x * cz)
    out[:, 2] = vz + 2.0 * (w * cz + x * cy - y * cx)
    return out


def _continuous(q: FloatArray) -> FloatArray:
    """Flip signs so consecutive quaternions have a non-negative dot product (shortest SLERP)."""
    if q.shape[0] < 2:
        return q
    flips = np.concatenate([[0], np.cumsum(np.sum(q[1:] * q[:-1], axis=1) < 0)]) % 2
    result: FloatArray = np.where(flips[:, None] == 1, -q, q)
    return result


def _slerp(q0: FloatArray, q1: FloatArray, omega: FloatArray, alpha: FloatArray) -> FloatArray:
    """Row-wise SLERP of unit quaternions with dot >= 0 and ``omega = arccos(q0 . q1)``;
    alpha outside [0, 1] extrapolates along the same great circle."""
    with np.errstate(invalid="ignore", divide="ignore"):
        sin_omega = np.sin(omega)
        w0 = np.sin((1.0 - alpha) * omega) / sin_omega
        w1 = np.sin(alpha * omega) / sin_omega
    small = omega < _SLERP_SMALL_ANGLE
    if np.any(small):  # (nearly) the same orientation: linear weights
        w0[small] = 1.0 - alpha[small]
        w1[small] = alpha[small]
    q: FloatArray = w0[:, None] * q0 + w1[:, None] * q1
    if np.any(small):  # SLERP rows are unit already; linear ones need normalizing
        q[small] /= np.linalg.norm(q[small], axis=1, keepdims=True)
    return q


def _points(points: ArrayLike, name: str) -> FloatArray:
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 3:
        raise TrajectoryError(f"{name} must have shape (N, 3), got {p.shape}")
    return p
