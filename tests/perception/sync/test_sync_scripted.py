"""Scripted arrival orders with explicit clocks: late camera, stopped radar, duplicates,
out-of-order stamps, clock jump back, 10x burst, a sensor never seen, arrival vs data clock.

Config (sync_helpers.small_config): lidar reference every 100 ms; cam tolerance 40 ms, deadline
150 ms; radar tolerance 35 ms, deadline 120 ms. Times in ms after BASE.
"""

from __future__ import annotations

import dataclasses

from sync_helpers import MS, at, record, small_config

from calibration import Modality
from perception.sync import DropReason, MissingReason, SensorSync, Synchronizer


def push_all(sync, records, frames=None):
    frames = [] if frames is None else frames
    for item in records:
        frames += sync.push(item)
    return frames


def chosen(frame) -> dict[str, int]:
    """sensor id -> stamp (ms after BASE) of each record in the frame."""
    return {sensor_id: (r.stamp_ns - at(0)) // MS for sensor_id, r in frame.records.items()}


def test_complete_frame_goes_out_as_soon_as_every_sensor_is_decided() -> None:
    sync = Synchronizer(small_config())
    assert push_all(sync, [record("lidar", 100), record("cam", 97), record("radar", 104)]) == []  # cam may improve
    frames = sync.push(record("cam", 180, receive_ms=190))  # cam went past 100: 97 was the nearest
    assert len(frames) == 1
    assert frames[0].complete
    assert chosen(frames[0]) == {"lidar": 100, "cam": 97, "radar": 104}
    assert frames[0].spread_ns == 7 * MS
    assert sync.now_ns == at(190)


def test_a_known_period_decides_a_sensor_without_its_next_message() -> None:
    """A camera with an 80 ms minimum period holding a message 30 ms before the target: its
    next one comes at 50 ms after the target or later, no closer, so the frame goes out at
    once. 45 ms before the target is more than half a period: the next one may be closer."""
    config = small_config()
    cam, radar = config.sensors
    periodic = dataclasses.replace(config, sensors=(dataclasses.replace(cam, min_period_ns=80 * MS), radar))
    sync = Synchronizer(periodic)
    frames = push_all(sync, [record("cam", 70), record("radar", 104), record("lidar", 100)])
    assert [chosen(f) for f in frames] == [{"lidar": 100, "cam": 70, "radar": 104}]
    assert push_all(sync, [record("cam", 155), record("radar", 201), record("lidar", 200)]) == []  # 45 ms before
    frames = sync.push(record("cam", 235, receive_ms=240))
    assert [chosen(f) for f in frames] == [{"lidar": 200, "cam": 235, "radar": 201}]
    # without the period the same messages wait for a camera stamp past the target
    sync = Synchronizer(config)
    assert push_all(sync, [record("cam", 70), record("radar", 104), record("lidar", 100)]) == []


def test_latest_matching_takes_the_newest_message_at_the_target_without_waiting() -> None:
    """A camera with an 80 ms minimum period, a window of 85 ms back and 5 ms ahead: a message
    45 ms before the target decides the frame at once (its next one comes 35 ms after the
    target at the earliest, past the window), where nearest matching waits and takes that one.
    A message within the 5 ms ahead is taken; the next frame's window starts after it."""
    config = small_config()
    cam, radar = config.sensors
    latest_cam = dataclasses.replace(cam, tolerance_ns=85 * MS, lookahead_ns=5 * MS, min_period_ns=80 * MS)
    sync = Synchronizer(dataclasses.replace(config, sensors=(latest_cam, radar)))
    frames = push_all(sync, [record("cam", 155), record("radar", 201), record("lidar", 200)])
    assert [chosen(f) for f in frames] == [{"lidar": 200, "cam": 155, "radar": 201}]
    frames = push_all(sync, [record("cam", 235), record("cam", 303), record("radar", 301), record("lidar", 300)])
    assert [chosen(f) for f in frames] == [{"lidar": 300, "cam": 303, "radar": 301}]
    assert sync.stats.sensors["cam"].dropped[DropReason.UNMATCHED] == 1  # 235: older than the newest at 300
    nearest_cam = dataclasses.replace(cam, min_period_ns=80 * MS)
    sync = Synchronizer(dataclasses.replace(config, sensors=(nearest_cam, radar)))
    assert push_all(sync, [record("cam", 155), record("radar", 201), record("lidar", 200)]) == []
    assert [chosen(f) for f in sync.push(record("cam", 235))] == [{"lidar": 200, "cam": 235, "radar": 201}]


def test_late_camera_gives_one_partial_frame_then_no_stall() -> None:
    sync = Synchronizer(small_config())
    frames = push_all(sync, [record("lidar", 0), record("cam", 1), record("radar", 2)])
    frames = push_all(sync, [record("lidar", 100), record("radar", 101)], frames)
    assert sync.poll(at(249)) == []  # cam deadline for frame 100 is 100 + 150
    frames += sync.poll(at(250))
    assert [f.stamp_ns for f in frames] == [at(0), at(100)]
    late = frames[1]
    assert late.missing["cam"].reason is MissingReason.LATE
    assert "newest 1000001000000 is 99.000 ms before the target" in late.missing["cam"].detail
    assert chosen(late) == {"lidar": 100, "radar": 101}
    # the late image finally arrives: its frame is gone, it must not be used later
    assert sync.push(record("cam", 102, receive_ms=260)) == []
    frames = push_all(
        sync, [record("lidar", 200), record("cam", 199), record("radar", 203), record("lidar", 300)], frames
    )
    frames = push_all(sync, [record("cam", 301), record("radar", 298), record("radar", 370)], frames)
    assert [f.complete for f in frames] == [True, False, True, True]
    assert [chosen(f)["cam"] for f in frames if "cam" in f.records] == [1, 199, 301]
    stats = sync.stats
    assert stats.sensors["cam"].dropped["too_old"] == 1
    assert stats.sensors["cam"].missing["late"] == 1
    assert (stats.frames_complete, stats.frames_partial) == (3, 1)


def test_late_camera_in_data_time_waits_for_the_data_clock() -> None:
    sync = Synchronizer(small_config("data"))
    frames = push_all(sync, [record("lidar", 0), record("cam", 0), record("radar", 0)])
    frames = push_all(sync, [record("lidar", 100), record("radar", 101), record("radar", 180), record("lidar", 200)])
    assert frames == []  # data clock at 200 < 250 = frame 100 + cam deadline
    frames = push_all(sync, [record("radar", 251)])
    assert [f.stamp_ns for f in frames] == [at(100)]
    assert frames[0].missing["cam"].reason is MissingReason.LATE


def test_stopped_radar_keeps_frames_coming_at_the_reference_rate() -> None:
    sync = Synchronizer(small_config())
    emitted: list[tuple[int, int]] = []  # (frame stamp, clock at emission)
    for k in range(30):
        t = 100 * k
        stream = [record("lidar", t), record("cam", t + 2)]
        if t <= 500:
            stream.append(record("radar", t - 3))
        for item in stream:
            emitted += [(f.stamp_ns, sync.now_ns) for f in sync.push(item)]
        emitted += [(f.stamp_ns, sync.now_ns) for f in sync.poll(at(t + 50))]
    frames_by_stamp = [stamp for stamp, _ in emitted]
    assert frames_by_stamp == [at(100 * k) for k in range(len(frames_by_stamp))]
    assert len(frames_by_stamp) >= 28  # no stall: only the newest frames can still be pending
    # every frame leaves by its radar deadline (120 ms) plus one poll step
    assert max(now - stamp for stamp, now in emitted) <= 150 * MS
    stats = sync.stats
    assert stats.sensors["radar"].missing["late"] == len(frames_by_stamp) - 6
    assert stats.sensors["cam"].matched == len(frames_by_stamp)


def test_duplicate_stamps_are_dropped_and_counted() -> None:
    sync = Synchronizer(small_config())
    stream = [
        record("lidar", 0),
        record("cam", 5),
        record("cam", 5, receive_ms=11),  # same stamp, held
        record("lidar", 0, receive_ms=12),  # same reference stamp, pending
        record("radar", 1),
        record("cam", 5, receive_ms=30),  # same stamp as the one used
        record("lidar", 100),
        record("cam", 100),
        record("radar", 100),
        record("lidar", 100, receive_ms=140),  # same stamp as the emitted frame
    ]
    frames = push_all(sync, stream)
    assert [f.stamp_ns for f in frames] == [at(0), at(100)]
    assert all(f.complete for f in frames)
    stats = sync.stats
    assert stats.sensors["cam"].dropped["duplicate"] == 2
    assert stats.sensors["lidar"].dropped["duplicate"] == 2
    assert stats.sensors["cam"].matched == 2


def test_out_of_order_stamps_within_a_sensor_and_for_the_reference() -> None:
    sync = Synchronizer(small_config())
    stream = [
        record("cam", 208, receive_ms=215),
        record("cam", 197, receive_ms=216),  # older stamp arrives second
        record("radar", 230, receive_ms=231),
        record("radar", 195, receive_ms=232),
        record("lidar", 300, receive_ms=305),  # reference out of order too
        record("lidar", 200, receive_ms=306),
    ]
    frames = push_all(sync, stream)
    assert [f.stamp_ns for f in frames] == [at(200)]
    assert chosen(frames[0]) == {"lidar": 200, "cam": 197, "radar": 195}
    frames = push_all(sync, [record("cam", 302, receive_ms=310), record("radar", 301, receive_ms=311)])
    assert [f.stamp_ns for f in frames] == [at(300)]
    assert chosen(frames[0]) == {"lidar": 300, "cam": 302, "radar": 301}
    assert sync.stats.sensors["cam"].dropped["unmatched"] == 1  # 208: nearer 200 than 300, never chosen
    assert sync.stats.sensors["radar"].dropped["unmatched"] == 1  # 230: outside both windows


def test_clock_jump_back_resets_and_never_mixes_epochs() -> None:
    sync = Synchronizer(small_config("data"))
    first = [record(s, 100 * k + d, receive_ms=10 + 100 * k) for k in range(20) for s, d in (("lidar", 0), ("cam", 3))]
    first += [record("radar", 100 * k - 2, receive_ms=10 + 100 * k) for k in range(20)]
    first.sort(key=lambda r: r.receive_ns)
    frames = push_all(sync, first)
    pending_before = sync.pending
    assert pending_before >= 1
    # the bag loops: same stamps again, received later
    second = [dataclasses.replace(r, receive_ns=r.receive_ns + at(5000) - at(0)) for r in first]
    frames_after = push_all(sync, second)
    frames_after += sync.flush()
    stats = sync.stats
    assert stats.resets == 1
    assert stats.frames_discarded == pending_before
    for frame in frames:
        assert all(r.receive_ns < at(5000) for r in frame.records.values())
    for frame in frames_after:
        assert all(r.receive_ns >= at(5000) for r in frame.records.values())
    assert [f.stamp_ns for f in frames_after] == [at(100 * k) for k in range(20)]
    assert sum(f.complete for f in frames_after) == 20
    assert stats.sensors["cam"].dropped["reset"] >= 1


def test_ten_times_burst_keeps_memory_bounded() -> None:
    sync = Synchronizer(small_config(queue_size=4, max_pending=3))
    caps = {"lidar": 3, "cam": 4, "radar": 4}
    stream = []
    for k in range(20):  # camera driver dumps a 10x backlog while the lidar keeps 10 Hz
        stream.append(record("lidar", 100 * k, receive_ms=100 * k + 5))
        stream += [record("cam", 100 * k + 10 * j, receive_ms=100 * k + 95) for j in range(10)]
        stream.append(record("radar", 100 * k + 1, receive_ms=100 * k + 96))
    for k in range(20, 40):  # then the lidar bursts: 10 sweeps per 100 ms
        stream += [record("lidar", 2000 + 10 * (k - 20) + j, receive_ms=2010 + 10 * (k - 20)) for j in range(10)]
    frames = []
    for item in stream:
        frames += sync.push(item)
        lengths = sync.queue_lengths()
        assert all(lengths[s] <= caps[s] for s in caps), lengths
    frames += sync.flush()
    stats = sync.stats
    assert stats.sensors["cam"].dropped["overflow"] > 0
    assert stats.frames_forced > 0
    assert len(frames) == stats.sensors["lidar"].received  # forced out, never lost
    for sensor_id, sensor in stats.sensors.items():
        assert sensor.received == sensor.matched + sum(sensor.dropped.values()), sensor_id


def test_a_sensor_never_seen_is_reported_and_does_not_block() -> None:
    config = small_config()
    config = dataclasses.replace(
        config, sensors=(*config.sensors, SensorSync("us", Modality.ULTRASONIC, 0, 25 * MS, 60 * MS))
    )
    sync = Synchronizer(config)
    frames = push_all(sync, [record("lidar", 0), record("cam", 1), record("radar", 2)])
    assert frames == []
    frames = sync.poll(at(60))
    assert len(frames) == 1
    assert frames[0].missing["us"].reason is MissingReason.NEVER_SEEN
    assert set(frames[0].records) == {"lidar", "cam", "radar"}


def test_stale_when_only_messages_outside_the_tolerance() -> None:
    sync = Synchronizer(small_config())
    frames = push_all(sync, [record("lidar", 100), record("radar", 100), record("cam", 20), record("cam", 150)])
    assert len(frames) == 1
    missing = frames[0].missing["cam"]
    assert missing.reason is MissingReason.STALE
    assert "nearest 1000150000000 is 50.000 ms after the target" in missing.detail
    assert sync.stats.sensors["cam"].dropped["unmatched"] == 1  # 20 ms: passed by the frame


def test_arrival_clock_and_data_clock_differ_only_in_when_deadlines_pass() -> None:
    stream = [record("cam", 0), record("lidar", 100, receive_ms=400), record("radar", 100, receive_ms=400)]
    arrival = Synchronizer(small_config("arrival"))  # 300 ms transport delay
    frames = push_all(arrival, stream)
    assert len(frames) == 1
    assert frames[0].missing["cam"].reason is MissingReason.LATE
    data = Synchronizer(small_config("data"))
    assert push_all(data, stream) == []  # data clock is 100: the camera may still come
    assert data.push(record("radar", 240, receive_ms=500)) == []
    frames = data.push(record("radar", 250, receive_ms=501))
    assert len(frames) == 1
    assert frames[0].missing["cam"].reason is MissingReason.LATE
    # an explicit now_ns overrides either clock
    explicit = Synchronizer(small_config("data"))
    assert push_all(explicit, stream[:2]) == []
    assert len(explicit.push(stream[2], now_ns=at(250))) == 1


def test_flush_emits_pending_frames_with_what_is_held() -> None:
    sync = Synchronizer(small_config())
    stream = [record("radar", -90), record("lidar", 0), record("cam", -20), record("lidar", 100), record("cam", 110)]
    frames = push_all(sync, stream)
    assert frames == []  # radar deadline of frame 0 is 120, the clock is 115
    frames = sync.flush()
    assert [f.stamp_ns for f in frames] == [at(0), at(100)]
    assert chosen(frames[0]) == {"lidar": 0, "cam": -20}
    assert chosen(frames[1]) == {"lidar": 100, "cam": 110}
    assert "end of stream" in frames[0].missing["radar"].detail
    assert sync.queue_lengths() == {"lidar": 0, "cam": 0, "radar": 0}
    assert DropReason("unmatched") is DropReason.UNMATCHED
