"""Sensor health grading: rate, stop, rejected messages, out-of-order stamps, bounded memory."""

from __future__ import annotations

import pytest

from perception.sensor_health import NS_PER_S, HealthLevel, SensorHealthMonitor

MS = 1_000_000


def _feed(monitor: SensorHealthMonitor, sensor: str, rate_hz: float, start_ns: int, seconds: float) -> int:
    period = int(NS_PER_S / rate_hz)
    t = start_ns
    while t < start_ns + seconds * NS_PER_S:
        monitor.record(sensor, t, t + 5 * MS)
        t += period
    return t


def _by_id(monitor: SensorHealthMonitor, now_ns: int):
    return {s.sensor_id: s for s in monitor.status(now_ns)}


def test_healthy_sensor_reports_its_rate() -> None:
    monitor = SensorHealthMonitor({"lidar": 10.0})
    end = _feed(monitor, "lidar", 10.0, 0, 3.0)
    status = _by_id(monitor, end)["lidar"]
    assert status.level is HealthLevel.OK
    assert status.rate_hz == pytest.approx(10.0, rel=0.01)
    assert status.received == 30


def test_never_seen_and_stopped_are_errors_and_recovery_clears() -> None:
    monitor = SensorHealthMonitor({"lidar": 10.0, "radar": 13.0})
    end = _feed(monitor, "lidar", 10.0, 0, 1.0)
    assert _by_id(monitor, end)["radar"].level is HealthLevel.ERROR
    assert "no message" in _by_id(monitor, end)["radar"].message
    later = end + 2 * NS_PER_S
    lidar = _by_id(monitor, later)["lidar"]
    assert lidar.level is HealthLevel.ERROR
    assert "stopped" in lidar.message
    assert lidar.age_s > 1.9
    end = _feed(monitor, "lidar", 10.0, later, 1.0)
    assert _by_id(monitor, end)["lidar"].level is HealthLevel.OK


def test_low_rate_warns() -> None:
    monitor = SensorHealthMonitor({"cam": 12.0}, stale_after_periods=20)
    end = _feed(monitor, "cam", 4.0, 0, 3.0)
    status = _by_id(monitor, end)["cam"]
    assert status.level is HealthLevel.WARN
    assert "below nominal" in status.message


def test_rejected_message_warns_then_expires() -> None:
    monitor = SensorHealthMonitor({"lidar": 10.0}, error_hold_s=1.0)
    end = _feed(monitor, "lidar", 10.0, 0, 1.0)
    monitor.record_rejected("lidar", "data has 10 bytes but height*row_step = 16", end)
    status = _by_id(monitor, end)["lidar"]
    assert status.level is HealthLevel.WARN
    assert "row_step" in status.message
    assert status.rejected == 1
    end = _feed(monitor, "lidar", 10.0, end, 2.0)
    assert _by_id(monitor, end)["lidar"].level is HealthLevel.OK
    assert _by_id(monitor, end)["lidar"].rejected == 1


def test_out_of_order_stamps_are_counted() -> None:
    monitor = SensorHealthMonitor({"radar": 13.0})
    for stamp in (100, 200, 150, 300, 300):
        monitor.record("radar", stamp, stamp)
    assert _by_id(monitor, 300)["radar"].out_of_order == 1


def test_memory_is_bounded_by_the_window() -> None:
    monitor = SensorHealthMonitor({"us": 20.0}, window_s=1.0)
    _feed(monitor, "us", 1000.0, 0, 10.0)  # a 50x burst for 10 s
    assert len(monitor._tracks["us"].arrivals) <= 1001


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="'cam'"):
        SensorHealthMonitor({"cam": 0.0})
    monitor = SensorHealthMonitor({"cam": 12.0})
    with pytest.raises(KeyError, match="lidar"):
        monitor.record("lidar", 0, 0)
