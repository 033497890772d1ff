"""Parse and validate a rig YAML document into frozen dataclasses.

The format (see ``config/rigs/default.yaml`` and README "Rig configuration")::

    rig: {name: my_car, base_frame: base_link, reference_sensor: lidar_top}
    sensors:
      - id: cam_front
        modality: camera            # camera | lidar | radar | ultrasonic | odometry
        topic: /sensing/camera/front/image/compressed
        frame_id: cam_front
        rate_hz: 12
        time_offset_ms: 0.0         # optional, stamp + offset = capture time
        latency_ms: 30              # optional, typical capture -> arrival delay
        extrinsic:                  # sensor -> base_link
          translation: [x, y, z]
          rotation_wxyz: [w, x, y, z]   # or  matrix: 4x4
        intrinsics: {K: 3x3, width, height, distortion_model, D}   # camera only

Every error is a ``RigConfigError`` naming the file, the sensor id and the field.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import yaml

from calibration.errors import CalibrationError, RigConfigError
from calibration.intrinsics import CameraIntrinsics
from calibration.sensors import (
    CameraSpec,
    LidarSpec,
    Modality,
    OdometrySpec,
    RadarSpec,
    Sensor,
    SensorSpec,
    UltrasonicSpec,
)
from calibration.transforms import make_transform, validate_transform

_ID_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
_TOPIC_PATTERN = re.compile(r"^/[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*$")
_COMMON_KEYS = {
    "id",
    "modality",
    "topic",
    "frame_id",
    "rate_hz",
    "time_offset_ms",
    "latency_ms",
    "extrinsic",
}
_MODALITY_KEYS: dict[Modality, set[str]] = {
    Modality.CAMERA: {"intrinsics", "info_topic", "compressed"},
    Modality.LIDAR: {"lidar"},
    Modality.RADAR: {"radar"},
    Modality.ULTRASONIC: {"ultrasonic"},
    Modality.ODOMETRY: {"child_frame_id"},
}
_LIDAR_REQUIRED_FIELDS = ("x", "y", "z")
_RADAR_REQUIRED_FIELDS = ("x", "y", "z", "vr", "rcs")

T = TypeVar("T")


class _Ctx:
    """Where a value came from: file and sensor id, for error messages."""

    def __init__(self, source: str, sensor: str = "") -> None:
        self.source = source
        self.sensor = sensor

    def error(self, field: str, message: str) -> RigConfigError:
        return RigConfigError(message, source=self.source, sensor=self.sensor, field=field)

    def mapping(self, value: Any, field: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.error(field, f"expected a mapping, got {type(value).__name__} {value!r}")
        return value

    def require(self, data: Mapping[str, Any], key: str, prefix: str = "") -> Any:
        if key not in data or data[key] is None:
            raise self.error(prefix + key, "is required but missing")
        return data[key]

    def no_unknown_keys(self, data: Mapping[str, Any], allowed: set[str], prefix: str = "") -> None:
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise self.error(
                prefix + str(unknown[0]),
                f"unknown key(s) {unknown}; allowed: {sorted(allowed)}",
            )

    def string(self, value: Any, field: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.error(field, f"expected a non-empty string, got {value!r}")
        return value

    def number(self, value: Any, field: str, *, positive: bool = False, minimum: float | None = None) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.error(field, f"expected a finite number, got {value!r}")
        if positive and value <= 0:
            raise self.error(field, f"must be positive, got {value!r}")
        if minimum is not None and value < minimum:
            raise self.error(field, f"must be >= {minimum}, got {value!r}")
        return float(value)

    def integer(self, value: Any, field: str, *, positive: bool = True) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(field, f"expected an integer, got {value!r}")
        if positive and value <= 0:
            raise self.error(field, f"must be a positive integer, got {value!r}")
        return value

    def floats(self, value: Any, field: str, shape: tuple[int, ...]) -> np.ndarray:
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise self.error(field, f"expected numbers of shape {shape}, got {value!r}") from exc
        if array.shape != shape:
            raise self.error(field, f"expected shape {shape}, got {array.shape}: {value!r}")
        if not np.all(np.isfinite(array)):
            raise self.error(field, f"has non-finite values: {value!r}")
        return array

    def field_names(self, value: Any, field: str, required: tuple[str, ...]) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.error(field, f"expected a list of field names, got {value!r}")
        if len(set(value)) != len(value):
            raise self.error(field, f"has duplicate names: {value!r}")
        missing = [name for name in required if name not in value]
        if missing:
            raise self.error(field, f"must include {list(required)}, missing {missing}")
        return tuple(value)

    def wrap(self, field: str, build: Callable[[], T]) -> T:
        """Run a constructor that raises CalibrationError and re-raise it with context."""
        try:
            return build()
        except RigConfigError:
            raise
        except CalibrationError as exc:
            raise self.error(field, str(exc)) from exc


def read_yaml(path: str | Path) -> Any:
    """Load a YAML file; missing file or syntax error -> RigConfigError naming the file."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise RigConfigError(f"cannot read rig file: {exc.strerror}", source=str(file)) from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RigConfigError(f"invalid YAML: {exc}", source=str(file)) from exc


def parse_extrinsic(ctx: _Ctx, value: Any) -> np.ndarray:
    """Parse ``extrinsic`` (translation + rotation_wxyz, or matrix) into a (4, 4) transform."""
    data = ctx.mapping(value, "extrinsic")
    ctx.no_unknown_keys(data, {"translation", "rotation_wxyz", "matrix"}, "extrinsic.")
    has_quaternion, has_matrix = "rotation_wxyz" in data, "matrix" in data
    if has_quaternion == has_matrix:
        raise ctx.error("extrinsic", "give exactly one of 'rotation_wxyz' (with 'translation') or 'matrix'")
    if has_matrix:
        if "translation" in data:
            raise ctx.error("extrinsic.translation", "must not be given together with 'matrix'")
        matrix = ctx.floats(data["matrix"], "extrinsic.matrix", (4, 4))
        return ctx.wrap("extrinsic.matrix", lambda: validate_transform(matrix))
    translation = ctx.floats(ctx.require(data, "translation", "extrinsic."), "extrinsic.translation", (3,))
    quaternion = ctx.floats(data["rotation_wxyz"], "extrinsic.rotation_wxyz", (4,))
    return ctx.wrap("extrinsic.rotation_wxyz", lambda: make_transform(translation, quaternion))


def _parse_camera(ctx: _Ctx, data: Mapping[str, Any]) -> CameraSpec:
    raw = ctx.mapping(ctx.require(data, "intrinsics"), "intrinsics")
    ctx.no_unknown_keys(raw, {"K", "width", "height", "distortion_model", "D"}, "intrinsics.")
    K = ctx.floats(ctx.require(raw, "K", "intrinsics."), "intrinsics.K", (3, 3))
    width = ctx.integer(ctx.require(raw, "width", "intrinsics."), "intrinsics.width")
    height = ctx.integer(ctx.require(raw, "height", "intrinsics."), "intrinsics.height")
    model = ctx.string(raw.get("distortion_model", "none"), "intrinsics.distortion_model")
    D_raw = raw.get("D", [])
    D = ctx.floats(D_raw, "intrinsics.D", (len(D_raw),)) if isinstance(D_raw, list) else None
    if D is None:
        raise ctx.error("intrinsics.D", f"expected a list of numbers, got {D_raw!r}")
    if K[0, 0] <= 0 or K[1, 1] <= 0:
        raise ctx.error("intrinsics.K", f"focal lengths must be positive, got fx={K[0, 0]}, fy={K[1, 1]}")
    intrinsics = ctx.wrap(
        "intrinsics", lambda: CameraIntrinsics(K=K, width=width, height=height, distortion_model=model, D=D)
    )
    info_topic = str(data.get("info_topic", ""))
    if info_topic and not _TOPIC_PATTERN.match(info_topic):
        raise ctx.error("info_topic", f"'{info_topic}' is not a valid absolute ROS topic name")
    compressed = data.get("compressed", True)
    if not isinstance(compressed, bool):
        raise ctx.error("compressed", f"expected true or false, got {compressed!r}")
    return CameraSpec(intrinsics=intrinsics, info_topic=info_topic, compressed=compressed)


def _parse_lidar(ctx: _Ctx, data: Mapping[str, Any]) -> LidarSpec:
    raw = ctx.mapping(ctx.require(data, "lidar"), "lidar")
    allowed = {"fields", "beams", "vertical_fov_deg", "max_range_m", "horizontal_resolution_deg"}
    ctx.no_unknown_keys(raw, allowed, "lidar.")
    fov = ctx.floats(ctx.require(raw, "vertical_fov_deg", "lidar."), "lidar.vertical_fov_deg", (2,))
    if not -90.0 <= fov[0] < fov[1] <= 90.0:
        raise ctx.error(
            "lidar.vertical_fov_deg", f"expected [low, high] with -90 <= low < high <= 90, got {fov.tolist()}"
        )
    return LidarSpec(
        fields=ctx.field_names(ctx.require(raw, "fields", "lidar."), "lidar.fields", _LIDAR_REQUIRED_FIELDS),
        beams=ctx.integer(ctx.require(raw, "beams", "lidar."), "lidar.beams"),
        vertical_fov_deg=(float(fov[0]), float(fov[1])),
        max_range_m=ctx.number(ctx.require(raw, "max_range_m", "lidar."), "lidar.max_range_m", positive=True),
        horizontal_resolution_deg=ctx.number(
            raw.get("horizontal_resolution_deg", 0.2), "lidar.horizontal_resolution_deg", positive=True
        ),
    )


def _parse_radar(ctx: _Ctx, data: Mapping[str, Any]) -> RadarSpec:
    raw = ctx.mapping(ctx.require(data, "radar"), "radar")
    ctx.no_unknown_keys(raw, {"fields", "max_points", "max_range_m", "horizontal_fov_deg"}, "radar.")
    fov = ctx.number(ctx.require(raw, "horizontal_fov_deg", "radar."), "radar.horizontal_fov_deg", positive=True)
    if fov > 360.0:
        raise ctx.error("radar.horizontal_fov_deg", f"must be at most 360, got {fov}")
    return RadarSpec(
        fields=ctx.field_names(ctx.require(raw, "fields", "radar."), "radar.fields", _RADAR_REQUIRED_FIELDS),
        max_points=ctx.integer(ctx.require(raw, "max_points", "radar."), "radar.max_points"),
        max_range_m=ctx.number(ctx.require(raw, "max_range_m", "radar."), "radar.max_range_m", positive=True),
        horizontal_fov_deg=fov,
    )


def _parse_ultrasonic(ctx: _Ctx, data: Mapping[str, Any]) -> UltrasonicSpec:
    raw = ctx.mapping(ctx.require(data, "ultrasonic"), "ultrasonic")
    ctx.no_unknown_keys(raw, {"field_of_view_deg", "min_range_m", "max_range_m"}, "ultrasonic.")
    fov = ctx.number(
        ctx.require(raw, "field_of_view_deg", "ultrasonic."), "ultrasonic.field_of_view_deg", positive=True
    )
    if fov >= 180.0:
        raise ctx.error("ultrasonic.field_of_view_deg", f"must be below 180, got {fov}")
    low = ctx.number(ctx.require(raw, "min_range_m", "ultrasonic."), "ultrasonic.min_range_m", minimum=0.0)
    high = ctx.number(ctx.require(raw, "max_range_m", "ultrasonic."), "ultrasonic.max_range_m", positive=True)
    if low >= high:
        raise ctx.error("ultrasonic.min_range_m", f"min_range_m {low} must be below max_range_m {high}")
    return UltrasonicSpec(field_of_view_rad=math.radians(fov), min_range_m=low, max_range_m=high)


def _parse_odometry(ctx: _Ctx, data: Mapping[str, Any]) -> OdometrySpec:
    return OdometrySpec(child_frame_id=ctx.string(data.get("child_frame_id", "base_link"), "child_frame_id"))


_SPEC_PARSERS: dict[Modality, Callable[[_Ctx, Mapping[str, Any]], SensorSpec]] = {
    Modality.CAMERA: _parse_camera,
    Modality.LIDAR: _parse_lidar,
    Modality.RADAR: _parse_radar,
    Modality.ULTRASONIC: _parse_ultrasonic,
    Modality.ODOMETRY: _parse_odometry,
}


def parse_sensor(value: Any, index: int, source: str) -> Sensor:
    """Parse entry ``index`` of the ``sensors`` list."""
    ctx = _Ctx(source, sensor=f"#{index}")
    data = ctx.mapping(value, f"sensors[{index}]")
    sensor_id = ctx.string(ctx.require(data, "id"), "id")
    if not _ID_PATTERN.match(sensor_id):
        raise ctx.error("id", f"'{sensor_id}' must be lower-case snake case ([a-z][a-z0-9_]*)")
    ctx.sensor = sensor_id
    modality_name = ctx.require(data, "modality")
    try:
        modality = Modality(modality_name)
    except ValueError:
        raise ctx.error(
            "modality", f"unknown modality {modality_name!r}; expected one of {[m.value for m in Modality]}"
        ) from None
    ctx.no_unknown_keys(data, _COMMON_KEYS | _MODALITY_KEYS[modality])
    topic = ctx.string(ctx.require(data, "topic"), "topic")
    if not _TOPIC_PATTERN.match(topic):
        raise ctx.error("topic", f"'{topic}' is not a valid absolute ROS topic name")
    return Sensor(
        id=sensor_id,
        modality=modality,
        topic=topic,
        frame_id=ctx.string(ctx.require(data, "frame_id"), "frame_id"),
        rate_hz=ctx.number(ctx.require(data, "rate_hz"), "rate_hz", positive=True),
        time_offset_ns=round(ctx.number(data.get("time_offset_ms", 0.0), "time_offset_ms") * 1e6),
        latency_ns=round(ctx.number(data.get("latency_ms", 0.0), "latency_ms", minimum=0.0) * 1e6),
        extrinsic=_read_only(parse_extrinsic(ctx, ctx.require(data, "extrinsic"))),
        spec=_SPEC_PARSERS[modality](ctx, data),
    )


def _read_only(array: np.ndarray) -> np.ndarray:
    array = np.array(array, dtype=np.float64)
    array.setflags(write=False)
    return array
