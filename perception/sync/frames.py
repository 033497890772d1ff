"""What the synchronizer emits: a frame per reference message, with what is missing and why.

Time is integer nanoseconds on the data clock (header stamps). The synchronizer never looks at
a record's payload: anything with ``sensor_id``, ``stamp_ns`` and ``receive_ns`` can be
synchronized (:class:`perception.samples.SensorRecord`, ``fusion_node.bag.stamps.StampedMessage``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, Protocol, TypeVar


class Stamped(Protocol):
    """A message as the synchronizer sees it.

    Attributes:
        sensor_id: rig sensor id.
        stamp_ns: data stamp (header stamp, capture time), int nanoseconds.
        receive_ns: arrival time (or bag log time), int nanoseconds, same clock as live ``now_ns``.
    """

    @property
    def sensor_id(self) -> str: ...

    @property
    def stamp_ns(self) -> int: ...

    @property
    def receive_ns(self) -> int: ...


R = TypeVar("R", bound=Stamped)


class MissingReason(StrEnum):
    """Why a sensor has no record in a frame.

    LATE: no message at or past the sensor's target stamp had arrived by its deadline (the
        message is late or lost, or the sensor stopped: the detail says since when), and none
        inside the tolerance either.
    STALE: the sensor has delivered messages at or past the target, but none within the
        tolerance (its stream skipped this frame, or its stamps are offset by more than the
        tolerance): only messages outside the tolerance.
    NEVER_SEEN: no message of this sensor has ever been pushed.
    """

    LATE = "late"
    STALE = "stale"
    NEVER_SEEN = "never_seen"


@dataclass(frozen=True)
class Missing:
    """A sensor absent from a frame.

    Attributes:
        reason: see :class:`MissingReason`.
        detail: one human-readable line: the target stamp and the nearest/newest stamp seen and
            how far off it is, e.g. "no stamp within ±41.667 ms of 1700000000100000000 by the
            deadline (+123.333 ms); newest 1700000000016000000 is 84.000 ms before the target".
    """

    reason: MissingReason
    detail: str


@dataclass(frozen=True, eq=False)
class Frame(Generic[R]):
    """One synchronized frame, driven by one reference message.

    Attributes:
        stamp_ns: the reference message's stamp, int nanoseconds (the frame time).
        reference: the reference message.
        records: sensor id -> the record chosen for the frame; includes the reference sensor.
            Every configured sensor is either here or in ``missing``.
        missing: sensor id -> why that sensor has no record.
    """

    stamp_ns: int
    reference: R
    records: dict[str, R]
    missing: dict[str, Missing]

    @property
    def complete(self) -> bool:
        """True when every configured sensor has a record."""
        return not self.missing

    @property
    def spread_ns(self) -> int:
        """Newest minus oldest stamp among the frame's records (reference included), ns."""
        stamps = [record.stamp_ns for record in self.records.values()]
        return max(stamps) - min(stamps)

    def describe(self) -> str:
        """One line: stamp, complete or which sensors are missing and why."""
        if self.complete:
            return f"frame {self.stamp_ns}: complete, {len(self.records)} records, spread {self.spread_ns / 1e6:.3f} ms"
        missing = ", ".join(f"{sensor_id} ({item.reason.value})" for sensor_id, item in sorted(self.missing.items()))
        return f"frame {self.stamp_ns}: partial, {len(self.records)} records, missing {missing}"
