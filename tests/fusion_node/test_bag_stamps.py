"""bag_stamps / header_stamp_ns: header stamps straight from the CDR bytes, on the committed
sample bag and on tiny bags written here; malformed payloads name the topic and log time."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from rclpy.serialization import serialize_message
from sensor_msgs.msg import CameraInfo, PointCloud2, Range
from std_msgs.msg import String

from calibration import default_rig_path, load_rig
from fusion_node.bag import BagReader, BagWriter
from fusion_node.bag.stamps import StampedMessage, bag_stamps, header_stamp_ns
from fusion_node.convert.motion import make_header
from fusion_node.errors import BagReadError

SAMPLE = Path(__file__).resolve().parents[2] / "bags" / "sample_city_4s"
T0 = 1_700_000_000_000_000_000


@pytest.fixture(scope="module")
def rig():
    return load_rig(default_rig_path())


def test_sample_bag_stamps_equal_the_deserialized_headers() -> None:
    rig = load_rig(SAMPLE / "rig.yaml")
    stamps = bag_stamps(SAMPLE, rig)
    topics = {sensor.topic: sensor.id for sensor in rig.sensors}
    with BagReader(SAMPLE) as reader:
        expected = [
            (topics[m.topic], m.msg.header.stamp.sec * 10**9 + m.msg.header.stamp.nanosec, m.log_time_ns)
            for m in reader.messages(list(topics))
        ]
        counts = reader.message_counts
    assert [(m.sensor_id, m.stamp_ns, m.log_time_ns) for m in stamps] == expected
    assert len(stamps) == sum(counts[topic] for topic in topics)
    assert len(stamps) < sum(counts.values())  # camera_info and ground truth are skipped
    assert [m.log_time_ns for m in stamps] == sorted(m.log_time_ns for m in stamps)
    assert all(m.receive_ns == m.log_time_ns >= m.stamp_ns for m in stamps)


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_tiny_bag_with_skipped_topics_and_any_write_order(tmp_path, rig, storage) -> None:
    lidar, us, cam = rig.sensor("lidar_top"), rig.sensor("us_front_left_side"), rig.sensor("cam_front")
    path = tmp_path / "tiny"
    with BagWriter(path, storage=storage) as bag:
        bag.add_topic(lidar.topic, "sensor_msgs/msg/PointCloud2")
        bag.add_topic(us.topic, "sensor_msgs/msg/Range")
        bag.add_topic(cam.camera.info_topic, "sensor_msgs/msg/CameraInfo")
        bag.add_topic("/chatter", "std_msgs/msg/String")
        bag.write(us.topic, Range(header=make_header(us.frame_id, T0 + 999_999_999)), T0 + 1_010_000_000)
        bag.write(lidar.topic, PointCloud2(header=make_header(lidar.frame_id, T0)), T0 + 20_000_000)
        bag.write(cam.camera.info_topic, CameraInfo(header=make_header(cam.frame_id, T0)), T0 + 30_000_000)
        bag.write("/chatter", String(data="hello"), T0 + 5)
        bag.write(us.topic, serialize_message(Range(header=make_header(us.frame_id, 7))), T0 + 1)  # raw bytes
    assert bag_stamps(path, rig) == [
        StampedMessage("us_front_left_side", 7, T0 + 1),
        StampedMessage("lidar_top", T0, T0 + 20_000_000),
        StampedMessage("us_front_left_side", T0 + 999_999_999, T0 + 1_010_000_000),
    ]


def test_bag_without_rig_topics_gives_nothing(tmp_path, rig) -> None:
    path = tmp_path / "chatter"
    with BagWriter(path) as bag:
        bag.add_topic("/chatter", "std_msgs/msg/String")
        bag.write("/chatter", String(data="hello"), T0)
    assert bag_stamps(path, rig) == []


def test_short_payload_names_bag_topic_and_log_time(tmp_path, rig) -> None:
    us = rig.sensor("us_front_left_side")
    path = tmp_path / "short"
    with BagWriter(path, compression="none") as bag:
        bag.add_topic(us.topic, "sensor_msgs/msg/Range")
        bag.write(us.topic, Range(header=make_header(us.frame_id, T0)), T0)
        bag.write(us.topic, b"\x00\x01\x00\x00\x2a\x00", T0 + 123)
    with pytest.raises(
        BagReadError, match=rf"bag {path}: topic {us.topic}, message at log time {T0 + 123} ns: 6 bytes"
    ):
        bag_stamps(path, rig)


def test_missing_bag_is_a_bag_read_error(tmp_path, rig) -> None:
    with pytest.raises(BagReadError, match=r"does not exist"):
        bag_stamps(tmp_path / "nowhere", rig)


@pytest.mark.parametrize(
    ("data", "stamp"),
    [
        (b"\x00\x01\x00\x00" + struct.pack("<iI", 12, 345), 12_000_000_345),  # CDR little endian
        (b"\x00\x00\x00\x00" + struct.pack(">iI", 12, 345), 12_000_000_345),  # CDR big endian
        (b"\x00\x07\x00\x00" + struct.pack("<iI", 1, 999_999_999), 1_999_999_999),  # plain XCDR2
        (b"\x00\x09\x00\x00" + struct.pack("<IiI", 40, 3, 0), 3_000_000_000),  # delimited XCDR2: DHEADER first
    ],
)
def test_header_stamp_encodings(data, stamp) -> None:
    assert header_stamp_ns(data + b"\x00" * 8, "/t", 5) == stamp
    assert header_stamp_ns(memoryview(data), "/t", 5) == stamp


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00\x01", r"topic /t, message at log time 5 ns: 2 bytes, too short for a CDR encapsulation header"),
        (b"\x00\x03\x00\x00" + b"\x00" * 8, r"encapsulation 0x0003 is not plain CDR"),
        (b"\x00\x01\x00\x00" + struct.pack("<iI", 1, 10**9), r"sec=1, nanosec=1000000000 is not a valid time"),
        (b"\x00\x01\x00\x00" + struct.pack("<iI", -1, 0), r"sec=-1, nanosec=0 is not a valid time"),
        (b"\x00\x09\x00\x00" + b"\x00" * 8, r"12 bytes, too short for a header stamp \(needs 16\)"),
    ],
)
def test_header_stamp_errors_name_topic_and_log_time(data, message) -> None:
    with pytest.raises(ValueError, match=message):
        header_stamp_ns(data, "/t", 5)
