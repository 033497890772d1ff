"""Property-based: random rates, phases, offsets, tolerances, deadlines, jitter, losses,
duplicates, transport reordering and polls. Whatever the stream: no message is used twice, no
record lies outside its sensor's tolerance, frames come in stamp order, every reference
message yields exactly one frame unless dropped by a documented rule, nothing is lost from
the counts, queues stay within their caps, and the frames equal those of an independent,
straightforward matcher (the benchmark's baseline) on streams without duplicates or polls.
"""

from __future__ import annotations

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
