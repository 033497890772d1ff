"""Regenerate config/rigs/default.yaml from the real nuScenes calibration.

Usage: .venv/bin/python scripts/make_default_rig.py [DATAROOT] [--out PATH]
(DATAROOT default ../shared/realdata/nuscenes_official; PATH default config/rigs/default.yaml)

LIDAR_TOP and the cameras come from the nuScenes importer
(``calibration.importers.nuscenes``: calibrated_sensor records of the first scene, vehicle
n015; static mounting chain, no ego motion). This script only adds what a dataset does not
say: latencies, the lidar's per-point time field and the 10 Hz spin of the default rig, the
five radars (placed where a nuScenes-like car carries them; RADAR_FRONT at its real n015
position, with the dataset's rotation when the dataset has the record), 12 bumper
ultrasonics and odometry.
"""

from __future__ import annotations

import argparse
import copy
import math
from pathlib import Path
from typing import Any

import yaml

from calibration.importers.nuscenes import RADAR_SPEC, rig_document, scene_calibrated_sensors
from calibration.transforms import yaw_to_quaternion

ROOT = Path(__file__).resolve().parent.parent
# name: (translation, yaw degrees). RADAR_FRONT is the real n015 record (its rotation is taken
# from the dataset when it has the record).
RADARS = {
    "front": ([3.412, 0.0, 0.5], 0.2),
    "front_left": ([2.422, 0.8, 0.78], 88.0),
    "front_right": ([2.422, -0.8, 0.77], -89.0),
    "back_left": ([-0.562, 0.628, 0.53], 175.0),
    "back_right": ([-0.562, -0.618, 0.53], -176.0),
}
# 6 on each bumper: (x, |y|, yaw degrees of the left-side sensor); right side mirrors.
FRONT_BUMPER = [("side", 3.05, 0.82, 80.0), ("corner", 3.33, 0.62, 40.0), ("center", 3.43, 0.22, 8.0)]
REAR_BUMPER = [("side", -0.42, 0.82, 100.0), ("corner", -0.62, 0.62, 140.0), ("center", -0.68, 0.22, 172.0)]
LATENCY_MS = {"lidar": 20.0, "camera": 30.0, "radar": 15.0}


def _extrinsic(translation: Any, wxyz: Any) -> dict[str, list[float]]:
    return {
        "translation": [round(float(v), 9) for v in translation],
        "rotation_wxyz": [round(float(v), 12) for v in wxyz],
    }


def _with_latency(entry: dict[str, Any]) -> dict[str, Any]:
    """Entry with the default rig's key order: ..., rate_hz, latency_ms, extrinsic, ..."""
    out: dict[str, Any] = {}
    for key, value in entry.items():
        if key == "extrinsic":
            out["latency_ms"] = LATENCY_MS[entry["modality"]]
            value = _extrinsic(value["translation"], value["rotation_wxyz"])
        out[key] = value
    return out


def build(dataroot: Path) -> dict[str, Any]:
    """The default rig document (plain data for ``calibration.rig_from_dict``)."""
    records, _, source = scene_calibrated_sensors(dataroot)
    imported = rig_document(records, name="nuscenes_like_default", source=source)["sensors"]
    sensors: list[dict[str, Any]] = []
    radars: dict[str, dict[str, Any]] = {}
    for entry in imported:
        entry = _with_latency(entry)
        if entry["modality"] == "lidar":
            entry["rate_hz"] = 10.0
            entry["lidar"]["fields"] = [*entry["lidar"]["fields"], "time"]
        if entry["modality"] == "camera":
            entry["intrinsics"]["K"] = [[round(v, 9) for v in row] for row in entry["intrinsics"]["K"]]
        if entry["modality"] == "radar":
            radars[entry["id"]] = entry
        else:
            sensors.append(entry)
    front = radars.get("radar_front")
    for name, (translation, yaw) in RADARS.items():
        real = name == "front" and front is not None
        rotation = front["extrinsic"]["rotation_wxyz"] if real else yaw_to_quaternion(math.radians(yaw))
        sensors.append(
            {
                "id": f"radar_{name}",
                "modality": "radar",
                "topic": f"/sensing/radar/{name}/points",
                "frame_id": f"radar_{name}",
                "rate_hz": 13.0,
                "latency_ms": LATENCY_MS["radar"],
                "extrinsic": _extrinsic(translation, rotation),
                "radar": copy.deepcopy(RADAR_SPEC),
            }
        )
    for bumper, layout in (("front", FRONT_BUMPER), ("rear", REAR_BUMPER)):
        for side, sign in (("left", 1.0), ("right", -1.0)):
            for position, x, y, yaw in layout:
                name = f"{bumper}_{side}_{position}"
                sensors.append(
                    {
                        "id": f"us_{name}",
                        "modality": "ultrasonic",
                        "topic": f"/sensing/ultrasonic/{name}/range",
                        "frame_id": f"us_{name}",
                        "rate_hz": 20.0,
                        "latency_ms": 10.0,
                        "extrinsic": _extrinsic([x, sign * y, 0.5], yaw_to_quaternion(math.radians(sign * yaw))),
                        "ultrasonic": {"field_of_view_deg": 60.0, "min_range_m": 0.2, "max_range_m": 5.0},
                    }
                )
    sensors.append(
        {
            "id": "odometry",
            "modality": "odometry",
            "topic": "/localization/odometry",
            "frame_id": "odom",
            "child_frame_id": "base_link",
            "rate_hz": 50.0,
            "latency_ms": 5.0,
            "extrinsic": _extrinsic([0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]),
        }
    )
    return {
        "rig": {"name": "nuscenes_like_default", "base_frame": "base_link", "reference_sensor": "lidar_top"},
        "sensors": sensors,
    }


HEADER = """\
# Default rig: a nuScenes-like car (Renault Zoe, vehicle n015) with 6 cameras, 1 top lidar,
# 5 radars, 12 bumper ultrasonics and wheel/INS odometry. base_link = rear-axle centre on
# the ground plane, REP-103 axes (x forward, y left, z up).
# Camera and LIDAR_TOP mounting + intrinsics: the real nuScenes v1.0-mini calibrated_sensor
# records (static mounting chain, no ego motion). RADAR_FRONT: the real record; other radars
# and the ultrasonics: nuScenes-like placements. Regenerate with
#   .venv/bin/python scripts/make_default_rig.py ../shared/realdata/nuscenes_official
# extrinsic = sensor frame -> base_link; rotation_wxyz = [w, x, y, z]. Cameras use optical
# frames (x right, y down, z forward); the nuScenes lidar frame is x right, y forward, z up.
"""


def render(dataroot: Path) -> str:
    """The text of the default rig file."""
    return HEADER + yaml.safe_dump(build(dataroot), sort_keys=False, default_flow_style=None, width=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataroot", nargs="?", type=Path, default=ROOT.parent / "shared/realdata/nuscenes_official")
    parser.add_argument("--out", type=Path, default=ROOT / "config" / "rigs" / "default.yaml")
    args = parser.parse_args()
    args.out.write_text(render(args.dataroot), encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
