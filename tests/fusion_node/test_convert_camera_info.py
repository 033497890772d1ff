"""CameraInfo <-> CameraIntrinsics: distortion models, R/P layout, errors."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message
from rosbags.typesys import Stores, get_typestore
from sensor_msgs.msg import CameraInfo, RegionOfInterest

from calibration.intrinsics import CameraIntrinsics
from fusion_node.convert import camera_info_to_intrinsics, intrinsics_to_camera_info
from fusion_node.errors import (
    MalformedMessageError,
    UnsupportedEncodingError,
    UnsupportedMessageError,
)

TOPIC = "/sensing/camera/front/camera_info"
TYPESTORE = get_typestore(Stores.ROS2_KILTED)
K = np.array([[800.0, 0.5, 640.25], [0.0, 810.0, 360.75], [0.0, 0.0, 1.0]])


def info(model: str, d: list[float], **changes: Any) -> CameraInfo:
    msg = CameraInfo()
    msg.height, msg.width = 720, 1280
    msg.distortion_model = model
    msg.d = d
    msg.k = K.reshape(9)
    for key, value in changes.items():
        setattr(msg, key, value)
    return msg


@pytest.mark.parametrize(
    ("model", "D", "ros_model"),
    [
        ("none", [], "plumb_bob"),
        ("plumb_bob", [-0.3, 0.1, 0.001, -0.002, 0.05], "plumb_bob"),
        ("plumb_bob", [-0.3, 0.1, 0.001, -0.002], "plumb_bob"),
        ("plumb_bob", [-0.3, 0.1, 0.001, -0.002, 0.05, 0.01, -0.02, 0.003], "rational_polynomial"),
        ("equidistant", [0.01, -0.02, 0.003, -0.0004], "equidistant"),
        ("equidistant", [0.0, 0.0, 0.0, 0.0], "equidistant"),
    ],
)
def test_round_trip_each_distortion_model(model: str, D: list[float], ros_model: str) -> None:
    intrinsics = CameraIntrinsics(K=K, width=1280, height=720, distortion_model=model, D=D)
    msg = intrinsics_to_camera_info(intrinsics, frame_id="camera_optical", stamp_ns=2_000_000_007)
    assert msg.distortion_model == ros_model
    assert msg.header.frame_id == "camera_optical"
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (2, 7)
    np.testing.assert_array_equal(np.asarray(msg.r).reshape(3, 3), np.eye(3))
    np.testing.assert_array_equal(np.asarray(msg.p).reshape(3, 4)[:, :3], K)
    np.testing.assert_array_equal(np.asarray(msg.p).reshape(3, 4)[:, 3], 0.0)
    back = camera_info_to_intrinsics(msg, source=TOPIC)
    assert back == intrinsics
    raw = serialize_message(msg)
    assert camera_info_to_intrinsics(deserialize_message(raw, CameraInfo)) == intrinsics
    rosbags_msg = TYPESTORE.deserialize_cdr(raw, "sensor_msgs/msg/CameraInfo")
    assert camera_info_to_intrinsics(rosbags_msg) == intrinsics


@pytest.mark.parametrize(
    ("model", "d", "expected_model", "expected_d"),
    [
        ("plumb_bob", [0.0] * 5, "none", []),
        ("plumb_bob", [], "none", []),
        ("rational_polynomial", [0.0] * 8, "none", []),
        ("", [], "none", []),
        ("", [0.0] * 5, "none", []),
        ("fisheye", [0.1, 0.2, 0.3, 0.4], "equidistant", [0.1, 0.2, 0.3, 0.4]),
        ("rational_polynomial", [1.0, 2, 3, 4, 5, 6, 7, 8], "plumb_bob", [1.0, 2, 3, 4, 5, 6, 7, 8]),
    ],
)
def test_distortion_model_mapping(model: str, d: list[float], expected_model: str, expected_d: list[float]) -> None:
    out = camera_info_to_intrinsics(info(model, d), source=TOPIC)
    assert out.distortion_model == expected_model
    np.testing.assert_array_equal(out.D, expected_d)
    np.testing.assert_array_equal(out.K, K)
    assert (out.width, out.height) == (1280, 720)


def test_full_frame_roi_and_unit_binning_are_accepted() -> None:
    roi = RegionOfInterest(x_offset=0, y_offset=0, width=1280, height=720)
    out = camera_info_to_intrinsics(info("plumb_bob", [0.1] * 5, roi=roi, binning_x=1))
    assert out.distortion_model == "plumb_bob"


@pytest.mark.parametrize(
    ("msg", "error", "needles"),
    [
        pytest.param(
            info("kannala_brandt", [0.0] * 4),
            UnsupportedEncodingError,
            ["'kannala_brandt'", "equidistant"],
            id="unknown-model",
        ),
        pytest.param(
            info("", [0.1, 0, 0, 0, 0]),
            MalformedMessageError,
            ["distortion_model is empty", "0.1"],
            id="empty-model-nonzero-d",
        ),
        pytest.param(
            info("rational_polynomial", [0.1] * 5), MalformedMessageError, ["8 coefficients", "got 5"], id="rational-5"
        ),
        pytest.param(
            info("equidistant", [0.1] * 5), MalformedMessageError, ["'equidistant'", "got 5"], id="equidistant-5"
        ),
        pytest.param(
            info("plumb_bob", [0.0] * 5, k=np.zeros(9)), MalformedMessageError, ["fx=0.0"], id="uncalibrated-zero-k"
        ),
        pytest.param(info("plumb_bob", [0.0] * 5, width=0), MalformedMessageError, ["width", "0"], id="width-0"),
        pytest.param(info("plumb_bob", [float("nan")] * 5), MalformedMessageError, ["nan"], id="nan-d"),
        pytest.param(
            info("plumb_bob", [0.0] * 5, binning_x=2), UnsupportedMessageError, ["binning_x = 2"], id="binning"
        ),
        pytest.param(
            info("plumb_bob", [0.0] * 5, roi=RegionOfInterest(x_offset=10, y_offset=0, width=640, height=480)),
            UnsupportedMessageError,
            ["roi", "'x_offset': 10"],
            id="roi",
        ),
    ],
)
def test_invalid_camera_info(msg: Any, error: type[Exception], needles: list[str]) -> None:
    with pytest.raises(error) as info_:
        camera_info_to_intrinsics(msg, source=TOPIC)
    text = str(info_.value)
    assert text.startswith(f"CameraInfo on {TOPIC}: ")
    for needle in needles:
        assert needle in text, (needle, text)


def test_k_with_wrong_length_is_malformed() -> None:
    duck = SimpleNamespace(
        height=720,
        width=1280,
        distortion_model="plumb_bob",
        d=[0.0] * 5,
        k=[800.0, 0.0, 640.0, 0.0, 800.0, 360.0, 0.0, 0.0],
    )
    with pytest.raises(MalformedMessageError, match="k must have 9 values, got 8"):
        camera_info_to_intrinsics(duck, source=TOPIC)


# --------------------------------------------------------------------------- real data


def test_real_calibrations_round_trip(realdata: Path) -> None:
    nuscenes = json.loads((realdata / "nuscenes_scene0061" / "calib.json").read_text())
    front = nuscenes["cameras"]["CAM_FRONT"]
    pjlab = json.loads((realdata / "pjlab_opencalib" / "calib.json").read_text())["lidar2camera"]
    cases = [
        CameraIntrinsics(K=np.array(front["K"]), width=front["image_size_wh"][0], height=front["image_size_wh"][1]),
        CameraIntrinsics(
            K=np.array(pjlab["K"]),
            width=pjlab["image_size_wh"][0],
            height=pjlab["image_size_wh"][1],
            distortion_model="plumb_bob",
            D=np.array(pjlab["dist_k1_k2_p1_p2"]),
        ),
    ]
    for intrinsics in cases:
        msg = intrinsics_to_camera_info(intrinsics, frame_id="cam", stamp_ns=0)
        raw = serialize_message(msg)
        rosbags_msg = TYPESTORE.deserialize_cdr(raw, "sensor_msgs/msg/CameraInfo")
        assert camera_info_to_intrinsics(rosbags_msg, source="real") == intrinsics
    assert cases[1].distortion_model == "plumb_bob"
    assert intrinsics_to_camera_info(cases[1], frame_id="c", stamp_ns=0).d.tolist() == (pjlab["dist_k1_k2_p1_p2"])
