"""Bird's-eye-view scene images: ground, occupancy, lidar, radar, ultrasonic cones, boxes.

Orientation for people: +x (forward) points up, +y (left) points left, the ego at the
centre; ``pixels_per_m`` sets the scale. Layers are drawn in a fixed order (ground and grids,
range rings, lidar, ultrasonic cones, radar, ground-truth boxes, detections, ego, legend) so
detections stay readable on top. Class colours come from perception.classes.CLASS_COLORS.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from perception.bev_grid import BevGrid
from perception.classes import CLASS_COLORS, CLASSES
from perception.ground_truth import Boxes

Image = NDArray[np.uint8]


def _bgr(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    return (rgb[2], rgb[1], rgb[0])


@dataclass(frozen=True)
class BevStyle:
    pixels_per_m: float = 6.0
    background: tuple[int, int, int] = (24, 24, 24)
    drivable: tuple[int, int, int] = (58, 52, 46)
    occupancy: tuple[int, int, int] = (40, 70, 110)
    ring_color: tuple[int, int, int] = (70, 70, 70)
    truth_color: tuple[int, int, int] = (235, 235, 235)
    radar_color: tuple[int, int, int] = (255, 220, 0)
    ultrasonic_free: tuple[int, int, int] = (60, 110, 60)
    ultrasonic_hit: tuple[int, int, int] = (80, 200, 255)
    velocity_scale_s: float = 1.0  # arrow length = velocity x this many seconds


class BevView:
    """Draws on a canvas covering ``grid`` (square pixels, +x up)."""

    def __init__(self, grid: BevGrid, style: BevStyle | None = None) -> None:
        self.grid = grid
        self.style = style or BevStyle()
        s = self.style.pixels_per_m
        self.width = round((grid.y_max - grid.y_min) * s)
        self.height = round((grid.x_max - grid.x_min) * s)
        self.image: Image = np.full((self.height, self.width, 3), self.style.background, dtype=np.uint8)

    # -- coordinates ------------------------------------------------------------------
    def to_pixels(self, xy: NDArray[np.floating]) -> NDArray[np.float64]:
        """(N, >=2) base_link metres -> (N, 2) float pixel (u, v): u grows with -y, v with -x."""
        s = self.style.pixels_per_m
        u = (self.grid.y_max - xy[:, 1]) * s
        v = (self.grid.x_max - xy[:, 0]) * s
        return np.stack([u, v], axis=1)

    def _raster_to_canvas(self, raster: NDArray[np.generic]) -> NDArray[np.generic]:
        """(ny, nx) raster (rows +y, cols +x) -> canvas-sized, oriented +x up / +y left."""
        # canvas row grows with -x (raster column reversed), canvas column with -y (raster row reversed)
        oriented = raster.T[::-1, ::-1]
        return cv2.resize(
            np.ascontiguousarray(oriented).astype(np.uint8), (self.width, self.height), interpolation=cv2.INTER_NEAREST
        )

    # -- layers -------------------------------------------------------------------------
    def ground(self, drivable: NDArray[np.uint8] | None = None, occupancy: NDArray[np.uint8] | None = None) -> None:
        """Drivable area and occupancy rasters (ny, nx) {0, 1} on ``grid``."""
        for raster, color in ((drivable, self.style.drivable), (occupancy, self.style.occupancy)):
            if raster is not None:
                mask = self._raster_to_canvas(raster) > 0
                self.image[mask] = color

    def range_rings(self, step_m: float = 10.0) -> None:
        centre = self.to_pixels(np.zeros((1, 2)))[0]
        reach = math.hypot(self.grid.x_max, self.grid.y_max)
        for r in np.arange(step_m, reach, step_m):
            radius = round(r * self.style.pixels_per_m)
            cv2.circle(self.image, (round(centre[0]), round(centre[1])), radius, self.style.ring_color, 1, cv2.LINE_AA)

    def lidar(self, points: NDArray[np.floating], *, z_range: tuple[float, float] = (-1.0, 3.0)) -> None:
        """(N, >=3) base_link points as dots coloured by height (TURBO colormap)."""
        if len(points) == 0:
            return
        uv = self.to_pixels(points).astype(np.int64)
        inside = (uv[:, 0] >= 0) & (uv[:, 0] < self.width) & (uv[:, 1] >= 0) & (uv[:, 1] < self.height)
        z = np.clip((points[inside, 2] - z_range[0]) / (z_range[1] - z_range[0]), 0.0, 1.0)
        colors = cv2.applyColorMap((z * 255).astype(np.uint8)[:, None], cv2.COLORMAP_TURBO)[:, 0]
        order = np.argsort(points[inside, 2])  # higher points on top
        uv = uv[inside][order]
        self.image[uv[:, 1], uv[:, 0]] = colors[order]

    def radar(self, detections: NDArray[np.floating]) -> None:
        """(R, >=6) [x, y, z, rcs, vx, vy, ...] base_link: rings with velocity arrows."""
        for x, y, _, _, vx, vy in detections[:, :6]:
            p = self.to_pixels(np.array([[x, y]]))[0]
            q = self.to_pixels(
                np.array([[x + vx * self.style.velocity_scale_s, y + vy * self.style.velocity_scale_s]])
            )[0]
            centre = (round(p[0]), round(p[1]))
            cv2.circle(self.image, centre, 3, self.style.radar_color, 1, cv2.LINE_AA)
            if math.hypot(vx, vy) > 0.3:
                cv2.arrowedLine(self.image, centre, (round(q[0]), round(q[1])), self.style.radar_color, 1, cv2.LINE_AA)

    def ultrasonic(self, cones: Sequence[tuple[NDArray[np.float64], float, float, float]]) -> None:
        """Cones: (sensor -> base_link (4, 4), field of view rad, max range m, range m (inf:
        nothing, nan: missing)); free part filled, the echo arc highlighted."""
        for pose, fov, max_range, measured in cones:
            if math.isnan(measured):
                continue
            reach = min(measured, max_range) if math.isfinite(measured) else max_range
            angles = np.linspace(-fov / 2, fov / 2, 12)
            local = np.stack([np.cos(angles) * reach, np.sin(angles) * reach, np.zeros_like(angles)], axis=1)
            world = local @ pose[:3, :3].T + pose[:3, 3]
            polygon = np.vstack([self.to_pixels(pose[None, :3, 3]), self.to_pixels(world)]).round().astype(np.int32)
            overlay = self.image.copy()
            cv2.fillPoly(overlay, [polygon], self.style.ultrasonic_free, cv2.LINE_AA)
            cv2.addWeighted(overlay, 0.45, self.image, 0.55, 0, dst=self.image)
            if math.isfinite(measured):
                cv2.polylines(self.image, [polygon[1:]], False, self.style.ultrasonic_hit, 2, cv2.LINE_AA)

    def boxes(self, boxes: Boxes, *, truth: bool = False, show_scores: bool = True) -> None:
        """Box footprints: ground truth as thin white outlines, detections in class colours
        with a heading tick, a velocity arrow and the score."""
        if len(boxes) == 0:
            return
        corners = boxes.corners()[:, :4, :2]  # bottom ring (N, 4, 2)
        for i in range(len(boxes)):
            polygon = self.to_pixels(corners[i]).round().astype(np.int32)
            if truth:
                cv2.polylines(self.image, [polygon], True, self.style.truth_color, 1, cv2.LINE_AA)
                continue
            color = _bgr(CLASS_COLORS[int(boxes.labels[i])])
            cv2.polylines(self.image, [polygon], True, color, 2, cv2.LINE_AA)
            front = polygon[:2].mean(axis=0).round().astype(int)
            centre = self.to_pixels(boxes.centers[i : i + 1, :2])[0].round().astype(int)
            cv2.line(self.image, tuple(centre), tuple(front), color, 1, cv2.LINE_AA)
            velocity = boxes.velocities[i]
            if np.all(np.isfinite(velocity)) and np.hypot(*velocity) > 0.3:
                tip = self.to_pixels(boxes.centers[i : i + 1, :2] + velocity * self.style.velocity_scale_s)[0]
                cv2.arrowedLine(self.image, tuple(centre), tuple(tip.round().astype(int)), color, 1, cv2.LINE_AA)
            if show_scores:
                cv2.putText(
                    self.image,
                    f"{boxes.scores[i]:.2f}",
                    (int(polygon[:, 0].max()) + 2, int(polygon[:, 1].min()) + 8),
                    cv2.FONT_HERSHEY_SIMPLEX,
                    0.3,
                    color,
                    1,
                    cv2.LINE_AA,
                )

    def ego(self, length_m: float = 4.8, width_m: float = 1.9, rear_overhang_m: float = 1.0) -> None:
        body = np.array(
            [
                [length_m - rear_overhang_m, width_m / 2],
                [length_m - rear_overhang_m, -width_m / 2],
                [-rear_overhang_m, -width_m / 2],
                [-rear_overhang_m, width_m / 2],
            ]
        )
        cv2.fillPoly(self.image, [self.to_pixels(body).round().astype(np.int32)], (230, 230, 230), cv2.LINE_AA)

    def legend(self, lines: Sequence[str] = (), classes: Sequence[int] = ()) -> None:
        """Caption lines top-left and the colour key of ``classes`` below them."""
        y = 16
        for line in lines:
            cv2.putText(self.image, line, (8, y), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (240, 240, 240), 1, cv2.LINE_AA)
            y += 16
        for label in classes:
            color = _bgr(CLASS_COLORS[label])
            cv2.rectangle(self.image, (8, y - 9), (18, y + 1), color, -1)
            cv2.putText(self.image, CLASSES[label], (24, y), cv2.FONT_HERSHEY_SIMPLEX, 0.4, color, 1, cv2.LINE_AA)
            y += 14
