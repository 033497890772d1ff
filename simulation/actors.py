"""Actors: vehicles, pedestrians, cyclists, barriers and cones with sizes and motions.

Every actor has a nuScenes detection class, a box size (length along its heading, width,
height; metres), a colour, and one motion evaluated in closed form at any time:

- ``lane``: follows the main road at a constant speed and lateral offset (traffic, walkers
  on the sidewalk),
- ``line``: walks or drives along a straight segment between two times and stands before
  and after (crossing pedestrians, vehicles leaving an intersection),
- ``static``: parked vehicles, standing pedestrians, barriers, cones.

:class:`ActorSet` holds all of them as arrays so a state query at time t is a few numpy
operations for every actor at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray

from perception.classes import CLASSES
from simulation.materials import COLOR_RGB, Material
from simulation.meshes import Mesh, concatenate, primitive
from simulation.road import Centerline

#: Mean box size (length, width, height) per class, metres (close to nuScenes statistics).
CLASS_SIZES: Final[dict[str, tuple[float, float, float]]] = {
    "car": (4.6, 1.95, 1.7),
    "truck": (7.0, 2.5, 2.9),
    "construction_vehicle": (6.5, 2.8, 3.2),
    "bus": (11.5, 2.9, 3.4),
    "trailer": (11.0, 2.8, 3.6),
    "barrier": (2.0, 0.5, 1.0),
    "motorcycle": (2.1, 0.8, 1.5),
    "bicycle": (1.8, 0.6, 1.7),
    "pedestrian": (0.7, 0.65, 1.75),
    "traffic_cone": (0.4, 0.4, 0.75),
}
VEHICLE_COLORS: Final = np.array(
    [
        [0.8, 0.1, 0.1],
        [0.1, 0.2, 0.6],
        [0.9, 0.9, 0.9],
        [0.1, 0.1, 0.1],
        [0.5, 0.5, 0.55],
        [0.2, 0.45, 0.25],
        [0.85, 0.75, 0.2],
    ],
    dtype=np.float32,
)
KIND_LANE, KIND_LINE, KIND_STATIC = 0, 1, 2


@dataclass(frozen=True)
class ActorStates:
    """Every actor at one instant, world frame.

    Attributes:
        centers: (A, 3) float64 box geometric centre, metres.
        yaws: (A,) float64 heading about +z, radians.
        velocities: (A, 2) float64 ground velocity, m/s.
    """

    centers: NDArray[np.float64]
    yaws: NDArray[np.float64]
    velocities: NDArray[np.float64]


@dataclass(frozen=True)
class ActorSet:
    """All actors of a scene, as arrays (A actors).

    Attributes:
        labels: (A,) int64 index into perception.classes.CLASSES.
        sizes: (A, 3) float64 length, width, height, metres.
        colors: (A, 3) float32 RGB 0..1 of the body.
        kinds: (A,) int8 KIND_LANE | KIND_LINE | KIND_STATIC.
        params: (A, 8) float64 motion parameters:
            lane:   [s0, speed (signed, m/s along s), d, 0, 0, 0, 0, 0]
            line:   [x0, y0, heading, speed, t_start, t_stop, 0, 0]
            static: [x, y, yaw, 0, 0, 0, 0, 0]
    """

    labels: NDArray[np.int64]
    sizes: NDArray[np.float64]
    colors: NDArray[np.float32]
    kinds: NDArray[np.int8]
    params: NDArray[np.float64]

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def track_ids(self) -> NDArray[np.int64]:
        """(A,) int64 stable ids (1-based actor index)."""
        return np.arange(1, len(self) + 1, dtype=np.int64)

    def states(self, centerline: Centerline, t: float) -> ActorStates:
        """Positions, headings and velocities of every actor at time ``t`` seconds."""
        n = len(self)
        xy = np.zeros((n, 2))
        yaw = np.zeros(n)
        vel = np.zeros((n, 2))
        p = self.params

        lane = self.kinds == KIND_LANE
        if lane.any():
            s = p[lane, 0] + p[lane, 1] * t
            speed, d = p[lane, 1], p[lane, 2]
            road_xy, heading, curvature = centerline.at(s)
            normal = np.stack([-np.sin(heading), np.cos(heading)], axis=1)
            tangent = np.stack([np.cos(heading), np.sin(heading)], axis=1)
            xy[lane] = road_xy + d[:, None] * normal
            yaw[lane] = np.where(speed >= 0, heading, heading + np.pi)
            vel[lane] = (speed * (1.0 - curvature * d))[:, None] * tangent

        line = self.kinds == KIND_LINE
        if line.any():
            x0, y0, heading, speed, t0, t1 = (p[line, i] for i in range(6))
            travelled = speed * (np.clip(t, t0, t1) - t0)
            direction = np.stack([np.cos(heading), np.sin(heading)], axis=1)
            xy[line] = np.stack([x0, y0], axis=1) + travelled[:, None] * direction
            yaw[line] = heading
            moving = (t >= t0) & (t < t1)
            vel[line] = (np.where(moving, speed, 0.0))[:, None] * direction

        static = self.kinds == KIND_STATIC
        xy[static] = p[static, :2]
        yaw[static] = p[static, 2]

        centers = np.concatenate([xy, self.sizes[:, 2:3] / 2], axis=1)
        return ActorStates(centers=centers, yaws=np.mod(yaw + np.pi, 2 * np.pi) - np.pi, velocities=vel)


class ActorBuilder:
    """Collects actors one by one, then freezes them into an :class:`ActorSet`."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self._rows: list[tuple[int, NDArray[np.float64], NDArray[np.float32], int, NDArray[np.float64]]] = []

    def _add(self, class_name: str, kind: int, params: list[float], color: NDArray[np.float32] | None) -> None:
        label = CLASSES.index(class_name)
        size = np.array(CLASS_SIZES[class_name]) * self.rng.uniform(0.9, 1.1, 3)
        if color is None:
            color = VEHICLE_COLORS[self.rng.integers(len(VEHICLE_COLORS))]
        padded = np.zeros(8)
        padded[: len(params)] = params
        self._rows.append((label, size, np.asarray(color, dtype=np.float32), kind, padded))

    def lane(
        self, class_name: str, s0: float, speed: float, d: float, color: NDArray[np.float32] | None = None
    ) -> None:
        self._add(class_name, KIND_LANE, [s0, speed, d], color)

    def line(
        self, class_name: str, start: NDArray[np.float64], heading: float, speed: float, t_start: float, t_stop: float
    ) -> None:
        self._add(class_name, KIND_LINE, [start[0], start[1], heading, speed, t_start, t_stop], None)

    def static(
        self, class_name: str, xy: NDArray[np.float64], yaw: float, color: NDArray[np.float32] | None = None
    ) -> None:
        self._add(class_name, KIND_STATIC, [xy[0], xy[1], yaw], color)

    def build(self) -> ActorSet:
        if not self._rows:
            return ActorSet(
                np.zeros(0, np.int64),
                np.zeros((0, 3)),
                np.zeros((0, 3), np.float32),
                np.zeros(0, np.int8),
                np.zeros((0, 8)),
            )
        labels, sizes, colors, kinds, params = zip(*self._rows, strict=True)
        return ActorSet(
            labels=np.array(labels, dtype=np.int64),
            sizes=np.stack(sizes),
            colors=np.stack(colors),
            kinds=np.array(kinds, dtype=np.int8),
            params=np.stack(params),
        )


def actor_mesh_template(actors: ActorSet) -> Mesh:
    """Each actor's shape in its own box frame (origin at the box's bottom centre, x along its
    heading); ``part`` holds the actor index. Place with :func:`place_actor_mesh`."""
    parts = []
    for index in range(len(actors)):
        name = CLASSES[int(actors.labels[index])]
        length, width, height = actors.sizes[index]
        color = actors.colors[index]
        parts += [
            primitive(kind, size, pos, 0.0, material, col, part=index)
            for kind, size, pos, material, col in _shape(name, length, width, height, color)
        ]
    return concatenate(parts)


def _shape(
    name: str, length: float, width: float, height: float, color: NDArray[np.float32]
) -> list[tuple[str, tuple[float, float, float], tuple[float, float, float], int, NDArray[np.float32]]]:
    """Primitives (kind, size, base position, material, colour) filling the actor's box."""
    vehicle = Material.VEHICLE
    glass = np.array([0.12, 0.14, 0.18], dtype=np.float32)
    dark = np.array([0.08, 0.08, 0.08], dtype=np.float32)
    if name == "car":
        return [
            ("box", (length, width, 0.5 * height), (0.0, 0.0, 0.15 * height), vehicle, color),
            ("box", (0.55 * length, 0.92 * width, 0.35 * height), (-0.05 * length, 0.0, 0.65 * height), vehicle, glass),
            ("box", (0.9 * length, 0.95 * width, 0.15 * height), (0.0, 0.0, 0.0), vehicle, dark),
        ]
    if name in ("truck", "construction_vehicle"):
        cab = 0.28 * length
        return [
            ("box", (cab, width, 0.85 * height), ((length - cab) / 2, 0.0, 0.15 * height), vehicle, color),
            (
                "box",
                (length - cab - 0.2, width, 0.82 * height),
                (-cab / 2 - 0.1, 0.0, 0.18 * height),
                vehicle,
                np.array([0.75, 0.7, 0.2], np.float32)
                if name == "construction_vehicle"
                else np.array([0.85, 0.85, 0.85], np.float32),
            ),
            ("box", (0.9 * length, 0.9 * width, 0.18 * height), (0.0, 0.0, 0.0), vehicle, dark),
        ]
    if name in ("bus", "trailer"):
        return [
            ("box", (length, width, 0.88 * height), (0.0, 0.0, 0.12 * height), vehicle, color),
            ("box", (0.9 * length, 0.9 * width, 0.12 * height), (0.0, 0.0, 0.0), vehicle, dark),
        ]
    if name == "pedestrian":
        return [
            ("box", (0.3 * length, 0.6 * width, 0.47 * height), (0.0, 0.0, 0.0), Material.PERSON, dark),
            ("box", (0.5 * length, width, 0.38 * height), (0.0, 0.0, 0.47 * height), Material.PERSON, color),
            (
                "box",
                (0.35 * length, 0.35 * width, 0.15 * height),
                (0.0, 0.0, 0.85 * height),
                Material.PERSON,
                np.array([0.75, 0.6, 0.5], np.float32),
            ),
        ]
    if name in ("bicycle", "motorcycle"):
        return [
            ("box", (length, 0.25 * width, 0.55 * height), (0.0, 0.0, 0.0), vehicle, dark),
            ("box", (0.3 * length, width, 0.45 * height), (-0.05 * length, 0.0, 0.55 * height), Material.PERSON, color),
        ]
    if name == "traffic_cone":
        return [("cone", (length, width, height), (0.0, 0.0, 0.0), Material.CONE, COLOR_RGB[Material.CONE])]
    if name == "barrier":
        return [("box", (length, width, height), (0.0, 0.0, 0.0), Material.BARRIER, COLOR_RGB[Material.BARRIER])]
    raise ValueError(f"no shape for class {name!r}")


def place_actor_mesh(template: Mesh, states: ActorStates, keep: NDArray[np.bool_] | None = None) -> Mesh:
    """The template's triangles moved to the actors' poses (world frame); only the actors
    where ``keep`` (A,) is True when given."""
    if keep is not None:
        triangles = keep[template.part]
        template = Mesh(
            template.vertices,
            template.triangles[triangles],
            template.material[triangles],
            template.color[triangles],
            template.part[triangles],
        )
    if template.n_triangles == 0:
        return template
    # Vertex -> actor: every vertex belongs to the actor of the triangles that use it.
    owner = np.zeros(template.vertices.shape[0], dtype=np.int64)
    owner[template.triangles.reshape(-1)] = np.repeat(template.part, 3)
    c, s = np.cos(states.yaws[owner]), np.sin(states.yaws[owner])
    v = template.vertices.astype(np.float64)
    base = states.centers[owner] - np.array([0.0, 0.0, 1.0]) * states.centers[owner, 2:3]
    placed = np.stack([c * v[:, 0] - s * v[:, 1], s * v[:, 0] + c * v[:, 1], v[:, 2]], axis=1) + base
    return Mesh(placed.astype(np.float32), template.triangles, template.material, template.color, template.part)
