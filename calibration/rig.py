"""The vehicle's sensor rig: sensors, their mounting, and the frame graph between them.

Public API::

    rig = calibration.load_rig("config/rigs/default.yaml")
    T = rig.transform("lidar_top", "cam_front")      # (4, 4) float64, p_cam = T @ p_lidar
    rig.sensor("cam_front").camera.intrinsics.K      # (3, 3) float64
    uv, depth, valid = rig.project(points, src="lidar_top", camera="cam_front")
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from numpy.typing import NDArray

from calibration.camera_models import DEFAULT_MIN_DEPTH, project_camera
from calibration.errors import ProjectionError, RigConfigError
from calibration.rig_loader import parse_sensor, read_yaml
from calibration.sensors import (
    CameraSpec,
    LidarSpec,
    Modality,
    OdometrySpec,
    RadarSpec,
    Sensor,
    UltrasonicSpec,
)
from calibration.transforms import apply_transform, invert_transform, matrix_to_quaternion

BASE_LINK = "base_link"
PACKAGE = "fusion_runtime"


@dataclass(frozen=True, eq=False)
class Rig:
    """A validated sensor rig.

    Attributes:
        name: rig name.
        base_frame: vehicle body frame all extrinsics point to (REP-105 ``base_link``).
        reference_sensor: id of the sensor whose messages drive fusion frames.
        sensors: the sensors, in file order.
        source: file the rig was loaded from ("" when built in code).
    """

    name: str
    base_frame: str
    reference_sensor: str
    sensors: tuple[Sensor, ...]
    source: str = ""

    def __post_init__(self) -> None:
        _check_unique(self.sensors, self.source)
        if self.reference_sensor not in self.ids:
            raise RigConfigError(
                f"reference_sensor '{self.reference_sensor}' is not a sensor id; ids: {list(self.ids)}",
                source=self.source,
                field="rig.reference_sensor",
            )

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(sensor.id for sensor in self.sensors)

    def sensor(self, sensor_id: str) -> Sensor:
        """The sensor called ``sensor_id``; KeyError naming the known ids otherwise."""
        for sensor in self.sensors:
            if sensor.id == sensor_id:
                return sensor
        raise KeyError(f"rig '{self.name}' has no sensor '{sensor_id}'; ids: {list(self.ids)}")

    def of(self, modality: Modality | str) -> tuple[Sensor, ...]:
        """Sensors of one modality, in file order."""
        kind = Modality(modality)
        return tuple(sensor for sensor in self.sensors if sensor.modality is kind)

    @property
    def cameras(self) -> tuple[Sensor, ...]:
        return self.of(Modality.CAMERA)

    def to_base(self, frame: str) -> NDArray[np.float64]:
        """(4, 4) float64 transform ``frame`` -> base_link; ``frame`` is a sensor id or base_link."""
        if frame in (BASE_LINK, self.base_frame):
            return np.eye(4)
        return np.array(self.sensor(frame).extrinsic)

    def transform(self, src: str, dst: str) -> NDArray[np.float64]:
        """(4, 4) float64 transform from ``src`` to ``dst`` (sensor ids or "base_link").

        ``p_dst = T @ [p_src, 1]``; composes the static mounting chain through base_link.
        """
        result: NDArray[np.float64] = invert_transform(self.to_base(dst)) @ self.to_base(src)
        return result

    def project(
        self, points: Any, src: str, camera: str, *, min_depth: float = DEFAULT_MIN_DEPTH
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
        """Project points of sensor ``src`` into the image of ``camera``.

        Args:
            points: (N, 3) float [x, y, z] in the ``src`` frame (a sensor id or "base_link"),
                metres. Rows with NaN/inf are allowed and come back invalid.
            src: frame of ``points``.
            camera: id of a camera sensor.
            min_depth: smallest depth of a valid point, metres.

        Returns:
            uv: (N, 2) float64 pixels of ``camera`` (distortion applied; NaN behind it).
            depth: (N,) float64 depth along the camera's optical axis, metres.
            valid: (N,) bool: finite, depth >= min_depth, inside the image and inside the
                valid distortion region (see ``calibration.camera_models``).

        Raises:
            ProjectionError: unknown ``src``/``camera`` id, ``camera`` is not a camera, or
                ``points`` is not (N, 3).
        """
        for role, frame in (("src", src), ("camera", camera)):
            if frame not in self.ids and (role == "camera" or frame not in (BASE_LINK, self.base_frame)):
                raise ProjectionError(
                    f"rig '{self.name}' has no sensor '{frame}' ({role}); ids: {list(self.ids)}"
                    + (f" or '{BASE_LINK}'" if role == "src" else "")
                )
        target = self.sensor(camera)
        if not isinstance(target.spec, CameraSpec):
            cameras = [s.id for s in self.cameras]
            raise ProjectionError(
                f"sensor '{camera}' of rig '{self.name}' is a {target.modality.value}, not a camera; cameras: {cameras}"
            )
        try:
            array = np.asarray(points, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ProjectionError(f"points from '{src}' must be an (N, 3) array of numbers: {exc}") from exc
        if array.ndim != 2 or array.shape[1] != 3:
            raise ProjectionError(
                f"points from '{src}' must have shape (N, 3) [x, y, z], got {array.shape}"
                + (" (pass points[:, :3])" if array.ndim == 2 and array.shape[1] > 3 else "")
            )
        with np.errstate(invalid="ignore", over="ignore"):
            in_camera = apply_transform(self.transform(src, camera), array)
        return project_camera(in_camera, target.spec.intrinsics, min_depth=min_depth)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form that ``rig_from_dict`` reads back (used to write rig YAML files)."""
        return {
            "rig": {"name": self.name, "base_frame": self.base_frame, "reference_sensor": self.reference_sensor},
            "sensors": [_sensor_to_dict(sensor) for sensor in self.sensors],
        }

    def dump(self, path: str | Path) -> None:
        """Write the rig as YAML to ``path``."""
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False), encoding="utf-8")


def rig_from_dict(data: Any, source: str = "") -> Rig:
    """Validate a parsed rig document (the YAML's top-level mapping) into a ``Rig``."""
    if not isinstance(data, Mapping):
        raise RigConfigError(
            f"top level must be a mapping with 'rig' and 'sensors', got {type(data).__name__}", source=source
        )
    unknown = sorted(set(data) - {"rig", "sensors"})
    if unknown:
        raise RigConfigError(
            f"unknown top-level key(s) {unknown}; allowed: ['rig', 'sensors']", source=source, field=unknown[0]
        )
    header = data.get("rig") or {}
    if not isinstance(header, Mapping):
        raise RigConfigError(f"expected a mapping, got {header!r}", source=source, field="rig")
    extra = sorted(set(header) - {"name", "base_frame", "reference_sensor"})
    if extra:
        raise RigConfigError(f"unknown key(s) {extra}", source=source, field=f"rig.{extra[0]}")
    entries = data.get("sensors")
    if not isinstance(entries, list) or not entries:
        raise RigConfigError("must be a non-empty list of sensors", source=source, field="sensors")
    sensors = tuple(parse_sensor(entry, index, source) for index, entry in enumerate(entries))
    lidars = [s.id for s in sensors if s.modality is Modality.LIDAR]
    reference = header.get("reference_sensor") or (lidars[0] if lidars else sensors[0].id)
    return Rig(
        name=str(header.get("name", Path(source).stem if source else "rig")),
        base_frame=str(header.get("base_frame", BASE_LINK)),
        reference_sensor=str(reference),
        sensors=sensors,
        source=source,
    )


def load_rig(path: str | Path) -> Rig:
    """Load and validate a rig YAML file. Errors name the file, sensor id and field."""
    return rig_from_dict(read_yaml(path), source=str(path))


def default_rig_path() -> Path:
    """Path of the shipped ``config/rigs/default.yaml`` (source tree or installed share/)."""
    candidates = [
        Path(__file__).resolve().parent.parent / "config" / "rigs" / "default.yaml",
        Path(sys.prefix) / "share" / PACKAGE / "config" / "rigs" / "default.yaml",
    ]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise RigConfigError(f"default rig not found; looked in {[str(c) for c in candidates]}")


def _check_unique(sensors: Iterable[Sensor], source: str) -> None:
    seen: dict[str, dict[str, str]] = {"id": {}, "topic": {}, "frame_id": {}}
    odometry = [s.id for s in sensors if s.modality is Modality.ODOMETRY]
    if len(odometry) > 1:
        raise RigConfigError(
            f"at most one odometry sensor is allowed, got {odometry}",
            source=source,
            sensor=odometry[1],
            field="modality",
        )
    for sensor in sensors:
        # (namespace, field, value): a camera's info_topic shares the topic namespace.
        keys = [("id", "id", sensor.id), ("topic", "topic", sensor.topic), ("frame_id", "frame_id", sensor.frame_id)]
        if sensor.modality is Modality.CAMERA and sensor.camera.info_topic:
            keys.append(("topic", "info_topic", sensor.camera.info_topic))
        for namespace, field, value in keys:
            if value in seen[namespace]:
                raise RigConfigError(
                    f"duplicate {namespace} '{value}' (also used by sensor '{seen[namespace][value]}')",
                    source=source,
                    sensor=sensor.id,
                    field=field,
                )
            seen[namespace][value] = sensor.id


def _sensor_to_dict(sensor: Sensor) -> dict[str, Any]:
    extrinsic = np.asarray(sensor.extrinsic)
    out: dict[str, Any] = {
        "id": sensor.id,
        "modality": sensor.modality.value,
        "topic": sensor.topic,
        "frame_id": sensor.frame_id,
        "rate_hz": sensor.rate_hz,
        "time_offset_ms": sensor.time_offset_ns / 1e6,
        "latency_ms": sensor.latency_ns / 1e6,
        "extrinsic": {
            "translation": [float(v) for v in extrinsic[:3, 3]],
            "rotation_wxyz": [float(v) for v in matrix_to_quaternion(extrinsic[:3, :3])],
        },
    }
    spec = sensor.spec
    if isinstance(spec, CameraSpec):
        intr = spec.intrinsics
        out["intrinsics"] = {
            "K": intr.K.tolist(),
            "width": intr.width,
            "height": intr.height,
            "distortion_model": intr.distortion_model,
            "D": intr.D.tolist(),
        }
        out["info_topic"] = spec.info_topic
        out["compressed"] = spec.compressed
    elif isinstance(spec, LidarSpec):
        out["lidar"] = {
            "fields": list(spec.fields),
            "beams": spec.beams,
            "vertical_fov_deg": list(spec.vertical_fov_deg),
            "max_range_m": spec.max_range_m,
            "horizontal_resolution_deg": spec.horizontal_resolution_deg,
        }
    elif isinstance(spec, RadarSpec):
        out["radar"] = {
            "fields": list(spec.fields),
            "max_points": spec.max_points,
            "max_range_m": spec.max_range_m,
            "horizontal_fov_deg": spec.horizontal_fov_deg,
        }
    elif isinstance(spec, UltrasonicSpec):
        out["ultrasonic"] = {
            "field_of_view_deg": math.degrees(spec.field_of_view_rad),
            "min_range_m": spec.min_range_m,
            "max_range_m": spec.max_range_m,
        }
    elif isinstance(spec, OdometrySpec):
        out["child_frame_id"] = spec.child_frame_id
    return out
