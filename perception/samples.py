"""ROS-free, immutable samples produced from odometry and range messages.

Conventions: time is integer nanoseconds since the epoch of the source clock; lengths in
metres, angles in radians, quaternions in (w, x, y, z) order. This module must not import
rclpy or any message package; the conversions live in ``fusion_node.convert.motion``.
Invalid values raise ``ValueError``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

#: Tolerance on |q| - 1 accepted by :class:`OdometrySample` (converters normalize first).
UNIT_QUATERNION_TOLERANCE = 1e-6


def _check_stamp(stamp_ns: object) -> int:
    if isinstance(stamp_ns, bool) or not isinstance(stamp_ns, int | np.integer):
        raise ValueError(f"stamp_ns must be an integer number of nanoseconds, got {stamp_ns!r}")
    if stamp_ns < 0:
        raise ValueError(f"stamp_ns must be >= 0, got {stamp_ns}")
    return int(stamp_ns)


def _vector(name: str, value: Any, size: int) -> NDArray[np.float64]:
    result = np.array(value, dtype=np.float64, copy=True)
    if result.shape != (size,):
        raise ValueError(f"{name} must have shape ({size},), got {result.shape}")
    if not np.all(np.isfinite(result)):
        raise ValueError(f"{name} has non-finite values: {result.tolist()}")
    result.setflags(write=False)
    return result


@dataclass(frozen=True, eq=False)
class OdometrySample:
    """Pose and velocity of ``child_frame_id`` relative to ``frame_id`` at one instant.

    Attributes:
        stamp_ns: time of the sample, int nanoseconds (>= 0).
        frame_id: fixed frame the pose is expressed in (e.g. "odom").
        child_frame_id: moving frame (e.g. "base_link"); velocities are expressed in it.
        position: (3,) float64 [x, y, z] of child in frame_id, metres.
        orientation_wxyz: (4,) float64 unit quaternion (w, x, y, z) rotating child -> frame_id.
        linear_velocity: (3,) float64 [vx, vy, vz], child frame, m/s.
        angular_velocity: (3,) float64 [wx, wy, wz], child frame, rad/s.

    Arrays are copied and made read-only; equality compares every value exactly.
    """

    stamp_ns: int
    frame_id: str
    child_frame_id: str
    position: NDArray[np.float64]
    orientation_wxyz: NDArray[np.float64]
    linear_velocity: NDArray[np.float64]
    angular_velocity: NDArray[np.float64]

    def __post_init__(self) -> None:
        object.__setattr__(self, "stamp_ns", _check_stamp(self.stamp_ns))
        for name in ("frame_id", "child_frame_id"):
            value = getattr(self, name)
            if not isinstance(value, str):
                raise ValueError(f"{name} must be a string, got {value!r}")
        position = _vector("position", self.position, 3)
        orientation = _vector("orientation_wxyz", self.orientation_wxyz, 4)
        norm = float(np.linalg.norm(orientation))
        if abs(norm - 1.0) > UNIT_QUATERNION_TOLERANCE:
            raise ValueError(
                f"orientation_wxyz must be a unit quaternion, got norm {norm!r} for {orientation.tolist()}"
            )
        object.__setattr__(self, "position", position)
        object.__setattr__(self, "orientation_wxyz", orientation)
        object.__setattr__(self, "linear_velocity", _vector("linear_velocity", self.linear_velocity, 3))
        object.__setattr__(self, "angular_velocity", _vector("angular_velocity", self.angular_velocity, 3))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, OdometrySample):
            return NotImplemented
        return (
            self.stamp_ns == other.stamp_ns
            and self.frame_id == other.frame_id
            and self.child_frame_id == other.child_frame_id
            and np.array_equal(self.position, other.position)
            and np.array_equal(self.orientation_wxyz, other.orientation_wxyz)
            and np.array_equal(self.linear_velocity, other.linear_velocity)
            and np.array_equal(self.angular_velocity, other.angular_velocity)
        )

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True)
class RangeReading:
    """One reading of a single-beam range sensor (ultrasound), following REP-117.

    Attributes:
        stamp_ns: time of the reading, int nanoseconds (>= 0).
        frame_id: sensor frame; the beam points along +x.
        range_m: distance to the detected object, metres; ``min_range_m <= range_m <=
            max_range_m`` when ``detected``, ``math.inf`` when not.
        min_range_m: minimum measurable distance, metres (finite, >= 0).
        max_range_m: maximum measurable distance, metres (finite, >= min_range_m).
        field_of_view_rad: full opening angle of the beam, radians (finite, >= 0).
        detected: False when nothing was detected within max_range_m (REP-117 +inf);
            an object closer than min_range_m (REP-117 -inf) is detected at min_range_m.
    """

    stamp_ns: int
    frame_id: str
    range_m: float
    min_range_m: float
    max_range_m: float
    field_of_view_rad: float
    detected: bool

    def __post_init__(self) -> None:
        object.__setattr__(self, "stamp_ns", _check_stamp(self.stamp_ns))
        if not isinstance(self.frame_id, str):
            raise ValueError(f"frame_id must be a string, got {self.frame_id!r}")
        if not isinstance(self.detected, bool):
            raise ValueError(f"detected must be a bool, got {self.detected!r}")
        values: dict[str, float] = {}
        for name in ("range_m", "min_range_m", "max_range_m", "field_of_view_rad"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float | np.number):
                raise ValueError(f"{name} must be a number, got {value!r}")
            values[name] = float(value)
            object.__setattr__(self, name, values[name])
        lo, hi, fov = values["min_range_m"], values["max_range_m"], values["field_of_view_rad"]
        if not (math.isfinite(lo) and lo >= 0.0):
            raise ValueError(f"min_range_m must be finite and >= 0, got {lo}")
        if not (math.isfinite(hi) and hi >= lo):
            raise ValueError(f"max_range_m must be finite and >= min_range_m ({lo}), got {hi}")
        if not (math.isfinite(fov) and fov >= 0.0):
            raise ValueError(f"field_of_view_rad must be finite and >= 0, got {fov}")
        rng = values["range_m"]
        if self.detected and not lo <= rng <= hi:
            raise ValueError(f"range_m of a detection must be within [{lo}, {hi}], got {rng}")
        if not self.detected and rng != math.inf:
            raise ValueError(f"range_m must be inf when nothing is detected, got {rng}")


@dataclass(frozen=True, eq=False)
class PointScan:
    """One lidar sweep or radar scan in the sensor's own frame.

    Attributes:
        fields: column names, e.g. ("x", "y", "z", "intensity", "ring", "time") for a lidar
            (ring: beam index 0..beams-1 as float; time: seconds after the header stamp) or
            ("x", "y", "z", "vr", "vr_compensated", "rcs") for a radar (m/s radial velocity,
            positive moving away; dBsm).
        points: (N, len(fields)) float32, sensor frame, metres.
    """

    fields: tuple[str, ...]
    points: NDArray[np.float32]

    def __post_init__(self) -> None:
        points = np.asarray(self.points)
        if points.dtype != np.float32 or points.ndim != 2 or points.shape[1] != len(self.fields):
            raise ValueError(
                f"points must be (N, {len(self.fields)}) float32 for fields {self.fields}, "
                f"got {points.shape} {points.dtype}"
            )
        object.__setattr__(self, "points", points)

    def column(self, name: str) -> NDArray[np.float32]:
        """(N,) float32 view of one field."""
        try:
            return self.points[:, self.fields.index(name)]
        except ValueError:
            raise ValueError(f"no field {name!r} in {self.fields}") from None


@dataclass(frozen=True)
class EncodedImage:
    """A compressed camera image and the intrinsics of the resolution it was encoded at.

    Attributes:
        data: the encoded bytes (JPEG or PNG).
        format: "jpeg" or "png".
        intrinsics: calibration.CameraIntrinsics whose width/height are the image's.
    """

    data: bytes
    format: str
    intrinsics: Any

    def __post_init__(self) -> None:
        if self.format not in ("jpeg", "png"):
            raise ValueError(f"format must be 'jpeg' or 'png', got {self.format!r}")
        if not self.data:
            raise ValueError("data is empty")


@dataclass(frozen=True)
class SensorRecord:
    """One message of one rig sensor, as produced by a source (the simulator, a dataset
    converter) before it becomes a ROS message in a bag or a training shard.

    Attributes:
        sensor_id: rig sensor id (the bag writer looks up its topic and frame in the rig).
        stamp_ns: capture time, the header stamp, int nanoseconds.
        receive_ns: when the message is written/received (>= stamp_ns: driver latency).
        payload: PointScan (lidar, radar), EncodedImage (camera), RangeReading (ultrasonic)
            or OdometrySample (odometry).
    """

    sensor_id: str
    stamp_ns: int
    receive_ns: int
    payload: PointScan | EncodedImage | RangeReading | OdometrySample

    def __post_init__(self) -> None:
        object.__setattr__(self, "stamp_ns", _check_stamp(self.stamp_ns))
        object.__setattr__(self, "receive_ns", _check_stamp(self.receive_ns))
        if self.receive_ns < self.stamp_ns:
            raise ValueError(f"{self.sensor_id}: receive_ns ({self.receive_ns}) is before stamp_ns ({self.stamp_ns})")
