"""Read rosbag2 bags (MCAP or SQLite3) into rclpy message objects, on ``rosbags``.

Messages are deserialized with ``rclpy.serialization.deserialize_message`` into the rclpy
classes, so the readers of :mod:`fusion_node.convert` apply to them exactly as to live
messages. Times are int nanoseconds; messages come in log-time order.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from rclpy.serialization import deserialize_message
from rosbags.rosbag2 import Reader, ReaderError

from fusion_node.bag.writer import message_class
from fusion_node.errors import BagReadError, UnknownTopicError


@dataclass(frozen=True)
class BagMessage:
    """One message of a bag.

    Attributes:
        topic: topic name.
        msgtype: "pkg/msg/Name".
        log_time_ns: time the message was recorded (bag log time), int nanoseconds.
        msg: the deserialized rclpy message, or the CDR bytes when read with ``raw=True``.
    """

    topic: str
    msgtype: str
    log_time_ns: int
    msg: Any


class BagReader:
    """Context manager reading a rosbag2 bag directory (or a single .mcap / .db3 file).

    ::

        with BagReader("bags/sample") as bag:
            print(bag.topics, bag.duration_ns)
            for item in bag.messages(["/sensing/lidar/top/points"]):
                points = pointcloud2_to_array(item.msg, source=item.topic)

    Errors are BagReadError naming the path (missing, not a bag, corrupt) and
    UnknownTopicError for a topic the bag does not have.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self._reader = Reader(self.path)
        except FileNotFoundError as exc:
            reason = f"not a rosbag2 bag ({exc})" if self.path.exists() else "does not exist"
            raise BagReadError(reason, path=str(self.path)) from None
        except (ReaderError, OSError) as exc:
            raise BagReadError(f"not a rosbag2 bag: {exc}", path=str(self.path)) from exc
        self._classes: dict[str, type[Any]] = {}

    def open(self) -> None:
        try:
            self._reader.open()
        except FileNotFoundError as exc:
            raise BagReadError(f"not a rosbag2 bag ({exc})", path=str(self.path)) from None
        except (ReaderError, OSError, ValueError, KeyError, TypeError) as exc:
            raise BagReadError(f"cannot be read: {exc}", path=str(self.path)) from exc
        except Exception as exc:  # apsw/sqlite errors of a corrupt .db3 have no common base
            raise BagReadError(f"cannot be read: {type(exc).__name__}: {exc}", path=str(self.path)) from exc

    def close(self) -> None:
        if self._reader.is_open:
            self._reader.close()

    def __enter__(self) -> BagReader:
        self.open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _open_reader(self) -> Reader:
        if not self._reader.is_open:
            raise BagReadError("reader is not open (use it in a with statement)", path=str(self.path))
        return self._reader

    # -- summary ---------------------------------------------------------------------
    @property
    def storage(self) -> str:
        """ "mcap" or "sqlite3"."""
        suffix = {".mcap": "mcap", ".db3": "sqlite3"}
        files = [self.path] if self.path.is_file() else sorted(self.path.iterdir())
        return next((suffix[f.suffix] for f in files if f.suffix in suffix), "unknown")

    @property
    def topics(self) -> dict[str, str]:
        """topic -> message type ("pkg/msg/Name")."""
        return {topic: str(info.msgtype) for topic, info in self._open_reader().topics.items()}

    @property
    def message_counts(self) -> dict[str, int]:
        """topic -> number of messages."""
        return {topic: int(info.msgcount) for topic, info in self._open_reader().topics.items()}

    @property
    def message_count(self) -> int:
        return int(self._open_reader().message_count)

    @property
    def start_ns(self) -> int | None:
        """Log time of the first message, None for an empty bag."""
        return int(self._open_reader().start_time) if self.message_count else None

    @property
    def end_ns(self) -> int | None:
        """Log time of the last message, None for an empty bag."""
        return int(self._open_reader().end_time) - 1 if self.message_count else None

    @property
    def duration_ns(self) -> int:
        """Last minus first log time, nanoseconds (0 for an empty or one-message bag)."""
        start, end = self.start_ns, self.end_ns
        return 0 if start is None or end is None else end - start

    @property
    def custom_data(self) -> dict[str, str]:
        """metadata.yaml ``custom_data`` (empty when none, or for a bare storage file)."""
        metadata = getattr(self._open_reader().storage, "metadata", None)
        custom = getattr(metadata, "custom", None) or {}
        return {str(key): str(value) for key, value in custom.items()}

    # -- messages --------------------------------------------------------------------
    def messages(
        self,
        topics: Iterable[str] | None = None,
        start_ns: int | None = None,
        stop_ns: int | None = None,
        *,
        raw: bool = False,
    ) -> Iterator[BagMessage]:
        """Messages in log-time order.

        Args:
            topics: only these topics (None: all). An unknown topic raises UnknownTopicError.
            start_ns: only messages logged at or after this time.
            stop_ns: only messages logged before this time.
            raw: yield the CDR bytes instead of deserializing.
        """
        known = self._open_reader().topics
        connections = []
        if topics is not None:
            wanted = [topics] if isinstance(topics, str) else list(topics)
            missing = [t for t in wanted if t not in known]
            if missing:
                raise UnknownTopicError(f"no topic {missing}; topics: {sorted(known)}", path=str(self.path))
            connections = [c for t in wanted for c in known[t].connections]
            if not connections:
                return iter(())
        return self._iterate(connections, start_ns, stop_ns, raw)

    def _iterate(self, connections: list[Any], start: int | None, stop: int | None, raw: bool) -> Iterator[BagMessage]:
        try:
            for connection, log_time, data in self._reader.messages(connections, start=start, stop=stop):
                msg = data if raw else self._deserialize(connection.topic, connection.msgtype, data, log_time)
                yield BagMessage(connection.topic, connection.msgtype, int(log_time), msg)
        except BagReadError:
            raise
        except Exception as exc:  # rosbags, zstd, lz4 and sqlite errors of a corrupt file share no base
            raise BagReadError(f"corrupt data: {type(exc).__name__}: {exc}", path=str(self.path)) from exc

    def _deserialize(self, topic: str, msgtype: str, data: bytes, log_time: int) -> Any:
        cls = self._classes.get(msgtype)
        if cls is None:
            try:
                cls = message_class(msgtype)
            except ImportError as exc:
                raise BagReadError(
                    f"topic {topic}: message type {msgtype} is not installed ({exc}); read with raw=True",
                    path=str(self.path),
                ) from exc
            self._classes[msgtype] = cls
        try:
            return deserialize_message(data, cls)
        except RuntimeError as exc:
            raise BagReadError(
                f"topic {topic}: message at log time {log_time} ns is not a valid {msgtype} ({exc})",
                path=str(self.path),
            ) from exc
