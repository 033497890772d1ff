"""Typed description of one sensor of the rig (frozen dataclasses, no parsing here).

Parsing and validation of the YAML live in ``calibration.rig_loader``; these classes hold
already-validated values. Units: metres, radians, integer nanoseconds, hertz.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

from calibration.intrinsics import CameraIntrinsics


class Modality(StrEnum):
    """Kind of sensor; the value is the YAML spelling."""

    CAMERA = "camera"
    LIDAR = "lidar"
    RADAR = "radar"
    ULTRASONIC = "ultrasonic"
    ODOMETRY = "odometry"


@dataclass(frozen=True)
class CameraSpec:
    """Camera-only settings.

    Attributes:
        intrinsics: pinhole + distortion model at the full published resolution.
        info_topic: CameraInfo topic published beside the image ("" when none).
        compressed: True when ``topic`` carries sensor_msgs/CompressedImage.
    """

    intrinsics: CameraIntrinsics
    info_topic: str = ""
    compressed: bool = True


@dataclass(frozen=True)
class LidarSpec:
    """Lidar-only settings.

    Attributes:
        fields: PointCloud2 field names the driver publishes; always includes x, y, z.
        beams: number of laser rings (channels).
        vertical_fov_deg: (lowest, highest) beam elevation, degrees.
        max_range_m: maximum measured range, metres.
        horizontal_resolution_deg: azimuth step between firings, degrees.
    """

    fields: tuple[str, ...]
    beams: int
    vertical_fov_deg: tuple[float, float]
    max_range_m: float
    horizontal_resolution_deg: float


@dataclass(frozen=True)
class RadarSpec:
    """Radar-only settings.

    Attributes:
        fields: PointCloud2 field names; includes x, y, z, a radial-velocity field and rcs.
        max_points: maximum returns per scan the sensor reports.
        max_range_m: maximum range, metres.
        horizontal_fov_deg: full horizontal field of view, degrees.
    """

    fields: tuple[str, ...]
    max_points: int
    max_range_m: float
    horizontal_fov_deg: float


@dataclass(frozen=True)
class UltrasonicSpec:
    """Ultrasonic-only settings (sensor_msgs/Range, radiation_type ULTRASOUND).

    Attributes:
        field_of_view_rad: full cone opening angle, radians, in (0, pi).
        min_range_m: closest measurable distance, metres.
        max_range_m: farthest measurable distance, metres.
    """

    field_of_view_rad: float
    min_range_m: float
    max_range_m: float


@dataclass(frozen=True)
class OdometrySpec:
    """Odometry-only settings (nav_msgs/Odometry).

    Attributes:
        child_frame_id: the body frame the twist is expressed in (normally base_link).
    """

    child_frame_id: str = "base_link"


_S = TypeVar("_S", CameraSpec, LidarSpec, RadarSpec, UltrasonicSpec, OdometrySpec)

SensorSpec = CameraSpec | LidarSpec | RadarSpec | UltrasonicSpec | OdometrySpec


@dataclass(frozen=True, eq=False)
class Sensor:
    """One sensor of the rig.

    Attributes:
        id: unique name, lower-case snake case (e.g. ``cam_front``).
        modality: kind of sensor.
        topic: ROS topic the sensor publishes on.
        frame_id: ``header.frame_id`` of its messages.
        rate_hz: nominal publishing rate, Hz.
        time_offset_ns: constant offset added to a message stamp to get the capture time
            on the reference clock (calibrated clock offset), nanoseconds.
        latency_ns: typical delay between capture stamp and arrival, nanoseconds.
        extrinsic: (4, 4) float64 transform sensor frame -> base_link (read-only).
        spec: modality-specific settings.
    """

    id: str
    modality: Modality
    topic: str
    frame_id: str
    rate_hz: float
    time_offset_ns: int
    latency_ns: int
    extrinsic: NDArray[np.float64]
    spec: SensorSpec

    @property
    def period_ns(self) -> int:
        """Nominal time between two messages, nanoseconds."""
        return round(1e9 / self.rate_hz)

    @property
    def camera(self) -> CameraSpec:
        return self._spec(CameraSpec)

    @property
    def lidar(self) -> LidarSpec:
        return self._spec(LidarSpec)

    @property
    def radar(self) -> RadarSpec:
        return self._spec(RadarSpec)

    @property
    def ultrasonic(self) -> UltrasonicSpec:
        return self._spec(UltrasonicSpec)

    def _spec(self, kind: type[_S]) -> _S:
        if not isinstance(self.spec, kind):
            raise TypeError(f"sensor '{self.id}' is a {self.modality.value}, not a {kind.__name__}")
        return self.spec
