"""Per-modality bird's-eye-view features on the shared :class:`~perception.bev_grid.BevGrid`.

Every branch returns a (C, ny, nx) float32 C-contiguous tensor in base_link at the frame
time, row along +y, column along +x:

- lidar: ``lidar_bev(points (N, 5), grid) -> (6, ny, nx)``, channels ``LIDAR_CHANNELS``;
- radar: ``radar_bev(points (R, 7), grid) -> (5, ny, nx)``, channels ``RADAR_CHANNELS``;
- ultrasonic: ``UltrasonicBev.from_rig(rig, grid)(ranges (U,)) -> (2, ny, nx)`` or
  ``ultrasonic_bev(readings, grid)``, channels ``ULTRASONIC_CHANNELS``;
- camera: lookup tables and lifts in ``perception.bev.camera_lut`` / ``camera_lift``.

The numba kernels compile on first use and are cached on disk (``cache=True``).
"""

from perception.bev.camera_lift import lift_cameras
from perception.bev.camera_lut import CameraLiftTable, build_camera_lut
from perception.bev.lidar import LIDAR_CHANNELS, lidar_bev
from perception.bev.radar import RADAR_CHANNELS, RADAR_COLUMNS, radar_bev
from perception.bev.ultrasonic import (
    ULTRASONIC_CHANNELS,
    UltrasonicBev,
    UltrasonicCone,
    UltrasonicReading,
    ultrasonic_bev,
)

# The torch lift (perception.bev.camera_lift_torch) is imported on its own: importing this
# package must not load torch.

__all__ = [
    "LIDAR_CHANNELS",
    "RADAR_CHANNELS",
    "RADAR_COLUMNS",
    "ULTRASONIC_CHANNELS",
    "CameraLiftTable",
    "UltrasonicBev",
    "UltrasonicCone",
    "UltrasonicReading",
    "build_camera_lut",
    "lidar_bev",
    "lift_cameras",
    "radar_bev",
    "ultrasonic_bev",
]
