"""Ground truth of simulated sweeps, and the timing schedule of every sensor."""

from __future__ import annotations

import numpy as np
import pytest

from calibration import load_rig
from perception.bev_grid import BevGrid
from perception.classes import CLASSES
from perception.ground_truth import Boxes
from simulation.errors import SimConfigError
from simulation.raycast import SceneCaster
from simulation.scenario import ScenarioConfig, build_scenario
from simulation.sensors.common import sensor_poses
from simulation.sensors.lidar import LidarModel
from simulation.timing import TimingConfig, schedule
from simulation.truth import ANNOTATION_RANGE_M, drivable_raster, frame_truth


@pytest.fixture(scope="module")
def rig(repo):
    return load_rig(repo / "config" / "rigs" / "default.yaml")


@pytest.fixture(scope="module")
def sweep_and_truth(rig):
    scenario = build_scenario(ScenarioConfig(seed=21, duration_s=6.0, density=1.5))
    caster = SceneCaster(scenario)
    sensor = rig.sensor("lidar_top")
    t = 2.0
    sweep = LidarModel(sensor).sweep(scenario, caster, t, np.random.default_rng(0))
    truth = frame_truth(caster, t, 123, sweep.actor)
    return scenario, caster, sensor, t, sweep, truth


def test_boxes_are_in_base_link_at_the_stamp(sweep_and_truth) -> None:
    scenario, caster, _, t, _, truth = sweep_and_truth
    assert truth.stamp_ns == 123
    np.testing.assert_allclose(truth.ego_pose, scenario.ego.poses(np.array([t]))[0])
    boxes = truth.boxes
    assert len(boxes) > 10
    assert np.all(np.hypot(boxes.centers[:, 0], boxes.centers[:, 1]) <= ANNOTATION_RANGE_M)
    # Back to the world frame, the boxes are the actors.
    states = caster.actor_states(t)
    world = boxes.transformed(truth.ego_pose)
    index = boxes.track_ids - 1
    np.testing.assert_allclose(world.centers, states.centers[index], atol=1e-9)
    np.testing.assert_allclose(np.cos(world.yaws - states.yaws[index]), 1.0, atol=1e-9)
    np.testing.assert_allclose(world.velocities, states.velocities[index], atol=1e-9)
    np.testing.assert_allclose(boxes.sizes, scenario.actors.sizes[index])


def test_lidar_points_of_an_actor_lie_in_its_box(sweep_and_truth) -> None:
    """Every point that hit an actor, placed in base_link at the stamp (de-skewed with the ego
    pose at its firing time), is inside that actor's box grown by how far it moved meanwhile."""
    scenario, _, sensor, t, sweep, truth = sweep_and_truth
    boxes = truth.boxes
    counted = boxes.num_lidar_points
    assert counted.sum() > 300
    xyz = sweep.scan.points[:, :3].astype(np.float64)
    time = sweep.scan.column("time").astype(np.float64)
    poses = sensor_poses(scenario, sensor, t + time)
    world = np.einsum("nij,nj->ni", poses[:, :3, :3], xyz) + poses[:, :3, 3]
    base = (world - truth.ego_pose[:3, 3]) @ truth.ego_pose[:3, :3]
    for k in np.flatnonzero(counted > 5):
        mine = sweep.actor == boxes.track_ids[k] - 1
        assert mine.sum() == counted[k]
        speed = float(np.hypot(*boxes.velocities[k]))
        grown = Boxes.create(
            boxes.centers[k : k + 1],
            boxes.sizes[k : k + 1] + 2 * (0.05 + speed * 0.1),
            boxes.yaws[k : k + 1],
            boxes.labels[k : k + 1],
        )
        inside = grown.points_in_boxes(base[mine])[0]
        assert inside.mean() > 0.97, (CLASSES[boxes.labels[k]], inside.mean())


def test_drivable_raster_follows_the_road(sweep_and_truth) -> None:
    _, caster, _, t, _, _ = sweep_and_truth
    grid = BevGrid()
    raster = drivable_raster(caster, t, grid)
    assert raster.shape == grid.shape
    assert raster.dtype == np.uint8
    row, col, _ = grid.cell_of(np.array([[0.0, 0.0], [5.0, 0.0]]))
    assert raster[row, col].all()  # the ego stands on the road
    assert 0.1 < raster.mean() < 0.6


def test_schedule_rates_phases_latency_and_drops(rig) -> None:
    timing = TimingConfig(jitter_ms=0.5, latency_jitter_ms=3.0, drop_probability=0.01)
    captures = schedule(rig, 30.0, timing, np.random.default_rng(0))
    by_sensor: dict[str, list] = {}
    for capture in captures:
        by_sensor.setdefault(capture.sensor_id, []).append(capture)
    assert set(by_sensor) == set(rig.ids)
    phases = []
    for sensor in rig.sensors:
        mine = by_sensor[sensor.id]
        t = np.array([c.t for c in mine])
        assert len(mine) == pytest.approx(30.0 * sensor.rate_hz, abs=1)
        period = np.diff(t)
        assert np.median(period) == pytest.approx(1.0 / sensor.rate_hz, abs=2e-4)
        assert 0.2e-3 < np.std(period) < 1.5e-3  # jitter ~0.5 ms on each stamp
        latency = np.array([c.receive_t - c.t for c in mine])
        assert latency.min() >= sensor.latency_ns / 1e9
        assert np.mean(latency) == pytest.approx(sensor.latency_ns / 1e9 + 3e-3, abs=1.5e-3)
        phases.append(t[0] % (1.0 / sensor.rate_hz))
    assert np.std(phases) > 0.005  # sensors are not in phase
    dropped = np.mean([c.dropped for c in captures])
    assert 0.005 < dropped < 0.02
    assert [c.t for c in captures] == sorted(c.t for c in captures)


def test_schedule_is_deterministic_and_validated(rig) -> None:
    a = schedule(rig, 3.0, TimingConfig(), np.random.default_rng(5))
    b = schedule(rig, 3.0, TimingConfig(), np.random.default_rng(5))
    assert a == b
    with pytest.raises(SimConfigError, match=r"drop_probability must be in \[0, 1\), got 1.5"):
        TimingConfig(drop_probability=1.5)
    with pytest.raises(SimConfigError, match=r"jitter_ms must be in \[0, 100\] ms, got -1"):
        TimingConfig(jitter_ms=-1)
