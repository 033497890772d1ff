"""Records in, network inputs out: the runtime's perception front end, ROS-free.

:class:`FramePipeline` is what the fusion node, ``fusion eval`` and training-on-bags share:

    SensorRecord -> Synchronizer (frames, partial when a sensor is late/missing)
                 -> wait until odometry covers the frame (every firing of the sweep, every record
                    stamp; the newest ``odometry_extrapolation_ns`` may be extrapolated)
                 -> ego motion (lidar de-skew + accumulation, radar to the frame stamp)
                 -> InputEncoder (BEV rasters, images, camera table, presence flags)
                 -> PreparedFrame

Degradation, never a stall: if odometry does not cover a frame within ``odometry_wait_ns``
of data time after the frame's last firing or stamp (odometry late or stopped), the frame is prepared without
ego-motion compensation and says so in ``notes``; a sensor the synchronizer reports missing
is absent from the inputs (presence 0) and listed in ``frame.missing``; a record whose payload
fails to convert (e.g. an undecodable JPEG) is dropped from the frame with a note. The
reference sensor (the lidar) drives the frames: while it is silent no frame is produced.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from calibration import Modality, Rig
from calibration.poses import PoseTrajectory
from perception.ego_motion import EgoMotionError, OdometryBuffer, SweepAccumulator
from perception.ego_motion.lidar import MAX_POINT_TIME_S
from perception.ego_motion.radar import RadarCompensator
from perception.model.config import ModelConfig
from perception.model.inputs import Arrays, InputEncoder, decode_image
from perception.samples import EncodedImage, OdometrySample, PointScan, RangeReading, SensorRecord
from perception.sync import Frame, SyncConfig, Synchronizer

#: How long (data time, ns) a frame waits for odometry after its last firing or stamp.
DEFAULT_ODOMETRY_WAIT_NS = 200_000_000
#: How far (ns) the newest odometry may fall short of a frame's last firing and the frame is
#: still prepared, its poses extrapolated from the newest velocity and yaw rate: one 50 Hz
#: odometry period. Waiting for the next sample instead costs ~20 ms of latency per frame, for
#: a pose change of millimetres (10 m/s x 20 ms of constant-velocity error is well under 1 cm).
DEFAULT_ODOMETRY_EXTRAPOLATION_NS = 25_000_000
#: The odometry buffer's own extrapolation limit (ns): the largest value the setting above may take.
MAX_ODOMETRY_EXTRAPOLATION_NS = 50_000_000


def sweep_time_range_ns(scan: PointScan) -> tuple[int, int] | None:
    """(earliest, latest) firing time of a lidar sweep, ns after its header stamp, from its
    finite ``time`` values within the plausible range; None without a usable ``time`` field."""
    if "time" not in scan.fields:
        return None
    times = scan.column("time")
    times = times[np.isfinite(times) & (np.abs(times) <= MAX_POINT_TIME_S)]
    if times.size == 0:
        return None
    return round(float(times.min()) * 1e9), round(float(times.max()) * 1e9)


@dataclass(frozen=True)
class PreparedFrame:
    """One synchronized frame, compensated and encoded.

    Attributes:
        frame: the synchronizer's frame (records used, missing sensors and why).
        inputs: network inputs without the batch axis (perception.model.inputs).
        lidar_points: (N, 5) float32 accumulated sweeps, base_link at the frame stamp ((0, 5)
            when the lidar is dropped).
        radar_points: (R, 7) float32 radar detections at the frame stamp (perception.ego_motion).
        ultrasonic_ranges: (U,) float32 ranges in ``FramePipeline.encoder.ultrasonic.sensor_ids``
            order, metres (inf: nothing detected, nan: missing).
        notes: degradations of this frame, in words (empty when nothing was degraded).
        timings_ms: stage -> milliseconds ("ego_motion", "encode").
        ego_pose: (4, 4) float64 base_link -> odom at the frame stamp, from the odometry; None
            when the frame was prepared without odometry (not ego-motion compensated).
    """

    frame: Frame[SensorRecord]
    inputs: Arrays
    lidar_points: NDArray[np.float32]
    radar_points: NDArray[np.float32]
    ultrasonic_ranges: NDArray[np.float32]
    notes: tuple[str, ...] = ()
    timings_ms: dict[str, float] = field(default_factory=dict)
    ego_pose: NDArray[np.float64] | None = None

    @property
    def stamp_ns(self) -> int:
        return self.frame.stamp_ns


class FramePipeline:
    def __init__(
        self,
        rig: Rig,
        config: ModelConfig,
        *,
        sync: SyncConfig | None = None,
        odometry_wait_ns: int = DEFAULT_ODOMETRY_WAIT_NS,
        odometry_extrapolation_ns: int = DEFAULT_ODOMETRY_EXTRAPOLATION_NS,
        encoder: InputEncoder | None = None,
        drop: frozenset[str] = frozenset(),
    ) -> None:
        self.rig = rig
        self.config = config
        self.sync: Synchronizer[SensorRecord] = Synchronizer(sync or SyncConfig.from_rig(rig))
        self.encoder = encoder or InputEncoder(rig, config)
        lidar = rig.sensor(rig.reference_sensor)
        self.sweep_ns = lidar.period_ns
        self.accumulator = SweepAccumulator(
            config.lidar_sweeps,
            rig.to_base(lidar.id),
            max_age_ns=int((config.lidar_sweeps + 0.5) * self.sweep_ns),
            source=lidar.id,
        )
        self.radars = RadarCompensator({s.id: rig.to_base(s.id) for s in rig.of(Modality.RADAR)})
        odometry = rig.of(Modality.ODOMETRY)
        self.odometry_id = odometry[0].id if odometry else None
        if not 0 <= odometry_extrapolation_ns <= MAX_ODOMETRY_EXTRAPOLATION_NS:
            raise ValueError(
                f"odometry_extrapolation_ns must be in [0, {MAX_ODOMETRY_EXTRAPOLATION_NS}], "
                f"got {odometry_extrapolation_ns!r}"
            )
        self.odometry = OdometryBuffer(
            max_extrapolation_ns=MAX_ODOMETRY_EXTRAPOLATION_NS, source=self.odometry_id or "odometry"
        )
        self.odometry_wait_ns = odometry_wait_ns
        self.odometry_extrapolation_ns = odometry_extrapolation_ns
        unknown = sorted(drop - set(rig.ids))
        if unknown:
            raise ValueError(f"drop: unknown sensor ids {unknown}; rig {rig.name!r} has {list(rig.ids)}")
        #: Sensors whose data is synchronized but never used (robustness evaluation: the frames
        #: stay those of the full rig, the network sees the sensors as missing).
        self.drop = drop
        self._waiting: deque[Frame[SensorRecord]] = deque()
        #: Frames thrown away while waiting for odometry because the clock jumped back.
        self.discarded = 0
        self._newest_ns = 0
        self._odometry_lock = threading.Lock()

    # -- input ---------------------------------------------------------------------
    def push(self, record: SensorRecord) -> list[PreparedFrame]:
        """Feed one record (any sensor, odometry included); frames that became ready, prepared."""
        return [self.prepare(frame) for frame in self.collect(record)]

    def flush(self) -> list[PreparedFrame]:
        """End of stream: every pending frame, prepared with whatever odometry there is."""
        return [self.prepare(frame) for frame in self.flush_frames()]

    def collect(self, record: SensorRecord) -> list[Frame[SensorRecord]]:
        """The light half of :meth:`push` (synchronization and the odometry wait): frames
        ready for :meth:`prepare`, which may run on another thread (one at a time, in order;
        skipping frames is fine: the sweep history tolerates gaps)."""
        if record.sensor_id == self.odometry_id:
            if isinstance(record.payload, OdometrySample):
                with self._odometry_lock:
                    self.odometry.add(record.payload)
        else:
            resets = self.sync.resets
            frames = self.sync.push(record)
            if self.sync.resets != resets:
                # The clock jumped back (a looped bag, a restarted driver): frames of the old
                # epoch waiting for odometry can never be covered now; like the synchronizer,
                # throw them away rather than block every later frame behind them.
                self.discarded += len(self._waiting)
                self._waiting.clear()
                self._newest_ns = record.stamp_ns
            self._waiting.extend(frames)
        self._newest_ns = max(self._newest_ns, record.stamp_ns)
        return self._drain(force=False)

    def flush_frames(self) -> list[Frame[SensorRecord]]:
        """End of stream for :meth:`collect`: every pending frame."""
        self._waiting.extend(self.sync.flush())
        return self._drain(force=True)

    # -- frames ----------------------------------------------------------------------
    def _span(self, frame: Frame[SensorRecord]) -> tuple[int, int]:
        """[first, last] ns the frame's ego motion needs: the frame stamp, every radar stamp
        and every firing time of the lidar sweep (from its ``time`` field, so either stamping
        convention works: a driver that stamps the sweep's start has times up to +period, one
        that stamps its end has times down to -period; without the field every point is taken
        at the stamp). Camera and ultrasonic records are used as they are, so their stamps do
        not make the frame wait for odometry."""
        stamps = [r.stamp_ns for sid, r in frame.records.items() if sid in self.radars.radar_to_base]
        first, last = min(stamps, default=frame.stamp_ns), max(stamps, default=frame.stamp_ns)
        scan = frame.reference.payload
        reach = (sweep_time_range_ns(scan) if isinstance(scan, PointScan) else None) or (0, 0)
        return min(first, frame.stamp_ns + reach[0]), max(last, frame.stamp_ns + reach[1])

    def _drain(self, *, force: bool) -> list[Frame[SensorRecord]]:
        ready = []
        while self._waiting:
            frame = self._waiting[0]
            _, end = self._span(frame)
            with self._odometry_lock:
                covered = self.odometry.covered
            has_odometry = covered is not None and covered[1] >= end - self.odometry_extrapolation_ns
            waited_out = self._newest_ns - end > self.odometry_wait_ns
            if not (force or has_odometry or waited_out or self.odometry_id is None):
                break
            ready.append(self._waiting.popleft())
        return ready

    def _trajectory(self, start: int, end: int, notes: list[str]) -> PoseTrajectory | None:
        """The odometry over [start, end]; None (and a note) when it does not cover it."""
        try:
            with self._odometry_lock:
                return self.odometry.trajectory(start, end)
        except EgoMotionError as exc:
            notes.append(f"not ego-motion compensated: {exc}")
            return None

    def prepare(self, frame: Frame[SensorRecord]) -> PreparedFrame:
        """The heavy half of :meth:`push`: ego motion and encoding of one ready frame."""
        start, end = self._span(frame)
        notes: list[str] = []
        began = time.perf_counter()
        odometry = self._trajectory(start, end, notes)
        # without odometry every pose is the identity: the data is used as it came
        trajectory = (
            odometry
            if odometry is not None
            else PoseTrajectory(np.array([start], dtype=np.int64), np.eye(4)[None], max_extrapolation_ns=1 << 62)
        )
        lidar = frame.reference
        assert isinstance(lidar.payload, PointScan)
        points: NDArray[np.float32] | None = None
        if lidar.sensor_id not in self.drop:
            points = self.accumulator.add(lidar.payload, lidar.stamp_ns, trajectory)
        scans: list[tuple[str, int, PointScan]] = []
        ranges = np.full(len(self.encoder.ultrasonic.sensor_ids), np.nan, dtype=np.float32)
        slot = {sid: i for i, sid in enumerate(self.encoder.ultrasonic.sensor_ids)}
        images: dict[str, Any] = {}
        for sensor_id, record in frame.records.items():
            if sensor_id in self.drop:
                continue
            payload = record.payload
            if isinstance(payload, PointScan) and sensor_id in self.radars.radar_to_base:
                scans.append((sensor_id, record.stamp_ns, payload))
            elif isinstance(payload, RangeReading) and sensor_id in slot:
                ranges[slot[sensor_id]] = payload.range_m
            elif isinstance(payload, EncodedImage):
                try:
                    images[sensor_id] = decode_image(payload.data, sensor_id)
                except ValueError as exc:
                    notes.append(f"camera dropped: {exc}")
        radar = self.radars.to_frame(scans, frame.stamp_ns, trajectory) if scans else None
        compensated = time.perf_counter()
        inputs = self.encoder.encode(points, radar, ranges if slot else None, images)
        encoded = time.perf_counter()
        return PreparedFrame(
            frame,
            inputs,
            np.zeros((0, 5), np.float32) if points is None else points,
            np.zeros((0, 7), np.float32) if radar is None else radar,
            ranges,
            tuple(notes),
            {"ego_motion": (compensated - began) * 1e3, "encode": (encoded - compensated) * 1e3},
            None if odometry is None else odometry.interpolate([frame.stamp_ns])[0],
        )
