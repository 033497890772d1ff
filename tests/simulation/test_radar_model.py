"""The simulated radars: Doppler and ego-compensated radial velocity, radar-frame geometry,
RCS by class, detection falling with range, clutter, false positives, the point cap, errors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from calibration import Modality, load_rig
from simulation.actors import ActorBuilder, actor_mesh_template
from simulation.ego import EgoMotion
from simulation.errors import SimConfigError
from simulation.raycast import SceneCaster
from simulation.scenario import Scenario, ScenarioConfig, build_scenario
from simulation.sensors.common import sensor_poses
from simulation.sensors.radar import CLASS_RCS_DBSM, FIELDS, RadarModel, RadarParams
from simulation.world import build_world

EGO_S = 60.0  # the ego's arc length at t = 0 (the straight road runs along world +x)
EGO_SPEED = 10.0
EXACT = RadarParams(
    clutter_fraction=0.0,
    false_positive_rate=0.0,
    range_noise_m=0.0,
    azimuth_noise_deg=0.0,
    elevation_noise_deg=0.0,
    velocity_noise_mps=0.0,
    rcs_noise_db=0.0,
)


@pytest.fixture(scope="module")
def rig(repo):
    return load_rig(repo / "config" / "rigs" / "default.yaml")


def _street(place=None, speed: float = EGO_SPEED) -> tuple[Scenario, SceneCaster]:
    """A straight road with the ego driving at ``speed`` in its lane from x = EGO_S, and the
    actors ``place`` adds (it gets the builder and the ego lane's lateral offset)."""
    rng = np.random.default_rng(0)
    world = build_world("straight", 500.0, rng)
    lane = world.profile.lane_offset(0, +1)
    ego = EgoMotion(world.centerline, s0=EGO_S, d=lane, mean_speed=speed, amplitude=0.0, period=10.0, phase=0.0)
    builder = ActorBuilder(rng)
    if place is not None:
        place(builder, lane)
    actors = builder.build()
    scenario = Scenario(ScenarioConfig(seed=0, layout="straight"), world, ego, actors, actor_mesh_template(actors))
    return scenario, SceneCaster(scenario)


def _to_world(scenario, sensor, t, points):
    pose = sensor_poses(scenario, sensor, t)[0]
    return points[:, :3].astype(np.float64) @ pose[:3, :3].T + pose[:3, 3]


def _inside(scenario, caster, t, index, world, margin=0.05):
    states = caster.actor_states(t)
    length, width, height = scenario.actors.sizes[index]
    c, s = np.cos(states.yaws[index]), np.sin(states.yaws[index])
    local = world - states.centers[index]
    along, across = local[:, 0] * c + local[:, 1] * s, -local[:, 0] * s + local[:, 1] * c
    return (
        (np.abs(along) <= length / 2 + margin)
        & (np.abs(across) <= width / 2 + margin)
        & (np.abs(local[:, 2]) <= height / 2 + margin)
    )


def test_moving_car_ahead_reports_the_relative_speed(rig) -> None:
    sensor = rig.sensor("radar_front")
    scenario, caster = _street(lambda b, lane: b.lane("car", EGO_S + 30.0, 15.0, lane))
    scan = RadarModel(sensor, EXACT).scan(scenario, caster, 0.5, np.random.default_rng(0))
    assert scan.fields == FIELDS
    assert len(scan.points) >= 1
    world = _to_world(scenario, sensor, 0.5, scan.points)
    assert np.all(_inside(scenario, caster, 0.5, 0, world))
    # Line of sight . road direction (world +x): the radial share of the along-road speeds.
    los = world - sensor_poses(scenario, sensor, 0.5)[0][:3, 3]
    cos = los[:, 0] / np.linalg.norm(los, axis=1)
    assert np.all(cos > 0.99)
    np.testing.assert_allclose(scan.column("vr"), (15.0 - EGO_SPEED) * cos, atol=1e-3)  # moving away: +5 m/s
    np.testing.assert_allclose(scan.column("vr_compensated"), 15.0 * cos, atol=1e-3)


def test_oncoming_car_approaches_with_negative_vr(rig) -> None:
    sensor = rig.sensor("radar_front")
    scenario, caster = _street(lambda b, lane: b.lane("car", EGO_S + 60.0, -8.0, -lane))
    scan = RadarModel(sensor, EXACT).scan(scenario, caster, 0.0, np.random.default_rng(0))
    assert len(scan.points) >= 1
    assert np.all(scan.column("vr") < -17.0)  # -(10 + 8) cos(angle)
    assert np.all(scan.column("vr_compensated") < -7.5)


def test_static_clutter_has_zero_compensated_velocity(rig) -> None:
    sensor = rig.sensor("radar_front")
    scenario, caster = _street()
    clutter = dataclasses.replace(EXACT, clutter_fraction=1.0)
    scan = RadarModel(sensor, clutter).scan(scenario, caster, 0.0, np.random.default_rng(0))
    assert len(scan.points) >= 20  # buildings, poles and trees along the street
    np.testing.assert_allclose(scan.column("vr_compensated"), 0.0, atol=1e-4)
    # vr = -v_ego cos(angle between the line of sight and the ego's heading, world +x).
    xyz = scan.points[:, :3].astype(np.float64)
    heading_in_radar = sensor.extrinsic[:3, :3].T @ np.array([1.0, 0.0, 0.0])
    cos = xyz @ heading_in_radar / np.linalg.norm(xyz, axis=1)
    np.testing.assert_allclose(scan.column("vr"), -EGO_SPEED * cos, atol=1e-3)
    # With the default noise: compensated velocities stay near zero.
    noisy = RadarModel(sensor, dataclasses.replace(RadarParams(), false_positive_rate=0.0)).scan(
        scenario, caster, 0.0, np.random.default_rng(0)
    )
    assert np.median(np.abs(noisy.column("vr_compensated"))) < 0.15
    assert np.all(np.abs(noisy.column("vr_compensated")) < 0.6)


def test_points_are_in_the_radar_frame(rig) -> None:
    """A car beside the ego is straight ahead of the left-looking radar (x along its boresight)."""
    sensor = rig.sensor("radar_front_left")
    scenario, caster = _street(lambda b, lane: b.static("car", np.array([EGO_S + 2.4, lane + 5.0]), 0.0))
    scan = RadarModel(sensor, EXACT).scan(scenario, caster, 0.0, np.random.default_rng(0))
    xyz = scan.points[:, :3]
    assert len(xyz) >= 2
    assert np.all(xyz[:, 0] > 2.5)
    assert np.all(np.abs(xyz[:, 1]) < 3.0)
    assert np.all(np.abs(xyz[:, 2]) < 1.5)
    assert np.all(_inside(scenario, caster, 0.0, 0, _to_world(scenario, sensor, 0.0, scan.points)))
    # The ego drives along world +x = the radar's -y: static targets come closer from ahead-left.
    heading_in_radar = sensor.extrinsic[:3, :3].T @ np.array([1.0, 0.0, 0.0])
    np.testing.assert_allclose(heading_in_radar, [0.0, -1.0, 0.0], atol=0.1)


def test_rcs_follows_the_class(rig) -> None:
    sensor = rig.sensor("radar_front")
    means = {}
    for name in ("truck", "car", "pedestrian"):
        scenario, caster = _street(
            lambda b, lane, name=name: b.static(name, np.array([EGO_S + 25.0, lane]), 0.0), speed=0.0
        )
        model = RadarModel(sensor, dataclasses.replace(RadarParams(), clutter_fraction=0.0, false_positive_rate=0.0))
        rng = np.random.default_rng(0)
        rcs = np.concatenate([model.scan(scenario, caster, 0.0, rng).column("rcs") for _ in range(15)])
        assert rcs.size >= 15
        means[name] = float(np.mean(rcs))
        assert means[name] == pytest.approx(CLASS_RCS_DBSM[name], abs=1.5)
    assert means["truck"] > means["car"] > means["pedestrian"]


def test_detections_thin_out_with_range(rig) -> None:
    sensor = rig.sensor("radar_front")
    counts = {}
    for gap in (30.0, 130.0):
        scenario, caster = _street(
            lambda b, lane, gap=gap: b.static("pedestrian", np.array([EGO_S + 3.4 + gap, lane]), 0.0), speed=0.0
        )
        model = RadarModel(sensor, dataclasses.replace(RadarParams(), clutter_fraction=0.0, false_positive_rate=0.0))
        rng = np.random.default_rng(0)
        counts[gap] = sum(len(model.scan(scenario, caster, 0.0, rng).points) for _ in range(30))
    assert counts[30.0] >= 27  # nearly every scan
    assert counts[130.0] < counts[30.0] / 2


def test_false_positives_are_weak_and_inside_the_field_of_view(rig) -> None:
    sensor = rig.sensor("radar_back_left")
    scenario, caster = _street(speed=0.0)
    params = dataclasses.replace(EXACT, false_positive_rate=5.0)
    model = RadarModel(sensor, params)
    rng = np.random.default_rng(0)
    scans = [model.scan(scenario, caster, 0.0, rng).points for _ in range(40)]
    assert 4.0 < np.mean([len(p) for p in scans]) < 6.0
    points = np.concatenate(scans)
    azimuth = np.degrees(np.arctan2(points[:, 1], points[:, 0]))
    assert np.all(np.abs(azimuth) <= 60.0 + 1e-3)
    assert np.all(np.linalg.norm(points[:, :3], axis=1) <= sensor.radar.max_range_m + 1e-3)
    assert np.all(points[:, 5] < -4.9)


def test_point_cap_keeps_the_strongest(rig) -> None:
    base = rig.sensor("radar_front")
    scenario = build_scenario(ScenarioConfig(seed=2, density=3.0, duration_s=4.0))
    caster = SceneCaster(scenario)
    params = dataclasses.replace(EXACT, clutter_fraction=1.0, false_positive_rate=20.0)
    wide = dataclasses.replace(base, spec=dataclasses.replace(base.radar, max_points=10_000))
    capped = dataclasses.replace(base, spec=dataclasses.replace(base.radar, max_points=20))
    full = RadarModel(wide, params).scan(scenario, caster, 1.0, np.random.default_rng(3)).points
    kept = RadarModel(capped, params).scan(scenario, caster, 1.0, np.random.default_rng(3)).points
    assert len(full) > 20
    assert len(kept) == 20
    # Both scans draw the same random numbers: the capped one is the full one's first 20,
    # and the full one is ordered strongest first (SNR = rcs - 40 log10(range) + const).
    np.testing.assert_array_equal(kept, full[:20])
    snr = full[:, 5].astype(np.float64) - 40.0 * np.log10(np.linalg.norm(full[:, :3].astype(np.float64), axis=1))
    assert np.all(np.diff(snr) <= 1e-3)


def test_default_rig_scans(rig) -> None:
    scenario = build_scenario(ScenarioConfig(seed=5, duration_s=4.0))
    caster = SceneCaster(scenario)
    rng = np.random.default_rng(0)
    radars = rig.of(Modality.RADAR)
    assert len(radars) == 5
    for sensor in radars:
        scan = RadarModel(sensor).scan(scenario, caster, 2.0, rng)
        assert scan.fields == tuple(sensor.radar.fields)
        assert scan.points.dtype == np.float32
        assert 5 <= len(scan.points) <= sensor.radar.max_points, sensor.id
        assert np.all(np.isfinite(scan.points))


def test_same_rng_same_scan(rig) -> None:
    scenario = build_scenario(ScenarioConfig(seed=5, duration_s=4.0))
    caster = SceneCaster(scenario)
    model = RadarModel(rig.sensor("radar_front"))
    a = model.scan(scenario, caster, 1.0, np.random.default_rng(7)).points
    b = model.scan(scenario, caster, 1.0, np.random.default_rng(7)).points
    c = model.scan(scenario, caster, 1.0, np.random.default_rng(8)).points
    np.testing.assert_array_equal(a, b)
    assert a.shape != c.shape or not np.array_equal(a, c)


def test_a_non_radar_sensor_is_refused_by_name(rig) -> None:
    with pytest.raises(SimConfigError, match="lidar_top"):
        RadarModel(rig.sensor("lidar_top"))


def test_unsupported_radar_fields_are_refused(rig) -> None:
    base = rig.sensor("radar_front")
    odd = dataclasses.replace(base, spec=dataclasses.replace(base.radar, fields=("x", "y", "z", "v", "rcs")))
    with pytest.raises(SimConfigError, match=r"radar_front.*'v'"):
        RadarModel(odd)


@pytest.mark.parametrize(
    ("kwargs", "names"),
    [
        ({"azimuth_step_deg": 0.0}, ("azimuth_step_deg", "0.0")),
        ({"elevations_deg": ()}, ("elevations_deg", "()")),
        ({"elevations_deg": (0.0, 50.0)}, ("elevations_deg", "50.0")),
        ({"clutter_fraction": 1.5}, ("clutter_fraction", "1.5")),
        ({"max_points_per_actor": 0}, ("max_points_per_actor", "0")),
        ({"range_noise_m": float("nan")}, ("range_noise_m", "nan")),
        ({"false_positive_rate": -1.0}, ("false_positive_rate", "-1.0")),
    ],
)
def test_bad_params_name_the_field_and_value(kwargs, names) -> None:
    with pytest.raises(SimConfigError) as error:
        RadarParams(**kwargs)
    for name in names:
        assert name in str(error.value)
