"""The procedural world: roads, roadside objects, actors and the ego's drive."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from perception.classes import CLASSES
from simulation.actors import CLASS_SIZES, KIND_LANE, KIND_LINE, KIND_STATIC
from simulation.errors import SimConfigError
from simulation.materials import Material
from simulation.road import build_road
from simulation.scenario import ScenarioConfig, build_scenario


@pytest.fixture(scope="module")
def scenario():
    return build_scenario(ScenarioConfig(seed=5, duration_s=12.0, layout="mixed"))


def test_same_seed_same_world_other_seed_other_world() -> None:
    a = build_scenario(ScenarioConfig(seed=11, duration_s=5.0))
    b = build_scenario(ScenarioConfig(seed=11, duration_s=5.0))
    c = build_scenario(ScenarioConfig(seed=12, duration_s=5.0))
    assert np.array_equal(a.world.static_mesh.vertices, b.world.static_mesh.vertices)
    assert np.array_equal(a.world.ground.material, b.world.ground.material)
    assert np.array_equal(a.actors.params, b.actors.params)
    assert not np.array_equal(a.actors.params, c.actors.params)


@pytest.mark.parametrize("layout", ["straight", "curved", "intersection", "mixed"])
def test_layouts_have_their_shape(layout: str) -> None:
    centerline, crossings = build_road(layout, 400.0, np.random.default_rng(3))
    assert centerline.length >= 400.0
    step = np.linalg.norm(np.diff(centerline.xy, axis=0), axis=1)
    np.testing.assert_allclose(step, 0.5, atol=1e-9)  # arc-length parametrization
    turning = np.abs(centerline.curvature).max()
    if layout == "straight":
        assert turning == 0
        assert not crossings
    if layout == "curved":
        assert turning > 1 / 200
        assert not crossings
    if layout == "intersection":
        assert len(crossings) >= 2
        for crossing in crossings:  # crossings are perpendicular to the main road
            _, heading, _ = centerline.at(np.array([crossing.s]))
            assert np.isclose(np.cos(crossing.heading - heading[0]), 0.0, atol=1e-9)


def test_bad_scenario_options_are_named() -> None:
    with pytest.raises(SimConfigError, match=r"layout must be one of .*'spiral'"):
        ScenarioConfig(layout="spiral")
    with pytest.raises(SimConfigError, match=r"duration must be in .* -1"):
        ScenarioConfig(duration_s=-1)
    with pytest.raises(SimConfigError, match=r"seed must be an integer >= 0, got 1\.5"):
        ScenarioConfig(seed=1.5)  # type: ignore[arg-type]
    with pytest.raises(SimConfigError, match="density"):
        ScenarioConfig(density=float("nan"))
    with pytest.raises(SimConfigError, match="traffic must be true or false, got 'no'"):
        ScenarioConfig(traffic="no")  # type: ignore[arg-type]


def test_a_world_without_traffic_holds_only_actors_that_never_move() -> None:
    config = ScenarioConfig(seed=5, duration_s=12.0, layout="mixed", traffic=False)
    static = build_scenario(config)
    assert len(static.actors) > 0, "parked vehicles and road works stay"
    assert np.all(static.actors.kinds == KIND_STATIC)
    for t in (0.0, 6.0, 12.0):
        states = static.actors.states(static.world.centerline, t)
        assert np.all(states.velocities == 0)
        np.testing.assert_array_equal(states.centers, static.actors.states(static.world.centerline, 0.0).centers)


def test_ground_map_has_road_markings_sidewalks(scenario) -> None:
    counts = np.bincount(scenario.world.ground.material.ravel(), minlength=len(Material))
    for material in (Material.ASPHALT, Material.LANE_WHITE, Material.LANE_YELLOW, Material.SIDEWALK, Material.GRASS):
        assert counts[material] > 0, material.name
    # The ego's lane centre is road, 20 m to the side of the road is not.
    centerline = scenario.world.centerline
    s = np.linspace(10, centerline.length - 10, 50)
    s = s[[all(abs(v - c.s) > 15.0 for c in scenario.world.crossings) for v in s]]  # not on a crossing road
    on_lane = centerline.offset(s, scenario.ego.d)
    off_road = centerline.offset(s, scenario.world.profile.half_width + scenario.world.profile.sidewalk_width + 5)
    assert scenario.world.ground.drivable(on_lane).all()
    assert not scenario.world.ground.drivable(off_road).any()


def test_buildings_stay_off_roads_and_sidewalks(scenario) -> None:
    world = scenario.world
    mesh = world.static_mesh
    buildings = mesh.part[mesh.material == Material.BUILDING]
    assert buildings.size > 0
    tri = mesh.triangles[mesh.material == Material.BUILDING]
    xy = mesh.vertices[tri.ravel(), :2]
    s = np.arange(0, world.centerline.length, 1.0)
    kerb = world.profile.half_width + world.profile.sidewalk_width
    road = shapely.Polygon(np.concatenate([world.centerline.offset(s, kerb), world.centerline.offset(s[::-1], -kerb)]))
    inside = shapely.contains_xy(road, xy[:, 0], xy[:, 1])
    assert not inside.any()


def test_actors_cover_the_classes_with_realistic_sizes(scenario) -> None:
    actors = scenario.actors
    present = {CLASSES[i] for i in np.unique(actors.labels)}
    assert {"car", "pedestrian", "bicycle", "truck"} <= present
    for index in range(len(actors)):
        nominal = np.array(CLASS_SIZES[CLASSES[actors.labels[index]]])
        ratio = actors.sizes[index] / nominal
        assert np.all((ratio > 0.89) & (ratio < 1.11))
    kinds = set(actors.kinds.tolist())
    assert {KIND_LANE, KIND_STATIC} <= kinds


def test_actor_velocities_match_their_motion(scenario) -> None:
    centerline = scenario.world.centerline
    t, dt = 4.0, 1e-3
    a = scenario.actors.states(centerline, t - dt)
    b = scenario.actors.states(centerline, t + dt)
    now = scenario.actors.states(centerline, t)
    finite_difference = (b.centers[:, :2] - a.centers[:, :2]) / (2 * dt)
    # 0.5 m centreline sampling: positions are piecewise linear, velocities use the smooth heading
    np.testing.assert_allclose(now.velocities, finite_difference, atol=0.05)
    static = scenario.actors.kinds == KIND_STATIC
    assert np.all(now.velocities[static] == 0)
    moving = scenario.actors.kinds == KIND_LANE
    heading = np.stack([np.cos(now.yaws), np.sin(now.yaws)], axis=1)
    speed = np.linalg.norm(now.velocities, axis=1)
    along = np.einsum("ij,ij->i", heading, now.velocities)
    np.testing.assert_allclose(along[moving], speed[moving], atol=1e-6)  # actors face where they go


def test_vehicles_never_overlap_the_ego(scenario) -> None:
    centerline = scenario.world.centerline
    vehicle = np.isin(scenario.actors.labels, [CLASSES.index(c) for c in ("car", "truck", "bus", "trailer")])
    for t in np.arange(0.0, scenario.config.duration_s, 0.25):
        pose = scenario.ego.poses(np.array([t]))[0]
        states = scenario.actors.states(centerline, t)
        local = (states.centers[:, :2] - pose[:2, 3]) @ pose[:2, :2]
        near = (np.abs(local[:, 0] - 1.3) < 2.3 + scenario.actors.sizes[:, 0] / 2) & (
            np.abs(local[:, 1]) < 0.9 + scenario.actors.sizes[:, 1] / 2
        )
        assert not (near & vehicle).any(), f"vehicle inside the ego at t={t}"


def test_ego_twist_matches_its_poses(scenario) -> None:
    t = np.linspace(0.5, 10.0, 20)
    dt = 1e-4
    forward, yaw_rate = scenario.ego.twist(t)
    p0, p1 = scenario.ego.poses(t - dt), scenario.ego.poses(t + dt)
    velocity = (p1[:, :2, 3] - p0[:, :2, 3]) / (2 * dt)
    np.testing.assert_allclose(np.linalg.norm(velocity, axis=1), forward, rtol=1e-5)
    yaw0 = np.arctan2(p0[:, 1, 0], p0[:, 0, 0])
    yaw1 = np.arctan2(p1[:, 1, 0], p1[:, 0, 0])
    np.testing.assert_allclose(np.angle(np.exp(1j * (yaw1 - yaw0))) / (2 * dt), yaw_rate, atol=1e-5)
    assert np.all(forward > 0)


def test_line_actors_stand_before_and_after_they_walk(scenario) -> None:
    line = np.flatnonzero(scenario.actors.kinds == KIND_LINE)
    if line.size == 0:
        pytest.skip("no crossing actors in this scenario")
    index = int(line[0])
    t0, t1 = scenario.actors.params[index, 4:6]
    centerline = scenario.world.centerline
    before = scenario.actors.states(centerline, t0 - 1.0)
    assert np.all(before.velocities[index] == 0)
    if np.isfinite(t1) and t1 < 1e8:
        after = scenario.actors.states(centerline, t1 + 1.0)
        assert np.all(after.velocities[index] == 0)
