"""Bag I/O: records -> MCAP / SQLite3 bags -> rclpy messages, read back with fusion_node.convert,
checked independently with the mcap reader + mcap-ros2-support; compression; errors."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import yaml
from mcap.reader import make_reader
from mcap.records import Chunk
from mcap.stream_reader import StreamReader
from mcap_ros2.decoder import DecoderFactory
from rclpy.serialization import serialize_message
from sensor_msgs.msg import PointCloud2, Range

from calibration import CameraIntrinsics, Rig, default_rig_path, load_rig, rig_from_dict
from fusion_node.bag import GROUND_TRUTH_TOPIC, RIG_FILE, BagReader, BagWriter, write_records
from fusion_node.bag.records import CUSTOM_RIG
from fusion_node.bag.writer import typestore
from fusion_node.convert import (
    camera_info_to_intrinsics,
    check_compressed,
    image_to_array,
    odometry_to_sample,
    pointcloud2_to_array,
    pointcloud2_to_radar,
    range_to_reading,
    time_to_ns,
    xyzi_to_pointcloud2,
)
from fusion_node.errors import (
    BagError,
    BagExistsError,
    BagOptionError,
    BagReadError,
    BagWriteError,
    RecordError,
    UnknownTopicError,
)
from perception.bev_grid import BevGrid
from perception.ground_truth import Boxes, FrameTruth, GroundTruth, load_ground_truth
from perception.samples import EncodedImage, OdometrySample, PointScan, RangeReading, SensorRecord

T0 = 1_700_000_000_000_000_000
LIDAR_FIELDS = ("x", "y", "z", "intensity", "ring", "time")
RADAR_FIELDS = ("x", "y", "z", "vr", "vr_compensated", "rcs")


@pytest.fixture(scope="module")
def rig() -> Rig:
    return load_rig(default_rig_path())


def _jpeg(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    image = cv2.resize(rng.integers(0, 255, (9, 16, 3), dtype=np.uint8), (160, 90))
    ok, data = cv2.imencode(".jpg", image)
    assert ok
    return data.tobytes()


def _records(rig: Rig, frames: int = 3) -> list[SensorRecord]:
    """Every record type, with latency (receive > stamp) and deliberately unsorted."""
    rng = np.random.default_rng(0)
    cam = rig.sensor("cam_front").camera.intrinsics.scaled(0.1)
    out = []
    for f in range(frames):
        t = T0 + f * 100_000_000
        lidar = rng.normal(0, 10, (1000 + f, 6)).astype(np.float32)
        lidar[:, 4] = rng.integers(0, 32, len(lidar))
        radar = rng.normal(0, 5, (20, 6)).astype(np.float32)
        out += [
            SensorRecord("lidar_top", t, t + 25_000_000, PointScan(LIDAR_FIELDS, lidar)),
            SensorRecord("radar_front", t + 3_000_000, t + 40_000_000, PointScan(RADAR_FIELDS, radar)),
            SensorRecord("cam_front", t + 1_000, t + 30_000_000, EncodedImage(_jpeg(f), "jpeg", cam)),
            SensorRecord(
                "us_rear_left_corner",
                t + 5,
                t + 6,
                RangeReading(t + 5, "us_rear_left_corner", 1.25 + f, 0.25, 5.0, 1.0, True)
                if f != 1
                else RangeReading(t + 5, "us_rear_left_corner", math.inf, 0.25, 5.0, 1.0, False),
            ),
            SensorRecord(
                "odometry",
                t + 7,
                t + 8,
                OdometrySample(
                    t + 7,
                    "odom",
                    "base_link",
                    [f, 2.0, 0.1],
                    [math.cos(0.1), 0, 0, math.sin(0.1)],
                    [5.0, 0, 0],
                    [0, 0, 0.2],
                ),
            ),
        ]
    return out[::-1]


def _truth() -> GroundTruth:
    grid = BevGrid(x_min=-20.0, x_max=20.0, y_min=-20.0, y_max=20.0, resolution=0.5)
    frames = [
        FrameTruth(
            T0 + f * 100_000_000,
            Boxes.create([[5.0 + f, 1.0, 0.8]], [[4.0, 2.0, 1.5]], [0.1], [0], velocities=[[3.0, 0.0]], track_ids=[1]),
            np.eye(4),
        )
        for f in range(3)
    ]
    return GroundTruth.with_box_occupancy(frames, grid)


def _assert_same_rig(a: Rig, b: Rig) -> None:
    assert (a.name, a.ids, a.reference_sensor) == (b.name, b.ids, b.reference_sensor)
    for x, y in zip(a.sensors, b.sensors, strict=True):
        assert (x.topic, x.frame_id, x.modality) == (y.topic, y.frame_id, y.modality)
        np.testing.assert_allclose(x.extrinsic, y.extrinsic, atol=1e-12)


def _messages(path: Path, **kwargs: Any) -> list[Any]:
    with BagReader(path) as bag:
        return list(bag.messages(**kwargs))


# -- round trips -----------------------------------------------------------------------------
@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_every_record_type_round_trips(tmp_path: Path, rig: Rig, storage: str) -> None:
    records = _records(rig)
    calls: list[int] = []
    summary = write_records(
        tmp_path / "bag", rig, records, storage=storage, ground_truth=_truth(), progress=calls.append
    )
    assert calls == [1] * len(records)
    assert summary.records == len(records)
    assert summary.storage == storage
    assert summary.compression == ("zstd" if storage == "mcap" else "none")
    expected_topics = {
        "/sensing/lidar/top/points": "sensor_msgs/msg/PointCloud2",
        "/sensing/radar/front/points": "sensor_msgs/msg/PointCloud2",
        "/sensing/camera/front/image/compressed": "sensor_msgs/msg/CompressedImage",
        "/sensing/camera/front/camera_info": "sensor_msgs/msg/CameraInfo",
        "/sensing/ultrasonic/rear_left_corner/range": "sensor_msgs/msg/Range",
        "/localization/odometry": "nav_msgs/msg/Odometry",
        GROUND_TRUTH_TOPIC: "visualization_msgs/msg/MarkerArray",
    }
    with BagReader(tmp_path / "bag") as bag:
        assert bag.topics == expected_topics
        assert bag.storage == storage
        assert bag.message_counts == dict.fromkeys(expected_topics, 3) == summary.message_counts
        assert bag.start_ns == T0
        assert bag.end_ns == T0 + 200_000_000 + 40_000_000
        assert bag.duration_ns == 240_000_000 == summary.duration_ns
        _assert_same_rig(rig_from_dict(yaml.safe_load(bag.custom_data[CUSTOM_RIG])), rig)
        items = list(bag.messages())
    assert [m.log_time_ns for m in items] == sorted(m.log_time_ns for m in items)
    by_topic: dict[str, list[Any]] = {}
    for item in items:
        by_topic.setdefault(item.topic, []).append(item)
    source = {r.sensor_id: [] for r in records}
    for record in sorted(records, key=lambda r: r.receive_ns):
        source[record.sensor_id].append(record)

    for item, record in zip(by_topic["/sensing/lidar/top/points"], source["lidar_top"], strict=True):
        assert item.log_time_ns == record.receive_ns
        assert isinstance(item.msg, PointCloud2)
        assert [f.name for f in item.msg.fields] == list(LIDAR_FIELDS)
        assert {f.datatype for f in item.msg.fields} == {7}  # FLOAT32
        assert np.array_equal(pointcloud2_to_array(item.msg, LIDAR_FIELDS), record.payload.points)
        assert item.msg.header.frame_id == "lidar_top"
        assert time_to_ns(item.msg.header.stamp) == record.stamp_ns
    for item, record in zip(by_topic["/sensing/radar/front/points"], source["radar_front"], strict=True):
        assert np.array_equal(pointcloud2_to_radar(item.msg), record.payload.points)
        assert item.msg.header.frame_id == "radar_front"
    images = by_topic["/sensing/camera/front/image/compressed"]
    infos = by_topic["/sensing/camera/front/camera_info"]
    for image, info, record in zip(images, infos, source["cam_front"], strict=True):
        assert bytes(image.msg.data) == record.payload.data
        assert image.msg.format == "jpeg"
        assert check_compressed(image.msg) == "jpeg"
        assert camera_info_to_intrinsics(info.msg) == record.payload.intrinsics
        assert time_to_ns(info.msg.header.stamp) == time_to_ns(image.msg.header.stamp) == record.stamp_ns
        assert info.msg.header.frame_id == image.msg.header.frame_id == "cam_front"
    for item, record in zip(
        by_topic["/sensing/ultrasonic/rear_left_corner/range"], source["us_rear_left_corner"], strict=True
    ):
        assert item.msg.radiation_type == Range.ULTRASOUND
        assert range_to_reading(item.msg) == record.payload  # values exact in float32
    for item, record in zip(by_topic["/localization/odometry"], source["odometry"], strict=True):
        assert odometry_to_sample(item.msg) == record.payload
    markers = by_topic[GROUND_TRUTH_TOPIC]
    assert [m.log_time_ns for m in markers] == [T0, T0 + 100_000_000, T0 + 200_000_000]
    assert markers[0].msg.markers[0].action == 3
    assert markers[0].msg.markers[1].header.frame_id == "base_link"
    # beside the bag: the rig and the ground truth
    _assert_same_rig(load_rig(tmp_path / "bag" / RIG_FILE), rig)
    loaded = load_ground_truth(tmp_path / "bag")
    assert [f.boxes for f in loaded.frames] == [f.boxes for f in _truth().frames]
    assert set(summary.files) >= {RIG_FILE, "ground_truth.npz", "metadata.yaml"}


def test_ground_truth_built_while_streaming(tmp_path: Path, rig: Rig) -> None:
    """A source that builds its truth while its records are consumed passes a callable."""
    seen: list[int] = []

    def stream() -> Any:
        for record in _records(rig):
            seen.append(record.stamp_ns)
            yield record

    def truth() -> GroundTruth:
        assert len(seen) == 15, "called after the records are exhausted"
        return _truth()

    summary = write_records(tmp_path / "bag", rig, stream(), ground_truth=truth)
    assert summary.ground_truth_frames == 3
    assert summary.message_counts[GROUND_TRUTH_TOPIC] == 3
    assert load_ground_truth(tmp_path / "bag").frames[2].boxes == _truth().frames[2].boxes
    text = summary.describe()
    assert "3 ground-truth frames" in text
    assert "/sensing/lidar/top/points" in text
    with pytest.raises(RecordError, match=r"ground_truth must be a GroundTruth, got list"):
        write_records(tmp_path / "bad", rig, _records(rig, 1), ground_truth=lambda: [])  # type: ignore[arg-type,return-value]
    assert not (tmp_path / "bad").exists()


def test_uncompressed_camera_rig_writes_images(tmp_path: Path, rig: Rig) -> None:
    doc = rig.to_dict()
    for sensor in doc["sensors"]:
        if sensor["id"] == "cam_front":
            sensor["compressed"] = False
            sensor["topic"] = "/sensing/camera/front/image_raw"
            sensor["info_topic"] = ""
    raw_rig = rig_from_dict(doc)
    records = [r for r in _records(raw_rig, 1) if r.sensor_id == "cam_front"]
    write_records(tmp_path / "bag", raw_rig, records)
    (item,) = _messages(tmp_path / "bag")
    assert item.msgtype == "sensor_msgs/msg/Image"
    assert item.msg.encoding == "bgr8"
    decoded = cv2.imdecode(np.frombuffer(records[0].payload.data, np.uint8), cv2.IMREAD_COLOR)
    assert np.array_equal(image_to_array(item.msg), decoded)


def test_messages_filters_by_topic_and_time(tmp_path: Path, rig: Rig) -> None:
    write_records(tmp_path / "bag", rig, _records(rig))
    with BagReader(tmp_path / "bag") as bag:
        lidar = list(bag.messages(["/sensing/lidar/top/points"]))
        window = list(bag.messages(start_ns=T0 + 100_000_000, stop_ns=T0 + 200_000_000))
        raw = next(iter(bag.messages("/localization/odometry", raw=True)))
        with pytest.raises(UnknownTopicError, match=r"no topic \['/nope'\]; topics: \[.*'/localization/odometry'"):
            bag.messages(["/nope"])
        assert list(bag.messages([])) == []
    assert len(lidar) == 3
    assert {m.topic for m in lidar} == {"/sensing/lidar/top/points"}
    assert window
    assert all(T0 + 100_000_000 <= m.log_time_ns < T0 + 200_000_000 for m in window)
    assert isinstance(raw.msg, bytes)
    assert raw.msgtype == "nav_msgs/msg/Odometry"


# -- independent reader, compression -----------------------------------------------------------
def _mcap_file(bag: Path) -> Path:
    (file,) = bag.glob("*.mcap")
    return file


@pytest.mark.parametrize("compression", ["zstd", "lz4"])
def test_mcap_decodes_with_the_independent_reader(tmp_path: Path, rig: Rig, compression: str) -> None:
    write_records(tmp_path / "bag", rig, _records(rig), compression=compression, ground_truth=_truth())
    with _mcap_file(tmp_path / "bag").open("rb") as stream:
        reader = make_reader(stream, decoder_factories=[DecoderFactory()])
        summary = reader.get_summary()
        assert summary is not None
        assert summary.chunk_indexes
        assert {c.compression for c in summary.chunk_indexes} == {compression}
        assert {s.encoding for s in summary.schemas.values()} == {"ros2msg"}
        decoded = list(reader.iter_decoded_messages(log_time_order=True))
    with BagReader(tmp_path / "bag") as bag:
        topics = bag.topics
        ours = [(m.topic, m.log_time_ns) for m in bag.messages()]
    assert len(decoded) == len(ours) == 21
    assert [(c.topic, m.log_time) for _, c, m, _ in decoded] == ours
    for schema, channel, _, msg in decoded:
        assert schema.name == topics[channel.topic]
        assert type(msg).__name__ == schema.name.split("/")[-1]
    lidar = [msg for _, c, _, msg in decoded if c.topic == "/sensing/lidar/top/points"]
    assert lidar[0].width == 1000
    assert [f.name for f in lidar[0].fields] == list(LIDAR_FIELDS)


def test_chunk_compression_shrinks_compressible_data(tmp_path: Path, rig: Rig) -> None:
    zeros = [
        SensorRecord("lidar_top", T0 + i, T0 + i, PointScan(LIDAR_FIELDS, np.zeros((20000, 6), np.float32)))
        for i in range(5)
    ]
    sizes = {}
    for compression in ("none", "zstd", "lz4"):
        write_records(tmp_path / compression, rig, zeros, compression=compression)
        sizes[compression] = _mcap_file(tmp_path / compression).stat().st_size
        expected = "" if compression == "none" else compression
        with _mcap_file(tmp_path / compression).open("rb") as stream:
            chunks = [r for r in StreamReader(stream, emit_chunks=True).records if isinstance(r, Chunk)]
        assert chunks
        assert {c.compression for c in chunks} == {expected}
        assert sum(c.uncompressed_size for c in chunks) > 5 * 20000 * 24
        assert sum(len(c.data) for c in chunks) < sizes[compression]
    assert sizes["none"] > 5 * 20000 * 24
    assert sizes["zstd"] < sizes["none"] / 50
    assert sizes["lz4"] < sizes["none"] / 20
    meta = yaml.safe_load((tmp_path / "zstd" / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert meta["compression_mode"] == ""
    assert meta["storage_identifier"] == "mcap"


def test_schema_hashes_and_qos_match_ros(tmp_path: Path, rig: Rig) -> None:
    """The typestore's type hashes are those of the installed rclpy messages, and sensor
    topics are recorded as offered best effort (the profile of sensor drivers)."""
    write_records(tmp_path / "bag", rig, _records(rig, 1), ground_truth=_truth())
    meta = yaml.safe_load((tmp_path / "bag" / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    for entry in meta["topics_with_message_count"]:
        topic = entry["topic_metadata"]
        pkg, _, name = topic["type"].split("/")
        description = Path(sys.prefix) / "share" / pkg / "msg" / f"{name}.json"
        if description.is_file():
            hashes = json.loads(description.read_text())["type_hashes"]
            rclpy_hash = next(h["hash_string"] for h in hashes if h["type_name"] == topic["type"])
            assert topic["type_description_hash"] == rclpy_hash == typestore().hash_rihs01(topic["type"])
        reliability = topic["offered_qos_profiles"][0]["reliability"]
        assert reliability == ("reliable" if topic["name"] == GROUND_TRUTH_TOPIC else "best_effort")


def test_writer_accepts_unsorted_writes_and_serialized_bytes(tmp_path: Path) -> None:
    cloud = xyzi_to_pointcloud2(np.ones((3, 4), np.float32), frame_id="l", stamp_ns=5)
    with BagWriter(tmp_path / "bag", storage="sqlite3") as bag:
        bag.add_topic("/points", "sensor_msgs/PointCloud2", qos="reliable")
        for t in (30, 10, 20):
            bag.write("/points", cloud, t)
        bag.write("/points", serialize_message(cloud), 15)
        assert bag.message_counts == {"/points": 4}
    items = _messages(tmp_path / "bag")
    assert [m.log_time_ns for m in items] == [10, 15, 20, 30]
    assert all(np.array_equal(pointcloud2_to_array(m.msg), np.ones((3, 4))) for m in items)


# -- errors ------------------------------------------------------------------------------------
def test_writer_option_errors(tmp_path: Path) -> None:
    (tmp_path / "exists").mkdir()
    (tmp_path / "exists" / "keep.txt").write_text("mine")
    with pytest.raises(BagExistsError, match=r"bag .*exists: exists already"):
        BagWriter(tmp_path / "exists")
    assert (tmp_path / "exists" / "keep.txt").read_text() == "mine"
    with pytest.raises(BagOptionError, match=r"unknown storage 'rosbag'; expected one of \['mcap', 'sqlite3'\]"):
        BagWriter(tmp_path / "a", storage="rosbag")
    with pytest.raises(BagOptionError, match=r"unknown compression 'gzip'"):
        BagWriter(tmp_path / "a", compression="gzip")
    with pytest.raises(BagOptionError, match=r"compression 'zstd' is MCAP chunk compression; sqlite3"):
        BagWriter(tmp_path / "a", storage="sqlite3", compression="zstd")
    assert not (tmp_path / "a").exists()


def test_writer_topic_and_message_errors(tmp_path: Path) -> None:
    cloud = xyzi_to_pointcloud2(np.ones((3, 4), np.float32), frame_id="l", stamp_ns=5)
    bag = BagWriter(tmp_path / "bag")
    with pytest.raises(BagWriteError, match="not open"):
        bag.add_topic("/r", "sensor_msgs/msg/Range")
    bag.open()
    with pytest.raises(BagOptionError, match=r"unknown message type 'sensor_msgs/msg/Nope' for topic /x"):
        bag.add_topic("/x", "sensor_msgs/msg/Nope")
    with pytest.raises(UnknownTopicError, match=r"must be an absolute name"):
        bag.add_topic("x", "sensor_msgs/msg/Range")
    with pytest.raises(BagOptionError, match=r"unknown QoS profile 'fast'"):
        bag.add_topic("/r", "sensor_msgs/msg/Range", qos="fast")
    bag.add_topic("/r", "sensor_msgs/msg/Range")
    with pytest.raises(UnknownTopicError, match=r"topic /r was added already \(as sensor_msgs/msg/Range\)"):
        bag.add_topic("/r", "sensor_msgs/msg/Range")
    with pytest.raises(UnknownTopicError, match=r"topic '/q' was not added; known topics: \['/r'\]"):
        bag.write("/q", Range(), 0)
    with pytest.raises(BagWriteError, match=r"log_time_ns for /r must be an int in \[0, 2\*\*63\), got -5"):
        bag.write("/r", Range(), -5)
    with pytest.raises(BagWriteError, match=r"bag .*bag: topic /r carries sensor_msgs/msg/Range, got a .*PointCloud2"):
        bag.write("/r", cloud, 0)
    bag.abort()
    assert not (tmp_path / "bag").exists()


def _write_wrong_message(path: Path) -> None:
    with BagWriter(path) as bag:
        bag.add_topic("/r", "sensor_msgs/msg/Range")
        bag.write("/r", Range(), 0)
        bag.write("/r", PointCloud2(), 1)


def test_failed_write_leaves_no_partial_bag(tmp_path: Path) -> None:
    with pytest.raises(BagWriteError, match=r"carries sensor_msgs/msg/Range"):
        _write_wrong_message(tmp_path / "bag")
    assert not (tmp_path / "bag").exists()


def test_record_errors_name_the_sensor(tmp_path: Path, rig: Rig) -> None:
    good = _records(rig, 1)
    unknown = SensorRecord("lidar_roof", T0, T0, good[0].payload)
    with pytest.raises(
        RecordError, match=r"sensor 'lidar_roof' at stamp .*not in rig 'nuscenes_like_default'.*'lidar_top'"
    ):
        write_records(tmp_path / "bag", rig, [*good, unknown])
    assert not (tmp_path / "bag").exists()
    scan = PointScan(LIDAR_FIELDS, np.zeros((2, 6), np.float32))
    with pytest.raises(RecordError, match=r"'cam_front'.*a camera sensor needs a EncodedImage, got PointScan"):
        write_records(tmp_path / "bag", rig, [SensorRecord("cam_front", T0, T0, scan)])
    reading = RangeReading(T0, "us_front_left_side", 1.0, 0.2, 5.0, 1.0, True)
    with pytest.raises(RecordError, match=r"'us_rear_left_corner'.*frame_id/stamp \('us_front_left_side'"):
        write_records(tmp_path / "bag", rig, [SensorRecord("us_rear_left_corner", T0, T0, reading)])
    intr = CameraIntrinsics(K=np.diag([100.0, 100.0, 1.0]), width=16, height=9)
    png_as_jpeg = EncodedImage(b"\x89PNG\r\n\x1a\n0000", "jpeg", intr)
    with pytest.raises(RecordError, match=r"'cam_front'.*does not start with the jpeg signature"):
        write_records(tmp_path / "bag", rig, [SensorRecord("cam_front", T0, T0, png_as_jpeg)])
    with pytest.raises(RecordError, match=r"expected a SensorRecord, got dict"):
        write_records(tmp_path / "bag", rig, [{"sensor_id": "lidar_top"}])  # type: ignore[list-item]
    assert not (tmp_path / "bag").exists()


def _write_small(path: Path) -> None:
    with BagWriter(path) as bag:
        bag.add_topic("/r", "sensor_msgs/msg/Range")
        for t in range(200):
            bag.write("/r", Range(range=float(t)), t)


def test_reader_errors_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(BagReadError, match=r"bag .*missing: does not exist"):
        BagReader(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BagReadError, match=r"bag .*empty: not a rosbag2 bag"):
        BagReader(tmp_path / "empty")
    _write_small(tmp_path / "bad_meta")
    (tmp_path / "bad_meta" / "metadata.yaml").write_text("rosbag2_bagfile_information: {version: 9}\n")
    with pytest.raises(BagReadError, match=r"bag .*bad_meta: cannot be read: .*missing"):
        BagReader(tmp_path / "bad_meta").open()
    _write_small(tmp_path / "cut")
    file = _mcap_file(tmp_path / "cut")
    file.write_bytes(file.read_bytes()[:200])
    with pytest.raises(BagReadError, match=r"bag .*cut"), BagReader(tmp_path / "cut") as bag:
        list(bag.messages())
    _write_small(tmp_path / "flipped")
    file = _mcap_file(tmp_path / "flipped")
    data = bytearray(file.read_bytes())
    with file.open("rb") as stream:
        (chunk,) = make_reader(stream).get_summary().chunk_indexes
    start = chunk.chunk_start_offset + 1 + 8 + 8 + 8 + 8 + 4 + 4 + len("zstd") + 8  # the zstd frame
    assert data[start : start + 4] == b"\x28\xb5\x2f\xfd"
    data[start : start + 4] = b"\x00" * 4
    file.write_bytes(bytes(data))
    with pytest.raises(BagReadError, match=r"bag .*flipped"), BagReader(tmp_path / "flipped") as bag:
        list(bag.messages())
    reader = BagReader(tmp_path / "bad_meta")
    with pytest.raises(BagReadError, match=r"reader is not open"):
        _ = reader.topics


def test_every_bag_error_is_a_bag_error() -> None:
    for cls in (BagExistsError, BagOptionError, UnknownTopicError, BagWriteError, BagReadError, RecordError):
        assert issubclass(cls, BagError)
