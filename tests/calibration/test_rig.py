"""Rig YAML: loading, the frame graph, and every validation error naming file/sensor/field."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from calibration import Modality, RigConfigError, default_rig_path, load_rig, rig_from_dict
from calibration.transforms import invert_transform

DEFAULT = default_rig_path()


def _doc() -> dict[str, Any]:
    return yaml.safe_load(DEFAULT.read_text())


def _write(tmp_path: Path, doc: Any) -> Path:
    path = tmp_path / "rig.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _sensor(doc: dict[str, Any], sensor_id: str) -> dict[str, Any]:
    return next(s for s in doc["sensors"] if s["id"] == sensor_id)


def test_default_rig_has_the_promised_sensors() -> None:
    rig = load_rig(DEFAULT)
    assert len(rig.of(Modality.CAMERA)) == 6
    assert len(rig.of(Modality.LIDAR)) == 1
    assert len(rig.of(Modality.RADAR)) == 5
    assert len(rig.of(Modality.ULTRASONIC)) == 12
    assert len(rig.of(Modality.ODOMETRY)) == 1
    assert rig.reference_sensor == "lidar_top"
    for us in rig.of(Modality.ULTRASONIC):
        assert us.ultrasonic.min_range_m == pytest.approx(0.2)
        assert us.ultrasonic.max_range_m == pytest.approx(5.0)
        x = us.extrinsic[0, 3]
        assert x > 2.9 or x < -0.3, f"{us.id} is not on a bumper (x={x})"


def test_transform_graph_is_consistent() -> None:
    rig = load_rig(DEFAULT)
    T_cam_lidar = rig.transform("lidar_top", "cam_front")
    T_lidar_cam = rig.transform("cam_front", "lidar_top")
    np.testing.assert_allclose(T_cam_lidar @ T_lidar_cam, np.eye(4), atol=1e-12)
    np.testing.assert_allclose(rig.transform("lidar_top", "base_link"), rig.sensor("lidar_top").extrinsic)
    np.testing.assert_allclose(rig.transform("base_link", "base_link"), np.eye(4))
    # chain through a third sensor gives the same transform
    via = rig.transform("radar_front", "cam_front") @ rig.transform("lidar_top", "radar_front")
    np.testing.assert_allclose(via, T_cam_lidar, atol=1e-12)
    # the front camera looks forward: its optical z axis is base_link +x
    R = rig.transform("cam_front", "base_link")[:3, :3]
    assert R[:, 2] @ np.array([1.0, 0.0, 0.0]) > 0.99


def test_default_rig_matches_real_nuscenes_calibration(realdata: Path) -> None:
    calib = json.loads((realdata / "nuscenes_scene0061" / "calib.json").read_text())
    rig = load_rig(DEFAULT)
    np.testing.assert_allclose(rig.sensor("lidar_top").extrinsic, calib["lidar2ego"], atol=1e-6)
    names = {
        "CAM_FRONT": "cam_front",
        "CAM_FRONT_RIGHT": "cam_front_right",
        "CAM_BACK_RIGHT": "cam_back_right",
        "CAM_BACK": "cam_back",
        "CAM_BACK_LEFT": "cam_back_left",
        "CAM_FRONT_LEFT": "cam_front_left",
    }
    for channel, camera in calib["cameras"].items():
        sensor = rig.sensor(names[channel])
        np.testing.assert_allclose(sensor.extrinsic, camera["cam2ego"], atol=1e-6)
        np.testing.assert_allclose(sensor.camera.intrinsics.K, camera["K"], atol=1e-6)
        assert (sensor.camera.intrinsics.width, sensor.camera.intrinsics.height) == tuple(camera["image_size_wh"])
        np.testing.assert_allclose(
            rig.transform("lidar_top", names[channel]), camera["lidar2cam_static_no_ego_motion"], atol=1e-6
        )


def test_dump_and_reload_round_trip(tmp_path: Path) -> None:
    rig = load_rig(DEFAULT)
    out = tmp_path / "copy.yaml"
    rig.dump(out)
    again = load_rig(out)
    assert again.ids == rig.ids
    for a, b in zip(rig.sensors, again.sensors, strict=True):
        np.testing.assert_allclose(a.extrinsic, b.extrinsic, atol=1e-12)
        assert a.spec == b.spec
        assert (a.topic, a.frame_id, a.rate_hz, a.latency_ns, a.time_offset_ns) == (
            b.topic,
            b.frame_id,
            b.rate_hz,
            b.latency_ns,
            b.time_offset_ns,
        )


def test_matrix_extrinsic_is_accepted(tmp_path: Path) -> None:
    doc = _doc()
    lidar = _sensor(doc, "lidar_top")
    matrix = load_rig(DEFAULT).sensor("lidar_top").extrinsic.tolist()
    lidar["extrinsic"] = {"matrix": matrix}
    rig = load_rig(_write(tmp_path, doc))
    np.testing.assert_allclose(rig.sensor("lidar_top").extrinsic, matrix)
    np.testing.assert_allclose(invert_transform(matrix) @ np.array(matrix), np.eye(4), atol=1e-12)


def _mutate(path: str, value: Any, sensor_id: str = "cam_front"):
    def apply(doc: dict[str, Any]) -> None:
        target = _sensor(doc, sensor_id)
        *parents, leaf = path.split(".")
        for key in parents:
            target = target[key]
        if value is _DELETE:
            del target[leaf]
        else:
            target[leaf] = value

    return apply


_DELETE = object()
_SKEW = [[1, 0.1, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]


@pytest.mark.parametrize(
    ("mutate", "sensor", "field", "words"),
    [
        (
            _mutate("extrinsic", {"translation": [0, 0, 0], "matrix": _SKEW}),
            "cam_front",
            "extrinsic.translation",
            "together",
        ),
        (_mutate("extrinsic", {"matrix": _SKEW}), "cam_front", "extrinsic.matrix", "not orthonormal"),
        (_mutate("extrinsic.rotation_wxyz", [0.9, 0.1, 0.0, 0.0]), "cam_front", "extrinsic.rotation_wxyz", "norm"),
        (_mutate("extrinsic.translation", [0, 0]), "cam_front", "extrinsic.translation", "shape"),
        (_mutate("extrinsic.translation", [0, float("nan"), 0]), "cam_front", "extrinsic.translation", "non-finite"),
        (
            _mutate("intrinsics.K", [[-1266.4, 0, 816], [0, 1266.4, 491], [0, 0, 1]]),
            "cam_front",
            "intrinsics.K",
            "focal",
        ),
        (_mutate("intrinsics", _DELETE), "cam_front", "intrinsics", "missing"),
        (_mutate("intrinsics.distortion_model", "kannala"), "cam_front", "intrinsics", "kannala"),
        (_mutate("intrinsics.D", [0.1, 0.2]), "cam_front", "intrinsics", "coefficients"),
        (_mutate("modality", "sonar"), "cam_front", "modality", "sonar"),
        (_mutate("topic", "/sensing/lidar/top/points"), "cam_front", "topic", "duplicate"),
        (_mutate("topic", "no_slash"), "cam_front", "topic", "no_slash"),
        (_mutate("rate_hz", 0), "cam_front", "rate_hz", "positive"),
        (_mutate("rate_hz", "fast"), "cam_front", "rate_hz", "fast"),
        (_mutate("extra_key", 1), "cam_front", "extra_key", "unknown"),
        (_mutate("lidar.fields", ["x", "y", "intensity"], "lidar_top"), "lidar_top", "lidar.fields", "missing ['z']"),
        (_mutate("radar.fields", ["x", "y", "z", "rcs"], "radar_front"), "radar_front", "radar.fields", "vr"),
        (
            _mutate("ultrasonic.min_range_m", 6.0, "us_front_left_side"),
            "us_front_left_side",
            "ultrasonic.min_range_m",
            "below",
        ),
        (
            _mutate("ultrasonic.field_of_view_deg", 200, "us_front_left_side"),
            "us_front_left_side",
            "ultrasonic.field_of_view_deg",
            "180",
        ),
    ],
)
def test_invalid_sensor_fields_are_named(tmp_path: Path, mutate, sensor: str, field: str, words: str) -> None:
    doc = _doc()
    mutate(doc)
    path = _write(tmp_path, doc)
    with pytest.raises(RigConfigError) as info:
        load_rig(path)
    message = str(info.value)
    assert str(path) in message
    assert f"sensor '{sensor}'" in message
    assert f"field '{field}'" in message
    assert words in message
    assert info.value.sensor == sensor
    assert info.value.field == field


def test_duplicate_ids_are_reported(tmp_path: Path) -> None:
    doc = _doc()
    twin = copy.deepcopy(_sensor(doc, "radar_front"))
    twin["topic"] = "/sensing/radar/twin/points"
    twin["frame_id"] = "radar_twin"
    doc["sensors"].append(twin)
    with pytest.raises(RigConfigError, match="duplicate id 'radar_front'") as info:
        load_rig(_write(tmp_path, doc))
    assert info.value.field == "id"


def test_shared_info_topic_is_a_duplicate(tmp_path: Path) -> None:
    doc = _doc()
    _sensor(doc, "cam_back")["info_topic"] = _sensor(doc, "cam_front")["info_topic"]
    with pytest.raises(RigConfigError, match="also used by sensor 'cam_front'") as info:
        load_rig(_write(tmp_path, doc))
    assert (info.value.sensor, info.value.field) == ("cam_back", "info_topic")


def test_unknown_reference_sensor(tmp_path: Path) -> None:
    doc = _doc()
    doc["rig"]["reference_sensor"] = "lidar_roof"
    with pytest.raises(RigConfigError, match="lidar_roof"):
        load_rig(_write(tmp_path, doc))


@pytest.mark.parametrize("text", ["sensors: [", "just a string", "sensors: []", "rig: {}\nsensors: [1]"])
def test_broken_documents(tmp_path: Path, text: str) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    with pytest.raises(RigConfigError) as info:
        load_rig(path)
    assert str(path) in str(info.value)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(RigConfigError, match=r"nope\.yaml"):
        load_rig(tmp_path / "nope.yaml")


def test_rig_from_dict_without_file() -> None:
    rig = rig_from_dict({"sensors": [_doc()["sensors"][0]]})
    assert rig.reference_sensor == "lidar_top"
    with pytest.raises(KeyError, match="cam_front"):
        rig.sensor("cam_front")
    with pytest.raises(TypeError, match="lidar"):
        _ = rig.sensor("lidar_top").camera
