"""Helpers shared by the point-based BEV branches (lidar, radar): input checks and cell index.

Cell index convention (one for every branch, the numpy baselines in ``benchmarks/bev.py``
included): the cell of a float32 point is ``BevGrid.cell_of`` evaluated in float32, exactly
what numpy does for ``grid.cell_of(points)`` on a float32 array (the grid's float bounds
are cast to float32, NEP 50): ``col = floor((x - x_min) / resolution)``, ``row = floor((y
- y_min) / resolution)``, flat index ``row * nx + col``. The z slab test compares float32
z with the float32 bounds: ``z_min <= z < z_max``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numba as nb
import numpy as np
from numpy.typing import NDArray

from perception.bev_grid import BevGrid
from perception.errors import BevError


class GridScalars(NamedTuple):
    """A grid's bounds as the kernels take them (float32, as numpy casts them for float32 points)."""

    x_min: np.float32
    y_min: np.float32
    resolution: np.float32
    nx_f: np.float32
    ny_f: np.float32
    z_min: np.float32
    z_max: np.float32
    nx: np.int32
    ny: np.int32


def grid_scalars(grid: BevGrid) -> GridScalars:
    """The kernel arguments of ``grid``; GridError/BevError when ``grid`` is not a BevGrid."""
    if not isinstance(grid, BevGrid):
        raise BevError(f"grid must be a perception.bev_grid.BevGrid, got {type(grid).__name__}: {grid!r}")
    f32 = np.float32
    return GridScalars(
        f32(grid.x_min),
        f32(grid.y_min),
        f32(grid.resolution),
        f32(grid.nx),
        f32(grid.ny),
        f32(grid.z_min),
        f32(grid.z_max),
        np.int32(grid.nx),
        np.int32(grid.ny),
    )


def check_points(
    points: Any, *, function: str, argument: str, columns: tuple[int, ...], layout: str, source: str = ""
) -> NDArray[np.float32]:
    """``points`` as a C-contiguous (N, C) float32 array, C in ``columns`` (no copy when it already is).

    Raises BevError naming the function, the argument (and ``source`` when given), the
    expected layout and the shape/dtype received.
    """
    where = f"{function}: {argument}" + (f" from {source}" if source else "")
    expected = " or ".join(f"(N, {c})" for c in columns)
    if not isinstance(points, np.ndarray):
        raise BevError(f"{where} must be a numpy array {expected} float32 {layout}, got {type(points).__name__}")
    if points.ndim != 2 or points.shape[1] not in columns:
        raise BevError(f"{where} must have shape {expected} {layout}, got shape {points.shape}")
    if points.dtype != np.float32:
        raise BevError(
            f"{where} must be float32 {layout}, got dtype {points.dtype} with shape {points.shape}"
            " (convert with .astype(np.float32))"
        )
    return np.ascontiguousarray(points)


def output(out: Any, shape: tuple[int, int, int], *, function: str) -> NDArray[np.float32]:
    """``out`` checked to be a writable C-contiguous float32 array of ``shape``, or a new
    uninitialized one when ``out`` is None (BevError naming the function otherwise)."""
    if out is None:
        return np.empty(shape, dtype=np.float32)
    if (
        not isinstance(out, np.ndarray)
        or out.shape != shape
        or out.dtype != np.float32
        or not out.flags.c_contiguous
        or not out.flags.writeable
    ):
        got = (
            f"shape {out.shape} dtype {out.dtype} "
            f"(C-contiguous {out.flags.c_contiguous}, writable {out.flags.writeable})"
            if isinstance(out, np.ndarray)
            else type(out).__name__
        )
        raise BevError(f"{function}: out must be a writable C-contiguous float32 array of shape {shape}, got {got}")
    return out


@nb.njit(cache=True, error_model="numpy", inline="always")
def cell_index(
    x: np.float32,
    y: np.float32,
    z: np.float32,
    x_min: np.float32,
    y_min: np.float32,
    resolution: np.float32,
    nx_f: np.float32,
    ny_f: np.float32,
    z_min: np.float32,
    z_max: np.float32,
    nx: np.int32,
) -> np.int32:
    """Flat cell index ``row * nx + col`` of a point, or -1 when it is outside the grid volume
    or x, y or z is not finite (NaN and inf fail every comparison). Branch-free, so that the
    loops calling it vectorize."""
    fx = (x - x_min) / resolution
    fy = (y - y_min) / resolution
    zero = np.float32(0.0)
    inside = (fx >= zero) & (fx < nx_f) & (fy >= zero) & (fy < ny_f) & (z >= z_min) & (z < z_max)
    return np.int32(fy) * nx + np.int32(fx) if inside else np.int32(-1)


@nb.njit(cache=True, error_model="numpy", inline="always")
def is_finite(v: np.float32) -> bool:
    """True for a finite float (NaN and +-inf give NaN under v - v). Branch-free."""
    return bool((v - v) == np.float32(0.0))
