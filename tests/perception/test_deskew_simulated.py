"""De-skew and accumulation against the simulator's static scene while the ego turns.

The simulated lidar fires each column from the sensor pose at its own time, so a sweep taken
on a curve is distorted exactly as on a car. Compensated into base_link at the sweep stamp,
every point must lie on the scene: a ray cast from the sensor's pose at the stamp through
the point (Open3D, the simulator's own scene) meets a surface at the point's range, up to
the simulated range noise (2 cm). The raw sweep, read as if taken at the stamp, does not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from calibration import Rig, load_rig
from calibration.poses import PoseTrajectory
from perception.ego_motion import OdometryBuffer, SweepAccumulator, sweep_to_base
from perception.samples import PointScan
from simulation.scenario import ScenarioConfig
from simulation.sensors.lidar import RANGE_NOISE_M
from simulation.simulator import SimConfig, Simulator
from simulation.timing import Capture

MS = 1_000_000
SWEEP_NS = 100 * MS


@dataclass(frozen=True)
class Turn:
    sim: Simulator
    rig: Rig
    captures: tuple[Capture, Capture]  # two successive sweeps of the reference lidar
    scans: tuple[PointScan, PointScan]
    stamps: tuple[int, int]

    @property
    def lidar_to_base(self) -> np.ndarray:
        return self.rig.to_base(self.rig.reference_sensor)

    def exact_trajectory(self, start_ns: int, end_ns: int) -> PoseTrajectory:
        """The simulator's ego poses every millisecond: odometry with no error."""
        stamps = np.arange(start_ns - 2 * MS, end_ns + 2 * MS, MS, dtype=np.int64)
        return PoseTrajectory(stamps, self.sim.ego_poses(stamps))

    def range_residuals(self, points_base: np.ndarray, stamp_ns: int, t: float) -> np.ndarray:
        """(N,) cast range minus point range (m) of rays from the lidar's pose at ``stamp_ns``
        through points (N, 3) given in base_link at ``stamp_ns``; nan where nothing is hit."""
        pose = self.sim.ego_poses(np.array([stamp_ns]))[0]
        world = points_base.astype(np.float64) @ pose[:3, :3].T + pose[:3, 3]
        origin = (pose @ self.lidar_to_base)[:3, 3]
        direction = world - origin
        distance = np.linalg.norm(direction, axis=1)
        hits = self.sim.caster.cast(np.broadcast_to(origin, direction.shape), direction / distance[:, None], t)
        residual = hits.distance.astype(np.float64) - distance
        return np.where(np.isfinite(residual), residual, np.nan)

    def raw_in_base(self, scan: PointScan) -> np.ndarray:
        """The sweep with no de-skew: every point taken from the lidar at the stamp."""
        S = self.lidar_to_base
        return scan.points[:, :3].astype(np.float64) @ S[:3, :3].T + S[:3, 3]


@pytest.fixture(scope="module")
def turn(repo) -> Turn:
    rig = load_rig(repo / "config" / "rigs" / "default.yaml")
    # A curved road with no actors (density 0: a static scene).
    sim = Simulator(rig, SimConfig(scenario=ScenarioConfig(seed=0, duration_s=3.0, layout="curved", density=0.0)))
    assert sim.scenario.actors.sizes.shape[0] == 0
    lidar = [c for c in sim.captures if c.sensor_id == rig.reference_sensor and c.t < 2.8]
    # The pair of successive sweeps during which the ego turns fastest (slowest yaw rate over both).
    slowest = [np.min(np.abs(sim.scenario.ego.twist(c.t + np.linspace(-0.1, 0.1, 21))[1])) for c in lidar[:-1]]
    k = int(np.argmax(slowest))
    captures = (lidar[k], lidar[k + 1])
    assert not any(c.dropped for c in captures)
    records = [sim.render(c) for c in captures]
    return Turn(
        sim,
        rig,
        captures,
        (records[0].payload, records[1].payload),  # type: ignore[arg-type]
        (records[0].stamp_ns, records[1].stamp_ns),
    )


def _stats(residual: np.ndarray) -> tuple[float, float]:
    error = np.abs(residual[np.isfinite(residual)])
    return float(np.median(error)), float(np.percentile(error, 95))


def test_the_ego_turns_and_drives_during_the_sweep(turn: Turn) -> None:
    t = turn.captures[1].t + np.linspace(-0.1, 0.0, 11)
    speed, yaw_rate = turn.sim.scenario.ego.twist(t)
    assert np.all(np.abs(yaw_rate) > 0.12)  # > 0.7 deg per sweep: 0.5 m sideways at 40 m
    assert np.all(speed > 7.0)  # > 0.7 m driven per sweep
    assert turn.scans[1].fields[-1] == "time"
    assert turn.scans[1].points.shape[0] > 15_000


def test_deskewed_sweep_matches_the_static_scene(turn: Turn) -> None:
    scan, stamp, t = turn.scans[1], turn.stamps[1], turn.captures[1].t
    trajectory = turn.exact_trajectory(stamp - SWEEP_NS, stamp)
    deskewed = sweep_to_base(scan, stamp, trajectory, turn.lidar_to_base, source="lidar_top")
    assert deskewed.dropped == 0
    compensated = turn.range_residuals(deskewed.points[:, :3], stamp, t)
    raw = turn.range_residuals(turn.raw_in_base(scan), stamp, t)
    median, p95 = _stats(compensated)
    raw_median, raw_p95 = _stats(raw)
    # Gaussian range noise of 2 cm: median |noise| 1.35 cm, 95th percentile 3.9 cm.
    assert RANGE_NOISE_M == 0.02
    assert median < 0.02, (median, p95)
    assert p95 < 0.05, (median, p95)
    assert np.count_nonzero(np.isnan(compensated)) <= 5  # rays that miss: edges only
    # Without de-skew: up to a metre off (the distance driven during the sweep).
    assert raw_p95 > 0.5, (raw_median, raw_p95)
    assert raw_p95 > 10 * p95


def test_simulated_50hz_odometry_deskews_as_well_as_exact_poses(turn: Turn) -> None:
    scan, stamp, t = turn.scans[1], turn.stamps[1], turn.captures[1].t
    buffer = OdometryBuffer(source="odometry")
    for capture in turn.sim.captures:
        if capture.sensor_id == "odometry" and not capture.dropped and abs(capture.t - t) < 0.5:
            record = turn.sim.render(capture)
            assert record is not None
            buffer.add(record.payload)  # type: ignore[arg-type]
    from_odometry = sweep_to_base(scan, stamp, buffer.trajectory(stamp - SWEEP_NS, stamp), turn.lidar_to_base)
    exact = sweep_to_base(scan, stamp, turn.exact_trajectory(stamp - SWEEP_NS, stamp), turn.lidar_to_base)
    # SLERP + chord between 20 ms samples of a 0.14 rad/s, 9 m/s motion: well under a millimetre.
    assert np.max(np.abs(from_odometry.points - exact.points)) < 1e-3
    assert _stats(turn.range_residuals(from_odometry.points[:, :3], stamp, t))[1] < 0.05


def test_previous_sweep_accumulated_into_the_current_frame_matches_the_scene(turn: Turn) -> None:
    """The older sweep, de-skewed at its own stamp and moved to the current frame, lies on the
    scene as seen from the lidar at the current stamp; its time lag is the stamp difference."""
    (old, new), (old_stamp, new_stamp) = turn.scans, turn.stamps
    trajectory = turn.exact_trajectory(old_stamp - SWEEP_NS, new_stamp)
    accumulator = SweepAccumulator(2, turn.lidar_to_base, max_age_ns=500 * MS, source="lidar_top")
    accumulator.add(old, old_stamp, trajectory)
    cloud = accumulator.add(new, new_stamp, trajectory)
    n_new = new.points.shape[0]
    assert cloud.shape == (n_new + old.points.shape[0], 5)
    lag = np.float32((new_stamp - old_stamp) / 1e9)
    assert 0.09 < lag < 0.11
    np.testing.assert_array_equal(cloud[:n_new, 4], 0.0)
    np.testing.assert_array_equal(cloud[n_new:, 4], lag)
    t = turn.captures[1].t
    median, p95 = _stats(turn.range_residuals(cloud[n_new:, :3], new_stamp, t))
    # Seen from 0.9 m further along, a few points hide behind poles or trunks: 95th percentile.
    assert median < 0.02, (median, p95)
    assert p95 < 0.05, (median, p95)
    # De-skewed but left in base_link at its own stamp (no motion between the sweeps): far off.
    _, stale_p95 = _stats(turn.range_residuals(accumulator.sweeps[1].points[:, :3], new_stamp, t))
    assert stale_p95 > 0.5
