"""rosbag2 bags (MCAP / SQLite3) on ``rosbags``: writer, reader, and the record sink.

Messages are the rclpy objects of :mod:`fusion_node.convert`, serialized with rclpy, so a
bag holds exactly what the live topics carry.
"""

from fusion_node.bag.reader import BagMessage, BagReader
from fusion_node.bag.records import (
    GROUND_TRUTH_TOPIC,
    RIG_FILE,
    BagSummary,
    record_messages,
    sensor_topics,
    write_records,
)
from fusion_node.bag.writer import COMPRESSIONS, STORAGES, BagWriter

__all__ = [
    "COMPRESSIONS",
    "GROUND_TRUTH_TOPIC",
    "RIG_FILE",
    "STORAGES",
    "BagMessage",
    "BagReader",
    "BagSummary",
    "BagWriter",
    "record_messages",
    "sensor_topics",
    "write_records",
]
