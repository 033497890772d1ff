"""The simulator: a rig driven through a scenario, as a stream of sensor records.

:class:`Simulator` renders every scheduled capture of every rig sensor with its sensor model
and yields :class:`perception.samples.SensorRecord` objects in the order they are written
(receive time), ready for the bag writer or the training-shard writer. Ground truth is
collected per lidar sweep of the reference sensor. Deterministic: one seed fixes the world,
the traffic, the timing and every noise sample (each sensor has its own random stream).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from calibration import Modality, Rig, Sensor
from perception.bev_grid import BevGrid
from perception.ground_truth import FrameTruth, GroundTruth
from perception.samples import OdometrySample, SensorRecord
from simulation.errors import SimConfigError
from simulation.raycast import SceneCaster
from simulation.scenario import ScenarioConfig, build_scenario
from simulation.sensors.camera import CameraModel
from simulation.sensors.lidar import LidarModel
from simulation.sensors.radar import RadarModel
from simulation.sensors.ultrasonic import UltrasonicModel
from simulation.timing import Capture, TimingConfig, schedule
from simulation.truth import drivable_raster, frame_truth

#: Simulation time 0 as a ROS stamp (2023-11-14T22:13:20Z): fixed so bags are reproducible.
DEFAULT_START_NS = 1_700_000_000_000_000_000


@dataclass(frozen=True)
class SimConfig:
    """Everything that defines a simulated recording besides the rig."""

    scenario: ScenarioConfig = field(default_factory=ScenarioConfig)
    timing: TimingConfig = field(default_factory=TimingConfig)
    camera_scale: float = 0.25
    jpeg_quality: int = 85
    start_ns: int = DEFAULT_START_NS
    grid: BevGrid = field(default_factory=BevGrid)

    def __post_init__(self) -> None:
        if not (np.isfinite(self.camera_scale) and 0.05 <= self.camera_scale <= 1.0):
            raise SimConfigError(f"camera scale must be in [0.05, 1], got {self.camera_scale!r}")
        if not (isinstance(self.jpeg_quality, int) and 10 <= self.jpeg_quality <= 100):
            raise SimConfigError(f"jpeg quality must be an integer in [10, 100], got {self.jpeg_quality!r}")
        if not isinstance(self.start_ns, int) or self.start_ns < 0:
            raise SimConfigError(f"start_ns must be an integer >= 0, got {self.start_ns!r}")


class Simulator:
    """Renders one recording of ``rig`` in the scenario of ``config``."""

    def __init__(self, rig: Rig, config: SimConfig) -> None:
        self.rig = rig
        self.config = config
        self.scenario = build_scenario(config.scenario)
        self.caster = SceneCaster(self.scenario)
        seeds = np.random.SeedSequence(config.scenario.seed).spawn(len(rig.sensors) + 1)
        self._rngs = {s.id: np.random.default_rng(seed) for s, seed in zip(rig.sensors, seeds[1:], strict=True)}
        self.captures: list[Capture] = schedule(
            rig, config.scenario.duration_s, config.timing, np.random.default_rng(seeds[0])
        )
        self._models: dict[str, Any] = {s.id: self._model(s) for s in rig.sensors}
        self._frames: list[FrameTruth] = []
        self._drivable: list[np.ndarray] = []
        self._frame_index: dict[int, int] = {}

    def _model(self, sensor: Sensor) -> Any:
        if sensor.modality is Modality.LIDAR:
            return LidarModel(sensor)
        if sensor.modality is Modality.CAMERA:
            return CameraModel(sensor, scale=self.config.camera_scale, jpeg_quality=self.config.jpeg_quality)
        if sensor.modality is Modality.RADAR:
            return RadarModel(sensor)
        if sensor.modality is Modality.ULTRASONIC:
            return UltrasonicModel(sensor)
        return None  # odometry: closed form from the ego motion

    def stamp_ns(self, t: float) -> int:
        return self.config.start_ns + round(t * 1e9)

    @property
    def written_captures(self) -> list[Capture]:
        return [c for c in self.captures if not c.dropped]

    def records(self) -> Iterator[SensorRecord]:
        """Every message that is not dropped, in receive order. Ground truth accumulates as
        the reference lidar's sweeps are rendered (see :meth:`ground_truth`)."""
        pending: list[tuple[int, int, SensorRecord]] = []
        for order, capture in enumerate(self.captures):
            now = self.stamp_ns(capture.t)
            while pending and pending[0][0] <= now:
                yield heapq.heappop(pending)[2]
            record = self.render(capture)
            if record is not None:
                heapq.heappush(pending, (record.receive_ns, order, record))
        while pending:
            yield heapq.heappop(pending)[2]

    def render(self, capture: Capture) -> SensorRecord | None:
        """The record of one scheduled capture (None when it is dropped)."""
        sensor = self.rig.sensor(capture.sensor_id)
        rng = self._rngs[sensor.id]
        model = self._models[sensor.id]
        t = capture.t
        stamp = self.stamp_ns(t)
        if capture.dropped:
            return None
        payload: Any
        if sensor.modality is Modality.LIDAR:
            sweep = model.sweep(self.scenario, self.caster, t, rng)
            if sensor.id == self.rig.reference_sensor:
                self._frame_index[stamp] = len(self._frames)
                self._frames.append(frame_truth(self.caster, t, stamp, sweep.actor))
                self._drivable.append(drivable_raster(self.caster, t, self.config.grid))
            payload = sweep.scan
        elif sensor.modality is Modality.CAMERA:
            payload = model.capture(self.scenario, self.caster, t, rng)
        elif sensor.modality is Modality.RADAR:
            payload = model.scan(self.scenario, self.caster, t, rng)
        elif sensor.modality is Modality.ULTRASONIC:
            payload = model.read(self.scenario, self.caster, t, rng, stamp_ns=stamp)
        else:
            payload = self._odometry(sensor, t, stamp)
        return SensorRecord(sensor.id, stamp, self.stamp_ns(capture.receive_t), payload)

    def _odometry(self, sensor: Sensor, t: float, stamp: int) -> OdometrySample:
        pose = self.scenario.ego.poses(np.array([t]))[0]
        forward, yaw_rate = (float(v[0]) for v in self.scenario.ego.twist(np.array([t])))
        yaw = float(np.arctan2(pose[1, 0], pose[0, 0]))
        return OdometrySample(
            stamp_ns=stamp,
            frame_id="odom",
            child_frame_id=self.rig.base_frame,
            position=pose[:3, 3],
            orientation_wxyz=np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)]),
            linear_velocity=np.array([forward, 0.0, 0.0]),
            angular_velocity=np.array([0.0, 0.0, yaw_rate]),
        )

    @property
    def frame_count(self) -> int:
        """Reference sweeps rendered so far (ground-truth frames)."""
        return len(self._frames)

    def camera_intrinsics(self, sensor_id: str) -> Any:
        """The intrinsics a camera's images are rendered at (the rig's, scaled)."""
        return self._models[sensor_id].intrinsics

    def frame_truth(self, stamp_ns: int) -> tuple[FrameTruth, np.ndarray]:
        """Boxes and drivable raster (ny, nx) uint8 of the reference sweep stamped ``stamp_ns``."""
        index = self._frame_index[stamp_ns]
        return self._frames[index], self._drivable[index]

    def ego_poses(self, stamps_ns: np.ndarray) -> np.ndarray:
        """(K, 4, 4) float64 base_link -> odom at header stamps (K,) int64 ns (exact, from the ego motion)."""
        t = (np.asarray(stamps_ns, dtype=np.int64) - self.config.start_ns) / 1e9
        return self.scenario.ego.poses(t)

    def ground_truth(self) -> GroundTruth:
        """Ground truth of the sweeps rendered so far (all of them once :meth:`records` is exhausted)."""
        drivable = np.stack(self._drivable) if self._drivable else np.zeros((0, *self.config.grid.shape), np.uint8)
        return GroundTruth.with_box_occupancy(self._frames, self.config.grid, drivable)
