"""Time, Odometry and Range conversions, and the ROS-free samples."""

from __future__ import annotations

import math
import subprocess
import sys
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from hypothesis import given, settings
from hypothesis import strategies as st
from nav_msgs.msg import Odometry
from rclpy.serialization import deserialize_message, serialize_message
from rosbags.typesys import Stores, get_typestore
from sensor_msgs.msg import Range

from fusion_node.convert import (
    ns_to_time,
    odometry_to_sample,
    range_to_reading,
    reading_to_range,
    sample_to_odometry,
    time_to_ns,
)
from fusion_node.errors import MalformedMessageError, UnsupportedMessageError
from perception.samples import OdometrySample, RangeReading

ODOM_TOPIC = "/localization/odometry"
RANGE_TOPIC = "/sensing/ultrasonic/front_left"
TYPESTORE = get_typestore(Stores.ROS2_KILTED)
MAX_NS = (2**31 - 1) * 1_000_000_000 + 999_999_999


# --------------------------------------------------------------------------- time


@settings(max_examples=200, deadline=None)
@given(st.integers(0, MAX_NS))
def test_time_round_trip(ns: int) -> None:
    stamp = ns_to_time(ns)
    assert isinstance(stamp, Time)
    assert stamp.sec * 1_000_000_000 + stamp.nanosec == ns
    assert 0 <= stamp.nanosec < 1_000_000_000
    assert time_to_ns(stamp) == ns
    assert time_to_ns(deserialize_message(serialize_message(stamp), Time)) == ns


def test_time_from_rosbags_numpy_ints() -> None:
    stamp = SimpleNamespace(sec=np.int32(12), nanosec=np.uint32(5))
    assert time_to_ns(stamp) == 12_000_000_005


@pytest.mark.parametrize(
    ("sec", "nanosec", "needle"),
    [
        (1, 1_000_000_000, "nanosec must be <= 999999999, got 1000000000"),
        (1, -1, "nanosec must be >= 0, got -1"),
        (2**31, 0, "sec must be <= 2147483647, got 2147483648"),
        (-1, 5, "negative (sec=-1, nanosec=5)"),
        (1.5, 0, "sec must be an integer"),
    ],
)
def test_invalid_time(sec: Any, nanosec: Any, needle: str) -> None:
    with pytest.raises(MalformedMessageError) as info:
        time_to_ns(SimpleNamespace(sec=sec, nanosec=nanosec), source="/clock")
    assert "/clock" in str(info.value)
    assert needle in str(info.value)


@pytest.mark.parametrize(("ns", "needle"), [(-1, "got -1"), (MAX_NS + 1, "int32"), (1.0, "float"), (True, "bool")])
def test_invalid_ns_to_time(ns: Any, needle: str) -> None:
    with pytest.raises(MalformedMessageError, match=needle):
        ns_to_time(ns)


# --------------------------------------------------------------------------- odometry


def odometry(**changes: Any) -> Odometry:
    msg = Odometry()
    msg.header.stamp.sec, msg.header.stamp.nanosec = 100, 250
    msg.header.frame_id, msg.child_frame_id = "odom", "base_link"
    p, q = msg.pose.pose.position, msg.pose.pose.orientation
    p.x, p.y, p.z = 1.0, -2.0, 0.5
    half = math.radians(30) / 2
    q.x, q.y, q.z, q.w = 0.0, 0.0, math.sin(half), math.cos(half)
    v, w = msg.twist.twist.linear, msg.twist.twist.angular
    v.x, v.y, v.z = 3.0, 0.1, 0.0
    w.x, w.y, w.z = 0.0, 0.0, 0.2
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        obj: Any = msg
        for parent in parents:
            obj = getattr(obj, parent)
        setattr(obj, leaf, value)
    return msg


def test_odometry_round_trip() -> None:
    sample = odometry_to_sample(odometry(), source=ODOM_TOPIC)
    assert sample.stamp_ns == 100_000_000_250
    assert (sample.frame_id, sample.child_frame_id) == ("odom", "base_link")
    np.testing.assert_array_equal(sample.position, [1.0, -2.0, 0.5])
    half = math.radians(30) / 2
    np.testing.assert_allclose(sample.orientation_wxyz, [math.cos(half), 0, 0, math.sin(half)])
    np.testing.assert_array_equal(sample.linear_velocity, [3.0, 0.1, 0.0])
    np.testing.assert_array_equal(sample.angular_velocity, [0.0, 0.0, 0.2])
    assert not sample.position.flags.writeable
    msg = sample_to_odometry(sample)
    raw = serialize_message(msg)
    assert odometry_to_sample(deserialize_message(raw, Odometry)) == sample
    assert odometry_to_sample(TYPESTORE.deserialize_cdr(raw, "nav_msgs/msg/Odometry")) == sample


def test_slightly_denormalized_quaternion_is_normalized() -> None:
    sample = odometry_to_sample(odometry(pose__pose__orientation__w=1.0005, pose__pose__orientation__z=0.0))
    np.testing.assert_allclose(sample.orientation_wxyz, [1, 0, 0, 0], atol=1e-12)
    assert abs(np.linalg.norm(sample.orientation_wxyz) - 1.0) < 1e-12


@pytest.mark.parametrize(
    ("changes", "needles"),
    [
        pytest.param({"pose__pose__position__y": math.nan}, ["pose.pose.position", "y=nan"], id="nan-position"),
        pytest.param({"twist__twist__angular__z": math.inf}, ["twist.twist.angular", "z=inf"], id="inf-angular"),
        pytest.param({"pose__pose__orientation__w": math.nan}, ["orientation", "w=nan"], id="nan-quaternion"),
        pytest.param(
            {"pose__pose__orientation__w": 1.1, "pose__pose__orientation__z": 0.0},
            ["norm 1.1", "w=1.1"],
            id="quaternion-norm",
        ),
        pytest.param(
            {"pose__pose__orientation__w": 0.0, "pose__pose__orientation__z": 0.0}, ["norm 0"], id="zero-quaternion"
        ),
    ],
)
def test_invalid_odometry(changes: dict[str, float], needles: list[str]) -> None:
    with pytest.raises(MalformedMessageError) as info:
        odometry_to_sample(odometry(**changes), source=ODOM_TOPIC)
    text = str(info.value)
    assert text.startswith(f"Odometry on {ODOM_TOPIC}: ")
    for needle in needles:
        assert needle in text, (needle, text)


def test_odometry_sample_validates() -> None:
    good = dict(
        stamp_ns=1,
        frame_id="odom",
        child_frame_id="base",
        position=[0, 0, 0],
        orientation_wxyz=[1, 0, 0, 0],
        linear_velocity=[0, 0, 0],
        angular_velocity=[0, 0, 0],
    )
    OdometrySample(**good)  # type: ignore[arg-type]
    for key, value, needle in [
        ("orientation_wxyz", [1.1, 0, 0, 0], "unit quaternion"),
        ("position", [0, 0], r"shape \(3,\)"),
        ("linear_velocity", [0, math.nan, 0], "non-finite"),
        ("stamp_ns", -5, ">= 0"),
    ]:
        with pytest.raises(ValueError, match=needle):
            OdometrySample(**{**good, key: value})  # type: ignore[arg-type]


# --------------------------------------------------------------------------- range


def range_msg(value: float, **changes: Any) -> Range:
    msg = Range()
    msg.header.stamp.sec = 7
    msg.header.frame_id = "us_front_left"
    msg.radiation_type = Range.ULTRASOUND
    msg.field_of_view, msg.min_range, msg.max_range = 0.5, 0.25, 4.0
    msg.range = value
    for key, item in changes.items():
        setattr(msg, key, item)
    return msg


@pytest.mark.parametrize(
    ("value", "detected", "range_m"),
    [
        (1.5, True, 1.5),
        (0.25, True, 0.25),
        (4.0, True, 4.0),
        (math.inf, False, math.inf),
        (4.5, False, math.inf),
        (-math.inf, True, 0.25),
        (0.1, True, 0.25),
    ],
)
def test_range_rep117_semantics(value: float, detected: bool, range_m: float) -> None:
    reading = range_to_reading(range_msg(value), source=RANGE_TOPIC)
    assert (reading.detected, reading.range_m) == (detected, range_m)
    assert (reading.min_range_m, reading.max_range_m, reading.field_of_view_rad) == (0.25, 4.0, 0.5)
    assert (reading.stamp_ns, reading.frame_id) == (7_000_000_000, "us_front_left")


@pytest.mark.parametrize("detected", [True, False])
def test_range_round_trip(detected: bool) -> None:
    reading = RangeReading(
        stamp_ns=123,
        frame_id="us",
        range_m=1.5 if detected else math.inf,
        min_range_m=0.25,
        max_range_m=4.0,
        field_of_view_rad=0.5,
        detected=detected,
    )
    msg = reading_to_range(reading)
    assert msg.radiation_type == Range.ULTRASOUND
    raw = serialize_message(msg)
    assert range_to_reading(deserialize_message(raw, Range)) == reading
    assert range_to_reading(TYPESTORE.deserialize_cdr(raw, "sensor_msgs/msg/Range")) == reading


@pytest.mark.parametrize(
    ("msg", "error", "needles"),
    [
        pytest.param(range_msg(math.nan), MalformedMessageError, ["range is NaN"], id="nan"),
        pytest.param(
            range_msg(1.0, radiation_type=Range.INFRARED),
            UnsupportedMessageError,
            ["radiation_type = 1 (INFRARED)"],
            id="infrared",
        ),
        pytest.param(
            range_msg(1.0, min_range=5.0), MalformedMessageError, ["min_range 5.0 > max_range 4.0"], id="min-gt-max"
        ),
        pytest.param(
            range_msg(1.0, max_range=math.inf),
            MalformedMessageError,
            ["max_range must be finite, got inf"],
            id="inf-max",
        ),
        pytest.param(
            range_msg(1.0, field_of_view=-0.1), MalformedMessageError, ["field_of_view", "-0.1"], id="negative-fov"
        ),
    ],
)
def test_invalid_range(msg: Range, error: type[Exception], needles: list[str]) -> None:
    with pytest.raises(error) as info:
        range_to_reading(msg, source=RANGE_TOPIC)
    text = str(info.value)
    assert text.startswith(f"Range on {RANGE_TOPIC}: ")
    for needle in needles:
        assert needle in text, (needle, text)


def test_range_reading_validates() -> None:
    with pytest.raises(ValueError, match="within"):
        RangeReading(
            stamp_ns=0,
            frame_id="us",
            range_m=5.0,
            min_range_m=0.2,
            max_range_m=4.0,
            field_of_view_rad=0.5,
            detected=True,
        )
    with pytest.raises(ValueError, match="inf when nothing"):
        RangeReading(
            stamp_ns=0,
            frame_id="us",
            range_m=1.0,
            min_range_m=0.2,
            max_range_m=4.0,
            field_of_view_rad=0.5,
            detected=False,
        )


def test_samples_module_is_ros_free() -> None:
    code = (
        "import sys, perception.samples; "
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('rclpy', 'sensor_msgs', 'nav_msgs', 'std_msgs', 'builtin_interfaces', "
        "'geometry_msgs', 'fusion_node')]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
