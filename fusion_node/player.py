"""``fusion replay``'s engine: a rosbag2 bag played on live topics with rclpy, no ROS install.

Two layers in one module, the first importable with rclpy blocked (``sys.modules["rclpy"] =
None``) so the timing logic is tested without DDS:

- ROS-free: :class:`PlaybackOptions` (checked on construction), :class:`PlaybackPlan` (what
  to play: built and checked against the bag by ``fusion_node.commands.replay.plan_playback``)
  and :class:`PlaybackSchedule`, which says when each message is due under a rate, pauses,
  steps and loops.
- rclpy (imported inside the functions): :func:`play` creates one publisher per played topic
  (the bag's message classes, deserialized by :class:`fusion_node.bag.BagReader`: the rclpy
  objects are published), optionally ``/clock`` (rosgraph_msgs/msg/Clock), and runs the loop.

Timing model (all times int nanoseconds; wall = ``time.monotonic_ns()``): the schedule maps bag
log time to wall time through an anchor ``(bag, wall)`` and the rate,
``due(t) = anchor_wall + (t - anchor_bag) / rate``. Pausing freezes the bag position (the anchor
moves to it), resuming re-anchors at the resume instant, so a pause never causes a burst;
stepping while paused publishes the next message at once and moves the position to its log
time. A player that falls behind publishes the overdue messages immediately, in order: nothing
is skipped. A loop restarts at the window start (bag start + start offset) at the instant the
previous loop's last message was due; the data clock jumps back, by design (the synchronizer
resets on a backward jump). ``/clock`` carries the bag position, never ahead of the next
unpublished message and monotonic within a loop.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Final, Generic, Protocol, TypeVar

from fusion_node.errors import BagOptionError
from fusion_node.recorder import QosChoice, adapt_offered_qos, check_number
from fusion_node.teardown import close_ros

#: ``--qos`` choices: the QoS recorded in the bag, or one of fusion_node.qos.QOS_PROFILES.
QOS_CHOICES: Final = ("bag", "reliable", "sensor_data")
#: ``--clock`` without a value publishes at this rate (rosbag2's default).
DEFAULT_CLOCK_HZ: Final = 40.0
CLOCK_TOPIC: Final = "/clock"
#: Seconds to wait at the end for reliable subscribers to acknowledge every message.
ACK_TIMEOUT_S: Final = 5.0

_NS = 1_000_000_000


# -- options -------------------------------------------------------------------------
@dataclass(frozen=True)
class PlaybackOptions:
    """What ``fusion replay`` was asked for; checked on construction (errors name the option).

    Attributes:
        rate: bag seconds per wall second (> 0; 2.0 plays twice as fast).
        loop: restart from the window start after the last message, until stopped.
        start_offset_s: seconds after the bag's first log time where playback starts.
        topics: only these topics (None: every topic of the bag).
        remap: ``OLD:=NEW`` rules renaming played topics.
        clock_hz: publish /clock at this rate (None: no /clock).
        qos: "bag" (the QoS offered when recording), "reliable" or "sensor_data".
        wait_for_subscribers_s: before playing, wait up to this long until every played topic
            has a subscriber (None: start at once).
        delay_s: then sleep this long before the first message (rosbag2's ``--delay``). A
            publisher sees its subscriber before that subscriber has matched the publisher in
            turn; reliable samples sent in between are repaired later in one burst (measured
            over Fast DDS with 25 topics: the first 0.4 s of the bag arrived 0.3-0.5 s late).
    """

    rate: float = 1.0
    loop: bool = False
    start_offset_s: float = 0.0
    topics: tuple[str, ...] | None = None
    remap: tuple[str, ...] = ()
    clock_hz: float | None = None
    qos: str = "bag"
    wait_for_subscribers_s: float | None = None
    delay_s: float = 0.0

    def __post_init__(self) -> None:
        check_number("--rate", self.rate, minimum=0.0, exclusive=True, maximum=1000.0)
        check_number("--start-offset", self.start_offset_s, minimum=0.0)
        if self.clock_hz is not None:
            check_number("--clock", self.clock_hz, minimum=0.0, exclusive=True, maximum=10_000.0)
        if self.wait_for_subscribers_s is not None:
            check_number("--wait-for-subscribers", self.wait_for_subscribers_s, minimum=0.0, exclusive=True)
        check_number("--delay", self.delay_s, minimum=0.0, maximum=3600.0)
        if self.qos not in QOS_CHOICES:
            raise BagOptionError(f"--qos {self.qos!r} is not one of {list(QOS_CHOICES)}")


@dataclass(frozen=True)
class PlaybackPlan:
    """The checked playback of one bag.

    Attributes:
        path: the bag.
        topics: played topic -> message type ("pkg/msg/Name"), in the bag's order.
        outputs: played topic -> the name it is published on (itself unless remapped).
        start_ns: log time where playback starts (bag start + start offset), int ns.
        end_ns: log time of the bag's last message, int ns.
    """

    path: str
    topics: dict[str, str]
    outputs: dict[str, str]
    start_ns: int
    end_ns: int


# -- QoS -------------------------------------------------------------------------------
def recorded_qos(path: str | Path) -> dict[str, list[Any]]:
    """topic -> the rosbags ``Qos`` offers recorded in the bag (empty list when none)."""
    from rosbags.rosbag2 import Reader

    offers: dict[str, list[Any]] = {}
    with Reader(Path(path)) as reader:
        for connection in reader.connections:
            ext = getattr(connection, "ext", None)
            offers.setdefault(connection.topic, []).extend(getattr(ext, "offered_qos_profiles", None) or [])
    return offers


# -- commands --------------------------------------------------------------------------
class PlayerCommand(Enum):
    """What a user can do during playback (``fusion replay`` maps keys to these)."""

    TOGGLE_PAUSE = "toggle_pause"
    STEP = "step"
    QUIT = "quit"


# -- schedule --------------------------------------------------------------------------
class Timed(Protocol):
    @property
    def log_time_ns(self) -> int: ...


M = TypeVar("M", bound=Timed)


@dataclass(frozen=True)
class Publish(Generic[M]):
    """Publish ``message`` now. ``loop``: 0-based loop index; ``late_ns``: how far past its
    due time (0 for a step)."""

    message: M
    loop: int
    late_ns: int


@dataclass(frozen=True)
class Wait:
    """Nothing is due: wake at ``until_ns`` (wall), or on a key when ``until_ns`` is None (paused)."""

    until_ns: int | None


@dataclass(frozen=True)
class Finished:
    """The last message was published (and looping is off or the window is empty)."""


class PlaybackSchedule(Generic[M]):
    """When each message is due, under a rate, pauses, steps and loops (see the module docstring).

    Args:
        source: ``source(start_ns)`` iterates the played messages with log time >= start_ns in
            log-time order; called once per loop.
        start_ns: bag log time of the window start; it maps to ``now_ns``.
        now_ns: wall time (monotonic ns) at which playback starts.
        rate: bag seconds per wall second (> 0).
        loop: restart at ``start_ns`` after the last message.

    Drive it with :meth:`next_action` until it returns :class:`Finished`.
    """

    def __init__(
        self,
        source: Callable[[int], Iterable[M]],
        *,
        start_ns: int,
        now_ns: int,
        rate: float = 1.0,
        loop: bool = False,
    ) -> None:
        check_number("rate", rate, minimum=0.0, exclusive=True)
        self._source = source
        self._start = int(start_ns)
        self._rate = float(rate)
        self._loop = loop
        self._messages: Iterator[M] = iter(source(self._start))
        self._pending: M | None = None
        self._finished = False
        self._anchor_bag, self._anchor_wall = self._start, int(now_ns)
        self._paused_since: int | None = None
        self._step = False
        self.loop_index = 0
        self._published_in_loop = 0
        self._last_log = self._start
        self._completed_ns = 0  # bag time of the loops completed
        self._clock_floor = self._start
        self._wall_start = int(now_ns)
        self._paused_total = 0

    # -- state -----------------------------------------------------------------------
    @property
    def paused(self) -> bool:
        return self._paused_since is not None

    @property
    def finished(self) -> bool:
        return self._finished

    def due_ns(self, log_time_ns: int) -> int | None:
        """Wall time at which a message logged at ``log_time_ns`` is due (None while paused)."""
        if self.paused:
            return None
        return self._anchor_wall + math.ceil((log_time_ns - self._anchor_bag) / self._rate)

    def position_ns(self, now_ns: int) -> int:
        """Bag time of the playback at ``now_ns``: follows the wall clock at the rate, frozen
        while paused, never past the next unpublished message."""
        if self._finished:
            return self._last_log
        position = self._anchor_bag
        if not self.paused:
            position += int((now_ns - self._anchor_wall) * self._rate)
        if self._pending is not None:
            position = min(position, self._pending.log_time_ns)
        return position

    def clock_ns(self, now_ns: int) -> int:
        """The /clock value at ``now_ns``: the position, monotonic within a loop."""
        self._peek(now_ns)
        self._clock_floor = max(self._clock_floor, self.position_ns(now_ns))
        return self._clock_floor

    def played_ns(self, now_ns: int) -> int:
        """Bag time played so far, over every loop."""
        return self._completed_ns + max(0, self.position_ns(now_ns) - self._start)

    def running_ns(self, now_ns: int) -> int:
        """Wall time spent playing (pauses excluded)."""
        paused = self._paused_total + (now_ns - self._paused_since if self._paused_since is not None else 0)
        return max(0, now_ns - self._wall_start - paused)

    def achieved_rate(self, now_ns: int) -> float:
        """Bag seconds played per wall second played (0 before any time passed)."""
        running = self.running_ns(now_ns)
        return self.played_ns(now_ns) / running if running > 0 else 0.0

    # -- control ---------------------------------------------------------------------
    def pause(self, now_ns: int) -> None:
        """Freeze the position (at the next unpublished message when behind)."""
        if self.paused or self._finished:
            return
        self._peek(now_ns)
        self._anchor_bag = self.position_ns(now_ns)
        self._paused_since = now_ns

    def resume(self, now_ns: int) -> None:
        """Continue from the frozen position."""
        if self._paused_since is None:
            return
        self._paused_total += now_ns - self._paused_since
        self._anchor_wall, self._paused_since, self._step = now_ns, None, False

    def toggle_pause(self, now_ns: int) -> bool:
        """Pause or resume; True when paused afterwards."""
        if self.paused:
            self.resume(now_ns)
        else:
            self.pause(now_ns)
        return self.paused

    def request_step(self) -> bool:
        """While paused: the next :meth:`next_action` publishes the next message. False (and
        nothing happens) when not paused."""
        if self.paused:
            self._step = True
        return self._step

    # -- driving ---------------------------------------------------------------------
    def next_action(self, now_ns: int) -> Publish[M] | Wait | Finished:
        """What to do at wall time ``now_ns``."""
        pending = self._peek(now_ns)
        if pending is None:
            return Finished()
        if self.paused:
            if not self._step:
                return Wait(None)
            self._step = False
            self._anchor_bag = max(self._anchor_bag, pending.log_time_ns)
            return self._emit(pending, 0)
        due = self.due_ns(pending.log_time_ns)
        assert due is not None  # not paused
        if now_ns >= due:
            return self._emit(pending, now_ns - due)
        return Wait(due)

    def _emit(self, message: M, late_ns: int) -> Publish[M]:
        self._pending = None
        self._published_in_loop += 1
        self._last_log = message.log_time_ns
        return Publish(message, self.loop_index, late_ns)

    def _peek(self, now_ns: int) -> M | None:
        if self._pending is not None or self._finished:
            return self._pending
        for _ in range(2):  # this loop, then at most one restart
            message = next(self._messages, None)
            if message is not None:
                self._pending = message
                return message
            if not self._loop or self._published_in_loop == 0:
                break
            self._restart(now_ns)
        self._finished = True
        return None

    def _restart(self, now_ns: int) -> None:
        if not self.paused:  # the new loop starts when the last message was due
            self._anchor_wall = self._anchor_wall + math.ceil((self._last_log - self._anchor_bag) / self._rate)
        self._completed_ns += self._last_log - self._start
        self._anchor_bag = self._clock_floor = self._last_log = self._start
        self._published_in_loop = 0
        self.loop_index += 1
        self._messages = iter(self._source(self._start))


class Ticker:
    """Fixed-rate ticks on the wall clock (for /clock); missed ticks are skipped, not bunched."""

    def __init__(self, hz: float, now_ns: int) -> None:
        check_number("--clock", hz, minimum=0.0, exclusive=True)
        self.period_ns = max(1, round(_NS / hz))
        self.next_ns = int(now_ns)

    def due(self, now_ns: int) -> bool:
        return now_ns >= self.next_ns

    def advance(self, now_ns: int) -> None:
        missed = max(0, (now_ns - self.next_ns) // self.period_ns)
        self.next_ns += (missed + 1) * self.period_ns


# -- rclpy player ----------------------------------------------------------------------
@dataclass(frozen=True)
class PlaybackStatus:
    """A progress snapshot: bag position (s after the window start) in the current loop."""

    position_s: float
    window_s: float
    loop: int
    published: int
    achieved_rate: float
    paused: bool


@dataclass(frozen=True)
class PlaybackSummary:
    """How a playback went.

    Attributes:
        published: published topic name -> messages published.
        clock_messages: /clock messages published.
        loops: loops started (1 without --loop).
        wall_s / bag_s: wall and bag seconds while playing (pauses excluded; bag over every loop).
        achieved_rate: bag_s / wall_s.
        ended_by: "end" (last message), "quit" (the QUIT command) or "signal" (should_stop).
        unacknowledged: reliable topics whose subscribers had not acknowledged every message
            ACK_TIMEOUT_S after the end.
    """

    published: dict[str, int]
    clock_messages: int
    loops: int
    wall_s: float
    bag_s: float
    achieved_rate: float
    ended_by: str
    unacknowledged: tuple[str, ...] = ()


def _sleep_unless(seconds: float, should_stop: Callable[[], bool]) -> None:
    """Sleep ``seconds``, in short steps so that a stop request ends it early."""
    end = time.monotonic() + seconds
    while not should_stop() and (left := end - time.monotonic()) > 0:
        time.sleep(min(left, 0.05))


def _sleep(timeout_s: float) -> PlayerCommand | None:
    if timeout_s > 0:
        time.sleep(timeout_s)
    return None


def play(
    plan: PlaybackPlan,
    options: PlaybackOptions,
    *,
    wait_for_command: Callable[[float], PlayerCommand | None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    on_progress: Callable[[PlaybackStatus], None] | None = None,
    on_event: Callable[[str], None] = print,
) -> PlaybackSummary:
    """Play ``plan`` (see ``fusion_node.commands.replay.plan_playback``) over DDS; returns at
    the end, on QUIT or when ``should_stop()``.

    Args:
        wait_for_command: ``wait_for_command(timeout_s)`` waits up to ``timeout_s`` (0: a poll)
            and returns a command given meanwhile (the keyboard), or None; None: sleep.
        should_stop: polled at least every 0.1 s (a signal handler's flag).
        on_progress: called about 5 times a second with a :class:`PlaybackStatus`.
        on_event: one-line notices (pause, loop, waiting for subscribers).

    Raises BagReadError / BagOptionError (a message type not installed) before DDS starts, and
    TimeoutError when ``wait_for_subscribers_s`` passes with topics still unsubscribed.
    """
    from fusion_node.bag.reader import BagReader

    with BagReader(plan.path) as reader:
        session = _RosSession(plan, _publisher_qos(plan, options.qos), clock=options.clock_hz is not None)
        try:
            if options.wait_for_subscribers_s is not None:
                session.wait_for_subscribers(options.wait_for_subscribers_s, should_stop, on_event)
            if options.delay_s > 0 and not should_stop():
                on_event(f"starting in {options.delay_s:g} s (--delay)")
                _sleep_unless(options.delay_s, should_stop)
            topics = list(plan.topics)
            schedule: PlaybackSchedule[Any] = PlaybackSchedule(
                lambda start: reader.messages(topics, start_ns=start),
                start_ns=plan.start_ns,
                now_ns=time.monotonic_ns(),
                rate=options.rate,
                loop=options.loop,
            )
            loop = _Loop(schedule, session, plan, options.clock_hz, on_progress, on_event)
            ended_by = "signal" if should_stop() else loop.run(wait_for_command or _sleep, should_stop)
            now = time.monotonic_ns()
            unacked = session.wait_for_acks(ACK_TIMEOUT_S) if ended_by != "signal" else []
            return PlaybackSummary(
                published=dict(session.counts),
                clock_messages=session.clock_count,
                loops=schedule.loop_index + 1,
                wall_s=schedule.running_ns(now) / _NS,
                bag_s=schedule.played_ns(now) / _NS,
                achieved_rate=schedule.achieved_rate(now),
                ended_by=ended_by,
                unacknowledged=tuple(unacked),
            )
        finally:
            session.close()


def _publisher_qos(plan: PlaybackPlan, choice: str) -> dict[str, QosChoice]:
    if choice == "bag":
        offers = recorded_qos(plan.path)
        return {t: adapt_offered_qos(offers.get(t, [])) for t in plan.topics}
    from fusion_node.qos import QOS_PROFILES

    return {t: adapt_offered_qos([QOS_PROFILES[choice]]) for t in plan.topics}


class _Loop:
    """The publishing loop: messages when due, /clock ticks, progress, commands."""

    def __init__(
        self,
        schedule: PlaybackSchedule[Any],
        session: _RosSession,
        plan: PlaybackPlan,
        clock_hz: float | None,
        on_progress: Callable[[PlaybackStatus], None] | None,
        on_event: Callable[[str], None],
    ) -> None:
        self.schedule, self.session, self.plan = schedule, session, plan
        self.on_progress, self.on_event = on_progress, on_event
        now = time.monotonic_ns()
        self.ticker = Ticker(clock_hz, now) if clock_hz is not None else None
        self.next_progress = now

    def status(self, now: int) -> PlaybackStatus:
        s, plan = self.schedule, self.plan
        position = (s.position_ns(now) - plan.start_ns) / _NS
        published = sum(self.session.counts.values())
        window = (plan.end_ns - plan.start_ns) / _NS
        return PlaybackStatus(position, window, s.loop_index, published, s.achieved_rate(now), s.paused)

    def run(self, wait_for_command: Callable[[float], PlayerCommand | None], should_stop: Callable[[], bool]) -> str:
        loop = 0
        while not should_stop():
            now = time.monotonic_ns()
            if self.ticker is not None and self.ticker.due(now):
                self.session.publish_clock(self.schedule.clock_ns(now))
                self.ticker.advance(now)
            if self.on_progress is not None and now >= self.next_progress:
                self.on_progress(self.status(now))
                self.next_progress = now + 200_000_000
            action = self.schedule.next_action(now)
            if isinstance(action, Finished):
                if self.on_progress is not None:
                    self.on_progress(self.status(time.monotonic_ns()))
                return "end"
            if isinstance(action, Publish):
                if action.loop != loop:
                    loop = action.loop
                    self.on_event(f"loop {loop + 1}: restarting from the window start (the clock jumps back)")
                self.session.publish(action.message.topic, action.message.msg)
                if self.schedule.paused:
                    where = (action.message.log_time_ns - self.plan.start_ns) / _NS
                    self.on_event(f"step: {action.message.topic} at {where:.3f} s")
                command = wait_for_command(0.0)
            else:
                wake = min(now + 100_000_000, self.next_progress)
                if self.ticker is not None:
                    wake = min(wake, self.ticker.next_ns)
                if action.until_ns is not None:
                    wake = min(wake, action.until_ns)
                command = wait_for_command(max(0, wake - now) / _NS)
            if command is PlayerCommand.QUIT:
                return "quit"
            if command is not None:
                self.apply(command)
        return "signal"

    def apply(self, command: PlayerCommand) -> None:
        now = time.monotonic_ns()
        if command is PlayerCommand.TOGGLE_PAUSE:
            paused = self.schedule.toggle_pause(now)
            where = f"{(self.schedule.position_ns(now) - self.plan.start_ns) / _NS:.3f} s"
            self.on_event(f"paused at {where} (space: resume, s: step)" if paused else f"resumed at {where}")
        elif command is PlayerCommand.STEP and not self.schedule.request_step():
            self.on_event("step works while paused (space pauses)")


class _RosSession:
    """rclpy context, node and publishers of one playback. Own context, no rclpy signal
    handlers: Ctrl-C is the caller's flag, so a publish is never interrupted half-way."""

    def __init__(self, plan: PlaybackPlan, qos: Mapping[str, QosChoice], *, clock: bool) -> None:
        import rclpy
        from rclpy.context import Context
        from rclpy.signals import SignalHandlerOptions

        from fusion_node.bag.writer import message_class

        classes: dict[str, type[Any]] = {}
        missing: list[str] = []
        for topic, msgtype in plan.topics.items():
            try:
                classes[topic] = message_class(msgtype)
            except ImportError as exc:
                missing.append(f"{topic} ({exc})")
        if missing:
            raise BagOptionError(
                f"message types not installed for: {'; '.join(missing)} (leave them out with --topics)", path=plan.path
            )
        self.context = Context()
        rclpy.init(context=self.context, signal_handler_options=SignalHandlerOptions.NO)
        try:
            self.node = rclpy.create_node(f"fusion_replay_{os.getpid()}", context=self.context)
            self.outputs = plan.outputs
            self.publishers = {
                t: self.node.create_publisher(c, plan.outputs[t], qos[t].to_profile()) for t, c in classes.items()
            }
        except BaseException:
            rclpy.try_shutdown(context=self.context)
            raise
        self.reliable = {plan.outputs[t]: p for t, p in self.publishers.items() if qos[t].reliable}
        self.counts = dict.fromkeys(plan.outputs.values(), 0)
        self.clock_count = 0
        self.clock_publisher: Any = None
        if clock:
            from rosgraph_msgs.msg import Clock

            # reliable keep-last 1 matches best-effort (rclpy's TimeSource) and reliable subscribers
            self.clock_publisher = self.node.create_publisher(
                Clock, CLOCK_TOPIC, QosChoice(True, False, 1).to_profile()
            )

    def publish(self, topic: str, msg: Any) -> None:
        self.publishers[topic].publish(msg)
        self.counts[self.outputs[topic]] += 1

    def publish_clock(self, stamp_ns: int) -> None:
        from builtin_interfaces.msg import Time
        from rosgraph_msgs.msg import Clock

        sec, nanosec = divmod(stamp_ns, _NS)
        self.clock_publisher.publish(Clock(clock=Time(sec=sec, nanosec=nanosec)))
        self.clock_count += 1

    def wait_for_subscribers(
        self, timeout_s: float, should_stop: Callable[[], bool], on_event: Callable[[str], None]
    ) -> None:
        deadline = time.monotonic() + timeout_s
        on_event(f"waiting up to {timeout_s:g} s for a subscriber on each of {len(self.publishers)} topics")
        while unmatched := [self.outputs[t] for t, p in self.publishers.items() if p.get_subscription_count() == 0]:
            if should_stop():
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"--wait-for-subscribers {timeout_s:g}: no subscriber yet on {len(unmatched)} topic(s): {unmatched}"
                )
            time.sleep(0.05)

    def wait_for_acks(self, timeout_s: float) -> list[str]:
        """Reliable topics not acknowledged by every subscriber within ``timeout_s`` (in all)."""
        from rclpy.duration import Duration

        deadline = time.monotonic() + timeout_s
        unacked = []
        for name, publisher in self.reliable.items():
            left = max(0.0, deadline - time.monotonic())
            if not publisher.wait_for_all_acked(Duration(nanoseconds=int(left * _NS))):
                unacked.append(name)
        return unacked

    def close(self) -> None:
        close_ros(self.node, self.context, what="fusion replay")
