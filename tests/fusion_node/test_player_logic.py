"""fusion replay / record logic without DDS: the playback schedule on a virtual clock (rate,
pause, step, loop, start offset, falling behind, /clock), the checks of topics, remap rules and
options, the QoS adaptation, the terminal keyboard (on a pseudo-terminal) and signal handling."""

from __future__ import annotations

import os
import pty
import signal
import subprocess
import sys
import termios
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime

from fusion_node.commands.replay import KEYS, Keyboard, parse_remaps, plan_playback, select_topics
from fusion_node.errors import BagOptionError, UnknownTopicError
from fusion_node.player import (
    Finished,
    PlaybackOptions,
    PlaybackPlan,
    PlaybackSchedule,
    PlayerCommand,
    Publish,
    Ticker,
    Wait,
)
from fusion_node.recorder import RecordOptions, adapt_offered_qos, stop_on_signals

MS = 1_000_000
S = 1_000_000_000
T0 = 1_700_000_000 * S  # bag log times start here
W0 = 5 * S  # wall (monotonic) time at which playback starts


@dataclass(frozen=True)
class Msg:
    topic: str
    log_time_ns: int


def source_of(messages: list[Msg]) -> Callable[[int], Iterator[Msg]]:
    """What BagReader.messages(topics, start_ns=start) yields: log-time order from start."""
    return lambda start: (m for m in messages if m.log_time_ns >= start)


def msgs(*offsets_ms: float, topic: str = "/a") -> list[Msg]:
    return [Msg(topic, T0 + round(o * MS)) for o in offsets_ms]


def run_until_wait(schedule: PlaybackSchedule[Msg], now: int) -> tuple[list[Publish[Msg]], Wait | Finished]:
    """Every message due at ``now``, then the action that stopped the burst."""
    published: list[Publish[Msg]] = []
    while isinstance(action := schedule.next_action(now), Publish):
        published.append(action)
    return published, action


def drive(schedule: PlaybackSchedule[Msg], now: int = W0, limit: int = 1000) -> list[tuple[int, Publish[Msg]]]:
    """Run on a virtual clock that jumps to each wake-up time: (wall, publish) pairs."""
    events: list[tuple[int, Publish[Msg]]] = []
    for _ in range(limit):
        published, action = run_until_wait(schedule, now)
        events += [(now, p) for p in published]
        if isinstance(action, Finished):
            return events
        assert action.until_ns is not None, "paused unexpectedly"
        now = action.until_ns
    raise AssertionError(f"schedule did not finish within {limit} wake-ups")


# -- timing ------------------------------------------------------------------------------
def test_messages_are_due_at_their_log_time_spacing() -> None:
    bag = msgs(0, 100, 250, 250, 1000)
    events = drive(PlaybackSchedule(source_of(bag), start_ns=T0, now_ns=W0))
    assert [p.message for _, p in events] == bag
    assert [wall - W0 for wall, _ in events] == [m.log_time_ns - T0 for m in bag]
    assert all(p.late_ns == 0 and p.loop == 0 for _, p in events)


def test_first_wait_names_the_due_time_and_nothing_is_early() -> None:
    schedule = PlaybackSchedule(source_of(msgs(40, 90)), start_ns=T0, now_ns=W0)
    assert schedule.next_action(W0) == Wait(W0 + 40 * MS)
    assert schedule.next_action(W0 + 40 * MS - 1) == Wait(W0 + 40 * MS)
    action = schedule.next_action(W0 + 40 * MS)
    assert isinstance(action, Publish)
    assert action.message.log_time_ns == T0 + 40 * MS


@pytest.mark.parametrize("rate", [2.0, 0.5, 3.0])
def test_rate_scales_the_spacing(rate: float) -> None:
    bag = msgs(0, 100, 250, 1000, 4000)
    events = drive(PlaybackSchedule(source_of(bag), start_ns=T0, now_ns=W0, rate=rate))
    for wall, publish in events:
        assert wall - W0 == pytest.approx((publish.message.log_time_ns - T0) / rate, abs=1)


def test_falling_behind_publishes_everything_overdue_in_order() -> None:
    bag = msgs(0, 10, 20, 30, 500)
    schedule = PlaybackSchedule(source_of(bag), start_ns=T0, now_ns=W0)
    published, action = run_until_wait(schedule, W0 + 100 * MS)  # the player stalled for 100 ms
    assert [p.message for p in published] == bag[:4]  # nothing skipped, in log-time order
    assert [p.late_ns for p in published] == [100 * MS, 90 * MS, 80 * MS, 70 * MS]
    assert action == Wait(W0 + 500 * MS)  # the schedule does not shift: the next one is on time


# -- pause and step ----------------------------------------------------------------------
def test_pause_keeps_the_position_and_resume_continues_without_a_burst() -> None:
    bag = msgs(0, 100, 250, 400)
    schedule = PlaybackSchedule(source_of(bag), start_ns=T0, now_ns=W0)
    published, _ = run_until_wait(schedule, W0 + 120 * MS)
    assert len(published) == 2
    schedule.pause(W0 + 120 * MS)
    assert schedule.paused
    for later in (W0 + 1 * S, W0 + 9 * S):
        assert schedule.next_action(later) == Wait(None)
        assert schedule.position_ns(later) == T0 + 120 * MS
        assert schedule.clock_ns(later) == T0 + 120 * MS
    resume = W0 + 10 * S
    schedule.resume(resume)
    assert schedule.next_action(resume) == Wait(resume + 130 * MS)  # 250 - 120 ms after the resume
    events = drive(schedule, resume)
    assert [wall - resume for wall, _ in events] == [130 * MS, 280 * MS]
    assert schedule.running_ns(resume + 280 * MS) == 400 * MS  # the pause does not count as playing
    assert schedule.achieved_rate(resume + 280 * MS) == pytest.approx(1.0)


def test_pause_while_behind_holds_at_the_next_unpublished_message() -> None:
    schedule = PlaybackSchedule(source_of(msgs(0, 50, 300)), start_ns=T0, now_ns=W0)
    schedule.next_action(W0)  # publishes the first message; the second is not taken yet
    schedule.pause(W0 + 200 * MS)  # 150 ms after the second was due
    assert schedule.position_ns(W0 + 200 * MS) == T0 + 50 * MS
    schedule.resume(W0 + 1 * S)
    action = schedule.next_action(W0 + 1 * S)
    assert isinstance(action, Publish)
    assert action.message.log_time_ns == T0 + 50 * MS


def test_step_publishes_one_message_while_paused_and_moves_the_position() -> None:
    bag = msgs(0, 100, 250, 400)
    schedule = PlaybackSchedule(source_of(bag), start_ns=T0, now_ns=W0)
    run_until_wait(schedule, W0)
    assert not schedule.request_step()  # not paused: a step does nothing
    schedule.toggle_pause(W0 + 10 * MS)
    assert schedule.request_step()
    action = schedule.next_action(W0 + 20 * MS)
    assert isinstance(action, Publish)
    assert action.message == bag[1]
    assert action.late_ns == 0
    assert schedule.next_action(W0 + 30 * MS) == Wait(None)  # one message per step
    assert schedule.position_ns(W0 + 5 * S) == T0 + 100 * MS
    assert not schedule.toggle_pause(W0 + 6 * S)  # resumed
    assert schedule.next_action(W0 + 6 * S) == Wait(W0 + 6 * S + 150 * MS)


# -- loop ----------------------------------------------------------------------------------
def test_loop_restarts_at_the_beginning_and_the_clock_jumps_back() -> None:
    bag = msgs(0, 100, 300)
    schedule = PlaybackSchedule(source_of(bag), start_ns=T0, now_ns=W0, loop=True)
    events: list[tuple[int, Publish[Msg]]] = []
    clocks: list[tuple[int, int]] = []  # (loop, clock)
    now = W0
    while len(events) < 3 * len(bag):
        published, action = run_until_wait(schedule, now)
        events += [(now, p) for p in published]
        clocks.append((schedule.loop_index, schedule.clock_ns(now)))
        assert isinstance(action, Wait)
        assert action.until_ns is not None
        now = min(action.until_ns, now + 40 * MS)  # wake also for /clock ticks
    events = events[: 3 * len(bag)]  # a loop's first message is due with the previous loop's last
    assert [p.loop for _, p in events] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert [p.message for _, p in events] == bag * 3
    # loop k starts when the previous loop's last message was due: no drift, no gap
    assert [wall - W0 for wall, _ in events] == [
        0,
        100 * MS,
        300 * MS,
        300 * MS,
        400 * MS,
        600 * MS,
        600 * MS,
        700 * MS,
        900 * MS,
    ]
    for loop in range(3):
        values = [c for k, c in clocks if k == loop]
        assert values == sorted(values), f"/clock not monotonic within loop {loop}"
        assert values[0] >= T0
        assert values[-1] <= T0 + 300 * MS
    assert schedule.played_ns(now) >= 2 * 300 * MS


def test_loop_of_an_empty_window_finishes_instead_of_spinning() -> None:
    schedule = PlaybackSchedule(source_of([]), start_ns=T0, now_ns=W0, loop=True)
    assert schedule.next_action(W0) == Finished()
    assert schedule.finished


def test_without_loop_the_position_stops_at_the_last_message() -> None:
    schedule = PlaybackSchedule(source_of(msgs(0, 200)), start_ns=T0, now_ns=W0)
    drive(schedule)
    assert schedule.position_ns(W0 + 60 * S) == T0 + 200 * MS
    assert schedule.played_ns(W0 + 60 * S) == 200 * MS


# -- /clock --------------------------------------------------------------------------------
def test_clock_follows_the_rate_and_never_passes_an_unpublished_message() -> None:
    schedule = PlaybackSchedule(source_of(msgs(0, 1000)), start_ns=T0, now_ns=W0, rate=2.0)
    run_until_wait(schedule, W0)
    assert schedule.clock_ns(W0 + 100 * MS) == T0 + 200 * MS  # rate 2: 100 ms of wall = 200 ms of bag
    assert schedule.clock_ns(W0 + 5 * S) == T0 + 1000 * MS  # stalled: held at the pending message


def test_ticker_skips_missed_ticks_instead_of_bunching() -> None:
    ticker = Ticker(40.0, W0)
    assert ticker.period_ns == 25 * MS
    assert ticker.due(W0)
    ticker.advance(W0)
    assert not ticker.due(W0 + 24 * MS)
    ticker.advance(W0 + 110 * MS)  # four ticks late
    assert ticker.next_ns == W0 + 125 * MS


# -- plan: topics, remaps, start offset -------------------------------------------------------
BAG_TOPICS = {
    "/points": "sensor_msgs/msg/PointCloud2",
    "/odom": "nav_msgs/msg/Odometry",
    "/clock": "rosgraph_msgs/msg/Clock",
}


def plan(**options: Any) -> PlaybackPlan:
    return plan_playback("bags/x", BAG_TOPICS, T0, T0 + 4 * S, PlaybackOptions(**options))


def test_start_offset_moves_the_window_start() -> None:
    p = plan(start_offset_s=1.5)
    assert p.start_ns == T0 + 1500 * MS
    bag = msgs(0, 1000, 1600, 2000)
    events = drive(PlaybackSchedule(source_of(bag), start_ns=T0 + 1500 * MS, now_ns=W0))
    assert [p.message for _, p in events] == bag[2:]
    assert [wall - W0 for wall, _ in events] == [100 * MS, 500 * MS]


def test_start_offset_past_the_end_names_the_offset_and_the_duration() -> None:
    with pytest.raises(BagOptionError, match=r"--start-offset 7 s is past the end.*4\.000 s") as info:
        plan(start_offset_s=7.0)
    assert "bags/x" in str(info.value)


def test_topic_selection() -> None:
    assert select_topics(BAG_TOPICS, None, "b") == BAG_TOPICS
    assert select_topics(BAG_TOPICS, ["/odom", "/odom"], "b") == {"/odom": "nav_msgs/msg/Odometry"}
    assert plan(topics=("/points",)).topics == {"/points": "sensor_msgs/msg/PointCloud2"}


def test_a_missing_topic_is_named_and_the_bags_topics_are_listed() -> None:
    with pytest.raises(UnknownTopicError) as info:
        select_topics(BAG_TOPICS, ["/odom", "/lidar"], "bags/x")
    message = str(info.value)
    assert "--topics /lidar" in message
    assert "bags/x" in message
    assert "/points (sensor_msgs/msg/PointCloud2)" in message
    assert "/odom (nav_msgs/msg/Odometry)" in message


def test_remaps_rename_played_topics() -> None:
    assert parse_remaps(["/points:=/lidar/points"], ["/points", "/odom"]) == {
        "/points": "/lidar/points",
        "/odom": "/odom",
    }
    # swapping two names is fine: every output name is still unique
    assert parse_remaps(["/a:=/b", "/b:=/a"], ["/a", "/b"]) == {"/a": "/b", "/b": "/a"}


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        (["/points=/lidar"], r"--remap '/points=/lidar': expected one OLD:=NEW"),
        (["/points:=/a:=/b"], r"--remap '/points:=/a:=/b': expected one OLD:=NEW"),
        (["/points:=lidar"], r"--remap '/points:=lidar': 'lidar' is not an absolute topic name"),
        (["/points:=/1st"], r"'/1st' is not an absolute topic name"),
        (["/points:=/a//b"], r"'/a//b' is not an absolute topic name"),
        (["/nope:=/x"], r"--remap '/nope:=/x': /nope is not played; played topics: \['/odom', '/points'\]"),
        (["/points:=/x", "/points:=/y"], r"--remap '/points:=/y': /points is remapped already by '/points:=/x'"),
        (["/points:=/odom"], r"--remap '/points:=/odom': /points and /odom would both be published on /odom"),
        (["/points:=/x", "/odom:=/x"], r"'/points:=/x' and '/odom:=/x': /points and /odom would both be published"),
    ],
)
def test_bad_remap_rules_are_named(rules: list[str], expected: str) -> None:
    with pytest.raises(BagOptionError, match=expected):
        parse_remaps(rules, ["/points", "/odom"], "bags/x")


def test_clock_topic_in_the_bag_conflicts_with_clock_publishing() -> None:
    with pytest.raises(BagOptionError, match=r"--clock: the bag's topic /clock would also be published on /clock"):
        plan(clock_hz=40.0)
    assert "/clock" not in plan(clock_hz=40.0, topics=("/points",)).outputs.values()
    renamed = plan(clock_hz=40.0, remap=("/clock:=/recorded/clock",))
    assert renamed.outputs["/clock"] == "/recorded/clock"


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"rate": 0.0}, r"--rate must be a finite number > 0 and <= 1000, got 0\.0"),
        ({"rate": float("nan")}, r"--rate must be .* got nan"),
        ({"rate": -2.0}, r"--rate .* got -2\.0"),
        ({"start_offset_s": -1.0}, r"--start-offset must be a finite number >= 0, got -1\.0"),
        ({"clock_hz": 0.0}, r"--clock must be a finite number > 0.* got 0\.0"),
        ({"qos": "fast"}, r"--qos 'fast' is not one of \['bag', 'reliable', 'sensor_data'\]"),
        ({"wait_for_subscribers_s": -5.0}, r"--wait-for-subscribers .* got -5\.0"),
        ({"delay_s": -0.5}, r"--delay must be a finite number >= 0 and <= 3600, got -0\.5"),
        ({"delay_s": float("nan")}, r"--delay must be a finite number"),
    ],
)
def test_bad_playback_options_are_named(options: dict[str, Any], expected: str) -> None:
    with pytest.raises(BagOptionError, match=expected):
        PlaybackOptions(**options)


def test_record_options() -> None:
    everything = RecordOptions(out="out/x")
    assert everything.records("/sensing/lidar/top/points")
    assert not everything.records("/rosout")
    assert not everything.records("/parameter_events")
    assert not everything.records("/_hidden/x")
    chosen = RecordOptions(out="out/x", topics=("/a", "/rosout"))
    assert chosen.records("/rosout")
    assert not chosen.records("/b")
    with pytest.raises(BagOptionError, match=r"--topics 'a/b' is not an absolute topic name"):
        RecordOptions(out="o", topics=("/ok", "a/b"))
    with pytest.raises(BagOptionError, match=r"--duration must be a finite number > 0, got 0\.0"):
        RecordOptions(out="o", duration_s=0.0)
    with pytest.raises(BagOptionError, match=r"--storage 'rosbag' is not one of \['mcap', 'sqlite3'\]"):
        RecordOptions(out="o", storage="rosbag")


# -- QoS ---------------------------------------------------------------------------------
def _qos(reliability: QosReliability, durability: QosDurability = QosDurability.VOLATILE, depth: int = 5) -> Qos:
    zero = QosTime(0, 0)
    return Qos(QosHistory.KEEP_LAST, depth, reliability, durability, zero, zero, QosLiveliness.AUTOMATIC, zero, False)


def test_qos_adapts_to_every_offer_like_rosbag2() -> None:
    reliable, best_effort = _qos(QosReliability.RELIABLE, depth=20), _qos(QosReliability.BEST_EFFORT)
    assert adapt_offered_qos([reliable]).reliable
    assert adapt_offered_qos([reliable]).depth == 20
    assert not adapt_offered_qos([reliable, best_effort]).reliable  # would not match the best-effort one
    latched = _qos(QosReliability.RELIABLE, QosDurability.TRANSIENT_LOCAL)
    assert adapt_offered_qos([latched]).transient_local
    assert not adapt_offered_qos([latched, reliable]).transient_local
    nothing = adapt_offered_qos([])
    assert (nothing.reliable, nothing.transient_local, nothing.depth) == (True, False, 10)
    assert adapt_offered_qos([best_effort], depth=100).depth == 100


def test_qos_choice_becomes_an_rclpy_profile() -> None:
    from rclpy.qos import DurabilityPolicy, ReliabilityPolicy, qos_profile_sensor_data

    choice = adapt_offered_qos([qos_profile_sensor_data])  # live publishers' rclpy profiles adapt too
    profile = choice.to_profile()
    assert profile.reliability == ReliabilityPolicy.BEST_EFFORT
    assert profile.durability == DurabilityPolicy.VOLATILE
    assert profile.depth == qos_profile_sensor_data.depth


# -- ROS-free --------------------------------------------------------------------------------
def test_the_schedule_and_checks_import_with_rclpy_blocked(repo: Path) -> None:
    code = (
        "import sys; sys.modules['rclpy'] = None\n"
        "from fusion_node.player import PlaybackSchedule, PlaybackOptions\n"
        "from fusion_node.commands.replay import parse_remaps\n"
        "from fusion_node.recorder import RecordOptions, adapt_offered_qos\n"
        "s = PlaybackSchedule(lambda start: iter(()), start_ns=0, now_ns=0)\n"
        "print(type(s.next_action(0)).__name__, parse_remaps(['/a:=/b'], ['/a']))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Finished {'/a': '/b'}"


# -- keyboard and signals --------------------------------------------------------------------
def test_keys() -> None:
    assert KEYS[" "] is PlayerCommand.TOGGLE_PAUSE
    assert KEYS["s"] is PlayerCommand.STEP
    assert KEYS["q"] is PlayerCommand.QUIT


def _pty() -> Iterable[tuple[int, int]]:
    master, slave = pty.openpty()
    try:
        yield master, slave
    finally:
        os.close(master)
        os.close(slave)


def test_keyboard_reads_single_keys_and_restores_the_terminal() -> None:
    for master, slave in _pty():
        with os.fdopen(os.dup(slave), "r") as stream:
            before = termios.tcgetattr(slave)
            with Keyboard(stream) as keyboard:
                inside = termios.tcgetattr(slave)
                assert not inside[3] & termios.ICANON  # cbreak: no line buffering
                assert not inside[3] & termios.ECHO
                assert inside[3] & termios.ISIG  # Ctrl-C still raises SIGINT
                assert keyboard.wait_for_command(0.0) is None
                os.write(master, b" ")  # no Enter needed
                assert keyboard.wait_for_command(1.0) is PlayerCommand.TOGGLE_PAUSE
                os.write(master, b"xS")
                assert keyboard.wait_for_command(1.0) is None  # unknown keys are ignored
                assert keyboard.wait_for_command(1.0) is PlayerCommand.STEP
                os.write(master, b"q")
                assert keyboard.wait_for_command(1.0) is PlayerCommand.QUIT
            assert termios.tcgetattr(slave) == before
            with pytest.raises(RuntimeError), Keyboard(stream):
                raise RuntimeError("playback failed")
            assert termios.tcgetattr(slave) == before


def test_signals_set_the_stop_flag_and_a_second_one_interrupts() -> None:
    previous = signal.getsignal(signal.SIGINT)
    with stop_on_signals() as should_stop:
        assert not should_stop()
        os.kill(os.getpid(), signal.SIGTERM)
        assert should_stop()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is previous
