"""``fusion record``'s engine: live topics written to an MCAP (or SQLite3) bag with rclpy.

The recorder finds topics and their types on the ROS graph (``get_topic_names_and_types``),
re-checking every DISCOVERY_PERIOD_S for late publishers, subscribes raw (the CDR bytes go to
:class:`fusion_node.bag.BagWriter` untouched: no deserialize/serialize round trip) with a QoS
adapted to the publishers' offers, and stamps each message with its receive time as the log
time (the middleware's reception timestamp, system clock). The bag is closed cleanly when the
duration ends or ``should_stop()`` turns true (Ctrl-C / SIGTERM set it): messages DDS has
received by then are written (DRAIN_LIMIT_S at most), and the bag is complete and readable.

Also here, ROS-free and shared with :mod:`fusion_node.player` (proposed to move to
``fusion_node/qos.py`` and ``fusion_node/processes.py``): topic-name and numeric option checks,
the QoS adaptation to offers (:func:`adapt_offered_qos`) and :func:`stop_on_signals`. rclpy
is imported inside the functions that need it.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import re
import signal
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from fusion_node.errors import BagOptionError
from fusion_node.teardown import close_ros

#: Seconds between two looks at the ROS graph for new topics.
DISCOVERY_PERIOD_S: Final = 0.5
#: History depth of the recording subscriptions (messages DDS may hold while the writer works).
RECORD_DEPTH: Final = 100
#: Seconds at most spent at the end writing messages DDS received but had not handed over.
DRAIN_LIMIT_S: Final = 2.0
#: ROS infrastructure topics that ``--all`` leaves out (name them with --topics to record them).
INFRASTRUCTURE_TOPICS: Final = ("/rosout", "/parameter_events")
#: History depth when the offers give none (rosbag2's default).
DEFAULT_DEPTH: Final = 10

_TOPIC_NAME = re.compile(r"^(/[A-Za-z_][A-Za-z0-9_]*)+$")


# -- shared checks -----------------------------------------------------------------------
def is_topic_name(name: str) -> bool:
    """An absolute ROS 2 topic name: ``/`` + tokens of letters, digits and ``_`` (not starting
    with a digit) separated by single ``/``."""
    return isinstance(name, str) and bool(_TOPIC_NAME.match(name))


def check_number(
    option: str, value: float, *, minimum: float, exclusive: bool = False, maximum: float = math.inf
) -> None:
    """BagOptionError naming ``option`` and ``value`` unless minimum <(=) value <= maximum."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not (ok and (value > minimum if exclusive else value >= minimum) and value <= maximum):
        low = f"> {minimum:g}" if exclusive else f">= {minimum:g}"
        high = f" and <= {maximum:g}" if math.isfinite(maximum) else ""
        raise BagOptionError(f"{option} must be a finite number {low}{high}, got {value!r}")


@contextlib.contextmanager
def stop_on_signals(signals: Sequence[int] = (signal.SIGINT, signal.SIGTERM)) -> Iterator[Callable[[], bool]]:
    """Within the block, Ctrl-C / SIGTERM set a flag instead of raising: yields
    ``should_stop()`` for the player and recorder loops, which end cleanly between two
    messages. A second signal raises KeyboardInterrupt (for a shutdown that hangs). The previous
    handlers are restored on exit."""
    received: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        received.append(signum)
        if len(received) > 1:
            raise KeyboardInterrupt

    previous = {s: signal.signal(s, handler) for s in signals}
    try:
        yield lambda: bool(received)
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


# -- QoS -------------------------------------------------------------------------------
@dataclass(frozen=True)
class QosChoice:
    """A publisher or subscription QoS: reliability, durability and keep-last depth."""

    reliable: bool
    transient_local: bool
    depth: int

    def to_profile(self) -> Any:
        """The rclpy QoSProfile (KEEP_LAST ``depth``)."""
        from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

        return QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=self.depth,
            reliability=ReliabilityPolicy.RELIABLE if self.reliable else ReliabilityPolicy.BEST_EFFORT,
            durability=DurabilityPolicy.TRANSIENT_LOCAL if self.transient_local else DurabilityPolicy.VOLATILE,
        )


def _policy(value: Any) -> str:
    return str(getattr(value, "name", value)).upper()


def adapt_offered_qos(offers: Sequence[Any], *, depth: int | None = None) -> QosChoice:
    """One QoS compatible with every offer: rosbags ``Qos`` recorded in a bag or rclpy
    ``QoSProfile`` of live publishers (anything with reliability/durability/history enums and a
    depth). The player publishes as recorded; the recorder subscribes to what is offered.

    Like rosbag2: reliable only when every offer is reliable, transient-local only when every
    offer is (a subscription asking more would not match some publishers; a replay offering
    more would promise what was not recorded); no offers: reliable, volatile. Depth: ``depth``
    when given, else the largest keep-last depth offered, else DEFAULT_DEPTH.
    """
    reliable = all(_policy(o.reliability) == "RELIABLE" for o in offers)
    transient = bool(offers) and all(_policy(o.durability) == "TRANSIENT_LOCAL" for o in offers)
    if depth is None:
        depths = [int(o.depth) for o in offers if _policy(o.history) == "KEEP_LAST" and int(o.depth) > 0]
        depth = max(depths, default=DEFAULT_DEPTH)
    return QosChoice(reliable=reliable, transient_local=transient, depth=max(1, depth))


# -- options ---------------------------------------------------------------------------
@dataclass(frozen=True)
class RecordOptions:
    """What ``fusion record`` was asked for; checked on construction (errors name the option).

    Attributes:
        out: the bag directory to create (must not exist).
        topics: record only these topics; None records every topic (``--all``) except
            INFRASTRUCTURE_TOPICS and hidden ones (a name token starting with ``_``).
        storage: "mcap" (zstd chunk compression, as BagWriter does) or "sqlite3".
        duration_s: stop after this many seconds from the start (None: until stopped).
    """

    out: str
    topics: tuple[str, ...] | None = None
    storage: str = "mcap"
    duration_s: float | None = None

    def __post_init__(self) -> None:
        from fusion_node.bag.writer import STORAGES

        if self.topics is not None:
            if not self.topics:
                raise BagOptionError("--topics needs at least one topic (or use --all)")
            for topic in self.topics:
                if not is_topic_name(topic):
                    raise BagOptionError(f"--topics {topic!r} is not an absolute topic name (/name/of/topic)")
        if self.storage not in STORAGES:
            raise BagOptionError(f"--storage {self.storage!r} is not one of {list(STORAGES)}")
        if self.duration_s is not None:
            check_number("--duration", self.duration_s, minimum=0.0, exclusive=True)
        if not self.out:
            raise BagOptionError("--out must name the bag directory to create")

    def records(self, topic: str) -> bool:
        """Whether ``topic`` is to be recorded."""
        if self.topics is not None:
            return topic in self.topics
        hidden = any(token.startswith("_") for token in topic.split("/"))
        return topic not in INFRASTRUCTURE_TOPICS and not hidden


@dataclass(frozen=True)
class RecordSummary:
    """How a recording went.

    Attributes:
        path: the bag written.
        counts: topic -> messages written.
        skipped: topic -> why it was not recorded (type not installed or unknown, several types).
        missing: requested topics (``--topics``) never seen on the graph.
        wall_s: seconds recorded.
        ended_by: "duration" or "signal".
    """

    path: str
    counts: dict[str, int]
    skipped: dict[str, str]
    missing: tuple[str, ...]
    wall_s: float
    ended_by: str


# -- rclpy recorder --------------------------------------------------------------------
def record(
    options: RecordOptions,
    *,
    should_stop: Callable[[], bool] = lambda: False,
    on_progress: Callable[[Mapping[str, int], float], None] | None = None,
    on_event: Callable[[str], None] = print,
) -> RecordSummary:
    """Record until ``options.duration_s`` passes or ``should_stop()`` (polled every 0.05 s).

    Args:
        on_progress: ``on_progress(counts per topic, seconds recorded)`` twice a second.
        on_event: one-line notices (a topic recorded, a topic skipped and why).

    Raises BagExistsError when ``options.out`` exists (before DDS starts).
    """
    from fusion_node.bag.writer import BagWriter

    writer = BagWriter(
        options.out, storage=options.storage, custom_data={"fusion_runtime.recorded_by": "fusion record"}
    )
    writer.open()
    recorder: _Recorder | None = None
    try:
        recorder = _Recorder(options, writer, on_event)
        start = time.monotonic()
        ended_by = recorder.spin(start, should_stop, on_progress)
        wall_s = time.monotonic() - start
        recorder.drain()
    except BaseException:
        if any(writer.message_counts.values()):
            writer.close()  # what was received stays readable
        else:
            writer.abort()
        if recorder is not None:
            recorder.close()
        raise
    writer.close()  # complete on disk before the DDS teardown, which may be cut short
    recorder.close()
    counts = writer.message_counts
    missing = tuple(t for t in options.topics or () if t not in counts and t not in recorder.skipped)
    return RecordSummary(str(Path(options.out)), counts, dict(recorder.skipped), missing, wall_s, ended_by)


class _Recorder:
    """rclpy context, node and raw subscriptions of one recording (own context, no rclpy
    signal handlers: the caller's flag stops it between two messages, never inside a write)."""

    def __init__(self, options: RecordOptions, writer: Any, on_event: Callable[[str], None]) -> None:
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.signals import SignalHandlerOptions

        self.options, self.writer, self.on_event = options, writer, on_event
        self.context = Context()
        rclpy.init(context=self.context, signal_handler_options=SignalHandlerOptions.NO)
        self.node = rclpy.create_node(f"fusion_record_{os.getpid()}", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.subscriptions: dict[str, Any] = {}
        self.skipped: dict[str, str] = {}
        self.received = 0
        self._last_log_ns: dict[str, int] = {}

    def discover(self) -> None:
        """Subscribe to every wanted topic that has a publisher and is not recorded yet."""
        from fusion_node.bag.writer import message_class

        for topic, types in self.node.get_topic_names_and_types():
            if topic in self.subscriptions or topic in self.skipped or not self.options.records(topic):
                continue
            if len(types) != 1:
                self._skip(topic, f"published with several types {sorted(types)}")
                continue
            offers = [info.qos_profile for info in self.node.get_publishers_info_by_topic(topic)]
            if not offers:
                continue  # only subscribers so far: look again later
            try:
                cls = message_class(types[0])
                self.writer.add_topic(topic, types[0], qos=adapt_offered_qos(offers).to_profile())
            except (ImportError, BagOptionError) as exc:
                self._skip(topic, f"type {types[0]} cannot be recorded: {exc}")
                continue
            qos = adapt_offered_qos(offers, depth=RECORD_DEPTH)
            callback = functools.partial(self._receive, topic)
            self.subscriptions[topic] = self.node.create_subscription(cls, topic, callback, qos.to_profile(), raw=True)
            kind = "reliable" if qos.reliable else "best effort"
            self.on_event(f"recording {topic} ({types[0]}, {kind})")

    def _skip(self, topic: str, reason: str) -> None:
        self.skipped[topic] = reason
        self.on_event(f"not recording {topic}: {reason}")

    def _receive(self, topic: str, data: bytes, info: Mapping[str, Any]) -> None:
        received = int(info.get("received_timestamp") or 0)
        # log time = receive time, kept increasing per topic: a sample that a reliable writer
        # sent again is delivered in order but received after its successors, and readers
        # order a bag by log time
        log_ns = max(received if received > 0 else time.time_ns(), self._last_log_ns.get(topic, 0) + 1)
        self._last_log_ns[topic] = log_ns
        self.writer.write(topic, data, log_ns)
        self.received += 1

    def spin(
        self,
        start: float,
        should_stop: Callable[[], bool],
        on_progress: Callable[[Mapping[str, int], float], None] | None,
    ) -> str:
        end = start + self.options.duration_s if self.options.duration_s is not None else math.inf
        next_discovery = next_progress = start
        while not should_stop():
            now = time.monotonic()
            if now >= end:
                return "duration"
            if now >= next_discovery:
                self.discover()
                next_discovery = now + DISCOVERY_PERIOD_S
            if on_progress is not None and now >= next_progress:
                on_progress(self.writer.message_counts, now - start)
                next_progress = now + 0.5
            self.executor.spin_once(timeout_sec=min(0.05, max(0.0, end - now)))
        return "signal"

    def drain(self, limit_s: float = DRAIN_LIMIT_S) -> None:
        """Write what DDS has received but not handed over yet (until three idle turns)."""
        deadline, idle = time.monotonic() + limit_s, 0
        while idle < 3 and time.monotonic() < deadline:
            before = self.received
            self.executor.spin_once(timeout_sec=0.0)
            idle = idle + 1 if self.received == before else 0

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=1.0)
        close_ros(self.node, self.context, what="fusion record")
