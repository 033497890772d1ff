"""Radar detections brought to the frame time: positions ego-compensated, velocities as vectors.

A radar scan is stamped at its own capture time. Each detection's position is moved from
the radar frame at the scan stamp into base_link at the frame stamp with the odometry
(static-world compensation: what the ego did between the two stamps). Its velocity is the
radial, ego-motion-compensated ``vr_compensated`` times the unit line of sight: the part of
the target's over-ground velocity along the ray (the tangential part is not measured),
rotated into base_link at the frame stamp.

Moving the target along its velocity by the time lag is off by default: the measured
velocity is radial only, so the correction would be partial and noisy for crossing targets,
and the lag is kept as a channel for the network to use. ``propagate=True`` applies it
(position + velocity * time_lag) where the caller prefers positions at the frame time.

Two entry points: :func:`radar_to_frame` for one scan, and :class:`RadarCompensator` for the
radars of a rig (extrinsics validated once; one odometry look-up for all scans of a frame,
which is most of the cost for a few hundred detections).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from calibration.errors import TrajectoryError, TransformError
from calibration.poses import PoseTrajectory
from calibration.transforms import invert_transform, validate_transform
from perception.ego_motion import kernels
from perception.ego_motion.errors import EgoMotionError, OdometryCoverageError
from perception.samples import PointScan

#: Fields a radar PointScan needs (simulation/sensors/radar.py, fusion_node RADAR_FIELDS).
RADAR_INPUT_FIELDS: Final = ("x", "y", "z", "vr_compensated", "rcs")
RADAR_FRAME_COLUMNS: Final = ("x", "y", "z", "rcs", "vx", "vy", "time_lag_s")


def radar_to_frame(
    scan: PointScan,
    scan_stamp_ns: int,
    frame_stamp_ns: int,
    trajectory: PoseTrajectory,
    radar_to_base: ArrayLike,
    *,
    propagate: bool = False,
    source: str = "",
) -> NDArray[np.float32]:
    """Radar detections in base_link at the frame stamp (the radar BEV input).

    Args:
        scan: radar PointScan with fields x, y, z (radar frame, metres), vr_compensated (m/s,
            positive moving away, ego motion removed) and rcs (dBsm); others are ignored.
        scan_stamp_ns: the scan's header stamp, int ns.
        frame_stamp_ns: the frame (reference lidar sweep) stamp, int ns.
        trajectory: odometry covering both stamps.
        radar_to_base: (4, 4) radar -> base_link extrinsic.
        propagate: also move each detection by velocity * time_lag (see the module docstring).
        source: radar sensor id or topic, for error messages.

    Returns:
        (R, 7) float32 [x, y, z, rcs, vx, vy, time_lag_s], base_link at ``frame_stamp_ns``;
        metres, dBsm, m/s, seconds. time_lag_s = (frame - scan stamp) / 1e9, negative for a
        scan taken after the frame stamp. Rows with a non-finite x, y, z, vr_compensated or
        rcs are dropped; a detection at the radar origin gets velocity 0.

    Raises:
        EgoMotionError: a missing field or a bad extrinsic (names the field / sensor).
        OdometryCoverageError: the trajectory does not cover a stamp (names the stamps).
    """
    return RadarCompensator({source: radar_to_base}, propagate=propagate).to_frame(
        [(source, scan_stamp_ns, scan)], frame_stamp_ns, trajectory
    )


class RadarCompensator:
    """The radars of a rig, brought to frame time together.

    Args:
        radar_to_base: radar id -> (4, 4) radar -> base_link extrinsic (``rig.to_base(id)``),
            validated here once.
        propagate: move each detection by velocity * time_lag (see the module docstring).
    """

    def __init__(self, radar_to_base: Mapping[str, ArrayLike], *, propagate: bool = False) -> None:
        self.radar_to_base = {radar: _extrinsic(value, radar) for radar, value in radar_to_base.items()}
        for value in self.radar_to_base.values():
            value.setflags(write=False)
        self.propagate = bool(propagate)

    def to_frame(
        self, scans: Sequence[tuple[str, int, PointScan]], frame_stamp_ns: int, trajectory: PoseTrajectory
    ) -> NDArray[np.float32]:
        """Every scan's detections in base_link at ``frame_stamp_ns``, concatenated in order.

        Args:
            scans: (radar id, scan stamp int ns, PointScan) per scan (see :func:`radar_to_frame`).
            frame_stamp_ns: the frame stamp, int ns.
            trajectory: odometry covering the frame stamp and every scan stamp.

        Returns:
            (R, 7) float32 [x, y, z, rcs, vx, vy, time_lag_s] as :func:`radar_to_frame`.

        Raises:
            EgoMotionError: an unknown radar id or a scan without a needed field.
            OdometryCoverageError: the trajectory misses a stamp (names the radar and stamps).
        """
        columns = []
        for radar, stamp, scan in scans:
            where = f" ({radar})" if radar else ""
            if radar not in self.radar_to_base:
                raise EgoMotionError(
                    f"radar scan at {stamp} ns from unknown radar {radar!r}; known: {list(self.radar_to_base)}"
                )
            missing = [name for name in RADAR_INPUT_FIELDS if name not in scan.fields]
            if missing:
                raise EgoMotionError(
                    f"radar scan at {stamp} ns{where} has no field {missing[0]!r}; fields {scan.fields}"
                )
            columns.append(np.array([scan.fields.index(name) for name in RADAR_INPUT_FIELDS], dtype=np.int64))
        poses = _poses(trajectory, frame_stamp_ns, scans)
        to_frame = invert_transform(poses[0])
        out = np.empty((sum(scan.points.shape[0] for _, _, scan in scans), 7), dtype=np.float32)
        n = 0
        for (radar, stamp, scan), pose, column in zip(scans, poses[1:], columns, strict=True):
            T = to_frame @ pose @ self.radar_to_base[radar]  # radar(scan stamp) -> base_link(frame)
            lag = (int(frame_stamp_ns) - int(stamp)) / 1e9
            n += kernels.radar_rows(scan.points, column, T, lag, self.propagate, out[n:])
        return out[:n] if n < out.shape[0] else out


def _extrinsic(value: ArrayLike, radar: str) -> NDArray[np.float64]:
    try:
        return validate_transform(value).copy()
    except TransformError as error:
        where = f" ({radar})" if radar else ""
        raise EgoMotionError(f"radar{where}: radar_to_base: {error}") from error


def _poses(
    trajectory: PoseTrajectory, frame_stamp_ns: int, scans: Sequence[tuple[str, int, PointScan]]
) -> NDArray[np.float64]:
    """(1 + len(scans), 4, 4) base_link -> odom at the frame stamp and each scan stamp."""
    try:
        return trajectory.interpolate(np.array([frame_stamp_ns, *(stamp for _, stamp, _ in scans)], dtype=np.int64))
    except TrajectoryError as error:
        low = trajectory.start_ns - trajectory.max_extrapolation_ns
        high = trajectory.end_ns + trajectory.max_extrapolation_ns
        late = [(radar, stamp) for radar, stamp, _ in scans if not low <= stamp <= high]
        what = "radar scans"
        if late:
            radar, stamp = late[0]
            what = f"radar scan at {stamp} ns" + (f" ({radar})" if radar else "")
        raise OdometryCoverageError(f"{what} for the frame at {frame_stamp_ns} ns: {error}") from error
