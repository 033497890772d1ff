"""fusion replay and fusion record over real DDS: two processes, the sample bag, real topics.

Each test has its own ROS_DOMAIN_ID and the large-message transport, like every process of the
runtime. The recorder is started first; the player waits for its subscriptions
(--wait-for-subscribers) so that reliable delivery makes exact counts checkable.
"""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from fusion_node.bag import BagReader
from fusion_node.convert import time_to_ns
from fusion_node.processes import start_child, stop_child

pytestmark = pytest.mark.ros

FUSION = [sys.executable, "-m", "fusion_node.cli"]
SAMPLE = Path(__file__).resolve().parents[2] / "bags" / "sample_city_4s"
ODOMETRY = "/localization/odometry"
RECORD_FOR_10_S = ("--duration", "10", "--quiet")


def _env(domain: int) -> dict[str, str]:
    return dict(os.environ, ROS_DOMAIN_ID=str(domain))


def _messages(bag: Path, topics: list[str] | None = None) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    with BagReader(bag) as reader:
        for item in reader.messages(topics):
            out.setdefault(item.topic, []).append(item)
    return out


def _clock_loops(clock: list[int]) -> list[list[int]]:
    """/clock values split where they jump back (a new loop)."""
    loops: list[list[int]] = [[]]
    for value in clock:
        if loops[-1] and value < loops[-1][-1]:
            loops.append([])
        loops[-1].append(value)
    return loops


@pytest.mark.slow
def test_replayed_bag_is_recorded_identically(tmp_path: Path) -> None:
    """Every message of every topic arrives once, equal to the source (header stamps included);
    /clock is published in bag time; the recorder, stopped with SIGINT, leaves a readable bag."""
    env = _env(61)
    out = tmp_path / "recorded"
    recorder = start_child([*FUSION, "record", "--out", str(out), "--all", "--quiet"], env=env)
    try:
        player = subprocess.run(
            [
                *FUSION,
                *("replay", str(SAMPLE), "--rate", "2", "--no-keyboard", "--quiet"),
                *("--qos", "reliable", "--clock", "20", "--wait-for-subscribers", "60"),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        recorder_rc = stop_child(recorder, timeout_s=30)  # SIGINT, as Ctrl-C
    recorder_log = recorder.stdout.read() if recorder.stdout else ""
    assert player.returncode == 0, player.stdout[-3000:] + player.stderr[-3000:]
    assert recorder_rc == 0, recorder_log[-3000:]
    assert "Traceback" not in recorder_log

    source, recorded = _messages(SAMPLE), _messages(out)
    assert set(recorded) == set(source) | {"/clock"}
    for topic, items in source.items():
        got = recorded[topic]
        assert len(got) == len(items), topic
        stamps = [time_to_ns(m.msg.header.stamp) for m in items if hasattr(m.msg, "header")]
        assert [time_to_ns(m.msg.header.stamp) for m in got if hasattr(m.msg, "header")] == stamps, topic
        assert [m.msg for m in got] == [m.msg for m in items], f"{topic}: a message changed on the way"
    # rate 2: 4 s of bag in about 2 s (never faster; log time = receive time)
    log_times = sorted(m.log_time_ns for items in recorded.values() for m in items if m.topic != "/clock")
    source_span = max(m.log_time_ns for v in source.values() for m in v) - min(
        m.log_time_ns for v in source.values() for m in v
    )
    assert log_times[-1] - log_times[0] >= 0.45 * source_span
    with BagReader(SAMPLE) as bag:
        first, last = bag.start_ns, bag.end_ns
    clock = [time_to_ns(m.msg.clock) for m in recorded["/clock"]]
    assert len(clock) >= 10
    assert clock == sorted(clock)
    assert first is not None
    assert last is not None
    assert first <= clock[0]
    assert clock[-1] <= last


@pytest.mark.slow
def test_looped_replay_restarts_and_recording_ends_after_its_duration(tmp_path: Path) -> None:
    """--loop with a remapped topic: each loop repeats the bag's messages in order and /clock
    jumps back once per loop, monotonic in between; the recorder stops by itself (--duration)
    with a readable bag; the looping player exits cleanly on SIGINT."""
    env = _env(62)
    out = tmp_path / "loops"
    recorder = start_child(
        [*FUSION, *("record", "--out", str(out), "--topics", "/replayed/odometry", "/clock"), *RECORD_FOR_10_S],
        env=env,
    )
    player = start_child(
        [
            *FUSION,
            *("replay", str(SAMPLE), "--loop", "--rate", "4", "--topics", ODOMETRY),
            *("--remap", f"{ODOMETRY}:=/replayed/odometry", "--clock", "50", "--qos", "reliable"),
            *("--wait-for-subscribers", "60", "--no-keyboard", "--quiet"),
        ],
        env=env,
    )
    try:
        recorder.wait(timeout=90)
    finally:
        player_rc = stop_child(player, timeout_s=30)
        stop_child(recorder)
    player_log = player.stdout.read() if player.stdout else ""
    recorder_log = recorder.stdout.read() if recorder.stdout else ""
    assert recorder.returncode == 0, recorder_log[-3000:]
    assert player_rc == 0, player_log[-3000:]
    assert "Traceback" not in player_log

    source = [time_to_ns(m.msg.header.stamp) for m in _messages(SAMPLE, [ODOMETRY])[ODOMETRY]]
    recorded = _messages(out)
    stamps = [time_to_ns(m.msg.header.stamp) for m in recorded["/replayed/odometry"]]
    assert len(stamps) > len(source), "less than one full loop was recorded"
    with BagReader(out) as bag:
        assert bag.duration_ns <= 10_000_000_000  # log time = receive time, within --duration
    # the recorder subscribed before playing started: loop after loop of the whole bag, in order
    for start in range(0, len(stamps), len(source)):
        chunk = stamps[start : start + len(source)]
        assert chunk == source[: len(chunk)], f"loop starting at message {start} differs from the bag"
    loops = _clock_loops([time_to_ns(m.msg.clock) for m in recorded["/clock"]])
    assert len(loops) >= 2, "the clock never jumped back"
    assert len(loops) <= len(stamps) // len(source) + 2
    for values in loops:
        assert values == sorted(values)
        assert source[0] - 100_000_000 <= values[0]
        assert values[-1] <= source[-1] + 100_000_000


def test_replay_of_a_missing_topic_names_it_and_lists_the_bags_topics() -> None:
    result = subprocess.run(
        [*FUSION, "replay", str(SAMPLE), "--topics", "/sensing/lidar/top/points", "/no/such/topic", "--no-keyboard"],
        env=_env(63),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "--topics /no/such/topic: not in the bag" in result.stderr
    assert str(SAMPLE) in result.stderr
    assert "/sensing/camera/front/image/compressed (sensor_msgs/msg/CompressedImage)" in result.stderr
    assert "/sensing/lidar/top/points: not" not in result.stderr  # only the missing one is blamed


def test_record_refuses_an_existing_output(tmp_path: Path) -> None:
    result = subprocess.run(
        [*FUSION, "record", "--out", str(tmp_path), "--all", "--duration", "1"],
        env=_env(63),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert str(tmp_path) in result.stderr
    assert "exists already" in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_keyboard_pauses_steps_and_quits_an_interactive_replay() -> None:
    """On a terminal: space pauses, s steps, q quits (exit 0); the terminal mode is restored."""
    master, slave = pty.openpty()
    before = termios.tcgetattr(slave)
    player = subprocess.Popen(
        [*FUSION, "replay", str(SAMPLE), "--topics", ODOMETRY, "--rate", "0.25"],
        env=_env(64),
        stdin=slave,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    output = bytearray()

    def pump() -> None:
        assert player.stdout is not None
        while chunk := os.read(player.stdout.fileno(), 4096):
            output.extend(chunk)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()

    def wait_for(text: str, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while text.encode() not in output:
            assert player.poll() is None, output.decode(errors="replace")[-2000:]
            assert time.monotonic() < deadline, f"no {text!r} in: {output.decode(errors='replace')[-2000:]}"
            time.sleep(0.05)

    try:
        wait_for("keys: space")
        wait_for("msgs")  # the progress bar is up: playing
        os.write(master, b" ")
        wait_for("paused at")
        os.write(master, b"s")
        os.write(master, b" ")
        wait_for("resumed at")
        os.write(master, b"q")
        player.wait(timeout=30)
    finally:
        if player.poll() is None:
            player.kill()
        reader.join(timeout=5)
        after = termios.tcgetattr(slave)
        os.close(master)
        os.close(slave)
    text = output.decode(errors="replace")
    assert player.returncode == 0, text[-2000:]
    assert "ended by quit" in text
    assert after == before
