"""The ground-material map: what the flat ground z = 0 is made of, cell by cell.

Road surface, lane markings, crosswalks, sidewalks and grass are painted into a raster once
(OpenCV polygon filling); every sensor then looks materials up by the xy of its ground hits,
and the ground truth's drivable area is read from the same map, so lidar intensity, camera
texture and labels always agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from simulation.materials import Material
from simulation.road import Centerline, Crossing, RoadProfile

MAX_CELLS = 40_000_000
_SHIFT = 3  # fixed-point bits for cv2 drawing (1/8 cell precision)
DRIVABLE = (Material.ASPHALT, Material.LANE_WHITE, Material.LANE_YELLOW, Material.CROSSWALK)
#: Materials of the flat ground z = 0 (road surface, markings, sidewalks, grass).
GROUND_MATERIALS: NDArray[np.uint8] = np.array([*DRIVABLE, Material.SIDEWALK, Material.GRASS], dtype=np.uint8)
#: (n_materials,) bool lookup: material id -> is ground.
IS_GROUND: NDArray[np.bool_] = np.isin(np.arange(len(Material)), GROUND_MATERIALS)


@dataclass(frozen=True)
class GroundMap:
    """Material per ground cell.

    Attributes:
        origin: (2,) float64 world xy of the lower corner of cell [0, 0], metres.
        resolution: cell size, metres.
        material: (rows, cols) uint8 Material ids, row along +y, column along +x.
    """

    origin: NDArray[np.float64]
    resolution: float
    material: NDArray[np.uint8]

    def lookup(self, xy: NDArray[np.floating]) -> NDArray[np.uint8]:
        """Material ids (N,) uint8 at world xy (N, >=2); GRASS outside the map."""
        col = np.floor((xy[:, 0] - self.origin[0]) / self.resolution).astype(np.int64)
        row = np.floor((xy[:, 1] - self.origin[1]) / self.resolution).astype(np.int64)
        rows, cols = self.material.shape
        inside = (row >= 0) & (row < rows) & (col >= 0) & (col < cols)
        out = np.full(xy.shape[0], Material.GRASS, dtype=np.uint8)
        out[inside] = self.material[row[inside], col[inside]]
        return out

    def drivable(self, xy: NDArray[np.floating]) -> NDArray[np.bool_]:
        """(N,) bool: the ground at world xy (N, >=2) is road surface."""
        return np.isin(self.lookup(xy), np.array(DRIVABLE, dtype=np.uint8))


class _Painter:
    def __init__(self, origin: NDArray[np.float64], resolution: float, shape: tuple[int, int]) -> None:
        self.origin, self.resolution = origin, resolution
        self.canvas = np.full(shape, Material.GRASS, dtype=np.uint8)

    def _pixels(self, xy: NDArray[np.float64]) -> NDArray[np.int32]:
        return np.round((xy - self.origin) / self.resolution * (1 << _SHIFT)).astype(np.int32)

    def polygon(self, xy: NDArray[np.float64], material: Material) -> None:
        cv2.fillPoly(self.canvas, [self._pixels(xy)], int(material), lineType=cv2.LINE_8, shift=_SHIFT)

    def line(self, xy: NDArray[np.float64], material: Material, width_m: float) -> None:
        thickness = max(1, round(width_m / self.resolution))
        cv2.polylines(self.canvas, [self._pixels(xy)], False, int(material), thickness, cv2.LINE_8, _SHIFT)


def _band(centerline: Centerline, s: NDArray[np.float64], d_left: float, d_right: float) -> NDArray[np.float64]:
    """Polygon (K, 2) of the strip between lateral offsets d_right < d_left over arc lengths s."""
    return np.concatenate([centerline.offset(s, d_left), centerline.offset(s[::-1], d_right)])


def _rectangle(
    center: NDArray[np.float64], heading: float, half_length: float, half_width: float
) -> NDArray[np.float64]:
    u = np.array([np.cos(heading), np.sin(heading)])
    v = np.array([-u[1], u[0]])
    return np.array(
        [
            center + half_length * u + half_width * v,
            center - half_length * u + half_width * v,
            center - half_length * u - half_width * v,
            center + half_length * u - half_width * v,
        ]
    )


def paint_ground(
    centerline: Centerline, crossings: tuple[Crossing, ...], profile: RoadProfile, margin: float = 60.0
) -> GroundMap:
    """Rasterize roads, markings, crosswalks and sidewalks around the road network."""
    corners = [centerline.xy]
    for crossing in crossings:
        ends = crossing.center + np.outer([-1.0, 1.0], crossing.direction) * crossing.half_length
        corners.append(ends)
    points = np.concatenate(corners)
    low, high = points.min(axis=0) - margin, points.max(axis=0) + margin
    resolution = 0.1
    while np.prod(np.ceil((high - low) / resolution)) > MAX_CELLS:
        resolution *= 1.25
    cols, rows = (int(v) for v in np.ceil((high - low) / resolution))
    painter = _Painter(low, resolution, (rows, cols))

    s = np.arange(0.0, centerline.length + 1e-9, 1.0)
    kerb = profile.half_width
    outer = kerb + profile.sidewalk_width
    painter.polygon(_band(centerline, s, outer, -outer), Material.SIDEWALK)
    for crossing in crossings:
        painter.polygon(
            _rectangle(crossing.center, crossing.heading, crossing.half_length, profile.crossing_half_width + 3.0),
            Material.SIDEWALK,
        )
    painter.polygon(_band(centerline, s, kerb, -kerb), Material.ASPHALT)
    for crossing in crossings:
        painter.polygon(
            _rectangle(crossing.center, crossing.heading, crossing.half_length, profile.crossing_half_width),
            Material.ASPHALT,
        )

    # Markings stop short of every intersection box (and its crosswalks).
    clear = profile.crossing_half_width + 6.0
    near_crossing = np.zeros(s.size, dtype=bool)
    for crossing in crossings:
        near_crossing |= np.abs(s - crossing.s) < clear
    dashed = (s % 9.0) < 3.0
    for run in _runs(~near_crossing):
        seg = s[run]
        for d in (-0.15, 0.15):
            painter.line(centerline.offset(seg, d), Material.LANE_YELLOW, 0.12)
        for side in (-1.0, 1.0):
            painter.line(centerline.offset(seg, side * profile.driving_half_width), Material.LANE_WHITE, 0.15)
    for lane in range(1, profile.lanes_per_direction):
        for run in _runs(~near_crossing & dashed):
            for side in (-1.0, 1.0):
                painter.line(centerline.offset(s[run], side * lane * profile.lane_width), Material.LANE_WHITE, 0.15)

    for crossing in crossings:
        _paint_intersection(painter, centerline, crossing, profile)
    return GroundMap(origin=low, resolution=resolution, material=painter.canvas)


def _paint_intersection(painter: _Painter, centerline: Centerline, crossing: Crossing, profile: RoadProfile) -> None:
    along = crossing.direction
    box = profile.half_width + 1.0  # crossing-road markings start beyond the main road
    for sign in (-1.0, 1.0):
        t = np.arange(box, crossing.half_length, 1.0)
        dashes = (t % 6.0) < 3.0
        for run in _runs(dashes):
            painter.line(crossing.center + sign * np.outer(t[run], along), Material.LANE_YELLOW, 0.12)
        # Stop line on the crossing road, and a zebra crosswalk across it.
        stop = crossing.center + sign * (box + 0.5) * along
        painter.polygon(_rectangle(stop, crossing.heading, 0.2, profile.crossing_half_width), Material.LANE_WHITE)
    # Zebra crossings across the main road on both sides of the intersection.
    for sign in (-1.0, 1.0):
        s_mid = crossing.s + sign * (profile.crossing_half_width + 3.5)
        for d in np.arange(-profile.half_width + 0.5, profile.half_width, 1.0):
            center = centerline.offset(np.array([s_mid]), d)[0]
            _, heading, _ = centerline.at(np.array([s_mid]))
            painter.polygon(_rectangle(center, float(heading[0]), 1.5, 0.25), Material.CROSSWALK)


def _runs(mask: NDArray[np.bool_]) -> list[slice]:
    """Slices of consecutive True values (at least 2 long)."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return [slice(a, b) for a, b in zip(edges[::2], edges[1::2], strict=True) if b - a >= 2]
