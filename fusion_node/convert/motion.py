"""Time, Odometry and Range conversions.

Time is integer nanoseconds internally. ``builtin_interfaces/Time`` is (int32 sec,
uint32 nanosec with nanosec < 1e9); only non-negative times are accepted.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from builtin_interfaces.msg import Time
from nav_msgs.msg import Odometry
from sensor_msgs.msg import Range
from std_msgs.msg import Header

from fusion_node.convert._common import as_float, as_int, as_str, get_attr
from fusion_node.errors import MalformedMessageError, UnsupportedMessageError
from perception.samples import OdometrySample, RangeReading

NS_PER_S = 1_000_000_000
INT32_MAX = 2**31 - 1
#: Largest time representable by builtin_interfaces/Time, nanoseconds.
MAX_TIME_NS = INT32_MAX * NS_PER_S + NS_PER_S - 1
#: Largest accepted deviation of an Odometry quaternion norm from 1 (renormalized below it).
QUATERNION_NORM_TOLERANCE = 1e-3

_RADIATION_NAMES = {0: "ULTRASOUND", 1: "INFRARED"}


def _stamp_to_ns(stamp: Any, *, msg_type: str, source: str, name: str) -> int:
    sec = as_int(
        get_attr(stamp, "sec", msg_type=msg_type, source=source),
        f"{name}.sec",
        msg_type=msg_type,
        source=source,
        minimum=-(2**31),
        maximum=INT32_MAX,
    )
    nanosec = as_int(
        get_attr(stamp, "nanosec", msg_type=msg_type, source=source),
        f"{name}.nanosec",
        msg_type=msg_type,
        source=source,
        minimum=0,
        maximum=NS_PER_S - 1,
    )
    ns = sec * NS_PER_S + nanosec
    if ns < 0:
        raise MalformedMessageError(
            f"{name} is negative (sec={sec}, nanosec={nanosec}); times must be >= 0",
            msg_type=msg_type,
            source=source,
            field=name,
        )
    return ns


def time_to_ns(stamp: Any, *, source: str = "") -> int:
    """``builtin_interfaces/Time`` (or anything with ``sec``/``nanosec``) -> int nanoseconds.

    Raises MalformedMessageError when nanosec is outside [0, 1e9), sec outside int32 or
    the time is negative.
    """
    return _stamp_to_ns(stamp, msg_type="Time", source=source, name="stamp")


def ns_to_time(ns: int) -> Time:
    """Int nanoseconds (>= 0, sec must fit in int32) -> ``builtin_interfaces.msg.Time``."""
    if isinstance(ns, bool) or not isinstance(ns, int | np.integer):
        raise MalformedMessageError(
            f"ns must be an integer number of nanoseconds, got {type(ns).__name__} {ns!r}",
            msg_type="Time",
        )
    value = int(ns)
    if value < 0:
        raise MalformedMessageError(f"ns must be >= 0, got {value}", msg_type="Time")
    sec, nanosec = divmod(value, NS_PER_S)
    if sec > INT32_MAX:
        raise MalformedMessageError(
            f"ns = {value} gives sec = {sec}, beyond the int32 maximum {INT32_MAX}",
            msg_type="Time",
        )
    return Time(sec=sec, nanosec=nanosec)


def make_header(frame_id: str, stamp_ns: int) -> Header:
    """``std_msgs.msg.Header`` with ``frame_id`` and a stamp from int nanoseconds."""
    if not isinstance(frame_id, str):
        raise MalformedMessageError(f"frame_id must be a string, got {frame_id!r}")
    return Header(stamp=ns_to_time(stamp_ns), frame_id=frame_id)


def header_fields(msg: Any, *, msg_type: str, source: str) -> tuple[int, str]:
    """(stamp_ns, frame_id) of ``msg.header``."""
    header = get_attr(msg, "header", msg_type=msg_type, source=source)
    stamp = get_attr(header, "stamp", msg_type=msg_type, source=source)
    stamp_ns = _stamp_to_ns(stamp, msg_type=msg_type, source=source, name="header.stamp")
    frame_id = as_str(
        get_attr(header, "frame_id", msg_type=msg_type, source=source),
        "header.frame_id",
        msg_type=msg_type,
        source=source,
    )
    return stamp_ns, frame_id


def _xyz(obj: Any, name: str, keys: str, *, source: str) -> list[float]:
    values = [
        as_float(
            get_attr(obj, key, msg_type="Odometry", source=source),
            f"{name}.{key}",
            msg_type="Odometry",
            source=source,
        )
        for key in keys
    ]
    if not all(math.isfinite(v) for v in values):
        text = ", ".join(f"{k}={v}" for k, v in zip(keys, values, strict=True))
        raise MalformedMessageError(
            f"{name} has non-finite values ({text})",
            msg_type="Odometry",
            source=source,
            field=name,
        )
    return values


def _path(msg: Any, dotted: str, *, source: str) -> Any:
    obj = msg
    for part in dotted.split("."):
        obj = get_attr(obj, part, msg_type="Odometry", source=source)
    return obj


def odometry_to_sample(msg: Any, *, source: str = "") -> OdometrySample:
    """``nav_msgs/Odometry`` -> :class:`perception.samples.OdometrySample`.

    Position (3,) float64 metres in header.frame_id; orientation (4,) float64 (w, x, y, z);
    linear (m/s) and angular (rad/s) velocity (3,) float64 in child_frame_id. Covariances are
    not carried over. A quaternion whose norm deviates from 1 by more than 1e-3 is rejected,
    smaller deviations are renormalized. NaN/inf anywhere -> MalformedMessageError.
    """
    stamp_ns, frame_id = header_fields(msg, msg_type="Odometry", source=source)
    child = as_str(
        get_attr(msg, "child_frame_id", msg_type="Odometry", source=source),
        "child_frame_id",
        msg_type="Odometry",
        source=source,
    )
    position = _xyz(_path(msg, "pose.pose.position", source=source), "pose.pose.position", "xyz", source=source)
    x, y, z, w = _xyz(
        _path(msg, "pose.pose.orientation", source=source), "pose.pose.orientation", "xyzw", source=source
    )
    linear = _xyz(_path(msg, "twist.twist.linear", source=source), "twist.twist.linear", "xyz", source=source)
    angular = _xyz(_path(msg, "twist.twist.angular", source=source), "twist.twist.angular", "xyz", source=source)
    quaternion = np.array([w, x, y, z], dtype=np.float64)
    norm = float(np.linalg.norm(quaternion))
    if not abs(norm - 1.0) <= QUATERNION_NORM_TOLERANCE:
        raise MalformedMessageError(
            f"pose.pose.orientation has norm {norm:.9g}, expected 1 within "
            f"{QUATERNION_NORM_TOLERANCE} (x={x}, y={y}, z={z}, w={w})",
            msg_type="Odometry",
            source=source,
            field="pose.pose.orientation",
        )
    try:
        return OdometrySample(
            stamp_ns=stamp_ns,
            frame_id=frame_id,
            child_frame_id=child,
            position=np.array(position),
            orientation_wxyz=quaternion / norm,
            linear_velocity=np.array(linear),
            angular_velocity=np.array(angular),
        )
    except ValueError as exc:  # pragma: no cover - every value was validated above
        raise MalformedMessageError(str(exc), msg_type="Odometry", source=source) from exc


def sample_to_odometry(sample: OdometrySample) -> Odometry:
    """:class:`OdometrySample` -> ``nav_msgs.msg.Odometry`` (covariances left at zero)."""
    msg = Odometry()
    msg.header = make_header(sample.frame_id, sample.stamp_ns)
    msg.child_frame_id = sample.child_frame_id
    position = msg.pose.pose.position
    position.x, position.y, position.z = (float(v) for v in sample.position)
    orientation = msg.pose.pose.orientation
    w, x, y, z = (float(v) for v in sample.orientation_wxyz)
    orientation.x, orientation.y, orientation.z, orientation.w = x, y, z, w
    linear = msg.twist.twist.linear
    linear.x, linear.y, linear.z = (float(v) for v in sample.linear_velocity)
    angular = msg.twist.twist.angular
    angular.x, angular.y, angular.z = (float(v) for v in sample.angular_velocity)
    return msg


def _range_float(msg: Any, name: str, *, source: str) -> float:
    return as_float(
        get_attr(msg, name, msg_type="Range", source=source),
        name,
        msg_type="Range",
        source=source,
    )


def range_to_reading(msg: Any, *, source: str = "") -> RangeReading:
    """``sensor_msgs/Range`` (ULTRASOUND only) -> :class:`perception.samples.RangeReading`.

    REP-117: range +inf or > max_range -> ``detected=False`` with ``range_m=inf``; -inf or
    a finite value < min_range (object too close) -> ``detected=True`` at min_range.
    Units: metres, field_of_view radians. NaN range, non-finite or negative limits and
    min_range > max_range raise MalformedMessageError; radiation_type != ULTRASOUND (0)
    raises UnsupportedMessageError.
    """
    stamp_ns, frame_id = header_fields(msg, msg_type="Range", source=source)
    radiation = as_int(
        get_attr(msg, "radiation_type", msg_type="Range", source=source),
        "radiation_type",
        msg_type="Range",
        source=source,
        minimum=None,
    )
    if radiation != Range.ULTRASOUND:
        kind = _RADIATION_NAMES.get(radiation, "unknown")
        raise UnsupportedMessageError(
            f"radiation_type = {radiation} ({kind}); only ULTRASOUND (0) is supported",
            msg_type="Range",
            source=source,
            field="radiation_type",
        )
    rng = _range_float(msg, "range", source=source)
    lo = _range_float(msg, "min_range", source=source)
    hi = _range_float(msg, "max_range", source=source)
    fov = _range_float(msg, "field_of_view", source=source)

    def bad(field: str, text: str) -> MalformedMessageError:
        return MalformedMessageError(text, msg_type="Range", source=source, field=field)

    if math.isnan(rng):
        raise bad("range", f"range is NaN (min_range={lo}, max_range={hi})")
    if not (math.isfinite(lo) and lo >= 0.0):
        raise bad("min_range", f"min_range must be finite and >= 0, got {lo}")
    if not math.isfinite(hi):
        raise bad("max_range", f"max_range must be finite, got {hi}")
    if lo > hi:
        raise bad("min_range", f"min_range {lo} > max_range {hi}")
    if not (math.isfinite(fov) and fov >= 0.0):
        raise bad("field_of_view", f"field_of_view must be finite and >= 0, got {fov}")
    if rng > hi:  # includes +inf: nothing within range
        detected, value = False, math.inf
    elif rng < lo:  # includes -inf: object closer than the sensor can measure
        detected, value = True, lo
    else:
        detected, value = True, rng
    return RangeReading(
        stamp_ns=stamp_ns,
        frame_id=frame_id,
        range_m=value,
        min_range_m=lo,
        max_range_m=hi,
        field_of_view_rad=fov,
        detected=detected,
    )


def reading_to_range(reading: RangeReading) -> Range:
    """:class:`RangeReading` -> ``sensor_msgs.msg.Range`` (ULTRASOUND; range +inf when not
    detected, variance 0 = unknown)."""
    msg = Range()
    msg.header = make_header(reading.frame_id, reading.stamp_ns)
    msg.radiation_type = Range.ULTRASOUND
    msg.field_of_view = float(reading.field_of_view_rad)
    msg.min_range = float(reading.min_range_m)
    msg.max_range = float(reading.max_range_m)
    msg.range = float(reading.range_m) if reading.detected else math.inf
    return msg
