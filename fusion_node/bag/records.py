"""Source records (simulator, dataset converters) -> a rosbag2 bag, a rig YAML and ground truth.

:func:`write_records` is the one sink of every source: each
:class:`perception.samples.SensorRecord` becomes the ROS message(s) of its rig sensor, built
by :mod:`fusion_node.convert`, on the sensor's topic with the sensor's frame_id, logged at
``record.receive_ns`` (the capture stamp is in the header). The bag directory then also
holds ``rig.yaml`` (the rig, :meth:`calibration.Rig.dump`) and, when given,
``ground_truth.npz`` (:func:`perception.ground_truth.save_ground_truth`); the ground truth
is in the bag too, as MarkerArrays on ``/ground_truth/objects``.

Messages per modality::

    lidar, radar  PointScan      -> sensor_msgs/msg/PointCloud2 (FLOAT32 fields = scan.fields)
    camera        EncodedImage   -> sensor_msgs/msg/CompressedImage (format "jpeg"/"png")
                                    + sensor_msgs/msg/CameraInfo on camera.info_topic
                                    (sensor_msgs/msg/Image bgr8 when the rig says compressed: false)
    ultrasonic    RangeReading   -> sensor_msgs/msg/Range (ULTRASOUND)
    odometry      OdometrySample -> nav_msgs/msg/Odometry
"""

from __future__ import annotations

import array
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

import numpy as np
import yaml
from sensor_msgs.msg import CompressedImage

from calibration import CameraIntrinsics, Modality, Rig, Sensor
from fusion_node.bag.writer import BagWriter
from fusion_node.convert import (
    array_to_image,
    boxes_to_marker_array,
    check_compressed,
    compressed_to_array,
    intrinsics_to_camera_info,
    reading_to_range,
    sample_to_odometry,
    structured_to_pointcloud2,
)
from fusion_node.convert.motion import make_header
from fusion_node.errors import ConversionError, RecordError
from perception.ground_truth import GROUND_TRUTH_FILE, GroundTruth, save_ground_truth
from perception.samples import EncodedImage, OdometrySample, PointScan, RangeReading, SensorRecord

#: Topic of the ground-truth boxes (visualization_msgs/MarkerArray, frame base_link).
GROUND_TRUTH_TOPIC: Final = "/ground_truth/objects"
#: Marker namespace of the ground-truth boxes.
GROUND_TRUTH_NAMESPACE: Final = "ground_truth"
#: File names beside the bag.
RIG_FILE: Final = "rig.yaml"
#: custom_data keys written into metadata.yaml.
CUSTOM_RIG: Final = "fusion_runtime.rig_yaml"
CUSTOM_GROUND_TRUTH: Final = "fusion_runtime.ground_truth_file"

POINTCLOUD2: Final = "sensor_msgs/msg/PointCloud2"
COMPRESSED_IMAGE: Final = "sensor_msgs/msg/CompressedImage"
IMAGE: Final = "sensor_msgs/msg/Image"
CAMERA_INFO: Final = "sensor_msgs/msg/CameraInfo"
RANGE: Final = "sensor_msgs/msg/Range"
ODOMETRY: Final = "nav_msgs/msg/Odometry"
MARKER_ARRAY: Final = "visualization_msgs/msg/MarkerArray"

_PAYLOADS: Final[dict[Modality, type]] = {
    Modality.LIDAR: PointScan,
    Modality.RADAR: PointScan,
    Modality.CAMERA: EncodedImage,
    Modality.ULTRASONIC: RangeReading,
    Modality.ODOMETRY: OdometrySample,
}
#: QoS profile (fusion_node.qos) a topic is offered with; every other topic: "sensor_data" (best effort).
_QOS: Final = {MARKER_ARRAY: "reliable"}


class _Bar(Protocol):
    def update(self, n: float = 1) -> Any: ...


Progress = Callable[[int], Any] | _Bar


@dataclass(frozen=True)
class BagSummary:
    """What :func:`write_records` wrote.

    Attributes:
        path: the bag directory.
        storage: "mcap" or "sqlite3"; compression: "zstd", "lz4" or "none".
        topics: topic -> message type; message_counts: topic -> messages.
        records: SensorRecords consumed; ground_truth_frames: MarkerArrays written.
        start_ns, end_ns: first and last log time (None when empty).
        size_bytes: total size of the bag directory (storage, metadata, rig, ground truth).
    """

    path: Path
    storage: str
    compression: str
    topics: dict[str, str]
    message_counts: dict[str, int]
    records: int
    ground_truth_frames: int
    start_ns: int | None
    end_ns: int | None
    size_bytes: int
    files: tuple[str, ...] = field(default=())

    @property
    def duration_ns(self) -> int:
        return 0 if self.start_ns is None or self.end_ns is None else self.end_ns - self.start_ns

    def describe(self) -> str:
        """Multi-line summary: path, storage, size, then one line per topic."""
        lines = [
            f"{self.path}: {self.storage} ({self.compression}), {self.size_bytes / 1e6:.1f} MB, "
            f"{self.records} records, {self.duration_ns / 1e9:.3f} s, {self.ground_truth_frames} ground-truth frames"
        ]
        lines += [
            f"  {topic:<48} {self.topics[topic]:<36} {count:>6}" for topic, count in sorted(self.message_counts.items())
        ]
        return "\n".join(lines)


def sensor_topics(sensor: Sensor) -> dict[str, str]:
    """topic -> message type of what one rig sensor publishes (a camera: image + info)."""
    if sensor.modality is Modality.CAMERA:
        topics = {sensor.topic: COMPRESSED_IMAGE if sensor.camera.compressed else IMAGE}
        if sensor.camera.info_topic:
            topics[sensor.camera.info_topic] = CAMERA_INFO
        return topics
    kind = {Modality.LIDAR: POINTCLOUD2, Modality.RADAR: POINTCLOUD2, Modality.ULTRASONIC: RANGE}
    return {sensor.topic: kind.get(sensor.modality, ODOMETRY)}


def _fail(record: SensorRecord, message: str) -> RecordError:
    return RecordError(f"record of sensor '{record.sensor_id}' at stamp {record.stamp_ns} ns: {message}")


def _cloud(scan: PointScan, sensor: Sensor, stamp_ns: int) -> Any:
    points = np.ascontiguousarray(scan.points, dtype=np.float32)
    dtype = np.dtype([(name, np.float32) for name in scan.fields])
    structured = points.view(dtype).reshape(points.shape[0])
    xyz = [scan.fields.index(name) for name in ("x", "y", "z") if name in scan.fields]
    dense = bool(np.isfinite(points[:, xyz]).all())
    return structured_to_pointcloud2(structured, frame_id=sensor.frame_id, stamp_ns=stamp_ns, is_dense=dense)


def _camera(image: EncodedImage, sensor: Sensor, stamp_ns: int) -> list[tuple[str, Any]]:
    if not isinstance(image.intrinsics, CameraIntrinsics):
        raise ValueError(f"intrinsics must be CameraIntrinsics, got {type(image.intrinsics).__name__}")
    compressed = CompressedImage(header=make_header(sensor.frame_id, stamp_ns), format=image.format)
    compressed.data = array.array("B", image.data)
    check_compressed(compressed, source=sensor.topic)
    spec = sensor.camera
    out: list[tuple[str, Any]] = []
    if spec.compressed:
        out.append((sensor.topic, compressed))
    else:
        pixels = compressed_to_array(compressed, source=sensor.topic)
        encoding = "bgr8" if pixels.ndim == 3 else ("mono8" if pixels.dtype == np.uint8 else "mono16")
        out.append((sensor.topic, array_to_image(pixels, encoding, frame_id=sensor.frame_id, stamp_ns=stamp_ns)))
    if spec.info_topic:
        info = intrinsics_to_camera_info(image.intrinsics, frame_id=sensor.frame_id, stamp_ns=stamp_ns)
        out.append((spec.info_topic, info))
    return out


def record_messages(rig: Rig, record: SensorRecord) -> list[tuple[str, Any]]:
    """The (topic, rclpy message) pairs of one record; RecordError on any inconsistency."""
    if not isinstance(record, SensorRecord):
        raise RecordError(f"expected a SensorRecord, got {type(record).__name__}")
    try:
        sensor = rig.sensor(record.sensor_id)
    except KeyError:
        raise _fail(
            record, f"sensor id is not in rig '{rig.name}' ({rig.source or 'in memory'}); ids: {list(rig.ids)}"
        ) from None
    payload = record.payload
    expected = _PAYLOADS[sensor.modality]
    if not isinstance(payload, expected):
        raise _fail(
            record, f"a {sensor.modality.value} sensor needs a {expected.__name__}, got {type(payload).__name__}"
        )
    try:
        if isinstance(payload, PointScan):
            return [(sensor.topic, _cloud(payload, sensor, record.stamp_ns))]
        if isinstance(payload, EncodedImage):
            return _camera(payload, sensor, record.stamp_ns)
        if isinstance(payload, RangeReading | OdometrySample):
            if payload.frame_id != sensor.frame_id or payload.stamp_ns != record.stamp_ns:
                raise ValueError(
                    f"payload frame_id/stamp ({payload.frame_id!r}, {payload.stamp_ns}) differ from the rig "
                    f"sensor's frame_id and the record stamp ({sensor.frame_id!r}, {record.stamp_ns})"
                )
            if isinstance(payload, RangeReading):
                return [(sensor.topic, reading_to_range(payload))]
            return [(sensor.topic, sample_to_odometry(payload))]
    except (ConversionError, ValueError) as exc:
        raise _fail(record, str(exc)) from exc
    raise _fail(record, f"unsupported payload {type(payload).__name__}")  # pragma: no cover - checked above


def _advance(progress: Progress | None) -> None:
    if progress is None:
        return
    update = getattr(progress, "update", None)
    if callable(update):
        update(1)
    elif callable(progress):
        progress(1)


def write_records(
    path: str | Path,
    rig: Rig,
    records: Iterable[SensorRecord],
    *,
    storage: str = "mcap",
    compression: str | None = None,
    ground_truth: GroundTruth | Callable[[], GroundTruth] | None = None,
    progress: Progress | None = None,
    metadata: Mapping[str, str] | None = None,
) -> BagSummary:
    """Write ``records`` (any order) as a new bag at ``path`` (see the module docstring).

    Args:
        path: bag directory to create (must not exist).
        rig: the rig the records come from (topics, frame ids, camera info topics).
        records: the sensor records; consumed once, lazily.
        storage, compression: see :class:`fusion_node.bag.writer.BagWriter`.
        ground_truth: per-sweep boxes, or a callable returning them that is called once
            ``records`` is exhausted (for sources that build the truth while streaming):
            written as MarkerArrays on GROUND_TRUTH_TOPIC (frame rig.base_frame, stamp and
            log time = the frame's stamp) and saved as ``ground_truth.npz`` beside the bag.
        progress: called with 1 (or ``.update(1)`` for a tqdm bar) after each record.
        metadata: extra custom_data strings for metadata.yaml (source, command line, ...).

    Topics are added when their first message arrives, so the bag lists only topics with
    data. On any error the partial bag directory is removed and the error re-raised.
    """
    custom = {CUSTOM_RIG: yaml.safe_dump(rig.to_dict(), sort_keys=False)}
    custom.update(metadata or {})
    count = 0
    truth: GroundTruth | None = None
    writer = BagWriter(path, storage=storage, compression=compression, custom_data=custom)
    with writer:
        types: dict[str, str] = {}
        for sensor in rig.sensors:
            types.update(sensor_topics(sensor))
        for record in records:
            for topic, msg in record_messages(rig, record):
                if topic not in writer.topics:
                    writer.add_topic(topic, types[topic], qos=_QOS.get(types[topic], "sensor_data"))
                writer.write(topic, msg, record.receive_ns)
            count += 1
            _advance(progress)
        truth = ground_truth() if callable(ground_truth) else ground_truth
        if truth is not None and not isinstance(truth, GroundTruth):
            raise RecordError(f"ground_truth must be a GroundTruth, got {type(truth).__name__}", path=str(path))
        if truth is not None:
            writer.set_custom_data(CUSTOM_GROUND_TRUTH, GROUND_TRUTH_FILE)
        if truth is not None and len(truth):
            writer.add_topic(GROUND_TRUTH_TOPIC, MARKER_ARRAY, qos="reliable")
            for frame in truth.frames:
                markers = boxes_to_marker_array(
                    frame.boxes, stamp_ns=frame.stamp_ns, frame_id=rig.base_frame, namespace=GROUND_TRUTH_NAMESPACE
                )
                writer.write(GROUND_TRUTH_TOPIC, markers, frame.stamp_ns)
    bag = Path(path)
    try:
        rig.dump(bag / RIG_FILE)
        if truth is not None:
            save_ground_truth(bag, truth)
    except BaseException:
        shutil.rmtree(bag, ignore_errors=True)
        raise
    return summarize(bag, writer, count, len(truth) if truth is not None else 0)


def summarize(bag: Path, writer: BagWriter, records: int, gt_frames: int) -> BagSummary:
    """BagSummary of a bag that ``writer`` has closed."""
    files = sorted(p for p in bag.iterdir() if p.is_file())
    return BagSummary(
        path=bag,
        storage=writer.storage,
        compression=writer.compression,
        topics=writer.topics,
        message_counts=writer.message_counts,
        records=records,
        ground_truth_frames=gt_frames,
        start_ns=writer.start_ns,
        end_ns=writer.end_ns,
        size_bytes=sum(p.stat().st_size for p in files),
        files=tuple(p.name for p in files),
    )
