"""Global BEV augmentation applied consistently to every modality and to the ground truth.

An :class:`Augmentation` is a similarity transform of base_link about the origin: a
reflection y -> -y (``flip``), then a rotation about +z by ``rotation_rad``, then a uniform
``scale``. Point clouds (lidar, radar positions and velocities), boxes and BEV rasters are
mapped *forward*; the camera lift is built for the *inverse* map (a BEV cell of the augmented
frame looks up the camera pixel of the original point), so the images stay untouched and the
cameras stay consistent with everything else. Rasters are resampled with nearest neighbour,
which keeps label values exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from perception.bev_grid import BevGrid
from perception.ground_truth import Boxes


@dataclass(frozen=True)
class Augmentation:
    rotation_rad: float = 0.0
    flip: bool = False
    scale: float = 1.0

    @classmethod
    def sample(
        cls,
        rng: np.random.Generator,
        *,
        max_rotation_rad: float = math.pi / 4,
        scale_range: tuple[float, float] = (0.95, 1.05),
    ) -> Augmentation:
        """A random augmentation: uniform rotation, a fair-coin flip, uniform scale."""
        return cls(
            float(rng.uniform(-max_rotation_rad, max_rotation_rad)),
            bool(rng.random() < 0.5),
            float(rng.uniform(*scale_range)),
        )

    @property
    def is_identity(self) -> bool:
        return self.rotation_rad == 0.0 and not self.flip and self.scale == 1.0

    @property
    def matrix(self) -> NDArray[np.float64]:
        """(3, 3) linear map of base_link coordinates, original -> augmented."""
        c, s = math.cos(self.rotation_rad), math.sin(self.rotation_rad)
        rotation = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
        reflection = np.diag([1.0, -1.0, 1.0]) if self.flip else np.eye(3)
        return self.scale * rotation @ reflection

    def points(
        self, points: NDArray[np.float32], velocity_columns: tuple[int, int] | None = None
    ) -> NDArray[np.float32]:
        """(N, C) points with xyz in columns 0..2 (and optionally a (vx, vy) pair) mapped forward."""
        out = np.array(points, dtype=np.float32, copy=True)
        A = self.matrix
        out[:, :3] = points[:, :3] @ A.T.astype(np.float32)
        if velocity_columns is not None:
            vx, vy = velocity_columns
            planar = A[:2, :2].astype(np.float32)
            out[:, [vx, vy]] = points[:, [vx, vy]] @ planar.T
        return out

    def boxes(self, boxes: Boxes) -> Boxes:
        """Boxes mapped forward: centres, sizes (scaled), yaws, velocities."""
        A = self.matrix
        yaws = -boxes.yaws if self.flip else boxes.yaws
        return Boxes(
            centers=boxes.centers @ A.T,
            sizes=boxes.sizes * self.scale,
            yaws=np.arctan2(np.sin(yaws + self.rotation_rad), np.cos(yaws + self.rotation_rad)),
            velocities=boxes.velocities @ A[:2, :2].T,
            labels=boxes.labels,
            track_ids=boxes.track_ids,
            num_lidar_points=boxes.num_lidar_points,
            scores=boxes.scores,
        )

    def raster(self, raster: NDArray[np.generic], grid: BevGrid) -> NDArray[np.generic]:
        """(..., ny, nx) raster on ``grid`` resampled into the augmented frame (nearest, 0 outside)."""
        if self.is_identity:
            return raster
        # pixel (col, row) -> metric (x, y): x = x_min + (col + 0.5) r; the output pixel maps
        # back to the input pixel through the inverse of A's planar part.
        r = grid.resolution
        to_metric = np.array([[r, 0.0, grid.x_min + 0.5 * r], [0.0, r, grid.y_min + 0.5 * r], [0.0, 0.0, 1.0]])
        planar = np.eye(3)
        planar[:2, :2] = self.matrix[:2, :2]
        forward = np.linalg.inv(to_metric) @ planar @ to_metric
        lead = raster.shape[:-2]
        flat = raster.reshape(-1, *raster.shape[-2:])
        warped = [
            cv2.warpAffine(
                channel,
                forward[:2],
                (grid.nx, grid.ny),
                flags=cv2.INTER_NEAREST,
                borderMode=cv2.BORDER_CONSTANT,
                borderValue=0,
            )
            for channel in flat
        ]
        return np.stack(warped).reshape(*lead, grid.ny, grid.nx)

    def lookup_transform(self) -> NDArray[np.float64]:
        """(4, 4) affine taking augmented base_link points to original base_link (for the camera lift)."""
        T = np.eye(4)
        T[:3, :3] = np.linalg.inv(self.matrix)
        return T
