"""Ray casting into the scene at a given time (numba, :func:`simulation.kernels.cast_scene`).

The scene is the ground plane z = 0 (a rectangle under the ground map; each hit takes its
ground cell's material), the static structures and the actors. Every structure and actor is
an object with a pose (yaw and position) and primitives in its own frame, taken from the
scenario's meshes once: a box primitive (buildings, vehicle bodies, pedestrians) is hit
exactly by the slab method, any other (cylinders, spheres, cones) triangle by triangle. An
actor's shape never changes, so placing the actors at a time is only their poses: they are
placed at the centre of 5 ms time slots (cached), and every sensor sees them where they are
at its own capture time.

The rays of one cast share (nearly) one origin: the objects are binned by the azimuth range
they cover from it, and a ray tests only its bin's objects whose elevation range it is in,
nearest first, stopping at the first that starts beyond its nearest hit (the ground bounds
most rays). Distances are computed in float64 and returned as float32.
"""

from __future__ import annotations

import itertools
import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from simulation import kernels
from simulation.actors import ActorStates
from simulation.errors import SimConfigError
from simulation.materials import COLOR_RGB
from simulation.meshes import Mesh
from simulation.scenario import Scenario

TIME_SLOT_S = 0.005  # actors are placed at the centre of 5 ms slots (< 4 cm error at 15 m/s)
CULL_RADIUS_M = 150.0  # actors farther than this from the ego are left out of the scene
_CACHE_SLOTS = 48  # > one lidar period of slots: every sensor of a frame reuses them
_EGO_BLOCK = 64  # ego positions are evaluated for this many slots at a time
_BOX_TOLERANCE_M = 2e-3  # a primitive whose vertices are this close to its box's corners is that box
_CLUSTER_MIN_TRIANGLES = 16  # primitives with more triangles are split into (up to 8) clusters


@dataclass(frozen=True)
class Hits:
    """Where N rays hit, world frame.

    Attributes:
        distance: (N,) float32 metres along the (unit) ray, inf where nothing was hit.
        normal: (N, 3) float32 unit surface normal facing the ray origin (0 on misses).
        material: (N,) uint8 simulation.materials.Material (NONE on misses).
        color: (N, 3) float32 RGB 0..1 base colour of the surface (sky colour on misses).
        actor: (N,) int32 actor index, -1 for the static world and misses.
    """

    distance: NDArray[np.float32]
    normal: NDArray[np.float32]
    material: NDArray[np.uint8]
    color: NDArray[np.float32]
    actor: NDArray[np.int32]

    @property
    def hit(self) -> NDArray[np.bool_]:
        return np.isfinite(self.distance)


class _Objects(NamedTuple):
    """Object, primitive, cluster and triangle tables (see kernels.cast_scene): static
    structures first, then the actors in actor order."""

    box_low: NDArray[np.float64]  # (n, 3) per object, in its frame
    box_high: NDArray[np.float64]
    prim_start: NDArray[np.int64]  # (n + 1,)
    prim_low: NDArray[np.float64]  # (P, 3)
    prim_high: NDArray[np.float64]
    prim_box: NDArray[np.bool_]  # (P,)
    prim_attr: NDArray[np.int64]  # (P,) triangle whose material, colour and actor a hit takes
    prim_cluster: NDArray[np.int64]  # (P + 1,)
    cluster_low: NDArray[np.float64]  # (C, 3)
    cluster_high: NDArray[np.float64]
    cluster_tri: NDArray[np.int64]  # (C + 1,)
    v0: NDArray[np.float64]  # (T, 3) first vertex, edges and unit normal, object frame
    e1: NDArray[np.float64]
    e2: NDArray[np.float64]
    normal: NDArray[np.float64]
    material: NDArray[np.uint8]  # (T,)
    color: NDArray[np.float32]  # (T, 3)
    part: NDArray[np.int32]  # (T,) actor index, -1 for static structures


class _ObjectBuilder:
    """Collects objects (a frame and primitives in it) into :class:`_Objects`."""

    def __init__(self) -> None:
        self.box: list[tuple[NDArray[np.float64], NDArray[np.float64]]] = []
        self.prim_start = [0]
        self.prims: list[tuple[NDArray[np.float64], NDArray[np.float64], bool, int]] = []
        self.prim_cluster = [0]
        self.clusters: list[tuple[NDArray[np.float64], NDArray[np.float64]]] = []
        self.cluster_tri = [0]
        self.triangles: list[NDArray[np.float64]] = []  # (k, 3, 3) corners, object frame
        self.material: list[NDArray[np.uint8]] = []
        self.color: list[NDArray[np.float32]] = []
        self.part: list[NDArray[np.int32]] = []
        self.n_triangles = 0

    def add(self, prims: list[tuple[NDArray[np.float64], Mesh, NDArray[np.intp]]]) -> None:
        """One object: per primitive its triangles' corners (k, 3, 3) in the object's frame
        and their rows in ``mesh`` (material, colour, part)."""
        lows, highs = [], []
        for corners, mesh, rows in prims:
            points = corners.reshape(-1, 3)
            low, high = points.min(axis=0), points.max(axis=0)
            lows.append(low)
            highs.append(high)
            on_corner = (np.abs(points - low) <= _BOX_TOLERANCE_M) | (np.abs(points - high) <= _BOX_TOLERANCE_M)
            is_box = len(rows) == 12 and bool(on_corner.all()) and bool(np.all(high - low > _BOX_TOLERANCE_M))
            order = np.arange(len(rows))
            if len(rows) > _CLUSTER_MIN_TRIANGLES and not is_box:
                centre = corners.mean(axis=1)
                octant = ((centre > (low + high) / 2) * np.array([1, 2, 4])).sum(axis=1)
                groups = [order[octant == k] for k in range(8) if np.any(octant == k)]
            else:
                groups = [order]
            first = self.n_triangles
            for group in groups:  # (a box's one cluster is never tested: its slab test is exact)
                cluster = corners[group].reshape(-1, 3)
                self.clusters.append((cluster.min(axis=0), cluster.max(axis=0)))
                self.cluster_tri.append(self.cluster_tri[-1] + group.size)
            order = np.concatenate(groups)
            self.triangles.append(corners[order])
            self.material.append(mesh.material[rows[order]])
            self.color.append(mesh.color[rows[order]])
            self.part.append(mesh.part[rows[order]])
            self.n_triangles += len(rows)
            self.prims.append((low, high, is_box, first))
            self.prim_cluster.append(len(self.clusters))
        self.box.append((np.min(lows, axis=0), np.max(highs, axis=0)) if lows else (np.zeros(3), np.full(3, -1.0)))
        self.prim_start.append(len(self.prims))

    def build(self) -> _Objects:
        corners = np.concatenate(self.triangles) if self.triangles else np.zeros((0, 3, 3))
        v0, e1, e2 = corners[:, 0], corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]
        normal = np.cross(e1, e2)
        length = np.linalg.norm(normal, axis=1, keepdims=True)
        normal = np.divide(normal, length, out=np.zeros_like(normal), where=length > 0)

        def rows(values: list[NDArray[np.float64]], width: int = 3) -> NDArray[np.float64]:
            return np.array(values, dtype=np.float64).reshape(-1, width)

        return _Objects(
            rows([b[0] for b in self.box]),
            rows([b[1] for b in self.box]),
            np.array(self.prim_start, dtype=np.int64),
            rows([p[0] for p in self.prims]),
            rows([p[1] for p in self.prims]),
            np.array([p[2] for p in self.prims], dtype=np.bool_),
            np.array([p[3] for p in self.prims], dtype=np.int64),
            np.array(self.prim_cluster, dtype=np.int64),
            rows([c[0] for c in self.clusters]),
            rows([c[1] for c in self.clusters]),
            np.array(self.cluster_tri, dtype=np.int64),
            np.ascontiguousarray(v0),
            np.ascontiguousarray(e1),
            np.ascontiguousarray(e2),
            np.ascontiguousarray(normal),
            np.concatenate(self.material).astype(np.uint8) if self.material else np.zeros(0, np.uint8),
            np.concatenate(self.color).astype(np.float32).reshape(-1, 3),
            np.concatenate(self.part).astype(np.int32) if self.part else np.zeros(0, np.int32),
        )


def _primitive_rows(mesh: Mesh, rows: NDArray[np.intp]) -> list[NDArray[np.intp]]:
    """``rows`` (triangle indices, in mesh order) split into primitives: a primitive's
    triangles are consecutive and use a vertex block of their own (meshes.concatenate)."""
    prims: list[list[int]] = []
    seen = -1
    for row in rows.tolist():
        vertices = mesh.triangles[row]
        if not prims or int(vertices.min()) > seen:
            prims.append([])
        prims[-1].append(row)
        seen = max(seen, int(vertices.max()))
    return [np.array(p, dtype=np.intp) for p in prims]


def _static_frame(corners: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
    """(yaw, xy origin) of a static primitive's frame: its box's axes when it is a box
    rotated about z (a building), else the world axes; the origin at its centre."""
    points = corners.reshape(-1, 3)
    centre = (points.min(axis=0) + points.max(axis=0)) / 2
    e1, e2 = corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]
    normal = np.cross(e1, e2)
    side = np.flatnonzero((np.abs(normal[:, 2]) < 1e-9 * np.linalg.norm(normal, axis=1)) & normal[:, :2].any(axis=1))
    yaw = math.atan2(normal[side[0], 1], normal[side[0], 0]) if len(corners) == 12 and side.size else 0.0
    return yaw, centre[:2]


def _to_frame(corners: NDArray[np.float64], yaw: float, origin: NDArray[np.float64]) -> NDArray[np.float64]:
    c, s = math.cos(yaw), math.sin(yaw)
    x, y = corners[..., 0] - origin[0], corners[..., 1] - origin[1]
    return np.stack([c * x + s * y, -s * x + c * y, corners[..., 2]], axis=-1)


def _ground_box(mesh: Mesh) -> NDArray[np.float64]:
    """(x0, y0, x1, y1) of the ground plane: the first two triangles of the static mesh, an
    axis-aligned rectangle at z = 0 (world.build_world)."""
    corners = mesh.vertices[mesh.triangles[:2]].reshape(-1, 3).astype(np.float64)
    low, high = corners.min(axis=0), corners.max(axis=0)
    on_corner = np.all((corners[:, :2] == low[:2]) | (corners[:, :2] == high[:2]), axis=1)
    if mesh.n_triangles < 2 or np.any(corners[:, 2] != 0.0) or not on_corner.all():
        raise SimConfigError("the static mesh must start with the ground rectangle at z = 0 (two triangles)")
    return np.array([low[0], low[1], high[0], high[1]])


class SceneCaster:
    """Casts rays into one scenario at chosen times."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        static = scenario.world.static_mesh
        self._ground_box = _ground_box(static)
        ground = scenario.world.ground
        self._ground = (
            np.ascontiguousarray(ground.material),
            float(ground.origin[0]),
            float(ground.origin[1]),
            float(ground.resolution),
        )
        builder = _ObjectBuilder()
        static_pose = []
        triangles = static.vertices.astype(np.float64)[static.triangles.astype(np.intp)]  # (T, 3, 3)
        for rows in _primitive_rows(static, np.arange(2, static.n_triangles)):
            yaw, origin = _static_frame(triangles[rows])
            builder.add([(_to_frame(triangles[rows], yaw, origin), static, rows)])
            static_pose.append((math.cos(yaw), math.sin(yaw), origin[0], origin[1]))
        self._static_pose = np.array(static_pose, dtype=np.float64).reshape(-1, 4)
        template = scenario.actor_template
        corners = template.vertices.astype(np.float64)[template.triangles.astype(np.intp)]
        order = np.argsort(template.part, kind="stable")
        bounds = np.searchsorted(template.part[order], np.arange(len(scenario.actors) + 1))
        for a in range(len(scenario.actors)):
            rows = order[bounds[a] : bounds[a + 1]]
            builder.add([(corners[p], template, p) for p in _primitive_rows(template, rows)])
        self._objects = builder.build()
        self._slots: OrderedDict[int, tuple[NDArray[np.float64], NDArray[np.bool_]]] = OrderedDict()
        self._ego_xy: dict[int, NDArray[np.float64]] = {}

    def slot(self, t: float) -> int:
        return int(np.floor(t / TIME_SLOT_S))

    def actor_states(self, t: float) -> ActorStates:
        return self.scenario.actors.states(self.scenario.world.centerline, t)

    def _ego_at_slot(self, slot: int) -> NDArray[np.float64]:
        """(2,) ego xy at the centre of ``slot`` (evaluated for a block of slots at once)."""
        if slot not in self._ego_xy:
            if len(self._ego_xy) > 16 * _EGO_BLOCK:
                self._ego_xy.clear()
            block = np.arange(slot, slot + _EGO_BLOCK)
            xy = self.scenario.ego.poses((block + 0.5) * TIME_SLOT_S)[:, :2, 3]
            self._ego_xy.update(zip(block.tolist(), xy, strict=True))
        return self._ego_xy[slot]

    def _scene_at_slot(self, slot: int) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
        """Object poses (static structures, then the actors at the slot's centre) and which
        objects are in the scene (the actors within CULL_RADIUS_M of the ego)."""
        if slot in self._slots:
            self._slots.move_to_end(slot)
            return self._slots[slot]
        states = self.actor_states((slot + 0.5) * TIME_SLOT_S)
        near = np.hypot(*(states.centers[:, :2] - self._ego_at_slot(slot)).T) < CULL_RADIUS_M
        pose = np.concatenate([self._static_pose, kernels.actor_poses(states.centers, states.yaws)])
        keep = np.concatenate([np.ones(len(self._static_pose), dtype=bool), near])
        self._slots[slot] = (pose, keep)
        if len(self._slots) > _CACHE_SLOTS:
            self._slots.popitem(last=False)
        return pose, keep

    def cast(
        self, origins: NDArray[np.floating], directions: NDArray[np.floating], t: float | NDArray[np.float64]
    ) -> Hits:
        """Hits of rays origins (N, 3) + r * directions (N, 3) (unit), world frame, with the
        actors placed at time ``t`` seconds: one time for all rays, or (N,) per ray (rays are
        cast in groups by time slot)."""
        rays = np.empty((len(directions), 6), dtype=np.float32)
        rays[:, :3] = origins
        rays[:, 3:] = directions
        return self.cast_rays(rays, t)

    def cast_rays(self, rays: NDArray[np.float32], t: float | NDArray[np.float64]) -> Hits:
        """:meth:`cast` of rays (N, 6) float32 [origin, unit direction] (C-contiguous)."""
        n = rays.shape[0]
        out = (
            np.empty(n, dtype=np.float32),
            np.empty((n, 3), dtype=np.float32),
            np.empty(n, dtype=np.uint8),
            np.empty((n, 3), dtype=np.float32),
            np.empty(n, dtype=np.int32),
        )
        if n == 0:
            return Hits(*out)
        if np.ndim(t) == 0:
            self._cast(rays, np.arange(n), self.slot(float(t)), out)  # type: ignore[arg-type]
            return Hits(*out)
        slots = np.floor(np.broadcast_to(np.asarray(t, dtype=np.float64), (n,)) / TIME_SLOT_S).astype(np.int64)
        # Rays grouped by slot: contiguous runs after a stable sort (a lidar's are already in order).
        order = np.arange(n) if np.all(slots[1:] >= slots[:-1]) else np.argsort(slots, kind="stable")
        sorted_slots = slots[order]
        starts = np.concatenate([[0], np.flatnonzero(np.diff(sorted_slots)) + 1, [n]])
        for a, b in itertools.pairwise(starts):
            self._cast(rays, order[a:b], int(sorted_slots[a]), out)
        return Hits(*out)

    def _cast(
        self,
        rays: NDArray[np.float32],
        rows: NDArray[np.int64],
        slot: int,
        out: tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.uint8], NDArray[np.float32], NDArray[np.int32]],
    ) -> None:
        """Fills ``out`` (distance, normal, material, colour, actor) for rays[rows] with the
        actors of ``slot``."""
        kernels.cast_scene(
            rays,
            rows,
            *self._scene_at_slot(slot),
            *self._objects,
            self._ground_box,
            *self._ground,
            COLOR_RGB,
            *out,
        )
