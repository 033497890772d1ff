"""QoS profiles by name, shared by every node (a parameter picks one)."""

from __future__ import annotations

from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)

QOS_PROFILES: dict[str, QoSProfile] = {
    # best effort, keep last 5: the default for sensor streams (drop rather than queue)
    "sensor_data": qos_profile_sensor_data,
    # reliable, keep last 50: for bag replay on a loaded machine where every message counts (a
    # camera burst of 6 images per frame must not overwrite unread samples while a callback runs)
    "reliable": QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=50,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.VOLATILE,
    ),
}
