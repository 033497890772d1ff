"""SyncConfig: defaults from the rig, validation with errors naming the value and its source,
and the package importing without ROS."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
from sync_helpers import MS, record, small_config

from calibration import Modality, load_rig, rig_from_dict
from perception.errors import SyncError
from perception.sync import SensorSync, SyncConfig, Synchronizer
from perception.sync.config import DEFAULT_TOLERANCE_MARGIN_NS

SAMPLE_RIG = Path(__file__).resolve().parents[3] / "bags" / "sample_city_4s" / "rig.yaml"


@pytest.fixture(scope="module")
def rig():
    return load_rig(SAMPLE_RIG)


def test_from_rig_defaults(rig) -> None:
    config = SyncConfig.from_rig(rig)
    assert config.reference == "lidar_top"
    assert config.ignored == frozenset({"odometry"})
    assert len(config.sensors) == len(rig.sensors) - 2
    cam = config.sensor("cam_front")
    assert cam.modality is Modality.CAMERA
    # "latest": back a whole 12 Hz period, ahead only the jitter margin; no wait for a later image
    assert (cam.tolerance_ns, cam.ahead_ns) == (round(1e9 / 12) + DEFAULT_TOLERANCE_MARGIN_NS, 5 * MS)
    assert cam.deadline_ns == 30 * MS + round(1e9 / 12) + 10 * MS  # latency + period + margin
    assert cam.offset_ns == 0
    us = config.sensor("us_front_left_side")
    assert (us.tolerance_ns, us.ahead_ns, us.deadline_ns) == (55 * MS, 5 * MS, 10 * MS + 50 * MS + 10 * MS)
    nearest = SyncConfig.from_rig(rig, match="nearest").sensor("cam_front")
    half_period = round(1e9 / 12) // 2 + DEFAULT_TOLERANCE_MARGIN_NS  # half the 12 Hz period + margin
    assert (nearest.tolerance_ns, nearest.ahead_ns) == (half_period, half_period)
    assert nearest.deadline_ns == 30 * MS + round(1e9 / 12) + 10 * MS  # latency + period + margin
    assert config.clock == "data"
    assert config.source == str(SAMPLE_RIG)


def test_from_rig_options_and_time_offsets(rig) -> None:
    data = rig.to_dict()
    for entry in data["sensors"]:
        if entry["id"] == "cam_back":
            entry["time_offset_ms"] = 20.0  # its stamps are 20 ms early: capture = stamp + 20 ms
    shifted = rig_from_dict(data, source="shifted.yaml")
    config = SyncConfig.from_rig(
        shifted,
        sensors=["cam_back", "odometry"],
        clock="arrival",
        margin_ns=0,
        tolerance_margin_ns=3 * MS,
        match="nearest",
    )
    assert config.ids == ("lidar_top", "cam_back", "odometry")
    cam = config.sensor("cam_back")
    assert cam.offset_ns == -20 * MS
    assert cam.tolerance_ns == round(1e9 / 12) // 2 + 3 * MS
    assert cam.deadline_ns == 30 * MS + round(1e9 / 12)  # a negative offset adds no wait
    assert "cam_front" in config.ignored
    assert "odometry" not in config.ignored
    as_reference = SyncConfig.from_rig(shifted, reference="cam_back", sensors=["lidar_top"], match="nearest")
    assert as_reference.sensor("lidar_top").offset_ns == 20 * MS
    assert as_reference.sensor("lidar_top").deadline_ns == 20 * MS + 100 * MS + 20 * MS + 10 * MS


def test_with_sensor_replaces_one_sensor() -> None:
    config = small_config().with_sensor("cam", offset_ns=-7 * MS)
    assert config.sensor("cam").offset_ns == -7 * MS
    assert config.sensor("radar").offset_ns == 0
    with pytest.raises(SyncError, match=r"no sensor 'lens'.*'cam', 'radar'"):
        config.with_sensor("lens", offset_ns=1)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"tolerance_ns": -1}, r"sync sensor 'cam': tolerance_ns must be >= 0, got -1"),
        ({"deadline_ns": -5}, r"sync sensor 'cam': deadline_ns must be >= 0, got -5"),
        ({"queue_size": 0}, r"sync sensor 'cam': queue_size must be >= 1, got 0"),
        ({"offset_ns": 1.5}, r"sync sensor 'cam': offset_ns must be an int, got 1.5"),
        ({"modality": "sonar"}, r"sync sensor 'cam': modality must be one of .*got 'sonar'"),
        ({"sensor_id": ""}, r"sensor_id must be a non-empty string, got ''"),
    ],
)
def test_bad_sensor_settings_name_the_value(changes, message) -> None:
    good = SensorSync("cam", Modality.CAMERA, 0, 40 * MS, 150 * MS)
    with pytest.raises(SyncError, match=message):
        dataclasses.replace(good, **changes)


def test_bad_sensor_settings_name_the_rig_file() -> None:
    with pytest.raises(SyncError, match=r"sync sensor 'cam' \(from rigs/car.yaml\): tolerance_ns must be >= 0, got -3"):
        SensorSync("cam", Modality.CAMERA, 0, -3, 0, source="rigs/car.yaml")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"reference": ""}, r"reference must be a non-empty sensor id, got ''"),
        ({"reference": "cam"}, r"reference 'cam' is also listed in sensors"),
        ({"ignored": frozenset({"radar"})}, r"sensor id\(s\) \['radar'\] are both synchronized and ignored"),
        ({"clock": "wall"}, r"clock must be one of \['data', 'arrival'\], got 'wall'"),
        ({"max_pending": 0}, r"max_pending must be >= 1, got 0"),
        ({"jump_back_ns": 0}, r"jump_back_ns must be >= 1, got 0"),
    ],
)
def test_bad_config_names_the_value(changes, message) -> None:
    with pytest.raises(SyncError, match=message):
        dataclasses.replace(small_config(), **changes)


def test_duplicate_sensor_ids_are_rejected() -> None:
    cam = SensorSync("cam", Modality.CAMERA, 0, 40 * MS, 150 * MS)
    with pytest.raises(SyncError, match=r"sync config \(from a.yaml\): duplicate sensor id 'cam'"):
        SyncConfig("lidar", (cam, dataclasses.replace(cam, tolerance_ns=1)), source="a.yaml")


def test_from_rig_rejects_unknown_ids(rig) -> None:
    with pytest.raises(SyncError, match=rf"\(from {SAMPLE_RIG}\): reference 'lidar_roof' is not a sensor of rig"):
        SyncConfig.from_rig(rig, reference="lidar_roof")
    with pytest.raises(SyncError, match=r"sensors \['cam_top'\] are not in rig 'nuscenes_like_default'"):
        SyncConfig.from_rig(rig, sensors=["cam_front", "cam_top"])
    with pytest.raises(SyncError, match=r"margin_ns must be >= 0, got -1"):
        SyncConfig.from_rig(rig, margin_ns=-1)


def test_unknown_sensor_record_raises_and_ignored_is_counted() -> None:
    sync = Synchronizer(dataclasses.replace(small_config(), ignored=frozenset({"odometry"})))
    assert sync.push(record("odometry", 0)) == []
    assert sync.stats.ignored == 1
    with pytest.raises(SyncError, match=r"unknown sensor 'sonar'.*synchronized: \['lidar', 'cam', 'radar'\]"):
        sync.push(record("sonar", 0))
    with pytest.raises(SyncError, match="config must be a SyncConfig, got dict"):
        Synchronizer({"reference": "lidar"})  # type: ignore[arg-type]


def test_stats_as_dict_is_json() -> None:
    sync = Synchronizer(small_config())
    for item in (record("lidar", 0), record("cam", 3), record("radar", 2), record("cam", 3)):
        sync.push(item)
    data = json.loads(json.dumps(sync.stats.as_dict()))
    assert data["frames_complete"] == 1
    assert data["sensors"]["cam"]["dropped"]["duplicate"] == 1
    assert data["sensors"]["cam"]["staleness_max_ns"] == 3 * MS
    assert data["sensors"]["radar"]["staleness_median_ns"] == 2 * MS


def test_imports_without_ros() -> None:
    code = (
        "import sys; sys.modules['rclpy'] = None\n"
        "import perception.sync, perception.sync.synchronizer\n"
        "assert not any(name.startswith(('rclpy', 'sensor_msgs')) for name in sys.modules if sys.modules[name])\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[3])


def test_unknown_match_and_bad_lookahead_are_refused(rig) -> None:
    with pytest.raises(SyncError, match=r"match must be one of \['nearest', 'latest'\], got 'closest'"):
        SyncConfig.from_rig(rig, match="closest")
    with pytest.raises(SyncError, match="lookahead_ns must be >= 0, got -1"):
        SensorSync("cam", Modality.CAMERA, offset_ns=0, tolerance_ns=10, deadline_ns=10, lookahead_ns=-1)
