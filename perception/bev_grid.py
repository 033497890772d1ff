"""The bird's-eye-view grid shared by every BEV raster and tensor in the runtime.

Convention (one for all branches, ground truth and outputs): a raster of shape
``(rows, cols) = (ny, nx)`` in base_link, row index along +y, column index along +x, cell
``[0, 0]`` has its lower corner at ``(x_min, y_min)``. This is the memory layout of
``nav_msgs/OccupancyGrid`` (row-major, origin at the grid's lower corner), so a raster is
published without transposing. Images for people flip rows so that +x points up.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from perception.errors import GridError


@dataclass(frozen=True)
class BevGrid:
    """Axis-aligned grid in base_link: x/y extent and cell size (metres), z slab (metres)."""

    x_min: float = -51.2
    x_max: float = 51.2
    y_min: float = -51.2
    y_max: float = 51.2
    resolution: float = 0.4
    z_min: float = -3.0
    z_max: float = 5.0

    def __post_init__(self) -> None:
        values = asdict(self)
        for name, value in values.items():
            if not np.isfinite(value):
                raise GridError(f"BEV grid: {name} must be finite, got {value!r}")
        if self.resolution <= 0:
            raise GridError(f"BEV grid: resolution must be > 0 m, got {self.resolution!r}")
        for low, high in (("x_min", "x_max"), ("y_min", "y_max"), ("z_min", "z_max")):
            if values[low] >= values[high]:
                raise GridError(f"BEV grid: {low} ({values[low]!r}) must be below {high} ({values[high]!r})")
        for low, high in (("x_min", "x_max"), ("y_min", "y_max")):
            cells = (values[high] - values[low]) / self.resolution
            if abs(cells - round(cells)) > 1e-6:
                raise GridError(
                    f"BEV grid: {high} - {low} = {values[high] - values[low]!r} m is not a whole number "
                    f"of {self.resolution!r} m cells"
                )

    @property
    def nx(self) -> int:
        """Columns (cells along +x)."""
        return round((self.x_max - self.x_min) / self.resolution)

    @property
    def ny(self) -> int:
        """Rows (cells along +y)."""
        return round((self.y_max - self.y_min) / self.resolution)

    @property
    def shape(self) -> tuple[int, int]:
        """Raster shape ``(ny, nx)``."""
        return (self.ny, self.nx)

    def cell_of(self, xy: NDArray[np.floating[Any]]) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.bool_]]:
        """Cell indices of points.

        xy: (N, >=2) base_link metres. Returns (row (N,) int64, col (N,) int64, inside (N,) bool);
        row/col are only meaningful where ``inside``.
        """
        col = np.floor((xy[:, 0] - self.x_min) / self.resolution).astype(np.int64)
        row = np.floor((xy[:, 1] - self.y_min) / self.resolution).astype(np.int64)
        inside = (col >= 0) & (col < self.nx) & (row >= 0) & (row < self.ny)
        return row, col, inside

    def cell_centers(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Cell-centre coordinates: (x (ny, nx), y (ny, nx)) float64 base_link metres."""
        xs = self.x_min + (np.arange(self.nx) + 0.5) * self.resolution
        ys = self.y_min + (np.arange(self.ny) + 0.5) * self.resolution
        x, y = np.meshgrid(xs, ys)
        return x, y

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: str = "") -> BevGrid:
        """Grid from :meth:`to_json` output; errors name ``source``."""
        try:
            values = json.loads(text)
            return cls(**{key: float(value) for key, value in values.items()})
        except (ValueError, TypeError, AttributeError) as exc:
            raise GridError(f"{source or 'BEV grid JSON'}: not a BEV grid ({exc}): {text[:120]!r}") from exc
