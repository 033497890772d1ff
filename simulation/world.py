"""The static world: road network, ground materials, buildings, poles and trees.

Everything is generated from one ``numpy.random.Generator`` so a seed fixes the world.
Frame: world ("odom"), metres, flat ground z = 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from numpy.typing import NDArray

from simulation.ground import GroundMap, paint_ground
from simulation.materials import COLOR_RGB, Material
from simulation.meshes import Mesh, concatenate, primitive
from simulation.road import Centerline, Crossing, RoadProfile, build_road

GROUND_MARGIN_M = 400.0


@dataclass(frozen=True)
class World:
    """The static part of a simulated scene.

    Attributes:
        centerline, crossings, profile: the road network (simulation.road).
        ground: materials of the ground plane z = 0.
        static_mesh: buildings, poles, trees and the ground plane, world frame.
    """

    centerline: Centerline
    crossings: tuple[Crossing, ...]
    profile: RoadProfile
    ground: GroundMap
    static_mesh: Mesh


def build_world(layout: str, length: float, rng: np.random.Generator, profile: RoadProfile | None = None) -> World:
    """Road of at least ``length`` metres in ``layout`` with its roadside objects."""
    profile = profile or RoadProfile()
    centerline, crossings = build_road(layout, length, rng)
    ground = paint_ground(centerline, crossings, profile)
    keep_out = _keep_out(centerline, crossings, profile)
    meshes = [_ground_plane(ground)]
    meshes += _buildings(centerline, profile, keep_out, rng)
    meshes += _poles_and_trees(centerline, crossings, profile, rng)
    return World(centerline, crossings, profile, ground, concatenate(meshes))


def _keep_out(centerline: Centerline, crossings: tuple[Crossing, ...], profile: RoadProfile) -> shapely.Geometry:
    """Area where no building may stand: roads and sidewalks plus a margin."""
    width = profile.half_width + profile.sidewalk_width + 1.0
    s = np.arange(0.0, centerline.length + 1e-9, 2.0)
    parts = [shapely.Polygon(np.concatenate([centerline.offset(s, width), centerline.offset(s[::-1], -width)]))]
    for crossing in crossings:
        ends = crossing.center + np.outer([-1.0, 1.0], crossing.direction) * (crossing.half_length + 50.0)
        parts.append(shapely.LineString(ends).buffer(profile.crossing_half_width + 5.0, cap_style="flat"))
    return shapely.union_all([p.buffer(0) for p in parts])


def _ground_plane(ground: GroundMap) -> Mesh:
    low = ground.origin - GROUND_MARGIN_M
    high = ground.origin + np.array(ground.material.shape[::-1]) * ground.resolution + GROUND_MARGIN_M
    vertices = np.array([[low[0], low[1], 0], [high[0], low[1], 0], [high[0], high[1], 0], [low[0], high[1], 0]])
    return Mesh(
        vertices=vertices.astype(np.float32),
        triangles=np.array([[0, 1, 2], [0, 2, 3]], dtype=np.uint32),
        material=np.full(2, Material.GRASS, dtype=np.uint8),  # per-hit material comes from the ground map
        color=np.tile(COLOR_RGB[Material.GRASS], (2, 1)),
        part=np.full(2, -1, dtype=np.int32),
    )


def _buildings(
    centerline: Centerline, profile: RoadProfile, keep_out: shapely.Geometry, rng: np.random.Generator
) -> list[Mesh]:
    meshes = []
    base = profile.half_width + profile.sidewalk_width
    for side in (-1.0, 1.0):
        s = rng.uniform(-20.0, 5.0)
        while s < centerline.length + 20.0:
            length = rng.uniform(12.0, 35.0)
            depth = rng.uniform(10.0, 22.0)
            setback = base + rng.uniform(1.5, 6.0)
            mid = np.array([s + length / 2])
            center = centerline.offset(mid, side * (setback + depth / 2))[0]
            _, heading, _ = centerline.at(mid)
            yaw = float(heading[0])
            footprint = shapely.Polygon(_footprint(center, yaw, length, depth))
            if not footprint.intersects(keep_out):
                tint = rng.uniform(0.7, 1.25) * COLOR_RGB[Material.BUILDING] * rng.uniform(0.85, 1.15, 3)
                height = rng.uniform(5.0, 25.0)
                meshes.append(
                    primitive(
                        "box", (length, depth, height), (*center, 0.0), yaw, Material.BUILDING, np.clip(tint, 0, 1)
                    )
                )
            s += length + rng.uniform(2.0, 15.0)
    return meshes


def _footprint(center: NDArray[np.float64], yaw: float, length: float, width: float) -> NDArray[np.float64]:
    u = np.array([np.cos(yaw), np.sin(yaw)])
    v = np.array([-u[1], u[0]])
    return np.array([center + a * length / 2 * u + b * width / 2 * v for a, b in ((1, 1), (-1, 1), (-1, -1), (1, -1))])


def _poles_and_trees(
    centerline: Centerline, crossings: tuple[Crossing, ...], profile: RoadProfile, rng: np.random.Generator
) -> list[Mesh]:
    meshes = []
    clear = profile.crossing_half_width + 8.0

    def free(s: float) -> bool:
        return all(abs(s - c.s) > clear for c in crossings)

    for side in (-1.0, 1.0):
        s = rng.uniform(0.0, 20.0)
        while s < centerline.length:
            if free(s):
                xy = centerline.offset(np.array([s]), side * (profile.half_width + 0.5))[0]
                height = rng.uniform(6.5, 9.0)
                meshes.append(
                    primitive(
                        "cylinder", (0.25, 0.25, height), (*xy, 0.0), 0.0, Material.POLE, COLOR_RGB[Material.POLE]
                    )
                )
            s += rng.uniform(25.0, 40.0)
        s = rng.uniform(0.0, 15.0)
        while s < centerline.length:
            if free(s):
                xy = centerline.offset(np.array([s]), side * (profile.half_width + profile.sidewalk_width - 0.9))[0]
                trunk = rng.uniform(2.0, 3.0)
                crown = rng.uniform(2.5, 4.5)
                green = np.clip(COLOR_RGB[Material.FOLIAGE] * rng.uniform(0.75, 1.3, 3), 0, 1)
                meshes.append(
                    primitive("cylinder", (0.3, 0.3, trunk), (*xy, 0.0), 0.0, Material.TRUNK, COLOR_RGB[Material.TRUNK])
                )
                meshes.append(
                    primitive("sphere", (crown, crown, crown * 0.9), (*xy, trunk - 0.3), 0.0, Material.FOLIAGE, green)
                )
            s += rng.uniform(10.0, 30.0)
    return meshes
