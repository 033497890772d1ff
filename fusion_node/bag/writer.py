"""Write rosbag2 bags (MCAP or SQLite3) from rclpy message objects, on ``rosbags``.

Messages are serialized with ``rclpy.serialization.serialize_message`` from the objects that
:mod:`fusion_node.convert` builds, so a bag holds exactly what a live topic would carry.
Message definitions and type hashes come from the rosbags typestore of the ROS 2 release
the wheels are built for (Kilted), so MCAP files carry ``ros2msg`` schemas that any MCAP
reader (``mcap`` + ``mcap-ros2-support``, Foxglove) decodes.

Compression: MCAP bags use MCAP-native CHUNK compression (zstd by default, lz4 on request;
chunks of 1 MiB uncompressed), which every MCAP reader and ``ros2 bag`` understand; the
bag's metadata.yaml then says ``compression_mode: ''`` because the storage handles it.
rosbag2 message/file compression is never used. SQLite3 bags are uncompressed.
"""

from __future__ import annotations

import importlib
import shutil
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from rclpy.duration import Duration
from rclpy.qos import QoSProfile
from rclpy.serialization import serialize_message
from rosbags.interfaces import Connection, Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from rosbags.rosbag2 import Writer, WriterError
from rosbags.rosbag2.enums import CompressionFormat, CompressionMode, StoragePlugin
from rosbags.typesys import Stores, get_typestore
from rosbags.typesys.store import Typestore

from fusion_node.errors import BagExistsError, BagOptionError, BagWriteError, UnknownTopicError
from fusion_node.qos import QOS_PROFILES

#: Storage plugin names accepted by :class:`BagWriter`.
STORAGES: Final = ("mcap", "sqlite3")
#: Compression names: MCAP chunk compression; "none" for SQLite3.
COMPRESSIONS: Final = ("zstd", "lz4", "none")
#: Default compression per storage when ``compression`` is None.
DEFAULT_COMPRESSION: Final = {"mcap": "zstd", "sqlite3": "none"}
#: rosbag2 metadata version written (Jazzy and later read it).
BAG_VERSION: Final = 9

_PLUGINS: Final = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
_TYPESTORE: Typestore | None = None


def typestore() -> Typestore:
    """The rosbags typestore of ROS 2 Kilted (message definitions and RIHS01 hashes)."""
    global _TYPESTORE
    if _TYPESTORE is None:
        _TYPESTORE = get_typestore(Stores.ROS2_KILTED)
    return _TYPESTORE


def normalize_msgtype(msgtype: str) -> str:
    """ "pkg/Name" or "pkg/msg/Name" -> "pkg/msg/Name" (other strings are returned as is)."""
    parts = msgtype.split("/") if isinstance(msgtype, str) else []
    return f"{parts[0]}/msg/{parts[1]}" if len(parts) == 2 else str(msgtype)


def message_class(msgtype: str) -> type[Any]:
    """The rclpy message class of "pkg/msg/Name"; ImportError when its package is missing."""
    parts = normalize_msgtype(msgtype).split("/")
    if len(parts) != 3 or not all(parts):
        raise ImportError(f"{msgtype!r} is not a message type name like 'sensor_msgs/msg/PointCloud2'")
    module = importlib.import_module(f"{parts[0]}.{parts[1]}")
    cls = getattr(module, parts[2], None)
    if not isinstance(cls, type):
        raise ImportError(f"package {parts[0]} has no message {parts[2]}")
    return cls


def _duration(value: Duration) -> QosTime:
    sec, nsec = divmod(int(value.nanoseconds), 1_000_000_000)
    return QosTime(sec, nsec)


def qos_to_rosbags(profile: QoSProfile) -> Qos:
    """An rclpy QoSProfile as the rosbags ``Qos`` stored in ``offered_qos_profiles``."""
    return Qos(
        history=QosHistory[profile.history.name],
        depth=int(profile.depth),
        reliability=QosReliability[profile.reliability.name],
        durability=QosDurability[profile.durability.name],
        deadline=_duration(profile.deadline),
        lifespan=_duration(profile.lifespan),
        liveliness=QosLiveliness[profile.liveliness.name],
        liveliness_lease_duration=_duration(profile.liveliness_lease_duration),
        avoid_ros_namespace_conventions=bool(profile.avoid_ros_namespace_conventions),
    )


class BagWriter:
    """Context manager writing one new rosbag2 bag directory.

    ::

        with BagWriter("out/run1", storage="mcap") as bag:
            bag.add_topic("/sensing/lidar/top/points", "sensor_msgs/msg/PointCloud2", qos="sensor_data")
            bag.write("/sensing/lidar/top/points", cloud_msg, log_time_ns)

    Args:
        path: the bag directory to create; it must not exist (BagExistsError).
        storage: "mcap" (default) or "sqlite3".
        compression: "zstd", "lz4" or "none"; None picks zstd for MCAP and none for
            SQLite3 (which has no chunk compression: zstd/lz4 with sqlite3 is an error).
        custom_data: string key/values stored in metadata.yaml ``custom_data``.

    Messages may be written in any log-time order (readers merge chunks by time). When the
    ``with`` body raises, the partial bag directory is removed.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        storage: str = "mcap",
        compression: str | None = None,
        custom_data: Mapping[str, str] | None = None,
    ) -> None:
        self.path = Path(path)
        if storage not in STORAGES:
            raise BagOptionError(f"unknown storage {storage!r}; expected one of {list(STORAGES)}", path=str(path))
        chosen = DEFAULT_COMPRESSION[storage] if compression is None else compression
        if chosen not in COMPRESSIONS:
            raise BagOptionError(
                f"unknown compression {compression!r}; expected one of {list(COMPRESSIONS)}", path=str(path)
            )
        if storage == "sqlite3" and chosen != "none":
            raise BagOptionError(
                f"compression {chosen!r} is MCAP chunk compression; sqlite3 bags have none "
                "(use storage 'mcap' or compression 'none')",
                path=str(path),
            )
        if self.path.exists():
            raise BagExistsError("exists already; bags are never overwritten (choose a new path)", path=str(path))
        self.storage = storage
        self.compression = chosen
        self._writer = Writer(self.path, version=BAG_VERSION, storage_plugin=_PLUGINS[storage])
        if chosen == "zstd":
            self._writer.set_compression(CompressionMode.STORAGE, CompressionFormat.ZSTD)
        self._custom: dict[str, str] = {}
        for key, value in (custom_data or {}).items():
            self.set_custom_data(key, value)
        self._connections: dict[str, Connection] = {}
        self._classes: dict[str, type[Any]] = {}
        self._counts: dict[str, int] = {}
        self._span = (2**63, -1)  # (first, last) log time written
        self._open = False
        self._closed = False

    # -- lifecycle -------------------------------------------------------------------
    def open(self) -> None:
        """Create the bag directory and storage file."""
        if self._open or self._closed:
            raise BagWriteError("writer was opened already (a BagWriter writes one bag)", path=str(self.path))
        try:
            self._writer.open()
        except WriterError as exc:
            raise BagExistsError(str(exc), path=str(self.path)) from exc
        self._open = True
        if self.compression == "lz4":
            self._use_lz4_chunks()

    def _use_lz4_chunks(self) -> None:
        # rosbags' MCAP writer compresses chunks with zstd only; it applies whatever
        # (name, function) pair its storage holds when a chunk closes, and readers accept
        # "lz4" (LZ4 frame format) per the MCAP specification.
        import lz4.frame

        storage: Any = self._writer.storage
        if not (hasattr(storage, "compression") and hasattr(storage, "compressor")):
            self.abort()
            raise BagOptionError(
                "lz4 chunk compression is not available with this rosbags version", path=str(self.path)
            )
        storage.compression = "lz4"
        storage.compressor = lz4.frame.compress

    def close(self) -> None:
        """Write the summary and metadata.yaml; the bag is complete afterwards."""
        if not self._open:
            raise BagWriteError("writer is not open", path=str(self.path))
        for key, value in self._custom.items():
            self._writer.set_custom_data(key, value)
        self._writer.close()
        self._open, self._closed = False, True

    def abort(self) -> None:
        """Stop writing and remove the partial bag directory."""
        if self._open:
            self._writer.abort()
        self._open, self._closed = False, True
        if self.path.is_dir():
            shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self) -> BagWriter:
        self.open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            try:
                self.close()
            except BaseException:
                self.abort()
                raise
        else:
            self.abort()

    # -- content ---------------------------------------------------------------------
    def set_custom_data(self, key: str, value: str) -> None:
        """Store a string key/value in metadata.yaml ``custom_data`` (written on close)."""
        if not isinstance(key, str) or not key or not isinstance(value, str):
            raise BagOptionError(
                f"custom_data needs a non-empty string key and a string value, got {key!r}: {type(value).__name__}",
                path=str(self.path),
            )
        self._custom[key] = value

    def add_topic(self, topic: str, msgtype: str, *, qos: str | QoSProfile | None = None) -> None:
        """Register ``topic`` with message type ``msgtype`` ("sensor_msgs/msg/PointCloud2"
        or "sensor_msgs/PointCloud2") and the QoS it is offered with: a name from
        ``fusion_node.qos.QOS_PROFILES`` or an rclpy QoSProfile (None: not recorded)."""
        if not self._open:
            raise BagWriteError(f"add_topic({topic!r}) on a writer that is not open", path=str(self.path))
        if not isinstance(topic, str) or not topic.startswith("/"):
            raise UnknownTopicError(
                f"topic must be an absolute name starting with '/', got {topic!r}", path=str(self.path)
            )
        if topic in self._connections:
            raise UnknownTopicError(
                f"topic {topic} was added already (as {self._connections[topic].msgtype})", path=str(self.path)
            )
        name = normalize_msgtype(msgtype)
        store = typestore()
        if name not in store.fielddefs:
            raise BagOptionError(f"unknown message type {msgtype!r} for topic {topic}", path=str(self.path))
        try:
            cls = message_class(name)
        except ImportError as exc:
            raise BagOptionError(f"message type {name} for topic {topic}: {exc}", path=str(self.path)) from exc
        profiles: list[Qos] = []
        if isinstance(qos, str):
            if qos not in QOS_PROFILES:
                raise BagOptionError(
                    f"unknown QoS profile {qos!r} for topic {topic}; expected one of {sorted(QOS_PROFILES)}",
                    path=str(self.path),
                )
            profiles = [qos_to_rosbags(QOS_PROFILES[qos])]
        elif isinstance(qos, QoSProfile):
            profiles = [qos_to_rosbags(qos)]
        elif qos is not None:
            raise BagOptionError(
                f"qos for topic {topic} must be a profile name or QoSProfile, got {qos!r}", path=str(self.path)
            )
        self._connections[topic] = self._writer.add_connection(
            topic, name, typestore=store, offered_qos_profiles=profiles
        )
        self._classes[topic] = cls
        self._counts[topic] = 0

    def write(self, topic: str, msg: Any, log_time_ns: int) -> None:
        """Serialize ``msg`` (an rclpy message of the topic's type, or already CDR-serialized
        ``bytes``) and write it at ``log_time_ns`` (int nanoseconds >= 0, any order)."""
        connection = self._connections.get(topic)
        if connection is None:
            if not self._open:
                raise BagWriteError(f"write to {topic} on a writer that is not open", path=str(self.path))
            raise UnknownTopicError(
                f"topic {topic!r} was not added; known topics: {sorted(self._connections)}", path=str(self.path)
            )
        if not self._open:
            raise BagWriteError(f"write to {topic} on a writer that is not open", path=str(self.path))
        if isinstance(log_time_ns, bool) or not isinstance(log_time_ns, int) or not 0 <= log_time_ns < 2**63:
            raise BagWriteError(
                f"log_time_ns for {topic} must be an int in [0, 2**63), got {log_time_ns!r}", path=str(self.path)
            )
        if isinstance(msg, bytes | bytearray | memoryview):
            data = bytes(msg)
        elif isinstance(msg, self._classes[topic]):
            data = serialize_message(msg)
        else:
            raise BagWriteError(
                f"topic {topic} carries {connection.msgtype}, got a {type(msg).__module__}.{type(msg).__name__}",
                path=str(self.path),
            )
        self._writer.write(connection, int(log_time_ns), data)
        self._counts[topic] += 1
        self._span = (min(self._span[0], log_time_ns), max(self._span[1], log_time_ns))

    @property
    def topics(self) -> dict[str, str]:
        """topic -> message type of every added topic."""
        return {topic: connection.msgtype for topic, connection in self._connections.items()}

    @property
    def start_ns(self) -> int | None:
        """Earliest log time written so far (None before the first message)."""
        return self._span[0] if self._span[1] >= 0 else None

    @property
    def end_ns(self) -> int | None:
        """Latest log time written so far (None before the first message)."""
        return self._span[1] if self._span[1] >= 0 else None

    @property
    def message_counts(self) -> dict[str, int]:
        """topic -> messages written so far."""
        return dict(self._counts)
