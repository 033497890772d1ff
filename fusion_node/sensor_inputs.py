"""Which message type each rig sensor publishes, and how one message is checked and stamped.

The node subscribes with ``message_type(sensor)`` and calls ``decode(sensor, msg)`` on every
message: it returns the header stamp in nanoseconds and the converted arrays, or raises a
``ConversionError`` saying what is wrong (the node counts and reports it, then drops it).
``to_record(sensor, msg, receive_ns)`` makes the ROS-free SensorRecord the perception pipeline
consumes (live from a subscription or replayed from a bag).
"""

from __future__ import annotations

from typing import Any

from calibration import Modality, Sensor
from fusion_node import convert
from perception.samples import EncodedImage, PointScan, SensorRecord


def message_type(sensor: Sensor) -> type:
    """The rclpy message class published on ``sensor.topic``."""
    from nav_msgs.msg import Odometry
    from sensor_msgs.msg import CompressedImage, Image, PointCloud2, Range

    if sensor.modality is Modality.CAMERA:
        return CompressedImage if sensor.camera.compressed else Image
    return {
        Modality.LIDAR: PointCloud2,
        Modality.RADAR: PointCloud2,
        Modality.ULTRASONIC: Range,
        Modality.ODOMETRY: Odometry,
    }[sensor.modality]


def decode(sensor: Sensor, msg: Any, *, decode_images: bool = False) -> tuple[int, Any]:
    """Check and convert one message of ``sensor``.

    Returns:
        (stamp_ns, payload): payload is (N, 3) float32 xyz for lidar, (N, 6) float32 for radar,
        an image array for cameras (None when ``decode_images`` is False: compressed images are
        then only checked for a known format and non-empty data), a RangeReading or an
        OdometrySample.
    """
    source = sensor.topic
    stamp_ns = convert.time_to_ns(msg.header.stamp, source=source)
    if sensor.modality is Modality.LIDAR:
        return stamp_ns, convert.pointcloud2_to_array(msg, fields=("x", "y", "z"), source=source)
    if sensor.modality is Modality.RADAR:
        return stamp_ns, convert.pointcloud2_to_radar(msg, source=source)
    if sensor.modality is Modality.ULTRASONIC:
        return stamp_ns, convert.range_to_reading(msg, source=source)
    if sensor.modality is Modality.ODOMETRY:
        return stamp_ns, convert.odometry_to_sample(msg, source=source)
    if not sensor.camera.compressed:
        return stamp_ns, convert.image_to_array(msg, source=source)
    if decode_images:
        return stamp_ns, convert.compressed_to_array(msg, source=source)
    convert.check_compressed(msg, source=source)
    return stamp_ns, None


def to_record(sensor: Sensor, msg: Any, receive_ns: int) -> SensorRecord:
    """One message of ``sensor`` as the ROS-free record the perception pipeline consumes.

    Payloads: lidar -> PointScan of the rig's lidar fields that the message carries (x, y, z
    always); radar -> PointScan of RADAR_FIELDS; compressed camera -> EncodedImage (checked,
    not decoded; intrinsics are the rig's, at full resolution: the pipeline resizes images
    to the network size, which only needs the aspect ratio); raw camera -> EncodedImage of
    the image re-encoded as PNG; ultrasonic -> RangeReading; odometry -> OdometrySample.
    Raises ``ConversionError`` subclasses naming the topic on bad messages. A message received
    before its own stamp (clocks of two machines apart) is given ``receive_ns = stamp_ns``.
    """
    source = sensor.topic
    if sensor.modality is Modality.LIDAR:
        stamp_ns = convert.time_to_ns(msg.header.stamp, source=source)
        available = {field.name for field in msg.fields}
        fields = tuple(f for f in sensor.lidar.fields if f in available or f in ("x", "y", "z"))
        payload: Any = PointScan(fields, convert.pointcloud2_to_array(msg, fields=fields, source=source))
    elif sensor.modality is Modality.RADAR:
        stamp_ns = convert.time_to_ns(msg.header.stamp, source=source)
        payload = PointScan(convert.RADAR_FIELDS, convert.pointcloud2_to_radar(msg, source=source))
    elif sensor.modality is Modality.CAMERA:
        stamp_ns = convert.time_to_ns(msg.header.stamp, source=source)
        intrinsics = sensor.camera.intrinsics
        if sensor.camera.compressed:
            codec = convert.check_compressed(msg, source=source)
            payload = EncodedImage(bytes(msg.data), codec, intrinsics)
        else:
            import cv2

            _, png = cv2.imencode(".png", convert.image_to_array(msg, source=source))
            payload = EncodedImage(png.tobytes(), "png", intrinsics)
    else:
        stamp_ns, payload = decode(sensor, msg)
    return SensorRecord(sensor.id, stamp_ns, max(int(receive_ns), stamp_ns), payload)
