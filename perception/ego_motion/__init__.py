"""Ego-motion compensation from odometry: everything a frame needs at the frame stamp.

- :class:`OdometryBuffer`: bounded odometry history -> ``PoseTrajectory`` over a time range.
- :class:`SweepAccumulator` / :func:`sweep_to_base`: lidar de-skew with per-point time and
  accumulation of the last N sweeps into base_link at the frame stamp, with a time-lag
  channel ((N, 5) float32 ``[x, y, z, intensity, time_lag_s]``).
- :func:`radar_to_frame` / :class:`RadarCompensator`: radar positions and compensated
  velocity vectors at the frame stamp ((R, 7) float32 ``[x, y, z, rcs, vx, vy, time_lag_s]``).
- :func:`camera_pose_at` / :func:`camera_poses`: base_link(camera stamp) -> base_link(frame
  stamp) for the camera-to-BEV geometry (see :mod:`perception.ego_motion.camera`).

Frames: base_link at the frame (reference lidar sweep) stamp; time int64 ns; metres, m/s.
"""

from perception.ego_motion.camera import bev_source_cells, camera_extrinsic_at_frame, camera_pose_at, camera_poses
from perception.ego_motion.errors import EgoMotionError, OdometryCoverageError
from perception.ego_motion.lidar import (
    LIDAR_FRAME_COLUMNS,
    AccumulatorStats,
    DeskewedSweep,
    SweepAccumulator,
    sweep_to_base,
)
from perception.ego_motion.odometry import OdometryBuffer, OdometryBufferStats
from perception.ego_motion.radar import RADAR_FRAME_COLUMNS, RadarCompensator, radar_to_frame

__all__ = [
    "LIDAR_FRAME_COLUMNS",
    "RADAR_FRAME_COLUMNS",
    "AccumulatorStats",
    "DeskewedSweep",
    "EgoMotionError",
    "OdometryBuffer",
    "OdometryBufferStats",
    "OdometryCoverageError",
    "RadarCompensator",
    "SweepAccumulator",
    "bev_source_cells",
    "camera_extrinsic_at_frame",
    "camera_pose_at",
    "camera_poses",
    "radar_to_frame",
    "sweep_to_base",
]
