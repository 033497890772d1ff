"""Lidar de-skew and multi-sweep accumulation into the current frame.

A spinning lidar fires its columns over the sweep period from a moving car, so each point
is in the sensor frame at its own firing time (field ``time``: seconds after the header
stamp). :func:`sweep_to_base` removes that distortion exactly: it interpolates one odometry
pose per distinct firing time (a lidar has ~1,000-2,000 per sweep) and moves every point into
base_link at the sweep stamp with one compiled pass.

:class:`SweepAccumulator` keeps the last ``n_sweeps`` de-skewed sweeps as (odometry pose at
their stamp, points in base_link at their stamp) and, for each new sweep, brings all of them
into base_link at the new sweep's stamp: one rigid transform per old sweep, no re-de-skew.
The result is the lidar BEV input of the issue-5 contract: (N, 5) float32
``[x, y, z, intensity, time_lag_s]``, base_link at the frame stamp.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from calibration.errors import TrajectoryError, TransformError
from calibration.poses import PoseTrajectory
from calibration.transforms import invert_transform, validate_transform
from perception.ego_motion import kernels
from perception.ego_motion.errors import EgoMotionError, OdometryCoverageError
from perception.samples import PointScan

#: |time| above this (seconds) is not "seconds after the stamp" (absolute times, wrong unit).
MAX_POINT_TIME_S = 1.0
LIDAR_FRAME_COLUMNS = ("x", "y", "z", "intensity", "time_lag_s")


@dataclass(frozen=True)
class DeskewedSweep:
    """One sweep de-skewed into base_link at its stamp.

    Attributes:
        stamp_ns: the sweep's header stamp, int ns.
        pose: (4, 4) float64 base_link(stamp) -> odometry frame (read-only).
        points: (M, 4) float32 [x, y, z, intensity], base_link at ``stamp_ns``, metres
            (read-only; intensity 0 when the scan has none).
        dropped: points of the scan left out for a non-finite coordinate or time.
    """

    stamp_ns: int
    pose: NDArray[np.float64]
    points: NDArray[np.float32]
    dropped: int


def sweep_to_base(
    scan: PointScan, stamp_ns: int, trajectory: PoseTrajectory, lidar_to_base: ArrayLike, *, source: str = ""
) -> DeskewedSweep:
    """De-skew one sweep into base_link at ``stamp_ns``.

    Args:
        scan: lidar PointScan with fields x, y, z (sensor frame at each point's firing time),
            optional ``intensity`` and ``time`` (float seconds after ``stamp_ns``; without it
            every point is taken at ``stamp_ns``).
        stamp_ns: the sweep's header stamp, int ns.
        trajectory: odometry poses covering ``stamp_ns`` and every firing time.
        lidar_to_base: (4, 4) lidar -> base_link extrinsic.
        source: sensor id or topic, for error messages.

    Returns:
        The sweep in base_link at ``stamp_ns`` (:class:`DeskewedSweep`), points in scan order.

    Raises:
        EgoMotionError: missing x/y/z fields, times that are not seconds after the stamp, or
            a bad extrinsic.
        OdometryCoverageError: the trajectory does not cover the sweep (names the stamps).
    """
    where = f" ({source})" if source else ""
    try:
        extrinsic = validate_transform(lidar_to_base)
    except TransformError as error:
        raise EgoMotionError(f"lidar sweep at {stamp_ns} ns{where}: lidar_to_base: {error}") from error
    fields = scan.fields
    missing = [name for name in ("x", "y", "z") if name not in fields]
    if missing:
        raise EgoMotionError(f"lidar sweep at {stamp_ns} ns{where} has no field {missing[0]!r}; fields {fields}")
    points = scan.points
    ix, iy, iz = (fields.index(name) for name in ("x", "y", "z"))
    ii = fields.index("intensity") if "intensity" in fields else -1
    it = fields.index("time") if "time" in fields else -1
    n = points.shape[0]
    group = np.empty(n, dtype=np.int64)
    offsets = np.empty(n, dtype=np.int64)
    n_groups, dropped, status, index = kernels.time_groups(points, ix, iy, iz, it, MAX_POINT_TIME_S, group, offsets)
    if status == kernels.OUT_OF_ORDER:  # times go back somewhere: group by sorting (slower, same result)
        keep = np.all(np.isfinite(points[:, [ix, iy, iz, it]]), axis=1)
        times = points[keep, it].astype(np.float64)
        far = np.flatnonzero(np.abs(times) > MAX_POINT_TIME_S)
        if far.size:
            status, index = kernels.OUT_OF_RANGE, int(np.flatnonzero(keep)[far[0]])
        else:
            offsets, inverse = np.unique(np.round(times * 1e9).astype(np.int64), return_inverse=True)
            group.fill(-1)
            group[keep] = inverse
            dropped, n_groups = int(n - np.count_nonzero(keep)), offsets.size
    if status == kernels.OUT_OF_RANGE:
        raise EgoMotionError(
            f"lidar sweep at {stamp_ns} ns{where}: field 'time' is {float(points[index, it])!r} s at point {index}; "
            f"expected seconds after the header stamp (|time| <= {MAX_POINT_TIME_S} s)"
        )
    offsets = offsets[:n_groups]
    stamps = np.concatenate([[stamp_ns], stamp_ns + offsets]).astype(np.int64)
    try:
        poses = trajectory.interpolate(stamps)
    except TrajectoryError as error:
        span = f" (points fired {offsets[0]} to {offsets[-1]} ns after it)" if offsets.size else ""
        raise OdometryCoverageError(f"lidar sweep at {stamp_ns} ns{where}{span}: {error}") from error
    pose = poses[0].copy()  # not a view: the per-firing-time poses are not kept
    # sensor(t_i) -> base_link(t_i) -> odom -> base_link(stamp), one transform per firing time
    transforms = np.ascontiguousarray(invert_transform(pose) @ poses[1:] @ extrinsic)
    out = np.empty((n - dropped, 4), dtype=np.float32)
    kernels.apply_grouped(points, ix, iy, iz, ii, group, transforms, out)
    pose.setflags(write=False)
    out.setflags(write=False)
    return DeskewedSweep(int(stamp_ns), pose, out, int(dropped))


@dataclass(frozen=True)
class AccumulatorStats:
    """Counters of a :class:`SweepAccumulator` since it was built.

    Attributes:
        sweeps_added: sweeps passed to ``add``.
        dropped_points: points left out for non-finite coordinates or times (all sweeps).
        last_dropped_points: the same for the latest sweep.
        resets: sweeps whose stamp was not after the newest held one (history cleared).
        expired: sweeps removed for age (``max_age_ns``) or count (``n_sweeps``).
    """

    sweeps_added: int
    dropped_points: int
    last_dropped_points: int
    resets: int
    expired: int


class SweepAccumulator:
    """The last ``n_sweeps`` lidar sweeps, de-skewed, in base_link at the newest sweep's stamp.

    Args:
        n_sweeps: sweeps in each output, the current one included (>= 1).
        lidar_to_base: (4, 4) lidar -> base_link extrinsic (``rig.to_base(lidar_id)``).
        max_age_ns: a sweep older than this (ns, >= 0) relative to the newest is dropped.
        source: lidar sensor id or topic, for error messages.

    A sweep whose stamp is not after the newest one held (a clock jump back, a bag loop, a
    repeated message) clears the history first (counted in ``stats.resets``).
    """

    def __init__(self, n_sweeps: int, lidar_to_base: ArrayLike, *, max_age_ns: int, source: str = "lidar") -> None:
        if isinstance(n_sweeps, bool) or not isinstance(n_sweeps, int) or n_sweeps < 1:
            raise EgoMotionError(f"sweep accumulator ({source}): n_sweeps must be an integer >= 1, got {n_sweeps!r}")
        if isinstance(max_age_ns, bool) or not isinstance(max_age_ns, int) or max_age_ns < 0:
            raise EgoMotionError(
                f"sweep accumulator ({source}): max_age_ns must be an integer >= 0, got {max_age_ns!r}"
            )
        try:
            extrinsic = validate_transform(lidar_to_base)
        except TransformError as error:
            raise EgoMotionError(f"sweep accumulator ({source}): lidar_to_base: {error}") from error
        self.n_sweeps = n_sweeps
        self.max_age_ns = max_age_ns
        self.source = source
        self.lidar_to_base = extrinsic
        self.lidar_to_base.setflags(write=False)
        self._sweeps: list[DeskewedSweep] = []  # newest first
        self._added = self._dropped = self._last_dropped = self._resets = self._expired = 0

    def __len__(self) -> int:
        return len(self._sweeps)

    @property
    def sweeps(self) -> tuple[DeskewedSweep, ...]:
        """The sweeps held, newest first."""
        return tuple(self._sweeps)

    @property
    def stats(self) -> AccumulatorStats:
        return AccumulatorStats(self._added, self._dropped, self._last_dropped, self._resets, self._expired)

    def clear(self) -> None:
        self._sweeps.clear()

    def add(self, scan: PointScan, stamp_ns: int, trajectory: PoseTrajectory) -> NDArray[np.float32]:
        """Add the newest sweep and return every held sweep in base_link at its stamp.

        Args:
            scan: lidar PointScan (see :func:`sweep_to_base` for the fields).
            stamp_ns: its header stamp, int ns (the frame stamp).
            trajectory: odometry covering ``stamp_ns`` and the sweep's firing times (older
                sweeps keep the pose they were added with).

        Returns:
            (N, 5) float32 [x, y, z, intensity, time_lag_s], base_link at ``stamp_ns``,
            metres / seconds; rows of the newest sweep first (time_lag_s 0), then older
            sweeps in order of age (time_lag_s = stamp_ns - their stamp, in seconds).

        Raises:
            EgoMotionError, OdometryCoverageError: see :func:`sweep_to_base`; the history is
                left unchanged then.
        """
        if isinstance(stamp_ns, bool) or not isinstance(stamp_ns, int | np.integer):
            raise EgoMotionError(f"lidar sweep ({self.source}): stamp_ns must be integer ns, got {stamp_ns!r}")
        stamp_ns = int(stamp_ns)
        sweep = sweep_to_base(scan, stamp_ns, trajectory, self.lidar_to_base, source=self.source)
        self._added += 1
        self._dropped += sweep.dropped
        self._last_dropped = sweep.dropped
        if self._sweeps and stamp_ns <= self._sweeps[0].stamp_ns:
            self._sweeps.clear()
            self._resets += 1
        self._sweeps.insert(0, sweep)
        keep = [s for s in self._sweeps[: self.n_sweeps] if stamp_ns - s.stamp_ns <= self.max_age_ns]
        self._expired += len(self._sweeps) - len(keep)
        self._sweeps = keep
        return self.accumulate()

    def accumulate(self) -> NDArray[np.float32]:
        """The held sweeps in base_link at the newest stamp: the array :meth:`add` returns
        ((0, 5) when empty)."""
        total = sum(s.points.shape[0] for s in self._sweeps)
        out = np.empty((total, 5), dtype=np.float32)
        if not self._sweeps:
            return out
        newest = self._sweeps[0]
        to_current = invert_transform(newest.pose)
        start = 0
        for sweep in self._sweeps:
            T = np.eye(4) if sweep is newest else to_current @ sweep.pose
            end = start + sweep.points.shape[0]
            kernels.transform_into(sweep.points, T, (newest.stamp_ns - sweep.stamp_ns) / 1e9, out[start:end])
            start = end
        return out
