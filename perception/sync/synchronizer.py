"""The frame synchronizer: one frame per reference message, partial rather than late.

Hand-written on purpose: ``message_filters.ApproximateTimeSynchronizer`` emits only complete
sets, so one late or stopped camera stalls or silently drops whole frames, and it is not
available as a wheel here anyway. This one emits a frame for every reference message, lists
the sensors it could not fill and why, and never waits past a per-sensor deadline.

Rules (times are int nanoseconds; "target" = frame stamp + the sensor's ``offset_ns``):

* Matching: per sensor, the held message nearest the target within its window, from
  ``tolerance_ns`` before the target to ``lookahead_ns`` after it (symmetric by default; a
  short lookahead is the "latest" matching of ``SyncConfig.from_rig``; a tie goes to the
  older one). A message is used in at most one frame; frames are decided and
  emitted strictly in reference-stamp order, so each takes its pick before the next.
* Emission: as soon as no better match can arrive for any sensor, i.e. the sensor has sent a
  stamp at or past the target (stamps of one sensor arrive in order, so nothing closer can
  follow), or it holds a message stamped less than half its ``min_period_ns`` before the
  target (its next message comes at least a period later, so it is no closer: the frame need
  not wait one more sensor period for it), or its newest stamp plus ``min_period_ns`` is past
  the window's end (no message still to come can be in it), or its deadline (frame stamp +
  ``deadline_ns``) has passed on the clock. Then the frame goes out with what is held; the rest are
  :class:`~perception.sync.frames.Missing`. The period rule changes when a frame goes out,
  never what it takes, except through the rules that depend on timing anyway: another
  sensor's deadline, queue overflow, overlapping windows (a property test checks this).
* Clock: ``clock="data"``: the newest stamp pushed (bags, sim time); ``clock="arrival"``: the
  record's ``receive_ns`` (or ``now_ns`` when given; call :meth:`Synchronizer.poll` from a
  timer so frames go out while nothing arrives). The clock never runs backwards except at a reset.
* A frame owns its whole window: once it is emitted, its sensors' messages stamped at or
  before ``target + lookahead`` are done (held ones: unmatched; later arrivals: too old). So a
  late message never lands in a later frame; with overlapping windows (tolerance above half
  the reference period) a message inside two windows can serve only the first.
* Drops (counted per sensor, see :class:`~perception.sync.stats.DropReason`): duplicate stamps;
  too old (see above; for the reference: at or before the last frame's stamp); the oldest
  message of a full queue; held messages the frames have passed (unmatched).
  Out-of-order messages of a sensor are kept sorted.
* Bounded memory: ``queue_size`` messages per sensor; at most ``max_pending`` reference
  messages wait; one more forces the oldest frame out with what has arrived (never dropped).
* Clock jump back: a stamp more than ``jump_back_ns`` older than the newest stamp of its own
  sensor (a bag loop) resets everything: pending frames are DISCARDED (counted, never emitted,
  so no stale frame follows newer ones and no frame mixes data from both sides of the jump),
  held messages are dropped (reason "reset"), and the new message starts the new epoch.
* Odometry is not synchronized by default (see :mod:`perception.sync.config`); records of
  ``config.ignored`` sensors are counted and ignored, records of unknown sensors raise SyncError.

Cost: O(log queue) per message (bisect), O(sensors) per frame; no per-message scans.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from typing import Final, Generic

from perception.errors import SyncError
from perception.sync.config import SyncConfig
from perception.sync.frames import Frame, Missing, MissingReason, R
from perception.sync.stats import DropReason, SensorCounters, SyncStats

_NEVER: Final = 1 << 126
_DUPLICATE, _TOO_OLD, _OVERFLOW = DropReason.DUPLICATE, DropReason.TOO_OLD, DropReason.OVERFLOW
_UNMATCHED, _RESET = DropReason.UNMATCHED, DropReason.RESET


class _Lane(Generic[R]):
    """Held messages of one sensor, sorted by stamp, and its matching settings."""

    __slots__ = (
        "counters",
        "deadline",
        "half_period",
        "horizon",
        "index",
        "last_used",
        "lookahead",
        "min_period",
        "newest",
        "offset",
        "queue_size",
        "records",
        "seen",
        "sensor_id",
        "stamps",
        "tolerance",
    )

    def __init__(
        self,
        index: int,
        sensor_id: str,
        offset: int,
        tolerance: int,
        deadline: int,
        queue_size: int,
        min_period: int = 0,
        lookahead: int | None = None,
    ):
        self.index = index
        self.sensor_id = sensor_id
        self.offset = offset
        self.tolerance = tolerance
        self.lookahead = tolerance if lookahead is None else lookahead
        self.deadline = deadline
        self.queue_size = queue_size
        self.min_period = min_period
        self.half_period = min_period // 2
        self.stamps: list[int] = []
        self.records: list[R] = []
        self.counters = SensorCounters()
        self.seen = False
        self.clear()

    def clear(self) -> None:
        self.stamps.clear()
        self.records.clear()
        self.newest = -1  # newest stamp of this epoch
        self.horizon = -1  # end of the last emitted frame's window: older stamps are done
        self.last_used = -1  # stamp of the last message used in a frame

    def decided(self, target: int) -> bool:
        """No message still to come can match ``target`` better than what this lane has: it
        has a stamp at or past the target; or its next stamp (a period after its newest at the
        earliest) falls past the window's end; or it holds one within half a period before it."""
        if self.newest >= target:
            return True
        if self.min_period <= 0 or self.newest < 0:
            return False
        if self.newest + self.min_period > target + self.lookahead:
            return True
        return bool(self.stamps) and target - self.stamps[-1] <= self.half_period

    def drop_through(self, stamp: int, reason: DropReason) -> None:
        """Drop every held message stamped at or before ``stamp``."""
        count = bisect_right(self.stamps, stamp)
        if count:
            self.counters.dropped[reason] += count
            del self.stamps[:count]
            del self.records[:count]


def _ms(ns: int) -> str:
    return f"{ns / 1e6:.3f} ms"


class Synchronizer(Generic[R]):
    """Groups records of the configured sensors into frames, one per reference message.

    ::

        sync = Synchronizer(SyncConfig.from_rig(rig, clock="arrival"))
        for record in records:                      # any order the transport delivers
            for frame in sync.push(record):         # frames in reference-stamp order
                use(frame.records, frame.missing)
        frames = sync.flush()                       # end of stream
        print(sync.stats.as_dict())
    """

    def __init__(self, config: SyncConfig) -> None:
        if not isinstance(config, SyncConfig):
            raise SyncError(f"config must be a SyncConfig, got {type(config).__name__}")
        self.config = config
        self._ref: _Lane[R] = _Lane(-1, config.reference, 0, 0, 0, config.max_pending)
        self._others: list[_Lane[R]] = [
            _Lane(
                i,
                s.sensor_id,
                s.offset_ns,
                s.tolerance_ns,
                s.deadline_ns,
                s.queue_size,
                s.min_period_ns,
                s.ahead_ns,
            )
            for i, s in enumerate(config.sensors)
        ]
        self._lanes: dict[str, _Lane[R]] = {lane.sensor_id: lane for lane in (self._ref, *self._others)}
        self._arrival = config.clock == "arrival"
        self._jump = config.jump_back_ns
        self._max_pending = config.max_pending
        self._now = -1
        self._head: int | None = None  # stamp of the oldest pending reference message
        self._undecided: set[int] = set()  # lanes that may still get a better match for the head
        self._next_deadline = _NEVER  # earliest deadline among the undecided lanes
        self._complete = self._partial = self._forced = self._discarded = self._resets = self._ignored = 0

    # -- input -----------------------------------------------------------------------
    def push(self, record: R, now_ns: int | None = None) -> list[Frame[R]]:
        """Add one record; return the frames it completes (oldest first, often none).

        Args:
            record: a message of a configured sensor (only sensor_id, stamp_ns and receive_ns
                are read).
            now_ns: the clock now; default: ``record.receive_ns`` with clock="arrival", the
                newest stamp pushed with clock="data".

        Raises:
            SyncError: the record's sensor is neither synchronized nor ignored.
        """
        lane = self._lanes.get(record.sensor_id)
        if lane is None:
            if record.sensor_id in self.config.ignored:
                self._ignored += 1
                return []
            raise SyncError(
                f"record of unknown sensor '{record.sensor_id}' (stamp {record.stamp_ns}); "
                f"synchronized: {list(self.config.ids)}, ignored: {sorted(self.config.ignored)}"
            )
        stamp = record.stamp_ns
        if stamp < lane.newest - self._jump:
            self._reset()
        self._insert(lane, record, stamp)
        now = now_ns if now_ns is not None else (record.receive_ns if self._arrival else stamp)
        if now > self._now:
            self._now = now
        if self._head is None or (
            self._undecided and self._now < self._next_deadline and len(self._ref.stamps) <= self._max_pending
        ):
            return []
        return self._advance()

    def poll(self, now_ns: int) -> list[Frame[R]]:
        """Advance the clock to ``now_ns`` and return the frames whose deadlines have passed."""
        if now_ns > self._now:
            self._now = now_ns
        return self._advance() if self._head is not None else []

    def flush(self) -> list[Frame[R]]:
        """End of stream: emit every pending frame with what is held, drop the rest (unmatched)."""
        frames = [self._emit("end of stream") for _ in range(len(self._ref.stamps))]
        for lane in self._others:
            lane.drop_through(_NEVER, _UNMATCHED)
        return frames

    def _insert(self, lane: _Lane[R], record: R, stamp: int) -> None:
        counters = lane.counters
        counters.received += 1
        lane.seen = True
        if stamp <= lane.horizon:
            counters.dropped[_DUPLICATE if stamp == lane.last_used else _TOO_OLD] += 1
            return
        stamps = lane.stamps
        i = bisect_left(stamps, stamp)
        if (i < len(stamps) and stamps[i] == stamp) or stamp == lane.last_used:
            counters.dropped[_DUPLICATE] += 1
            return
        stamps.insert(i, stamp)
        lane.records.insert(i, record)
        if stamp > lane.newest:
            lane.newest = stamp
        if lane is self._ref:
            if i == 0:
                self._set_head()
        else:
            if len(stamps) > lane.queue_size:
                del stamps[0]
                del lane.records[0]
                counters.dropped[_OVERFLOW] += 1
            if self._head is not None and lane.decided(self._head + lane.offset):
                self._undecided.discard(lane.index)

    # -- frames ----------------------------------------------------------------------
    def _set_head(self) -> None:
        if not self._ref.stamps:
            self._head, self._undecided, self._next_deadline = None, set(), _NEVER
            return
        head = self._head = self._ref.stamps[0]
        self._undecided = {lane.index for lane in self._others if not lane.decided(head + lane.offset)}
        self._next_deadline = min((head + self._others[i].deadline for i in self._undecided), default=_NEVER)

    def _advance(self) -> list[Frame[R]]:
        frames: list[Frame[R]] = []
        while self._head is not None:
            if len(self._ref.stamps) > self._max_pending:
                frames.append(self._emit("forced out: more than max_pending frames pending"))
            elif not self._undecided:
                frames.append(self._emit(""))
            elif self._now >= self._next_deadline:
                head, now = self._head, self._now
                self._undecided = {i for i in self._undecided if head + self._others[i].deadline > now}
                self._next_deadline = min((head + self._others[i].deadline for i in self._undecided), default=_NEVER)
            else:
                break
        return frames

    def _emit(self, why: str) -> Frame[R]:
        ref = self._ref
        stamp = ref.stamps.pop(0)
        reference = ref.records.pop(0)
        ref.horizon = ref.last_used = stamp
        ref.counters.match(0)
        records = {ref.sensor_id: reference}
        missing: dict[str, Missing] = {}
        for lane in self._others:
            target = stamp + lane.offset
            tolerance = lane.tolerance
            stamps = lane.stamps
            i = bisect_left(stamps, target)
            best, distance = -1, tolerance + 1
            if i < len(stamps) and stamps[i] - target <= lane.lookahead:
                best, distance = i, stamps[i] - target
            if i > 0 and target - stamps[i - 1] <= tolerance and target - stamps[i - 1] <= distance:
                best, distance = i - 1, target - stamps[i - 1]
            if best >= 0:
                records[lane.sensor_id] = lane.records[best]
                lane.last_used = stamps[best]
                del stamps[best]
                del lane.records[best]
                lane.counters.match(distance)
            else:
                missing[lane.sensor_id] = self._missing(lane, target, i, why)
            lane.horizon = horizon = target + lane.lookahead
            if stamps and stamps[0] <= horizon:
                lane.drop_through(horizon, _UNMATCHED)
        if missing:
            self._partial += 1
        else:
            self._complete += 1
        if why.startswith("forced"):
            self._forced += 1
        self._set_head()
        return Frame(stamp, reference, records, missing)

    def _missing(self, lane: _Lane[R], target: int, i: int, why: str) -> Missing:
        lane_counters = lane.counters.missing
        if lane.lookahead == lane.tolerance:
            window = f"no stamp within ±{_ms(lane.tolerance)} of {target}"
        else:
            window = f"no stamp from {_ms(lane.tolerance)} before to {_ms(lane.lookahead)} after {target}"
        if not lane.seen:
            lane_counters[MissingReason.NEVER_SEEN] += 1
            return Missing(MissingReason.NEVER_SEEN, f"no message from '{lane.sensor_id}' yet")
        if lane.newest >= target:
            lane_counters[MissingReason.STALE] += 1
            stamps = lane.stamps
            held = stamps[max(i - 1, 0) : i + 1] or [lane.newest]
            nearest = min(held, key=lambda s: abs(s - target))
            side = "after" if nearest >= target else "before"
            return Missing(
                MissingReason.STALE, f"{window}; nearest {nearest} is {_ms(abs(nearest - target))} {side} the target"
            )
        lane_counters[MissingReason.LATE] += 1
        detail = f"{window} by the deadline (+{_ms(lane.deadline)})"
        if why:
            detail += f" ({why})"
        if lane.newest < 0:
            detail += "; no message since the last reset"
        else:
            detail += f"; newest {lane.newest} is {_ms(target - lane.newest)} before the target"
        return Missing(MissingReason.LATE, detail)

    @property
    def resets(self) -> int:
        """Times the clock jumped back and everything pending was thrown away."""
        return self._resets

    def _reset(self) -> None:
        self._resets += 1
        self._discarded += len(self._ref.stamps)
        for lane in self._lanes.values():
            lane.drop_through(_NEVER, _RESET)
            lane.clear()
        self._now = -1
        self._set_head()

    # -- state -----------------------------------------------------------------------
    @property
    def now_ns(self) -> int:
        """The synchronizer's clock (-1 before the first record and right after a reset)."""
        return self._now

    @property
    def pending(self) -> int:
        """Reference messages waiting to become frames."""
        return len(self._ref.stamps)

    def queue_lengths(self) -> dict[str, int]:
        """Sensor id -> messages held (for the reference: pending frames)."""
        return {sensor_id: len(lane.stamps) for sensor_id, lane in self._lanes.items()}

    @property
    def stats(self) -> SyncStats:
        """A snapshot of the counters."""
        return SyncStats(
            frames_complete=self._complete,
            frames_partial=self._partial,
            frames_forced=self._forced,
            frames_discarded=self._discarded,
            resets=self._resets,
            ignored=self._ignored,
            sensors={sensor_id: lane.counters.snapshot() for sensor_id, lane in self._lanes.items()},
        )
