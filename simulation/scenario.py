"""A scenario: the world, the ego's drive through it, and the actors around the route.

Traffic is laid out so nothing collides: vehicles in one lane share that lane's speed, the
ego's lane is kept clear near the ego, pedestrians cross the main road only when the ego is
far from their crosswalk, and vehicles on crossing roads wait at the stop line or drive away
from the intersection.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulation.actors import ActorBuilder, ActorSet, actor_mesh_template
from simulation.ego import EgoMotion
from simulation.errors import SimConfigError
from simulation.meshes import Mesh
from simulation.road import LAYOUTS
from simulation.world import World, build_world

START_S = 60.0  # the ego starts this far along the road (room for traffic behind it)


@dataclass(frozen=True)
class ScenarioConfig:
    """What to generate. ``density`` scales the number of actors (1.0: a busy city street).
    ``traffic`` False leaves out everything that moves (vehicles, pedestrians, crossing
    traffic): a static world of parked vehicles and road works, whose lidar sweeps de-skewed
    with the ego's poses match a camera image exactly (a calibration control)."""

    seed: int = 0
    duration_s: float = 20.0
    layout: str = "mixed"
    density: float = 1.0
    traffic: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise SimConfigError(f"seed must be an integer >= 0, got {self.seed!r}")
        if not (np.isfinite(self.duration_s) and 0 < self.duration_s <= 3600):
            raise SimConfigError(f"duration must be in (0, 3600] s, got {self.duration_s!r}")
        if self.layout not in LAYOUTS:
            raise SimConfigError(f"layout must be one of {', '.join(LAYOUTS)}, got {self.layout!r}")
        if not (np.isfinite(self.density) and 0 <= self.density <= 5):
            raise SimConfigError(f"density must be in [0, 5], got {self.density!r}")
        if not isinstance(self.traffic, bool):
            raise SimConfigError(f"traffic must be true or false, got {self.traffic!r}")


@dataclass(frozen=True)
class Scenario:
    config: ScenarioConfig
    world: World
    ego: EgoMotion
    actors: ActorSet
    actor_template: Mesh


def build_scenario(config: ScenarioConfig) -> Scenario:
    rng = np.random.default_rng(config.seed)
    mean_speed = rng.uniform(7.0, 10.0)
    amplitude = rng.uniform(0.5, 2.0)
    length = START_S + (mean_speed + amplitude) * config.duration_s + 150.0
    world = build_world(config.layout, length, rng)
    ego = EgoMotion(
        centerline=world.centerline,
        s0=START_S,
        d=world.profile.lane_offset(0, +1),
        mean_speed=mean_speed,
        amplitude=amplitude,
        period=rng.uniform(8.0, 16.0),
        phase=rng.uniform(0, 2 * np.pi),
    )
    builder = ActorBuilder(rng)
    # this order draws from rng as worlds with traffic always have, so their shards stay the same
    if config.traffic:
        _traffic(builder, world, ego, config, rng)
    _parked_and_works(builder, world, config, rng)
    if config.traffic:
        _pedestrians(builder, world, ego, config, rng)
        _crossing_traffic(builder, world, config, rng)
    actors = builder.build()
    return Scenario(config, world, ego, actors, actor_mesh_template(actors))


def _count(rate_per_100m: float, length: float, config: ScenarioConfig, rng: np.random.Generator) -> int:
    return int(rng.poisson(rate_per_100m * config.density * length / 100.0))


def _spaced(rng: np.random.Generator, low: float, high: float, n: int, gap: float) -> list[float]:
    """Up to n positions in [low, high] at least ``gap`` apart."""
    chosen: list[float] = []
    for value in rng.uniform(low, high, 4 * n):
        if len(chosen) == n:
            break
        if all(abs(value - c) >= gap for c in chosen):
            chosen.append(float(value))
    return sorted(chosen)


def _traffic(
    builder: ActorBuilder, world: World, ego: EgoMotion, config: ScenarioConfig, rng: np.random.Generator
) -> None:
    profile, road_length = world.profile, world.centerline.length
    v_max = ego.mean_speed + ego.amplitude
    v_min = ego.mean_speed - ego.amplitude
    classes = ["car"] * 12 + ["truck"] * 2 + ["bus", "motorcycle", "bicycle", "construction_vehicle"]
    for direction in (+1, -1):
        for lane in range(profile.lanes_per_direction):
            d = profile.lane_offset(lane, direction)
            speed = rng.uniform(6.0, 13.0)
            if direction == +1 and lane == 0:
                # The ego's lane: faster traffic starts ahead, slower traffic behind.
                for sign, lane_speed in (
                    (+1, v_max + rng.uniform(1.5, 3.0)),
                    (-1, max(1.0, v_min - rng.uniform(2.0, 3.5))),
                ):
                    n = _count(2.0, 150.0, config, rng)
                    low, high = (START_S + 25.0, START_S + 160.0) if sign > 0 else (START_S - 60.0, START_S - 15.0)
                    for s0 in _spaced(rng, low, high, n, 18.0):
                        builder.lane(str(rng.choice(classes[:14])), s0, lane_speed, d)
                continue
            span = road_length + speed * config.duration_s
            n = _count(2.5, span, config, rng)
            low = -speed * config.duration_s if direction == +1 else 0.0
            high = road_length if direction == +1 else road_length + speed * config.duration_s
            for s0 in _spaced(rng, low, high, n, 20.0):
                builder.lane(str(rng.choice(classes)), s0, direction * speed, d)


def _parked_and_works(builder: ActorBuilder, world: World, config: ScenarioConfig, rng: np.random.Generator) -> None:
    profile, centerline = world.profile, world.centerline
    clear = profile.crossing_half_width + 8.0
    busy = [c.s for c in world.crossings]

    def free(s: float, half: float) -> bool:
        return all(abs(s - c) > clear + half for c in busy)

    for side in (-1.0, 1.0):
        d = side * profile.parking_center
        n = _count(5.0, centerline.length, config, rng)
        for s in _spaced(rng, 5.0, centerline.length - 5.0, n, 7.5):
            name = str(rng.choice(["car"] * 8 + ["truck", "trailer"]))
            if not free(s, 7.0):
                continue
            xy = centerline.offset(np.array([s]), d)[0]
            _, heading, _ = centerline.at(np.array([s]))
            builder.static(name, xy, float(heading[0]) + (0.0 if side < 0 else np.pi))
    # Road works: a construction vehicle behind cones and barriers in a parking lane.
    for _ in range(_count(0.4, centerline.length, config, rng)):
        s = float(rng.uniform(20.0, centerline.length - 30.0))
        side = float(rng.choice([-1.0, 1.0]))
        if not free(s, 20.0):
            continue
        _, heading, _ = centerline.at(np.array([s]))
        yaw = float(heading[0])
        builder.static("construction_vehicle", centerline.offset(np.array([s]), side * profile.parking_center)[0], yaw)
        for k in range(6):
            cone_s = np.array([s - 10.0 + 3.5 * k])
            builder.static("traffic_cone", centerline.offset(cone_s, side * (profile.driving_half_width + 0.4))[0], 0.0)
        for k in range(2):
            b_s = np.array([s - 6.0 + 12.0 * k])
            builder.static("barrier", centerline.offset(b_s, side * (profile.parking_center + 0.3))[0], yaw + np.pi / 2)


def _pedestrians(
    builder: ActorBuilder, world: World, ego: EgoMotion, config: ScenarioConfig, rng: np.random.Generator
) -> None:
    profile, centerline = world.profile, world.centerline
    walk = profile.half_width + profile.sidewalk_width / 2
    for side in (-1.0, 1.0):
        n = _count(6.0, centerline.length, config, rng)
        for s0 in _spaced(rng, 0.0, centerline.length, n, 4.0):
            d = side * (walk + rng.uniform(-0.8, 0.8))
            if rng.random() < 0.25:
                builder.static("pedestrian", centerline.offset(np.array([s0]), d)[0], float(rng.uniform(-np.pi, np.pi)))
            else:
                builder.lane("pedestrian", s0, float(rng.choice([-1.0, 1.0]) * rng.uniform(1.0, 1.6)), d)
        n = _count(1.0, centerline.length, config, rng)
        for s0 in _spaced(rng, 0.0, centerline.length, n, 10.0):
            builder.lane("bicycle", s0, float(rng.uniform(3.0, 5.0)), side * (walk - 0.6))
    # Crossing the main road at the crosswalks, while the ego is far away.
    for crossing in world.crossings:
        for offset in (-1.0, 1.0):
            s = crossing.s + offset * (profile.crossing_half_width + 3.5)
            arrive = ego.time_at(s)
            for _ in range(int(rng.poisson(2.0 * config.density))):
                speed = rng.uniform(1.0, 1.5)
                width = 2 * (profile.half_width + 1.0)
                start_side = float(rng.choice([-1.0, 1.0]))
                start = centerline.offset(np.array([s + rng.uniform(-1.0, 1.0)]), start_side * (width / 2))[0]
                _, heading, _ = centerline.at(np.array([s]))
                direction = float(heading[0]) - start_side * np.pi / 2
                duration = width / speed
                # Start early enough to be off the road when the ego arrives, or after it passed.
                t0 = (
                    float(arrive - duration - rng.uniform(3.0, 10.0))
                    if rng.random() < 0.5
                    else float(arrive + rng.uniform(2.0, 6.0))
                )
                builder.line("pedestrian", start, direction, speed, t0, t0 + duration)


def _crossing_traffic(builder: ActorBuilder, world: World, config: ScenarioConfig, rng: np.random.Generator) -> None:
    profile = world.profile
    for crossing in world.crossings:
        u = crossing.direction
        v = np.array([-u[1], u[0]])
        for sign in (-1.0, 1.0):
            # Waiting at the stop line, on the right-hand lane approaching the intersection.
            heading = crossing.heading + (np.pi if sign > 0 else 0.0)
            lane = sign * v * profile.crossing_lane_width / 2
            for k in range(int(rng.poisson(1.5 * config.density))):
                back = profile.half_width + 4.0 + k * 7.0
                builder.static("car", crossing.center + sign * back * u + lane, heading)
            # Leaving the intersection on the other lane.
            if rng.random() < 0.7 * min(config.density, 1.0):
                start = crossing.center + sign * (profile.half_width + 2.0) * u - lane
                builder.line(
                    "car",
                    start,
                    crossing.heading + (0.0 if sign > 0 else np.pi),
                    rng.uniform(5.0, 9.0),
                    float(rng.uniform(0.0, config.duration_s)),
                    1e9,
                )
