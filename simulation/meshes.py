"""Triangle meshes with a material and a colour per triangle, built from unit primitives.

Open3D creates the unit primitives once (box, cylinder, sphere, cone); placing one is a
scale, a yaw rotation and a translation in numpy, and a whole scene is one concatenation,
which is what ``open3d.t.geometry.RaycastingScene`` takes fastest (a single geometry).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import open3d as o3d
from numpy.typing import NDArray


@dataclass(frozen=True)
class Mesh:
    """Triangles in one frame (metres).

    Attributes:
        vertices: (V, 3) float32.
        triangles: (T, 3) uint32 vertex indices.
        material: (T,) uint8 simulation.materials.Material per triangle.
        color: (T, 3) float32 RGB 0..1 per triangle.
        part: (T,) int32 owner per triangle (actor index for actors, -1 for static objects).
    """

    vertices: NDArray[np.float32]
    triangles: NDArray[np.uint32]
    material: NDArray[np.uint8]
    color: NDArray[np.float32]
    part: NDArray[np.int32]

    @property
    def n_triangles(self) -> int:
        return int(self.triangles.shape[0])


def concatenate(meshes: list[Mesh]) -> Mesh:
    """One mesh holding every triangle of ``meshes`` (indices rebased)."""
    if not meshes:
        return Mesh(
            np.zeros((0, 3), np.float32),
            np.zeros((0, 3), np.uint32),
            np.zeros(0, np.uint8),
            np.zeros((0, 3), np.float32),
            np.zeros(0, np.int32),
        )
    offsets = np.cumsum([0] + [m.vertices.shape[0] for m in meshes[:-1]])
    return Mesh(
        vertices=np.concatenate([m.vertices for m in meshes]).astype(np.float32),
        triangles=np.concatenate([m.triangles + np.uint32(o) for m, o in zip(meshes, offsets, strict=True)]),
        material=np.concatenate([m.material for m in meshes]),
        color=np.concatenate([m.color for m in meshes]).astype(np.float32),
        part=np.concatenate([m.part for m in meshes]),
    )


@cache
def _unit(kind: str) -> tuple[NDArray[np.float64], NDArray[np.uint32]]:
    """Unit primitive centred on the origin at its base: x/y in [-0.5, 0.5], z in [0, 1]."""
    if kind == "box":
        mesh = o3d.geometry.TriangleMesh.create_box(1.0, 1.0, 1.0)
        mesh.translate((-0.5, -0.5, 0.0))
    elif kind == "cylinder":
        mesh = o3d.geometry.TriangleMesh.create_cylinder(radius=0.5, height=1.0, resolution=8, split=1)
        mesh.translate((0.0, 0.0, 0.5))
    elif kind == "sphere":
        mesh = o3d.geometry.TriangleMesh.create_sphere(radius=0.5, resolution=6)
        mesh.translate((0.0, 0.0, 0.5))
    elif kind == "cone":
        mesh = o3d.geometry.TriangleMesh.create_cone(radius=0.5, height=1.0, resolution=10, split=1)
    else:
        raise ValueError(f"unknown primitive {kind!r}")
    return np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.triangles, dtype=np.uint32)


def primitive(
    kind: str,
    size: tuple[float, float, float],
    position: tuple[float, float, float] | NDArray[np.float64],
    yaw: float,
    material: int,
    color: tuple[float, float, float] | NDArray[np.float32],
    part: int = -1,
) -> Mesh:
    """A unit primitive scaled to ``size`` (x, y, z extents, metres), rotated by ``yaw``
    about +z and placed with its base centre at ``position``."""
    vertices, triangles = _unit(kind)
    c, s = np.cos(yaw), np.sin(yaw)
    scaled = vertices * np.asarray(size, dtype=np.float64)
    placed = np.stack(
        [c * scaled[:, 0] - s * scaled[:, 1], s * scaled[:, 0] + c * scaled[:, 1], scaled[:, 2]], axis=1
    ) + np.asarray(position, dtype=np.float64)
    n = triangles.shape[0]
    return Mesh(
        vertices=placed.astype(np.float32),
        triangles=triangles.copy(),
        material=np.full(n, material, dtype=np.uint8),
        color=np.tile(np.asarray(color, dtype=np.float32), (n, 1)),
        part=np.full(n, part, dtype=np.int32),
    )
