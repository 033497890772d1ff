"""Property-based: random rates, phases, offsets, tolerances, deadlines, jitter, losses,
duplicates, transport reordering and polls. Whatever the stream: no message is used twice, no
record lies outside its sensor's tolerance, frames come in stamp order, every reference
message yields exactly one frame unless dropped by a documented rule, nothing is lost from
the counts, queues stay within their caps, and the frames equal those of an independent,
straightforward matcher (the benchmark's baseline) on streams without duplicates or polls.
"""

from __future__ import annotations

import dataclasses
import itertools
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sync_helpers import MS, PAYLOAD

from benchmarks.sync import LinearScanMatcher
from calibration import Modality
from perception.samples import SensorRecord
from perception.sync import SensorSync, SyncConfig, Synchronizer

BASE = 10 * 1_000_000_000
DURATION_MS = 2_000


@st.composite
def scenarios(draw, duplicates: bool = True):
    sensors = []
    for i in range(draw(st.integers(1, 4))):
        period = draw(st.integers(20, 200))
        sensors.append(
            {
                "config": SensorSync(
                    f"s{i}",
                    Modality.CAMERA,
                    offset_ns=draw(st.integers(-30, 30)) * MS,
                    tolerance_ns=draw(st.integers(0, 100)) * MS,
                    deadline_ns=draw(st.integers(0, 300)) * MS,
                    queue_size=draw(st.integers(1, 8)),
                ),
                "period": period,
                "jitter": draw(st.integers(0, period // 3)),
                "drop": draw(st.floats(0, 0.3)),
                "duplicate": draw(st.floats(0, 0.2)) if duplicates else 0.0,
                "latency": draw(st.integers(0, 100)),
                "reorder": draw(st.integers(0, 150)),
            }
        )
    reference = {
        "config": None,
        "period": draw(st.integers(50, 150)),
        "jitter": 5,
        "drop": draw(st.floats(0, 0.2)),
        "duplicate": draw(st.floats(0, 0.1)) if duplicates else 0.0,
        "latency": draw(st.integers(0, 60)),
        "reorder": draw(st.integers(0, 60)),
    }
    config = SyncConfig(
        "ref",
        tuple(s["config"] for s in sensors),
        clock=draw(st.sampled_from(["data", "arrival"])),
        max_pending=draw(st.integers(1, 6)),
    )
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    records = []
    for sensor_id, spec in [("ref", reference), *((s["config"].sensor_id, s) for s in sensors)]:
        phase = rng.uniform(0, spec["period"])
        for k in range(int(DURATION_MS / spec["period"])):
            if rng.random() < spec["drop"]:
                continue
            stamp = BASE + round((phase + k * spec["period"] + rng.uniform(-1, 1) * spec["jitter"]) * MS)
            for _ in range(2 if rng.random() < spec["duplicate"] else 1):
                delay = spec["latency"] + rng.uniform(0, spec["reorder"])
                records.append(SensorRecord(sensor_id, stamp, stamp + round(delay * MS), PAYLOAD))
    records.sort(key=lambda r: r.receive_ns)
    polls = [rng.random() < 0.2 for _ in records] if duplicates else [False] * len(records)
    return config, records, polls


def run(config, records, polls):
    sync = Synchronizer(config)
    caps = {"ref": config.max_pending, **{s.sensor_id: s.queue_size for s in config.sensors}}
    frames = []
    for item, poll in zip(records, polls, strict=True):
        frames += sync.push(item)
        if poll:
            frames += sync.poll(item.receive_ns + 50 * MS)
        lengths = sync.queue_lengths()
        assert all(lengths[s] <= caps[s] for s in caps), lengths
    return sync, frames + sync.flush()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_invariants(scenario) -> None:
    config, records, polls = scenario
    sync, frames = run(config, records, polls)
    stats = sync.stats
    tolerance = {s.sensor_id: s.tolerance_ns for s in config.sensors}
    offset = {s.sensor_id: s.offset_ns for s in config.sensors}
    used: set[int] = set()
    for frame in frames:
        assert set(frame.records) | set(frame.missing) == set(config.ids)
        assert not set(frame.records) & set(frame.missing)
        assert frame.records["ref"] is frame.reference
        assert frame.reference.stamp_ns == frame.stamp_ns
        for sensor_id, item in frame.records.items():
            assert item.sensor_id == sensor_id
            assert id(item) not in used, "a message is used in two frames"
            used.add(id(item))
            if sensor_id != "ref":
                assert abs(item.stamp_ns - (frame.stamp_ns + offset[sensor_id])) <= tolerance[sensor_id]
    stamps = [f.stamp_ns for f in frames]
    assert stamps == sorted(set(stamps)), "frames out of order or repeated"
    ref_dropped = stats.sensors["ref"].dropped
    assert ref_dropped["reset"] == 0
    assert stats.resets == 0
    assert len(frames) == stats.sensors["ref"].received - ref_dropped["duplicate"] - ref_dropped["too_old"]
    assert set(stamps) == {r.stamp_ns for r in records if r.sensor_id == "ref"} - _too_old_refs(records, frames)
    for sensor_id, counts in stats.sensors.items():
        assert counts.received == sum(r.sensor_id == sensor_id for r in records)
        assert counts.received == counts.matched + sum(counts.dropped.values()), sensor_id
    assert stats.frames == len(frames)


def _too_old_refs(records, frames) -> set[int]:
    """Reference stamps that arrived after a newer frame had gone out (the too_old rule)."""
    emitted = {f.stamp_ns for f in frames}
    return {r.stamp_ns for r in records if r.sensor_id == "ref"} - emitted


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(duplicates=False))
def test_same_frames_as_the_linear_scan_matcher(scenario) -> None:
    config, records, polls = scenario
    _, frames = run(config, records, polls)
    matcher = LinearScanMatcher(config)
    expected = [frame for item in records for frame in matcher.push(item)] + matcher.flush()
    assert [(f.stamp_ns, {k: id(r) for k, r in f.records.items()}) for f in frames] == [
        (f.stamp_ns, {k: id(r) for k, r in f.records.items()}) for f in expected
    ]
    assert [{k: m.reason for k, m in f.missing.items()} for f in frames] == [
        {k: m.reason for k, m in f.missing.items()} for f in expected
    ]


@st.composite
def periodic_scenarios(draw):
    """Streams whose stamps keep each sensor's period within a known jitter: consecutive stamps
    are at least ``period - 2 x jitter`` apart (drops only widen the gaps); each sensor's
    messages arrive in stamp order, interleaved with the other sensors' by random delays."""
    config, records, _ = draw(scenarios(duplicates=False))
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    periods, sensors, kept = {}, [], []
    references = sorted({r.stamp_ns for r in records if r.sensor_id == "ref"})
    # windows that do not overlap: a message can belong to one frame only, whatever the timing
    widest = (min((b - a for a, b in itertools.pairwise(references)), default=0) - 1) // 2
    for sensor in config.sensors:
        period = draw(st.integers(20, 200))
        jitter = draw(st.integers(0, period // 10))
        periods[sensor.sensor_id] = (period, jitter)
        # Deadlines and queues that never decide a frame, windows that do not overlap: then what
        # a frame takes must not depend on when it goes out (a sensor past its deadline takes
        # what it holds at that moment; an overflowing queue evicts by arrival; a frame owns
        # its whole window, so with overlapping windows an earlier frame's timing matters).
        tolerance = max(0, min(sensor.tolerance_ns, widest))
        # symmetric windows ("nearest") or a shorter lookahead ("latest"): never overlapping
        lookahead = draw(st.one_of(st.none(), st.integers(0, tolerance)))
        sensors.append(
            dataclasses.replace(
                sensor,
                min_period_ns=(period - 2 * jitter) * MS,
                tolerance_ns=tolerance,
                lookahead_ns=lookahead,
                deadline_ns=10_000 * MS,
                queue_size=64,
            )
        )
    for item in records:
        if item.sensor_id == "ref":
            kept.append(item)
    for sensor_id, (period, jitter) in periods.items():
        phase, latency, spread = rng.uniform(0, period), rng.uniform(0, 100), rng.uniform(0, 150)
        received = 0
        for k in range(int(DURATION_MS / period)):
            if rng.random() < 0.1:
                continue
            stamp = BASE + round((phase + k * period + rng.uniform(-1, 1) * jitter) * MS)
            # one sensor's messages arrive in order (the rules assume it), late by any amount
            received = max(received, stamp + round((latency + rng.uniform(0, spread)) * MS))
            kept.append(SensorRecord(sensor_id, stamp, received, PAYLOAD))
    kept.sort(key=lambda r: r.receive_ns)
    periodic = dataclasses.replace(config, sensors=tuple(sensors), max_pending=1000)
    plain = dataclasses.replace(periodic, sensors=tuple(dataclasses.replace(s, min_period_ns=0) for s in sensors))
    return periodic, plain, kept


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(periodic_scenarios())
def test_a_known_period_changes_when_frames_go_out_never_what_they_hold(scenario) -> None:
    """Deciding a sensor early (its held message is within half its minimum period before the
    target) picks exactly the message the plain rule picks after waiting for a later one.
    (With short deadlines the frames may differ, rightly: going out earlier, a frame leaves out
    messages of other sensors that arrive after their deadlines.)"""
    periodic, plain, records = scenario
    _, early = run(periodic, records, [False] * len(records))
    _, waited = run(plain, records, [False] * len(records))
    assert [(f.stamp_ns, {k: id(r) for k, r in f.records.items()}) for f in early] == [
        (f.stamp_ns, {k: id(r) for k, r in f.records.items()}) for f in waited
    ]
