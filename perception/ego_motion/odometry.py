"""A bounded, time-ordered history of odometry samples that hands out pose trajectories.

Arrival rules (odometry from a bag, a simulator or a live driver):

- samples are kept sorted by stamp; one that arrives out of order is inserted in place;
- a sample whose stamp is already held is a duplicate and is dropped (the first one wins);
- a sample more than ``reset_jump_ns`` older than the newest one held means the clock jumped
  back (a bag loop, a restarted simulation): the history is cleared and restarts from it;
- the history holds at most ``capacity`` samples and at most ``max_span_ns`` of time behind
  the newest sample; older samples are evicted first.

:meth:`OdometryBuffer.trajectory` returns a :class:`calibration.poses.PoseTrajectory` over the
samples that bracket a requested range, or raises :class:`OdometryCoverageError` naming the
requested and the covered stamps.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from calibration.poses import PoseTrajectory
from perception.ego_motion.errors import EgoMotionError, OdometryCoverageError
from perception.samples import OdometrySample

#: Upper bound of the extrapolation setting: beyond this a constant-velocity guess is not "small".
MAX_EXTRAPOLATION_LIMIT_NS = 500_000_000


@dataclass(frozen=True)
class OdometryBufferStats:
    """Counters of an :class:`OdometryBuffer` since it was built.

    Attributes:
        stored: samples held now.
        added: samples accepted (including out-of-order ones, excluding duplicates).
        out_of_order: accepted samples older than the newest one held when they arrived.
        duplicates: samples dropped because their stamp was already held.
        resets: clock jumps back that cleared the history.
        evicted: samples removed by the capacity or span limits.
    """

    stored: int
    added: int
    out_of_order: int
    duplicates: int
    resets: int
    evicted: int


class OdometryBuffer:
    """Bounded odometry history (see the module docstring for the arrival rules).

    Args:
        capacity: most samples held (>= 2).
        max_span_ns: most time held behind the newest sample, ns (> 0).
        max_extrapolation_ns: how far (ns, 0 ..  ``MAX_EXTRAPOLATION_LIMIT_NS``) a requested
            range may extend past the oldest or newest sample; the trajectory continues the
            nearest segment at constant velocity there (``PoseTrajectory``'s policy).
        reset_jump_ns: a sample older than the newest by more than this (ns, > 0) resets.
        source: where the samples come from (topic or sensor id), for error messages.
    """

    def __init__(
        self,
        *,
        capacity: int = 500,
        max_span_ns: int = 2_000_000_000,
        max_extrapolation_ns: int = 0,
        reset_jump_ns: int = 1_000_000_000,
        source: str = "odometry",
    ) -> None:
        for name, value, low, high in (
            ("capacity", capacity, 2, None),
            ("max_span_ns", max_span_ns, 1, None),
            ("max_extrapolation_ns", max_extrapolation_ns, 0, MAX_EXTRAPOLATION_LIMIT_NS),
            ("reset_jump_ns", reset_jump_ns, 1, None),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < low or (high and value > high):
                bound = f">= {low}" if high is None else f"in [{low}, {high}]"
                raise EgoMotionError(f"odometry buffer ({source}): {name} must be an integer {bound}, got {value!r}")
        self.capacity = capacity
        self.max_span_ns = max_span_ns
        self.max_extrapolation_ns = max_extrapolation_ns
        self.reset_jump_ns = reset_jump_ns
        self.source = source
        self._stamps: list[int] = []
        self._samples: list[OdometrySample] = []
        self._frames: tuple[str, str] | None = None
        self._added = self._out_of_order = self._duplicates = self._resets = self._evicted = 0

    def __len__(self) -> int:
        return len(self._stamps)

    @property
    def covered(self) -> tuple[int, int] | None:
        """(oldest, newest) stamp held, ns; None when empty."""
        return (self._stamps[0], self._stamps[-1]) if self._stamps else None

    @property
    def stats(self) -> OdometryBufferStats:
        return OdometryBufferStats(
            len(self._stamps), self._added, self._out_of_order, self._duplicates, self._resets, self._evicted
        )

    def clear(self) -> None:
        """Forget every sample and the frame pair (counters are kept)."""
        self._stamps.clear()
        self._samples.clear()
        self._frames = None

    def add(self, sample: OdometrySample) -> bool:
        """Insert one sample; False when it was dropped (duplicate, or evicted at once).

        Raises:
            EgoMotionError: the sample's frame pair differs from the samples held.
        """
        stamp = sample.stamp_ns
        frames = (sample.frame_id, sample.child_frame_id)
        if self._frames is not None and frames != self._frames:
            raise EgoMotionError(
                f"odometry sample at {stamp} ns ({self.source}) is {frames[1]} -> {frames[0]}, "
                f"the buffer holds {self._frames[1]} -> {self._frames[0]}"
            )
        if self._stamps and stamp < self._stamps[-1] - self.reset_jump_ns:
            self._stamps.clear()
            self._samples.clear()
            self._resets += 1
        index = bisect.bisect_left(self._stamps, stamp)
        if index < len(self._stamps) and self._stamps[index] == stamp:
            self._duplicates += 1
            return False
        if index < len(self._stamps):
            self._out_of_order += 1
        self._stamps.insert(index, stamp)
        self._samples.insert(index, sample)
        self._frames = frames
        self._added += 1
        oldest_kept = max(
            len(self._stamps) - self.capacity, bisect.bisect_left(self._stamps, self._stamps[-1] - self.max_span_ns)
        )
        if oldest_kept > 0:
            del self._stamps[:oldest_kept]
            del self._samples[:oldest_kept]
            self._evicted += oldest_kept
            return index >= oldest_kept
        return True

    def trajectory(self, start_ns: int, end_ns: int) -> PoseTrajectory:
        """Poses covering ``[start_ns, end_ns]``: the held samples that bracket the range.

        Query the result only inside ``[start_ns, end_ns]`` (outside it, it may extrapolate
        where the history would interpolate).

        Raises:
            OdometryCoverageError: the history is empty or does not reach ``start_ns`` or
                ``end_ns`` (within ``max_extrapolation_ns``); the message names the stamps.
            EgoMotionError: ``end_ns < start_ns``.
        """
        if end_ns < start_ns:
            raise EgoMotionError(
                f"odometry ({self.source}): requested range ends ({end_ns} ns) before it starts ({start_ns} ns)"
            )
        if not self._stamps:
            raise OdometryCoverageError(f"odometry ({self.source}) has no samples to cover [{start_ns}, {end_ns}] ns")
        first, last = self._stamps[0], self._stamps[-1]
        margin = self.max_extrapolation_ns
        if start_ns < first - margin or end_ns > last + margin:
            gaps = []
            if start_ns < first - margin:
                gaps.append(f"starts {first - start_ns} ns before the oldest sample")
            if end_ns > last + margin:
                gaps.append(f"ends {end_ns - last} ns after the newest sample")
            raise OdometryCoverageError(
                f"odometry ({self.source}) covers [{first}, {last}] ns (max extrapolation {margin} ns) "
                f"but [{start_ns}, {end_ns}] ns was requested: it {' and '.join(gaps)}"
            )
        n = len(self._stamps)
        lo = min(max(bisect.bisect_right(self._stamps, start_ns) - 1, 0), n - 1)
        hi = min(bisect.bisect_left(self._stamps, end_ns), n - 1)
        if hi == lo and n >= 2:  # extrapolation needs a segment, not a single pose
            if hi < n - 1:
                hi += 1
            else:
                lo -= 1
        return PoseTrajectory.from_odometry(self._samples[lo : hi + 1], max_extrapolation_ns=margin, source=self.source)
