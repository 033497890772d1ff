"""Where the car was when each camera fired, relative to the frame: for the camera-to-BEV geometry.

A camera image stamped ``t_cam`` sees the world from base_link(t_cam); the BEV grid is in
base_link(t_frame). :func:`camera_pose_at` gives ``M = base_link(t_cam) -> base_link(t_frame)``
(a static point at ``q`` in base_link(t_cam) is at ``M @ q`` in base_link(t_frame); at 10 m/s
and a 40 ms offset that is 0.4 m, one 0.4 m BEV cell).

How the camera lift applies it (``perception.bev.camera_lut`` tables map each BEV cell to
feature-map cells through the static extrinsic ``E = camera -> base_link``, so a lifted
camera samples the grid in base_link(t_cam), not base_link(t_frame)):

1. Exact, per frame: build the table with :func:`camera_extrinsic_at_frame` ``(E, M) =
   M @ E`` (camera at t_cam -> base_link(t_frame)) in place of ``E``. Tables are
   precomputed, so this suits offline work (training data, replays with fixed timing).
2. Run time: keep the static table, lift, then resample the lifted (C, ny, nx) raster into
   base_link(t_frame): ``out[:, row, col] = lifted[:, src_row, src_col]`` with
   :func:`bev_source_cells` ``(M, grid)`` (bilinear: ``cv2.remap`` per channel, or the
   coordinates normalized to [-1, 1] for ``torch.nn.functional.grid_sample``). The lift
   mixes all cameras into one raster, so either lift each camera alone (``camera_present``
   selecting one) and resample it with its own ``M``, or resample the mixed raster once
   with ``M`` at the median camera stamp: the cameras' spread around it (±20 ms at 10 m/s:
   0.2 m) then remains, a quarter of a 0.8 m camera-grid cell.

The resampling uses the planar part of ``M`` (x, y, yaw); roll, pitch and z change by
millimetres over tens of milliseconds and are left out.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.typing import ArrayLike, NDArray

from calibration.errors import TrajectoryError, TransformError
from calibration.poses import PoseTrajectory
from calibration.transforms import invert_transform, validate_transform
from perception.bev_grid import BevGrid
from perception.ego_motion.errors import EgoMotionError, OdometryCoverageError


def camera_pose_at(
    stamp_ns: int, frame_stamp_ns: int, trajectory: PoseTrajectory, *, source: str = ""
) -> NDArray[np.float64]:
    """(4, 4) float64 base_link(``stamp_ns``) -> base_link(``frame_stamp_ns``), metres.

    Raises:
        OdometryCoverageError: the trajectory does not cover a stamp (names both stamps and
            ``source``, the camera id).
    """
    try:
        return trajectory.relative(stamp_ns, frame_stamp_ns)
    except TrajectoryError as error:
        where = f" ({source})" if source else ""
        raise OdometryCoverageError(
            f"camera image at {stamp_ns} ns{where} for the frame at {frame_stamp_ns} ns: {error}"
        ) from error


def camera_poses(
    stamps_ns: Mapping[str, int], frame_stamp_ns: int, trajectory: PoseTrajectory
) -> dict[str, NDArray[np.float64]]:
    """:func:`camera_pose_at` for each camera id -> its image stamp (int ns)."""
    return {
        camera: camera_pose_at(stamp, frame_stamp_ns, trajectory, source=camera) for camera, stamp in stamps_ns.items()
    }


def camera_extrinsic_at_frame(camera_to_base: ArrayLike, motion: ArrayLike) -> NDArray[np.float64]:
    """(4, 4) float64 camera (at its stamp) -> base_link(frame stamp): ``motion @ camera_to_base``.

    Args:
        camera_to_base: (4, 4) static extrinsic camera -> base_link.
        motion: (4, 4) :func:`camera_pose_at` of the camera's stamp.
    """
    try:
        result: NDArray[np.float64] = validate_transform(motion) @ validate_transform(camera_to_base)
    except TransformError as error:
        raise EgoMotionError(f"camera extrinsic at the frame: {error}") from error
    return result


def bev_source_cells(motion: ArrayLike, grid: BevGrid) -> NDArray[np.float32]:
    """For each cell of ``grid`` in base_link(frame), where it lies in a raster of the same
    grid in base_link(camera stamp).

    Args:
        motion: (4, 4) base_link(camera stamp) -> base_link(frame stamp) (:func:`camera_pose_at`).
        grid: the BEV grid of both rasters.

    Returns:
        (ny, nx, 2) float32 [col, row] fractional cell coordinates (cell centres at integer
        values, so ``cv2.remap(lifted, out[..., 0], out[..., 1], cv2.INTER_LINEAR)`` resamples
        ``lifted`` into the frame); values outside [0, nx - 1] / [0, ny - 1] fall off the grid.
    """
    try:
        back = invert_transform(validate_transform(motion))  # base_link(frame) -> base_link(camera)
    except TransformError as error:
        raise EgoMotionError(f"BEV resampling: motion: {error}") from error
    x, y = grid.cell_centers()
    source = np.empty((*grid.shape, 2), dtype=np.float32)
    source[..., 0] = (back[0, 0] * x + back[0, 1] * y + back[0, 3] - grid.x_min) / grid.resolution - 0.5
    source[..., 1] = (back[1, 0] * x + back[1, 1] * y + back[1, 3] - grid.y_min) / grid.resolution - 0.5
    return source
