"""Per-sensor health from message arrivals: rate, staleness, rejected messages.

ROS-free. The node feeds it every accepted and every rejected message; ``status(now)`` says,
per sensor, whether it is healthy and why not. Levels match diagnostic_msgs/DiagnosticStatus.
Memory is bounded: only arrivals inside the rate window are kept.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum

NS_PER_S = 1_000_000_000


class HealthLevel(IntEnum):
    """Same numbers as diagnostic_msgs/DiagnosticStatus levels."""

    OK = 0
    WARN = 1
    ERROR = 2


@dataclass(frozen=True)
class SensorStatus:
    """Health of one sensor at one instant.

    Attributes:
        sensor_id: rig sensor id.
        level: OK, WARN or ERROR.
        message: one line saying why (e.g. "stopped: last message 1.52 s ago").
        received: accepted messages since start.
        rejected: rejected (malformed) messages since start.
        out_of_order: accepted messages whose stamp went backwards.
        rate_hz: measured arrival rate over the window, Hz (0 when under two arrivals).
        age_s: seconds since the last accepted message (inf when never seen).
        last_error: reason of the last rejection ("" when none).
    """

    sensor_id: str
    level: HealthLevel
    message: str
    received: int
    rejected: int
    out_of_order: int
    rate_hz: float
    age_s: float
    last_error: str


@dataclass
class _Track:
    nominal_hz: float
    arrivals: deque[int] = field(default_factory=deque)
    received: int = 0
    rejected: int = 0
    out_of_order: int = 0
    last_stamp_ns: int | None = None
    last_arrival_ns: int | None = None
    last_error: str = ""
    last_error_ns: int | None = None


class SensorHealthMonitor:
    """Tracks arrivals per sensor and grades each sensor's health.

    Args:
        nominal_rates_hz: sensor id -> nominal rate, Hz (> 0).
        window_s: sliding window for the measured rate, seconds.
        stale_after_periods: a sensor with no message for this many nominal periods (and at
            least ``min_stale_s``) is reported as stopped (ERROR).
        min_rate_fraction: measured rate below this fraction of nominal is a WARN.
        error_hold_s: a rejected message keeps the sensor at WARN for this long.
    """

    def __init__(
        self,
        nominal_rates_hz: Mapping[str, float],
        *,
        window_s: float = 2.0,
        stale_after_periods: float = 5.0,
        min_stale_s: float = 0.5,
        min_rate_fraction: float = 0.5,
        error_hold_s: float = 2.0,
    ) -> None:
        for sensor_id, rate in nominal_rates_hz.items():
            if not rate > 0:
                raise ValueError(f"nominal rate of sensor '{sensor_id}' must be positive, got {rate}")
        if not window_s > 0:
            raise ValueError(f"window_s must be positive, got {window_s}")
        self._tracks = {sid: _Track(nominal_hz=rate) for sid, rate in nominal_rates_hz.items()}
        self._window_ns = int(window_s * NS_PER_S)
        self._stale_after_periods = stale_after_periods
        self._min_stale_ns = int(min_stale_s * NS_PER_S)
        self._min_rate_fraction = min_rate_fraction
        self._error_hold_ns = int(error_hold_s * NS_PER_S)

    def _track(self, sensor_id: str) -> _Track:
        try:
            return self._tracks[sensor_id]
        except KeyError:
            raise KeyError(f"unknown sensor '{sensor_id}'; known: {sorted(self._tracks)}") from None

    def record(self, sensor_id: str, stamp_ns: int, arrival_ns: int) -> None:
        """An accepted message of ``sensor_id`` with header stamp ``stamp_ns`` arrived at ``arrival_ns``."""
        track = self._track(sensor_id)
        track.received += 1
        if track.last_stamp_ns is not None and stamp_ns < track.last_stamp_ns:
            track.out_of_order += 1
        track.last_stamp_ns = stamp_ns
        track.last_arrival_ns = arrival_ns
        track.arrivals.append(arrival_ns)
        self._trim(track, arrival_ns)

    def record_rejected(self, sensor_id: str, reason: str, arrival_ns: int) -> None:
        """A message of ``sensor_id`` was dropped for ``reason`` (e.g. a ConversionError text)."""
        track = self._track(sensor_id)
        track.rejected += 1
        track.last_error = reason
        track.last_error_ns = arrival_ns

    def _trim(self, track: _Track, now_ns: int) -> None:
        while track.arrivals and track.arrivals[0] < now_ns - self._window_ns:
            track.arrivals.popleft()

    def status(self, now_ns: int) -> list[SensorStatus]:
        """Health of every sensor at ``now_ns`` (same clock as the arrival times)."""
        return [self._grade(sensor_id, track, now_ns) for sensor_id, track in self._tracks.items()]

    def _grade(self, sensor_id: str, track: _Track, now_ns: int) -> SensorStatus:
        self._trim(track, now_ns)
        rate = self._rate(track)
        age_s = float("inf") if track.last_arrival_ns is None else (now_ns - track.last_arrival_ns) / NS_PER_S
        stale_ns = max(self._min_stale_ns, int(self._stale_after_periods * NS_PER_S / track.nominal_hz))
        recent_error = track.last_error_ns is not None and now_ns - track.last_error_ns <= self._error_hold_ns
        if track.last_arrival_ns is None:
            level, message = HealthLevel.ERROR, "no message received yet"
            if track.rejected:
                message = f"no valid message; {track.rejected} rejected, last: {track.last_error}"
        elif now_ns - track.last_arrival_ns > stale_ns:
            level, message = HealthLevel.ERROR, f"stopped: last message {age_s:.2f} s ago"
        elif recent_error:
            level, message = HealthLevel.WARN, f"{track.rejected} rejected message(s), last: {track.last_error}"
        elif len(track.arrivals) >= 2 and rate < self._min_rate_fraction * track.nominal_hz:
            level, message = HealthLevel.WARN, f"rate {rate:.1f} Hz below nominal {track.nominal_hz:.1f} Hz"
        else:
            level, message = HealthLevel.OK, f"{rate:.1f} Hz"
        return SensorStatus(
            sensor_id=sensor_id,
            level=level,
            message=message,
            received=track.received,
            rejected=track.rejected,
            out_of_order=track.out_of_order,
            rate_hz=rate,
            age_s=age_s,
            last_error=track.last_error,
        )

    @staticmethod
    def _rate(track: _Track) -> float:
        if len(track.arrivals) < 2:
            return 0.0
        span = track.arrivals[-1] - track.arrivals[0]
        return 0.0 if span <= 0 else (len(track.arrivals) - 1) * NS_PER_S / span
