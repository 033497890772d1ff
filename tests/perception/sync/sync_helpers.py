"""Helpers of the synchronizer tests (imported as ``sync_helpers``; pytest puts this folder on
sys.path): records without payload content and a small 3-sensor config.

Times are written in milliseconds after ``BASE`` and converted with ``at(ms)``.
"""

from __future__ import annotations

from calibration import Modality
from perception.samples import RangeReading, SensorRecord
from perception.sync import SensorSync, SyncConfig

MS = 1_000_000
BASE = 1_000 * 1_000_000_000
# The synchronizer never reads the payload; one shared value keeps records cheap.
PAYLOAD = RangeReading(0, "unused", 1.0, 0.1, 5.0, 0.5, True)


def at(ms: float) -> int:
    """BASE + ms, in nanoseconds."""
    return BASE + round(ms * MS)


def record(sensor_id: str, stamp_ms: float, receive_ms: float | None = None) -> SensorRecord:
    """A record stamped at ``stamp_ms`` and received at ``receive_ms`` (default: stamp + 5 ms)."""
    receive = stamp_ms + 5 if receive_ms is None else receive_ms
    return SensorRecord(sensor_id, at(stamp_ms), at(receive), PAYLOAD)


def small_config(clock: str = "arrival", *, queue_size: int = 8, max_pending: int = 4, **extra: object) -> SyncConfig:
    """lidar (reference, 10 Hz) + cam (tolerance 40 ms, deadline 150 ms) + radar (35 ms, 120 ms)."""
    return SyncConfig(
        reference="lidar",
        sensors=(
            SensorSync("cam", Modality.CAMERA, 0, 40 * MS, 150 * MS, queue_size),
            SensorSync("radar", Modality.RADAR, 0, 35 * MS, 120 * MS, queue_size),
        ),
        clock=clock,  # type: ignore[arg-type]
        max_pending=max_pending,
        **extra,  # type: ignore[arg-type]
    )
