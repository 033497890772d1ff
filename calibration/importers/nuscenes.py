"""nuScenes calibrated_sensor records -> Rig.

Reads the devkit tables directly (``<dataroot>/<version>/*.json``; no devkit needed):
``scene`` -> ``sample`` (``scene_token``) -> ``sample_data`` (``sample_token``) ->
``calibrated_sensor`` -> ``sensor``, so a rig holds the calibration of one scene's vehicle.

Naming (the convention of ``config/rigs/default.yaml``, relied on by the nuScenes bag
converter): channel ``LIDAR_TOP`` -> id/frame ``lidar_top``, topic ``/sensing/lidar/top/points``;
``CAM_FRONT_LEFT`` -> ``cam_front_left``, ``/sensing/camera/front_left/image/compressed`` +
``/sensing/camera/front_left/camera_info``; ``RADAR_BACK_LEFT`` -> ``radar_back_left``,
``/sensing/radar/back_left/points``. Rates: lidar 20 Hz (sweeps), cameras 12 Hz, radars 13 Hz.
Cameras: the published images are undistorted (distortion "none"), 1600x900 unless the
sample_data rows say otherwise. Extrinsic = calibrated_sensor translation + rotation
[w, x, y, z]: sensor -> ego (``base_link``: rear-axle centre on the ground, x forward).
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from calibration.errors import CalibrationFileError
from calibration.rig import Rig, rig_from_dict

#: nuScenes camera image size (all six cameras).
NUSCENES_IMAGE_SIZE = (1600, 900)
RATES_HZ = {"lidar": 20.0, "camera": 12.0, "radar": 13.0}
_PREFIX = {"lidar": "LIDAR_", "camera": "CAM_", "radar": "RADAR_"}
#: Sensor order of the rig: lidar, then the cameras clockwise from the front, then radars.
_ORDER = (
    "LIDAR_TOP",
    "CAM_FRONT",
    "CAM_FRONT_RIGHT",
    "CAM_BACK_RIGHT",
    "CAM_BACK",
    "CAM_BACK_LEFT",
    "CAM_FRONT_LEFT",
    "RADAR_FRONT",
    "RADAR_FRONT_LEFT",
    "RADAR_FRONT_RIGHT",
    "RADAR_BACK_LEFT",
    "RADAR_BACK_RIGHT",
)
LIDAR_SPEC: dict[str, Any] = {
    "fields": ["x", "y", "z", "intensity", "ring"],
    "beams": 32,
    "vertical_fov_deg": [-30.67, 10.67],
    "max_range_m": 80.0,
    "horizontal_resolution_deg": 0.33,
}
RADAR_SPEC: dict[str, Any] = {
    "fields": ["x", "y", "z", "vr", "vr_compensated", "rcs"],
    "max_points": 125,
    "max_range_m": 250.0,
    "horizontal_fov_deg": 120.0,
}


def rig_from_nuscenes(dataroot: str | Path, version: str = "v1.0-mini", *, scene: str | None = None) -> Rig:
    """Rig of one scene's vehicle from a nuScenes devkit folder.

    Args:
        dataroot: folder holding ``<version>/sensor.json`` etc.
        version: table folder name.
        scene: scene name (``scene-0061``) or token; default: the first scene of scene.json.

    Raises:
        CalibrationFileError: missing/invalid table, unknown scene, bad record (names the
            file and the field).
    """
    records, name, source = scene_calibrated_sensors(dataroot, version, scene=scene)
    return rig_from_calibrated_sensors(records, name=name, source=source)


def rig_from_calibrated_sensors(records: Sequence[Mapping[str, Any]], name: str = "nuscenes", source: str = "") -> Rig:
    """Rig from calibrated_sensor records joined with their sensor rows.

    Args:
        records: dicts with ``channel`` (e.g. "CAM_FRONT"), ``modality``
            ("camera" | "lidar" | "radar"), ``translation`` [x, y, z] metres, ``rotation``
            [w, x, y, z] (sensor -> ego), ``camera_intrinsic`` (3x3; [] for non-cameras), and
            optionally ``width``/``height`` (camera image size, default 1600x900).
        name: rig name.
        source: where the records came from, for error messages.
    """
    return rig_from_dict(rig_document(records, name=name, source=source), source=source)


def rig_document(records: Sequence[Mapping[str, Any]], name: str = "nuscenes", source: str = "") -> dict[str, Any]:
    """The rig YAML document (plain data, not yet validated) of ``rig_from_calibrated_sensors``."""
    entries: list[tuple[int, int, dict[str, Any]]] = []
    seen: dict[str, int] = {}
    for index, record in enumerate(records):
        entry = _sensor_entry(record, index, source)
        channel = str(record["channel"])
        if channel in seen:
            raise CalibrationFileError(
                f"channel {channel} appears in records {seen[channel]} and {index}; a rig takes one calibration "
                "per sensor (pick one scene)",
                source=source,
                field=f"records[{index}].channel",
            )
        seen[channel] = index
        rank = _ORDER.index(channel) if channel in _ORDER else len(_ORDER)
        entries.append((rank, index, entry))
    if not entries:
        raise CalibrationFileError("no calibrated_sensor records", source=source)
    sensors = [entry for _, _, entry in sorted(entries, key=lambda item: item[:2])]
    lidars = [s["id"] for s in sensors if s["modality"] == "lidar"]
    return {
        "rig": {"name": name, "base_frame": "base_link", "reference_sensor": lidars[0] if lidars else sensors[0]["id"]},
        "sensors": sensors,
    }


def _sensor_entry(record: Mapping[str, Any], index: int, source: str) -> dict[str, Any]:
    def error(field: str, message: str) -> CalibrationFileError:
        return CalibrationFileError(message, source=source, field=f"records[{index}].{field}")

    if not isinstance(record, Mapping):
        raise error("", f"expected a mapping, got {type(record).__name__}")
    for key in ("channel", "modality", "translation", "rotation"):
        if key not in record:
            raise error(key, f"is required but missing; keys: {sorted(record)}")
    channel, modality = record["channel"], record["modality"]
    if not isinstance(channel, str) or not channel or not channel.replace("_", "").isalnum():
        raise error("channel", f"expected a channel name like 'CAM_FRONT', got {channel!r}")
    if modality not in _PREFIX:
        raise error("modality", f"unknown modality {modality!r} for {channel}; expected one of {sorted(_PREFIX)}")
    short = channel[len(_PREFIX[modality]) :] if channel.startswith(_PREFIX[modality]) else channel
    short = short.lower()
    translation = _numbers(record["translation"], 3, error, "translation")
    rotation = _numbers(record["rotation"], 4, error, "rotation")
    if modality == "camera":
        sensor_id = f"cam_{short}"
        intrinsic = record.get("camera_intrinsic")
        if not isinstance(intrinsic, list) or len(intrinsic) != 3:
            raise error("camera_intrinsic", f"a camera needs a 3x3 matrix, got {intrinsic!r}")
        K = [_numbers(row, 3, error, "camera_intrinsic") for row in intrinsic]
        topics: dict[str, Any] = {
            "topic": f"/sensing/camera/{short}/image/compressed",
            "info_topic": f"/sensing/camera/{short}/camera_info",
            "compressed": True,
        }
        spec: dict[str, Any] = {
            "intrinsics": {
                "K": K,
                "width": record.get("width") or NUSCENES_IMAGE_SIZE[0],
                "height": record.get("height") or NUSCENES_IMAGE_SIZE[1],
                "distortion_model": "none",
                "D": [],
            }
        }
    else:
        sensor_id = f"{modality}_{short}"
        topics = {"topic": f"/sensing/{modality}/{short}/points"}
        spec = {modality: copy.deepcopy(LIDAR_SPEC if modality == "lidar" else RADAR_SPEC)}
    return {
        "id": sensor_id,
        "modality": modality,
        **topics,
        "frame_id": sensor_id,
        "rate_hz": RATES_HZ[modality],
        "extrinsic": {"translation": translation, "rotation_wxyz": rotation},
        **spec,
    }


def _numbers(value: Any, count: int, error: Callable[[str, str], CalibrationFileError], field: str) -> list[float]:
    if (
        not isinstance(value, list)
        or len(value) != count
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
    ):
        raise error(field, f"expected {count} finite numbers, got {value!r}")
    return [float(v) for v in value]


def scene_calibrated_sensors(
    dataroot: str | Path, version: str = "v1.0-mini", *, scene: str | None = None
) -> tuple[list[dict[str, Any]], str, str]:
    """calibrated_sensor records (joined with sensor and image size) used by one scene.

    Returns:
        (records for ``rig_from_calibrated_sensors``, rig name ``nuscenes_<vehicle>``,
        source description for error messages).
    """
    tables = Path(dataroot) / version
    if not tables.is_dir():
        raise CalibrationFileError(
            f"nuScenes table folder not found (dataroot {dataroot}, version {version})", source=str(tables)
        )
    scenes = _table(tables, "scene")
    if not scenes:
        raise CalibrationFileError("has no scenes", source=str(tables / "scene.json"))
    if scene is None:
        chosen = scenes[0]
    else:
        matches = [s for s in scenes if scene in (s.get("name"), s.get("token"))]
        if not matches:
            names = [s.get("name") for s in scenes]
            raise CalibrationFileError(
                f"no scene named {scene!r}; scenes: {names[:20]}{' ...' if len(names) > 20 else ''}",
                source=str(tables / "scene.json"),
                field="name",
            )
        chosen = matches[0]
    scene_token = chosen.get("token")
    samples = {s.get("token") for s in _table(tables, "sample") if s.get("scene_token") == scene_token}
    data = [d for d in _table(tables, "sample_data") if d.get("sample_token") in samples]
    source = f"{tables} (scene {chosen.get('name', scene_token)})"
    if not data:
        raise CalibrationFileError("the scene has no sample_data rows", source=source)
    calibrated = {c.get("token"): c for c in _table(tables, "calibrated_sensor")}
    sensors = {s.get("token"): s for s in _table(tables, "sensor")}
    records: dict[str, dict[str, Any]] = {}
    for row in data:
        token = row.get("calibrated_sensor_token")
        if token in records:
            continue
        if token not in calibrated:
            raise CalibrationFileError(
                f"sample_data {row.get('token')} refers to calibrated_sensor {token!r}, which is not in the table",
                source=str(tables / "sample_data.json"),
                field="calibrated_sensor_token",
            )
        record = calibrated[token]
        sensor = sensors.get(record.get("sensor_token"))
        if sensor is None:
            raise CalibrationFileError(
                f"calibrated_sensor {token} refers to sensor {record.get('sensor_token')!r}, which is not in the table",
                source=str(tables / "calibrated_sensor.json"),
                field="sensor_token",
            )
        records[str(token)] = {
            "channel": sensor.get("channel"),
            "modality": sensor.get("modality"),
            "translation": record.get("translation"),
            "rotation": record.get("rotation"),
            "camera_intrinsic": record.get("camera_intrinsic", []),
            "width": row.get("width") or None,
            "height": row.get("height") or None,
        }
    logs = {entry.get("token"): entry for entry in _table(tables, "log", required=False)}
    vehicle = logs.get(chosen.get("log_token"), {}).get("vehicle")
    return list(records.values()), f"nuscenes_{vehicle}" if vehicle else "nuscenes", source


def _table(tables: Path, name: str, *, required: bool = True) -> list[dict[str, Any]]:
    path = tables / f"{name}.json"
    if not path.is_file():
        if not required:
            return []
        raise CalibrationFileError(f"nuScenes table {name}.json is missing", source=str(path))
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CalibrationFileError(f"cannot read table: {exc}", source=str(path)) from exc
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise CalibrationFileError("expected a JSON list of records", source=str(path))
    return rows
