"""Synchronizer statistics: frames complete/partial, and per sensor matches, misses, drops and
staleness (|stamp - target| of the matched messages). Counters live in :class:`SensorCounters`
(mutable, updated on the hot path); :class:`SyncStats` is the frozen snapshot callers get.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

import numpy as np

from perception.sync.frames import MissingReason

#: Staleness median is over the last this many matched messages of a sensor (bounded memory).
STALENESS_WINDOW: Final = 1024


class DropReason(StrEnum):
    """Why a message was dropped without being used in a frame.

    DUPLICATE: same sensor and stamp as a message already held or used.
    TOO_OLD: inside or before the window of the last frame emitted for that sensor (its frame
        is gone) or, for the reference, at or before the last frame's stamp.
    OVERFLOW: the sensor's queue was full; the oldest message made room.
    UNMATCHED: held, never chosen, and passed by the frames (or left at ``flush``).
    RESET: held when the clock jumped back and the synchronizer reset.
    """

    DUPLICATE = "duplicate"
    TOO_OLD = "too_old"
    OVERFLOW = "overflow"
    UNMATCHED = "unmatched"
    RESET = "reset"


@dataclass(frozen=True)
class SensorStats:
    """Counts for one sensor since the synchronizer was made.

    Attributes:
        received: messages pushed.
        matched: messages used in a frame (for the reference: frames it drove).
        missing: reason -> frames without this sensor.
        dropped: reason -> messages dropped.
        staleness_median_ns: median |stamp - target| over the last STALENESS_WINDOW matched
            messages, ns (None before the first match; 0 for the reference).
        staleness_max_ns: largest |stamp - target| ever matched, ns (None before the first).
    """

    received: int
    matched: int
    missing: dict[str, int]
    dropped: dict[str, int]
    staleness_median_ns: int | None
    staleness_max_ns: int | None


@dataclass(frozen=True)
class SyncStats:
    """Snapshot of the synchronizer's counters.

    Attributes:
        frames_complete: frames with every sensor.
        frames_partial: frames with at least one sensor missing.
        frames_forced: frames pushed out early because ``max_pending`` was exceeded (included
            in complete/partial).
        frames_discarded: pending frames thrown away by resets (not emitted).
        resets: clock jumps back.
        ignored: records of ignored sensors (e.g. odometry) pushed.
        sensors: sensor id -> its counts (reference first).
    """

    frames_complete: int
    frames_partial: int
    frames_forced: int
    frames_discarded: int
    resets: int
    ignored: int
    sensors: dict[str, SensorStats]

    @property
    def frames(self) -> int:
        """Frames emitted."""
        return self.frames_complete + self.frames_partial

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {
            "frames": self.frames,
            "frames_complete": self.frames_complete,
            "frames_partial": self.frames_partial,
            "frames_forced": self.frames_forced,
            "frames_discarded": self.frames_discarded,
            "resets": self.resets,
            "ignored": self.ignored,
            "sensors": {
                sensor_id: {
                    "received": s.received,
                    "matched": s.matched,
                    "missing": dict(s.missing),
                    "dropped": dict(s.dropped),
                    "staleness_median_ns": s.staleness_median_ns,
                    "staleness_max_ns": s.staleness_max_ns,
                }
                for sensor_id, s in self.sensors.items()
            },
        }


@dataclass
class SensorCounters:
    """Mutable counters of one sensor (the synchronizer's own; read them via SyncStats)."""

    received: int = 0
    matched: int = 0
    missing: dict[MissingReason, int] = field(default_factory=lambda: dict.fromkeys(MissingReason, 0))
    dropped: dict[DropReason, int] = field(default_factory=lambda: dict.fromkeys(DropReason, 0))
    staleness: deque[int] = field(default_factory=lambda: deque(maxlen=STALENESS_WINDOW))
    staleness_max: int = -1

    def match(self, staleness_ns: int) -> None:
        self.matched += 1
        self.staleness.append(staleness_ns)
        if staleness_ns > self.staleness_max:
            self.staleness_max = staleness_ns

    def snapshot(self) -> SensorStats:
        return SensorStats(
            received=self.received,
            matched=self.matched,
            missing={reason.value: count for reason, count in self.missing.items()},
            dropped={reason.value: count for reason, count in self.dropped.items()},
            staleness_median_ns=int(np.median(self.staleness)) if self.staleness else None,
            staleness_max_ns=self.staleness_max if self.staleness_max >= 0 else None,
        )
