"""A bag's sensor messages as ROS-free records, in log-time order (what a live node receives),
and the frames a :class:`perception.pipeline.FramePipeline` makes of them.

``read_records(bag, rig)`` yields a :class:`perception.samples.SensorRecord` per message on a
rig sensor topic (``fusion_node.sensor_inputs.to_record``; ``receive_ns`` = the log time).
Topics that are not rig sensors (camera_info, ground truth, outputs) are skipped. A message
that does not convert is not fatal: it is skipped and reported to ``on_error`` with its topic,
log time and the reason, like the node drops and reports a malformed message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from calibration import Rig
from fusion_node.bag.reader import BagReader
from fusion_node.errors import ConversionError
from fusion_node.sensor_inputs import to_record
from perception.pipeline import FramePipeline, PreparedFrame
from perception.samples import SensorRecord


@dataclass(frozen=True)
class SkippedMessage:
    topic: str
    log_time_ns: int
    reason: str


def read_records(
    bag: str | Path,
    rig: Rig,
    *,
    sensors: set[str] | None = None,
    on_error: Callable[[SkippedMessage], None] | None = None,
) -> Iterator[SensorRecord]:
    """Records of the rig's sensors (or only ``sensors``) in ``bag``, in log-time order."""
    by_topic = {s.topic: s for s in rig.sensors if sensors is None or s.id in sensors}
    with BagReader(bag) as reader:
        topics = [t for t in reader.topics if t in by_topic]
        for message in reader.messages(topics):
            sensor = by_topic[message.topic]
            try:
                yield to_record(sensor, message.msg, message.log_time_ns)
            except (ConversionError, ValueError) as exc:
                if on_error is not None:
                    on_error(SkippedMessage(message.topic, message.log_time_ns, str(exc)))


def replay_frames(
    bag: str | Path,
    rig: Rig,
    pipeline: FramePipeline,
    *,
    on_error: Callable[[SkippedMessage], None] | None = None,
) -> Iterator[PreparedFrame]:
    """Every frame ``pipeline`` prepares from the bag's records, the pending ones flushed at the end."""
    for record in read_records(bag, rig, on_error=on_error):
        yield from pipeline.push(record)
    yield from pipeline.flush()
