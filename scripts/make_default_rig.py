"""Regenerate config/rigs/default.yaml from the real nuScenes calibration.

Usage: .venv/bin/python scripts/make_default_rig.py [../shared/realdata/nuscenes_official]

Cameras and LIDAR_TOP take their mounting and intrinsics from the nuScenes v1.0-mini
calibrated_sensor records of vehicle n015 (static mounting chain, no ego motion). RADAR_FRONT
takes the real record too; the four other radars and the 12 ultrasonics are placed where a
nuScenes-like car (Renault Zoe, base_link at the rear axle) carries them.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import yaml

from calibration.transforms import yaw_to_quaternion

ROOT = Path(__file__).resolve().parent.parent
CAMERAS = {  # nuScenes channel -> our short name
    "CAM_FRONT": "front",
    "CAM_FRONT_RIGHT": "front_right",
    "CAM_BACK_RIGHT": "back_right",
    "CAM_BACK": "back",
    "CAM_BACK_LEFT": "back_left",
    "CAM_FRONT_LEFT": "front_left",
}
# name: (translation, yaw degrees). RADAR_FRONT is the real n015 record.
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


def _records(dataroot: Path) -> dict[str, dict]:
    tables = dataroot / "v1.0-mini"
    sensors = {s["token"]: s["channel"] for s in json.loads((tables / "sensor.json").read_text())}
    return {sensors[c["sensor_token"]]: c for c in json.loads((tables / "calibrated_sensor.json").read_text())}


def _extrinsic(translation: list[float], wxyz: list[float] | np.ndarray) -> dict:
    return {
        "translation": [round(float(v), 9) for v in translation],
        "rotation_wxyz": [round(float(v), 12) for v in wxyz],
    }


def build(dataroot: Path) -> dict:
    records = _records(dataroot)
    sensors: list[dict] = []
    lidar = records["LIDAR_TOP"]
    sensors.append(
        {
            "id": "lidar_top",
            "modality": "lidar",
            "topic": "/sensing/lidar/top/points",
            "frame_id": "lidar_top",
            "rate_hz": 10.0,
            "latency_ms": 20.0,
            "extrinsic": _extrinsic(lidar["translation"], lidar["rotation"]),
            "lidar": {
                "fields": ["x", "y", "z", "intensity", "ring", "time"],
                "beams": 32,
                "vertical_fov_deg": [-30.67, 10.67],
                "max_range_m": 80.0,
                "horizontal_resolution_deg": 0.33,
            },
        }
    )
    for channel, name in CAMERAS.items():
        record = records[channel]
        sensors.append(
            {
                "id": f"cam_{name}",
                "modality": "camera",
                "topic": f"/sensing/camera/{name}/image/compressed",
                "info_topic": f"/sensing/camera/{name}/camera_info",
                "compressed": True,
                "frame_id": f"cam_{name}",
                "rate_hz": 12.0,
                "latency_ms": 30.0,
                "extrinsic": _extrinsic(record["translation"], record["rotation"]),
                "intrinsics": {
                    "K": [[round(v, 9) for v in row] for row in record["camera_intrinsic"]],
                    "width": 1600,
                    "height": 900,
                    "distortion_model": "none",
                    "D": [],
                },
            }
        )
    front = records.get("RADAR_FRONT")
    for name, (translation, yaw) in RADARS.items():
        rotation = front["rotation"] if name == "front" and front else yaw_to_quaternion(math.radians(yaw))
        sensors.append(
            {
                "id": f"radar_{name}",
                "modality": "radar",
                "topic": f"/sensing/radar/{name}/points",
                "frame_id": f"radar_{name}",
                "rate_hz": 13.0,
                "latency_ms": 15.0,
                "extrinsic": _extrinsic(translation, rotation),
                "radar": {
                    "fields": ["x", "y", "z", "vr", "vr_compensated", "rcs"],
                    "max_points": 125,
                    "max_range_m": 250.0,
                    "horizontal_fov_deg": 120.0,
                },
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


def main() -> None:
    dataroot = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT.parent / "shared/realdata/nuscenes_official")
    text = HEADER + yaml.safe_dump(build(dataroot), sort_keys=False, default_flow_style=None, width=100)
    out = ROOT / "config" / "rigs" / "default.yaml"
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
