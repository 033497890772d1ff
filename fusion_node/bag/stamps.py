"""Header stamps of a bag's sensor messages, read straight from the CDR bytes.

Every sensor message of the rig (PointCloud2, CompressedImage/Image, Range, Odometry) starts
with ``std_msgs/Header``, whose first fields are ``builtin_interfaces/Time stamp``: int32 sec,
uint32 nanosec. After the 4-byte encapsulation header (representation id, 2 bytes big-endian,
then 2 option bytes) they are the first 8 bytes of the body, so reading them needs no
deserialization. This is what ``fusion bench sync --bag`` and the synchronizer tests replay.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from calibration import Rig
from fusion_node.bag.reader import BagReader
from fusion_node.errors import BagReadError

_LITTLE: Final = struct.Struct("<iI")
_BIG: Final = struct.Struct(">iI")
#: Encapsulation representation id -> (byte order, bytes before the stamp in the body).
#: CDR_BE/LE (XCDR1, what rosbag2 records), plain CDR2_BE/LE, delimited D_CDR2_BE/LE (DHEADER).
_ENCAPSULATIONS: Final = {
    0x0000: (_BIG, 0),
    0x0001: (_LITTLE, 0),
    0x0006: (_BIG, 0),
    0x0007: (_LITTLE, 0),
    0x0008: (_BIG, 4),
    0x0009: (_LITTLE, 4),
}


@dataclass(frozen=True, slots=True)
class StampedMessage:
    """Where and when one sensor message of a bag was stamped and logged.

    Attributes:
        sensor_id: rig sensor id of the topic.
        stamp_ns: header stamp, int nanoseconds.
        log_time_ns: bag log time (when the recorder received it), int nanoseconds.
    """

    sensor_id: str
    stamp_ns: int
    log_time_ns: int

    @property
    def receive_ns(self) -> int:
        """The log time: when the message arrived (so it can be pushed to the synchronizer)."""
        return self.log_time_ns


def header_stamp_ns(data: bytes | bytearray | memoryview, topic: str = "", log_time_ns: int = -1) -> int:
    """Header stamp (int ns) of one CDR-serialized message that starts with std_msgs/Header.

    Raises:
        ValueError: too short, unknown encapsulation, nanosec >= 1e9 or a negative stamp; the
            message names the topic and log time.
    """
    where = f"topic {topic or '?'}, message at log time {log_time_ns} ns"
    if len(data) < 4:
        raise ValueError(f"{where}: {len(data)} bytes, too short for a CDR encapsulation header (4)")
    representation = (data[0] << 8) | data[1]
    layout = _ENCAPSULATIONS.get(representation)
    if layout is None:
        raise ValueError(
            f"{where}: encapsulation 0x{representation:04x} is not plain CDR; "
            f"expected one of {[f'0x{k:04x}' for k in _ENCAPSULATIONS]}"
        )
    unpack, skip = layout
    start = 4 + skip
    if len(data) < start + 8:
        raise ValueError(f"{where}: {len(data)} bytes, too short for a header stamp (needs {start + 8})")
    sec, nanosec = unpack.unpack_from(data, start)
    if nanosec >= 1_000_000_000 or sec < 0:
        raise ValueError(f"{where}: header stamp sec={sec}, nanosec={nanosec} is not a valid time")
    return sec * 1_000_000_000 + nanosec


def bag_stamps(bag_path: str | Path, rig: Rig) -> list[StampedMessage]:
    """The stamp of every message on a rig sensor's topic in the bag, in log-time order.

    Topics map to sensors through ``sensor.topic``; other topics (camera_info, ground truth,
    anything the rig does not name) are skipped, and rig sensors absent from the bag simply
    have no messages.

    Raises:
        BagReadError: the bag cannot be read, or a message is too short / malformed to hold a
            header stamp (the message names the bag, topic and log time).
    """
    with BagReader(bag_path) as reader:
        by_topic = {sensor.topic: sensor.id for sensor in rig.sensors if sensor.topic in reader.topics}
        if not by_topic:
            return []
        result: list[StampedMessage] = []
        for message in reader.messages(list(by_topic), raw=True):
            try:
                stamp = header_stamp_ns(message.msg, message.topic, message.log_time_ns)
            except ValueError as exc:
                raise BagReadError(str(exc), path=str(bag_path)) from None
            result.append(StampedMessage(by_topic[message.topic], stamp, message.log_time_ns))
        return result
