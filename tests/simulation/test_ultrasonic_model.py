"""The simulated bumper ultrasonics: nearest obstacle in the cone, ground ignored, REP-117
limits, noise, and clear errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from calibration import Modality, load_rig
from simulation.actors import ActorBuilder, actor_mesh_template
from simulation.ego import EgoMotion
from simulation.errors import SimConfigError
from simulation.ground import IS_GROUND
from simulation.raycast import SceneCaster
from simulation.scenario import Scenario, ScenarioConfig
from simulation.sensors.common import sensor_poses
from simulation.sensors.ultrasonic import UltrasonicModel, UltrasonicParams, cone_rays
from simulation.world import build_world

EGO_S = 60.0  # the ego's arc length at t = 0 (the straight road runs along world +x from x = 0)


@pytest.fixture(scope="module")
def rig(repo):
    return load_rig(repo / "config" / "rigs" / "default.yaml")


def _street(place=None) -> tuple[Scenario, SceneCaster]:
    """A straight road, the ego standing in its lane at x = EGO_S, and the actors ``place``
    adds (it gets the builder and the ego lane's lateral offset; world x = arc length)."""
    rng = np.random.default_rng(0)
    world = build_world("straight", 300.0, rng)
    lane = world.profile.lane_offset(0, +1)
    ego = EgoMotion(world.centerline, s0=EGO_S, d=lane, mean_speed=0.0, amplitude=0.0, period=10.0, phase=0.0)
    builder = ActorBuilder(rng)
    if place is not None:
        place(builder, lane)
    actors = builder.build()
    scenario = Scenario(ScenarioConfig(seed=0, layout="straight"), world, ego, actors, actor_mesh_template(actors))
    return scenario, SceneCaster(scenario)


def _car_at(x_face: float, behind: bool = False):
    """A parked car whose near face (rear face, or front face when ``behind``) is at world x."""

    def place(builder: ActorBuilder, lane: float) -> None:
        builder.static("car", np.array([0.0, lane]), 0.0)

    scenario, _ = _street(place)
    length = float(scenario.actors.sizes[0, 0])
    center = x_face - length / 2 if behind else x_face + length / 2

    def placed(builder: ActorBuilder, lane: float) -> None:
        builder.static("car", np.array([center, lane]), 0.0)

    return _street(placed)


def _readings(model, scenario, caster, n=40, seed=0):
    rng = np.random.default_rng(seed)
    return [model.read(scenario, caster, 0.0, rng) for _ in range(n)]


@pytest.mark.parametrize("gap", [0.6, 1.5, 3.0, 4.6])
def test_car_ahead_is_measured_within_noise(rig, gap) -> None:
    sensor = rig.sensor("us_front_left_center")
    bumper_x = EGO_S + float(sensor.extrinsic[0, 3])
    scenario, caster = _car_at(bumper_x + gap)
    model = UltrasonicModel(sensor)
    readings = _readings(model, scenario, caster)
    ranges = np.array([r.range_m for r in readings])
    assert all(r.detected for r in readings)
    # The nearest ray is 3 degrees off the face normal: the true range is gap / cos(3 deg).
    assert model.nearest(scenario, caster, 0.0) == pytest.approx(gap, rel=2e-3)
    assert np.mean(ranges) == pytest.approx(gap, abs=0.012)
    assert 0.008 < np.std(ranges) < 0.025  # the 1.5 cm noise
    assert np.all(np.abs(ranges - gap) < 0.08)


def test_car_behind_is_seen_by_the_rear_sensors_only(rig) -> None:
    rear = rig.sensor("us_rear_right_center")
    bumper_x = EGO_S + float(rear.extrinsic[0, 3])
    scenario, caster = _car_at(bumper_x - 2.0, behind=True)
    reading = UltrasonicModel(rear).read(scenario, caster, 0.0, np.random.default_rng(1))
    assert reading.detected
    assert reading.range_m == pytest.approx(2.0, abs=0.08)
    front = UltrasonicModel(rig.sensor("us_front_right_center")).read(scenario, caster, 0.0, np.random.default_rng(1))
    assert not front.detected


def test_beyond_max_range_is_not_detected_rep117(rig) -> None:
    sensor = rig.sensor("us_front_right_center")
    scenario, caster = _car_at(EGO_S + float(sensor.extrinsic[0, 3]) + 5.6)
    model = UltrasonicModel(sensor)
    assert model.nearest(scenario, caster, 0.0) == pytest.approx(5.6, rel=0.01)  # it is there, just too far
    for reading in _readings(model, scenario, caster, n=10):
        assert not reading.detected
        assert reading.range_m == math.inf


def test_closer_than_min_range_reads_min_range(rig) -> None:
    sensor = rig.sensor("us_front_left_center")
    scenario, caster = _car_at(EGO_S + float(sensor.extrinsic[0, 3]) + 0.08)
    for reading in _readings(UltrasonicModel(sensor), scenario, caster, n=10):
        assert reading.detected
        assert reading.range_m == sensor.ultrasonic.min_range_m


def test_empty_street_nothing_detected_although_the_fan_hits_the_ground(rig) -> None:
    scenario, caster = _street()
    sensors = rig.of(Modality.ULTRASONIC)
    assert len(sensors) == 12
    for sensor in sensors:
        model = UltrasonicModel(sensor)
        reading = model.read(scenario, caster, 0.0, np.random.default_rng(0))
        assert not reading.detected, sensor.id
        assert reading.range_m == math.inf
        # The lower rays do hit the ground within range: the model must be ignoring them.
        pose = sensor_poses(scenario, sensor, 0.0)[0]
        rays = model.rays @ pose[:3, :3].T
        hits = caster.cast(np.broadcast_to(pose[:3, 3], rays.shape), rays, 0.0)
        assert np.any(IS_GROUND[hits.material] & (hits.distance < sensor.ultrasonic.max_range_m)), sensor.id


def test_reading_carries_the_sensor_description(rig) -> None:
    sensor = rig.sensor("us_rear_left_corner")
    scenario, caster = _street()
    model = UltrasonicModel(sensor)
    reading = model.read(scenario, caster, 1.25, np.random.default_rng(0))
    assert reading.frame_id == sensor.frame_id
    assert reading.stamp_ns == 1_250_000_000
    assert reading.min_range_m == sensor.ultrasonic.min_range_m
    assert reading.max_range_m == sensor.ultrasonic.max_range_m
    assert reading.field_of_view_rad == pytest.approx(math.radians(60.0))
    stamped = model.read(scenario, caster, 1.25, np.random.default_rng(0), stamp_ns=1_700_000_000_123_456_789)
    assert stamped.stamp_ns == 1_700_000_000_123_456_789


def test_same_rng_same_readings(rig) -> None:
    sensor = rig.sensor("us_front_left_center")
    scenario, caster = _car_at(EGO_S + float(sensor.extrinsic[0, 3]) + 2.0)
    model = UltrasonicModel(sensor)
    a = [r.range_m for r in _readings(model, scenario, caster, n=5, seed=4)]
    b = [r.range_m for r in _readings(model, scenario, caster, n=5, seed=4)]
    c = [r.range_m for r in _readings(model, scenario, caster, n=5, seed=5)]
    assert a == b
    assert a != c


def test_cone_rays_cover_the_cone_and_stay_inside_it() -> None:
    fov = math.radians(60.0)
    rays = cone_rays(fov, UltrasonicParams())
    assert rays.shape == (21, 3)
    np.testing.assert_allclose(np.linalg.norm(rays, axis=1), 1.0)
    off_axis = np.arccos(np.clip(rays[:, 0], -1, 1))
    assert off_axis.max() <= fov / 2 + 1e-9
    assert np.degrees(np.arctan2(rays[:, 1], rays[:, 0])).max() == pytest.approx(30.0)  # full width
    assert np.any(rays[:, 2] < -0.2)  # and some height


def test_a_non_ultrasonic_sensor_is_refused_by_name(rig) -> None:
    with pytest.raises(SimConfigError, match="cam_front"):
        UltrasonicModel(rig.sensor("cam_front"))


@pytest.mark.parametrize(
    ("kwargs", "names"),
    [
        ({"azimuth_rays": 0}, ("azimuth_rays", "0")),
        ({"elevation_rays": 2.5}, ("elevation_rays", "2.5")),
        ({"elevation_fraction": 0.0}, ("elevation_fraction", "0.0")),
        ({"range_noise_m": -0.01}, ("range_noise_m", "-0.01")),
    ],
)
def test_bad_params_name_the_field_and_value(kwargs, names) -> None:
    with pytest.raises(SimConfigError) as error:
        UltrasonicParams(**kwargs)
    for name in names:
        assert name in str(error.value)
