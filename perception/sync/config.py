"""Synchronizer configuration: frozen, validated, built from the rig or by hand.

Per non-reference sensor: the stamp offset expected against the reference, the tolerance
around it, how long to wait for it, and its queue length. Times are int nanoseconds.

Odometry is not synchronized: ego-motion interpolates the odometry stream
(``calibration.PoseTrajectory``) at the frame stamp and at each record's own stamp, which
nearest-message matching would only degrade. :meth:`SyncConfig.from_rig` therefore lists the
rig's odometry sensors in ``ignored`` (pushing their records is counted and does nothing);
pass ``sensors=`` to synchronize them anyway.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from calibration.rig import Rig
from calibration.sensors import Modality
from perception.errors import SyncError

Clock = Literal["data", "arrival"]
#: ``clock`` values: "data" = newest stamp seen (bags, sim time); "arrival" = receive time.
CLOCKS: Final = ("data", "arrival")
Match = Literal["nearest", "latest"]
#: ``match`` values of :meth:`SyncConfig.from_rig`.
MATCHES: Final = ("nearest", "latest")
#: The runtime's matching unless told otherwise (the node, ``fusion eval``, the demo).
DEFAULT_MATCH: Final[Match] = "latest"
#: Defaults of :meth:`SyncConfig.from_rig`.
DEFAULT_MARGIN_NS: Final = 10_000_000
DEFAULT_QUEUE_SIZE: Final = 16
DEFAULT_MAX_PENDING: Final = 8
DEFAULT_JUMP_BACK_NS: Final = 1_000_000_000


def _int(value: object, name: str, where: str, minimum: int | None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SyncError(f"{where}: {name} must be an int, got {value!r}")
    if minimum is not None and value < minimum:
        raise SyncError(f"{where}: {name} must be >= {minimum}, got {value}")
    return value


#: Default slack on top of half a sensor period in each tolerance (trigger jitter), ns.
DEFAULT_TOLERANCE_MARGIN_NS = 5_000_000
#: Default shortfall of a sensor's shortest message interval against its nominal period, ns:
#: the timing jitter of consecutive stamps (sim: 0.5 ms Gaussian; free-running cameras: ~1 ms).
DEFAULT_PERIOD_JITTER_NS = 1_000_000


@dataclass(frozen=True)
class SensorSync:
    """How one non-reference sensor joins frames.

    Attributes:
        sensor_id: rig sensor id.
        modality: the sensor's modality.
        offset_ns: expected stamp offset against the reference: the target stamp of a frame is
            ``frame stamp + offset_ns`` (any sign).
        tolerance_ns: largest accepted ``target - stamp`` of a stamp at or before the target (>= 0).
        lookahead_ns: largest accepted ``stamp - target`` of a stamp after the target (>= 0;
            None: ``tolerance_ns``, a symmetric window). A short lookahead matches the newest
            message at (about) or before the target, so the frame need not wait for the next
            message of a free-running sensor (the "latest" matching of :meth:`SyncConfig.from_rig`).
        deadline_ns: longest wait after the frame stamp, on the synchronizer's clock, before
            the frame goes out without this sensor (>= 0).
        queue_size: most messages of this sensor held at once (>= 1); the oldest is dropped.
        min_period_ns: the shortest interval between two of its messages (>= 0; 0: unknown).
            A held message stamped less than half of it before the target cannot be beaten by
            the next one, so the frame takes it without waiting for a message past the target.
        source: where the values came from (a rig file), for error messages.
    """

    sensor_id: str
    modality: Modality
    offset_ns: int
    tolerance_ns: int
    deadline_ns: int
    queue_size: int = DEFAULT_QUEUE_SIZE
    min_period_ns: int = 0
    source: str = ""
    lookahead_ns: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.sensor_id, str) or not self.sensor_id:
            raise SyncError(f"sensor_id must be a non-empty string, got {self.sensor_id!r}{_from(self.source)}")
        where = f"sync sensor '{self.sensor_id}'{_from(self.source)}"
        try:
            object.__setattr__(self, "modality", Modality(self.modality))
        except ValueError:
            raise SyncError(
                f"{where}: modality must be one of {[m.value for m in Modality]}, got {self.modality!r}"
            ) from None
        _int(self.offset_ns, "offset_ns", where, None)
        _int(self.tolerance_ns, "tolerance_ns", where, 0)
        _int(self.deadline_ns, "deadline_ns", where, 0)
        _int(self.queue_size, "queue_size", where, 1)
        _int(self.min_period_ns, "min_period_ns", where, 0)
        if self.lookahead_ns is not None:
            _int(self.lookahead_ns, "lookahead_ns", where, 0)

    @property
    def ahead_ns(self) -> int:
        """The window's end after the target: ``lookahead_ns``, or ``tolerance_ns`` when None."""
        return self.tolerance_ns if self.lookahead_ns is None else self.lookahead_ns


def _from(source: str) -> str:
    return f" (from {source})" if source else ""


@dataclass(frozen=True)
class SyncConfig:
    """Everything the synchronizer needs.

    Attributes:
        reference: id of the sensor whose messages drive frames (one frame per message).
        sensors: the other synchronized sensors (unique ids, not the reference).
        ignored: sensor ids whose records ``push`` accepts and ignores (counted), e.g. odometry.
        clock: "data" (the clock is the newest stamp pushed: bags, sim time) or "arrival" (the
            clock is each record's ``receive_ns`` or the ``now_ns`` given: live).
        max_pending: most reference messages waiting to become frames; one more forces the
            oldest out with what has arrived (>= 1).
        jump_back_ns: a stamp this much older than its sensor's newest stamp means the clock
            jumped back (bag loop): the synchronizer resets (> 0).
        source: where the values came from (a rig file), for error messages.
    """

    reference: str
    sensors: tuple[SensorSync, ...] = ()
    ignored: frozenset[str] = field(default_factory=frozenset)
    clock: Clock = "data"
    max_pending: int = DEFAULT_MAX_PENDING
    jump_back_ns: int = DEFAULT_JUMP_BACK_NS
    source: str = ""

    def __post_init__(self) -> None:
        where = f"sync config{_from(self.source)}"
        if not isinstance(self.reference, str) or not self.reference:
            raise SyncError(f"{where}: reference must be a non-empty sensor id, got {self.reference!r}")
        object.__setattr__(self, "sensors", tuple(self.sensors))
        object.__setattr__(self, "ignored", frozenset(self.ignored))
        seen: set[str] = set()
        for sensor in self.sensors:
            if not isinstance(sensor, SensorSync):
                raise SyncError(f"{where}: sensors must be SensorSync, got {sensor!r}")
            if sensor.sensor_id in seen:
                raise SyncError(f"{where}: duplicate sensor id '{sensor.sensor_id}' in sensors")
            seen.add(sensor.sensor_id)
        if self.reference in seen:
            raise SyncError(f"{where}: reference '{self.reference}' is also listed in sensors")
        clash = sorted(self.ignored & (seen | {self.reference}))
        if clash:
            raise SyncError(f"{where}: sensor id(s) {clash} are both synchronized and ignored")
        if self.clock not in CLOCKS:
            raise SyncError(f"{where}: clock must be one of {list(CLOCKS)}, got {self.clock!r}")
        _int(self.max_pending, "max_pending", where, 1)
        _int(self.jump_back_ns, "jump_back_ns", where, 1)

    @property
    def ids(self) -> tuple[str, ...]:
        """The reference id, then the other synchronized sensor ids in order."""
        return (self.reference, *(sensor.sensor_id for sensor in self.sensors))

    def sensor(self, sensor_id: str) -> SensorSync:
        """The settings of ``sensor_id``; SyncError naming the known ids otherwise."""
        for sensor in self.sensors:
            if sensor.sensor_id == sensor_id:
                return sensor
        raise SyncError(f"sync config{_from(self.source)} has no sensor '{sensor_id}'; sensors: {list(self.ids[1:])}")

    def with_sensor(self, sensor_id: str, **changes: Any) -> SyncConfig:
        """A copy with some fields of one sensor replaced, e.g. ``with_sensor("cam_front", offset_ns=-20_000_000)``."""
        updated = dataclasses.replace(self.sensor(sensor_id), **changes)
        sensors = tuple(updated if s.sensor_id == sensor_id else s for s in self.sensors)
        return dataclasses.replace(self, sensors=sensors)

    @classmethod
    def from_rig(
        cls,
        rig: Rig,
        reference: str | None = None,
        *,
        sensors: Iterable[str] | None = None,
        clock: Clock = "data",
        margin_ns: int = DEFAULT_MARGIN_NS,
        tolerance_margin_ns: int = DEFAULT_TOLERANCE_MARGIN_NS,
        period_jitter_ns: int = DEFAULT_PERIOD_JITTER_NS,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        max_pending: int = DEFAULT_MAX_PENDING,
        jump_back_ns: int = DEFAULT_JUMP_BACK_NS,
        match: Match = DEFAULT_MATCH,
    ) -> SyncConfig:
        """Defaults from the rig.

        Args:
            rig: the sensor rig.
            reference: the reference sensor id (default ``rig.reference_sensor``).
            sensors: ids to synchronize (default: every rig sensor but the reference and the
                odometry sensors); rig sensors left out go to ``ignored``.
            clock, max_pending, jump_back_ns: see the class attributes.
            margin_ns: added to every deadline (>= 0).
            tolerance_margin_ns: added to every tolerance (>= 0, default 5 ms); half a period
                alone leaves no room for trigger jitter when a sensor's phase sits half a
                period from the reference (measured on the sample bag: 22 % partial frames
                with 0, 7.5 % with 2 ms).
            period_jitter_ns: how much shorter than its period two consecutive stamps of a
                sensor may be apart (>= 0, default 1 ms); sets ``min_period_ns``.
            queue_size: per-sensor queue length (>= 1).
            match: "nearest" (default): the message nearest the target, before or after it;
                "latest": the newest message stamped at most ``tolerance_margin_ns`` after the
                target, a whole period (+ margin) before it at most. "latest" lets a frame go
                out as soon as its reference message is in, instead of waiting up to half a
                period plus the transport latency for the next message of a free-running
                sensor; the data it takes is up to a period older (ego motion compensates radar
                and lidar; camera features are lifted as captured).

        Per sensor: ``offset_ns = reference.time_offset_ns - sensor.time_offset_ns`` (the stamp
        the sensor gives the reference's capture instant), ``min_period_ns`` = period - 2 x
        ``period_jitter_ns``; with "nearest": ``tolerance_ns`` = ``lookahead_ns`` = half its
        period + ``tolerance_margin_ns``, ``deadline_ns = latency + period + max(offset, 0) +
        margin_ns``; with "latest": ``tolerance_ns`` = period + ``tolerance_margin_ns``,
        ``lookahead_ns`` = ``tolerance_margin_ns``; ``deadline_ns = latency + period + max(offset,
        0) + margin_ns`` with either (a late message on a loaded machine still makes its frame;
        on time, the period rule decides a "latest" frame as soon as its sweep is in).
        """
        if match not in MATCHES:
            raise SyncError(f"sync config{_from(rig.source)}: match must be one of {list(MATCHES)}, got {match!r}")
        where = f"sync config{_from(rig.source)}"
        _int(margin_ns, "margin_ns", where, 0)
        _int(tolerance_margin_ns, "tolerance_margin_ns", where, 0)
        _int(period_jitter_ns, "period_jitter_ns", where, 0)
        reference = rig.reference_sensor if reference is None else reference
        if reference not in rig.ids:
            raise SyncError(
                f"{where}: reference '{reference}' is not a sensor of rig '{rig.name}'; ids: {list(rig.ids)}"
            )
        if sensors is None:
            chosen = [s.id for s in rig.sensors if s.id != reference and s.modality is not Modality.ODOMETRY]
        else:
            chosen = list(sensors)
            unknown = [sensor_id for sensor_id in chosen if sensor_id not in rig.ids]
            if unknown:
                raise SyncError(f"{where}: sensors {unknown} are not in rig '{rig.name}'; ids: {list(rig.ids)}")
        reference_offset = rig.sensor(reference).time_offset_ns
        synced = []
        for sensor_id in chosen:
            sensor = rig.sensor(sensor_id)
            offset = reference_offset - sensor.time_offset_ns
            if match == "nearest":
                tolerance = lookahead = sensor.period_ns // 2 + tolerance_margin_ns
            else:
                tolerance, lookahead = sensor.period_ns + tolerance_margin_ns, tolerance_margin_ns
            synced.append(
                SensorSync(
                    sensor_id=sensor.id,
                    modality=sensor.modality,
                    offset_ns=offset,
                    tolerance_ns=tolerance,
                    deadline_ns=sensor.latency_ns + sensor.period_ns + max(offset, 0) + margin_ns,
                    queue_size=queue_size,
                    min_period_ns=max(sensor.period_ns - 2 * period_jitter_ns, 0),
                    source=rig.source,
                    lookahead_ns=lookahead,
                )
            )
        ignored = frozenset(rig.ids) - set(chosen) - {reference}
        return cls(
            reference=reference,
            sensors=tuple(synced),
            ignored=ignored,
            clock=clock,
            max_pending=max_pending,
            jump_back_ns=jump_back_ns,
            source=rig.source,
        )
