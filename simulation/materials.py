"""Surface materials of the simulated world: one table for every sensor model.

A material id is a small integer stored per ground-map cell and per static triangle; actors
carry their class's material. Each material has a lidar reflectivity (0..1, Lambertian
albedo at 905 nm), a radar cross-section scale, and a base colour for the cameras (RGB 0..1).
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np


class Material(IntEnum):
    NONE = 0  # no hit (sky)
    ASPHALT = 1
    LANE_WHITE = 2
    LANE_YELLOW = 3
    SIDEWALK = 4
    GRASS = 5
    BUILDING = 6
    POLE = 7
    TRUNK = 8
    FOLIAGE = 9
    VEHICLE = 10
    PERSON = 11
    CONE = 12
    BARRIER = 13
    CROSSWALK = 14


#: (reflectivity, rgb) per material; vehicles' colours vary per actor (see actors.py).
_TABLE: dict[Material, tuple[float, tuple[float, float, float]]] = {
    Material.NONE: (0.0, (0.55, 0.70, 0.90)),
    Material.ASPHALT: (0.06, (0.24, 0.24, 0.25)),
    Material.LANE_WHITE: (0.55, (0.85, 0.85, 0.82)),
    Material.LANE_YELLOW: (0.45, (0.85, 0.70, 0.15)),
    Material.SIDEWALK: (0.18, (0.55, 0.53, 0.50)),
    Material.GRASS: (0.25, (0.25, 0.42, 0.18)),
    Material.BUILDING: (0.20, (0.62, 0.58, 0.52)),
    Material.POLE: (0.30, (0.45, 0.45, 0.48)),
    Material.TRUNK: (0.15, (0.35, 0.25, 0.15)),
    Material.FOLIAGE: (0.30, (0.18, 0.38, 0.12)),
    Material.VEHICLE: (0.12, (0.60, 0.60, 0.62)),
    Material.PERSON: (0.20, (0.30, 0.25, 0.40)),
    Material.CONE: (0.80, (0.95, 0.45, 0.05)),
    Material.BARRIER: (0.50, (0.85, 0.80, 0.75)),
    Material.CROSSWALK: (0.55, (0.88, 0.88, 0.85)),
}

#: (n_materials,) float32 lidar reflectivity indexed by material id.
REFLECTIVITY = np.array([_TABLE[m][0] for m in Material], dtype=np.float32)
#: (n_materials, 3) float32 RGB base colour indexed by material id.
COLOR_RGB = np.array([_TABLE[m][1] for m in Material], dtype=np.float32)
